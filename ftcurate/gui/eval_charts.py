"""Charts of the Evaluate tab (pyqtgraph): one metric per system as bars with their 95%
intervals, and the pilot curve (a metric against the number of training examples, with its
interval as a band). They only draw what they are given."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..train.metrics import METRICS

#: Bar colours by system kind.
KIND_COLORS = {"base": "#868e96", "fewshot": "#f08c00", "tuned": "#1c7ed6", "raw": "#e03131"}


def _scale(metric: str) -> float:
    """Rates and scores are drawn in points (x100)."""
    return 100.0 if METRICS[metric].kind in ("rate", "score") else 1.0


class _Chart(QWidget):
    def __init__(self, title: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        self.title_label = QLabel(title)
        self.title_label.setWordWrap(True)
        v.addWidget(self.title_label)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # nothing to do with keys: Tab passes it by
        self.plot.setMinimumHeight(150)
        v.addWidget(self.plot, 1)
        self._apply_palette()

    def _apply_palette(self) -> None:
        pal = self.palette()
        self.plot.setBackground(pal.color(QPalette.ColorRole.Base))
        fg = pal.color(QPalette.ColorRole.Text)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(fg))
            axis.setTextPen(pg.mkPen(fg))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()


class MetricBars(_Chart):
    """One bar per system (coloured by kind) with its 95% interval as an error bar."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__("", parent)
        self.names: list[str] = []
        self.means: list[float] = []
        self.intervals: list[Optional[list]] = []
        self.metric: Optional[str] = None

    def show_metric(self, systems: Optional[dict], metric: Optional[str], note: str = "") -> None:
        """Bars of ``metric`` for each system of ``systems`` (a report's systems or clean_only)."""
        self.plot.clear()
        self.names, self.means, self.intervals, self.metric = [], [], [], metric
        if not systems or not metric or metric not in METRICS:
            self.title_label.setText("")
            return
        scale = _scale(metric)
        rows = [(name, s) for name, s in systems.items()
                if (s.get("metrics", {}).get(metric) or {}).get("mean") is not None]
        unit = " (points)" if scale == 100 else ""
        self.title_label.setText(f"<b>{METRICS[metric].label}</b>{unit}, 95% interval{note}")
        if not rows:
            return
        xs = np.arange(len(rows), dtype=float)
        for i, (name, s) in enumerate(rows):
            m = s["metrics"][metric]
            self.names.append(name)
            self.means.append(m["mean"] * scale)
            self.intervals.append([v * scale for v in m["ci95"]] if m.get("ci95") else None)
            color = QColor(KIND_COLORS.get(s.get("kind") or "tuned", "#1c7ed6"))
            self.plot.addItem(pg.BarGraphItem(x=[xs[i]], height=[self.means[-1]], width=0.6, brush=color,
                                              pen=pg.mkPen(color.darker(130))))
        lo = np.array([ci[0] if ci else m for ci, m in zip(self.intervals, self.means)])
        hi = np.array([ci[1] if ci else m for ci, m in zip(self.intervals, self.means)])
        means = np.array(self.means)
        fg = self.palette().color(QPalette.ColorRole.Text)
        self.plot.addItem(pg.ErrorBarItem(x=xs, y=means, top=hi - means, bottom=means - lo, beam=0.2,
                                          pen=pg.mkPen(fg, width=1.5)))
        self.plot.getAxis("bottom").setTicks([[(float(x), n) for x, n in zip(xs, self.names)]])
        top = 100.0 if scale == 100 else max(float(hi.max()) * 1.1, 1e-9)
        self.plot.setYRange(0, top, padding=0.02)
        self.plot.setXRange(-0.6, len(rows) - 0.4, padding=0)


class PilotChart(_Chart):
    """The pilot curve: mean with its interval band against training examples (log scale)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__("", parent)
        self.xs: list[float] = []
        self.means: list[float] = []

    def show_pilot(self, result: Optional[dict]) -> None:
        self.plot.clear()
        self.xs, self.means = [], []
        metric = (result or {}).get("metric")
        points = [p for p in (result or {}).get("points") or [] if p.get("mean") is not None]
        if not metric or metric not in METRICS or not points:
            self.title_label.setText("No pilot curve yet: <b>Pilot curve…</b> trains on 100, 250, 500, … "
                                     "examples and plots the metric against their number.")
            return
        scale = _scale(metric)
        status = "" if result.get("status") == "complete" else f" ({result.get('status')})"
        self.title_label.setText(f"<b>{METRICS[metric].label}</b> against training examples (log scale; "
                                 f"0 = the base model), 95% interval{status}")
        xs = np.array([math.log10(max(1, p["n"])) for p in points])
        ys = np.array([p["mean"] * scale for p in points])
        self.xs, self.means = [p["n"] for p in points], list(ys)
        band = [p for p in points if p.get("ci95")]
        color = QColor(KIND_COLORS["tuned"])
        if len(band) >= 2:
            bx = np.array([math.log10(max(1, p["n"])) for p in band])
            lo = pg.PlotDataItem(bx, np.array([p["ci95"][0] * scale for p in band]), pen=pg.mkPen(None))
            hi = pg.PlotDataItem(bx, np.array([p["ci95"][1] * scale for p in band]), pen=pg.mkPen(None))
            fill = QColor(color)
            fill.setAlpha(50)
            self.plot.addItem(lo)
            self.plot.addItem(hi)
            self.plot.addItem(pg.FillBetweenItem(lo, hi, brush=fill))
        self.plot.addItem(pg.PlotDataItem(xs, ys, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=7,
                                          symbolBrush=color, symbolPen=pg.mkPen(color)))
        self.plot.getAxis("bottom").setTicks([[(float(x), "base" if p["n"] == 0 else f"{p['n']:,}")
                                               for x, p in zip(xs, points)]])
        top = 100.0 if scale == 100 else max(float(ys.max()) * 1.2, 1e-9)
        self.plot.setYRange(0, top, padding=0.02)
        self.plot.getAxis("bottom").setLabel("training examples")


__all__ = ["MetricBars", "PilotChart", "KIND_COLORS"]
