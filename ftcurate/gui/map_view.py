"""The "Outliers & map" tab: the outlier review beside a 2-D map of the records by meaning.

Left, the records the last scan scored as unusual, most unusual first (a small
:class:`OutlierModel`; record text is fetched from the store a block of rows at a time).
Right, every training record as a point of a pyqtgraph scatter plot, placed by
:func:`ftcurate.core.quality.projection.embedding_map` (computed in a
:class:`~ftcurate.gui.workers.Worker`, with progress and cancel) and coloured by review
status or by the main finding of the scan. Click a point to open its record; draw a lasso
(drag with Shift held, or turn on "Lasso") to select the points inside, then approve or
reject them all as one undo step. Selecting rows of the table selects (rings) their points.
"""

from __future__ import annotations

import math
import traceback
from typing import Any, NamedTuple, Optional, Sequence

from PySide6.QtCore import QEvent, QItemSelection, QModelIndex, QPersistentModelIndex, QPointF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGraphicsPathItem, QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton, QSplitter, QStackedWidget, QToolButton, QVBoxLayout, QWidget)

import numpy as np
import pyqtgraph as pg

from ..core.quality.embeddings import FAST
from ..core.quality.projection import FLAG_PRIORITY, MapData, embedding_map, points_in_polygon
from ..core.project.store import STATUSES, Project
from . import theme
from .models import STATUS_COLORS, STATUS_LABELS, RowsTableModel, status_icon
from .outlier_cutoff import CutoffBar
from .overview_view import FINDING_COLORS, stop_worker
from .wheel_guard import guard_wheel
from .workers import Worker, describe_error
from .widgets import ConversationView, list_table

NO_PROJECT_TEXT = "Open a dataset or a project to review its outliers."
NO_SCAN_TEXT = "Run a scan to see outliers (Scan ▸ Run quality scan): every record gets a score for how far it " \
               "is from its nearest neighbours."
NO_OUTLIERS_TEXT = "The last scan flagged no outliers. Untick “Only flagged” to see every scored record."
NOT_SCORED_TEXT = "The last scan did not score outliers (they are switched off in Scan ▸ Scan settings)."
NO_MAP_PROJECT_TEXT = "Open a dataset or a project to see its map."
NO_MAP_TEXT = "Click “Compute map” to place every training record on a map by meaning:\nsimilar requests land " \
              "close together, odd ones stand apart."
COMPUTING_TEXT = "Computing the map…"
_FIRST_USER_CHARS = 240
_POINT_SIZE = 6
_RING_SIZE = _POINT_SIZE + 10  # the selection ring: well outside the point it circles
PREVIEW_PLACEHOLDER = "Select an outlier to read it here."


class OutlierRow(NamedTuple):
    """A row of the outlier table."""

    id: int  # the record's store id (shown by its number in its file)
    score: float  # outlier score by meaning (NaN when the record was not scored)
    flagged: bool  # the scan flagged it (by meaning, by length or both)
    by_meaning: bool = False  # flagged by the meaning (embedding) detector
    length_tokens: Optional[int] = None  # flagged by length: its length in tokens (-1: unknown)

    @property
    def why(self) -> str:
        parts = ["meaning"] if self.by_meaning else []
        if self.length_tokens is not None:
            parts.append("length" if self.length_tokens < 0 else f"length ({self.length_tokens:,} tokens)")
        return ", ".join(parts)


def outlier_rows(report: Optional[dict], only_flagged: bool = True, cutoff: Optional[float] = None) -> list[OutlierRow]:
    """The records the scan flagged - far from the others by meaning (``outliers``) or by
    length (``length_outliers``) - by meaning score, highest first (records without one
    last); with ``only_flagged=False`` every record it scored as well. ``cutoff``: list by
    meaning the records scoring above it instead of those the scan flagged (the reviewer moved
    the cut-off in the view)."""
    if not report:
        return []
    meaning = {int(o["index"]): float(o.get("score", math.nan)) for o in report.get("outliers") or []}
    length: dict[int, int] = {}
    for o in report.get("length_outliers") or []:
        tokens = o.get("tokens")
        length[int(o["index"])] = int(tokens) if isinstance(tokens, (int, float)) else -1
    every: dict[int, float] = {}
    order = report.get("scanned_ids")
    scores = (report.get("outlier_scores") or {}).get("scores")
    if order and scores and len(order) == len(scores):
        every = {int(rid): float(sc) for rid, sc in zip(order, scores)}
    if cutoff is not None and every:
        meaning = {rid: sc for rid, sc in every.items() if sc > cutoff}
    ids = set(meaning) | set(length)
    if not only_flagged:
        ids |= set(every)
    rows = [OutlierRow(rid, meaning.get(rid, every.get(rid, math.nan)), rid in meaning or rid in length,
                       rid in meaning, length.get(rid)) for rid in ids]
    rows.sort(key=lambda r: (-r.score if r.score == r.score else math.inf, r.id))
    return rows


class OutlierModel(RowsTableModel):
    """Scored records, most unusual first. Only ids and scores are held; the record
    number, status and first user turn are read from the store a block of rows at a time."""

    COLUMNS = ("#", "Score", "Flagged by", "Status", "First user turn")
    COL_INDEX, COL_SCORE, COL_WHY, COL_STATUS, COL_TEXT = range(5)
    _TIPS = ("Record number in its source file (0-based)",
             "Outlier score by meaning: mean cosine distance to the nearest neighbours (higher: more unusual). "
             "Bold: above the scan's cut-off",
             "What flagged it: its meaning (far from its neighbours) and/or its length (far longer or shorter "
             "than the rest)",
             "Review status", "The first user message")
    IdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent=None, block: int = 100) -> None:
        super().__init__(parent)
        self.project: Optional[Project] = None
        self._rows: list[OutlierRow] = []
        self._info: dict[int, tuple[int, str, str, bool]] = {}  # id -> (index, status, first user, edited)
        self.block = block
        self._bold = QFont()
        self._bold.setBold(True)

    def set_rows(self, project: Optional[Project], rows: list[OutlierRow]) -> None:
        self.beginResetModel()
        self.project = project
        self._rows = list(rows)
        self._info.clear()
        self.endResetModel()

    def id_at(self, row: int) -> Optional[int]:
        return self._rows[row][0] if 0 <= row < len(self._rows) else None

    def row_of(self, record_id: int) -> Optional[int]:
        for r, row in enumerate(self._rows):
            if row.id == record_id:
                return r
        return None

    def refresh(self, ids: Optional[Sequence[int]] = None) -> None:
        """Forget what was read of these records (all when None) and repaint."""
        if ids is None:
            self._info.clear()
        else:
            for rid in ids:
                self._info.pop(int(rid), None)
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(self.COLUMNS) - 1))

    def _fetch(self, row: int) -> None:
        start = max(0, row - self.block // 4)
        wanted = [row.id for row in self._rows[start:start + self.block] if row.id not in self._info]
        if not wanted or self.project is None or self.project.closed:
            return
        try:
            records = self.project.get_many(wanted)
        except KeyError:  # a record is gone: read the others one by one
            records = []
            for rid in wanted:
                try:
                    records.append(self.project.get(rid))
                except KeyError:
                    self._info[rid] = (-1, "", "(no longer in the project)", False)
        for sr in records:
            first = " ".join((sr.record.first_user or "").split())
            if len(first) > _FIRST_USER_CHARS:
                first = first[:_FIRST_USER_CHARS - 1] + "…"
            self._info[sr.id] = (sr.index, sr.status, first, sr.is_edited)

    def row(self, row: int) -> Optional[OutlierRow]:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def info(self, row: int) -> Optional[tuple[int, str, str, bool]]:
        rid = self.id_at(row)
        if rid is None:
            return None
        if rid not in self._info:
            self._fetch(row)
        return self._info.get(rid)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return self._TIPS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole and \
                section in (self.COL_INDEX, self.COL_SCORE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return super().headerData(section, orientation, role)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        entry = self._rows[row]
        rid, score = entry.id, entry.score
        if role == self.IdRole:
            return rid
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if col in (self.COL_INDEX, self.COL_SCORE):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and col == self.COL_SCORE and entry.by_meaning:
            return self._bold
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.ForegroundRole,
                        Qt.ItemDataRole.DecorationRole):
            return None
        if col == self.COL_SCORE:
            if role == Qt.ItemDataRole.DisplayRole:
                return "" if score != score else f"{score:.3f}"
            if role == Qt.ItemDataRole.ToolTipRole:
                text = "not scored by meaning" if score != score else f"Outlier score {score:.4f}"
                return text + (" (flagged by the scan)" if entry.by_meaning else "")
            return None
        if col == self.COL_WHY:
            if role == Qt.ItemDataRole.DisplayRole:
                return entry.why
            if role == Qt.ItemDataRole.ToolTipRole:
                return self._TIPS[self.COL_WHY] if entry.why else "Not flagged (scored only)"
            return None
        info = self.info(row)
        if info is None:
            return "…" if role == Qt.ItemDataRole.DisplayRole else None
        number, status, first, edited = info
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.COL_INDEX:
                return "" if number < 0 else str(number)
            if col == self.COL_STATUS:
                return STATUS_LABELS.get(status, status) + (" (edited)" if edited and status != "edited" else "")
            return first
        if role == Qt.ItemDataRole.DecorationRole and col == self.COL_STATUS and status:
            return status_icon(status)  # the status colour is the icon's; the text keeps the readable palette text
        if role == Qt.ItemDataRole.ToolTipRole:
            scored = "not scored" if score != score else f"score {score:.3f}"
            tip = f"Record {number} · {scored}\nDouble-click or Enter: open it in the Records tab"
            return (first + "\n\n" + tip) if col == self.COL_TEXT and first else tip
        return None


class LassoViewBox(pg.ViewBox):
    """A ViewBox that draws a free-hand lasso with the left button when :attr:`lasso_mode`
    is on or Shift is held (otherwise it pans and zooms as usual), and emits the polygon
    in data coordinates."""

    lasso_finished = Signal(object)  # numpy array (k, 2)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lasso_mode = False
        self._points: list[QPointF] = []
        self._path_item = QGraphicsPathItem()
        pen = QPen(QColor("#1c7ed6"))
        pen.setWidthF(1.5)
        pen.setStyle(Qt.PenStyle.DashLine)
        pen.setCosmetic(True)  # the same width at any zoom
        self._path_item.setPen(pen)
        self._path_item.setBrush(QColor(28, 126, 214, 30))
        self._path_item.setZValue(1e9)
        self.addItem(self._path_item, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: ANN001 - pyqtgraph's event
        shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if ev.button() != Qt.MouseButton.LeftButton or axis is not None or not (self.lasso_mode or shift
                                                                                 or self._points):
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        if ev.isStart():
            self._points = [self.mapSceneToView(ev.buttonDownScenePos())]
        self._points.append(self.mapSceneToView(ev.scenePos()))
        path = QPainterPath(self._points[0])
        for p in self._points[1:]:
            path.lineTo(p)
        path.closeSubpath()
        self._path_item.setPath(path)
        if ev.isFinish():
            polygon = np.array([(p.x(), p.y()) for p in self._points], dtype=np.float64)
            self._points = []
            self._path_item.setPath(QPainterPath())
            self.lasso_finished.emit(polygon)


class MapView(QWidget):
    """Outlier table and embedding map of the open project (see the module docstring)."""

    record_requested = Signal(int)  # open this record in the Records tab
    records_changed = Signal(list)  # ids changed by a decision made here (already saved)
    error_reported = Signal(str, str, str)  # title, message, details
    selection_changed = Signal(list)  # record ids selected (lasso or table)
    map_ready = Signal(object)  # a MapData is shown

    def __init__(self, parent: Optional[QWidget] = None, interactive: bool = True) -> None:
        super().__init__(parent)
        self.interactive = interactive
        self.project: Optional[Project] = None
        self.report: Optional[dict] = None
        self.map: Optional[MapData] = None
        self.model_name = FAST  # embedding model of the map: fast, offline, cached with the scan's vectors
        self.max_points = 50000
        self._worker: Optional[Worker] = None
        self._map_report: Optional[dict] = None  # the report the shown map's findings come from
        # records decided while a map was computing (its statuses were read before): None for all
        self._changed_meanwhile: Optional[set[int]] = set()
        self._generation = 0
        self._selection: list[int] = []
        self._scatter: list[pg.ScatterPlotItem] = []
        self._legend: list[tuple[str, str, str, int, pg.ScatterPlotItem]] = []  # value, name, colour, count, item
        self._hidden: dict[str, set[str]] = {}  # colour mode -> category values switched off in the legend
        self._text_color = "#000000"
        self._build()
        guard_wheel(self)
        self._apply_palette()
        self.set_project(None)

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._build_table_side())
        splitter.addWidget(self._build_map_side())
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([420, 640])
        self.splitter = splitter
        outer.addWidget(splitter)

    def _build_table_side(self) -> QWidget:
        side = QWidget()
        layout = QVBoxLayout(side)
        layout.setContentsMargins(8, 6, 4, 6)
        layout.setSpacing(4)
        bar = QHBoxLayout()
        bar.setSpacing(6)
        title = QLabel("Outliers")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        self.only_flagged = QCheckBox("Only flagged")
        self.only_flagged.setChecked(True)
        self.only_flagged.setToolTip("On: the records the scan flagged as outliers (score above its cut-off).\n"
                                     "Off: every record the scan scored, most unusual first.")
        self.only_flagged.toggled.connect(lambda _on: self._fill_table())
        self.table_label = theme.muted_label()
        bar.addWidget(title)
        bar.addWidget(self.table_label, 1)
        bar.addWidget(self.only_flagged)
        layout.addLayout(bar)
        # the score distribution and the cut-off the reviewer can move (keys: Up/Down)
        self.cutoff_bar = CutoffBar()
        self.cutoff_bar.cutoff_changed.connect(lambda _v: self._fill_table(keep_cutoff=True))
        layout.addWidget(self.cutoff_bar)

        self.table_model = OutlierModel(self)
        view = list_table(self.table_model, "OutlierTable", multi=True,
                          widths=((OutlierModel.COL_INDEX, 48), (OutlierModel.COL_SCORE, 54),
                                  (OutlierModel.COL_WHY, 80), (OutlierModel.COL_STATUS, 100)),
                          tip="Select rows to ring their points on the map and to approve or reject them; "
                              "double-click or press Enter to open a record")
        view.activated.connect(self._on_table_activated)
        view.selectionModel().selectionChanged.connect(self._on_table_selection)
        view.selectionModel().currentRowChanged.connect(self._on_current_row)
        self.table = view

        self.table_empty = theme.muted_label()
        self.table_empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.table_empty.setStyleSheet("font-size: 13px; padding: 12px")
        self.table_stack = QStackedWidget()
        self.table_stack.addWidget(self.table_empty)
        self.table_stack.addWidget(view)

        # the text of the current outlier, under the table
        self.preview = ConversationView()
        self.preview.setObjectName("OutlierPreview")
        self.preview.setMinimumHeight(80)
        self.preview.show_placeholder(PREVIEW_PLACEHOLDER)
        self.preview_record: Optional[int] = None  # the id shown
        split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        split.addWidget(self.table_stack)
        split.addWidget(self.preview)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.table_splitter = split
        layout.addWidget(split, 1)
        return side

    def _build_map_side(self) -> QWidget:
        side = QWidget()
        layout = QVBoxLayout(side)
        layout.setContentsMargins(4, 6, 8, 6)
        layout.setSpacing(4)

        bar = QHBoxLayout()
        bar.setSpacing(6)
        self.compute_button = QPushButton("Compute map")
        self.compute_button.setToolTip("Embed the training records (cached with the scan's vectors) and place them "
                                       "on a 2-D map by meaning")
        self.compute_button.clicked.connect(lambda: self.compute())
        self.color_by = QComboBox()
        self.color_by.addItem("Colour by status", "status")
        self.color_by.addItem("Colour by finding", "finding")
        self.color_by.setToolTip("Colour the points by review status or by the main finding of the last scan")
        self.color_by.currentIndexChanged.connect(lambda _i: self._draw())
        self.lasso_button = QToolButton()
        self.lasso_button.setText("Lasso")
        self.lasso_button.setCheckable(True)
        self.lasso_button.setToolTip("On: drag on the map to draw a lasso around points to select them.\n"
                                     "Off: drag to pan, wheel to zoom (hold Shift to draw a lasso anyway).")
        self.lasso_button.toggled.connect(self._on_lasso_toggled)
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Clear the selection")
        self.clear_button.clicked.connect(self.clear_selection)
        self.selection_label = theme.muted_label(wrap=False)
        self.approve_button = QPushButton("Approve selected")
        self.approve_button.setToolTip("Approve every selected record (one undo step)")
        self.approve_button.clicked.connect(lambda: self.decide_selected("approve"))
        self.reject_button = QPushButton("Reject selected")
        self.reject_button.setToolTip("Reject every selected record (one undo step)")
        self.reject_button.clicked.connect(lambda: self.decide_selected("reject"))
        for w in (self.compute_button, self.color_by, self.lasso_button, self.clear_button):
            bar.addWidget(w)
        bar.addWidget(self.selection_label, 1)
        bar.addWidget(self.approve_button)
        bar.addWidget(self.reject_button)
        layout.addLayout(bar)

        progress_row = QWidget()
        prow = QHBoxLayout(progress_row)
        prow.setContentsMargins(0, 0, 0, 0)
        self.progress_label = theme.muted_label(wrap=False)
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumHeight(14)
        self.progress_bar.setTextVisible(False)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop computing the map")
        self.cancel_button.clicked.connect(self.cancel)
        prow.addWidget(self.progress_label)
        prow.addWidget(self.progress_bar, 1)
        prow.addWidget(self.cancel_button)
        progress_row.hide()
        self.progress_row = progress_row
        layout.addWidget(progress_row)

        self.viewbox = LassoViewBox()
        self.viewbox.lasso_finished.connect(self._on_lasso)
        self.plot = pg.PlotWidget(viewBox=self.viewbox)
        self.plot.setToolTip("")
        item = self.plot.getPlotItem()
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.setMenuEnabled(False)
        item.hideButtons()
        self.viewbox.setAspectLocked(False)
        # the selection: a thick ring in the accent colour over a halo in the background colour,
        # so that it stands out on any point colour and between close points
        self.ring_halo = pg.ScatterPlotItem(size=_RING_SIZE, pen=pg.mkPen("#ffffff", width=5), brush=None,
                                            pxMode=True)
        self.ring_halo.setZValue(1e6)
        self.ring = pg.ScatterPlotItem(size=_RING_SIZE, pen=pg.mkPen("#1c63c9", width=2.5), brush=None, pxMode=True)
        self.ring.setZValue(1e6 + 1)
        item.addItem(self.ring_halo)
        item.addItem(self.ring)

        self.map_empty = theme.muted_label()
        self.map_empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.map_empty.setStyleSheet("font-size: 13px; padding: 12px")
        self.map_stack = QStackedWidget()
        self.map_stack.addWidget(self.map_empty)
        self.map_stack.addWidget(self.plot)
        layout.addWidget(self.map_stack, 1)

        # the legend sits under the map (not on it: it would hide points); entries toggle points
        self.legend_label = QLabel()
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.legend_label.setWordWrap(True)
        self.legend_label.setToolTip("Click an entry to hide or show those points (a lasso only selects points "
                                     "that are shown)")
        self.legend_label.linkActivated.connect(self._toggle_category)
        layout.addWidget(self.legend_label)

        self.map_info = theme.muted_label()
        self.map_info.setToolTip("Points close together ask similar things. Click a point to open its record; "
                                 "hover to read it; wheel to zoom; drag to pan")
        layout.addWidget(self.map_info)
        return side

    def _apply_palette(self) -> None:
        """Plot colours from the widget palette (light or dark theme)."""
        pal = self.palette()
        base = pal.color(QPalette.ColorRole.Base)
        text = pal.color(QPalette.ColorRole.Text)
        self.plot.setBackground(base)
        self._text_color = text.name()
        self._update_ring()
        self._update_legend()
        if self.preview_record is not None:
            self._show_preview(self.preview_record)  # the conversation's colours follow the theme
        elif hasattr(self, "preview"):
            self.preview.show_placeholder(PREVIEW_PLACEHOLDER)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()

    # -- the interface the main window uses ---------------------------------------------------
    def set_project(self, project: Optional[Project]) -> None:
        if project is self.project and project is not None:
            return
        self._stop()
        self.project = project
        self.report = None
        self._map_report = None
        self._set_map(None)
        self._fill_table()
        self._update_enabled()

    def set_report(self, report: Optional[dict]) -> None:
        if report is self.report:
            return
        self.report = report
        self._fill_table()
        if self.map is not None and report is not self._map_report:
            self.map.apply_report(report)
            self._map_report = report
            self._draw()

    def refresh(self, ids: Optional[list[int]] = None) -> None:
        """The store changed elsewhere: re-read the statuses of ``ids`` (all when None)."""
        if self.project is None or self.project.closed:
            return
        self.table_model.refresh(ids)
        if self.is_computing() and self._changed_meanwhile is not None:
            self._changed_meanwhile = None if ids is None else self._changed_meanwhile | set(ids)
        if self.map is not None:
            self.map.update_status(self.project, ids)
            self._draw()

    def shutdown(self) -> None:
        """Cancel the map computation and wait for it (before the project closes)."""
        self._stop()

    # -- computing the map ----------------------------------------------------------------------
    def is_computing(self) -> bool:
        return self._worker is not None and self._worker.is_running()

    def compute_if_needed(self) -> None:
        """Compute the map unless it is shown or being computed (the first time the tab shows)."""
        if self.project is not None and self.map is None and not self.is_computing():
            self.compute()

    @Slot()
    def compute(self) -> None:
        """Embed and project the training records in the background; the map shows when done."""
        project = self.project
        if project is None or project.closed or self.is_computing():
            return
        self._generation += 1
        gen = self._generation
        report = self.report
        worker = Worker(embedding_map, project, report=report, model=self.model_name, max_points=self.max_points,
                        title="Computing the map", parent=self, heavy=True)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(lambda data, g=gen, p=project, r=report: self._on_map(g, p, r, data))
        worker.failed.connect(lambda msg, details, g=gen: self._on_failed(g, msg, details))
        worker.cancelled.connect(lambda g=gen: self._on_cancelled(g))
        worker.ended.connect(lambda w=worker: self._on_ended(w))
        self._worker = worker
        self._changed_meanwhile = set()
        self.progress_label.setText("Reading the records")
        self.progress_bar.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self.progress_row.show()
        if self.map is None:
            self.map_empty.setText(COMPUTING_TEXT)
        worker.start()
        self._update_enabled()

    @Slot()
    def cancel(self) -> None:
        """Ask the map computation to stop (the map shown, if any, stays)."""
        if self._worker is not None:
            self._worker.cancel()
            self.progress_label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _stop(self) -> None:
        self._generation += 1
        worker, self._worker = self._worker, None
        stop_worker(worker)
        self.progress_row.hide()
        self._update_enabled()

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, message: str) -> None:
        if self._worker is not None and self._worker.cancel_requested:
            return
        self.progress_label.setText(message or "Computing the map")
        if total > 0:
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(min(done, total))
        else:
            self.progress_bar.setRange(0, 0)

    def _on_map(self, gen: int, project: Project, report: Optional[dict], data: MapData) -> None:
        if gen != self._generation or project is not self.project:
            return  # computed for a project that was replaced meanwhile
        if report is not self.report:  # the scan finished while the map was computing
            data.apply_report(self.report)
        if self._changed_meanwhile is None or self._changed_meanwhile:  # decisions made while computing
            data.update_status(project, None if self._changed_meanwhile is None else sorted(self._changed_meanwhile))
            self._changed_meanwhile = set()
        self._map_report = self.report
        self._set_map(data)
        self.map_ready.emit(data)

    def _on_failed(self, gen: int, message: str, details: str) -> None:
        if gen != self._generation:
            return
        if self.map is None:
            self.map_empty.setText(NO_MAP_TEXT)
        self.error_reported.emit("Could not compute the map", message, details)

    def _on_cancelled(self, gen: int) -> None:
        if gen == self._generation and self.map is None:
            self.map_empty.setText("Map cancelled. " + NO_MAP_TEXT)

    def _on_ended(self, worker: Worker) -> None:
        if worker is self._worker:
            self._worker = None
            self.progress_row.hide()
            self._update_enabled()

    # -- the map ------------------------------------------------------------------------------
    def set_map(self, data: Optional[MapData]) -> None:
        """Show a computed map (the worker's result; public for tests and screenshots)."""
        self._map_report = self.report
        self._set_map(data)

    def _set_map(self, data: Optional[MapData]) -> None:
        self.map = data
        if data is None and self._selection:  # no map, no project: nothing stays selected
            self._clear_table_selection()
            self.select_ids([])
        if data is None:
            self.map_empty.setText(NO_MAP_TEXT if self.project is not None else NO_MAP_PROJECT_TEXT)
            self.map_stack.setCurrentWidget(self.map_empty)
            self.map_info.setText("")
            self._draw()
            self._update_selection_ui()
            return
        self.map_stack.setCurrentWidget(self.plot)
        what = f"{len(data):,} training records" if not data.sampled else \
            f"a sample of {len(data):,} of {data.total:,} training records (those with findings first)"
        self.map_info.setText(f"{data.method.upper()} map of {what}, embedded with {data.model}. Click a point to "
                              "open it · drag with Shift (or Lasso on) to select")
        self._draw()
        self.viewbox.autoRange(padding=0.05)
        self._update_selection_ui()

    def _categories(self) -> tuple[np.ndarray, list[tuple[str, str, str]]]:
        """(the value of each point, [(value, legend name, colour)] bottom to top)."""
        assert self.map is not None
        if self.color_by.currentData() == "finding":
            cats = [("", "no finding", FINDING_COLORS[""])]
            cats += [(k, k.replace("_", " "), FINDING_COLORS[k]) for k in reversed(FLAG_PRIORITY)]  # leaks on top
            return self.map.flag, cats
        order = ("unreviewed", "approved", "edited", "rejected")
        return self.map.status, [(s, STATUS_LABELS[s], STATUS_COLORS[s]) for s in order if s in STATUSES]

    def _draw(self) -> None:
        """One scatter item a category (status or finding), in the category's colour."""
        item = self.plot.getPlotItem()
        for sc in self._scatter:
            item.removeItem(sc)
        self._scatter = []
        self._legend = []
        if self.map is None or not len(self.map):
            self._update_ring()
            self._update_legend()
            return
        values, cats = self._categories()
        hidden = self._hidden.setdefault(self.color_by.currentData(), set())
        xy = self.map.xy
        for z, (value, name, color) in enumerate(cats):
            rows = np.flatnonzero(values == value)
            if not len(rows):
                continue
            sc = pg.ScatterPlotItem(x=xy[rows, 0], y=xy[rows, 1], data=rows, size=_POINT_SIZE, pen=None,
                                    brush=QColor(color), pxMode=True, hoverable=True, tip=self._point_tip,
                                    name=f"{name} ({len(rows):,})")
            sc.setZValue(z)
            sc.setVisible(value not in hidden)
            sc.sigClicked.connect(self._on_points_clicked)
            item.addItem(sc)
            self._scatter.append(sc)
            self._legend.append((value, name, color, len(rows), sc))
        self._legend.reverse()  # the top of the drawing (the findings that matter most) first
        self._update_ring()
        self._update_legend()

    def _update_legend(self) -> None:
        parts = []
        hidden = self._hidden.get(self.color_by.currentData(), set())
        background = theme.colors().window
        muted = theme.colors().muted
        for i, (value, name, color, count, _sc) in enumerate(self._legend):
            off = value in hidden
            dot = muted if off else theme.legible(color, background).name()  # a mark: 3:1 at least
            label = f"<s>{name}</s>" if off else name
            text = muted if off else self._text_color
            parts.append(f"<a href='{i}' style='text-decoration:none; color:{text}'>"
                         f"<span style='color:{dot}'>●</span>&nbsp;{label}&nbsp;({count:,})</a>")
        self.legend_label.setText("&nbsp;&nbsp; ".join(parts))
        self.legend_label.setVisible(bool(parts))

    @Slot(str)
    def _toggle_category(self, href: str) -> None:
        """Hide or show the points of one legend entry."""
        try:
            value, _name, _color, _count, sc = self._legend[int(href)]
        except (ValueError, IndexError):
            return
        hidden = self._hidden.setdefault(self.color_by.currentData(), set())
        hidden.symmetric_difference_update({value})
        sc.setVisible(value not in hidden)
        self._update_legend()

    def shown_mask(self) -> np.ndarray:
        """Which points are shown (their legend entry is not switched off)."""
        if self.map is None:
            return np.zeros(0, bool)
        hidden = self._hidden.get(self.color_by.currentData(), set())
        if not hidden:
            return np.ones(len(self.map), bool)
        values, _cats = self._categories()
        return ~np.isin(values, list(hidden))

    def _point_tip(self, x: float, y: float, data: Any) -> str:  # noqa: ARG002 - pyqtgraph's signature
        m = self.map
        if m is None or data is None or not 0 <= int(data) < len(m):
            return ""
        r = int(data)
        head = f"Record {int(m.index[r])} · {STATUS_LABELS.get(str(m.status[r]), m.status[r])}"
        if m.flag[r]:
            head += f" · {m.flag[r]}"
        if m.score[r] == m.score[r]:
            head += f" · score {float(m.score[r]):.3f}"
        text = m.snippets[r] if r < len(m.snippets) else ""
        return f"{head}\n{text}" if text else head

    def _on_points_clicked(self, _item, points, ev) -> None:  # noqa: ANN001 - pyqtgraph's signal
        if self.map is None or not len(points):
            return
        pos = ev.pos()
        best = min(points, key=lambda p: (p.pos().x() - pos.x()) ** 2 + (p.pos().y() - pos.y()) ** 2)
        ev.accept()
        self.record_requested.emit(int(self.map.ids[int(best.data())]))

    # -- selection ------------------------------------------------------------------------------
    def selected_ids(self) -> list[int]:
        return list(self._selection)

    def select_polygon(self, polygon) -> list[int]:
        """Select the shown points inside ``polygon`` (data coordinates); returns their ids."""
        ids: list[int] = []
        if self.map is not None:
            inside = points_in_polygon(self.map.xy, polygon) & self.shown_mask()
            ids = [int(i) for i in self.map.ids[inside]]
        self._clear_table_selection()
        self.select_ids(ids)
        return ids

    def select_ids(self, ids: Sequence[int]) -> None:
        """Make ``ids`` the selection (their points get a ring); emits :attr:`selection_changed`."""
        self._selection = sorted({int(i) for i in ids})
        self._update_ring()
        self._update_selection_ui()
        self.selection_changed.emit(list(self._selection))

    @Slot()
    def clear_selection(self) -> None:
        self._clear_table_selection()
        self.select_ids([])

    def _clear_table_selection(self) -> None:
        sm = self.table.selectionModel()
        sm.blockSignals(True)
        sm.clearSelection()
        sm.blockSignals(False)
        self.table.viewport().update()

    def _update_ring(self) -> None:
        if self.map is None or not self._selection:
            self.ring.setData(x=[], y=[])
            self.ring_halo.setData(x=[], y=[])
            return
        rows = self.map.rows_of(self._selection)
        rows = rows[rows >= 0]
        self.ring.setPen(pg.mkPen(self.ring_color(), width=2.5))
        self.ring_halo.setPen(pg.mkPen(self.palette().color(QPalette.ColorRole.Base), width=5))
        for ring in (self.ring_halo, self.ring):
            ring.setData(x=self.map.xy[rows, 0], y=self.map.xy[rows, 1])

    def ring_color(self) -> QColor:
        """The selection ring's colour: the theme's accent (≥ 3:1 on the map's background)."""
        return QColor(theme.colors().accent)

    def _update_selection_ui(self) -> None:
        n = len(self._selection)
        if not n:
            self.selection_label.setText("Nothing selected" if self.map is not None else "")
        else:
            on_map = int(np.count_nonzero(self.map.rows_of(self._selection) >= 0)) if self.map is not None else 0
            text = f"{n:,} selected"
            if on_map != n and self.map is not None:
                text += f" ({on_map:,} on the map)"
            self.selection_label.setText(text)
        self._update_enabled()

    def _on_lasso_toggled(self, on: bool) -> None:
        self.viewbox.lasso_mode = on
        self.plot.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)

    @Slot(object)
    def _on_lasso(self, polygon: np.ndarray) -> None:
        self.select_polygon(polygon)

    @Slot(QItemSelection, QItemSelection)
    def _on_table_selection(self, _selected=None, _deselected=None) -> None:
        rows = {ix.row() for ix in self.table.selectionModel().selectedRows()}
        self.select_ids([rid for rid in (self.table_model.id_at(r) for r in rows) if rid is not None])

    @Slot(QModelIndex)
    def _on_table_activated(self, index: QModelIndex) -> None:
        rid = self.table_model.id_at(index.row()) if index.isValid() else None
        if rid is not None:
            self.record_requested.emit(rid)

    # -- decisions ------------------------------------------------------------------------------
    def decide_selected(self, action: str) -> bool:
        """Approve or reject the selected records as one undo step; True when saved."""
        if action not in ("approve", "reject"):
            raise ValueError(f"unknown action {action!r}")
        project, ids = self.project, list(self._selection)
        if project is None or project.closed or not ids:
            return False
        if self.interactive and len(ids) > 1:
            answer = QMessageBox.question(
                self, f"{action.capitalize()} {len(ids):,} records",
                f"{action.capitalize()} the {len(ids):,} selected records? (One step: Edit ▸ Undo takes it back.)",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        try:
            getattr(project, action)(ids)
        except Exception as exc:  # the store refused (read-only, closed...): tell, change nothing here
            self.error_reported.emit(f"Could not {action} the records", describe_error(exc), traceback.format_exc())
            return False
        self.refresh(ids)
        self.records_changed.emit(ids)
        return True

    # -- the table ------------------------------------------------------------------------------
    def _fill_table(self, keep_cutoff: bool = False) -> None:
        report = self.report or {}
        scores = report.get("outlier_scores") or {}
        if not keep_cutoff:  # a new report: its distribution, the cut-off back to the scan's
            cut = scores.get("cutoff")
            self.cutoff_bar.set_scores(scores.get("scores") or [], None if cut is None else float(cut))
        moved = self.cutoff_bar.is_moved()
        rows = outlier_rows(self.report, self.only_flagged.isChecked(),
                            cutoff=self.cutoff_bar.cutoff() if moved else None)
        self.table_model.set_rows(self.project, rows)
        by_meaning = {r.id for r in rows if r.by_meaning} if moved else \
            {int(o["index"]) for o in report.get("outliers") or []}
        by_length = {int(o["index"]) for o in report.get("length_outliers") or []}
        if self.project is None:
            self.table_empty.setText(NO_PROJECT_TEXT)
        elif not self.report:
            self.table_empty.setText(NO_SCAN_TEXT)
        elif not scores and not by_meaning and not by_length:
            self.table_empty.setText(NOT_SCORED_TEXT)
        elif not rows:
            self.table_empty.setText(NO_OUTLIERS_TEXT)
        self.table_stack.setCurrentWidget(self.table if rows else self.table_empty)
        flagged = len(by_meaning | by_length)
        text = ""
        if self.report and (scores or flagged):
            meaning = f"{len(by_meaning):,} by meaning"
            if moved:
                meaning += f" (score above {self.cutoff_bar.cutoff():.3f}, your cut-off)"
            elif scores.get("cutoff") is not None:
                meaning += f" (score above {float(scores['cutoff']):.3f})"
            text = f"{flagged:,} flagged: {meaning}, {len(by_length):,} by length"
            if not self.only_flagged.isChecked():
                text += f" · {len(rows):,} listed"
        self.table_label.setText(text)
        self.table_label.setToolTip(text)
        self.only_flagged.setEnabled(bool(scores))
        self._show_preview(None)

    @Slot(QModelIndex, QModelIndex)
    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_preview(self.table_model.id_at(current.row()) if current.isValid() else None)

    def _show_preview(self, record_id: Optional[int]) -> None:
        """The whole text of an outlier (the current row of the table) under the table."""
        project = self.project
        self.preview_record = None
        if record_id is None or project is None or project.closed:
            self.preview.show_placeholder(PREVIEW_PLACEHOLDER)
            return
        try:
            sr = project.get(record_id)
        except KeyError:
            self.preview.show_placeholder("This record is no longer in the project.")
            return
        row = self.table_model.row_of(record_id)
        entry = self.table_model.row(row) if row is not None else None
        findings = []
        if entry is not None and entry.flagged:
            score = "" if entry.score != entry.score else f" · meaning score {entry.score:.3f}"
            findings.append(("outlier", f"flagged by {entry.why}{score}"))
        self.preview_record = record_id
        self.preview.show_record(sr, findings)

    def _update_enabled(self) -> None:
        has_project = self.project is not None
        self.compute_button.setEnabled(has_project and not self.is_computing())
        self.compute_button.setText("Recompute map" if self.map is not None else "Compute map")
        has_map = self.map is not None
        for w in (self.color_by, self.lasso_button):
            w.setEnabled(has_map)
        can_decide = has_project and bool(self._selection) and not (self.project and self.project.readonly)
        self.approve_button.setEnabled(can_decide)
        self.reject_button.setEnabled(can_decide)
        self.clear_button.setEnabled(bool(self._selection))
