"""The Findings dock: one row per finding of a quality scan report.

:func:`findings_from_report` turns a project scan report (indices are record ids, see
docs/scanning.md) into flat :class:`Finding` rows; :class:`FindingsModel` shows them
(filtered by kind) in a :class:`FindingsPanel` - a plain ``QTableView``, never a widget
per row. Activating a row emits :attr:`FindingsPanel.record_requested` with its record id.
No scanning happens here: the report comes from :func:`ftcurate.core.quality.scan.scan_project`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QStackedWidget,
                               QVBoxLayout, QWidget)

from .models import RowsTableModel
from .theme import readable, set_muted
from .widgets import list_table

EMPTY_TEXT = "No scan yet — run Scan ▸ Run quality scan"
NO_PROJECT_TEXT = "Open a dataset or project, then run Scan ▸ Run quality scan"
NOTHING_FOUND_TEXT = "The last scan found nothing to fix."

# colour of the kind column, by group
_GROUP_COLORS = {
    "duplicate": "#1c7ed6",
    "conflict": "#e8590c",
    "outlier": "#7048e8",
    "index": "#9c36b5",
    "leakage": "#e03131",
    "flag": "#868e96",
}


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # shown, and the filter key
    record_id: int  # the project record id (what the main table selects)
    detail: str
    group: str = "flag"  # for the colour
    number: Optional[int] = None  # what the main table's "#" column shows for it


def _ids(values, num) -> str:
    return ", ".join(str(num(v)) for v in values)


def _num(x: Any) -> str:
    try:
        return f"{float(x):.2f}"
    except (TypeError, ValueError):
        return str(x)


def _leaks(hits, section: str, what: str, num) -> list[Finding]:
    out = []
    for h in hits or []:
        method = h.get("method", "?")
        out.append(Finding(f"{section} ({method})", int(h["index"]),
                           f"leaks {what} record {num(h.get('test_index'))} "
                           f"({h.get('field', '?')}, {_num(h.get('score'))})", "leakage"))
    return out


def findings_from_report(report: Optional[dict], numbers: Optional[dict] = None) -> list[Finding]:
    """Flat rows for a project scan report, in report order (sections, then records).

    ``numbers`` maps record ids to the numbers people see (the record's index in its
    file, the main table's "#" column); ids are shown where it has none.
    """
    if not report:
        return []
    numbers = numbers or {}

    def num(rid):
        return numbers.get(rid, rid)

    rows = _rows(report, num)
    return [Finding(f.kind, f.record_id, f.detail, f.group, num(f.record_id)) for f in rows]


def _rows(report: dict, num) -> list[Finding]:
    rows: list[Finding] = []
    for group in report.get("exact_duplicates") or []:
        for rid in group:
            rows.append(Finding("exact duplicate", int(rid), "same as " + _ids((o for o in group if o != rid), num),
                                "duplicate"))
    for group in report.get("conflicting") or []:
        for rid in group:
            rows.append(Finding("conflicting answers", int(rid),
                                "same prompt, other answer in " + _ids((o for o in group if o != rid), num), "conflict"))
    for cluster in report.get("near_duplicate_clusters") or []:
        keep = cluster.get("keep")
        reason = cluster.get("reason") or ""
        pairs = cluster.get("pairs") or []
        for rid in cluster.get("indices") or []:
            if rid == keep:
                others = [o for o in cluster.get("indices") or [] if o != rid]
                rows.append(Finding("near duplicate", int(rid), f"keep this one ({reason}); copies: {_ids(others, num)}",
                                    "duplicate"))
                continue
            best = None
            for p in pairs:
                if rid in (p.get("a"), p.get("b")):
                    other = p["b"] if p.get("a") == rid else p["a"]
                    if best is None or p.get("similarity", 0) > best[1]:
                        best = (other, p.get("similarity", 0))
            sim = f"similarity {_num(best[1])} with {num(best[0])}, " if best else ""
            rows.append(Finding("near duplicate", int(rid), f"{sim}keep {num(keep)} ({reason})", "duplicate"))
    for p in report.get("semantic_duplicates") or []:
        for rid, other in ((p["a"], p["b"]), (p["b"], p["a"])):  # both records of the pair (both are flagged)
            rows.append(Finding("semantic duplicate", int(rid), f"similarity {_num(p.get('similarity'))} with "
                                f"{num(other)}", "duplicate"))
    for o in report.get("outliers") or []:
        rows.append(Finding("outlier", int(o["index"]), f"score {_num(o.get('score'))} (far from its neighbours)",
                            "outlier"))
    for o in report.get("length_outliers") or []:
        tokens = o.get("tokens")
        what = f"{int(tokens):,} tokens" if isinstance(tokens, (int, float)) else f"score {_num(o.get('score'))}"
        rows.append(Finding("length outlier", int(o["index"]), f"{what}, far from the usual length", "outlier"))
    rows += _leaks(report.get("leakage"), "leakage", "test", num)
    rows += _leaks(report.get("validation_leakage"), "validation leakage", "validation", num)
    for h in report.get("against_index") or []:  # already in a corpus index (datasets trained on before)
        method = h.get("method", "?")
        rows.append(Finding(f"in corpus index ({method})", int(h["index"]),
                            f"{'copy' if method == 'exact' else method + ' duplicate'} of record {h.get('record', '?')} "
                            f"of {h.get('dataset', '?')} ({_num(h.get('score'))})", "index"))
    for f in report.get("flags") or []:
        name = str(f.get("flag", "")).replace("_", " ")
        rows.append(Finding(f"flag: {name}", int(f["index"]), str(f.get("reason", "")), "flag"))
    return rows


def scan_summary(report: Optional[dict], short: bool = False) -> str:
    """One line: "Scan: 8 duplicate groups, 10 near-duplicate clusters, 12 leaks, 15 flags"
    (``short``: only those four, for the status bar; else every non-empty section)."""
    if not report:
        return "Scan: no report"

    def n(key: str) -> int:
        return len(report.get(key) or [])

    leaks = len({h["index"] for h in report.get("leakage") or []})
    parts = [(n("exact_duplicates"), "duplicate group", "duplicate groups"),
             (n("near_duplicate_clusters"), "near-duplicate cluster", "near-duplicate clusters"),
             (n("conflicting"), "conflicting prompt", "conflicting prompts"),
             (n("semantic_duplicates"), "semantic duplicate", "semantic duplicates"),
             (n("outliers") + n("length_outliers"), "outlier", "outliers"),
             (leaks, "leak", "leaks"),
             (n("validation_leakage"), "validation leak", "validation leaks"),
             (n("flags"), "flag", "flags"),
             (len({h["index"] for h in report.get("against_index") or []}), "record in the corpus index",
              "records in the corpus index")]
    if short:
        parts = [parts[0], parts[1], parts[5], parts[7]]
    text = ", ".join(f"{c:,} {one if c == 1 else many}" for c, one, many in parts if c)
    gone = sum((report.get("dismissed") or {}).values())
    tail = f" ({gone:,} dismissed by reviewers)" if gone and not short else ""
    return "Scan: " + (text or "nothing found") + tail


class FindingsModel(RowsTableModel):
    """Findings (all of them in memory: a few per record at most), filtered by kind."""

    COLUMNS = ("Kind", "#", "Detail")
    COL_KIND, COL_RECORD, COL_DETAIL = range(3)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._all: list[Finding] = []
        self._rows: list[Finding] = []
        self._kind: Optional[str] = None
        self.report: Optional[dict] = None

    def set_report(self, report: Optional[dict], numbers: Optional[dict] = None) -> None:
        self.beginResetModel()
        self.report = report
        self._all = findings_from_report(report, numbers)
        self._rows = self._filtered()
        self.endResetModel()

    def clear(self) -> None:
        self.set_report(None)

    def kinds(self) -> list[tuple[str, int]]:
        """(kind, count) in first-seen order."""
        counts: dict[str, int] = {}
        for f in self._all:
            counts[f.kind] = counts.get(f.kind, 0) + 1
        return list(counts.items())

    def total(self) -> int:
        return len(self._all)

    def set_kind(self, kind: Optional[str]) -> None:
        self.beginResetModel()
        self._kind = kind
        self._rows = self._filtered()
        self.endResetModel()

    def _filtered(self) -> list[Finding]:
        return list(self._all) if self._kind is None else [f for f in self._all if f.kind == self._kind]

    def finding(self, row: int) -> Optional[Finding]:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        f = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (f.kind, str(f.number), f.detail)[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f.kind, f"record {f.number}", f.detail)[col]
        if role == Qt.ItemDataRole.UserRole:
            return f.record_id
        if role == Qt.ItemDataRole.ForegroundRole and col == self.COL_KIND:
            return readable(_GROUP_COLORS.get(f.group, "#495057"))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == self.COL_RECORD:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class FindingsPanel(QWidget):
    """Filter combo + findings table, or an empty-state message when there is no report."""

    record_requested = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.model = FindingsModel(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(4)
        bar = QHBoxLayout()
        bar.setSpacing(6)
        self.kind_filter = QComboBox()
        self.kind_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.kind_filter.setToolTip("Show one kind of finding")
        self.kind_filter.currentIndexChanged.connect(self._on_kind_changed)
        self.summary_label = QLabel()
        set_muted(self.summary_label)
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.kind_filter)
        bar.addWidget(self.summary_label, 1)
        layout.addLayout(bar)

        view = list_table(self.model, "FindingsTable",
                          widths=((FindingsModel.COL_KIND, 190), (FindingsModel.COL_RECORD, 56)))
        view.clicked.connect(self._on_activated)
        view.activated.connect(self._on_activated)
        self.view = view

        self.empty_label = QLabel(NO_PROJECT_TEXT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet("font-size: 13px; padding: 12px")
        set_muted(self.empty_label)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_label)
        self.stack.addWidget(view)
        layout.addWidget(self.stack, 1)
        self.set_report(None, has_project=False)

    def set_report(self, report: Optional[dict], has_project: bool = True, numbers: Optional[dict] = None) -> None:
        self.model.set_report(report, numbers)
        self.kind_filter.blockSignals(True)
        self.kind_filter.clear()
        self.kind_filter.addItem(f"All findings ({self.model.total():,})", None)
        for kind, count in self.model.kinds():
            self.kind_filter.addItem(f"{kind} ({count:,})", kind)
        self.kind_filter.setCurrentIndex(0)
        self.kind_filter.blockSignals(False)
        self.model.set_kind(None)
        self.kind_filter.setEnabled(self.model.total() > 0)
        if report is None:
            self.summary_label.setText("")
            self.empty_label.setText(EMPTY_TEXT if has_project else NO_PROJECT_TEXT)
            self.stack.setCurrentWidget(self.empty_label)
        elif not self.model.total():
            self.summary_label.setText(scan_summary(report))
            self.empty_label.setText(NOTHING_FOUND_TEXT)
            self.stack.setCurrentWidget(self.empty_label)
        else:
            self.summary_label.setText(scan_summary(report))
            self.stack.setCurrentWidget(self.view)

    def select_kind(self, kind: Optional[str]) -> None:
        i = 0 if kind is None else self.kind_filter.findData(kind)
        if i >= 0:
            self.kind_filter.setCurrentIndex(i)

    @Slot(int)
    def _on_kind_changed(self, _i: int) -> None:
        self.model.set_kind(self.kind_filter.currentData())

    @Slot(QModelIndex)
    def _on_activated(self, index: QModelIndex) -> None:
        f = self.model.finding(index.row()) if index.isValid() else None
        if f is not None:
            self.record_requested.emit(f.record_id)
