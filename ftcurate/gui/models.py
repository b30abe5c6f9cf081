"""Qt item models over the project store.

:class:`RecordTableModel` is lazy: it keeps only the list of record ids in memory
(a numpy array of ids, in display order) plus a small LRU cache of row summaries, fetched from
the store a block at a time when the view asks for a row it has not seen. No widget
is ever made per row: the view paints cells from :meth:`data`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

import numpy as np

from ..core.project.store import Project, StoredRecord
from ..core.project.table import CHARS_PER_TOKEN, RecordFrame, flag_names
from .theme import readable

STATUS_COLORS = {
    "unreviewed": "#868e96",
    "approved": "#2f9e44",
    "rejected": "#e03131",
    "edited": "#7048e8",
}
STATUS_LABELS = {"unreviewed": "Unreviewed", "approved": "Approved", "rejected": "Rejected", "edited": "Edited"}

_FIRST_USER_CHARS = 240


@dataclass(slots=True)
class RowData:
    """What one table row shows (a few hundred bytes; the full record stays in the store)."""

    id: int
    index: int
    line: Optional[int]
    status: str
    split: str
    n_messages: int
    first_user: str
    answer_len: int
    source_file: str
    labels: tuple = ()
    edited: bool = False
    tokens: int = 0
    note: str = ""


def summarize(sr: StoredRecord) -> RowData:
    rec = sr.record
    first = " ".join((rec.first_user or "").split())
    if len(first) > _FIRST_USER_CHARS:
        first = first[: _FIRST_USER_CHARS - 1] + "…"
    return RowData(
        id=sr.id,
        index=sr.index,
        line=sr.line,
        status=sr.status,
        split=sr.split,
        n_messages=len(rec.messages),
        first_user=first,
        answer_len=len(rec.answer_text),
        source_file=rec.source.file,
        labels=tuple(sr.labels),
        edited=sr.is_edited,
        tokens=(len(rec.content_json()) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN,
        note=sr.note,
    )


_ICONS: dict[str, QIcon] = {}


def status_icon(status: str) -> QIcon:
    """A small filled circle in the status colour."""
    icon = _ICONS.get(status)
    if icon is None:
        pm = QPixmap(12, 12)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(STATUS_COLORS.get(status, "#868e96")))
        p.drawEllipse(1, 1, 10, 10)
        p.end()
        icon = _ICONS[status] = QIcon(pm)
    return icon


class BlockCache:
    """A bounded LRU cache of table rows, filled a block of rows at a time: the lazy table
    models ask it for a row's item and, on a miss, it has ``load(start, stop)`` fetch the
    rows around it (a quarter of a block before, the rest after) in one go."""

    def __init__(self, size: int = 1024, block: int = 96) -> None:
        self.block = max(1, block)
        self.size = max(self.block * 2, size)
        self.fetches = 0  # loads (store queries or file reads), for tests and profiling
        self._items: "OrderedDict[int, Any]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: int) -> bool:
        return key in self._items

    def clear(self) -> None:
        self._items.clear()

    def pop(self, key: int) -> None:
        self._items.pop(key, None)

    def get(self, key: int, row: int, load: Callable[[int, int], Optional[dict]]) -> Any:
        """The item of ``key`` (shown at ``row``); on a miss ``load(start, stop)`` returns
        {key: item} for the rows of the block not cached yet (None: nothing was read)."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            return item
        start = max(0, row - self.block // 4)
        items = load(start, start + self.block)
        if items is not None:
            self.fetches += 1
            self._items.update(items)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return self._items.get(key)


class BlockCachedModel:
    """For table models whose rows come through a :class:`BlockCache` in ``self._cache``:
    its sizes and counters, as the tests and benchmarks read them."""

    _cache: BlockCache

    @property
    def fetches(self) -> int:  # loads (store queries or file reads)
        return self._cache.fetches

    @property
    def cache_size(self) -> int:
        return self._cache.size

    @property
    def block(self) -> int:
        return self._cache.block


class RecordTableModel(BlockCachedModel, QAbstractTableModel):
    """Rows are project records, in the order of the id array it is given.

    With a :class:`~ftcurate.core.project.table.RecordFrame` (``set_frame``) the status, split,
    size, flag and score columns come from its numpy columns and :meth:`sort` orders a
    million rows at once; the first user turn, labels and edit mark come from the store,
    a block of rows at a time.
    """

    COLUMNS = ("#", "Status", "Split", "Msgs", "Tokens", "Flags", "Score", "First user turn", "Labels")
    (COL_INDEX, COL_STATUS, COL_SPLIT, COL_MSGS, COL_TOKENS, COL_FLAGS, COL_SCORE,
     COL_FIRST_USER, COL_LABELS) = range(9)
    _SORT_KEYS = ("id", "status", "split", "messages", "tokens", "flags", "score", None, None)
    _TIPS = (
        "Record number in its source file (0-based)",
        "Review status",
        "train / validation / test",
        "Number of messages",
        "Estimated tokens (about four characters a token)",
        "What the last quality scan found",
        "Outlier score of the last scan (higher: more unusual)",
        "The first user message",
        "Labels of the record (the label set's colours; Edit ▸ Label set…)",
    )
    _RIGHT = (COL_INDEX, COL_MSGS, COL_TOKENS, COL_SCORE)
    IdRole = Qt.ItemDataRole.UserRole + 1
    StatusRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, parent=None, cache_size: int = 1024, block: int = 96) -> None:
        super().__init__(parent)
        self._project: Optional[Project] = None
        self._frame: Optional[RecordFrame] = None
        self._ids = np.zeros(0, np.int64)
        self._pos: Optional[tuple[np.ndarray, np.ndarray]] = None  # (sorted ids, their rows), built on demand
        self._cache = BlockCache(cache_size, block)  # record id -> RowData
        self.sort_key: tuple[str, bool] = ("id", False)
        self._italic = QFont()
        self._italic.setItalic(True)
        self._rank: dict[int, float] = {}  # record id -> similarity, while ranked (set_ranked)
        self.meta_keys: list[str] = []  # source-record fields shown as extra columns
        self._label_colors: dict[str, str] = {}
        self._label_icons: dict[tuple, QIcon] = {}

    # -- content ---------------------------------------------------------------------------
    @property
    def project(self) -> Optional[Project]:
        return self._project

    @property
    def frame(self) -> Optional[RecordFrame]:
        return self._frame

    def set_project(self, project: Optional[Project], ids: Iterable[int] = (),
                    frame: Optional[RecordFrame] = None) -> None:
        self.beginResetModel()
        self._project = project
        self._frame = frame
        self._cache.clear()
        self._set_ids(ids)
        self.endResetModel()

    def set_label_colors(self, colors: dict[str, str]) -> None:
        """The label set's colours (label name -> #rrggbb) for the Labels column."""
        self._label_colors = dict(colors)
        self._label_icons.clear()
        self.refresh_all()

    def _labels_icon(self, labels: tuple) -> Optional[QIcon]:
        """Dots in the colours of the record's labels that are in the label set."""
        colors = tuple(self._label_colors[x] for x in labels if x in self._label_colors)[:6]
        if not colors:
            return None
        icon = self._label_icons.get(colors)
        if icon is None:
            pm = QPixmap(10 * len(colors) + 2, 12)
            pm.fill(Qt.GlobalColor.transparent)
            p = QPainter(pm)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(Qt.PenStyle.NoPen)
            for i, c in enumerate(colors):
                p.setBrush(QColor(c))
                p.drawEllipse(1 + 10 * i, 2, 8, 8)
            p.end()
            icon = self._label_icons[colors] = QIcon(pm)
        return icon

    def empty_columns(self) -> list[int]:
        """Columns with nothing to show yet: Flags and Score before a scan found anything,
        Labels before any record has one."""
        f = self._frame
        out = []
        if f is None or not len(f) or not f.labeled.any():
            out.append(self.COL_LABELS)
        if f is None or not len(f) or not f.flags.any():
            out.append(self.COL_FLAGS)
        if f is None or not len(f) or bool(np.isnan(f.score).all()):
            out.append(self.COL_SCORE)
        return out

    def set_frame(self, frame: Optional[RecordFrame]) -> None:
        """Use ``frame`` for the fast columns (after a scan or once it is built)."""
        self._frame = frame
        self.refresh_all()

    def set_ranked(self, ids: Sequence[int], scores: Sequence[float]) -> None:
        """Show these records in this order (nearest first), each with its similarity; any
        sort by a column or filter ends it."""
        self._rank = {int(i): float(s) for i, s in zip(ids, scores)}
        self.sort_key = ("rank", False)
        self.set_ids(list(self._rank))

    def similarity(self, record_id: int) -> Optional[float]:
        return self._rank.get(int(record_id)) if self.sort_key[0] == "rank" else None

    def _set_ids(self, ids: Iterable[int]) -> None:
        arr = ids if isinstance(ids, np.ndarray) else np.fromiter((int(i) for i in ids), np.int64)
        key, desc = self.sort_key
        if key == "rank":  # the order given (set_ranked)
            self._ids = np.ascontiguousarray(arr, np.int64)
            self._pos = None
            return
        if self._frame is not None and key != "id":
            arr = self._frame.order(arr, key, desc)
        else:
            arr = np.sort(arr.astype(np.int64, copy=False))
            if desc:
                arr = arr[::-1]
        self._ids = np.ascontiguousarray(arr, np.int64)
        self._pos = None

    def set_ids(self, ids: Iterable[int]) -> None:
        """Show these records, in the current sort order; cached rows stay cached."""
        self.beginResetModel()
        self._set_ids(ids)
        self.endResetModel()

    def ids(self) -> Sequence[int]:
        return self._ids

    def id_at(self, row: int) -> Optional[int]:
        return int(self._ids[row]) if 0 <= row < len(self._ids) else None

    def row_of(self, record_id: int) -> Optional[int]:
        if self._pos is None:
            order = np.argsort(self._ids, kind="stable")
            self._pos = (self._ids[order], order)
        keys, rows = self._pos
        i = int(np.searchsorted(keys, record_id))
        return int(rows[i]) if i < len(keys) and keys[i] == record_id else None

    def cached_rows(self) -> int:
        return len(self._cache)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        key = self._SORT_KEYS[column] if 0 <= column < len(self._SORT_KEYS) else None
        if key is None or (key != "id" and self._frame is None):
            return
        self.layoutAboutToBeChanged.emit()
        old = self._ids
        self.sort_key = (key, order == Qt.SortOrder.DescendingOrder)
        self._set_ids(old)
        # keep persistent indexes (the selection, the current row) on their records
        moved_from, moved_to = [], []
        for pidx in self.persistentIndexList():
            if pidx.row() < len(old):
                row = self.row_of(int(old[pidx.row()]))
                moved_from.append(pidx)
                moved_to.append(self.index(row, pidx.column()) if row is not None else QModelIndex())
        self.changePersistentIndexList(moved_from, moved_to)
        self.layoutChanged.emit()

    def refresh(self, record_ids: Iterable[int]) -> None:
        """Forget cached data of these records and repaint their rows (after a decision)."""
        rows = []
        record_ids = [int(r) for r in record_ids]
        if self._frame is not None and self._project is not None and not self._project.closed:
            self._frame.update(self._project, record_ids)
        for rid in record_ids:
            self._cache.pop(rid)
            row = self.row_of(rid)
            if row is not None:
                rows.append(row)
        if rows:
            last = self.columnCount() - 1
            # one signal per contiguous run keeps repaints small
            rows.sort()
            start = prev = rows[0]
            for r in rows[1:] + [None]:
                if r is not None and r == prev + 1:
                    prev = r
                    continue
                self.dataChanged.emit(self.index(start, 0), self.index(prev, last))
                if r is not None:
                    start = prev = r

    def refresh_all(self) -> None:
        self._cache.clear()
        if len(self._ids):
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._ids) - 1, self.columnCount() - 1))

    def row_data(self, row: int) -> Optional[RowData]:
        rid = self.id_at(row)
        if rid is None or self._project is None:
            return None
        return self._cache.get(rid, row, self._load_rows)

    def _load_rows(self, start: int, stop: int) -> Optional[dict]:
        """Summaries of the rows start..stop that are not cached yet (one store query)."""
        wanted = [int(i) for i in self._ids[start:stop] if int(i) not in self._cache]
        if not wanted or self._project is None or self._project.closed:
            return None
        try:
            records = self._project.get_many(wanted)
        except KeyError:  # a record vanished (should not happen): fetch one by one
            records = []
            for rid in wanted:
                try:
                    records.append(self._project.get(rid))
                except KeyError:
                    pass
        return {sr.id: summarize(sr) for sr in records}

    def _frame_row(self, rid: int) -> int:
        if self._frame is None:
            return -1
        return int(self._frame.rows_of([rid])[0])

    # -- Qt model API ----------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS) + len(self.meta_keys)

    def set_meta_columns(self, keys: Sequence[str]) -> None:
        """Show these fields of the source records as columns after the fixed ones (their
        values must be loaded in the frame: ``RecordFrame.load_meta``)."""
        self.beginResetModel()
        self.meta_keys = list(keys)
        self.endResetModel()

    def meta_key_at(self, column: int) -> Optional[str]:
        i = column - len(self.COLUMNS)
        return self.meta_keys[i] if 0 <= i < len(self.meta_keys) else None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and self.meta_key_at(section) is not None:
            key = self.meta_key_at(section)
            if role == Qt.ItemDataRole.DisplayRole:
                return key
            if role == Qt.ItemDataRole.ToolTipRole:
                return (f"The field '{key}' of the source records. Filter by it in the search box: "
                        f"{key}:VALUE (View ▸ Columns shows or hides it)")
            return None
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                tip = self._TIPS[section]
                return tip + ("" if self._SORT_KEYS[section] is None else "\nClick to sort")
            if role == Qt.ItemDataRole.TextAlignmentRole and section in self._RIGHT:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == self.IdRole:
            return self.id_at(row)
        if role not in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.DecorationRole,
            Qt.ItemDataRole.ForegroundRole,
            Qt.ItemDataRole.TextAlignmentRole,
            Qt.ItemDataRole.FontRole,
            self.StatusRole,
        ):
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if col in self._RIGHT:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        item = self.row_data(row)
        if item is None:
            return "…" if role == Qt.ItemDataRole.DisplayRole else None
        frow = self._frame_row(item.id)
        if role == self.StatusRole:
            return item.status
        if role == Qt.ItemDataRole.DisplayRole:
            key = self.meta_key_at(col)
            if key is not None:
                values = self._frame.meta.get(key) if self._frame is not None else None
                return str(values[frow]) if values is not None and frow >= 0 else ""
            if col == self.COL_INDEX:
                return str(item.index)
            if col == self.COL_STATUS:
                return STATUS_LABELS.get(item.status, item.status)
            if col == self.COL_SPLIT:
                return item.split
            if col == self.COL_MSGS:
                return str(item.n_messages)
            if col == self.COL_TOKENS:
                return f"{item.tokens:,}"
            if col == self.COL_FLAGS:
                return ", ".join(flag_names(int(self._frame.flags[frow]))) if frow >= 0 else ""
            if col == self.COL_SCORE:
                sc = float(self._frame.score[frow]) if frow >= 0 else float("nan")
                return "" if sc != sc else f"{sc:.3f}"
            if col == self.COL_FIRST_USER:
                return item.first_user
            if col == self.COL_LABELS:
                return ", ".join(item.labels)
        elif role == Qt.ItemDataRole.DecorationRole:
            if col == self.COL_STATUS:
                return status_icon(item.status)
            if col == self.COL_LABELS and item.labels:
                return self._labels_icon(item.labels)
        elif role == Qt.ItemDataRole.ForegroundRole:
            if col == self.COL_STATUS:
                return readable(STATUS_COLORS.get(item.status, "#868e96"))
            if col == self.COL_FLAGS:
                return readable("#e8590c")
        elif role == Qt.ItemDataRole.FontRole:
            if col == self.COL_STATUS and item.edited:
                return self._italic
        elif role == Qt.ItemDataRole.ToolTipRole:
            where = os.path.basename(item.source_file)
            if item.line is not None:
                where += f":{item.line}"
            tip = f"Record {item.index} ({where})"
            if item.labels:
                tip += "\nLabels: " + ", ".join(item.labels)
            if item.note:
                tip += "\nNote: " + item.note
            if col == self.COL_FLAGS and frow >= 0 and self._frame.flags[frow]:
                tip = "Found by the last scan: " + ", ".join(flag_names(int(self._frame.flags[frow]))) + "\n\n" + tip
            if col == self.COL_FIRST_USER and item.first_user:
                tip = item.first_user + "\n\n" + tip
            sim = self.similarity(item.id)
            if sim is not None:
                tip = f"Similarity {sim:.2f} to what you searched\n" + tip
            return tip
        return None


class RowsTableModel(QAbstractTableModel):
    """A small table over an in-memory list ``self._rows`` with fixed ``COLUMNS`` headers."""

    COLUMNS: tuple = ()
    _rows: Sequence = ()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None


class ImportProblemsModel(RowsTableModel):
    """Records the importer rejected: file, line, record index, error key, message."""

    COLUMNS = ("File", "Line", "Record", "Problem", "Message")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[tuple] = []

    def set_problems(self, errors: list[dict], sources: list[dict]) -> None:
        """The import errors kept, each source's errors left out (beyond the details kept)
        and the imports that did not finish."""
        names = {s["id"]: os.path.basename(s["path"]) for s in sources}
        self.beginResetModel()
        rows = [(names.get(s["id"], ""), None, None, "incomplete_import",
                 f"The import of this file did not finish: {s.get('records', 0):,} of its records are stored. "
                 "Import the same file again to finish it (decisions made so far are kept).")
                for s in sources if not s.get("complete", True)]
        rows += [
            (
                names.get(e.get("source_id"), ""),
                e.get("line"),
                e.get("index"),
                e.get("key") or "",
                e.get("message") or "",
            )
            for e in errors
        ]
        rows += [(names.get(s["id"], ""), None, None, "more_errors",
                  f"{s['errors_left_out']:,} more problems of this file are counted but not listed "
                  "(`ftcurate validate --max-errors N` lists more)")
                 for s in sources if s.get("errors_left_out")]
        self._rows = rows
        self.endResetModel()

    def clear(self) -> None:
        self.set_problems([], [])

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        value = self._rows[index.row()][index.column()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return "" if value is None else str(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (1, 2):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None
