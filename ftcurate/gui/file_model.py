"""A read-only table over a JSON Lines file, shown while the file is imported into a project.

:class:`FileTableModel` sits on a :class:`~ftcurate.core.io.lineindex.LineIndex` (byte offsets
of the file's records, ~16 bytes a record) and has the same columns as
:class:`~ftcurate.gui.models.RecordTableModel`, so the window can show a million-record file
within a second or two and swap in the store-backed model when the import is done. Like
that model it is lazy: a row is read from the file and parsed only when the view asks for
it, a block of rows at a time, and only a bounded LRU cache of row summaries is kept. No
widget is ever made per row.

Rows are the file's records in file order (row ``i`` is record ``i``, the ``i``-th non-blank
line); their status is "Importing…" (greyed), or "Invalid" when the record is one the import
will reject (the tooltip says why).
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from ..core.io.lineindex import LineIndex, RowSummary
from ..core.project.table import CHARS_PER_TOKEN
from .models import BlockCache, BlockCachedModel, RecordTableModel

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

IMPORTING_COLOR = "#adb5bd"
INVALID_COLOR = "#e03131"

_TIPS = {
    "#": "Record number in its source file (0-based)",
    "Status": "Review status (the file is still being imported)",
    "Split": "train / validation / test",
    "Msgs": "Number of messages",
    "Tokens": "Estimated tokens (about four characters a token)",
    "Flags": "What the last quality scan found (none yet)",
    "Score": "Outlier score of the last scan (none yet)",
    "First user turn": "The first user message",
    "Answer chars": "Characters in the assistant turns",
}
_RIGHT = {"#", "Msgs", "Tokens", "Score", "Answer chars"}


def _col(columns: tuple, name: str) -> int:
    return columns.index(name) if name in columns else -1


class FileTableModel(BlockCachedModel, QAbstractTableModel):
    """Rows are the records of one JSONL file, in file order, read on demand."""

    COLUMNS: tuple = tuple(RecordTableModel.COLUMNS)  # same headers as the store-backed table
    COL_INDEX = _col(COLUMNS, "#")
    COL_STATUS = _col(COLUMNS, "Status")
    COL_SPLIT = _col(COLUMNS, "Split")
    COL_MSGS = _col(COLUMNS, "Msgs")
    COL_TOKENS = _col(COLUMNS, "Tokens")
    COL_FLAGS = _col(COLUMNS, "Flags")
    COL_SCORE = _col(COLUMNS, "Score")
    COL_FIRST_USER = _col(COLUMNS, "First user turn")
    COL_ANSWER = _col(COLUMNS, "Answer chars")

    COL_LABELS = _col(COLUMNS, "Labels")

    def empty_columns(self) -> list[int]:
        """Nothing is scanned or labelled while a file is read from disk."""
        return [self.COL_FLAGS, self.COL_SCORE, self.COL_LABELS]

    IdRole = RecordTableModel.IdRole  # always None here: records have no store id yet
    StatusRole = RecordTableModel.StatusRole  # "importing" or "invalid"
    RecordIndexRole = Qt.ItemDataRole.UserRole + 20  # record number in the file (0-based)

    def __init__(self, index: Optional[LineIndex] = None, parent=None, split: str = "train",
                 cache_size: int = 1024, block: int = 96) -> None:
        super().__init__(parent)
        self._index = index
        self.split = split
        self._cache = BlockCache(cache_size, block)  # row -> RowSummary
        self._grey = QColor(IMPORTING_COLOR)
        self._red = QColor(INVALID_COLOR)

    # -- content ---------------------------------------------------------------------------
    @property
    def line_index(self) -> Optional[LineIndex]:
        return self._index

    @property
    def path(self) -> Optional[str]:
        return self._index.path if self._index is not None else None

    def set_index(self, index: Optional[LineIndex]) -> None:
        """Show another file (None: empty). The old index is not closed (see :meth:`close`)."""
        self.beginResetModel()
        self._index = index
        self._cache.clear()
        self.endResetModel()

    def close(self) -> None:
        """Empty the table and close the file it reads."""
        index = self._index
        self.set_index(None)
        if index is not None:
            index.close()

    def cached_rows(self) -> int:
        return len(self._cache)

    def summary_at(self, row: int) -> Optional[RowSummary]:
        """The row's summary (read from the file with its block when not cached)."""
        if self._index is None or not 0 <= row < len(self._index):
            return None
        return self._cache.get(row, row, self._load_rows)

    def record_text(self, row: int) -> str:
        """The record as pretty-printed JSON (its raw text when it is not valid JSON), for a
        detail pane."""
        if self._index is None or not 0 <= row < len(self._index):
            return ""
        obj = self._index.parse(row)
        if obj is None:
            return self._index.line_bytes(row).decode("utf-8", errors="replace")
        if _orjson is not None:
            try:
                return _orjson.dumps(obj, option=_orjson.OPT_INDENT_2).decode("utf-8")
            except TypeError:  # e.g. an integer beyond 64 bits
                pass
        return json.dumps(obj, indent=2, ensure_ascii=False)

    def _load_rows(self, start: int, stop: int) -> Optional[dict]:
        """Read and summarise the rows start..stop that are not cached yet."""
        index = self._index
        if index is None:
            return None
        out = {}
        for r in range(start, min(len(index), stop)):
            if r in self._cache:
                continue
            try:
                out[r] = index.summary(r)
            except (OSError, ValueError) as exc:  # the file went away or the index was closed
                out[r] = RowSummary(r + 1, "", 0, 0, "unreadable", str(exc))
        return out

    # -- Qt model API ----------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() or self._index is None else len(self._index)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.COLUMNS):
            name = self.COLUMNS[section]
            if role == Qt.ItemDataRole.DisplayRole:
                return name
            if role == Qt.ItemDataRole.ToolTipRole:
                return _TIPS.get(name, name)
            if role == Qt.ItemDataRole.TextAlignmentRole and name in _RIGHT:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, col = index.row(), index.column()
        if role == self.RecordIndexRole:
            return row
        if role == self.IdRole:
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            right = self.COLUMNS[col] in _RIGHT
            return int((Qt.AlignmentFlag.AlignRight if right else Qt.AlignmentFlag.AlignLeft)
                       | Qt.AlignmentFlag.AlignVCenter)
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole,
                        Qt.ItemDataRole.ForegroundRole, self.StatusRole):
            return None
        item = self.summary_at(row)
        if item is None:
            return "…" if role == Qt.ItemDataRole.DisplayRole else None
        if role == self.StatusRole:
            return "importing" if item.ok else "invalid"
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col, item)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == self.COL_STATUS:
                return self._grey if item.ok else self._red
            return None
        # tooltip
        where = os.path.basename(self._index.path) if self._index is not None else ""
        tip = f"Record {row} ({where}:{item.line}), being imported"
        if not item.ok:
            tip = f"Record {row} ({where}:{item.line}) will not be imported: {item.message or item.error} [{item.error}]"
        if col == self.COL_FIRST_USER and item.first_user:
            tip = item.first_user + "\n\n" + tip
        return tip

    def _display(self, row: int, col: int, item: RowSummary) -> str:
        if col == self.COL_INDEX:
            return str(row)
        if col == self.COL_STATUS:
            return "Importing…" if item.ok else "Invalid"
        if col == self.COL_SPLIT:
            return self.split
        if col == self.COL_MSGS:
            return str(item.n_messages) if item.n_messages or item.ok else ""
        if col == self.COL_FIRST_USER:
            return item.first_user
        if col == self.COL_ANSWER:
            return f"{item.chars:,}" if item.ok or item.chars else ""
        if col == self.COL_TOKENS:
            return f"{(item.size + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN:,}"
        return ""  # flags and score: no scan yet
