"""A project's label set with keys, its guidelines beside the record and in the F1 sheet, and
saved views (issue 11 capabilities), driven with keys on the focused widgets, offscreen."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from ftcurate.core.project import annotation as ann  # noqa: E402
from ftcurate.gui.models import RecordTableModel  # noqa: E402
from test_gui import dataset, focus_table, home, open_and_wait, window  # noqa: E402,F401
from gui_keys import activate, focused, type_text  # noqa: E402


def test_label_set_dialog_and_label_keys(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    window.act_label_set.trigger()  # Edit ▸ Label set…
    dialog = window.label_set_dialog
    activate(qtbot, dialog)
    qtbot.keyClick(dialog.add_button, Qt.Key.Key_Space)  # Add label: a new row, its name cell current
    table = dialog.table
    table.setFocus()
    type_text(qtbot, "math")  # typing starts editing the name
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: table.item(0, 0).text() == "math")  # Enter commits (queued by Qt)
    qtbot.keyClick(table, Qt.Key.Key_Right)
    qtbot.keyClick(table, Qt.Key.Key_Right)  # the Key column
    type_text(qtbot, "a")  # A is a review key: refused, said, OK off
    qtbot.keyClick(focused(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "taken by the review keys" in dialog.problem.text())
    assert not dialog.box.button(dialog.box.StandardButton.Ok).isEnabled()
    qtbot.keyClick(table, Qt.Key.Key_F2)
    editor = focused()
    editor.selectAll()
    qtbot.keyClicks(editor, "1")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.problem.text() == "")
    ok = dialog.box.button(dialog.box.StandardButton.Ok)
    ok.setFocus()
    qtbot.keyClick(ok, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert [(d.name, d.key) for d in ann.label_set(project)] == [("math", "1")]
    assert window.filter_bar.label.findData("math") >= 0  # filterable before any record has it

    # the key toggles the label on the selection, one undo step each
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    ids = window.selected_ids()
    assert len(ids) == 2
    qtbot.keyClick(window.table, Qt.Key.Key_1)
    assert all("math" in project.get(i).labels for i in ids)
    col = RecordTableModel.COL_LABELS
    assert not window.table.horizontalHeader().isSectionHidden(col)
    row = window.model.row_of(ids[0])
    assert window.model.index(row, col).data() == "math"
    assert window.model.index(row, col).data(Qt.ItemDataRole.DecorationRole) is not None  # its colour
    qtbot.keyClick(window.table, Qt.Key.Key_1)  # all have it: taken away
    assert not any(project.get(i).labels for i in ids)
    qtbot.keyClick(window.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert all("math" in project.get(i).labels for i in ids)
    # typing "1" in the search box is text, not a label key
    window.filter_bar.search.setFocus()
    qtbot.keyClicks(window.filter_bar.search, "1")
    assert all("math" in project.get(i).labels for i in ids)
    # listed in the F1 sheet
    window.show_shortcuts()
    sheet = window._shortcuts_dialog.table
    rows = {sheet.item(r, 0).text(): sheet.item(r, 1).text() for r in range(sheet.rowCount())}
    assert rows.get("1") == "Toggle the label 'math' on the selected records"


def test_guidelines_beside_the_record_and_in_the_sheet(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    window.act_edit_guidelines.trigger()  # Edit ▸ Guidelines…
    dialog = window.guidelines_dialog
    activate(qtbot, dialog)
    dialog.editor.setFocus()
    qtbot.keyClicks(dialog.editor, "# Approve")
    qtbot.keyClick(dialog.editor, Qt.Key.Key_Return)
    qtbot.keyClicks(dialog.editor, "- answers that show the sum")
    assert "Approve" in dialog.preview.toPlainText()
    qtbot.keyClick(dialog.editor, Qt.Key.Key_Tab)  # Tab leaves the editor: preview, then the buttons
    for _ in range(4):
        if getattr(focused(), "text", lambda: "")() == "Save":
            break
        qtbot.keyClick(focused(), Qt.Key.Key_Tab)
    assert focused().text() == "Save"
    qtbot.keyClick(focused(), Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert ann.guidelines(project).startswith("# Approve")
    assert window.guidelines_dock.isVisible()
    assert "answers that show the sum" in window.guidelines_view.toPlainText()
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_F2)  # hides and shows the panel
    assert not window.guidelines_dock.isVisible()
    window.show_shortcuts()
    assert "answers that show the sum" in window._shortcuts_dialog.guidelines.toPlainText()


def test_saved_views_recall_filter_and_sort(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_A)
    status = window.filter_bar.status
    status.setFocus()
    status.setCurrentIndex(status.findData("approved"))
    qtbot.waitUntil(lambda: window.model.rowCount() == 1)
    window.ask_text = lambda *a, **k: "approved ones"
    qtbot.keyClick(focused(), Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert "approved ones" in ann.saved_views(project)
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.model.rowCount() == project.count())
    window._fill_saved_views_menu()
    entry = next(a for a in window.saved_views_menu.actions() if a.text() == "approved ones")
    entry.trigger()  # View ▸ Saved views ▸ approved ones
    qtbot.waitUntil(lambda: window.model.rowCount() == 1)
    assert window.filter_bar.state()["status"] == "approved"
