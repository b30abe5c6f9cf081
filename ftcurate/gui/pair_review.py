"""What the Duplicates and Leakage tabs share: a list of pairs beside the current pair's two
records, decided with one key each.

:class:`PairReviewView` holds the signals the main window connects, the
project/report/refresh interface, the table (a :class:`PairRowsModel`, never a widget per
row), the decision buttons, the two :class:`~ftcurate.gui.pair_panes.RecordPane` s,
navigation, and store calls that report errors instead of raising. Every decision is one
store call made in the GUI thread (they are quick), so one undo step.

Keyboard: the view's keys work while the focus is anywhere inside it; Tab and Shift+Tab move
between its widgets (list, the subclass's fields, buttons, the two records) and never
between rows; Ctrl+Tab goes on to the main window (tab switching); a focused button is
pressed with Enter (Space stays "next pair"); a held decision key decides once. Showing the
view leaves the focus where the user put it: the main window calls :meth:`focus_list` when
the user switched to the tab with a key. The focused list, record pane or button has a
2-pixel ring in the theme's accent colour. The buttons wrap onto more rows in a narrow
window (:class:`FlowLayout`) rather than scroll sideways.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable, Iterable, Optional, Sequence

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QRect, QSize, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence, QPalette
from PySide6.QtWidgets import (QApplication, QLabel, QLayout, QMessageBox, QSizePolicy, QSplitter, QStackedWidget,
                               QTableView, QToolButton, QVBoxLayout, QWidget)

from ..core.project.store import Project, StoredRecord
from .models import STATUS_LABELS, RowsTableModel, status_icon
from .pair_panes import RecordPane, is_dark
from .widgets import list_table

GONE = "gone"  # the table's number for a record the report names that is not in the project


# -- the table model ---------------------------------------------------------------------------------------


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
        """The record's number as people see it (its index in its file), "gone" for a record
        that is not in the project any more."""
        info = self.info.get(rid)
        return str(info[0]) if info else GONE

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
                return "This record is not in the project any more (the report is older): run the scan again"
            return (f"Record {self.number(rid)}: {STATUS_LABELS.get(status, status)}, {self.split(rid)} split\n"
                    "Double-click to open it in the Records tab")
        return None


# -- layout, buttons and the focus ring -------------------------------------------------------------------


class FlowLayout(QLayout):
    """Widgets left to right, wrapping onto another row when the width runs out (Qt's flow
    layout example). :meth:`add_gap` leaves room before the next widget when it starts no row."""

    def __init__(self, parent: Optional[QWidget] = None, spacing: int = 4) -> None:
        super().__init__(parent)
        self._items: list = []
        self._gaps: dict[int, int] = {}
        self._space = spacing
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item) -> None:  # noqa: ANN001, N802 - Qt's names from here on
        self._items.append(item)

    def add_gap(self, width: int) -> None:
        self._gaps[len(self._items)] = width

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):  # noqa: ANN201
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):  # noqa: ANN201
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:
        return self.minimumSize()

    def minimumSize(self) -> QSize:
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _place(self, rect: QRect, move: bool) -> int:
        """Lay the items out in ``rect`` (``move``: really move them); the height needed."""
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        x, y, row_height = area.x(), area.y(), 0
        for i, item in enumerate(self._items):
            if item.isEmpty():
                continue
            hint = item.sizeHint()
            step = self._space + self._gaps.get(i, 0) if x > area.x() else 0
            if x > area.x() and x + step + hint.width() > area.right() + 1:
                x, y, row_height, step = area.x(), y + row_height + self._space, 0, 0
            x += step
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width()
            row_height = max(row_height, hint.height())
        return y + row_height - rect.y() + m.bottom()


class ActionButton(QToolButton):
    """The button of one of the view's actions. With the focus, Enter (or Return) presses
    it; Space does not (it is the view's "next pair" key, and pressing it out of habit must
    not decide anything)."""

    def __init__(self, action: QAction, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setDefaultAction(action)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setAutoRaise(False)
        self.setMinimumHeight(28)

    def keyPressEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt's name
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.isEnabled():
            event.accept()
            self.click()
            return
        super().keyPressEvent(event)


def ring_color() -> str:
    """The focus ring's colour: the theme's accent (readable on its backgrounds)."""
    from . import theme

    colors = getattr(theme, "colors", None)
    if colors is not None:
        return colors().accent
    return "#74c0fc" if is_dark() else "#1c63c9"


def focus_style() -> str:
    """Style sheet of a pair view: a 2-pixel ring in the accent colour around the focused
    list, record pane and button (the frames keep their size: 1 pixel of padding makes up
    for the thinner border when unfocused)."""
    ring = ring_color()
    pal = QApplication.palette()
    frame = pal.color(QPalette.ColorRole.Mid if is_dark() else QPalette.ColorRole.Dark).name()
    return (f"QTableView, QTextBrowser {{ border: 1px solid {frame}; padding: 1px; }}\n"
            f"QTableView:focus, QTextBrowser:focus {{ border: 2px solid {ring}; padding: 0px; }}\n"
            f"QToolButton:focus, QPushButton:focus {{ border: 2px solid {ring}; border-radius: 3px; }}\n")


# -- the shared view ------------------------------------------------------------------------------------


class PairReviewView(QWidget):
    """A table of pairs on the left, the current pair's two records side by side on the
    right, keyboard actions that decide and move on. Subclasses make the model, the
    actions and the decisions (see ``pair_view.PairView`` and ``leak_view.LeakView``)."""

    record_requested = Signal(int)  # open this record in the Records tab
    records_changed = Signal(list)  # record ids a decision made here changed (already saved)
    error_reported = Signal(str, str, str)  # title, message, details

    NO_PROJECT_TEXT = ""
    NO_REPORT_TEXT = ""
    NOTHING_TEXT = ""
    WHAT = "pair"  # "pair 3 of 24"

    def __init__(self, parent: Optional[QWidget] = None, interactive: bool = True) -> None:
        super().__init__(parent)
        self.interactive = interactive
        self.project: Optional[Project] = None
        self.report: Optional[dict] = None
        self._actions: list[QAction] = []
        self._buttons: list[ActionButton] = []
        self._focus_chain: list[QWidget] = []  # the subclass's fields, between the list and the buttons
        self._findings: Optional[dict[int, list[tuple[str, str]]]] = None
        self._style_key = ""
        self.model = self._make_model()

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.empty_label = QLabel(self.NO_PROJECT_TEXT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet("font-size: 14px; padding: 24px")
        self.empty_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # muted, in any theme
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
        self.info_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        rlay.addWidget(self.info_label)
        # the buttons wrap onto a second row in a narrow window: all of them stay in sight
        self.button_strip = QWidget()
        self.button_row = FlowLayout(self.button_strip)
        self.button_strip.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        rlay.addWidget(self.button_strip)
        self.panes = QSplitter(Qt.Orientation.Horizontal)
        self.panes.setChildrenCollapsible(False)
        self.left_pane = RecordPane()
        self.right_pane = RecordPane()
        self._syncing = False  # while one pane scrolls the other
        for pane, other in ((self.left_pane, self.right_pane), (self.right_pane, self.left_pane)):
            pane.setMinimumWidth(160)
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
        self.splitter.setSizes([380, 900])
        self.stack.addWidget(self.splitter)

        self._build_actions()
        self._build_extras()
        self._chain_focus()
        self._apply_style()
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self._reload()

    # -- subclass hooks --------------------------------------------------------------------------
    def _make_model(self) -> PairRowsModel:
        raise NotImplementedError

    def _build_actions(self) -> None:
        """Make the actions (with :meth:`_action`) and their buttons."""

    def _build_extras(self) -> None:
        """Add widgets under the table (``self.left_layout``; focusable ones also to
        ``self._focus_chain``, in order)."""

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
        self._findings = None
        self._reload()

    def set_report(self, report: Optional[dict]) -> None:
        self.report = report
        self._findings = None
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

    def focus_list(self) -> None:
        """Put the keyboard focus on the list, so that the view's keys work at once. The
        main window calls this when the user switched to this tab with a key; showing the
        view otherwise leaves the focus where it is."""
        if self.stack.currentWidget() is self.splitter:
            self.table.setFocus(Qt.FocusReason.ShortcutFocusReason)

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
                button: bool = True, repeat: bool = False) -> QAction:
        """An action with shortcuts that work while the focus is inside this view only (so
        they never fire while another tab is shown), a tooltip naming its keys, and a button.
        ``repeat``: a held key repeats it (moving on), off for decisions (a held key
        decides once)."""
        seqs = [QKeySequence(k) for k in keys]
        # the button shows its first key; the shortcuts sheet lists them all beside "help"
        first = seqs[0].toString(QKeySequence.SequenceFormat.NativeText) if seqs else ""
        act = QAction(f"{text}  ({first})" if first and button else text, self)
        act.setProperty("help", f"{self.WHAT.capitalize()}s: {text}")
        if seqs:
            act.setShortcuts(seqs)
        act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        act.setAutoRepeat(repeat)
        keytext = " or ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in seqs)
        act.setToolTip(f"{tip} ({keytext})" if keytext else tip)
        act.setStatusTip(tip)
        act.triggered.connect(lambda checked=False: slot())
        self.addAction(act)
        self._actions.append(act)
        if button:
            b = ActionButton(act)
            self.button_row.addWidget(b)
            self._buttons.append(b)
        return act

    def _chain_focus(self) -> None:
        """Tab order: the list, the subclass's fields, the buttons, the two records."""
        chain = [self.table, *self._focus_chain, *self._buttons, self.left_pane, self.right_pane]
        for a, b in zip(chain, chain[1:]):
            QWidget.setTabOrder(a, b)

    def _apply_style(self) -> None:
        """The focus ring style sheet, again when the theme changed."""
        style = focus_style()
        if style != self._style_key:
            self._style_key = style
            self.setStyleSheet(style)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._style_key:
            before = self._style_key
            self._apply_style()
            if self._style_key != before:  # a new theme: the records' colours too
                self._show_current()

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
        view.setTabKeyNavigation(False)  # Tab leaves the list; Ctrl+Tab reaches the window
        hh = view.horizontalHeader()
        hh.setMinimumSectionSize(32)
        hh.setDefaultSectionSize(60)
        # the stretched last column fills the rest of the list and shrinks to fit it: it
        # remembers its size when it was last set (by default 100), its least size when stretched
        hh.setStretchLastSection(False)
        hh.resizeSection(self.model.columnCount() - 1, 40)
        hh.setStretchLastSection(True)
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

    def record_findings(self, rid: int) -> list[tuple[str, str]]:
        """What the last scan found about a record, (kind, detail) pairs naming records by
        their index in their file (as the Records tab shows them)."""
        if self._findings is None:
            self._findings = {}
            project = self._project()
            if self.report and project is not None:
                from ..core.project.numbering import record_numbers, report_record_ids
                from .scan_view import findings_from_report

                try:
                    numbers = record_numbers(project, report_record_ids(self.report))
                    for f in findings_from_report(self.report, numbers):
                        self._findings.setdefault(int(f.record_id), []).append((f.kind, f.detail))
                except Exception as exc:  # noqa: BLE001 - the pair still shows, without findings
                    self.error_reported.emit("Could not read the findings", f"Reading the scan's findings failed: "
                                             f"{exc}", traceback.format_exc())
        return self._findings.get(int(rid), [])

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
                self.error_reported.emit("Could not read the records", f"Reading a record failed: {exc}",
                                         traceback.format_exc())
                return
        self._render(pair, records)

    def _show_missing(self, records: dict[int, StoredRecord], ids: Sequence[int]) -> bool:
        """Placeholders for records no longer in the project; True when any is missing."""
        missing = [rid for rid in ids if rid not in records]
        for pane, rid in zip((self.left_pane, self.right_pane), ids):
            if rid in missing:
                pane.show_placeholder("This record is not in the project any more (the report is older than "
                                      "the project): run the scan again.")
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

    def ask_reason(self, title: str, prompt: str) -> Optional[str]:
        """An optional reason (None: cancelled). Tests replace it: offscreen nobody answers."""
        from PySide6.QtWidgets import QInputDialog

        text, ok = QInputDialog.getText(self, title, prompt)
        return text if ok else None

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


def plural(n: int, one: str, many: Optional[str] = None) -> str:
    """ "1 pair", "2 pairs" (thousands separated)."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


__all__ = ["ActionButton", "FlowLayout", "GONE", "PairReviewView", "PairRowsModel", "focus_style", "plural",
           "ring_color"]
