"""The Overview tab: the project at a glance.

Cards with counts by status, by split and by finding of the last scan; advice banners
(too few approved examples, leakage still in training...); what a training run would see;
histograms of token length and turns per example (pyqtgraph bars). The numbers come from
:func:`ftcurate.core.project.overview.overview`, computed in a :class:`~ftcurate.gui.workers.Worker`
when the tab is shown and again (debounced) whenever the store or the report changes.
"""

from __future__ import annotations

import re
import time
from typing import Optional

from PySide6.QtCore import QCoreApplication, QEvent, QSize, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPalette, QShowEvent
from PySide6.QtWidgets import (QFrame, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea,
                               QSizePolicy, QStackedWidget, QVBoxLayout, QWidget)

import pyqtgraph as pg

from ..core.quality.heuristics import FLAGS
from ..core.project.overview import Overview, overview
from ..core.quality.projection import FLAG_PRIORITY
from ..core.project.records import SPLITS
from ..core.project.store import STATUSES, Project
from . import theme
from .models import STATUS_COLORS, STATUS_LABELS
from .workers import Worker

NO_PROJECT_TEXT = "Open a dataset or a project to see its overview."
NO_SCAN_TEXT = "Run a scan (Scan ▸ Run quality scan) to count duplicates, outliers, leaks and bad answers."
HELD_OUT_LABEL = "Held out (test)"
_HELD_OUT_COLOR = "#e8590c"  # the test split's colour
_REFRESH_DELAY_MS = 400  # decisions come in bursts: recompute once they pause
_RUN_COLOR = "#2f9e44"
_ALL_COLOR = "#adb5bd"
_SPLIT_COLORS = {"train": "#1c7ed6", "validation": "#f59f00", "test": "#e8590c"}
# finding kinds of the scan report (heuristic flags take their descriptions from core.heuristics)
FINDING_TIPS = {
    "exact duplicate": "Records whose whole conversation appears more than once.",
    "near duplicate": "Records in a cluster of near-identical texts (MinHash).",
    "semantic duplicate": "Records that mean the same as another (embeddings).",
    "conflicting answers": "The same prompt with different answers.",
    "outlier": "Records far from all others by meaning (off-topic?).",
    "length outlier": "Records far longer or shorter than the rest.",
    "leakage": "Training records that match a held-out/test record.",
    "validation leakage": "Training records that match a validation record.",
    "in corpus index": "Records already in the corpus index (datasets trained on before): exact, near or "
                       "semantic copies.",
}
#: colours of the finding kinds, here and on the map (the heuristic flags share a palette)
FINDING_COLORS: dict[str, str] = {
    "": "#ced4da",  # no finding
    "leakage": "#e03131", "validation leakage": "#f783ac", "outlier": "#7048e8", "length outlier": "#be4bdb",
    "exact duplicate": "#1c7ed6", "near duplicate": "#4dabf7", "semantic duplicate": "#15aabf",
    "conflicting answers": "#e8590c", "in corpus index": "#9c36b5",
}
_FLAG_PALETTE = ("#f59f00", "#2f9e44", "#d6336c", "#0ca678", "#fd7e14", "#5c940d", "#a61e4d", "#364fc7",
                 "#495057", "#e67700", "#66a80f")
for _i, _kind in enumerate(k for k in FLAG_PRIORITY if k not in FINDING_COLORS):
    FINDING_COLORS[_kind] = _FLAG_PALETTE[_i % len(_FLAG_PALETTE)]
_BANNER_STYLE = {  # level -> (border/accent, translucent background: readable in light and dark themes)
    "error": ("#e03131", "rgba(224, 49, 49, 0.12)"),
    "warning": ("#f59f00", "rgba(245, 159, 0, 0.14)"),
    "info": ("#1c7ed6", "rgba(28, 126, 214, 0.10)"),
}
_BANNER_ICON = {"error": "✖", "warning": "⚠", "info": "ℹ"}


def stop_worker(worker: Optional[Worker], timeout_ms: int = 30000) -> None:
    """Cancel ``worker`` and wait until it has ended (its result, if any, is delivered and
    ignored by whoever checks that the project is still the same).

    ``Worker.wait`` alone is not enough in the GUI thread: the worker's thread only stops
    once its result has been delivered to the GUI thread, so its queued events are
    delivered here while waiting."""
    if worker is None:
        return
    worker.cancel()
    deadline = time.monotonic() + timeout_ms / 1000
    while worker.is_running() and time.monotonic() < deadline:
        QCoreApplication.sendPostedEvents(worker, 0)
        if worker.is_running():
            QThread.msleep(5)


def _muted(text: str = "") -> QLabel:
    return theme.muted_label(text)


def _dim(text: str) -> str:
    """Rich text in the theme's muted colour (render again after a theme change)."""
    return f"<span style='color:{theme.colors().muted}'>{text}</span>"


class Card(QFrame):
    """A titled box of rows: coloured dot, name, count (and an optional second figure)."""

    def __init__(self, title: str, tooltip: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("OverviewCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setToolTip(tooltip)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(6)
        self.title = QLabel(title)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        layout.addWidget(self.title)
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(8)
        self.grid.setVerticalSpacing(3)
        layout.addLayout(self.grid)
        self.note = _muted()
        self.note.hide()
        layout.addWidget(self.note)
        layout.addStretch(1)  # cards in a row share a height; their rows stay at the top
        self._values: dict[str, QLabel] = {}

    def set_rows(self, rows: list[tuple[str, str, str, str]], note: str = "", max_rows: int = 8) -> None:
        """``rows``: (name, value text, colour, tooltip), in columns of at most ``max_rows``
        (two columns at most). ``note``: muted text below (or none)."""
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()  # gone from the screen now, deleted soon
                item.widget().deleteLater()
        for c in range(self.grid.columnCount()):
            self.grid.setColumnStretch(c, 0)
            self.grid.setColumnMinimumWidth(c, 0)
        self._values = {}
        per_column = max_rows if len(rows) <= 2 * max_rows else (len(rows) + 1) // 2
        background = theme.colors().window  # (the palette may not have changed yet in a theme switch)
        for r, (name, value, color, tip) in enumerate(rows):
            dot = QLabel("●")
            dot.setStyleSheet(f"color: {theme.legible(color, background).name()}")  # a mark: 3:1 at least
            label = QLabel(name)
            count = QLabel(value)
            count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            count.setTextFormat(Qt.TextFormat.RichText)
            for w in (dot, label, count):
                w.setToolTip(tip)
            row, col = r % per_column, 4 * (r // per_column)  # a column: dot, name, count, gap
            self.grid.addWidget(dot, row, col)
            self.grid.addWidget(label, row, col + 1)
            self.grid.addWidget(count, row, col + 2)
            self.grid.setColumnStretch(col + 1, 1)
            if col:
                self.grid.setColumnMinimumWidth(col - 1, 18)
            self._values[name] = count
        self.note.setText(note)
        self.note.setVisible(bool(note))

    def value(self, name: str) -> Optional[str]:
        """The value shown for ``name`` as plain text (for tests and accessibility)."""
        label = self._values.get(name)
        if label is None:
            return None
        return re.sub(r"<[^>]+>", "", label.text()).replace("&nbsp;", " ")


class Banner(QLabel):
    """One piece of advice, coloured by level."""

    def __init__(self, level: str, text: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(f"{_BANNER_ICON.get(level, '')}  {text}", parent)
        self.level = level
        self.advice = text
        accent, background = _BANNER_STYLE.get(level, _BANNER_STYLE["info"])
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setStyleSheet(f"QLabel {{ background: {background}; border-left: 4px solid {accent}; "
                           "border-radius: 3px; padding: 7px 10px; }")
        self.setToolTip({"error": "Fix this before training", "warning": "Worth fixing before training",
                         "info": "Good to know"}.get(level, ""))


class _PlotWidget(pg.PlotWidget):
    """A PlotWidget that asks for a modest height (pyqtgraph asks for 480 pixels, which
    would make the scroll area scroll instead of fitting the plots into the window)."""

    def sizeHint(self) -> QSize:
        return QSize(400, 240)


def _histogram_plot(title: str, x_label: str, tooltip: str) -> pg.PlotWidget:
    """A static bar chart: no panning, no context menu; colours follow the palette."""
    plot = _PlotWidget()
    plot.setToolTip(tooltip)
    plot.setMinimumHeight(220)
    plot.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
    item = plot.getPlotItem()
    item.setTitle(title)
    item.setLabel("bottom", x_label)
    item.setLabel("left", "examples")
    item.setMouseEnabled(False, False)
    item.setMenuEnabled(False)
    item.hideButtons()
    item.showGrid(x=False, y=True, alpha=0.2)
    item.getAxis("left").setStyle(maxTickLevel=0)  # grid lines at the labelled ticks only
    return plot


class OverviewView(QWidget):
    """Counts, advice and histograms of the open project (see the module docstring)."""

    record_requested = Signal(int)  # open this record in the Records tab (not used here yet)
    records_changed = Signal(list)  # ids changed by a decision made here (none are made here)
    error_reported = Signal(str, str, str)  # title, message, details
    computed = Signal(object)  # an Overview is shown

    def __init__(self, parent: Optional[QWidget] = None, interactive: bool = True) -> None:
        super().__init__(parent)
        self.interactive = interactive
        self.project: Optional[Project] = None
        self.report: Optional[dict] = None
        self.data: Optional[Overview] = None
        self._worker: Optional[Worker] = None
        self._stale: list[Worker] = []  # replaced counts, cancelled, not yet ended
        self._generation = 0  # bumped by every change: results of older requests are dropped
        self._dirty = False  # something changed while hidden: recompute when shown
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_REFRESH_DELAY_MS)
        self._timer.timeout.connect(self.compute)
        self._build()
        self._show_empty()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)

        bar = QHBoxLayout()
        bar.setContentsMargins(12, 8, 12, 6)
        bar.setSpacing(8)
        title = QLabel("Overview")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        title.setFont(font)
        self.updated_label = _muted()
        self.updated_label.setWordWrap(False)
        self.busy = QProgressBar()
        self.busy.setFixedWidth(140)
        self.busy.setMaximumHeight(14)
        self.busy.setTextVisible(False)
        self.busy.setToolTip("Counting the records")
        self.busy.hide()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Count again (the overview also updates by itself after decisions and scans)")
        self.refresh_button.clicked.connect(lambda: self.compute())
        bar.addWidget(title)
        bar.addWidget(self.updated_label, 1)
        bar.addWidget(self.busy)
        bar.addWidget(self.refresh_button)
        outer.addLayout(bar)

        self.empty_label = QLabel(NO_PROJECT_TEXT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet("font-size: 14px; padding: 24px")
        theme.set_muted(self.empty_label)

        content = QWidget()
        content.setObjectName("OverviewContent")
        body = QVBoxLayout(content)
        body.setContentsMargins(12, 4, 12, 12)
        body.setSpacing(10)

        # what a training run would see: the headline
        self.run_label = QLabel()
        self.run_label.setObjectName("TrainingRun")
        self.run_label.setTextFormat(Qt.TextFormat.RichText)
        self.run_label.setWordWrap(True)
        self.run_label.setToolTip("Approved and edited records of the train split: what an approved-only export "
                                  "and a training run take. Tokens are counted as OpenAI counts chat examples.")
        body.addWidget(self.run_label)

        self.banner_box = QVBoxLayout()
        self.banner_box.setSpacing(6)
        body.addLayout(self.banner_box)
        self.banners: list[Banner] = []

        cards = QHBoxLayout()
        cards.setSpacing(10)
        self.status_card = Card("Review status", "How many records have been approved, rejected, edited or are "
                                                 "still waiting for a decision")
        self.split_card = Card("Splits", "train: what a run learns from; validation: watched during training; "
                                         "test: held out to compare models (never exported for training)")
        self.findings_card = Card("Findings of the last scan", "Records each kind of finding concerns; the first "
                                                               "number leaves out records you have rejected")
        for card in (self.status_card, self.split_card, self.findings_card):
            cards.addWidget(card, 1)
        cards.setStretch(2, 2)
        body.addLayout(cards)

        plots = QHBoxLayout()
        plots.setSpacing(10)
        self.token_plot = _histogram_plot(
            "Tokens per example", "tokens",
            "How long the examples are (all records in grey, what a training run takes in green). The dashed "
            "line is the training maximum length: longer examples are cut.")
        self.turn_plot = _histogram_plot(
            "Turns per example", "user turns",
            "How many user turns (a question and its answer) each example has")
        self.token_plot.getPlotItem().addLegend(offset=(-10, 10))
        self.turn_plot.getPlotItem().addLegend(offset=(-10, 10))
        plots.addWidget(self.token_plot, 3)
        plots.addWidget(self.turn_plot, 2)
        body.addLayout(plots, 1)  # the plots take the height that is left

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(content)
        self.content = scroll

        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_label)
        self.stack.addWidget(scroll)
        outer.addWidget(self.stack, 1)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.data is not None:
            self._render(self.data)  # colours of the text and the plots follow the theme

    # -- the interface the main window uses ---------------------------------------------------
    def set_project(self, project: Optional[Project]) -> None:
        if project is self.project:
            return
        self._cancel()
        self.project = project
        self.report = None
        self.data = None
        if project is None:
            self._show_empty()
            return
        self._show_empty("Counting the records…")
        self._request()

    def set_report(self, report: Optional[dict]) -> None:
        if report is self.report:
            return
        self.report = report
        if self.project is not None:
            self._request()

    def refresh(self, ids: Optional[list[int]] = None) -> None:  # noqa: ARG002 - everything is recounted
        """The store changed elsewhere: show the new status counts at once, recount the rest soon."""
        if self.project is None or self.project.closed:
            return
        if self.data is not None:
            try:
                counts = self.project.status_counts()
                held_out = self.project.status_counts(split="test")
            except Exception:  # the store is closing: the next set_project clears this view
                return
            # held-out test records are never reviewed: they are counted apart
            self._show_status({s: n - held_out.get(s, 0) for s, n in counts.items()}, sum(held_out.values()))
        self._request()

    def shutdown(self) -> None:
        """Stop counting (and wait for it): called before the project closes."""
        self._cancel()

    # -- computing ------------------------------------------------------------------------------
    def _request(self) -> None:
        """Recompute soon if shown; when shown next otherwise."""
        self._generation += 1
        if self.isVisible():
            self._timer.start(0 if self.data is None else _REFRESH_DELAY_MS)
        else:
            self._dirty = True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty and self.project is not None:
            self._timer.start(0)

    def is_computing(self) -> bool:
        return self._worker is not None and self._worker.is_running()

    @Slot()
    def compute(self) -> None:
        """Count the project now, in the background (a count under way is replaced)."""
        self._timer.stop()
        project = self.project
        if project is None or project.closed:
            return
        self._dirty = False
        if self._worker is not None:  # an older count: drop it (it stops soon), start over
            self._worker.cancel()
            self._stale.append(self._worker)
            self._worker = None
        gen = self._generation = self._generation + 1
        worker = Worker(overview, project, report=self.report, title="Counting the records", parent=self)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(lambda data, g=gen, p=project: self._on_finished(g, p, data))
        worker.failed.connect(lambda msg, details, g=gen: self._on_failed(g, msg, details))
        worker.ended.connect(lambda w=worker: self._on_ended(w))
        self._worker = worker
        self.busy.setRange(0, 0)
        self.busy.show()
        self.refresh_button.setEnabled(False)
        worker.start()

    def _cancel(self) -> None:
        self._timer.stop()
        self._generation += 1
        self._dirty = False
        workers = [self._worker, *self._stale]
        self._worker = None
        for worker in workers:
            stop_worker(worker)
        self._stale.clear()
        self.busy.hide()
        self.refresh_button.setEnabled(self.project is not None)

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.busy.setRange(0, total)
            self.busy.setValue(min(done, total))
        self.busy.setToolTip(f"{message} {done:,}/{total:,}" if total else message)

    def _on_finished(self, gen: int, project: Project, data: Overview) -> None:
        if gen != self._generation or project is not self.project:
            return  # the project or the report changed meanwhile: a newer count follows
        self.show_overview(data)

    def _on_failed(self, gen: int, message: str, details: str) -> None:
        if gen != self._generation:
            return
        self.updated_label.setText("Could not count the records")
        self.error_reported.emit("Overview failed", message, details)

    def _on_ended(self, worker: Worker) -> None:
        if worker in self._stale:
            self._stale.remove(worker)
        if worker is self._worker:
            self._worker = None
            self.busy.hide()
            self.refresh_button.setEnabled(self.project is not None)

    # -- showing ------------------------------------------------------------------------------
    def _show_empty(self, text: str = NO_PROJECT_TEXT) -> None:
        self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty_label)
        self.updated_label.setText("")
        self.refresh_button.setEnabled(self.project is not None)
        self._set_banners([])

    def show_overview(self, data: Overview) -> None:
        """Show computed numbers (the worker's result; public for tests and screenshots)."""
        self.data = data
        self._render(data)
        self.computed.emit(data)

    def _render(self, data: Overview) -> None:
        self.stack.setCurrentWidget(self.content)
        self.updated_label.setText(f"{data.records:,} records · counted at {time.strftime('%H:%M:%S')} · "
                                   f"tokens: {data.tokenizer}")
        self._show_run(data)
        self._set_banners(data.banners)
        self._show_status(data.review_status, data.held_out)
        total = max(data.records, 1)
        self.split_card.set_rows([
            (s, f"{data.splits.get(s, 0):,}&nbsp;" + _dim(f"{100 * data.splits.get(s, 0) / total:.0f}%"),
             _SPLIT_COLORS[s], f"{data.splits.get(s, 0):,} records in the {s} split") for s in SPLITS])
        self._show_findings(data)
        self._plot_tokens(data)
        self._plot_turns(data)

    def _show_run(self, data: Overview) -> None:
        stats = data.run_stats or {}
        epochs = stats.get("default_epochs")
        tail = ""
        if data.run_examples and epochs:
            tail = "<br>" + _dim(
                f"approved and edited training records · at the default {epochs} epoch{'s' if epochs != 1 else ''} "
                f"about {stats.get('billed_tokens', 0):,} tokens are trained · median "
                f"{stats.get('tokens_per_example', {}).get('median', 0):,.0f} tokens an example")
        elif not data.run_examples:
            tail = "<br>" + _dim("approve records in the Records tab (or the other tabs) to build the training set")
        self.run_label.setText(
            f"<span style='font-size:15px'>A training run would see <b>{data.run_examples:,}</b> example"
            f"{'s' if data.run_examples != 1 else ''} / <b>{data.run_tokens:,}</b> tokens</span>{tail}")

    def _show_status(self, status: dict, held_out: int = 0) -> None:
        """Review status of the records under review (percentages of those), and the held-out
        test records apart: they are never reviewed, so they are not "unreviewed"."""
        total = max(sum(status.values()), 1)
        rows = []
        for s in STATUSES:
            n = int(status.get(s, 0))
            rows.append((STATUS_LABELS[s], f"{n:,}&nbsp;" + _dim(f"{100 * n / total:.0f}%"),
                         STATUS_COLORS[s], f"{n:,} records are {STATUS_LABELS[s].lower()}"))
        note = ""
        if held_out:
            rows.append((HELD_OUT_LABEL, f"{held_out:,}", _HELD_OUT_COLOR,
                         f"{held_out:,} held-out test records: kept out of review, training and export"))
            note = "percentages of the records under review (train and validation)"
        self.status_card.set_rows(rows, note)

    def _show_findings(self, data: Overview) -> None:
        if not data.has_report:
            self.findings_card.set_rows([], NO_SCAN_TEXT)
            return
        if not data.flags:
            self.findings_card.set_rows([], "The last scan found nothing to fix.")
            return
        rows = []
        for kind, total in sorted(data.flags.items(), key=lambda kv: (-data.flags_open.get(kv[0], 0), kv[0])):
            left = data.flags_open.get(kind, 0)
            value = f"{left:,}" + ("&nbsp;" + _dim(f"of {total:,}") if left != total else "")
            tip = FINDING_TIPS.get(kind) or FLAGS.get(kind, "")
            tip += f"\n{total:,} records found by the last scan, {left:,} not rejected"
            rows.append((kind.replace("_", " "), value, FINDING_COLORS.get(kind, theme.colors().muted), tip.strip()))
        self.findings_card.set_rows(rows, "first number: not rejected yet")

    def _set_banners(self, banners: list[tuple[str, str]]) -> None:
        for b in self.banners:
            self.banner_box.removeWidget(b)
            b.hide()
            b.deleteLater()
        self.banners = [Banner(level, text) for level, text in banners]
        for b in self.banners:
            self.banner_box.addWidget(b)

    def _style_plot(self, plot: pg.PlotWidget, x_label: str) -> None:
        """Background, axes, labels and legend in the palette's colours (light or dark)."""
        pal = self.palette()
        base = pal.color(QPalette.ColorRole.Base)
        fg = pal.color(QPalette.ColorRole.Text)
        plot.setBackground(base)
        item = plot.getPlotItem()
        for name in ("left", "bottom"):
            axis = item.getAxis(name)
            axis.setPen(pg.mkPen(fg))
            axis.setTextPen(pg.mkPen(fg))
        item.setLabel("left", "examples", color=fg.name())
        item.setLabel("bottom", x_label, color=fg.name())
        item.titleLabel.setText(item.titleLabel.text, color=fg.name())
        if item.legend is not None:
            legend_bg = QColor(base)
            legend_bg.setAlpha(215)
            item.legend.setBrush(pg.mkBrush(legend_bg))
            item.legend.setLabelTextColor(fg)

    def _plot_tokens(self, data: Overview) -> None:
        plot = self.token_plot.getPlotItem()
        plot.clear()
        label = "tokens"
        if data.token_clip is not None:
            label += f" (the last bar holds everything over {data.token_clip:,})"
        self._style_plot(self.token_plot, label)
        edges = data.token_edges
        if not len(edges):
            return
        x0, x1 = edges[:-1], edges[1:]
        plot.addItem(pg.BarGraphItem(x0=x0, x1=x1, height=data.token_counts, brush=QColor(_ALL_COLOR), pen=None,
                                     name=f"all records ({data.records:,})"))
        if data.run_examples:
            plot.addItem(pg.BarGraphItem(x0=x0, x1=x1, height=data.token_counts_run, brush=QColor(_RUN_COLOR),
                                         pen=None, name=f"training run ({data.run_examples:,})"))
        if edges[0] <= data.max_tokens <= edges[-1]:
            bad = theme.colors().bad
            line = pg.InfiniteLine(pos=data.max_tokens, angle=90,
                                   pen=pg.mkPen(bad, width=1.5, style=Qt.PenStyle.DashLine),
                                   label=f"max {data.max_tokens:,}", labelOpts={"position": 0.9, "color": bad})
            plot.addItem(line)
        plot.setXRange(float(edges[0]), float(edges[-1]), padding=0.02)
        plot.setYRange(0, max(1, int(data.token_counts.max())) * 1.08, padding=0)

    def _plot_turns(self, data: Overview) -> None:
        plot = self.turn_plot.getPlotItem()
        plot.clear()
        self._style_plot(self.turn_plot, "user turns")
        values = data.turn_values
        if not len(values):
            return
        plot.addItem(pg.BarGraphItem(x=values, width=0.8, height=data.turn_counts, brush=QColor(_ALL_COLOR),
                                     pen=None, name="all records"))
        if data.run_examples:
            plot.addItem(pg.BarGraphItem(x=values, width=0.8, height=data.turn_counts_run, brush=QColor(_RUN_COLOR),
                                         pen=None, name="training run"))
        # integer ticks; the last bar is "N or more" when the count was capped
        ticks = [(float(v), str(int(v))) for v in values]
        if len(values) and int(values[-1]) < int(data.turns.max()):
            ticks[-1] = (float(values[-1]), f"{int(values[-1])}+")
        step = max(1, len(ticks) // 12)
        plot.getAxis("bottom").setTicks([ticks[::step]])
        # at least five bars wide, so that a single bar does not fill the plot
        plot.setXRange(float(values[0]) - 0.6, max(float(values[-1]), float(values[0]) + 4) + 0.6, padding=0)
        plot.setYRange(0, max(1, int(data.turn_counts.max())) * 1.08, padding=0)

