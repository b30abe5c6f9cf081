"""The Duplicates tab: near-duplicate, exact and semantic pairs side by side.

The left of the tab lists the pairs of the last scan report (:func:`ftcurate.core.project.review.duplicate_pairs`)
in a :class:`PairsModel` - a plain table model, never a widget per row - with both records'
status, and a box that accepts the scan's suggested keeper for every cluster above a
similarity. The right shows the two records of the current pair in two panes with the
words that differ highlighted (deleted words red on the left, inserted words green on the
right). Keys: 1 / Ctrl+Left keep left, 2 / Ctrl+Right keep right, B keep both, X reject
both, Space / PageDown next pair, Shift+Space / PageUp previous pair; after a decision the
view moves on to the next pair still to decide.

:class:`PairReviewView` is the part the Leakage tab (``leak_view.py``) shares: the signals
the main window connects, the project/report/refresh interface, the table, the two diff
panes, navigation and store calls that report errors instead of raising. Every decision
is one store call made in the GUI thread (they are quick), so one undo step.
"""

from __future__ import annotations

import html
import os
import traceback
from typing import Any, Callable, Iterable, Optional, Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (QDoubleSpinBox, QFrame, QGroupBox, QHBoxLayout, QLabel, QMessageBox, QPushButton, QScrollArea, QSizePolicy, QSlider, QSplitter,
                               QStackedWidget,
                               QTableView, QTextBrowser, QToolButton, QVBoxLayout, QWidget)

from ..core.project import review
from ..core.project.records import Message
from ..core.project.review import DuplicatePair
from ..core.project.store import Project, StoredRecord
from .models import STATUS_COLORS, STATUS_LABELS, RowsTableModel, status_icon
from .widgets import ROLE_STYLES, ROLE_STYLES_DARK, list_table

NO_PROJECT_TEXT = "No project open — open a dataset or a project to review its duplicates."
NO_REPORT_TEXT = "No duplicate pairs — run Scan ▸ Run quality scan"
NO_PAIRS_TEXT = "No duplicate pairs: the last scan found no exact, near or semantic duplicates."

MUTED = "#6b7280"
# (deleted, inserted) word backgrounds: light theme, dark theme
_DIFF_COLORS = {False: ("#ffc9c9", "#b2f2bb"), True: ("#7a2525", "#22603a")}
_KIND_LABELS = {"exact": "exact duplicate", "near": "near duplicate", "semantic": "semantic duplicate"}
_KIND_TIPS = {
    "exact": "The same conversation (after normalising whitespace)",
    "near": "Near-duplicates: most word 5-grams shared (MinHash, Jaccard similarity)",
    "semantic": "Same meaning in other words (embedding cosine similarity)",
}


# -- rendering two records with their differences ----------------------------------------------


def _is_dark() -> bool:
    from .theme import is_dark

    return is_dark()


def _esc(text: Optional[str]) -> str:
    return html.escape(text or "", quote=True)


def message_text(m: Message) -> str:
    """What a message says, tool calls included (``→ name(arguments)``), for comparing."""
    text = m.content or ""
    calls = list(m.tool_calls or [])
    if m.function_call:
        calls.append({"function": m.function_call})
    for call in calls:
        fn = call.get("function", {}) if isinstance(call, dict) else {}
        name = fn.get("name", "?") if isinstance(fn, dict) else "?"
        args = fn.get("arguments", "") if isinstance(fn, dict) else ""
        text += ("\n" if text else "") + f"→ {name}({args if isinstance(args, str) else args!r})"
    return text


def _marked(text: str, color: str) -> str:
    """``text`` on a coloured background, but not the whitespace at its end."""
    body = text.rstrip()
    if not body:
        return _esc(text)
    return f'<span style="background-color:{color}">{_esc(body)}</span>{_esc(text[len(body):])}'


def _header_html(sr: StoredRecord, title: str, note: str, text_color: str) -> str:
    color = STATUS_COLORS.get(sr.status, MUTED)
    where = os.path.basename(sr.record.source.file) or "?"
    if sr.line is not None:
        where += f", line {sr.line}"
    return (
        '<table width="100%" cellspacing="0" cellpadding="0"><tr><td>'
        f'<span style="font-size:large; font-weight:600; color:{text_color}">{_esc(title)} {sr.index}</span>'
        f'&nbsp;&nbsp;<span style="color:{color}; font-weight:600">&#9679; '
        f'{_esc(STATUS_LABELS.get(sr.status, sr.status))}</span>'
        f'&nbsp;&nbsp;<span style="color:{MUTED}">split: {_esc(sr.split)}</span>'
        f"{note}</td></tr><tr><td>"
        f'<span style="color:{MUTED}">{_esc(where)} &middot; {len(sr.record.messages)} messages &middot; </span>'
        f'<a href="record:{sr.id}">open in Records</a>'
        "</td></tr></table><br>"
    )


def _box(role: str, body: str, styles: dict) -> str:
    label_color, bg, border = styles.get(role, styles["system"])
    return (f'<table width="100%" cellspacing="0" cellpadding="8" bgcolor="{bg}" '
            f'style="border:1px solid {border}; margin-bottom:8px"><tr><td>'
            f'<div style="color:{label_color}; font-weight:700">{_esc(role.capitalize())}</div>'
            f'<div style="white-space:pre-wrap">{body}</div></td></tr></table>')


def diff_html(left: StoredRecord, right: StoredRecord, left_title: str, right_title: str,
              left_note: str = "", right_note: str = "") -> tuple[str, str, bool]:
    """HTML for two records side by side: ``(left html, right html, differ)``.

    Messages are compared in order (first with first...); inside each pair of messages the
    words only the left one has get a red background on the left, those only the right
    one has a green background on the right (:func:`ftcurate.core.project.review.word_diff`). A
    message one side lacks is marked whole. ``differ`` is False when every message reads
    the same. ``*_note``: extra HTML after the status line (e.g. the suggested keeper)."""
    dark = _is_dark()
    styles = ROLE_STYLES_DARK if dark else ROLE_STYLES
    text_color = "#e9ecef" if dark else "#1b1f24"
    deleted, inserted = _DIFF_COLORS[dark]
    empty = f'<span style="color:{MUTED}"><i>(empty)</i></span>'
    lparts = [f'<html><body style="color:{text_color}">', _header_html(left, left_title, left_note, text_color)]
    rparts = [f'<html><body style="color:{text_color}">', _header_html(right, right_title, right_note, text_color)]
    lmsgs, rmsgs = left.record.messages, right.record.messages
    differ = len(lmsgs) != len(rmsgs)
    for i in range(max(len(lmsgs), len(rmsgs))):
        lm = lmsgs[i] if i < len(lmsgs) else None
        rm = rmsgs[i] if i < len(rmsgs) else None
        if lm is not None and rm is not None:
            lbody, rbody = [], []
            for op, a, b in review.word_diff(message_text(lm), message_text(rm)):
                if op == "equal":
                    lbody.append(_esc(a))
                    rbody.append(_esc(b))
                else:
                    differ = True
                    lbody.append(_marked(a, deleted))
                    rbody.append(_marked(b, inserted))
            differ = differ or lm.role != rm.role
            lparts.append(_box(lm.role, "".join(lbody) or empty, styles))
            rparts.append(_box(rm.role, "".join(rbody) or empty, styles))
        elif lm is not None:
            lparts.append(_box(lm.role, _marked(message_text(lm), deleted) or empty, styles))
        elif rm is not None:
            rparts.append(_box(rm.role, _marked(message_text(rm), inserted) or empty, styles))
    lparts.append("</body></html>")
    rparts.append("</body></html>")
    return "".join(lparts), "".join(rparts), differ


class RecordPane(QTextBrowser):
    """One side of a pair: read-only, links ``record:<id>`` ask to open that record."""

    record_requested = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.document().setDocumentMargin(10)
        self.anchorClicked.connect(self._on_anchor)
        self.record_id: Optional[int] = None

    def show_html(self, text: str, record_id: Optional[int]) -> None:
        keep = self.verticalScrollBar().value() if record_id is not None and record_id == self.record_id else 0
        self.record_id = record_id
        self.setStyleSheet(f"QTextBrowser {{ background: {'#1e2125' if _is_dark() else '#ffffff'}; }}")
        self.setHtml(text)
        self.verticalScrollBar().setValue(keep)

    def show_placeholder(self, text: str) -> None:
        self.show_html(f'<p style="color:{MUTED}; margin-top:24px" align="center">{_esc(text)}</p>', None)

    @Slot(QUrl)
    def _on_anchor(self, url: QUrl) -> None:
        if url.scheme() == "record":
            try:
                self.record_requested.emit(int(url.path()))
            except ValueError:
                pass


# -- the table models -------------------------------------------------------------------------------


class PairRowsModel(RowsTableModel):
    """Rows of pairs (any objects) plus ``info``: record id -> (index, split, status), the
    little the table shows of each record, re-read from the store after each change."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list = []
        self.info: dict[int, tuple[int, str, str]] = {}

    def set_rows(self, rows: Sequence) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def rows(self) -> list:
        return self._rows

    def pair(self, row: int):
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def number(self, rid: int) -> str:
        """The record's number as people see it (its index in its file); the id if unknown."""
        info = self.info.get(rid)
        return str(info[0]) if info else f"id {rid}"

    def status(self, rid: int) -> Optional[str]:
        info = self.info.get(rid)
        return info[2] if info else None

    def split(self, rid: int) -> Optional[str]:
        info = self.info.get(rid)
        return info[1] if info else None

    def repaint_all(self) -> None:
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, self.columnCount() - 1))

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            tips = getattr(self, "TIPS", ())
            return tips[section] if section < len(tips) else None
        return super().headerData(section, orientation, role)

    def _record_cell(self, rid: int, role: int, suffix: str = "") -> Any:
        """Display, icon and tooltip of a cell that names a record."""
        status = self.status(rid)
        if role == Qt.ItemDataRole.DisplayRole:
            return self.number(rid) + suffix
        if role == Qt.ItemDataRole.DecorationRole:
            return status_icon(status or "unreviewed") if status else None
        if role == Qt.ItemDataRole.ToolTipRole:
            if status is None:
                return f"Record id {rid} is not in the project any more"
            return (f"Record {self.number(rid)} (id {rid}): {STATUS_LABELS.get(status, status)}, "
                    f"{self.split(rid)} split\nDouble-click to open it in the Records tab")
        return None


class PairsModel(PairRowsModel):
    """Duplicate pairs: both records (status icon, ★ on the suggested keeper), similarity,
    kind and what was decided."""

    COLUMNS = ("Left", "Right", "Sim.", "Kind", "Decision")
    COL_LEFT, COL_RIGHT, COL_SIM, COL_KIND, COL_DECISION = range(5)
    TIPS = ("Left record (★: the scan's suggested keeper)", "Right record", "Similarity of the two records",
            "exact, near or semantic duplicate", "What was decided (empty: still to decide)")

    def decision(self, pair: DuplicatePair) -> str:
        return review.pair_decision(self.status(pair.left), self.status(pair.right))

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        p: DuplicatePair = self._rows[index.row()]
        col = index.column()
        if col in (self.COL_LEFT, self.COL_RIGHT):
            rid = p.left if col == self.COL_LEFT else p.right
            return self._record_cell(rid, role, " ★" if rid == p.keeper else "")
        decided = self.decision(p)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == self.COL_SIM:
                return f"{p.similarity:.2f}"
            if col == self.COL_KIND:
                return p.kind
            if col == self.COL_DECISION:
                return decided
        elif role == Qt.ItemDataRole.ToolTipRole:
            if col == self.COL_KIND:
                tip = _KIND_TIPS.get(p.kind, p.kind)
                return tip + (f"\nCluster {p.cluster}" if p.cluster is not None else "")
            if col == self.COL_SIM:
                return f"similarity {p.similarity:.4f}"
            if col == self.COL_DECISION:
                return decided or "Still to decide: a record of the pair is unreviewed"
        elif role == Qt.ItemDataRole.ForegroundRole:
            if col == self.COL_DECISION:
                return QColor(STATUS_COLORS["rejected"] if decided == "rejected both" else STATUS_COLORS["approved"])
            if decided:
                return QColor(MUTED)
        elif role == Qt.ItemDataRole.TextAlignmentRole and col == self.COL_SIM:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


# -- the shared view ------------------------------------------------------------------------------------


class PairReviewView(QWidget):
    """A table of pairs on the left, the current pair's two records side by side on the
    right, keyboard actions that decide and move on. Subclasses make the model, the
    actions and the decisions (see :class:`PairView` and ``leak_view.LeakView``)."""

    record_requested = Signal(int)  # open this record in the Records tab
    records_changed = Signal(list)  # record ids a decision made here changed (already saved)
    error_reported = Signal(str, str, str)  # title, message, details

    NO_PROJECT_TEXT = NO_PROJECT_TEXT
    NO_REPORT_TEXT = NO_REPORT_TEXT
    NOTHING_TEXT = NO_PAIRS_TEXT
    WHAT = "pair"  # "pair 3 of 24"

    def __init__(self, parent: Optional[QWidget] = None, interactive: bool = True) -> None:
        super().__init__(parent)
        self.interactive = interactive
        self.project: Optional[Project] = None
        self.report: Optional[dict] = None
        self._actions: list[QAction] = []
        self.model = self._make_model()

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.empty_label = QLabel(self.NO_PROJECT_TEXT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet(f"color: {MUTED}; font-size: 14px; padding: 24px")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_label)
        outer.addWidget(self.stack)

        # left: summary, table (subclasses add below it)
        left = QWidget()
        self.left_layout = QVBoxLayout(left)
        self.left_layout.setContentsMargins(6, 6, 0, 6)
        self.left_layout.setSpacing(6)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.left_layout.addWidget(self.summary_label)
        self.table = self._make_table()
        self.left_layout.addWidget(self.table, 1)

        # right: what the pair is, the decision buttons, the two records
        right = QWidget()
        rlay = QVBoxLayout(right)
        rlay.setContentsMargins(0, 6, 6, 6)
        rlay.setSpacing(6)
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        self.info_label.setTextFormat(Qt.TextFormat.RichText)
        self.info_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        rlay.addWidget(self.info_label)
        self.button_row = QHBoxLayout()
        self.button_row.setSpacing(4)
        self.button_row.setContentsMargins(0, 0, 0, 0)
        # the buttons scroll sideways in a narrow window rather than widen the whole view
        buttons = QWidget()
        buttons.setLayout(self.button_row)
        strip = QScrollArea()
        strip.setWidget(buttons)
        strip.setWidgetResizable(True)
        strip.setFrameShape(QFrame.Shape.NoFrame)
        strip.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        strip.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        strip.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        strip.setFixedHeight(46)  # a row of 28 px buttons and room for the scroll bar
        rlay.addWidget(strip)
        self._button_strip = strip
        self.panes = QSplitter(Qt.Orientation.Horizontal)
        self.panes.setChildrenCollapsible(False)
        self.left_pane = RecordPane()
        self.right_pane = RecordPane()
        self._syncing = False  # while one pane scrolls the other
        for pane, other in ((self.left_pane, self.right_pane), (self.right_pane, self.left_pane)):
            pane.record_requested.connect(self.record_requested)
            pane.verticalScrollBar().valueChanged.connect(lambda _v, a=pane, b=other: self._sync_scroll(a, b))
            self.panes.addWidget(pane)
        rlay.addWidget(self.panes, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([420, 880])
        self.stack.addWidget(self.splitter)

        self._build_actions()
        self._build_extras()
        self.button_row.addStretch(1)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self._reload()

    # -- subclass hooks --------------------------------------------------------------------------
    def _make_model(self) -> PairRowsModel:
        raise NotImplementedError

    def _build_actions(self) -> None:
        """Make the actions (with :meth:`_action`) and their buttons."""

    def _build_extras(self) -> None:
        """Add widgets under the table (``self.left_layout``)."""

    def _pairs_from_report(self, report: Optional[dict]) -> list:
        raise NotImplementedError

    def _is_done(self, pair) -> bool:
        """Whether the pair needs nothing more (the view moves on to the next one that does)."""
        raise NotImplementedError

    def _render(self, pair, records: dict[int, StoredRecord]) -> None:
        """Show ``pair`` (its records fetched) in the info label and the two panes."""
        raise NotImplementedError

    def _summary(self) -> str:
        raise NotImplementedError

    def _empty_text(self) -> Optional[str]:
        """The empty-state message, or None when there are pairs to show."""
        if self._project() is None:
            return self.NO_PROJECT_TEXT
        if self.report is None:
            return self.NO_REPORT_TEXT
        if not self.model.rowCount():
            return self.NOTHING_TEXT
        return None

    def _after_refresh(self) -> None:
        """The statuses were re-read (e.g. to update what a bulk button would do)."""

    # -- the interface the main window uses -----------------------------------------------------------
    def set_project(self, project: Optional[Project]) -> None:
        self.project = project
        self._reload()

    def set_report(self, report: Optional[dict]) -> None:
        self.report = report
        self._reload()

    def refresh(self, ids: Optional[list[int]] = None) -> None:
        """The store changed elsewhere (undo, redo, another view): re-read the statuses of
        these records (all when None) and repaint."""
        if self._project() is None or not self.model.rowCount():
            return
        if ids is None:
            wanted = self._all_ids()
        else:
            known = set(self._all_ids())
            wanted = [int(i) for i in ids if int(i) in known]
            if not wanted:
                return
        self._load_info(wanted)
        self.model.repaint_all()
        self._update_summary()
        self._after_refresh()
        pair = self.current_pair()
        if pair is not None and (ids is None or set(self._ids_of(pair)) & set(wanted)):
            self._show_current()

    def actions(self) -> list[QAction]:
        """This view's actions with their keys (the main window's shortcuts sheet lists them)."""
        return list(self._actions)

    # -- navigation ----------------------------------------------------------------------------------
    def current_row(self) -> int:
        index = self.table.currentIndex()
        return index.row() if index.isValid() else -1

    def current_pair(self):
        return self.model.pair(self.current_row())

    def pairs(self) -> list:
        return self.model.rows()

    def current_key(self) -> Optional[list[int]]:
        """The record ids of the current pair (remembered in the project's view state)."""
        pair = self.current_pair()
        return [int(i) for i in self._ids_of(pair)] if pair is not None else None

    def select_key(self, key) -> bool:
        """Go to the pair with these record ids, when it is still listed."""
        if not isinstance(key, list):
            return False
        wanted = tuple(key)
        for row, pair in enumerate(self.model.rows()):
            if tuple(self._ids_of(pair)) == wanted:
                self.select_row(row)
                return True
        return False

    def select_row(self, row: int) -> None:
        if 0 <= row < self.model.rowCount():
            index = self.model.index(row, 0)
            self.table.setCurrentIndex(index)
            self.table.scrollTo(index)

    def next_pair(self) -> None:
        row = self.current_row()
        if row + 1 < self.model.rowCount():
            self.select_row(row + 1)

    def previous_pair(self) -> None:
        row = self.current_row()
        if row > 0:
            self.select_row(row - 1)

    def next_undone_row(self, start: Optional[int] = None) -> Optional[int]:
        """The first row after ``start`` (the current row) still to decide, wrapping round."""
        n = self.model.rowCount()
        start = self.current_row() if start is None else start
        for k in range(1, n + 1):
            row = (start + k) % n
            if not self._is_done(self.model.pair(row)):
                return row
        return None

    def advance(self) -> None:
        """After a decision: move to the next pair still to decide (or stay when none is)."""
        row = self.next_undone_row()
        if row is None or row == self.current_row():
            self._show_current()
        else:
            self.select_row(row)

    # -- helpers -----------------------------------------------------------------------------------------
    def _project(self) -> Optional[Project]:
        return None if self.project is None or self.project.closed else self.project

    def _action(self, text: str, slot: Callable[[], None], keys: Sequence[str], tip: str,
                button: bool = True) -> QAction:
        """An action with shortcuts that work while the focus is inside this view only (so
        they never fire while another tab is shown), a tooltip naming its keys, and a button."""
        seqs = [QKeySequence(k) for k in keys]
        # the button shows its first key; the shortcuts sheet lists them all beside "help"
        first = seqs[0].toString(QKeySequence.SequenceFormat.NativeText) if seqs else ""
        act = QAction(f"{text}  ({first})" if first and button else text, self)
        act.setProperty("help", f"{self.WHAT.capitalize()}s: {text}")
        if seqs:
            act.setShortcuts(seqs)
        act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        keytext = " or ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in seqs)
        act.setToolTip(f"{tip} ({keytext})" if keytext else tip)
        act.setStatusTip(tip)
        act.triggered.connect(lambda checked=False: slot())
        self.addAction(act)
        self._actions.append(act)
        if button:
            b = QToolButton()
            b.setDefaultAction(act)
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            b.setAutoRaise(False)
            b.setMinimumHeight(28)
            self.button_row.addWidget(b)
        return act

    def _store_call(self, title: str, what: str, fn: Callable[[], Any]) -> bool:
        """Run a store call; on failure tell the main window (error_reported) and return False."""
        try:
            fn()
            return True
        except Exception as exc:  # noqa: BLE001 - any store failure is reported, not raised
            self.error_reported.emit(title, f"{what}: {exc}", traceback.format_exc())
            return False

    def _make_table(self) -> QTableView:
        view = list_table(self.model)
        hh = view.horizontalHeader()
        hh.setMinimumSectionSize(32)
        hh.setDefaultSectionSize(60)  # the stretched last column may shrink to fit the panel
        return view

    def _ids_of(self, pair) -> tuple[int, int]:
        return pair.ids

    def _all_ids(self) -> list[int]:
        return list(dict.fromkeys(rid for p in self.model.rows() for rid in self._ids_of(p)))

    def _load_info(self, ids: Iterable[int]) -> None:
        project = self._project()
        ids = list(ids)
        if project is None or not ids:
            return
        try:
            rows = list(project.light_rows(ids))
        except Exception as exc:  # noqa: BLE001
            self.error_reported.emit("Could not read the records", f"Reading the records' statuses failed: {exc}",
                                     traceback.format_exc())
            return
        for rid in ids:
            self.model.info.pop(rid, None)
        for rid, idx, split, status, *_ in rows:
            self.model.info[int(rid)] = (int(idx), split, status)

    def _reload(self) -> None:
        """Rebuild everything from the project and the report."""
        keep = self.current_pair()
        pairs = self._pairs_from_report(self.report) if self._project() is not None else []
        self.model.info = {}
        self.model.set_rows(pairs)
        self._load_info(self._all_ids())
        empty = self._empty_text()
        if empty is not None:
            self.empty_label.setText(empty)
            self.stack.setCurrentWidget(self.empty_label)
        else:
            self.stack.setCurrentWidget(self.splitter)
        self._update_summary()
        self._after_refresh()
        self._update_enabled()
        if not pairs:
            self.left_pane.show_placeholder("")
            self.right_pane.show_placeholder("")
            self.info_label.setText("")
            return
        row = pairs.index(keep) if keep in pairs else None
        if row is None:
            first = 0 if not self._is_done(pairs[0]) else self.next_undone_row(0)
            row = first if first is not None else 0
        self.select_row(row)  # the model was reset: this changes the current row, which shows it

    def _update_summary(self) -> None:
        self.summary_label.setText(self._summary() if self.model.rowCount() else "")

    def _update_enabled(self) -> None:
        has = self.current_pair() is not None and self._project() is not None
        for act in self._actions:
            act.setEnabled(has)

    def _show_current(self) -> None:
        pair = self.current_pair()
        project = self._project()
        self._update_enabled()
        if pair is None or project is None:
            self.left_pane.show_placeholder("Select a pair on the left.")
            self.right_pane.show_placeholder("")
            self.info_label.setText("")
            return
        ids = self._ids_of(pair)
        records: dict[int, StoredRecord] = {}
        for rid in ids:  # one by one: a record that is gone must not hide the other
            try:
                records[rid] = project.get(rid)
            except KeyError:
                pass
            except Exception as exc:  # noqa: BLE001
                self.error_reported.emit("Could not read the records", f"Reading record id {rid} failed: {exc}",
                                         traceback.format_exc())
                return
        self._render(pair, records)

    def _show_missing(self, records: dict[int, StoredRecord], ids: Sequence[int]) -> bool:
        """Placeholders for records no longer in the project; True when any is missing."""
        missing = [rid for rid in ids if rid not in records]
        for pane, rid in zip((self.left_pane, self.right_pane), ids):
            if rid in missing:
                pane.show_placeholder(f"Record id {rid} is not in this project any more "
                                      "(the report is older than the project): run the scan again.")
            elif missing:
                pane.show_placeholder("")
        return bool(missing)

    def _sync_scroll(self, source: RecordPane, target: RecordPane) -> None:
        """Scroll the other pane to the same place (proportionally: the records differ in length)."""
        if self._syncing:
            return
        src, dst = source.verticalScrollBar(), target.verticalScrollBar()
        self._syncing = True
        try:
            dst.setValue(round(dst.maximum() * src.value() / src.maximum()) if src.maximum() else 0)
        finally:
            self._syncing = False

    def _confirm(self, title: str, text: str) -> bool:
        """Ask before a bulk change (always yes when not interactive: tests, screenshots)."""
        if not self.interactive:
            return True
        answer = QMessageBox.question(self, title, text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def _decided(self, ids: list[int]) -> None:
        """A decision here was saved: re-read those records, tell the window, move on."""
        self._load_info(ids)
        self.model.repaint_all()
        self._update_summary()
        self._after_refresh()
        self.records_changed.emit(list(ids))
        self.advance()

    # -- events -------------------------------------------------------------------------------------------
    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_current()

    @Slot(QModelIndex)
    def _on_double_clicked(self, index: QModelIndex) -> None:
        pair = self.model.pair(index.row())
        if pair is not None:
            ids = self._ids_of(pair)
            self.record_requested.emit(ids[1] if index.column() == 1 else ids[0])

    def showEvent(self, event) -> None:  # noqa: ANN001
        super().showEvent(event)
        # the keys work while the focus is inside the view: take it when the tab is shown
        QTimer.singleShot(0, self._take_focus)

    def _take_focus(self) -> None:
        from PySide6.QtWidgets import QApplication

        focus = QApplication.focusWidget()
        inside = focus is not None and self.isAncestorOf(focus)
        if self.isVisible() and not inside and self.stack.currentWidget() is self.splitter:
            self.table.setFocus()


# -- the Duplicates tab ------------------------------------------------------------------------------------


class PairView(PairReviewView):
    """Duplicate pairs of the last scan, side by side, decided with one key each."""

    WHAT = "duplicate pair"

    def _make_model(self) -> PairsModel:
        return PairsModel(self)

    def _build_actions(self) -> None:
        a = self._action
        self.act_keep_left = a("Keep left", self.keep_left, ["1", "Ctrl+Left"],
                               "Approve the left record and reject the right one")
        self.act_keep_right = a("Keep right", self.keep_right, ["2", "Ctrl+Right"],
                                "Approve the right record and reject the left one")
        self.act_keep_both = a("Keep both", self.keep_both, ["B"],
                               "Approve both records: they are not copies worth removing")
        self.act_reject_both = a("Reject both", self.reject_both, ["X"], "Reject both records")
        self.button_row.addSpacing(12)
        self.act_prev = a("◀ Previous", self.previous_pair, ["Shift+Space", "PgUp"], "Go to the previous pair")
        self.act_next = a("Next ▶", self.next_pair, ["Space", "PgDown"], "Go to the next pair")
        self.act_prev.setProperty("help", "Duplicate pairs: previous pair")
        self.act_next.setProperty("help", "Duplicate pairs: next pair")

    def _build_extras(self) -> None:
        self._sims: dict[int, float] = {}
        self._sims_of: Optional[list] = None
        hh = self.table.horizontalHeader()
        hh.resizeSection(PairsModel.COL_LEFT, 74)
        hh.resizeSection(PairsModel.COL_RIGHT, 74)
        hh.resizeSection(PairsModel.COL_SIM, 48)
        hh.resizeSection(PairsModel.COL_KIND, 70)

        box = QGroupBox("Accept the scan's suggestions")
        box.setToolTip("For every near-duplicate cluster and exact-duplicate group at least this similar: "
                       "approve the suggested keeper (★) and reject the other copies. Records you already "
                       "decided are left alone. One undo step.")
        lay = QVBoxLayout(box)
        lay.setSpacing(4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Clusters with similarity ≥"))
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(50, 100)
        self.threshold_slider.setToolTip("Lowest similarity of the clusters whose suggestion is accepted")
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.5, 1.0)
        self.threshold_spin.setSingleStep(0.01)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setToolTip(self.threshold_slider.toolTip())
        self.threshold_slider.valueChanged.connect(lambda v: self.threshold_spin.setValue(v / 100))
        self.threshold_spin.valueChanged.connect(self._on_threshold)
        row.addWidget(self.threshold_slider, 1)
        row.addWidget(self.threshold_spin)
        lay.addLayout(row)
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setStyleSheet(f"color: {MUTED}")
        lay.addWidget(self.plan_label)
        self.accept_button = QPushButton("Accept suggestions…")
        self.accept_button.setToolTip("Approve the suggested keeper and reject the other copies of every cluster "
                                      "above the similarity (asks first; Ctrl+Z undoes it in one step)")
        self.accept_button.clicked.connect(self.accept_suggestions)
        lay.addWidget(self.accept_button)
        self.left_layout.addWidget(box)
        self.threshold_spin.setValue(0.95)

    # -- content ---------------------------------------------------------------------------------------
    def _pairs_from_report(self, report: Optional[dict]) -> list[DuplicatePair]:
        return review.duplicate_pairs(report)

    def _is_done(self, pair: DuplicatePair) -> bool:
        return bool(self.model.decision(pair))

    def _summary(self) -> str:
        pairs = self.model.rows()
        todo = sum(1 for p in pairs if not self._is_done(p))
        n_clusters = len({p.cluster for p in pairs if p.cluster is not None})
        kinds = ", ".join(f"{sum(1 for p in pairs if p.kind == k):,} {k}" for k in review.KINDS
                          if any(p.kind == k for p in pairs))
        head = f"<b>{len(pairs):,} duplicate pairs</b> ({kinds}) in {n_clusters:,} clusters"
        return head + (f"<br>{todo:,} still to decide" if todo else "<br>Every pair is decided.")

    def _render(self, pair: DuplicatePair, records: dict[int, StoredRecord]) -> None:
        row = self.current_row()
        parts = [f"<b>Pair {row + 1:,} of {self.model.rowCount():,}</b>",
                 _esc(_KIND_LABELS.get(pair.kind, pair.kind)), f"similarity <b>{pair.similarity:.2f}</b>"]
        if pair.cluster is not None:
            parts.append(f"cluster {pair.cluster}")
        if pair.keeper is not None:
            parts.append(f"suggested keeper: <b>record {_esc(self.model.number(pair.keeper))}</b>"
                         + (f" ({_esc(pair.reason)})" if pair.reason else ""))
        decided = self.model.decision(pair)
        if decided:
            parts.append(f'<span style="color:{STATUS_COLORS["approved"]}">{_esc(decided)}</span>')
        if self._show_missing(records, pair.ids):
            self.info_label.setText(" &middot; ".join(parts))
            return
        keeper = ('<br><span style="color:#2b8a3e; font-weight:600">&#9733; suggested keeper</span>'
                  + (f' <span style="color:{MUTED}">({_esc(pair.reason)})</span>' if pair.reason else ""))
        lhtml, rhtml, differ = diff_html(records[pair.left], records[pair.right], "Left: record", "Right: record",
                                         keeper if pair.keeper == pair.left else "",
                                         keeper if pair.keeper == pair.right else "")
        if not differ:
            parts.append("the texts are identical")
        self.info_label.setText(" &middot; ".join(parts))
        self.left_pane.show_html(lhtml, pair.left)
        self.right_pane.show_html(rhtml, pair.right)

    # -- decisions ------------------------------------------------------------------------------------
    def _decide(self, fn: Callable[[Project, DuplicatePair], int]) -> None:
        pair = self.current_pair()
        project = self._project()
        if pair is None or project is None:
            return
        what = (f"The decision on records {self.model.number(pair.left)} and {self.model.number(pair.right)} "
                "was not saved")
        if self._store_call("Could not save the decision", what, lambda: fn(project, pair)):
            self._decided(list(pair.ids))

    def keep_left(self) -> None:
        self._decide(review.keep_left)

    def keep_right(self) -> None:
        self._decide(review.keep_right)

    def keep_both(self) -> None:
        self._decide(review.keep_both)

    def reject_both(self) -> None:
        self._decide(review.reject_both)

    def threshold(self) -> float:
        return round(self.threshold_spin.value(), 2)

    def set_threshold(self, value: float) -> None:
        self.threshold_spin.setValue(value)

    def _plan(self, fresh: bool = False) -> Optional[dict[int, str]]:
        """What accepting would change: from the statuses the table holds, or (``fresh``)
        read from the store."""
        project = self._project()
        if project is None or not self.model.rowCount():
            return {}
        statuses = None if fresh else {rid: info[2] for rid, info in self.model.info.items()}
        try:
            return review.suggestion_plan(project, self._pairs_above(), self.threshold(), statuses)
        except Exception as exc:  # noqa: BLE001
            self.error_reported.emit("Could not read the records", f"Reading the clusters' statuses failed: {exc}",
                                     traceback.format_exc())
            return None

    def _cluster_sims(self) -> dict[int, float]:
        """Each cluster's similarity, computed once per list of pairs."""
        rows = self.model.rows()
        if self._sims_of is not rows:
            self._sims = {c: review.cluster_similarity(ps) for c, ps in review.clusters(rows).items()}
            self._sims_of = rows
        return self._sims

    def _pairs_above(self) -> list[DuplicatePair]:
        """The pairs of the clusters at least as similar as the threshold."""
        sims, threshold = self._cluster_sims(), self.threshold()
        return [p for p in self.model.rows() if p.cluster is not None and sims[p.cluster] >= threshold]

    def _clusters_above(self) -> int:
        threshold = self.threshold()
        return sum(1 for sim in self._cluster_sims().values() if sim >= threshold)

    @Slot(float)
    def _on_threshold(self, value: float) -> None:
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(value * 100))
        self.threshold_slider.blockSignals(False)
        self._after_refresh()

    def _after_refresh(self) -> None:
        plan = self._plan() or {}
        n = self._clusters_above()
        approve = sum(1 for s in plan.values() if s == "approved")
        reject = len(plan) - approve
        if not n:
            text = "No cluster is that similar."
        elif not plan:
            text = f"{n:,} cluster{'s' if n != 1 else ''}: nothing left to change (already decided)."
        else:
            text = f"{n:,} cluster{'s' if n != 1 else ''}: approve {approve:,}, reject {reject:,} records."
        self.plan_label.setText(text)
        self.accept_button.setEnabled(bool(plan))

    def accept_suggestions(self) -> None:
        """Keep each suggested keeper of the clusters above the threshold and reject the other
        copies (asks first when interactive): one store call, one undo step."""
        project = self._project()
        plan = self._plan(fresh=True)
        if project is None or not plan:
            return
        approve = sum(1 for s in plan.values() if s == "approved")
        threshold = self.threshold()
        if not self._confirm("Accept the suggestions?",
                             f"For the {self._clusters_above():,} clusters with similarity ≥ {threshold:.2f}: "
                             f"approve {approve:,} suggested keepers and reject {len(plan) - approve:,} copies?\n\n"
                             "Records already decided are left alone. This is one step: Ctrl+Z undoes it."):
            return
        if self._store_call("Could not accept the suggestions", "The suggestions were not saved",
                            lambda: review.accept_suggestions(project, self._pairs_above(), threshold)):
            self._decided(sorted(plan))
