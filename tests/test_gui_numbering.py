"""The window names records as the table and ``ftcurate decide`` do (issue 11, item 4): after
an import that dropped rows, the detail pane's "Found by the scan" and the Findings dock say
"same as 8" for the record in row 8 of the file, not its database id. Keys only, offscreen."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from test_gui import focus_table, home, open_and_wait, window  # noqa: E402,F401
from test_numbering import FAST, alpaca_with_dropped_rows  # noqa: E402


def test_detail_pane_and_findings_use_file_numbers(qtbot, window, tmp_path):
    window.scan_settings = FAST
    project = open_and_wait(qtbot, window, alpaca_with_dropped_rows(tmp_path / "alpaca.json"))
    focus_table(qtbot, window)
    with qtbot.waitSignal(window.scan_finished, timeout=180_000):
        qtbot.keyClick(window.table, Qt.Key.Key_S,
                       Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    focus_table(qtbot, window)
    # walk down with J to the record that is row 7 of the file
    for _ in range(10):
        if project.get(window.current_id()).index == 7:
            break
        qtbot.keyClick(window.table, Qt.Key.Key_J)
    sr = project.get(window.current_id())
    assert sr.index == 7 and sr.id != 7
    text = window.detail.toPlainText()
    assert "Record 7" in text and "same as 8" in text, text
    shown = {window.findings_model.index(r, 1).data() for r in range(window.findings_model.rowCount())}
    assert {"7", "8"} <= {str(s) for s in shown}, shown
