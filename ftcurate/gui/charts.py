"""Metric charts for the training window (pyqtgraph).

:class:`MetricChart` is one plot with named series; points are appended one at a time
(live training events) or set all at once (a finished run read from ``metrics.jsonl``).
Appending only stores the point and schedules a redraw: bursts of events are drawn once,
a few dozen milliseconds later, never point by point. :meth:`MetricChart.redraw` draws at
once (tests, screenshots).

:class:`LossChart` adds what comparing losses needs: the training loss smoothed with an
exponential moving average (a slider; the raw curve stays faint behind it), a log-scale
toggle, the validation loss as markers, and overlays of other runs' curves.

The charts only draw what they are given; nothing here reads files or knows about training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPalette
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

#: Series colours, in order: the live run's training and validation loss first, then one
#: per overlaid run (they repeat after the last).
COLORS = ("#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#0c8599", "#e03131", "#5c7cfa", "#868e96")
OVERLAY_COLORS = COLORS[2:]

REDRAW_MS = 40  # appended points are drawn together after at most this long


def ema(values: Sequence[float], weight: float) -> np.ndarray:
    """Exponential moving average with TensorBoard's debiasing (the first points are not
    pulled towards zero). ``weight`` in [0, 1): 0 returns the values unchanged. Non-finite
    values stay NaN and do not disturb the average."""
    y = np.asarray(values, dtype=float)
    if weight <= 0 or y.size == 0:
        return y.copy()
    out = np.full(y.shape, np.nan)
    last, n = 0.0, 0
    for i, v in enumerate(y):
        if not math.isfinite(v):
            continue
        last = last * weight + (1.0 - weight) * v
        n += 1
        out[i] = last / (1.0 - weight ** n)
    return out


class _FormattedAxis(pg.AxisItem):
    """An axis that writes each tick value with :meth:`tick_text` (``label`` is the axis title)."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's name
        return [self.tick_text(v * scale) for v in values]

    @staticmethod
    def tick_text(v: float) -> str:
        return f"{v:g}"


class ScientificAxis(_FormattedAxis):
    """An axis whose tick labels stay readable for tiny values (learning rates: 2e-04)."""

    @staticmethod
    def tick_text(v: float) -> str:
        if v == 0:
            return "0"
        if abs(v) < 1e-3 or abs(v) >= 1e5:
            return f"{v:.1e}"
        return f"{v:g}"


class CompactAxis(_FormattedAxis):
    """Large counts written short (25k, 1.2M), so the labels fit beside the axis title."""

    @staticmethod
    def tick_text(v: float) -> str:
        if abs(v) >= 1e6:
            return f"{v / 1e6:g}M"
        if abs(v) >= 1e3:
            return f"{v / 1e3:g}k"
        return f"{v:g}"


class StepAxis(CompactAxis):
    """The training-step axis: whole steps only, and never more labels than fit - each
    label is measured, with :attr:`GAP` pixels between two - so that a narrow chart (a small
    window) shows "0  500  1k" rather than "0.20.40.60.8" run together."""

    GAP = 12

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.setStyle(maxTextLevel=0)  # labels on the major ticks only

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802, N803 - pyqtgraph's names
        span = float(maxVal) - float(minVal)
        if not (span > 0 and size > 0 and math.isfinite(span)):
            return super().tickSpacing(minVal, maxVal, size)
        metrics = QFontMetricsF(self.style.get("tickFont") or self.font())
        step = nice_step(span / max(1.0, size / 24.0), minimum=1.0)
        for _ in range(40):
            first = math.ceil(float(minVal) / step) * step
            values = np.arange(first, float(maxVal) + step * 1e-9, step)
            if len(values) <= 1:
                break
            widest = max(metrics.horizontalAdvance(self.tick_text(v)) for v in values)
            if (widest + self.GAP) * len(values) <= size:
                break
            step = nice_step(step * 1.0001)  # the next of 1, 2, 5 × 10^k
        minor = step / 5 if step >= 5 and step % 5 == 0 else step
        return [(step, 0), (minor, 0)]


def nice_step(raw: float, minimum: float = 0.0) -> float:
    """The smallest of 1, 2, 5 × 10^k that is at least ``raw`` (and ``minimum``)."""
    raw = max(raw, minimum, 1e-12)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw - 1e-12:
            return max(m * power, minimum)
    return max(10 * power, minimum)


class LossAxis(pg.AxisItem):
    """On a log scale, label only the ticks at 1, 2 and 5 times a power of ten (the others
    crowd together near the top of each decade) and write them plainly: 0.5, 2, 10."""

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's name
        out = []
        for v in values:
            x = float(10 ** float(v) * scale)
            mantissa = x / 10 ** math.floor(math.log10(x)) if x > 0 else 0
            out.append(f"{x:g}" if any(abs(mantissa - m) < 1e-6 for m in (1, 2, 5)) else "")
        return out


@dataclass
class _Series:
    item: pg.PlotDataItem
    xs: list = field(default_factory=list)
    ys: list = field(default_factory=list)
    label: Optional[str] = None  # its legend entry, shown while the series has points


class MetricChart(QWidget):
    """A titled plot with named series against the training step.

    ``add_series`` once per curve, then ``add_point``/``set_data``. ``data(name)`` returns
    what the curve's PlotDataItem holds (the drawn x and y arrays)."""

    TITLE_PT = 9.0

    def __init__(self, title: str, y_label: str = "", parent: Optional[QWidget] = None,
                 left_axis: Optional[pg.AxisItem] = None, short_title: str = "") -> None:
        super().__init__(parent)
        self.title = title
        self.short_title = short_title  # shown when the chart is too narrow for the title
        self._shown_title = ""
        axes = {"bottom": StepAxis("bottom")}
        if left_axis is not None:
            axes["left"] = left_axis
        self.plot = pg.PlotWidget(axisItems=axes)
        self.plot.getAxis("left").setWidth(54)  # fixed: the plot does not jump as the values grow
        self.plot.setMinimumHeight(120)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "step")
        if y_label:
            self.plot.setLabel("left", y_label)
        self.plot.setMenuEnabled(False)
        self.legend: Optional[pg.LegendItem] = None
        self._series: dict[str, _Series] = {}
        self._dirty: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self.box = QVBoxLayout(self)  # subclasses add their controls under the plot
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.setSpacing(2)
        self.box.addWidget(self.plot, 1)
        # said instead of an empty plot when there is nothing to draw, and why (set_note)
        self.note = QLabel()
        self.note.setObjectName("ChartNote")
        self.note.setWordWrap(True)
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setMinimumHeight(120)
        self.note.setAutoFillBackground(True)
        self.note.setBackgroundRole(QPalette.ColorRole.Base)
        self.note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.note.hide()
        self.box.addWidget(self.note, 1)
        self._apply_palette()

    def set_note(self, text: str) -> None:
        """Show ``text`` (the chart's title, then why it is empty) in place of the plot;
        an empty text shows the plot again."""
        if text:
            self.note.setText(f"<b>{self.title}</b><br>{text}")
        self.note.setVisible(bool(text))
        self.plot.setVisible(not text)

    def note_text(self) -> str:
        return self.note.text() if self.note.isVisibleTo(self) else ""

    # -- series -----------------------------------------------------------------------------
    def add_series(self, name: str, color: str, width: float = 2.0, style: Qt.PenStyle = Qt.PenStyle.SolidLine,
                   symbol: Optional[str] = None, label: Optional[str] = None, alpha: int = 255,
                   z: float = 0.0) -> pg.PlotDataItem:
        """Add (or replace) a curve. ``label`` puts it in the legend."""
        self.remove_series(name)
        c = QColor(color)
        c.setAlpha(alpha)
        pen = pg.mkPen(c, width=width, style=style)
        kwargs = {}
        if symbol:
            kwargs = dict(symbol=symbol, symbolSize=7, symbolBrush=pg.mkBrush(c), symbolPen=pg.mkPen(c))
        item = pg.PlotDataItem([], [], pen=pen, name=label, antialias=True, connect="finite", **kwargs)
        item.setZValue(z)
        if label and self.legend is None:
            self.legend = self.plot.addLegend(offset=(-8, 8), labelTextSize="8pt")
            self._apply_palette()
        self.plot.addItem(item)
        self._series[name] = _Series(item, label=label)
        self._sync_legend(self._series[name])
        return item

    def _sync_legend(self, s: _Series) -> None:
        """Only curves with points are listed (an empty "train" entry would just cover the
        past runs' curves); the legend box hides when it lists nothing."""
        legend = self.legend
        if legend is None or not s.label:
            return
        listed = any(sample.item is s.item for sample, _ in legend.items)
        if s.xs and not listed:
            legend.addItem(s.item, s.label)
        elif not s.xs and listed:
            legend.removeItem(s.item)
        legend.setVisible(bool(legend.items))

    def remove_series(self, name: str) -> None:
        s = self._series.pop(name, None)
        if s is not None:
            self.plot.removeItem(s.item)  # also leaves the legend
        self._dirty.discard(name)

    def has_series(self, name: str) -> bool:
        return name in self._series

    def series_names(self) -> list[str]:
        return list(self._series)

    def item(self, name: str) -> pg.PlotDataItem:
        return self._series[name].item

    def add_point(self, name: str, x: float, y: Optional[float]) -> None:
        """Append a point (None/NaN leaves a gap); drawn at the next redraw."""
        s = self._series[name]
        s.xs.append(float(x))
        s.ys.append(float("nan") if y is None else float(y))
        self._dirty.add(name)
        if not self._timer.isActive():
            self._timer.start()

    def set_data(self, name: str, xs: Iterable[float], ys: Iterable[Optional[float]]) -> None:
        s = self._series[name]
        s.xs = [float(x) for x in xs]
        s.ys = [float("nan") if y is None else float(y) for y in ys]
        self._dirty.add(name)
        self.redraw()

    def clear_data(self, names: Optional[Iterable[str]] = None) -> None:
        """Empty the given series (default: all), keeping them."""
        for name in list(names) if names is not None else list(self._series):
            if name in self._series:
                self._series[name].xs, self._series[name].ys = [], []
                self._dirty.add(name)
        self.redraw()

    def raw(self, name: str) -> tuple[list, list]:
        """The points given to a series (before any smoothing)."""
        s = self._series[name]
        return s.xs, s.ys

    def data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The x and y arrays the series' PlotDataItem holds (after smoothing)."""
        item = self._series[name].item
        xs = item.xData if item.xData is not None else np.array([])
        ys = item.yData if item.yData is not None else np.array([])
        return np.asarray(xs), np.asarray(ys)

    # -- drawing --------------------------------------------------------------------------------
    def transform(self, name: str, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What a series draws for its points (subclasses smooth or derive series)."""
        return xs, ys

    def redraw(self) -> None:
        """Draw every changed series now."""
        self._timer.stop()
        dirty, self._dirty = self._dirty, set()
        for name in dirty:
            s = self._series.get(name)
            if s is not None:
                xs, ys = self.transform(name, np.asarray(s.xs, dtype=float), np.asarray(s.ys, dtype=float))
                s.item.setData(xs, self._for_axis(ys))
                self._sync_legend(s)

    def redraw_all(self) -> None:
        self._dirty.update(self._series)
        self.redraw()

    def _for_axis(self, ys: np.ndarray) -> np.ndarray:
        return ys

    # -- look -----------------------------------------------------------------------------------
    def _apply_palette(self) -> None:
        """Follow the widget palette (light and dark themes)."""
        pal = self.palette()
        bg = pal.color(QPalette.ColorRole.Base)
        fg = pal.color(QPalette.ColorRole.Text)
        self.plot.setBackground(bg)
        for axis in ("left", "bottom"):
            ax = self.plot.getAxis(axis)
            ax.setPen(pg.mkPen(fg))
            ax.setTextPen(pg.mkPen(fg))
        self._shown_title = ""
        self._apply_title()
        if self.legend is not None:
            self.legend.setLabelTextColor(fg)
            for _sample, label in self.legend.items:
                # pyqtgraph keeps the new colour for the next text only: draw the labels again
                label.setText(label.text, color=fg)
            back = QColor(bg)
            back.setAlpha(200)
            self.legend.setBrush(pg.mkBrush(back))

    def shown_title(self) -> str:
        """The title, else the short title, else the title cut with "…": what fits the width."""
        font = QFont(self.font())
        font.setPointSizeF(self.TITLE_PT)
        metrics = QFontMetricsF(font)
        # the title is centred over the plot area: the chart less its left axis
        room = max(0.0, self.width() - self.plot.getAxis("left").width() - 12.0)
        for text in (self.title, self.short_title):
            if text and metrics.horizontalAdvance(text) <= room:
                return text
        return metrics.elidedText(self.short_title or self.title, Qt.TextElideMode.ElideRight, room)

    def _apply_title(self) -> None:
        text = self.shown_title()
        if text != self._shown_title:
            self._shown_title = text
            fg = self.palette().color(QPalette.ColorRole.Text)
            self.plot.setTitle(text, color=fg.name(), size=f"{self.TITLE_PT:g}pt")
            self.plot.setToolTip(self.title if text != self.title else "")

    def resizeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt's name
        super().resizeEvent(event)
        self._apply_title()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)


class LossChart(MetricChart):
    """Training and validation loss of the live run, plus overlaid earlier runs.

    Series: ``"train"`` (the raw losses, drawn faint), ``"train_smooth"`` (their EMA, drawn
    from the same points), ``"eval"`` (validation losses, markers). Each overlay adds
    ``"run:<label>"`` (smoothed training loss) and ``"run:<label>:eval"``."""

    smoothing_changed = Signal(float)
    log_scale_changed = Signal(bool)

    def __init__(self, title: str = "Loss", parent: Optional[QWidget] = None, smoothing: float = 0.6) -> None:
        super().__init__(title, "loss", parent, left_axis=LossAxis("left"))
        self.smoothing = max(0.0, min(0.99, float(smoothing)))
        self.log_scale = False
        self._overlays: dict[str, int] = {}  # label -> colour index
        self.add_series("train", COLORS[0], width=1.0, alpha=70, z=1)
        self.add_series("train_smooth", COLORS[0], width=2.2, label="train", z=3)
        self.add_series("eval", COLORS[1], width=1.6, symbol="o", label="validation", z=4)

        controls = QHBoxLayout()
        controls.setContentsMargins(4, 0, 4, 0)
        controls.addWidget(QLabel("Smoothing"))
        self.smooth_slider = QSlider(Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, 99)
        self.smooth_slider.setValue(round(self.smoothing * 100))
        self.smooth_slider.setMaximumWidth(160)
        self.smooth_slider.setToolTip("Exponential moving average of the training loss (0 = raw values). "
                                      "The raw curve stays faint behind the smoothed one.")
        self.smooth_label = QLabel(f"{self.smoothing:.2f}")
        self.smooth_label.setMinimumWidth(32)
        self.log_check = QCheckBox("Log scale")
        self.log_check.setToolTip("Logarithmic loss axis: small late improvements become visible")
        self.smooth_slider.valueChanged.connect(self._on_slider)
        self.log_check.toggled.connect(self.set_log_scale)
        controls.addWidget(self.smooth_slider)
        controls.addWidget(self.smooth_label)
        controls.addSpacing(12)
        controls.addWidget(self.log_check)
        controls.addStretch(1)
        self.box.addLayout(controls)

    def _on_slider(self, value: int) -> None:  # a method, not a lambda holding self (see TrainingView)
        self.set_smoothing(value / 100.0)

    # -- live run -----------------------------------------------------------------------------
    def add_train_loss(self, step: float, loss: Optional[float]) -> None:
        self.add_point("train", step, loss)
        self.add_point("train_smooth", step, loss)

    def add_eval_loss(self, step: float, loss: Optional[float]) -> None:
        self.add_point("eval", step, loss)

    def clear_live(self) -> None:
        self.clear_data(["train", "train_smooth", "eval"])

    # -- overlays ---------------------------------------------------------------------------------
    def add_overlay(self, label: str, train: tuple[Sequence[float], Sequence[float]],
                    eval: tuple[Sequence[float], Sequence[float]] = ((), ())) -> None:  # noqa: A002
        """Show another run's training loss (smoothed like the live one) and validation loss."""
        if label not in self._overlays:
            used = set(self._overlays.values())
            self._overlays[label] = next((i for i in range(len(OVERLAY_COLORS)) if i not in used),
                                         len(self._overlays) % len(OVERLAY_COLORS))
        color = OVERLAY_COLORS[self._overlays[label] % len(OVERLAY_COLORS)]
        self.add_series(f"run:{label}", color, width=1.6, label=label, z=2)
        self.add_series(f"run:{label}:eval", color, width=1.0, style=Qt.PenStyle.DashLine, symbol="t", z=2)
        self.set_data(f"run:{label}", *train)
        self.set_data(f"run:{label}:eval", *eval)

    def remove_overlay(self, label: str) -> None:
        self._overlays.pop(label, None)
        self.remove_series(f"run:{label}")
        self.remove_series(f"run:{label}:eval")

    def overlays(self) -> list[str]:
        return list(self._overlays)

    def clear_overlays(self) -> None:
        for label in list(self._overlays):
            self.remove_overlay(label)

    # -- options ----------------------------------------------------------------------------------
    def set_smoothing(self, weight: float) -> None:
        weight = max(0.0, min(0.99, float(weight)))
        if weight == self.smoothing:
            return
        self.smoothing = weight
        self.smooth_label.setText(f"{weight:.2f}")
        if self.smooth_slider.value() != round(weight * 100):
            self.smooth_slider.setValue(round(weight * 100))
        self._dirty.update(n for n in self.series_names() if self._smoothed(n))
        self.redraw()
        self.smoothing_changed.emit(weight)

    def set_log_scale(self, on: bool) -> None:
        on = bool(on)
        if on == self.log_scale:
            return
        self.log_scale = on
        if self.log_check.isChecked() != on:
            self.log_check.setChecked(on)
        self.plot.setLogMode(x=False, y=on)
        self.redraw_all()
        self.plot.enableAutoRange()
        self.log_scale_changed.emit(on)

    # -- drawing ------------------------------------------------------------------------------------
    @staticmethod
    def _smoothed(name: str) -> bool:
        return name == "train_smooth" or (name.startswith("run:") and not name.endswith(":eval"))

    def transform(self, name: str, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._smoothed(name):
            return xs, ema(ys, self.smoothing)
        return xs, ys

    def _for_axis(self, ys: np.ndarray) -> np.ndarray:
        if self.log_scale:  # a log axis cannot show zero or negative losses: leave gaps
            ys = np.where(ys > 0, ys, np.nan)
        return ys

    def redraw(self) -> None:
        # The faint raw curve only adds noise when nothing is smoothed.
        raw = self._series.get("train")
        if raw is not None:
            raw.item.setVisible(self.smoothing > 0)
        super().redraw()


def loss_curves(events: Iterable[dict]) -> tuple[tuple[list, list], tuple[list, list]]:
    """((steps, losses), (eval steps, eval losses)) of a run's metric events (the lines of
    metrics.jsonl): training events carry ``loss``, validation events ``eval_loss``."""
    ts, tl, es, el = [], [], [], []
    for e in events:
        if not isinstance(e, dict) or "step" not in e:
            continue
        kind = e.get("type")
        if "loss" in e and kind in (None, "train"):
            ts.append(e["step"])
            tl.append(e["loss"])
        elif "eval_loss" in e and kind in (None, "eval"):
            es.append(e["step"])
            el.append(e["eval_loss"])
    return (ts, tl), (es, el)
