"""A small window (1024×700, issue 10 item 13): the Outliers & map, Overview and Training
views fit without scrolling sideways, their buttons are whole and reachable with the
keyboard, and the small charts keep their step labels apart."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pg = pytest.importorskip("pyqtgraph")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QFontMetricsF  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from ftcurate.gui.charts import StepAxis  # noqa: E402
from test_gui_contrast import project_path, visit, window  # noqa: E402,F401,F811 - fixtures

TABS = ("map", "overview", "training", "training:evaluate")


def whole(widget: QWidget) -> bool:
    """The widget is shown entirely (not cut by its scroll area or a neighbour)."""
    return widget.isVisible() and widget.visibleRegion().boundingRect() == widget.rect()


def controls(window, key: str) -> list[QWidget]:
    if key == "map":
        v = window.views["map"]
        return [v.compute_button, v.color_by, v.lasso_button, v.clear_button, v.approve_button, v.reject_button,
                v.only_flagged]
    if key == "overview":
        return [window.views["overview"].refresh_button]
    v = window.training_view
    if key == "training":
        return [v.start_button, v.stop_button, v.cancel_button, v.resume_button,
                v.runs_panel.refresh_runs_button, v.runs_panel.use_settings_button]
    e = v.eval_panel
    return [e.eval_source_combo, e.heldout_browse, e.base_check, e.fewshot_check, e.tuned_check, e.raw_check,
            e.metrics_button, e.limit_spin, e.max_new_spin, e.eval_button, e.eval_cancel_button, e.pilot_button,
            e.merge_button]


def test_my_views_fit_a_1024_by_700_window(qtbot, window):
    assert window.width() == 1024 and window.height() == 700
    for key in TABS:
        visit(qtbot, window, key)
        view = window.training_view if key.startswith("training") else window.views[key]
        page = window._page_of(view)
        qtbot.waitUntil(lambda: view.width() == page.viewport().width())  # the layout has settled
        assert page.horizontalScrollBar().maximum() == 0, (key, view.minimumSizeHint())
        assert view.minimumSizeHint().width() <= page.viewport().width(), key
        for w in controls(window, key):
            page.ensureWidgetVisible(w)  # reachable: scrolled to if the window is short
            assert whole(w), (key, w.text() if hasattr(w, "text") else type(w).__name__, w.rect(),
                              w.visibleRegion().boundingRect())


def test_the_small_charts_keep_their_ticks_apart(qtbot, window):
    visit(qtbot, window, "training")
    view = window.training_view
    for step in range(1, 1201):
        view.runs_panel.plot_event({"type": "train", "step": step, "loss": 1.0, "learning_rate": 1e-4,
                                    "tokens_per_second": 1000.0, "gpu_memory_bytes": 1 << 30})
    for chart in (view.lr_chart, view.throughput_chart, view.memory_chart):
        chart.redraw()
        chart.plot.getPlotItem().getViewBox().autoRange()
        axis = chart.plot.getPlotItem().getAxis("bottom")
        assert isinstance(axis, StepAxis)
        lo, hi = chart.plot.getPlotItem().viewRange()[0]
        width = axis.geometry().width()
        values = axis.tickValues(lo, hi, width)[0][1]
        labels = axis.tickStrings(values, 1.0, 1.0)
        needed = sum(chart.fontMetrics().horizontalAdvance(t) + 8 for t in labels)
        assert needed <= width, (chart.title, labels, width)  # the labels do not run together
        assert len(values) >= 2, chart.title
        # the title is whole (the short one when the chart is narrow), not cut off
        title = chart.plot.getPlotItem().titleLabel.text
        assert title in (chart.title, chart.short_title), title
        assert title == chart.shown_title()
        box = chart.plot.getPlotItem().getViewBox()
        font = chart.font()
        font.setPointSizeF(chart.TITLE_PT)
        assert QFontMetricsF(font).horizontalAdvance(title) <= box.width(), (title, box.width())


def test_the_training_settings_are_reachable_with_the_keyboard(qtbot, window):
    """Every field of the scrolling settings can be reached with Tab, and is scrolled into view."""
    visit(qtbot, window, "training")
    panel = window.training_view.settings_panel
    first = panel.model_edit
    window.activateWindow()
    first.setFocus()
    qtbot.waitUntil(first.hasFocus)
    seen = set()
    for _ in range(120):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        w = QApplication.focusWidget()
        if w is None or not panel.isAncestorOf(w):
            continue
        field = next((f for f in panel.field_widgets.values() if f is w or f.isAncestorOf(w)), None)
        if field is not None:
            seen.add(field)
            assert panel.viewport().rect().contains(
                field.mapTo(panel.viewport(), field.rect().center())), "a focused field is scrolled into view"
    enabled = {f for f in panel.field_widgets.values() if f.isEnabled() and f.isVisibleTo(panel)}
    assert enabled <= seen, sorted(type(f).__name__ for f in enabled - seen)
