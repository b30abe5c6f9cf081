"""A file that cannot be opened leaves the user where they were (issue 11, item 10): the open
project stays open, and no stale "Reading… / Cancel" bar stays behind the error."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox  # noqa: E402

from ftcurate.gui.main_window import MainWindow  # noqa: E402
from test_gui import dataset, focus_table, home, open_and_wait, window  # noqa: E402,F401


def choose_in_file_dialog(monkeypatch, path) -> None:
    """The system file dialog, answered with ``path`` (it cannot be driven offscreen)."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))


def test_a_failed_open_keeps_the_open_project(qtbot, window, dataset, tmp_path, monkeypatch):
    project = open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_A)  # a decision made before
    bad = tmp_path / "notes.json"
    bad.write_text("these are my notes, not a dataset\n", encoding="utf-8")
    choose_in_file_dialog(monkeypatch, bad)
    with qtbot.waitSignal(window.load_failed, timeout=60_000):
        qtbot.keyClick(window.table, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert window.project is project and not project.closed
    assert window.stack.currentWidget() is window.review_page
    assert window.model.rowCount() == project.count()
    assert project.status_counts().get("approved") == 1
    qtbot.waitUntil(lambda: not window.progress_panel.isVisible())
    # the open project is still usable with keys
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_R)
    assert project.status_counts().get("rejected") == 1


def test_reopening_the_open_dataset_just_shows_it(qtbot, window, dataset, monkeypatch):
    project = open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    choose_in_file_dialog(monkeypatch, dataset)
    with qtbot.waitSignal(window.project_loaded, timeout=60_000) as got:
        qtbot.keyClick(window.table, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    assert got.args[0] is project and window.project is project and not project.closed
    assert "already open" in window.statusBar().currentMessage()


def test_no_progress_bar_behind_the_error_box(qtbot, home, dataset, tmp_path, monkeypatch):
    w = MainWindow(interactive=True, restore_geometry=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    seen = []

    def fake_exec(box):
        seen.append((box.text(), w.progress_panel.isVisible(), w.is_loading()))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    bad = tmp_path / "notes.json"
    bad.write_text("these are my notes, not a dataset\n", encoding="utf-8")
    choose_in_file_dialog(monkeypatch, bad)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=5000)
    qtbot.keyClick(QApplication.focusWidget() or w, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: bool(seen), timeout=60_000)
    text, bar_visible, loading = seen[0]
    assert not bar_visible and not loading, seen
    assert w.start_page.message.text() == ""
    w.close()
