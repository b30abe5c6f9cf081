"""The Outliers view's cut-off (issue 14): the score distribution is shown and the reviewer moves
the cut-off with the keyboard to list more (or fewer) records than the scan flagged.
pytest-qt, offscreen; keys on the focused widget, Tab between fields."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from gui_keys import press_until  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from test_overview import build_project  # noqa: E402

from ftcurate.gui.map_view import MapView, outlier_rows  # noqa: E402
from ftcurate.gui.outlier_cutoff import histogram  # noqa: E402


@pytest.fixture
def project(tmp_path):
    p = build_project(tmp_path, n_train=120, n_test=5)
    yield p
    p.close()


def report_for(project) -> dict:
    """Scores 0.10-0.35 for most records, four planted high ones; the scan flagged the top 2
    (its cap), cut-off 0.8."""
    ids = project.ids(split="train")
    scores = [round(0.10 + (i % 26) / 100, 4) for i in range(len(ids))]
    for k, i in enumerate((3, 50, 77, 110)):
        scores[i] = round(0.95 - k * 0.1, 4)  # 0.95, 0.85, 0.75, 0.65
    return {"index": "record_id", "scanned_ids": ids,
            "outliers": [{"index": ids[i], "score": scores[i]} for i in (3, 50)],
            "outlier_scores": {"model": "static-wordllama", "cutoff": 0.8, "fence": 0.6, "scores": scores}}


def test_outlier_rows_with_a_cutoff():
    report = {"outliers": [{"index": 9, "score": 0.9}],
              "outlier_scores": {"scores": [0.1, 0.9, 0.2, 0.7]}, "scanned_ids": [1, 9, 3, 5]}
    assert [r.id for r in outlier_rows(report)] == [9]
    assert [r.id for r in outlier_rows(report, cutoff=0.15)] == [9, 5, 3]
    assert all(r.by_meaning for r in outlier_rows(report, cutoff=0.15))
    counts, edges = histogram([0.1, 0.2, 0.2, float("nan")], bins=4)
    assert counts.sum() == 3 and len(edges) == 5


def test_cutoff_moved_with_the_keyboard_lists_more(qtbot, project):
    ids = project.ids(split="train")
    report = report_for(project)
    view = MapView(interactive=False)
    qtbot.addWidget(view)
    view.resize(1024, 600)
    view.set_project(project)
    view.set_report(report)
    view.show()
    qtbot.waitExposed(view)
    bar = view.cutoff_bar
    model = view.table_model
    # the scan's list and its cut-off; the distribution is drawn
    assert sorted(model.id_at(r) for r in range(model.rowCount())) == sorted([ids[3], ids[50]])
    assert bar.cutoff() == pytest.approx(0.8) and not bar.is_moved()
    assert len(bar.bars.opts["x"]) > 0 and bar.line.isVisible() and bar.scan_line.isVisible()
    assert bar.count_label.text().startswith("2 of 120 above")

    # Tab from "Only flagged" to the cut-off, then lower it with the keys
    view.only_flagged.setFocus()
    qtbot.waitUntil(view.only_flagged.hasFocus)
    qtbot.keyClick(view.only_flagged, Qt.Key.Key_Tab)
    spin = bar.spin
    qtbot.waitUntil(spin.hasFocus)
    start = bar.cutoff()
    press_until(qtbot, spin, Qt.Key.Key_Down, lambda: bar.cutoff() <= 0.7)
    assert bar.is_moved() and bar.cutoff() < start
    listed = {model.id_at(r) for r in range(model.rowCount())}
    assert listed == {ids[3], ids[50], ids[77]}  # 0.75 is now above the cut-off
    assert "your cut-off" in view.table_label.text() and view.table_label.text().startswith("3 flagged")
    assert bar.line.value() == pytest.approx(bar.cutoff()) and bar.scan_line.value() == pytest.approx(0.8)
    # Page Down: ten steps at a time, down into the bulk of the scores
    press_until(qtbot, spin, Qt.Key.Key_PageDown, lambda: bar.cutoff() <= 0.30 or bar.cutoff() == spin.minimum())
    assert model.rowCount() > 10
    assert f"{model.rowCount()} of 120 above" in bar.count_label.text()
    rows = [model.row(r) for r in range(model.rowCount())]
    assert [r.score for r in rows] == sorted((r.score for r in rows), reverse=True)  # most unusual first
    # and back up, above every score: nothing by meaning
    press_until(qtbot, spin, Qt.Key.Key_PageUp, lambda: bar.cutoff() == spin.maximum())
    assert model.rowCount() == 0

    # a new scan puts the cut-off back to the scan's
    view.set_report(report_for(project))
    assert bar.cutoff() == pytest.approx(0.8) and not bar.is_moved() and model.rowCount() == 2
