"""The review window with a real project: edit in place, labels and notes, bulk decisions
on the filter (one undo step), filters by finding/label/score, sorting, the state
remembered per project. Driven with key presses offscreen; no sleeps."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from ftcurate.gui.main_window import MainWindow  # noqa: E402
from ftcurate.gui.models import RecordTableModel  # noqa: E402
from test_gui import dataset, focus_table, home, open_and_wait, window, write_jsonl  # noqa: E402,F401


def _report(ids):
    """A hand-made project scan report: a near-duplicate cluster, an outlier, a flag."""
    return {
        "version": 1, "index": "record_id", "records": len(ids),
        "near_duplicate_clusters": [{"indices": [ids[1], ids[2]], "keep": ids[1], "reason": "longest answer",
                                     "pairs": [{"a": ids[1], "b": ids[2], "similarity": 0.93}]}],
        "outliers": [{"index": ids[4], "score": 0.9}],
        "outlier_scores": {"model": "x", "cutoff": 0.5, "scores": [0.1 * (i % 10) for i in range(len(ids))]},
        "scanned_ids": list(ids),
        "flags": [{"index": ids[5], "flag": "refusal", "reason": "As an AI language model"}],
    }


def test_edit_in_place_is_validated_and_restorable(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    rid = window.current_id()
    original = project.get(rid).record.content_json()

    qtbot.keyClick(window.table, Qt.Key.Key_E)
    dialog = window.edit_dialog
    qtbot.waitUntil(dialog.isVisible, timeout=5000)
    # an assistant turn with no text is refused, with the reason shown
    dialog.set_turn_text(2, "")
    dialog.accept()
    assert dialog.isVisible() and "empty" in dialog.problems.text()
    assert not project.get(rid).is_edited
    dialog.set_turn_text(2, "The answer is zero, because 0 + 0 = 0.")
    dialog.accept()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=5000)

    sr = project.get(rid)
    assert sr.is_edited and sr.status == "edited"
    assert sr.record.messages[2].content == "The answer is zero, because 0 + 0 = 0."
    assert sr.original.content_json() == original  # the original is kept
    assert "because 0 + 0" in window.detail.toPlainText()
    assert window.model.index(window.model.row_of(rid), RecordTableModel.COL_STATUS).data() == "Edited"

    assert window.notes.restore_button.isEnabled()
    window.notes.restore_button.click()
    assert not project.get(rid).is_edited
    window.undo()  # undo the restore: the edit is back
    assert project.get(rid).is_edited


def test_labels_notes_and_label_filter(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    ids = [window.model.id_at(r) for r in range(3)]
    window.select_ids(ids[:2])
    qtbot.keyClick(window.table, Qt.Key.Key_L)
    assert window.notes.labels.hasFocus() or QApplication.focusWidget() is window.notes.labels
    window.notes.labels.setText("math, easy")
    qtbot.keyClick(window.notes.labels, Qt.Key.Key_Return)
    assert project.get(ids[0]).labels == ["easy", "math"] or set(project.get(ids[0]).labels) == {"math", "easy"}
    assert set(project.get(ids[1]).labels) == {"math", "easy"}
    assert project.get(ids[2]).labels == []
    assert project.peek_undo()["count"] == 2  # both records, one step

    # the label filter offers the label and shows the two records
    i = window.filter_bar.label.findData("math")
    assert i > 0
    with qtbot.waitSignal(window.filter_applied, timeout=5000) as blocker:
        window.filter_bar.label.setCurrentIndex(i)
    assert blocker.args == [2]

    # a note is saved when the box loses focus, for the record it was typed for
    window.select_row(0)
    rid = window.current_id()
    window.notes.note.setFocus()
    window.notes.note.setPlainText("check the arithmetic")
    window.select_row(1)  # moving on saves it
    assert project.get(rid).note == "check the arithmetic"
    assert project.get(window.current_id()).note == ""


def test_bulk_reject_on_filter_is_one_undo_step(qtbot, window, tmp_path):
    path = write_jsonl(tmp_path / "many.jsonl", 40, bad_line=False)
    project = open_and_wait(qtbot, window, path)
    ids = [int(i) for i in window.frame.ids]
    project.save_scan("quality", {}, _report(ids))
    window._set_report(_report(ids))
    window.search_box.setText("question 1")  # matches 1, 10-19: 11 records
    qtbot.waitUntil(lambda: window.model.rowCount() == 11, timeout=10000)
    focus_table(qtbot, window)
    qtbot.keyClick(window.table, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    assert project.status_counts()["rejected"] == 11
    assert project.peek_undo()["count"] == 11
    assert window.model.index(0, RecordTableModel.COL_STATUS).data() == "Rejected"
    window.undo()
    assert project.status_counts()["rejected"] == 0
    assert window.model.index(0, RecordTableModel.COL_STATUS).data() == "Unreviewed"

    # label everything shown: one undo step too
    window.ask_text = lambda *a: "batch-1"
    window.label_shown()
    assert len(project.ids_with_label("batch-1")) == 11


def test_filters_by_finding_and_score_and_sorting(qtbot, window, tmp_path):
    path = write_jsonl(tmp_path / "many.jsonl", 30, bad_line=False)
    open_and_wait(qtbot, window, path)
    ids = [int(i) for i in window.frame.ids]
    window._set_report(_report(ids))
    bar = window.filter_bar
    assert bar.flag.findData("near duplicate") > 0 and bar.flag.findData("refusal") > 0
    with qtbot.waitSignal(window.filter_applied, timeout=5000) as blocker:
        bar.flag.setCurrentIndex(bar.flag.findData("near duplicate"))
    assert blocker.args == [2]
    assert "near duplicate" in window.model.index(0, RecordTableModel.COL_FLAGS).data()
    # the detail pane says what the scan found, with the reason
    window.select_row(1)
    assert "Found by the scan" in window.detail.toPlainText()
    with qtbot.waitSignal(window.filter_applied, timeout=5000):
        bar.flag.setCurrentIndex(bar.flag.findData("any"))
    assert window.model.rowCount() == 4

    window.clear_filters()
    assert window.model.rowCount() == 30
    with qtbot.waitSignal(window.filter_applied, timeout=5000):
        bar.score.setValue(0.85)
    assert window.model.rowCount() == 3 + 1  # scores 0.9 from the list (3) and the flagged outlier's 0.9
    window.clear_filters()

    # sort by score, highest first: unscored last, then back by id
    window.table.sortByColumn(RecordTableModel.COL_SCORE, Qt.SortOrder.DescendingOrder)
    top = [float(window.model.index(r, RecordTableModel.COL_SCORE).data()) for r in range(4)]
    assert top == sorted(top, reverse=True) and top[0] == pytest.approx(0.9)
    window.table.sortByColumn(RecordTableModel.COL_INDEX, Qt.SortOrder.AscendingOrder)
    assert [window.model.id_at(r) for r in range(3)] == ids[:3]


def test_position_and_filters_are_restored_on_reopen(qtbot, home, tmp_path):
    path = write_jsonl(tmp_path / "many.jsonl", 20, bad_line=False)
    w = MainWindow(interactive=False, restore_geometry=False)
    qtbot.addWidget(w)
    w.show()
    project = open_and_wait(qtbot, w, path)
    project_path = project.path
    w.status_filter.setCurrentIndex(w.status_filter.findData("unreviewed"))
    w.select_row(7)
    rid = w.current_id()
    w.close_project()

    w2 = MainWindow(interactive=False, restore_geometry=False)
    qtbot.addWidget(w2)
    w2.show()
    open_and_wait(qtbot, w2, project_path)
    assert w2.status_filter.currentData() == "unreviewed"
    assert w2.current_id() == rid
    w.close()
    w2.close()


def test_theme_switch_keeps_the_window_usable(qtbot, window, dataset):
    open_and_wait(qtbot, window, dataset)
    window.set_theme("dark")
    qtbot.waitUntil(lambda: window.palette().color(window.backgroundRole()).lightness() < 128, timeout=5000)
    assert "background: #1e2125" in window.detail.styleSheet()
    window.set_theme("light")
    qtbot.waitUntil(lambda: window.palette().color(window.backgroundRole()).lightness() > 128, timeout=5000)
    window.set_theme("system")


def test_dark_palette_draws_disabled_widgets_dark_too():
    from PySide6.QtGui import QPalette

    from ftcurate.gui.theme import dark_palette

    p = dark_palette()
    disabled = QPalette.ColorGroup.Disabled
    for role in (QPalette.ColorRole.Button, QPalette.ColorRole.Window, QPalette.ColorRole.Base,
                 QPalette.ColorRole.Light):
        assert p.color(disabled, role).lightness() < 100, role
    assert p.color(disabled, QPalette.ColorRole.ButtonText) != p.color(QPalette.ColorGroup.Active,
                                                                       QPalette.ColorRole.ButtonText)


def test_review_keys_are_off_while_another_tab_is_in_front(qtbot, window, dataset):
    open_and_wait(qtbot, window, dataset)
    assert window.act_approve.isEnabled()
    if window.tabs.count() > 1:
        window.tabs.setCurrentIndex(1)
        assert not window.act_approve.isEnabled()
        window.tabs.setCurrentIndex(0)
        assert window.act_approve.isEnabled()


def test_big_dataset_is_browsable_from_the_file_while_it_imports(qtbot, window, tmp_path, monkeypatch):
    import ftcurate.gui.main_window as mw

    monkeypatch.setattr(mw, "PREVIEW_MIN_BYTES", 0)  # preview even this small file
    gate = __import__("threading").Event()
    real = mw.tasks.open_dataset

    def slow_import(*args, **kwargs):  # hold the import until the preview has been seen
        gate.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(mw.tasks, "open_dataset", slow_import)
    path = write_jsonl(tmp_path / "big.jsonl", 50, bad_line=False)
    with qtbot.waitSignal(window.preview_shown, timeout=30000) as blocker:
        window.open_path(str(path))
    assert blocker.args == [50]
    assert window.is_previewing() and window.table.model().rowCount() == 50
    assert "question 0" in window.detail.toPlainText()
    assert not window.act_approve.isEnabled()  # decisions wait for the project
    window.select_row(7)
    with qtbot.waitSignal(window.project_loaded, timeout=60000):
        gate.set()
    assert not window.is_previewing() and window.model.rowCount() == 50
    assert window.table.currentIndex().row() == 7  # still where the user was
    assert window.act_approve.isEnabled()


def _dupes_jsonl(path, n=12):
    """``n`` records where 1 and 2 are near copies (one word differs)."""
    import json

    lines = []
    for i in range(n):
        q = f"question {i}: explain how a binary search finds an item in a sorted list of numbers quickly"
        if i == 2:
            q = "question 1: explain how a binary search finds an item in a sorted list of numbers fast"
        lines.append(json.dumps({"messages": [{"role": "user", "content": q},
                                              {"role": "assistant", "content": f"Answer {i}: halve the range."}]}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_review_a_cluster_undo_and_export_from_the_window(qtbot, window, tmp_path):
    import json

    project = open_and_wait(qtbot, window, _dupes_jsonl(tmp_path / "dupes.jsonl"))
    ids = [int(i) for i in window.frame.ids]
    report = {"version": 1, "index": "record_id", "records": len(ids),
              "near_duplicate_clusters": [{"indices": [ids[1], ids[2]], "keep": ids[1], "reason": "longest answer",
                                           "pairs": [{"a": ids[1], "b": ids[2], "similarity": 0.9}]}]}
    project.save_scan("quality", {}, report)
    window._set_report(report)

    # the Duplicates tab: keep left with one key, in the real window
    window.show_tab("pairs")
    view = window.views["pairs"]
    qtbot.waitUntil(lambda: view.current_pair() is not None, timeout=5000)
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_1)
    assert (project.get(ids[1]).status, project.get(ids[2]).status) == ("approved", "rejected")
    assert window.model.index(window.model.row_of(ids[2]), RecordTableModel.COL_STATUS).data() == "Rejected"

    # undo from the window's Edit menu brings both back, in the view too
    window.undo()
    assert (project.get(ids[1]).status, project.get(ids[2]).status) == ("unreviewed", "unreviewed")
    qtbot.keyClick(view.table, Qt.Key.Key_1)  # and decide again

    # approve the rest from the Records tab (bulk on the "unreviewed" filter), then export
    window.show_tab("records")
    window.status_filter.setCurrentIndex(window.status_filter.findData("unreviewed"))
    qtbot.waitUntil(lambda: window.model.rowCount() == len(ids) - 2, timeout=5000)
    window.decide_shown("approve")
    assert project.status_counts()["approved"] == len(ids) - 1

    window.export_dialog()
    dialog = window.export_dialog_widget
    out = tmp_path / "out" / "clean.jsonl"
    out.parent.mkdir()
    dialog.set_destination(str(out))
    with qtbot.waitSignal(dialog.export_finished, timeout=60000) as blocker:
        dialog.start_export()
    assert blocker.args[0].written == len(ids) - 1
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(ids) - 1
    assert not any("fast" in r["messages"][0]["content"] for r in rows)  # the rejected copy is not there
    assert any(p.name.endswith(".card.md") for p in out.parent.iterdir())
    assert any(p.name.endswith(".decisions.csv") for p in out.parent.iterdir())


def test_the_pair_on_show_is_restored_on_reopen(qtbot, home, tmp_path):
    path = _dupes_jsonl(tmp_path / "dupes.jsonl")
    w = MainWindow(interactive=False, restore_geometry=False)
    qtbot.addWidget(w)
    w.show()
    project = open_and_wait(qtbot, w, path)
    ids = [int(i) for i in w.frame.ids]
    report = {"version": 1, "index": "record_id", "records": len(ids),
              "near_duplicate_clusters": [{"indices": [ids[1], ids[2], ids[3]], "keep": ids[1], "reason": "longest",
                                           "pairs": [{"a": ids[1], "b": ids[2], "similarity": 0.9},
                                                     {"a": ids[1], "b": ids[3], "similarity": 0.8}]}]}
    project.save_scan("quality", {}, report)
    project_path = project.path
    w.close_project()

    w.open_path(project_path)
    qtbot.waitUntil(lambda: w.project is not None and w.views["pairs"].current_pair() is not None, timeout=10000)
    w.show_tab("pairs")
    view = w.views["pairs"]
    view.next_pair()
    second = view.current_key()
    assert second is not None and second != [ids[1], ids[2]]
    w.close_project()

    w2 = MainWindow(interactive=False, restore_geometry=False)
    qtbot.addWidget(w2)
    w2.show()
    open_and_wait(qtbot, w2, project_path)
    assert w2.views["pairs"].current_key() == second
    assert w2.tabs.currentWidget() is w2._page_of(w2.views["pairs"])
    w.close()
    w2.close()


def test_findings_dock_belongs_to_the_records_tab(qtbot, window, tmp_path):
    project = open_and_wait(qtbot, window, _dupes_jsonl(tmp_path / "dupes.jsonl"))
    ids = [int(i) for i in window.frame.ids]
    project.save_scan("quality", {}, _report(ids))
    window._set_report(_report(ids))
    window._show_report(_report(ids))
    dock = window.findings_dock
    assert dock.isVisibleTo(window)
    window.show_tab("pairs")  # the other views get the room
    assert not dock.isVisibleTo(window)
    window.show_tab("records")
    assert dock.isVisibleTo(window)
    dock.close()  # the user closes it: it stays closed across tab switches
    window.show_tab("overview")
    window.show_tab("records")
    assert not dock.isVisibleTo(window)
    window.show_tab("overview")  # a new report while on another tab shows it on Records
    window._show_report(_report(ids))
    assert not dock.isVisibleTo(window)
    window.show_tab("records")
    assert dock.isVisibleTo(window)


def test_reviewer_name_is_remembered_and_logged_with_decisions(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    window.ask_text = lambda title, prompt, text="": "ana"
    window.ask_reviewer_name()
    assert window.reviewer_name() == "ana" and project.reviewer == "ana"
    assert "ana" in window.counts_label.text() and "logged under the name ana" in window.counts_label.toolTip()
    focus_table(qtbot, window)
    window.select_row(0)
    rid = window.current_id()
    qtbot.keyClick(window.table, Qt.Key.Key_A)
    assert project.get(rid).reviewer == "ana"
    assert project.history(rid)[0]["reviewer"] == "ana"
    # a project opened later gets the same name
    window.close_project()
    second = open_and_wait(qtbot, window, write_jsonl(dataset.parent / "other.jsonl", 4, bad_line=False))
    assert second.reviewer == "ana"
