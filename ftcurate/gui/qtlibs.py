"""Can Qt open a window here? The system libraries Qt's X11 (xcb) platform needs.

On a fresh Linux machine the app may not start because Debian/Ubuntu leave out a few X11
libraries that Qt 6's xcb plugin links to (libxcb-cursor0, libxcb-icccm4, ...); Qt then
aborts with a message that does not say what to install. :func:`missing_libraries` asks the
dynamic linker (``ldd``) what the plugin lacks, before Qt loads it, and :func:`advice` says
which packages to install. ``python -m ftcurate.gui.qtlibs`` prints it (``make run`` does).

This module imports no Qt module that loads a platform plugin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Optional

#: shared library (soname) -> the Debian/Ubuntu package that ships it
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}


def uses_xcb(env: Optional[dict] = None) -> bool:
    """Qt will use its X11 (xcb) platform: Linux, a DISPLAY, no other platform chosen."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def xcb_plugin() -> Optional[str]:
    """The path of PySide6's xcb platform plugin, or None."""
    try:
        import PySide6
    except ImportError:
        return None
    base = os.path.dirname(PySide6.__file__)
    for sub in ("Qt/plugins/platforms", "plugins/platforms"):
        path = os.path.join(base, sub, "libqxcb.so")
        if os.path.exists(path):
            return path
    return None


def parse_ldd(output: str) -> list[str]:
    """The sonames ``ldd`` reports as "not found", in order, once each."""
    out: list[str] = []
    for line in output.splitlines():
        name, sep, where = line.strip().partition("=>")
        if sep and "not found" in where:
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


def missing_libraries(plugin: Optional[str] = None) -> list[str]:
    """Shared libraries the xcb plugin needs and the system lacks ([] when all are there,
    or when it cannot be told: no plugin, no ``ldd``)."""
    plugin = plugin or xcb_plugin()
    ldd = shutil.which("ldd")
    if not plugin or not ldd:
        return []
    env = dict(os.environ)
    qt_lib = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(plugin))), "lib")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (qt_lib, env.get("LD_LIBRARY_PATH", "")) if p)
    try:
        out = subprocess.run([ldd, plugin], capture_output=True, text=True, timeout=20, env=env).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_ldd(out)


def advice(missing: list[str]) -> str:
    """What to tell the user: which libraries are missing and the command that installs them."""
    packages = sorted({DEBIAN_PACKAGES.get(lib, "") for lib in missing} - {""})
    unknown = [lib for lib in missing if lib not in DEBIAN_PACKAGES]
    lines = ["ftcurate cannot open a window: Qt's X11 platform needs system libraries this machine lacks:",
             "  " + ", ".join(missing)]
    if packages:
        lines += ["On Debian or Ubuntu, install them with:",
                  "  sudo apt-get install " + " ".join(packages)]
    if unknown:
        lines.append("(find the package for " + ", ".join(unknown) + " with your distribution's package search)")
    lines.append("Or run headless: ftcurate gui DATA --screenshot shot.png")
    return "\n".join(lines)


def check() -> Optional[str]:
    """None when a window can be opened (or it cannot be told), else the advice."""
    if not uses_xcb():
        return None
    missing = missing_libraries()
    return advice(missing) if missing else None


def main() -> int:
    message = check()
    if message:
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
