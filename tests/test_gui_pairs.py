"""GUI tests of the Duplicates and Leakage tabs (pytest-qt, offscreen): pairs decided with
keys, statuses checked in the store, undo from outside plus refresh, the bulk "accept
suggestions" as one undo step, leaks removed or moved to test, empty states and errors.

The project and its report are built by hand (no scan runs). Waiting is always on a signal
or a condition, never on a fixed sleep.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt, QUrl  # noqa: E402
from PySide6.QtWidgets import QApplication, QPushButton, QToolButton, QVBoxLayout, QWidget  # noqa: E402

from ftcurate.core.project.records import Message, Record, Source  # noqa: E402
from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.gui import leak_view as lv  # noqa: E402
from ftcurate.gui import pair_view as pv  # noqa: E402
from ftcurate.gui.leak_view import LeaksModel, LeakView  # noqa: E402
from ftcurate.gui.pair_view import PairsModel, PairView  # noqa: E402

TRAIN = [
    ("How many apples does Tom have if he buys 3 bags with 4 apples in each bag?",
     "Tom buys 3 bags with 4 apples in each, so he has 3 x 4 = 12 apples. The answer is 12."),
    ("How many apples does Tom have if he buys three bags with 4 apples in each bag?",
     "Tom buys 3 bags with 4 apples in each, so he has 12 apples."),
    ("How many apples does Tom have when he buys 3 bags with 4 apples in every bag?",
     "He has 3 x 4 = 12 apples."),
    ("What is the capital of France?", "Paris."),
    ("What is the capital of France?", "Paris."),
    ("Write a haiku about autumn.", "Red leaves drift and fall / the cold wind hums through bare trees / "
                                    "the year exhales slow"),
    ("Compose a haiku on the fall season.", "Maple leaves let go / grey geese write on the cold sky / "
                                            "autumn clears its throat"),
    ("A train leaves at 3 pm and travels 60 miles an hour. How far has it gone at 5 pm?",
     "Two hours at 60 miles an hour: 120 miles."),
    ("Sara reads 20 pages a day. How many pages does she read in a week?",
     "She reads 20 pages a day for 7 days, 20 x 7 = 140 pages in a week, so the answer is 140."),
    ("Name a primary colour.", "Red."),
]
TEST = [
    ("A train leaves at 3 pm and travels 60 miles an hour. How far has it gone at 5 pm?", "120 miles."),
    ("Sara reads 25 pages a day. How many pages does she read in a week?",
     "She reads 25 pages a day for 7 days, 25 x 7 = 175 pages in a week, so the answer is 175."),
    ("What is 2 + 2?", "4"),
]


def _record(q: str, a: str, i: int, split: str) -> Record:
    return Record(messages=[Message("system", "You are a helpful tutor."), Message("user", q),
                            Message("assistant", a)], source=Source(f"{split}.jsonl", i + 1, i), split=split)


def build_project(tmp: Path) -> Project:
    """Ten training records (ids 1-10) and three test records (ids 11-13)."""
    p = Project.create(tmp / "pairs.ftcurate", reviewer="tester")
    sid = p.add_source(tmp / "train.jsonl", "jsonl", total=len(TRAIN))
    p.add_records(sid, (_record(q, a, i, "train") for i, (q, a) in enumerate(TRAIN)))
    tid = p.add_source(tmp / "test.jsonl", "jsonl", role="test", total=len(TEST))
    p.add_records(tid, (_record(q, a, i, "test") for i, (q, a) in enumerate(TEST)))
    return p


def REPORT(project: Project) -> dict:  # noqa: N802 - reads like the constant it stands for
    """A hand-written project scan report over :func:`build_project`'s records."""
    assert project.ids(split="train") == list(range(1, 11))
    return {
        "version": 1, "index": "record_id", "records": 10, "test_records": 3,
        "near_duplicate_clusters": [{"indices": [1, 2, 3], "keep": 1, "reason": "longest answer (84 chars)",
                                     "pairs": [{"a": 1, "b": 2, "similarity": 0.91},
                                               {"a": 1, "b": 3, "similarity": 0.86},
                                               {"a": 2, "b": 3, "similarity": 0.84}]}],
        "exact_duplicates": [[4, 5]],
        "semantic_duplicates": [{"a": 6, "b": 7, "similarity": 0.962}],
        "leakage": [{"index": 8, "test_index": 11, "method": "exact", "score": 1.0, "field": "prompt"},
                    {"index": 9, "test_index": 12, "method": "ngram", "score": 0.62, "field": "answer"}],
    }


@pytest.fixture
def project(tmp_path):
    p = build_project(tmp_path)
    yield p
    p.close()


def _show(qtbot, view: QWidget) -> None:
    view.resize(1260, 700)
    view.show()
    qtbot.waitExposed(view)
    view.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is view.window(), timeout=5000)


@pytest.fixture
def pairs(qtbot, project):
    view = PairView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    view.set_report(REPORT(project))
    _show(qtbot, view)
    view.table.setFocus()
    return view


@pytest.fixture
def leaks(qtbot, project):
    view = LeakView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    view.set_report(REPORT(project))
    _show(qtbot, view)
    view.table.setFocus()
    return view


def status(project: Project, rid: int) -> str:
    return project.get(rid).status


def key(qtbot, view, k, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Press a key where the focus is (inside the view) and wait for the decision it saves."""
    qtbot.keyClick(QApplication.focusWidget() or view.table, k, modifier)


# -- the Duplicates tab -------------------------------------------------------------------------------------


def test_pairs_listed_and_shown_side_by_side(pairs):
    model = pairs.model
    got = [(p.left, p.right, p.kind) for p in pairs.pairs()]
    assert got == [(4, 5, "exact"), (1, 2, "near"), (1, 3, "near"), (6, 7, "semantic")]
    assert pairs.stack.currentWidget() is pairs.splitter
    assert pairs.current_row() == 0
    # record numbers as people see them (index in the file), ★ on the suggested keeper
    assert model.index(1, PairsModel.COL_LEFT).data() == "0 ★"
    assert model.index(1, PairsModel.COL_RIGHT).data() == "1"
    assert model.index(1, PairsModel.COL_SIM).data() == "0.91"
    assert "Unreviewed" in model.index(1, PairsModel.COL_RIGHT).data(Qt.ItemDataRole.ToolTipRole)
    assert "duplicate pairs" in pairs.summary_label.text() and "4 still to decide" in pairs.summary_label.text()

    pairs.select_row(1)
    left, right = pairs.left_pane.toPlainText(), pairs.right_pane.toPlainText()
    assert "3 bags with 4 apples" in left and "three bags" in right
    assert "suggested keeper" in left and "suggested keeper" not in right
    assert "User" in left and "Assistant" in right  # roles shown
    # word differences: deleted words red on the left, inserted ones green on the right
    deleted, inserted = pv._DIFF_COLORS[False]
    assert deleted in pairs.left_pane.toHtml().lower() and inserted in pairs.right_pane.toHtml().lower()
    info = pairs.info_label.text()
    assert "Pair 2 of 4" in info and "near duplicate" in info and "0.91" in info and "record 0" in info


def test_keep_left_with_a_key_advances_and_undo_refreshes(qtbot, pairs, project):
    changed: list = []
    pairs.records_changed.connect(changed.append)
    pairs.select_row(1)  # records 1 (keeper) and 2
    with qtbot.waitSignal(pairs.records_changed, timeout=5000):
        key(qtbot, pairs, Qt.Key.Key_1)
    assert (status(project, 1), status(project, 2)) == ("approved", "rejected")
    assert project.peek_undo()["action"] == "keep_left" and project.peek_undo()["count"] == 2
    assert sorted(changed[-1]) == [1, 2]
    assert pairs.model.index(1, PairsModel.COL_DECISION).data() == "kept left"
    assert pairs.current_row() == 2  # moved on to the next pair to decide
    assert "3 still to decide" in pairs.summary_label.text()

    # undo elsewhere (the main window's Ctrl+Z), then refresh: the view reads the store again
    project.undo()
    pairs.refresh([1, 2])
    assert (status(project, 1), status(project, 2)) == ("unreviewed", "unreviewed")
    assert pairs.model.index(1, PairsModel.COL_DECISION).data() == ""
    assert "4 still to decide" in pairs.summary_label.text()

    # the other decisions, by key, on the current pair (1, 3)
    with qtbot.waitSignal(pairs.records_changed, timeout=5000):
        key(qtbot, pairs, Qt.Key.Key_2)
    assert (status(project, 1), status(project, 3)) == ("rejected", "approved")
    assert project.peek_undo()["action"] == "keep_right"
    pairs.select_row(3)
    with qtbot.waitSignal(pairs.records_changed, timeout=5000):
        key(qtbot, pairs, Qt.Key.Key_B)
    assert (status(project, 6), status(project, 7)) == ("approved", "approved")
    pairs.select_row(0)
    with qtbot.waitSignal(pairs.records_changed, timeout=5000):
        key(qtbot, pairs, Qt.Key.Key_X)
    assert (status(project, 4), status(project, 5)) == ("rejected", "rejected")
    assert project.peek_undo()["action"] == "reject_both"
    # Ctrl+Left keeps the left one too
    pairs.select_row(1)
    with qtbot.waitSignal(pairs.records_changed, timeout=5000):
        key(qtbot, pairs, Qt.Key.Key_Left, Qt.KeyboardModifier.ControlModifier)
    assert (status(project, 1), status(project, 2)) == ("approved", "rejected")
    assert "Every pair is decided" in pairs.summary_label.text()


def test_navigation_keys(qtbot, pairs):
    assert pairs.current_row() == 0
    key(qtbot, pairs, Qt.Key.Key_Space)
    assert pairs.current_row() == 1
    key(qtbot, pairs, Qt.Key.Key_PageDown)
    assert pairs.current_row() == 2
    key(qtbot, pairs, Qt.Key.Key_PageUp)
    assert pairs.current_row() == 1
    key(qtbot, pairs, Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    assert pairs.current_row() == 0
    key(qtbot, pairs, Qt.Key.Key_PageUp)  # stays at the first
    assert pairs.current_row() == 0
    assert "Pair 1 of 4" in pairs.info_label.text()


def test_accept_suggestions_is_one_undo_step(qtbot, pairs, project):
    project.approve(7)  # a person's decision: never changed by the bulk step
    pairs.refresh([7])
    pairs.set_threshold(0.85)
    assert pairs.threshold_slider.value() == 85
    # the semantic pair (6, 7) is a cluster of two: 7, kept by a person, stands in for its keeper
    assert "3 clusters: approve 2, reject 4 records" in pairs.plan_label.text()
    assert pairs.accept_button.isEnabled()
    with qtbot.waitSignal(pairs.records_changed, timeout=5000) as blocker:
        qtbot.mouseClick(pairs.accept_button, Qt.MouseButton.LeftButton)
    assert sorted(blocker.args[0]) == [1, 2, 3, 4, 5, 6]
    assert [status(project, i) for i in (1, 2, 3, 4, 5, 6, 7)] == [
        "approved", "rejected", "rejected", "approved", "rejected", "rejected", "approved"]
    assert project.peek_undo()["action"] == "accept_suggestions" and project.peek_undo()["count"] == 6
    assert "nothing left to change" in pairs.plan_label.text() and not pairs.accept_button.isEnabled()

    project.undo()  # one step undoes it all
    pairs.refresh()
    assert [status(project, i) for i in (1, 2, 3, 4, 5)] == ["unreviewed"] * 5
    assert status(project, 7) == "approved"
    assert pairs.model.index(0, PairsModel.COL_DECISION).data() == ""
    assert pairs.accept_button.isEnabled()

    # a higher threshold leaves the near cluster (lowest pair 0.86) alone
    pairs.threshold_slider.setValue(90)
    assert pairs.threshold() == 0.9
    assert "2 clusters: approve 1, reject 2 records" in pairs.plan_label.text()
    pairs.threshold_slider.setValue(97)
    assert "1 cluster: approve 1, reject 1 record." in pairs.plan_label.text()


def test_double_click_and_links_ask_to_open_the_record(qtbot, pairs):
    asked: list = []
    pairs.record_requested.connect(asked.append)
    index = pairs.model.index(1, PairsModel.COL_RIGHT)
    rect = pairs.table.visualRect(index)
    # a click first: Qt 6 item views only report a double click on the index that was pressed
    qtbot.mouseClick(pairs.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(pairs.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert asked == [2]
    pairs.left_pane.anchorClicked.emit(QUrl("record:4"))
    assert asked == [2, 4]


def test_keys_only_work_inside_the_view(qtbot, project):
    host = QWidget()
    qtbot.addWidget(host)
    lay = QVBoxLayout(host)
    other = QPushButton("elsewhere")
    view = PairView(interactive=False)
    lay.addWidget(other)
    lay.addWidget(view)
    view.set_project(project)
    view.set_report(REPORT(project))
    _show(qtbot, host)
    other.setFocus()
    qtbot.waitUntil(other.hasFocus, timeout=5000)
    qtbot.keyClick(other, Qt.Key.Key_1)
    qtbot.keyClick(other, Qt.Key.Key_X)
    assert status(project, 4) == status(project, 5) == "unreviewed"
    view.table.setFocus()
    qtbot.waitUntil(view.table.hasFocus, timeout=5000)
    with qtbot.waitSignal(view.records_changed, timeout=5000):
        qtbot.keyClick(view.table, Qt.Key.Key_1)
    assert (status(project, 4), status(project, 5)) == ("approved", "rejected")


def test_actions_have_keys_and_every_button_a_tooltip(pairs, leaks):
    for view in (pairs, leaks):
        acts = view.actions()
        assert acts and all(a.shortcuts() for a in acts)
        assert all(a.shortcutContext() == Qt.ShortcutContext.WidgetWithChildrenShortcut for a in acts)
        buttons = view.findChildren(QToolButton) + view.findChildren(QPushButton)
        assert buttons and all(b.toolTip() for b in buttons), [b.text() for b in buttons if not b.toolTip()]
    keys = {a.property("help"): [s.toString() for s in a.shortcuts()] for a in pairs.actions()}
    assert keys["Duplicate pairs: Approve left, reject right"][0] == "1"
    assert keys["Duplicate pairs: next pair"] == ["Space", "PgDown"]


def test_empty_states(qtbot, project):
    view = PairView(interactive=False)
    qtbot.addWidget(view)
    assert view.stack.currentWidget() is view.empty_label and view.empty_label.text() == pv.NO_PROJECT_TEXT
    assert not any(a.isEnabled() for a in view.actions())
    view.set_project(project)
    assert view.empty_label.text() == pv.NO_REPORT_TEXT
    assert "Scan ▸ Run quality scan" in view.empty_label.text()
    view.set_report({"version": 1, "near_duplicate_clusters": [], "exact_duplicates": []})
    assert view.empty_label.text() == pv.NO_PAIRS_TEXT
    view.set_report(REPORT(project))
    assert view.stack.currentWidget() is view.splitter and view.model.rowCount() == 4
    view.set_project(None)
    assert view.empty_label.text() == pv.NO_PROJECT_TEXT and view.model.rowCount() == 0
    view.refresh()  # nothing to do, no error

    leaks = LeakView(interactive=False)
    qtbot.addWidget(leaks)
    assert leaks.empty_label.text() == lv.NO_PROJECT_TEXT
    leaks.set_project(project)
    assert leaks.empty_label.text() == lv.NO_REPORT_TEXT
    leaks.set_report({"version": 1, "test_records": 0, "leakage": []})
    assert leaks.empty_label.text() == lv.NO_HELD_OUT_TEXT
    leaks.set_report({"version": 1, "test_records": 3, "leakage": []})
    assert leaks.empty_label.text() == lv.NO_LEAKS_TEXT


def test_a_failing_store_call_is_reported_not_raised(qtbot, pairs, project, monkeypatch):
    def locked(*args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(project, "set_statuses", locked)
    errors: list = []
    pairs.error_reported.connect(lambda *a: errors.append(a))
    changed: list = []
    pairs.records_changed.connect(changed.append)
    pairs.keep_left()
    assert errors and errors[0][0] == "Could not save the decision"
    assert "database is locked" in errors[0][1] and "Traceback" in errors[0][2]
    assert not changed and status(project, 4) == "unreviewed"
    assert pairs.current_row() == 0  # stays on the pair


def test_a_stale_report_naming_missing_records(qtbot, project):
    view = PairView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    view.set_report({"exact_duplicates": [[4, 999]]})
    assert view.model.rowCount() == 1
    assert "not in the project any more" in view.right_pane.toPlainText()
    assert view.model.index(0, PairsModel.COL_RIGHT).data() == "gone"  # never a database id
    assert "999" not in view.right_pane.toPlainText() + view.info_label.text()


# -- the Leakage tab -----------------------------------------------------------------------------------------


def test_leaks_remove_and_move_to_test(qtbot, leaks, project):
    model = leaks.model
    assert [(p.train, p.test, p.method) for p in leaks.pairs()] == [(8, 11, "exact"), (9, 12, "ngram")]
    assert model.index(0, LeaksModel.COL_HELD_OUT).data() == "test 0"
    assert model.index(0, LeaksModel.COL_SPLIT).data() == "train"
    assert "2 unresolved" in leaks.summary_label.text()
    left, right = leaks.left_pane.toPlainText().strip(), leaks.right_pane.toPlainText().strip()
    assert left.startswith("Training record 7") and right.startswith("Test record 0")
    assert "exact match" in leaks.info_label.text()

    with qtbot.waitSignal(leaks.records_changed, timeout=5000) as blocker:
        key(qtbot, leaks, Qt.Key.Key_Delete)
    assert blocker.args[0] == [8]
    assert status(project, 8) == "rejected" and project.peek_undo()["action"] == "remove_leak"
    assert model.index(0, LeaksModel.COL_STATUS).data() == "Rejected"
    assert leaks.current_row() == 1  # on to the next unresolved leak

    with qtbot.waitSignal(leaks.records_changed, timeout=5000):
        key(qtbot, leaks, Qt.Key.Key_T)
    assert project.get(9).split == "test" and status(project, 9) == "unreviewed"
    assert model.index(1, LeaksModel.COL_SPLIT).data() == "test"
    assert "Every leak is resolved" in leaks.summary_label.text()

    project.undo()
    project.undo()
    leaks.refresh([8, 9])
    assert model.index(0, LeaksModel.COL_STATUS).data() == "Unreviewed"
    assert model.index(1, LeaksModel.COL_SPLIT).data() == "train"
    assert "2 unresolved" in leaks.summary_label.text()

    # D does the same as Delete; Space moves on
    leaks.select_row(0)
    key(qtbot, leaks, Qt.Key.Key_Space)
    assert leaks.current_row() == 1
    with qtbot.waitSignal(leaks.records_changed, timeout=5000):
        key(qtbot, leaks, Qt.Key.Key_D)
    assert status(project, 9) == "rejected"


def test_screenshots_are_readable(qtbot, pairs, leaks, tmp_path):
    """Grab both views with data (for the docs and to look at); both render something."""
    pairs.select_row(1)
    for view, name in ((pairs, "pair_view.png"), (leaks, "leak_view.png")):
        image = view.grab().toImage()
        assert image.width() >= 1200 and image.height() >= 600
        assert image.save(str(tmp_path / name))
