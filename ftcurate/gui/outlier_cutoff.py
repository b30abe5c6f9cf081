"""The outlier cut-off of the Outliers view: the distribution of the scan's outlier scores as a
small histogram, the scan's cut-off and the reviewer's own, which a spin box moves (arrow keys:
one step; Page Up/Down: ten). Lowering the cut-off lists more records, raising it fewer; the
scan's report is not changed (it keeps what the scan flagged).

The scan flags at most 1% of a large set (``ScanSettings.outlier_max_share``); the histogram
shows where that cut-off falls in the distribution, so a reviewer who wants to read further
down the ranking can see how many records each step adds.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from . import theme

BINS = 60
DECIMALS = 3


def histogram(scores: Sequence[float], bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` of the finite scores (empty arrays when there are none)."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    lo, hi = float(s.min()), float(s.max())
    if hi <= lo:
        hi = lo + 1e-3
    return np.histogram(s, bins=bins, range=(lo, hi))


class CutoffBar(QWidget):
    """Histogram of the outlier scores with the scan's cut-off (dashed) and the current one
    (solid), and the spin box that moves the current one. ``cutoff_changed(value)`` is emitted
    when the reviewer moves it (not when a new report sets it)."""

    cutoff_changed = Signal(float)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._scores = np.zeros(0, dtype=np.float64)
        self._scan_cutoff: Optional[float] = None
        self._setting = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(6)
        self.label = QLabel("Cut-off")
        self.spin = QDoubleSpinBox()
        self.spin.setObjectName("OutlierCutoff")
        self.spin.setDecimals(DECIMALS)
        self.spin.setKeyboardTracking(False)
        self.spin.setAccelerated(True)
        self.spin.setToolTip("Records scoring above this cut-off are listed (Up/Down: one step, Page Up/Down: "
                             "ten).\nLower it to read further down the ranking; the scan's own cut-off is the "
                             "dashed line.")
        self.label.setBuddy(self.spin)
        self.spin.valueChanged.connect(self._on_value)
        self.count_label = theme.muted_label(wrap=False)
        row.addWidget(self.label)
        row.addWidget(self.spin)
        row.addWidget(self.count_label, 1)
        layout.addLayout(row)

        self.plot = pg.PlotWidget()
        self.plot.setObjectName("OutlierHistogram")
        self.plot.setFixedHeight(64)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        item = self.plot.getPlotItem()
        item.hideAxis("left")
        item.hideButtons()
        item.getAxis("bottom").setHeight(18)
        self.plot.setToolTip("How the outlier scores are spread (bar height: records per bin, log scale).\n"
                             "Solid line: the cut-off of this list; dashed: the scan's.")
        self.bars = pg.BarGraphItem(x=[], height=[], width=1.0)
        item.addItem(self.bars)
        self.line = pg.InfiniteLine(angle=90, movable=False)
        self.scan_line = pg.InfiniteLine(angle=90, movable=False)
        item.addItem(self.line)
        item.addItem(self.scan_line)
        layout.addWidget(self.plot)
        self._apply_palette()
        self.set_scores([], None)

    # -- state -----------------------------------------------------------------------------
    def cutoff(self) -> float:
        return float(self.spin.value())

    def is_moved(self) -> bool:
        """True when the reviewer moved the cut-off away from the scan's."""
        return self._scan_cutoff is not None and not math.isclose(self.cutoff(), self._rounded(self._scan_cutoff))

    def above(self) -> int:
        """Records scoring above the current cut-off."""
        return int(np.count_nonzero(self._scores > self.cutoff())) if self._scores.size else 0

    @staticmethod
    def _rounded(x: float) -> float:
        return round(float(x), DECIMALS)

    def set_scores(self, scores: Sequence[float], scan_cutoff: Optional[float]) -> None:
        """Show the distribution of ``scores`` and put the cut-off back to the scan's."""
        s = np.asarray(scores if scores is not None else [], dtype=np.float64)
        self._scores = s[np.isfinite(s)]
        self._scan_cutoff = None if scan_cutoff is None or not math.isfinite(scan_cutoff) else float(scan_cutoff)
        has = self._scores.size > 0 and self._scan_cutoff is not None
        self._setting = True
        try:
            if has:
                lo, hi = float(self._scores.min()), float(self._scores.max())
                span = max(hi - lo, 1e-3)
                self.spin.setRange(self._rounded(min(lo, self._scan_cutoff) - 0.001),
                                   self._rounded(max(hi, self._scan_cutoff) + 0.001))
                # a step moves about 1/200 of the range of scores (at least 0.001)
                self.spin.setSingleStep(max(10 ** -DECIMALS, round(span / 200, DECIMALS)))
                self.spin.setValue(self._rounded(self._scan_cutoff))
            else:
                self.spin.setRange(0.0, 1.0)
                self.spin.setValue(0.0)
        finally:
            self._setting = False
        self.spin.setEnabled(has)
        self.label.setEnabled(has)
        self._draw()

    def _on_value(self, _value: float) -> None:
        self._draw()
        if not self._setting:
            self.cutoff_changed.emit(self.cutoff())

    # -- drawing -----------------------------------------------------------------------------
    def _draw(self) -> None:
        counts, edges = histogram(self._scores)
        if counts.size:
            width = float(edges[1] - edges[0])
            self.bars.setOpts(x=(edges[:-1] + width / 2), height=np.log10(1 + counts), width=width * 0.9)
            self.plot.getPlotItem().setXRange(float(edges[0]), float(edges[-1]), padding=0.02)
        else:
            self.bars.setOpts(x=[], height=[], width=1.0)
        shown = self._scores.size > 0 and self._scan_cutoff is not None
        self.line.setVisible(shown)
        self.scan_line.setVisible(shown)
        if shown:
            self.line.setValue(self.cutoff())
            self.scan_line.setValue(self._scan_cutoff)
            n = self.above()
            share = 100.0 * n / max(1, self._scores.size)
            text = f"{n:,} of {self._scores.size:,} above ({share:.1f}%)"
            if self.is_moved():
                text += f" · scan's cut-off {self._scan_cutoff:.{DECIMALS}f}"
        else:
            text = ""
        self.count_label.setText(text)
        self.count_label.setToolTip(text)

    def _apply_palette(self) -> None:
        pal = self.palette()
        colors = theme.colors()
        self.plot.setBackground(pal.color(QPalette.ColorRole.Base))
        text = pal.color(QPalette.ColorRole.Text)
        self.bars.setOpts(brush=pg.mkBrush(pal.color(QPalette.ColorRole.PlaceholderText)), pen=None)
        accent = getattr(colors, "accent", None) or pal.color(QPalette.ColorRole.Highlight)
        self.line.setPen(pg.mkPen(accent, width=2))
        self.scan_line.setPen(pg.mkPen(text, width=1, style=Qt.PenStyle.DashLine))
        axis = self.plot.getPlotItem().getAxis("bottom")
        axis.setPen(pg.mkPen(text))
        axis.setTextPen(pg.mkPen(text))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
            self._draw()
