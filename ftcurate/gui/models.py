"""Qt item models over the project store.

:class:`RecordTableModel` is lazy: it keeps only the list of record ids in memory
(an ``array`` of 8-byte ints) plus a small LRU cache of row summaries, fetched from
the store a block at a time when the view asks for a row it has not seen. No widget
is ever made per row: the view paints cells from :meth:`data`.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

from ..core.store import Project, StoredRecord

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


class RecordTableModel(QAbstractTableModel):
    """Rows are project records, in ascending id order."""

    COLUMNS = ("#", "Status", "Split", "Msgs", "First user turn", "Answer chars")
    COL_INDEX, COL_STATUS, COL_SPLIT, COL_MSGS, COL_FIRST_USER, COL_ANSWER = range(6)
    IdRole = Qt.ItemDataRole.UserRole + 1
    StatusRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, parent=None, cache_size: int = 1024, block: int = 96) -> None:
        super().__init__(parent)
        self._project: Optional[Project] = None
        self._ids = array("q")
        self._cache: "OrderedDict[int, RowData]" = OrderedDict()
        self.cache_size = max(block * 2, cache_size)
        self.block = max(1, block)
        self.fetches = 0  # store round trips, for tests and profiling
        self._italic = QFont()
        self._italic.setItalic(True)

    # -- content ---------------------------------------------------------------------------
    @property
    def project(self) -> Optional[Project]:
        return self._project

    def set_project(self, project: Optional[Project], ids: Iterable[int] = ()) -> None:
        self.beginResetModel()
        self._project = project
        self._ids = array("q", sorted(ids))
        self._cache.clear()
        self.endResetModel()

    def set_ids(self, ids: Iterable[int]) -> None:
        """Show these records (sorted by id); cached rows stay cached."""
        self.beginResetModel()
        self._ids = array("q", sorted(ids))
        self.endResetModel()

    def ids(self) -> Sequence[int]:
        return self._ids

    def id_at(self, row: int) -> Optional[int]:
        return int(self._ids[row]) if 0 <= row < len(self._ids) else None

    def row_of(self, record_id: int) -> Optional[int]:
        i = bisect_left(self._ids, record_id)
        return i if i < len(self._ids) and self._ids[i] == record_id else None

    def cached_rows(self) -> int:
        return len(self._cache)

    def refresh(self, record_ids: Iterable[int]) -> None:
        """Forget cached data of these records and repaint their rows (after a decision)."""
        rows = []
        for rid in record_ids:
            self._cache.pop(int(rid), None)
            row = self.row_of(int(rid))
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
        if self._ids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._ids) - 1, self.columnCount() - 1))

    def row_data(self, row: int) -> Optional[RowData]:
        rid = self.id_at(row)
        if rid is None or self._project is None:
            return None
        item = self._cache.get(rid)
        if item is not None:
            self._cache.move_to_end(rid)
            return item
        self._fetch_around(row)
        return self._cache.get(rid)

    def _fetch_around(self, row: int) -> None:
        """Load the block of rows around ``row`` that is not cached yet (one query)."""
        start = max(0, row - self.block // 4)
        stop = min(len(self._ids), start + self.block)
        wanted = [int(i) for i in self._ids[start:stop] if i not in self._cache]
        if not wanted or self._project is None or self._project.closed:
            return
        self.fetches += 1
        try:
            records = self._project.get_many(wanted)
        except KeyError:  # a record vanished (should not happen): fetch one by one
            records = []
            for rid in wanted:
                try:
                    records.append(self._project.get(rid))
                except KeyError:
                    pass
        for sr in records:
            self._cache[sr.id] = summarize(sr)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # -- Qt model API ----------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return (
                    "Record number in its source file (0-based)",
                    "Review status",
                    "train / validation / test",
                    "Number of messages",
                    "The first user message",
                    "Characters in the assistant turns",
                )[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section in (self.COL_INDEX, self.COL_MSGS, self.COL_ANSWER):
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
            if col in (self.COL_INDEX, self.COL_MSGS, self.COL_ANSWER):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        item = self.row_data(row)
        if item is None:
            return "…" if role == Qt.ItemDataRole.DisplayRole else None
        if role == self.StatusRole:
            return item.status
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.COL_INDEX:
                return str(item.index)
            if col == self.COL_STATUS:
                return STATUS_LABELS.get(item.status, item.status)
            if col == self.COL_SPLIT:
                return item.split
            if col == self.COL_MSGS:
                return str(item.n_messages)
            if col == self.COL_FIRST_USER:
                return item.first_user
            if col == self.COL_ANSWER:
                return f"{item.answer_len:,}"
        elif role == Qt.ItemDataRole.DecorationRole:
            if col == self.COL_STATUS:
                return status_icon(item.status)
        elif role == Qt.ItemDataRole.ForegroundRole:
            if col == self.COL_STATUS:
                return QColor(STATUS_COLORS.get(item.status, "#868e96"))
        elif role == Qt.ItemDataRole.FontRole:
            if col == self.COL_STATUS and item.edited:
                return self._italic
        elif role == Qt.ItemDataRole.ToolTipRole:
            where = os.path.basename(item.source_file)
            if item.line is not None:
                where += f":{item.line}"
            tip = f"Record {item.index} ({where}), store id {item.id}"
            if item.labels:
                tip += "\nLabels: " + ", ".join(item.labels)
            if col == self.COL_FIRST_USER and item.first_user:
                tip = item.first_user + "\n\n" + tip
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
        names = {s["id"]: os.path.basename(s["path"]) for s in sources}
        self.beginResetModel()
        self._rows = [
            (
                names.get(e.get("source_id"), ""),
                e.get("line"),
                e.get("index"),
                e.get("key") or "",
                e.get("message") or "",
            )
            for e in errors
        ]
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
