"""The packaging files: the PyInstaller launcher dispatches to the app or the command line,
and the spec and desktop entry point at files that exist. (The PyInstaller build itself takes
minutes and ~2 GB; packaging/README.md says how to run it.)"""

import configparser
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGING = os.path.join(ROOT, "packaging")


def _launch(*args):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, os.path.join(PACKAGING, "launch.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_launcher_runs_the_command_line_for_commands(tmp_path):
    proc = _launch("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("ftcurate ")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{not json\n', encoding="utf-8")
    proc = _launch("validate", str(bad), "--json")
    assert proc.returncode == 1 and '"invalid_json"' in proc.stdout


def test_launcher_opens_the_app_otherwise(tmp_path):
    proc = _launch(str(tmp_path / "missing.jsonl"), "--screenshot", str(tmp_path / "x.png"))
    assert proc.returncode == 2 and "no such file" in proc.stderr  # the app's own message, no traceback
    assert "Traceback" not in proc.stderr


def test_spec_and_desktop_entry_name_real_files():
    spec = open(os.path.join(PACKAGING, "ftcurate.spec"), encoding="utf-8").read()
    assert '"launch.py"' in spec and '"resources"' in spec and "collect_submodules(\"ftcurate\")" in spec
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(os.path.join(PACKAGING, "ftcurate.desktop"), encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application" and section["Exec"].split()[0] in ("ftcurate-gui", "ftcurate")
    assert os.path.isfile(os.path.join(ROOT, "resources", "icons", section["Icon"] + ".svg"))
