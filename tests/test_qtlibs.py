"""`make run` and `ftcurate gui` say which system libraries Qt's X11 platform lacks and how to
install them, instead of Qt's abort (issue 11, item 17)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ftcurate.gui import qtlibs

LDD = """\
\tlinux-vdso.so.1 (0x00007ffc2a5f7000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f2d)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2c)
"""


def test_ldd_output_gives_the_missing_libraries_once():
    assert qtlibs.parse_ldd(LDD) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    assert qtlibs.parse_ldd("\tlibc.so.6 => /lib/libc.so.6\n") == []


def test_advice_names_the_packages_to_install():
    text = qtlibs.advice(["libxcb-cursor.so.0", "libxcb-icccm.so.4", "libweird.so.9"])
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4" in text
    assert "libweird.so.9" in text and "--screenshot" in text


@pytest.mark.parametrize("env, xcb", [
    ({"DISPLAY": ":0"}, True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, False),
    ({"QT_QPA_PLATFORM": "xcb"}, True),
    ({}, False),
])
def test_only_the_x11_platform_is_checked(env, xcb):
    assert qtlibs.uses_xcb(env) is (xcb and sys.platform.startswith("linux"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 libraries are a Linux matter")
def test_the_app_refuses_with_advice_when_libraries_are_missing(tmp_path):
    """Run where it matters: with a DISPLAY and Qt's xcb plugin. On a machine that lacks the
    libraries the app must say what to install (exit 2), not abort inside Qt."""
    assert qtlibs.xcb_plugin() is not None
    missing = qtlibs.missing_libraries()
    if not missing:
        pytest.skip("this machine has every library Qt's xcb plugin needs")
    env = {"PATH": "/usr/bin:/bin", "DISPLAY": ":987", "HOME": str(tmp_path), "FTCURATE_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "ftcurate.gui.app"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "sudo apt-get install" in r.stderr and missing[0] in r.stderr
    r = subprocess.run([sys.executable, "-m", "ftcurate.gui.qtlibs"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 1 and "sudo apt-get install" in r.stderr
