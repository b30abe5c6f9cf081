"""The floors of the house: core/ and train/ never import Qt (or the GUI); nothing imports upward."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "qtpy")


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the package
                pkg = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                yield ".".join(pkg + ((node.module,) if node.module else ()))
            elif node.module:
                yield node.module


def _violations(floor: str, forbidden: tuple):
    bad = []
    for path in (ROOT / "ftcurate" / floor).rglob("*.py"):
        for name in _imports(path):
            if name.split(".")[0] in QT or any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


def test_core_imports_no_qt_train_gui_or_cli():
    assert _violations("core", ("ftcurate.gui", "ftcurate.train", "ftcurate.cli")) == []


def test_train_imports_no_qt_gui_or_cli():
    assert _violations("train", ("ftcurate.gui", "ftcurate.cli")) == []


def test_importing_core_loads_no_qt_at_runtime():
    code = ("import sys, ftcurate.core.io.formats, ftcurate.core.io.validate, ftcurate.core.project.store, "
            "ftcurate.core.io.ingest, ftcurate.core.io.export, ftcurate.train; "
            "print([m for m in sys.modules if m.split('.')[0] in %r])" % (QT,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
