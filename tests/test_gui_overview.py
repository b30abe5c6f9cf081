"""GUI tests of the Overview tab and the "Outliers & map" tab (pytest-qt, offscreen).

The views are tested on their own, as the main window uses them: set_project, set_report,
refresh, shutdown and their signals. Waiting is always on a signal or a condition, never
on a fixed sleep.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402

import pyqtgraph as pg  # noqa: E402

from ftcurate.core.quality.projection import MapData  # noqa: E402
from ftcurate.gui import map_view as mv  # noqa: E402
from ftcurate.gui.map_view import MapView, outlier_rows  # noqa: E402
from ftcurate.gui.overview_view import HELD_OUT_LABEL, NO_PROJECT_TEXT, OverviewView  # noqa: E402
from test_overview import build_project  # noqa: E402

COUNT_TIMEOUT = 30_000
MAP_TIMEOUT = 180_000


@pytest.fixture
def project(tmp_path):
    p = build_project(tmp_path, n_train=120, n_test=5, turns=lambda i: 1 + (i % 6 == 0))
    yield p
    p.close()


def make_report(project) -> dict:
    """A project scan report: four flagged outliers, a score for every training record,
    heuristic flags, a duplicate group and a leak."""
    ids = project.ids(split="train")
    test = project.ids(split="test")
    scores = [round(0.1 + (i % 7) / 100, 4) for i in range(len(ids))]
    for k, i in enumerate((3, 50, 77, 110)):
        scores[i] = 0.9 - k / 100
    return {
        "index": "record_id",
        "outliers": [{"index": ids[i], "score": scores[i]} for i in (50, 3, 110, 77)],
        "outlier_scores": {"model": "static-wordllama", "cutoff": 0.5, "scores": scores},
        "scanned_ids": ids,
        "flags": [{"index": ids[i], "flag": "refusal", "reason": "sorry"} for i in (1, 2)],
        "exact_duplicates": [[ids[10], ids[11]]],
        "leakage": [{"index": ids[0], "test_index": test[0], "method": "exact", "score": 1.0, "field": "prompt"}],
    }


def bar_items(plot) -> list:
    return [it for it in plot.getPlotItem().items if isinstance(it, pg.BarGraphItem)]


# -- overview ------------------------------------------------------------------------------------


def test_overview_shows_the_numbers_and_follows_decisions(qtbot, project, tmp_path):
    ids = project.ids(split="train")
    project.approve(ids[:40])
    project.reject(ids[40:45])
    view = OverviewView(interactive=False)
    qtbot.addWidget(view)
    view.resize(1150, 820)
    assert view.stack.currentWidget() is view.empty_label and view.empty_label.text() == NO_PROJECT_TEXT
    assert not view.refresh_button.isEnabled() and view.refresh_button.toolTip()

    view.set_project(project)
    view.set_report(make_report(project))
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: view.data is not None and view.stack.currentWidget() is view.content,
                    timeout=COUNT_TIMEOUT)
    data = view.data
    assert data.records == 125 and data.run_examples == 40
    assert view.status_card.value("Approved").startswith("40")
    assert view.status_card.value("Rejected").startswith("5")
    assert view.status_card.value("Unreviewed").startswith("75")  # the 5 held-out test records are apart
    assert view.status_card.value(HELD_OUT_LABEL) == "5"
    assert view.split_card.value("test").startswith("5")
    assert "<b>40</b> examples" in view.run_label.text() and f"<b>{data.run_tokens:,}</b> tokens" in view.run_label.text()
    # findings by kind; the banners give advice, most serious first
    assert view.findings_card.value("outlier") == "4"
    assert view.findings_card.value("refusal") == "2" and view.findings_card.value("leakage") == "1"
    levels = [b.level for b in view.banners]
    assert levels == sorted(levels, key=["error", "warning", "info"].index)
    texts = [b.advice for b in view.banners]
    assert any("little will be learnt" in t for t in texts)
    assert any(t.startswith("1 training record leaks the test set") for t in texts)
    # histograms: all records and the run's records
    assert len(bar_items(view.token_plot)) == 2 and len(bar_items(view.turn_plot)) == 2
    assert sum(bar_items(view.turn_plot)[0].opts["height"]) == 125

    # decisions made elsewhere: the status card at once, the rest after a recount
    project.approve(ids[45:105])
    project.reject(ids[0])  # the leaking record
    view.refresh(ids[45:105] + [ids[0]])
    assert view.status_card.value("Approved").startswith("99")
    qtbot.waitUntil(lambda: view.data is not data and view.data.run_examples == 99, timeout=COUNT_TIMEOUT)
    texts = [b.advice for b in view.banners]
    assert not any("leaks the test set" in t for t in texts)
    assert view.findings_card.value("leakage") == "0 of 1"
    project.approve(ids[105:106])
    view.refresh([ids[105]])
    qtbot.waitUntil(lambda: view.data.run_examples == 100, timeout=COUNT_TIMEOUT)
    assert any("overfitting is likely" in b.advice and b.level == "warning" for b in view.banners)
    view.grab().save(str(tmp_path / "overview.png"))
    assert (tmp_path / "overview.png").stat().st_size > 0
    view.shutdown()


def test_overview_waits_until_shown_and_ignores_a_replaced_project(qtbot, project, tmp_path):
    other = build_project(tmp_path, n_train=7, name="other.ftcurate")
    view = OverviewView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)  # hidden: nothing is counted yet
    assert not view.is_computing() and view.data is None
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: view.data is not None, timeout=COUNT_TIMEOUT)  # counted once shown
    assert view.data.records == 125
    view.compute()
    assert view.is_computing()
    view.set_project(other)  # the count under way is stopped; its result must not show
    assert not view.is_computing() and view.data is None
    qtbot.waitUntil(lambda: view.data is not None, timeout=COUNT_TIMEOUT)
    assert view.data.records == 7
    view.set_project(None)
    assert view.stack.currentWidget() is view.empty_label and view.data is None
    other.close()


def test_overview_shutdown_stops_a_count_at_once(qtbot, project):
    view = OverviewView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    view.compute()
    assert view.is_computing()
    t = time.monotonic()
    view.shutdown()
    assert not view.is_computing() and view._worker is None
    assert time.monotonic() - t < 10


def test_a_failing_count_is_reported(qtbot, project, monkeypatch):
    from ftcurate.gui import overview_view as ovv

    def boom(*a, **k):
        raise RuntimeError("the counter broke")

    monkeypatch.setattr(ovv, "overview", boom)
    view = OverviewView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    with qtbot.waitSignal(view.error_reported, timeout=COUNT_TIMEOUT) as blocker:
        view.compute()
    assert blocker.args[0] == "Overview failed" and blocker.args[1] == "the counter broke"
    assert "Traceback" in blocker.args[2]
    qtbot.waitUntil(lambda: not view.is_computing(), timeout=5000)


# -- outliers and map ----------------------------------------------------------------------------


def grid_map(project) -> MapData:
    """A made-up map of the training records: a 10-wide grid, one unit apart."""
    ids = np.asarray(project.ids(split="train"), np.int64)
    n = len(ids)
    xy = np.c_[np.arange(n) % 10, np.arange(n) // 10].astype(np.float32)
    status = np.array([sr.status for sr in project.get_many(ids.tolist())], "<U10")
    m = MapData(ids=ids, xy=xy, status=status, flag=np.zeros(n, "<U24"), score=np.full(n, np.nan, np.float32),
                index=np.arange(n), snippets=[f"text {i}" for i in range(n)], method="pca", model="test", total=n)
    return m


def test_outlier_rows_are_ordered_by_score():
    report = {"outliers": [{"index": 5, "score": 0.7}, {"index": 9, "score": 0.9}],
              "outlier_scores": {"scores": [0.1, 0.9, 0.2, 0.7]}, "scanned_ids": [1, 9, 3, 5]}
    assert [r[:3] for r in outlier_rows(report)] == [(9, 0.9, True), (5, 0.7, True)]
    assert [r[:3] for r in outlier_rows(report, only_flagged=False)] == [(9, 0.9, True), (5, 0.7, True),
                                                                        (3, 0.2, False), (1, 0.1, False)]
    assert outlier_rows(None) == []


def test_outlier_rows_include_length_outliers():
    """Issue 10 item 14: the table listed the outliers by meaning only (13 of 23)."""
    report = {"outliers": [{"index": 5, "score": 0.7}, {"index": 9, "score": 0.9}],
              "length_outliers": [{"index": 3, "tokens": 4000, "score": 8.3}, {"index": 9, "tokens": 2, "score": 1.1},
                                  {"index": 7, "score": 0.5}],
              "outlier_scores": {"scores": [0.1, 0.9, 0.2, 0.7]}, "scanned_ids": [1, 9, 3, 5]}
    rows = outlier_rows(report)
    assert [r.id for r in rows] == [9, 5, 3, 7]  # by meaning score; 7 was not scored: last
    assert all(r.flagged for r in rows)
    assert [r.why for r in rows] == ["meaning, length (2 tokens)", "meaning", "length (4,000 tokens)", "length"]
    assert rows[2].score == 0.2 and rows[3].score != rows[3].score
    assert [r.id for r in outlier_rows(report, only_flagged=False)] == [9, 5, 3, 1, 7]


def test_map_computes_in_a_worker_and_the_table_lists_outliers(qtbot, project, tmp_path):
    report = make_report(project)
    ids = project.ids(split="train")
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.resize(1200, 700)
    assert view.table_empty.text() == mv.NO_PROJECT_TEXT and view.map_empty.text() == mv.NO_MAP_PROJECT_TEXT
    view.set_project(project)
    assert view.table_empty.text() == mv.NO_SCAN_TEXT and view.map_empty.text() == mv.NO_MAP_TEXT
    view.set_report(report)
    view.show()
    qtbot.waitExposed(view)
    # the outlier table: flagged ones, highest score first, with status and first user turn
    model = view.table_model
    assert view.table_stack.currentWidget() is view.table
    assert [model.id_at(r) for r in range(model.rowCount())] == [ids[3], ids[50], ids[77], ids[110]]
    assert model.index(0, model.COL_SCORE).data() == "0.900"
    assert model.index(0, model.COL_STATUS).data() == "Unreviewed"
    assert model.index(0, model.COL_TEXT).data() == project.get(ids[3]).record.first_user
    assert model.index(0, model.COL_INDEX).data() == str(project.get(ids[3]).index)
    view.only_flagged.setChecked(False)
    assert model.rowCount() == 120
    view.only_flagged.setChecked(True)

    ready: list = []
    view.map_ready.connect(ready.append)
    with qtbot.waitSignal(view.map_ready, timeout=MAP_TIMEOUT) as blocker:
        view.compute()
        assert view.is_computing() and view.progress_row.isVisibleTo(view)
        assert not view.compute_button.isEnabled()
        view.compute()  # a second click while computing changes nothing
    data = blocker.args[0]
    assert len(data) == 120 and list(data.ids) == ids and view.map is data
    assert view.map_stack.currentWidget() is view.plot
    qtbot.waitUntil(lambda: not view.is_computing(), timeout=5000)
    assert not view.progress_row.isVisibleTo(view) and view.compute_button.text() == "Recompute map"
    # coloured by status: one scatter item a status, every point drawn once
    assert sum(len(sc.data) for sc in view._scatter) == 120
    assert {sc.name().split(" (")[0] for sc in view._scatter} == {"Unreviewed"}
    view.color_by.setCurrentIndex(view.color_by.findData("finding"))
    names = {sc.name().split(" (")[0] for sc in view._scatter}
    assert {"outlier", "refusal", "exact duplicate", "leakage", "no finding"} <= names
    assert sum(len(sc.data) for sc in view._scatter) == 120
    # the tooltip of a point tells what it is
    row = list(data.ids).index(ids[3])
    assert "outlier" in view._point_tip(0, 0, row) and "score 0.900" in view._point_tip(0, 0, row)

    # a second computation reuses the project's caches
    with qtbot.waitSignal(view.map_ready, timeout=MAP_TIMEOUT) as blocker:
        view.compute()
    assert blocker.args[0].cached and np.array_equal(blocker.args[0].xy, data.xy)
    assert len(ready) == 2
    view.grab().save(str(tmp_path / "map.png"))
    view.shutdown()


def test_lasso_selects_the_points_inside(qtbot, project):
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    view.set_map(grid_map(project))
    ids = project.ids(split="train")
    with qtbot.waitSignal(view.selection_changed) as blocker:
        got = view.select_polygon([(-0.5, -0.5), (2.5, -0.5), (2.5, 1.5), (-0.5, 1.5)])
    # x in 0..2, y in 0..1: records 0, 1, 2, 10, 11, 12
    expected = [ids[i] for i in (0, 1, 2, 10, 11, 12)]
    assert got == expected and blocker.args[0] == expected and view.selected_ids() == expected
    assert len(view.ring.data) == 6 and view.selection_label.text() == "6 selected"
    assert view.reject_button.isEnabled() and view.approve_button.isEnabled()
    # a triangle: the points below its diagonal x + y = 3 only
    got = view.select_polygon([(-0.5, -0.5), (3.5, -0.5), (-0.5, 3.5)])
    assert got == [ids[i] for i in (0, 1, 2, 10, 11, 20)]
    view.clear_selection()
    assert view.selected_ids() == [] and not view.reject_button.isEnabled() and len(view.ring.data) == 0


@pytest.fixture
def every_mouse_move():
    """pyqtgraph drops mouse moves closer than 10 ms apart; test input comes faster."""
    old = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOption("mouseRateLimit", -1)
    yield
    pg.setConfigOption("mouseRateLimit", old)


def test_drawing_a_lasso_with_the_mouse(qtbot, project, every_mouse_move):
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.set_project(project)
    view.set_map(grid_map(project))
    view.show()
    qtbot.waitExposed(view)
    view.viewbox.setRange(xRange=(-1, 10), yRange=(-1, 12), padding=0)
    view.lasso_button.setChecked(True)
    assert view.viewbox.lasso_mode

    def to_widget(x: float, y: float) -> QPoint:
        scene = view.viewbox.mapViewToScene(QPointF(x, y))
        return view.plot.mapFromScene(scene)

    corners = [(-0.5, -0.5), (1.5, -0.5), (1.5, 1.5), (-0.5, 1.5), (-0.5, -0.4)]
    port = view.plot.viewport()
    with qtbot.waitSignal(view.selection_changed, timeout=5000) as blocker:
        qtbot.mousePress(port, Qt.MouseButton.LeftButton, pos=to_widget(*corners[0]))
        for x, y in corners[1:]:
            for k in range(1, 6):  # several small moves, as a hand does
                px, py = corners[corners.index((x, y)) - 1]
                qtbot.mouseMove(port, to_widget(px + (x - px) * k / 5, py + (y - py) * k / 5))
        qtbot.mouseRelease(port, Qt.MouseButton.LeftButton, pos=to_widget(*corners[-1]))
    ids = project.ids(split="train")
    assert blocker.args[0] == [ids[i] for i in (0, 1, 10, 11)]


def test_reject_and_approve_selected_are_one_undo_step_each(qtbot, project):
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    view.set_report(make_report(project))
    view.set_map(grid_map(project))
    changed: list = []
    view.records_changed.connect(changed.append)
    ids = project.ids(split="train")
    chosen = view.select_polygon([(-0.5, -0.5), (9.5, -0.5), (9.5, 2.5), (-0.5, 2.5)])  # three rows of ten
    assert len(chosen) == 30 and ids[3] in chosen
    qtbot.mouseClick(view.reject_button, Qt.MouseButton.LeftButton)
    assert changed == [chosen]
    assert {project.get(i).status for i in chosen} == {"rejected"}
    assert project.peek_undo()["action"] == "reject" and project.peek_undo()["count"] == 30
    # the map and the table show the new status
    assert set(view.map.status[view.map.rows_of(chosen)]) == {"rejected"}
    assert view.table_model.index(0, view.table_model.COL_STATUS).data() == "Rejected"  # ids[3]
    assert project.undo() == sorted(chosen)  # one step takes all thirty back
    assert {project.get(i).status for i in chosen} == {"unreviewed"}
    view.refresh(chosen)
    assert set(view.map.status[view.map.rows_of(chosen)]) == {"unreviewed"}

    # table rows select their points too; approve them in one step
    view.clear_selection()
    view.table.selectRow(0)
    view.table.selectionModel().select(view.table_model.index(1, 0),
                                       view.table.selectionModel().SelectionFlag.Select
                                       | view.table.selectionModel().SelectionFlag.Rows)
    assert view.selected_ids() == sorted([ids[3], ids[50]])
    assert len(view.ring.data) == 2
    assert view.decide_selected("approve")
    assert project.get(ids[3]).status == project.get(ids[50]).status == "approved"
    assert project.peek_undo()["count"] == 2 and changed[-1] == sorted([ids[3], ids[50]])


def test_clicking_a_point_or_activating_a_row_requests_the_record(qtbot, project):
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.set_project(project)
    view.set_report(make_report(project))
    view.set_map(grid_map(project))
    view.show()
    qtbot.waitExposed(view)
    view.viewbox.setRange(xRange=(-1, 10), yRange=(-1, 12), padding=0)
    ids = project.ids(split="train")
    scene = view.viewbox.mapViewToScene(QPointF(4, 2))  # record 24
    with qtbot.waitSignal(view.record_requested, timeout=5000) as blocker:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=view.plot.mapFromScene(scene))
    assert blocker.args == [ids[24]]
    with qtbot.waitSignal(view.record_requested, timeout=5000) as blocker:
        view.table.activated.emit(view.table_model.index(1, 0))
    assert blocker.args == [ids[50]]


def test_map_results_of_a_replaced_project_are_ignored(qtbot, project, tmp_path):
    other = build_project(tmp_path, n_train=5, name="other.ftcurate")
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    ready: list = []
    view.map_ready.connect(ready.append)
    view.compute()
    assert view.is_computing()
    view.set_project(other)  # stops the computation and waits for it
    assert not view.is_computing() and view.map is None and ready == []
    assert view.map_empty.text() == mv.NO_MAP_TEXT
    view.compute_if_needed()
    qtbot.waitUntil(lambda: bool(ready), timeout=MAP_TIMEOUT)
    assert len(ready[0]) == 5 and view.map is ready[0]
    view.compute_if_needed()  # there is a map: nothing to do
    assert not view.is_computing()
    view.set_project(None)
    assert view.map is None and view.table_empty.text() == mv.NO_PROJECT_TEXT
    other.close()


def test_a_failing_map_is_reported(qtbot, project, monkeypatch):
    def boom(*a, **k):
        raise ValueError("no model")

    monkeypatch.setattr(mv, "embedding_map", boom)
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    with qtbot.waitSignal(view.error_reported, timeout=30_000) as blocker:
        view.compute()
    assert blocker.args[:2] == ["Could not compute the map", "no model"]
    qtbot.waitUntil(lambda: not view.is_computing(), timeout=5000)
    assert view.map is None and view.map_empty.text() == mv.NO_MAP_TEXT


@pytest.fixture
def gated_map(monkeypatch):
    """embedding_map that computes, then holds its result until ``gate`` is set (checking
    for cancel meanwhile): a computation that is surely still running."""
    import threading

    from ftcurate.core.progress import Cancelled

    gate, reached = threading.Event(), threading.Event()
    real = mv.embedding_map

    def held(*args, progress=None, cancel=None, **kwargs):
        data = real(*args, progress=progress, cancel=cancel, **kwargs)
        reached.set()
        while not gate.wait(0.005):
            if cancel():
                raise Cancelled("cancelled")
        return data

    monkeypatch.setattr(mv, "embedding_map", held)
    yield gate, reached
    gate.set()


def test_cancelling_the_map_keeps_the_view_usable(qtbot, project, gated_map):
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    view.show()
    qtbot.waitExposed(view)
    view.compute()
    assert view.progress_row.isVisibleTo(view) and view.map_empty.text() == mv.COMPUTING_TEXT
    qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_computing(), timeout=MAP_TIMEOUT)
    assert view.map is None and view.map_empty.text().startswith("Map cancelled")
    assert not view.progress_row.isVisibleTo(view) and view.compute_button.isEnabled()


def test_decisions_made_while_the_map_computes_show_on_it(qtbot, project, gated_map):
    gate, reached = gated_map
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.set_project(project)
    ids = project.ids(split="train")
    view.compute()
    qtbot.waitUntil(reached.is_set, timeout=MAP_TIMEOUT)  # statuses are read: all unreviewed
    project.reject(ids[:3])  # decided in the Records tab meanwhile
    view.refresh(ids[:3])
    with qtbot.waitSignal(view.map_ready, timeout=MAP_TIMEOUT):
        gate.set()
    assert list(view.map.status[:4]) == ["rejected", "rejected", "rejected", "unreviewed"]


# -- issue 10, items 12 and 14 ------------------------------------------------------------------------------


def test_held_out_records_are_not_unreviewed_in_the_overview(qtbot, project):
    """Item 12: the 5 test records were counted as "Unreviewed"; they have a row of their own,
    also after a recount started from the keyboard."""
    ids = project.ids(split="train")
    project.approve(ids[:10])
    view = OverviewView(interactive=False)
    qtbot.addWidget(view)
    view.resize(1024, 600)
    view.set_project(project)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: view.data is not None, timeout=COUNT_TIMEOUT)
    assert view.status_card.value("Unreviewed").startswith("110 ")  # 120 training records, 10 approved
    assert view.status_card.value(HELD_OUT_LABEL) == "5"
    assert view.data.unreviewed == 110 and view.data.held_out == 5
    # decisions made elsewhere, then Refresh pressed with the keyboard
    project.approve(ids[10:20])
    view.refresh(ids[10:20])  # the status card at once...
    assert view.status_card.value("Unreviewed").startswith("100 ") and view.status_card.value(HELD_OUT_LABEL) == "5"
    old = view.data
    qtbot.waitUntil(lambda: view.data is not old and not view.is_computing(), timeout=COUNT_TIMEOUT)
    old = view.data
    view.refresh_button.setFocus()
    qtbot.keyClick(view.refresh_button, Qt.Key.Key_Space)  # ...and a recount
    qtbot.waitUntil(lambda: view.data is not old, timeout=COUNT_TIMEOUT)
    assert view.status_card.value("Unreviewed").startswith("100 ") and view.status_card.value(HELD_OUT_LABEL) == "5"
    assert view.status_card.value("Approved").startswith("20 ")
    view.shutdown()


def test_outliers_by_length_are_listed_and_read_with_the_keyboard(qtbot, project):
    """Item 14: length outliers were missing from the table ("13 flagged" of 23), the
    selected record's text could not be read, and the selection ring was hard to see."""
    from ftcurate.gui import theme
    from ftcurate.gui.theme import contrast_ratio

    ids = project.ids(split="train")
    report = make_report(project)
    report["length_outliers"] = [{"index": ids[i], "tokens": 900 + i, "score": 7.0} for i in (60, 61, 3)]
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.resize(1024, 600)
    view.set_project(project)
    view.set_report(report)
    view.set_map(grid_map(project))
    view.show()
    qtbot.waitExposed(view)
    model = view.table_model
    listed = [model.id_at(r) for r in range(model.rowCount())]
    assert sorted(listed) == sorted({ids[i] for i in (3, 50, 77, 110, 60, 61)})  # 4 by meaning + 2 more by length
    assert view.table_label.text().startswith("6 flagged: 4 by meaning") and "3 by length" in view.table_label.text()
    why = {model.id_at(r): model.index(r, model.COL_WHY).data() for r in range(model.rowCount())}
    assert why[ids[3]] == "meaning, length (903 tokens)" and why[ids[60]] == "length (960 tokens)"
    assert why[ids[50]] == "meaning"
    assert view.preview.toPlainText().strip() == mv.PREVIEW_PLACEHOLDER

    # the keyboard: into the table, down the rows; the text of the current one is shown
    view.table.setFocus()
    qtbot.waitUntil(view.table.hasFocus)
    qtbot.keyClick(view.table, Qt.Key.Key_Down)
    row = view.table.currentIndex().row()
    rid = model.id_at(row)
    sr = project.get(rid)
    text = view.preview.toPlainText()
    assert sr.record.first_user in text and f"Record {sr.index}" in text  # named by its number in the file
    assert "flagged by" in text
    qtbot.keyClick(view.table, Qt.Key.Key_Down)
    nxt = project.get(model.id_at(view.table.currentIndex().row()))
    assert nxt.record.first_user in view.preview.toPlainText() and sr.id != nxt.id
    # the record selected with the keyboard is ringed on the map, clearly
    assert view.selected_ids() == [nxt.id]
    assert len(view.ring.data) == 1 and len(view.ring_halo.data) == 1
    assert view.ring.opts["size"] >= mv._POINT_SIZE + 8 and view.ring.opts["pen"].widthF() >= 2.5
    for name in ("light", "dark"):
        theme.apply_theme(name)
        background = view.plot.backgroundBrush().color()
        ring = view.ring.opts["pen"].color()
        halo = view.ring_halo.opts["pen"].color()
        assert contrast_ratio(ring, background) >= 3.0, name  # a mark: WCAG non-text contrast
        assert halo == view.palette().color(view.palette().ColorRole.Base)
    theme.apply_theme("light")
    # Tab leaves the table (it does not walk its rows); Shift+Tab comes back
    qtbot.keyClick(view.table, Qt.Key.Key_Tab)
    assert not view.table.hasFocus()
    qtbot.keyClick(view.focusWidget() or view, Qt.Key.Key_Backtab)
    assert view.table.hasFocus()
