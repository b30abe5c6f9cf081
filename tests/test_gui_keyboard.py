"""Keyboard-only review that never turns typing into decisions (issue 11, items 1 and 2):
single keys act only where the user can see the focus, a multi-selection says so, Tab moves
between the parts of a tab (not between rows), and every tab has a key. Driven with key
presses on the focused widget, offscreen; no sleeps."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QPalette  # noqa: E402
from PySide6.QtWidgets import QPlainTextEdit  # noqa: E402

from ftcurate.gui.keys import focus_is_seen  # noqa: E402
from test_gui import dataset, focus_table, home, open_and_wait, window, write_jsonl  # noqa: E402,F401
from gui_keys import focused, type_text  # noqa: E402


def test_two_selected_rows_are_said_and_the_note_box_is_off(qtbot, window, dataset):
    open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert len(window.selected_ids()) == 2
    assert "2 records selected" in window.detail.toPlainText()
    note = window.notes.note
    assert not note.isEnabled()
    assert "one record at a time" in note.placeholderText()
    assert "2 selected" in window.notes.labels.placeholderText()
    # E (edit) is for one record: with two selected it opens nothing and says why
    qtbot.keyClick(window.table, Qt.Key.Key_E)
    assert getattr(window, "edit_dialog", None) is None
    assert "one record at a time" in window.statusBar().currentMessage()
    # back to one row: the pane shows one record again
    qtbot.keyClick(window.table, Qt.Key.Key_Down)
    assert len(window.selected_ids()) == 1
    assert "records selected" not in window.detail.toPlainText()
    assert note.isEnabled()


@pytest.mark.parametrize("theme_key", ["light", "dark"])
def test_a_disabled_note_box_looks_disabled(qtbot, window, theme_key):
    window.set_theme(theme_key)
    note = window.notes.note
    qtbot.waitUntil(lambda: (note.palette().color(QPalette.ColorRole.Window).lightness() < 128) == (theme_key == "dark"))
    pal = note.palette()
    for role in (QPalette.ColorRole.Base, QPalette.ColorRole.Text):
        assert pal.color(QPalette.ColorGroup.Disabled, role) != pal.color(QPalette.ColorGroup.Active, role), role
    window.set_theme("light")


def test_tab_moves_between_parts_not_rows(qtbot, window, dataset):
    open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    row = window.table.currentIndex().row()
    qtbot.keyClick(window.table, Qt.Key.Key_Tab)
    assert focused() is not window.table and window.table.currentIndex().row() == row
    # from the note box, Tab leaves the box instead of typing a tab character
    window.notes.note.setFocus()
    qtbot.waitUntil(lambda: focused() is window.notes.note)
    qtbot.keyClick(window.notes.note, Qt.Key.Key_Tab)
    assert focused() is not window.notes.note and "\t" not in window.notes.note.toPlainText()
    # Tab never lands where the user cannot see it
    for _ in range(25):
        assert focus_is_seen(focused()) or isinstance(focused(), QPlainTextEdit) or focused().inherits("QLineEdit") \
            or focused().inherits("QAbstractSpinBox") or focused().inherits("QComboBox"), focused()
        qtbot.keyClick(focused(), Qt.Key.Key_Tab)


def test_typing_while_the_focus_is_out_of_sight_decides_nothing(qtbot, window, dataset):
    """The reported case: the focus slid into a table the user could not see and a typed note
    ("Edit Ross…") ran as E (edit) and R (reject). Single keys there now do nothing, and say why."""
    project = open_and_wait(qtbot, window, dataset)
    assert window.problems_dock.isVisible()  # the file has a bad line
    window.select_ids(project.ids()[:2])
    hidden = window.problems_view
    hidden.setFocus()
    qtbot.waitUntil(lambda: focused() is hidden)
    hidden.setMaximumHeight(0)  # squeezed out of sight, as a collapsed dock is; it keeps the focus
    qtbot.waitUntil(lambda: hidden.visibleRegion().isEmpty())
    assert focused() is hidden and not focus_is_seen(hidden)
    before = project.status_counts()
    type_text(qtbot, "Edit Ross: recheck")
    assert project.status_counts() == before
    assert not project.can_undo()
    assert getattr(window, "edit_dialog", None) is None
    assert "not done" in window.statusBar().currentMessage()
    # the same keys on the visible table do act
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_R)
    assert project.status_counts().get("rejected") == 2


def test_single_keys_never_fire_in_text_boxes(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_L)  # L puts the focus in the labels box
    qtbot.waitUntil(lambda: focused() is window.notes.labels)
    type_text(qtbot, "area")
    assert window.notes.labels.text().endswith("area")
    assert not project.can_undo()
    window.notes.note.setFocus()
    qtbot.waitUntil(lambda: focused() is window.notes.note)
    type_text(qtbot, "Really? Nearly all")
    assert window.notes.note.toPlainText() == "Really? Nearly all"
    assert project.status_counts().get("approved", 0) == 0 and project.status_counts().get("rejected", 0) == 0


def test_every_tab_has_a_key_and_the_keys_are_listed(qtbot, window, dataset):
    open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    n = window.tabs.count()
    assert n == 6
    for i in reversed(range(n)):
        qtbot.keyClick(focused(), Qt.Key(Qt.Key.Key_1 + i), Qt.KeyboardModifier.AltModifier)
        assert window.tabs.currentIndex() == i
        page = window.tabs.widget(i)
        assert focused() is not None and (focused() is page or page.isAncestorOf(focused())), (i, focused())
    # Ctrl+Tab / Ctrl+PgDown step forward, Ctrl+Shift+Tab / Ctrl+PgUp back, wrapping around
    qtbot.keyClick(focused(), Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 1
    qtbot.keyClick(focused(), Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 2
    qtbot.keyClick(focused(), Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == 1
    qtbot.keyClick(focused(), Qt.Key.Key_Backtab,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.tabs.currentIndex() == 0
    qtbot.keyClick(focused(), Qt.Key.Key_PageUp, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentIndex() == n - 1
    # listed in View ▸ Go to and in the F1 sheet
    texts = [a.text() for a in window.tab_menu.actions() if not a.isSeparator()]
    assert len(texts) == n + 2 and any("Records" in t for t in texts) and any("Training" in t for t in texts)
    window.show_shortcuts()
    sheet = window._shortcuts_dialog.table
    rows = {sheet.item(r, 0).text(): sheet.item(r, 1).text() for r in range(sheet.rowCount())}
    assert rows.get("Alt+1") == "Go to the Records tab"
    assert any("Ctrl+Tab" in k for k in rows) and any("Ctrl+PgDown" in k for k in rows)
    assert rows.get("A") == "Approve"


def test_the_reviewer_name_is_asked_once_before_the_first_decision(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    window.ask_reviewer_first = True  # off in screenshots and for the other tests
    asked = []

    def answer(title, prompt, text=""):
        asked.append(prompt)
        return "Ana"

    window.ask_text = answer
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_A)
    assert len(asked) == 1 and "decision log" in asked[0]
    assert project.reviewer == "Ana" and window.reviewer_name() == "Ana"
    assert project.history()[0]["reviewer"] == "Ana"
    qtbot.keyClick(window.table, Qt.Key.Key_R)
    assert len(asked) == 1  # once


def test_a_cancelled_name_question_is_not_asked_again(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    window.ask_reviewer_first = True
    asked = []
    window.ask_text = lambda *a, **k: asked.append(1)  # cancelled: None
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_A)
    qtbot.keyClick(window.table, Qt.Key.Key_A)
    assert asked == [1] and project.status_counts().get("approved") == 2


def test_opening_a_record_from_another_view_shows_the_records_tab(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    qtbot.keyClick(focused(), Qt.Key.Key_5, Qt.KeyboardModifier.AltModifier)  # Overview
    assert window.tabs.currentIndex() == 4
    rid = project.ids()[3]
    window.views["overview"].record_requested.emit(rid)  # what a view's "open in Records" link does
    assert window.tabs.currentWidget() is window.records_page
    assert window.current_id() == rid and focused() is window.table
