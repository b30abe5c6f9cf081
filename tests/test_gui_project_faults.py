"""What the app shows for an interrupted import and for damaged records (issue 12, items 4 and
13): the Import problems dock and the status bar say the import did not finish and how to
finish it; a damaged record's pane says it is damaged, the rest stays reviewable with keys."""

from __future__ import annotations

import os
import sqlite3

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from test_gui import focus_table, home, window  # noqa: E402,F401
from test_store_faults_gui import make_project, open_and_wait  # noqa: E402


def test_an_unfinished_import_is_said_with_how_to_finish_it(qtbot, window, tmp_path):
    path = make_project(tmp_path)
    with sqlite3.connect(path, isolation_level=None) as c:  # as a killed import leaves it
        c.execute("UPDATE sources SET state = 'importing'")
    event = open_and_wait(qtbot, window, path)
    assert event[0] == "loaded", event
    assert window.problems_dock.isVisible()
    rows = [window.problems_model.index(r, 3).data() for r in range(window.problems_model.rowCount())]
    assert "incomplete_import" in rows
    assert "Import the same file again" in window.problems_model.index(rows.index("incomplete_import"), 4).data()
    assert "did not finish" in window.statusBar().currentMessage()


def test_a_damaged_record_says_so_and_the_rest_is_reviewable(qtbot, window, tmp_path):
    path = make_project(tmp_path)
    with sqlite3.connect(path, isolation_level=None) as c:
        c.execute("UPDATE records SET content = 'not json' WHERE idx = 1")
    event = open_and_wait(qtbot, window, path)
    project = event[1]
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_J)  # to record 1
    assert "damaged" in window.detail.toPlainText()
    qtbot.keyClick(window.table, Qt.Key.Key_J)
    qtbot.keyClick(window.table, Qt.Key.Key_A)  # record 2 is fine
    assert project.status_counts().get("approved") == 1
