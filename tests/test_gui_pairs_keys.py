"""The Duplicates and Leakage tabs for a full day of keyboard-only review (issue 11): Tab moves
between widgets and never between rows, Ctrl+Tab reaches the window, showing a tab leaves the
focus where the user put it, the focus ring shows in both themes, everything fits 1024×700,
the buttons say what they do, the header counts agree with the list, both records show what
the scan found, a leak says why it was flagged, and every record is named by its index in
its file. Driven with keys on the focused widget (pytest-qt, offscreen); no sleeps.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QRect, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import QApplication, QToolButton, QWidget  # noqa: E402

from ftcurate.core.io.ingest import import_dataset  # noqa: E402
from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.gui import theme  # noqa: E402
from ftcurate.core.project.review import LeakEvidence  # noqa: E402
from ftcurate.gui.leak_view import LeakView, evidence_text  # noqa: E402
from ftcurate.gui.pair_panes import _EVIDENCE_COLORS  # noqa: E402
from ftcurate.gui.pair_review import ring_color  # noqa: E402
from ftcurate.gui.pair_view import PairsModel, PairView  # noqa: E402
from test_gui import home, open_and_wait, window  # noqa: E402,F401
from test_gui_pairs import REPORT, build_project  # noqa: E402


@pytest.fixture
def project(tmp_path):
    p = build_project(tmp_path)
    yield p
    p.close()


def show(qtbot, view: QWidget, width: int = 1260, height: int = 700) -> None:
    view.resize(width, height)
    view.show()
    qtbot.waitExposed(view)
    view.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is view.window(), timeout=5000)


def make(qtbot, cls, project, report):
    view = cls(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    view.set_report(report)
    show(qtbot, view)
    view.table.setFocus()
    qtbot.waitUntil(view.table.hasFocus, timeout=5000)
    return view


def press(qtbot, k, modifier=Qt.KeyboardModifier.NoModifier) -> QWidget:
    """Press a key on the focused widget; returns the widget that had the focus."""
    w = QApplication.focusWidget()
    assert w is not None
    qtbot.keyClick(w, k, modifier)
    return w


def buttons(view) -> list:
    """The view's action buttons, in the order of its actions."""
    found = {b.defaultAction(): b for b in view.findChildren(QToolButton) if b.defaultAction() is not None}
    return [found[a] for a in view.actions() if a in found]


def settle(qtbot) -> None:
    """Let the events already queued (zero timers included) run before going on."""
    done: list = []
    QTimer.singleShot(0, lambda: done.append(1))
    qtbot.waitUntil(lambda: bool(done), timeout=5000)


# -- item 2: Tab, Shift+Tab, Ctrl+Tab and the focus ---------------------------------------------------


@pytest.mark.parametrize("cls", [PairView, LeakView])
def test_tab_and_shift_tab_move_between_widgets_not_rows(qtbot, project, cls):
    view = make(qtbot, cls, project, REPORT(project))
    assert view.current_row() == 0
    seen = [QApplication.focusWidget()]
    for _ in range(20):  # round the view's focus chain
        press(qtbot, Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
        if seen[-1] is view.table:
            break
    assert seen[-1] is view.table, [type(w).__name__ for w in seen]
    assert view.current_row() == 0  # Tab never moved the row
    # list, (the Duplicates tab's number box and button), buttons, then the two records
    assert seen.index(view.left_pane) < seen.index(view.right_pane)
    assert all(seen.index(b) < seen.index(view.left_pane) for b in buttons(view))
    if cls is PairView:
        assert seen[1] is view.threshold_spin and seen.index(view.accept_button) < seen.index(buttons(view)[0])
    # Shift+Tab goes back a widget: from the list to the last record pane, the row stays
    press(qtbot, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert QApplication.focusWidget() is view.right_pane
    assert view.current_row() == 0
    press(qtbot, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is view.table and view.current_row() == 0


def test_a_focused_button_is_pressed_with_enter_and_space_still_moves_on(qtbot, project):
    view = make(qtbot, PairView, project, REPORT(project))
    button = next(b for b in buttons(view) if b.defaultAction() is view.act_reject_both)
    button.setFocus()
    qtbot.waitUntil(button.hasFocus, timeout=5000)
    press(qtbot, Qt.Key.Key_Space)  # "next pair", never a decision by habit
    assert view.current_row() == 1 and project.get(1).status == "unreviewed"
    with qtbot.waitSignal(view.records_changed, timeout=5000):
        press(qtbot, Qt.Key.Key_Return)
    assert (project.get(1).status, project.get(2).status) == ("rejected", "rejected")


def test_a_held_decision_key_decides_once(project, qtbot):
    view = make(qtbot, PairView, project, REPORT(project))
    decisions = [view.act_keep_left, view.act_keep_right, view.act_keep_both, view.act_reject_both]
    assert not any(a.autoRepeat() for a in decisions)
    assert view.act_next.autoRepeat() and view.act_prev.autoRepeat()


def _pixel_near(image, x: int, y: int, color: str, tolerance: int = 60) -> bool:
    got, want = QColor(image.pixel(x, y)), QColor(color)
    return abs(got.red() - want.red()) + abs(got.green() - want.green()) + abs(got.blue() - want.blue()) < tolerance


@pytest.mark.parametrize("name", ["light", "dark"])
def test_the_focused_list_pane_and_button_have_a_visible_ring(qtbot, project, name):
    theme.apply_theme(name)
    try:
        view = make(qtbot, PairView, project, REPORT(project))
        qtbot.waitUntil(lambda: theme.is_dark() == (name == "dark"), timeout=5000)
        ring = ring_color()
        for widget in (view.table, view.right_pane, buttons(view)[0]):
            widget.setFocus()
            qtbot.waitUntil(widget.hasFocus, timeout=5000)
            image = widget.grab().toImage()
            y = image.height() // 2
            assert _pixel_near(image, 0, y, ring) and _pixel_near(image, 1, y, ring), (name, type(widget).__name__)
            view.threshold_spin.setFocus()  # elsewhere: no ring
            qtbot.waitUntil(lambda w=widget: not w.hasFocus(), timeout=5000)
            image = widget.grab().toImage()
            assert not _pixel_near(image, 1, image.height() // 2, ring, tolerance=30), (name, type(widget).__name__)
    finally:
        theme.apply_theme("light")


# -- in the window ---------------------------------------------------------------------------------------


def _dupes_jsonl(path: Path, n: int = 12) -> Path:
    lines = []
    for i in range(n):
        q = f"question {i}: how does a binary search find an item in a sorted list of {i + 10} numbers?"
        lines.append(json.dumps({"messages": [{"role": "user", "content": q},
                                              {"role": "assistant", "content": f"Answer {i}: halve the range."}]}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _open_with_report(qtbot, window, tmp_path):  # noqa: F811 - the fixture
    project = open_and_wait(qtbot, window, _dupes_jsonl(tmp_path / "dupes.jsonl"))
    ids = [int(i) for i in window.frame.ids]
    report = {"version": 1, "index": "record_id", "records": len(ids),
              "near_duplicate_clusters": [{"indices": [ids[1], ids[2]], "keep": ids[1], "reason": "longest answer",
                                           "pairs": [{"a": ids[1], "b": ids[2], "similarity": 0.9}]}],
              "semantic_duplicates": [{"a": ids[4], "b": ids[7], "similarity": 0.955}]}
    project.save_scan("quality", {}, report)
    window._set_report(report)
    return project, ids


def test_ctrl_tab_reaches_the_window_and_showing_a_tab_keeps_the_focus(qtbot, window, tmp_path):  # noqa: F811
    _open_with_report(qtbot, window, tmp_path)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)
    tabs, pairs, leaks = window.tabs, window.views["pairs"], window.views["leaks"]
    # the tab bar has the focus; arrow keys switch tabs and the shown view leaves it there
    bar = tabs.tabBar()
    bar.setFocus()
    qtbot.waitUntil(bar.hasFocus, timeout=5000)
    qtbot.keyClick(bar, Qt.Key.Key_Right)
    qtbot.waitUntil(pairs.isVisible, timeout=5000)
    settle(qtbot)
    assert bar.hasFocus(), QApplication.focusWidget()
    # the main window calls this after a switch by key: the list takes the focus
    pairs.focus_list()
    qtbot.waitUntil(pairs.table.hasFocus, timeout=5000)
    row = pairs.current_row()
    # Ctrl+Tab in the list reaches the window (next tab), the row stays; Ctrl+Shift+Tab comes back
    press(qtbot, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(leaks.isVisible, timeout=5000)
    assert pairs.current_row() == row
    press(qtbot, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(pairs.isVisible, timeout=5000)
    assert pairs.current_row() == row


def test_everything_fits_at_1024_by_700(qtbot, window, tmp_path):  # noqa: F811
    _open_with_report(qtbot, window, tmp_path)
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: window.width() == 1024 and window.height() == 700, timeout=5000)
    for key in ("pairs", "leaks"):
        view = window.views[key]
        window.show_tab(key)
        qtbot.waitUntil(view.isVisible, timeout=5000)
        page = window._page_of(view)
        qtbot.waitUntil(lambda v=view, p=page: v.width() <= p.viewport().width(), timeout=5000)
        assert not page.horizontalScrollBar().isVisible(), key
        if view.stack.currentWidget() is not view.splitter:
            continue
        area = QRect(QPoint(0, 0), page.viewport().size())
        shown = buttons(view) + ([view.accept_button] if key == "pairs" else [])
        for b in shown:
            rect = QRect(b.mapTo(page.viewport(), QPoint(0, 0)), b.size())
            assert b.isVisible() and area.contains(rect), (key, b.text(), rect, area)
            assert b.visibleRegion().boundingRect() == b.rect(), (key, b.text())  # not clipped
            assert b.width() >= b.sizeHint().width(), (key, b.text())  # the whole label shows
        assert not view.table.horizontalScrollBar().isVisible(), key
        for pane in (view.left_pane, view.right_pane):
            assert pane.width() >= 160 and area.contains(QRect(pane.mapTo(page.viewport(), QPoint(0, 0)),
                                                               pane.size())), key


def test_the_right_record_of_a_semantic_pair_shows_its_finding(qtbot, window, tmp_path):  # noqa: F811
    project, ids = _open_with_report(qtbot, window, tmp_path)
    window.show_tab("pairs")
    view = window.views["pairs"]
    qtbot.waitUntil(view.isVisible, timeout=5000)
    view.focus_list()
    qtbot.waitUntil(view.table.hasFocus, timeout=5000)
    press(qtbot, Qt.Key.Key_Space)  # to the semantic pair
    pair = view.current_pair()
    assert pair.kind == "semantic"
    right = project.get(pair.right)
    text = view.right_pane.toPlainText()
    assert "Found by the scan" in text and "semantic duplicate" in text
    assert f"with {project.get(pair.left).index}" in text  # the other record, by its index
    # Tab to the right record, Enter opens it in the Records tab: its finding is there too
    while QApplication.focusWidget() is not view.right_pane:
        press(qtbot, Qt.Key.Key_Tab)
    press(qtbot, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.current_id() == right.id, timeout=5000)
    detail = window.detail.toPlainText()
    assert "Found by the scan" in detail and "semantic duplicate" in detail


# -- item 7: the buttons say what they do ----------------------------------------------------------------


def test_the_decision_buttons_say_that_keeping_approves(qtbot, project):
    view = make(qtbot, PairView, project, REPORT(project))
    texts = [b.text() for b in buttons(view)]
    assert texts[:4] == ["Approve left, reject right  (1)", "Approve right, reject left  (2)", "Approve both  (B)",
                         "Reject both  (X)"]
    view.select_row(1)
    with qtbot.waitSignal(view.records_changed, timeout=5000):
        press(qtbot, Qt.Key.Key_1)
    assert (project.get(1).status, project.get(2).status) == ("approved", "rejected")  # as the label says


# -- item 6: the header agrees with the list --------------------------------------------------------------


def test_semantic_pairs_are_clusters_with_keepers_and_suggestions(qtbot, project):
    report = {"version": 1, "semantic_duplicates": [{"a": 6, "b": 7, "similarity": 0.9549}]}
    view = make(qtbot, PairView, project, report)
    assert "<b>1 duplicate pair</b> (1 semantic) in 1 cluster<br>" in view.summary_label.text()
    assert view.model.index(0, PairsModel.COL_LEFT).data().endswith("★")
    assert "suggested keeper" in view.left_pane.toPlainText()
    assert "1 cluster: approve 1, reject 1 record." in view.plan_label.text()
    assert view.accept_button.isEnabled()

    many = {"version": 1, "semantic_duplicates": [{"a": a, "b": b, "similarity": s} for a, b, s in
                                                  ((1, 2, 0.96), (3, 4, 0.951), (6, 7, 0.9549), (8, 9, 0.95))]}
    view.set_report(many)
    assert "<b>4 duplicate pairs</b> (4 semantic) in 4 clusters" in view.summary_label.text()
    assert all(view.model.index(r, PairsModel.COL_LEFT).data().endswith("★") for r in range(4))
    assert "4 clusters: approve 4, reject 4 records." in view.plan_label.text()
    # by keys: Tab to the number box, then to the button, Enter accepts (one undo step)
    press(qtbot, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is view.threshold_spin
    press(qtbot, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is view.accept_button
    with qtbot.waitSignal(view.records_changed, timeout=5000):
        press(qtbot, Qt.Key.Key_Return)
    assert project.peek_undo()["action"] == "accept_suggestions" and project.peek_undo()["count"] == 8
    assert "Every pair is decided" in view.summary_label.text()


# -- item 19: why a leak was flagged ---------------------------------------------------------------------


def test_a_leak_shows_its_method_score_and_evidence_highlighted(qtbot, project):
    ngram = "travels 60 miles an hour how far has it gone at 5 pm"
    report = {"version": 1, "test_records": 3, "leakage": [
        {"index": 8, "test_index": 11, "method": "ngram", "score": 0.62, "field": "prompt",
         "evidence": {"ngram": ngram}},
        {"index": 9, "test_index": 12, "method": "semantic", "score": 0.91, "field": "prompt"},  # an old report
    ]}
    view = make(qtbot, LeakView, project, report)
    info = view.info_label.text()
    assert "n-gram overlap" in info and "0.62" in info and "62% of the test prompt" in info
    assert "“travels 60 miles an hour. How far has it gone at 5 pm”" in info  # as the record writes it
    assert "worked out here" not in info
    long = evidence_text(LeakEvidence(" ".join(["word"] * 100)), 1)
    assert "…" in long and len(long) < 400  # a long run is quoted short (all of it is highlighted)
    color = _EVIDENCE_COLORS[False]
    for pane in (view.left_pane, view.right_pane):
        html = pane.toHtml().lower()
        assert color in html, pane.toPlainText()[:200]
        assert "60 miles an hour. how far has it gone at 5 pm" in pane.toPlainText().lower()

    press(qtbot, Qt.Key.Key_Space)  # the semantic leak of a report without evidence
    info = view.info_label.text()
    assert "same meaning" in info and "embedding similarity 0.91" in info
    assert "matched words" in info and "sara" in info and "pages" in info and "worked out here" in info
    assert color in view.left_pane.toHtml().lower() and color in view.right_pane.toHtml().lower()


# -- item 4: records by their index in the file, never by id ---------------------------------------------


def test_records_are_named_by_their_index_in_the_file(qtbot, tmp_path):
    rows = []
    for i in range(14):
        out = "" if i in (1, 2) else f"The answer to exercise {i} is {i * 7}."
        rows.append({"instruction": f"Solve exercise {i}: what is {i} times 7?", "input": "", "output": out})
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"messages": [{"role": "user", "content": "Solve exercise 12: what is 12 times 7?"},
                                             {"role": "assistant", "content": "84"}]}) + "\n", encoding="utf-8")
    p = Project.create(tmp_path / "numbers.ftcurate", reviewer="tester")
    try:
        import_dataset(p, str(path))
        import_dataset(p, str(test), role="test")
        by_index = {p.get(rid).index: rid for rid in p.ids(split="train")}
        assert 1 not in by_index and by_index[12] == 11  # two dropped rows: id and index differ
        a, b, t = by_index[12], by_index[13], p.ids(split="test")[0]
        report = {"version": 1, "test_records": 1,
                  "semantic_duplicates": [{"a": a, "b": b, "similarity": 0.95}],
                  "leakage": [{"index": a, "test_index": t, "method": "exact", "score": 1.0, "field": "prompt"}]}
        pairs = make(qtbot, PairView, p, report)
        left, right = pairs.current_pair().left, pairs.current_pair().right
        n_left, n_right = str(p.get(left).index), str(p.get(right).index)
        assert {n_left, n_right} == {"12", "13"}
        assert pairs.model.index(0, PairsModel.COL_LEFT).data() == n_left + " ★"
        assert pairs.model.index(0, PairsModel.COL_RIGHT).data() == n_right
        assert f"record {n_left}" in pairs.info_label.text()
        assert pairs.left_pane.toPlainText().strip().startswith(f"Left: record {n_left}")
        assert f"similarity 0.95 with {n_left}" in pairs.right_pane.toPlainText()
        assert f"similarity 0.95 with {n_right}" in pairs.left_pane.toPlainText()
        for text in (pairs.left_pane.toPlainText(), pairs.right_pane.toPlainText(), pairs.info_label.text()):
            assert "with 11" not in text and "with 12 " not in text and "record 11" not in text
        assert "Record 12" in pairs.model.index(0, PairsModel.COL_LEFT if n_left == "12" else PairsModel.COL_RIGHT)\
            .data(Qt.ItemDataRole.ToolTipRole)

        leaks = make(qtbot, LeakView, p, report)
        assert leaks.model.index(0, 0).data() == "12" and leaks.model.index(0, 1).data() == "test 0"
        assert leaks.left_pane.toPlainText().strip().startswith("Training record 12")
        assert "leaks test record 0" in leaks.left_pane.toPlainText()  # its finding, by index too
    finally:
        p.close()


def test_a_theme_switch_redraws_the_records_and_the_ring(qtbot, project):
    from ftcurate.gui.widgets import ROLE_STYLES_DARK

    theme.apply_theme("light")
    view = make(qtbot, PairView, project, REPORT(project))
    light_ring = ring_color()
    dark_user_bg = ROLE_STYLES_DARK["user"][1]
    assert dark_user_bg not in view.left_pane.toHtml().lower()
    try:
        theme.apply_theme("dark")
        qtbot.waitUntil(lambda: dark_user_bg in view.left_pane.toHtml().lower(), timeout=5000)
        assert ring_color() in view.styleSheet() and (ring_color() == light_ring or light_ring not in view.styleSheet())
    finally:
        theme.apply_theme("light")
    qtbot.waitUntil(lambda: dark_user_bg not in view.left_pane.toHtml().lower(), timeout=5000)
