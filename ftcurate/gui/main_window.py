"""The main window: start page, records table, conversation view, import problems.

The window holds at most one open :class:`~ftcurate.core.project.store.Project`. Opening and
importing run in a :class:`~ftcurate.gui.workers.Worker`; review decisions are quick
single transactions and run in the GUI thread, saved before the call returns.
"""

from __future__ import annotations

import gc
import html
import os
from bisect import bisect_right
from typing import Iterable, Optional

from PySide6.QtCore import QByteArray, QItemSelection, QItemSelectionModel, QModelIndex, QSettings, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDockWidget, QFileDialog, QFrame, QHeaderView,
                               QInputDialog, QLabel, QMainWindow, QMenu, QMessageBox, QScrollArea, QSplitter,
                               QStackedWidget, QTableView, QTabWidget, QToolBar, QVBoxLayout, QWidget)

from .. import __version__
from ..core.quality.scan import ScanSettings, scan_project
from ..core.project.store import STATUSES, Project
from ..core.io.lineindex import LineIndex
from ..core.project.table import RecordFrame
from . import settings as appsettings
from . import tasks, theme
from .file_model import FileTableModel
from .filter_bar import FilterBar
from .record_editor import EditDialog, NotesPanel
from .models import STATUS_COLORS, STATUS_LABELS, ImportProblemsModel, RecordTableModel
from .scan_view import FindingsPanel, findings_from_report, report_ids, scan_summary
from .widgets import ConversationView, ShortcutsDialog, StartPage, app_icon, drawn_icon, list_table
from .workers import TaskProgress, Worker, describe_error

#: Datasets at least this big are shown straight from the file (read-only) while they import.
PREVIEW_MIN_BYTES = 8 << 20
DATASET_FILTER = "Datasets (*.jsonl *.json *.csv *.tsv *.parquet);;All files (*)"
PROJECT_FILTER = "ftcurate projects (*.ftcurate);;All files (*)"
PAST = {"approve": "Approved", "reject": "Rejected", "reset": "Reset"}


def _with_frame(opener, *args, progress=None, cancel=None):
    """Run an open task, then read the record frame (the table's columns) and the stored
    scan report in the same worker, so the window shows a ready table."""
    result = opener(*args, progress=progress, cancel=cancel)
    try:
        try:
            stored = result.project.load_scan("quality")
        except Exception:  # noqa: BLE001 - an unreadable old report is as good as none
            stored = None
        result.report = stored[1] if stored and isinstance(stored[1], dict) else None
        result.frame = RecordFrame.from_project(result.project, result.report, progress=progress, cancel=cancel)
    except BaseException:
        result.project.close()
        raise
    return result


def _scan_and_settle(project, progress=None, cancel=None, **kwargs):
    """The quality scan (in a ``heavy`` worker: torch & co. are imported first with the
    garbage collector paused), then move what it loaded (models: ~600k objects) out of the
    collector's reach: a full collection over them holds the GIL for ~0.4 s and freezes the
    GUI (see benchmarks/bench_gui.py)."""
    report = scan_project(project, progress=progress, cancel=cancel, **kwargs)
    gc.collect()
    gc.freeze()
    return report


def _close_result(result) -> None:
    project = getattr(result, "project", None)
    if project is not None:
        project.close()


class MainWindow(QMainWindow):
    """``interactive=False`` (screenshot mode, tests) reports errors by signal and status
    bar only, never with a modal message box."""

    project_loaded = Signal(object)  # the Project
    preview_shown = Signal(int)  # a big dataset is shown from its file while it imports (rows)
    load_failed = Signal(str, str)  # message, details
    load_cancelled = Signal()
    filter_applied = Signal(int)  # rows shown
    records_changed = Signal(list)  # record ids changed by a decision, undo or redo
    error_reported = Signal(str, str, str)  # title, message, details
    scan_finished = Signal(dict)  # the report, shown in the Findings dock
    scan_failed = Signal(str, str)  # message, details
    scan_cancelled = Signal()

    def __init__(self, settings: Optional[QSettings] = None, interactive: bool = True,
                 restore_geometry: bool = True) -> None:
        super().__init__()
        self.settings = settings if settings is not None else appsettings.make_settings()
        self.interactive = interactive
        self.project: Optional[Project] = None
        self.project_info: Optional[tasks.OpenResult] = None
        self._workers: list[Worker] = []
        self._load_worker: Optional[Worker] = None
        self._pending_open: Optional[str] = None
        self._loading_path: Optional[str] = None
        self._search_worker: Optional[Worker] = None
        self._filter_gen = 0
        self._shortcuts_dialog: Optional[ShortcutsDialog] = None
        self._dock_wanted: dict = {}  # dock -> shown on the Records tab (see _set_dock)
        self._docks_were_here = True
        self._docks_in_front: list = []
        self._remember_geometry = restore_geometry
        self._scan_worker: Optional[Worker] = None
        self.report: Optional[dict] = None  # the last quality scan report of the open project
        self.frame = RecordFrame()  # the table's columns (numpy) of the open project
        self._findings_index: Optional[dict] = None  # record id -> [(kind, reason)], built on demand
        # settings for the next quality scan (None: the defaults); tests set a faster one
        self.scan_settings: Optional[ScanSettings] = None

        self.setWindowTitle("ftcurate")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(1280, 800)

        self._build_actions()
        self._build_central()
        self._build_dock()
        self._build_menus()
        self._build_toolbar()
        self._build_statusbar()
        self._update_enabled()
        self._refresh_start_page()
        if restore_geometry:
            self._restore_geometry()

    # -- construction ----------------------------------------------------------------------------
    def _action(self, text: str, slot, shortcuts: Iterable[str] = (), tip: str = "", icon=None,
                checkable: bool = False) -> QAction:
        act = QAction(text, self)
        act.setProperty("help", text)  # the shortcuts sheet shows this, not the changing menu text
        if icon is not None:
            act.setIcon(icon)
        keys = [QKeySequence(k) if isinstance(k, str) else QKeySequence(k) for k in shortcuts]
        if keys:
            act.setShortcuts(keys)
        if tip:
            keytext = keys[0].toString(QKeySequence.SequenceFormat.NativeText) if keys else ""
            act.setToolTip(f"{tip} ({keytext})" if keytext else tip)
            act.setStatusTip(tip)
        act.setCheckable(checkable)
        if checkable:
            act.toggled.connect(slot)
        else:
            act.triggered.connect(lambda checked=False: slot())
        self.addAction(act)  # shortcuts work while the menu bar is hidden, too
        return act

    def _build_actions(self) -> None:
        a = self._action
        self.act_open_dataset = a("Open &dataset…", self.choose_dataset, ["Ctrl+O"], "Open a dataset file",
                                  drawn_icon("open-dataset"))
        self.act_open_project = a("Open &project…", self.choose_project, ["Ctrl+Shift+O"],
                                  "Open an .ftcurate project", drawn_icon("open-project"))
        self.act_open_sample = a("Open &sample", self.open_sample, [], "Open the bundled sample dataset")
        self.act_close = a("&Close project", self.close_project, ["Ctrl+W"], "Close the open project")
        self.act_quit = a("&Quit", self.close, ["Ctrl+Q"], "Quit ftcurate")
        self.act_undo = a("&Undo", self.undo, ["Ctrl+Z"], "Undo the last decision", drawn_icon("undo"))
        self.act_redo = a("&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "Redo the last undone decision",
                          drawn_icon("redo"))
        self.act_find = a("&Find…", self.focus_search, ["Ctrl+F"], "Search the records")
        self.act_approve = a("&Approve", lambda: self.decide("approve"), ["A"], "Approve the selected records",
                             drawn_icon("approve", STATUS_COLORS["approved"]))
        self.act_reject = a("&Reject", lambda: self.decide("reject"), ["R"], "Reject the selected records",
                            drawn_icon("reject", STATUS_COLORS["rejected"]))
        self.act_reset = a("Reset to &unreviewed", lambda: self.decide("reset"), ["U"],
                           "Mark the selected records unreviewed again", drawn_icon("reset"))
        self.act_next = a("&Next record", lambda: self.move_selection(1), ["J"], "Go to the next record",
                          drawn_icon("next"))
        self.act_prev = a("&Previous record", lambda: self.move_selection(-1), ["K"],
                          "Go to the previous record", drawn_icon("previous"))
        self.act_next_unreviewed = a("Next &unreviewed", self.next_unreviewed, ["N"],
                                     "Go to the next unreviewed record", drawn_icon("next-unreviewed"))
        self.act_advance = a("Advance after decision", self._set_advance, [],
                             "Move to the next record after approving or rejecting one", checkable=True)
        self.act_advance.setChecked(self._setting_bool("review/advance", True))
        self.act_shortcuts = a("&Keyboard shortcuts", self.show_shortcuts, ["F1", "?"], "List the keyboard shortcuts")
        self.act_about = a("&About ftcurate", self.show_about, [], "About ftcurate")
        self.act_scan = a("Run quality &scan…", self.run_scan, ["Ctrl+Shift+S"],
                          "Find duplicates, outliers, leakage and bad answers", drawn_icon("scan"))
        self.act_edit = a("&Edit record…", self.edit_current, ["E"], "Edit the current record in place (the original "
                          "is kept)", drawn_icon("edit"))
        self.act_restore = a("Restore &original", self.restore_current, [],
                             "Drop the edit of the current record and bring back the original")
        self.act_labels = a("&Label…", self.focus_labels, ["L"], "Type labels for the selected records")
        self.act_approve_shown = a("Approve all &shown…", lambda: self.decide_shown("approve"), ["Shift+A"],
                                   "Approve every record the current filter shows (asks first; one undo step)")
        self.act_reject_shown = a("Reject all s&hown…", lambda: self.decide_shown("reject"), ["Shift+R"],
                                  "Reject every record the current filter shows (asks first; one undo step)")
        self.act_label_shown = a("Label all shown…", self.label_shown, ["Shift+L"],
                                 "Add a label to every record the current filter shows (one undo step)")
        self.act_clear_filters = a("&Clear filters", self.clear_filters, ["Ctrl+Shift+F"],
                                   "Show every record: all statuses, splits, findings and labels, no search")
        self.act_reviewer = a("Reviewer &name…", self.ask_reviewer_name, [],
                              "Your name in the decision log (remembered; used in every project you open)")
        self.act_scan_settings = a("Scan &settings…", self.edit_scan_settings, [],
                                   "Thresholds and switches of the quality scan")
        self.act_export = a("&Export…", self.export_dialog, ["Ctrl+E"], "Write the curated dataset, its card and "
                            "the decision log", drawn_icon("export"))
        self.act_import = a("&Import dataset…", self.import_dialog, ["Ctrl+I"],
                            "Import a dataset with a preview: format, column mapping, test set")
        self.act_scan.setIconText("Scan")
        self.act_export.setIconText("Export")
        self.act_approve.setIconText("Approve")
        self.act_reject.setIconText("Reject")
        self.act_reset.setIconText("Reset")
        self.act_prev.setIconText("Previous")
        self.act_next.setIconText("Next")
        self.act_next_unreviewed.setIconText("Next unreviewed")
        self.act_edit.setIconText("Edit")
        self.act_open_dataset.setIconText("Open dataset")
        self.act_open_project.setIconText("Open project")

    def _build_central(self) -> None:
        self.stack = QStackedWidget()
        self.start_page = StartPage()
        self.start_page.open_dataset.connect(self.choose_dataset)
        self.start_page.open_project.connect(self.choose_project)
        self.start_page.open_sample.connect(self.open_sample)
        self.start_page.open_recent.connect(self.open_path)
        self.stack.addWidget(self.start_page)

        review = QWidget()
        layout = QVBoxLayout(review)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.setSpacing(6)
        self.filter_bar = FilterBar()
        self.filter_bar.changed.connect(self.apply_filter)
        # the bar's widgets under their old names (tests and the shortcut sheet use them)
        self.status_filter = self.filter_bar.status
        self.split_filter = self.filter_bar.split
        self.search_box = self.filter_bar.search
        self.count_label = self.filter_bar.count_label
        layout.addWidget(self.filter_bar)

        self.model = RecordTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("RecordsTable")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setAcceptDrops(False)
        self.table.setIconSize(QSize(12, 12))
        vh = self.table.verticalHeader()
        vh.hide()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(self.fontMetrics().height() + 10)
        hh = self.table.horizontalHeader()
        hh.setHighlightSections(False)
        hh.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for col, width in ((0, 56), (1, 112), (2, 72), (3, 50), (4, 64), (5, 120), (6, 60)):
            hh.resizeSection(col, width)
        hh.setSectionResizeMode(RecordTableModel.COL_FIRST_USER, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.file_model = FileTableModel(parent=self)  # a big dataset's file, shown while it imports
        self._preview_worker: Optional[Worker] = None

        self.detail = ConversationView()
        self.detail.setAcceptDrops(False)
        self.notes = NotesPanel()
        self.notes.labels_edited.connect(self.set_labels)
        self.notes.note_edited.connect(self.set_note)
        self.notes.edit_requested.connect(self.edit_current)
        self.notes.restore_requested.connect(self.restore_current)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(0)
        rl.addWidget(self.detail, 1)
        rl.addWidget(self.notes)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("ReviewSplitter")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 4)
        self.splitter.setSizes([700, 560])
        self.splitter.setChildrenCollapsible(False)
        layout.addWidget(self.splitter, 1)
        self.records_page = review
        self.tabs = QTabWidget()
        self.tabs.setObjectName("ReviewTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(review, "Records")
        self.tabs.setTabToolTip(0, "Every record: filter, read, approve, reject, edit, label")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.views: dict[str, QWidget] = {}
        self._pages: dict[QWidget, QWidget] = {}  # tab page (scroll area) -> its view
        self._build_views()
        self.stack.addWidget(self.tabs)
        self.review_page = self.tabs
        self.setCentralWidget(self.stack)

        self._state_timer = QTimer(self)  # saves the view state (filters, position) soon after a change
        self._state_timer.setSingleShot(True)
        self._state_timer.setInterval(1500)
        self._state_timer.timeout.connect(self.save_view_state)

    # the review views beside the Records tab: (key, tab title, tooltip, module, class)
    VIEW_SPECS = (
        ("pairs", "Duplicates", "Near-duplicate pairs side by side: keep left, keep right, keep both, reject both",
         "pair_view", "PairView"),
        ("leaks", "Leakage", "Training records that leak held-out/test records: remove or move to test",
         "leak_view", "LeakView"),
        ("map", "Outliers && map", "Outliers by score and a 2-D map of the records by meaning",
         "map_view", "MapView"),
        ("overview", "Overview", "Counts, token lengths and what a training run would see", "overview_view",
         "OverviewView"),
    )

    def _build_views(self) -> None:
        import importlib

        for key, title, tip, module, cls in self.VIEW_SPECS:
            view = getattr(importlib.import_module(f"{__package__}.{module}"), cls)(interactive=self.interactive)
            view.record_requested.connect(self.show_record_id)
            view.records_changed.connect(lambda ids, v=view: self._after_change(list(ids), source=v))
            view.error_reported.connect(self.report_error)
            if hasattr(view, "current_key"):  # the pair on show is part of the remembered state
                view.table.selectionModel().currentChanged.connect(self._schedule_state_save)
            self.views[key] = view
            self._add_tab(view, title, tip)
        from .train_view import TrainingView

        self.training_view = TrainingView(settings=self.settings, interactive=self.interactive)
        self.training_view.error_reported.connect(self.report_error)
        self.training_view.run_finished.connect(
            lambda run: self.statusBar().showMessage(f"Training run finished: {run}", 15000))
        self._add_tab(self.training_view, "Training", "Train a LoRA adapter on the approved records, watch it "
                      "live, compare it with the base model")

    def _add_tab(self, view: QWidget, title: str, tip: str) -> None:
        """A tab for ``view``, in a scroll area: a view wider than a small screen scrolls
        rather than make the whole window that wide."""
        page = QScrollArea()
        page.setWidget(view)
        page.setWidgetResizable(True)
        page.setFrameShape(QFrame.Shape.NoFrame)
        page.setMinimumSize(240, 160)
        self._pages[page] = view
        i = self.tabs.addTab(page, title)
        self.tabs.setTabToolTip(i, tip)

    def _tab_view(self, index: int) -> Optional[QWidget]:
        """The widget shown by tab ``index`` (the records page or a view)."""
        page = self.tabs.widget(index)
        return self._pages.get(page, page)

    def _page_of(self, view: QWidget) -> QWidget:
        return next((page for page, v in self._pages.items() if v is view), view)

    def _docks_here(self) -> bool:
        """The Import problems and Findings docks belong to the Records tab: other tabs get the room."""
        return self.tabs.currentWidget() is self.records_page

    def _set_dock(self, dock: QDockWidget, visible: bool) -> None:
        """Show or hide a dock now on the Records tab, else when the Records tab comes back."""
        self._dock_wanted[dock] = visible
        dock.setVisible(visible and self._docks_here())

    def _place_docks(self, on_records: bool) -> None:
        if on_records == self._docks_were_here:
            return
        self._docks_were_here = on_records
        docks = (self.problems_dock, self.findings_dock)
        if not on_records:  # remember which docks the user keeps open (closed with x or the View menu)
            for dock in docks:
                self._dock_wanted[dock] = dock.toggleViewAction().isChecked()
            # and which tab of the tabbed docks was in front (the ones behind are not visible)
            self._docks_in_front = [d for d in docks if d.isVisible()]
        for dock in docks:
            dock.setVisible(on_records and self._dock_wanted.get(dock, False))
        if on_records:
            for dock in self._docks_in_front:
                if dock.isVisibleTo(self) or self._dock_wanted.get(dock):
                    dock.raise_()

    def _on_tab_changed(self, index: int) -> None:
        view = self._tab_view(index)
        on_records = view is self.records_page
        self._place_docks(on_records)
        self._update_enabled()
        if view is self.views.get("map") and self.project is not None and hasattr(view, "compute_if_needed"):
            view.compute_if_needed()
        if on_records:
            self.table.setFocus()
        if view is self.training_view and self.project is not None:
            self.training_view.refresh_checks()  # the approved set may have changed meanwhile
        self._state_timer.start()

    def show_tab(self, key: str) -> None:
        view = {"records": self.records_page, "training": self.training_view}.get(key) or self.views.get(key)
        if view is not None:
            self.tabs.setCurrentWidget(self._page_of(view))

    # -- remembered view state (per project) -------------------------------------------------------
    def view_state(self) -> dict:
        state = {"filter": self.filter_bar.state(), "current": self.current_id(), "tab": self.tabs.currentIndex(),
                 "sort": list(self.model.sort_key)}
        for key in ("pairs", "leaks"):  # the pair on show in the Duplicates and Leakage views
            view = self.views.get(key)
            if view is not None and hasattr(view, "current_key"):
                state[key] = view.current_key()
        return state

    @Slot()
    def _schedule_state_save(self, *_args) -> None:
        timer = getattr(self, "_state_timer", None)
        if timer is not None:
            timer.start()

    def save_view_state(self) -> None:
        """Remember filters, sort, position and tab in the project (restored on reopen)."""
        self._state_timer.stop()
        if self.project is None or self.project.closed:
            return
        try:
            self.project.meta_set("gui_state", self.view_state())
        except Exception:  # noqa: BLE001 - a read-only or locked project: nothing to remember
            pass

    def restore_view_state(self) -> None:
        if self.project is None:
            return
        state = self.project.meta_get("gui_state") or {}
        if not isinstance(state, dict):
            return
        sort = state.get("sort")
        if isinstance(sort, list) and len(sort) == 2 and sort[0] in RecordTableModel._SORT_KEYS:
            col = RecordTableModel._SORT_KEYS.index(sort[0])
            order = Qt.SortOrder.DescendingOrder if sort[1] else Qt.SortOrder.AscendingOrder
            self.table.horizontalHeader().setSortIndicator(col, order)  # sorts the model too
        filt = state.get("filter")
        if isinstance(filt, dict) and any(filt.values()):
            self.filter_bar.set_state(filt)
            if filt.get("text"):
                self.apply_filter()  # a text search runs in a worker; the position stays at the top
            else:
                self._filter_gen += 1
                self.model.set_ids(self._frame_select(self.filter_bar.state()))
                self._update_filter_label()
        cur = state.get("current")
        row = self.model.row_of(int(cur)) if isinstance(cur, int) else None
        if row is not None:
            self.select_row(row)
        elif self.model.rowCount():
            self.select_row(0)
        for key in ("pairs", "leaks"):
            view = self.views.get(key)
            if view is not None and hasattr(view, "select_key"):
                view.select_key(state.get(key))
        tab = state.get("tab")
        if isinstance(tab, int) and 0 <= tab < self.tabs.count():
            self.tabs.setCurrentIndex(tab)

    # -- theme and dialogs -------------------------------------------------------------------------
    def set_theme(self, key: str) -> None:
        self.settings.setValue("view/theme", key)
        theme.apply_theme(key)
        self._show_current()

    def edit_scan_settings(self) -> None:
        from .dialogs import ScanSettingsDialog, load_scan_settings, save_scan_settings

        dialog = ScanSettingsDialog(self)
        dialog.set_settings(self.scan_settings or load_scan_settings(self.settings))
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.scan_settings = dialog.settings()
            save_scan_settings(self.settings, self.scan_settings)
            self.statusBar().showMessage("Scan settings saved; they apply to the next scan", 5000)

    def export_dialog(self) -> None:
        if self.project is None:
            return
        from .dialogs import ExportDialog

        dialog = ExportDialog(self.project, settings=self.settings, parent=self, interactive=self.interactive)
        dialog.export_failed.connect(lambda m, d: self.report_error("Export failed", m, d))
        dialog.export_finished.connect(lambda r: self.statusBar().showMessage(
            f"Exported {getattr(r, 'written', '')} records to {getattr(r, 'path', '')}", 15000))
        self.export_dialog_widget = dialog  # tests drive it
        if self.interactive:
            dialog.exec()
        else:
            dialog.show()

    def import_dialog(self, path: Optional[str] = None) -> None:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Import dataset", appsettings.last_folder(self.settings),
                                                  DATASET_FILTER)
            if not path:
                return
        from .dialogs import ImportDialog

        dialog = ImportDialog(path, parent=self, interactive=self.interactive)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.open_path(path, options=dialog.import_options())

    def _build_dock(self) -> None:
        self.problems_model = ImportProblemsModel(self)
        view = list_table(self.problems_model, "ImportProblemsTable", multi=True,
                          widths=((0, 170), (1, 56), (2, 64), (3, 190)))
        self.problems_view = view
        dock = QDockWidget("Import problems", self)
        dock.setObjectName("ImportProblemsDock")
        dock.setWidget(view)
        dock.setAllowedAreas(Qt.DockWidgetArea.BottomDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        dock.hide()
        self.problems_dock = dock

        self.findings = FindingsPanel()
        self.findings.record_requested.connect(self.show_record_id)
        self.findings_model = self.findings.model
        fdock = QDockWidget("Findings", self)
        fdock.setObjectName("FindingsDock")
        fdock.setWidget(self.findings)
        fdock.setAllowedAreas(Qt.DockWidgetArea.BottomDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, fdock)
        self.tabifyDockWidget(dock, fdock)
        fdock.hide()
        self.findings_dock = fdock

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open_dataset)
        m.addAction(self.act_open_project)
        m.addAction(self.act_open_sample)
        m.addAction(self.act_import)
        self.recent_menu = QMenu("Open &recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addMenu(self.recent_menu)
        m.addSeparator()
        m.addAction(self.act_export)
        m.addSeparator()
        m.addAction(self.act_close)
        m.addSeparator()
        m.addAction(self.act_quit)

        m = mb.addMenu("&Edit")
        m.addAction(self.act_undo)
        m.addAction(self.act_redo)
        m.addSeparator()
        m.addAction(self.act_find)
        m.addAction(self.act_clear_filters)
        m.addSeparator()
        m.addAction(self.act_reviewer)

        m = mb.addMenu("&Scan")
        m.addAction(self.act_scan)
        m.addAction(self.act_scan_settings)
        self.scan_menu = m

        m = mb.addMenu("&Review")
        for act in (self.act_approve, self.act_reject, self.act_reset, self.act_edit, self.act_restore,
                    self.act_labels):
            m.addAction(act)
        m.addSeparator()
        for act in (self.act_approve_shown, self.act_reject_shown, self.act_label_shown):
            m.addAction(act)
        m.addSeparator()
        for act in (self.act_next, self.act_prev, self.act_next_unreviewed):
            m.addAction(act)
        m.addSeparator()
        m.addAction(self.act_advance)

        self.view_menu = mb.addMenu("&View")
        self.tab_menu = self.view_menu.addMenu("&Go to")
        self.theme_menu = self.view_menu.addMenu("&Theme")
        theme_group = QActionGroup(self)
        current = theme.saved_theme(self.settings)
        for key, label in theme.THEMES.items():
            act = self.theme_menu.addAction(label)
            act.setCheckable(True)
            act.setChecked(key == current)
            act.setActionGroup(theme_group)
            act.triggered.connect(lambda checked=False, k=key: self.set_theme(k))
        self.view_menu.addAction(self.problems_dock.toggleViewAction())
        self.view_menu.addAction(self.findings_dock.toggleViewAction())

        m = mb.addMenu("&Help")
        m.addAction(self.act_shortcuts)
        m.addAction(self.act_about)

    def _build_toolbar(self) -> None:
        tb = QToolBar("Main toolbar", self)
        tb.setObjectName("MainToolbar")
        tb.setMovable(False)
        tb.setIconSize(QSize(18, 18))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addAction(self.act_open_dataset)
        tb.addAction(self.act_open_project)
        tb.addSeparator()
        tb.addAction(self.act_approve)
        tb.addAction(self.act_reject)
        tb.addAction(self.act_reset)
        tb.addAction(self.act_edit)
        tb.addSeparator()
        tb.addAction(self.act_prev)
        tb.addAction(self.act_next)
        tb.addAction(self.act_next_unreviewed)
        tb.addSeparator()
        tb.addAction(self.act_undo)
        tb.addAction(self.act_redo)
        tb.addSeparator()
        tb.addAction(self.act_scan)
        tb.addAction(self.act_export)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb
        self.view_menu.addAction(tb.toggleViewAction())

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.counts_label = QLabel()
        self.counts_label.setTextFormat(Qt.TextFormat.RichText)
        self.progress_panel = TaskProgress()
        sb.addPermanentWidget(self.progress_panel)
        sb.addPermanentWidget(self.counts_label)

    # -- settings ------------------------------------------------------------------------------------
    def _setting_bool(self, key: str, default: bool) -> bool:
        value = self.settings.value(key, default)
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return bool(value)

    def _set_advance(self, on: bool) -> None:
        self.settings.setValue("review/advance", bool(on))

    def _restore_geometry(self) -> None:
        geo = self.settings.value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
            self.problems_dock.hide()  # shown again when a project has problems
            self.findings_dock.hide()  # shown again when a project is opened
        split = self.settings.value("window/splitter")
        if isinstance(split, QByteArray) and not split.isEmpty():
            self.splitter.restoreState(split)

    def save_window_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.sync()

    def _refresh_start_page(self) -> None:
        self.start_page.set_recent(appsettings.recent_projects(self.settings))
        self.start_page.set_sample_available(appsettings.sample_dataset() is not None)
        self.act_open_sample.setEnabled(appsettings.sample_dataset() is not None)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = appsettings.recent_projects(self.settings)
        for path in paths:
            act = self.recent_menu.addAction(os.path.basename(path))
            act.setToolTip(path)
            act.setStatusTip(path)
            act.triggered.connect(lambda checked=False, p=path: self.open_path(p))
        if not paths:
            empty = self.recent_menu.addAction("No recent projects")
            empty.setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.setValue("recent/projects", [])
        self._refresh_start_page()

    # -- opening -----------------------------------------------------------------------------------------
    def choose_dataset(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open dataset", appsettings.last_folder(self.settings),
                                              DATASET_FILTER)
        if path:
            self.open_path(path)

    def choose_project(self) -> None:
        start = appsettings.last_folder(self.settings)
        path, _ = QFileDialog.getOpenFileName(self, "Open project", start, PROJECT_FILTER)
        if path:
            self.open_path(path)

    def open_sample(self) -> None:
        sample = appsettings.sample_dataset()
        if sample is None:
            self.report_error("No sample", "This copy of ftcurate has no sample dataset.")
            return
        self.open_path(str(sample))

    def is_loading(self) -> bool:
        return self._load_worker is not None and self._load_worker.is_running()

    def open_path(self, path: str, options: Optional[tasks.ImportOptions] = None) -> None:
        """Open a project file, or a dataset file (imported into a project in the data folder;
        ``options`` from the import dialog: format, column mapping, test file or split)."""
        path = os.path.abspath(os.path.expanduser(str(path)))
        if self.is_loading() and path == self._loading_path:
            return  # already on its way (e.g. a double click)
        if self.is_loading():  # one load at a time: stop the current one, then open this
            self._pending_open = path
            self._load_worker.cancel()
            return
        if os.path.isdir(path):
            self._fail_load(f"{path} is a folder: choose a dataset file or a .ftcurate project.")
            return
        if not os.path.exists(path):
            if path in appsettings.recent_projects(self.settings):
                appsettings.remove_recent_project(path, self.settings)
                self._refresh_start_page()
            self._fail_load(f"{path}: no such file.")
            return
        appsettings.set_last_folder(path, self.settings)
        self.close_project()
        name = os.path.basename(path)
        if tasks.is_project_file(path):
            worker = Worker(_with_frame, tasks.open_project, path, title=f"Opening {name}", discard=_close_result,
                            parent=self)
        else:
            tests = tasks.sample_test_files(path, appsettings.SAMPLE_DIR)
            if options is not None:  # the dialog chose the held-out data
                tests = []
            worker = Worker(_with_frame, tasks.open_dataset, path, str(appsettings.projects_dir()), tuple(tests),
                            options, title=f"Importing {name}", discard=_close_result, parent=self)
        worker.finished.connect(self._on_loaded)
        if not tasks.is_project_file(path):
            self._maybe_preview(path)
        worker.failed.connect(lambda message, details, p=path: self._fail_load(message, f"File: {p}\n\n{details}"))
        worker.cancelled.connect(self._on_load_cancelled)
        worker.ended.connect(self._on_load_ended)
        self._load_worker = worker
        self._loading_path = path
        self.start_page.set_busy(True, f"{worker.title}…")
        self._start(worker)
        self._update_enabled()

    def _start(self, worker: Worker) -> None:
        self._workers.append(worker)
        worker.ended.connect(lambda w=worker: self._workers.remove(w) if w in self._workers else None)
        self.progress_panel.track(worker)
        worker.start()

    @Slot(object)
    def _on_loaded(self, result: tasks.OpenResult) -> None:
        row = self.table.currentIndex().row() if self.is_previewing() else None
        self._end_preview()
        self.set_project(result.project, result)
        if row is not None and row > 0:  # stay where the user was reading (file order = id order)
            self.select_row(min(row, self.model.rowCount() - 1))
        if result.created and result.reports:
            loaded = sum(r.loaded for r in result.reports)
            rejected = sum(r.rejected for r in result.reports)
            msg = f"Imported {loaded:,} records"
            if rejected:
                msg += f"; {rejected:,} could not be read (see Import problems)"
            self.statusBar().showMessage(msg, 15000)
        self.project_loaded.emit(result.project)

    # -- big files: browse the file while it imports ----------------------------------------
    def is_previewing(self) -> bool:
        return self.table.model() is self.file_model

    def _maybe_preview(self, path: str) -> None:
        """Index a big JSONL file in a second worker and show it read-only until the import
        (in the load worker) is done: the table is usable in seconds, not minutes."""
        try:
            big = os.path.getsize(path) >= PREVIEW_MIN_BYTES
        except OSError:
            return
        if not big or not LineIndex.supports(path):
            return
        worker = Worker(LineIndex.build, path, title="Indexing", parent=self)
        worker.finished.connect(lambda index, p=path: self._show_preview(p, index))
        worker.failed.connect(lambda *_: None)  # the import reports what is wrong with the file
        worker.ended.connect(lambda w=worker: setattr(self, "_preview_worker", None)
                             if self._preview_worker is w else None)
        self._preview_worker = worker
        self._start(worker)

    def _show_preview(self, path: str, index: LineIndex) -> None:
        if self._loading_path != path or self.project is not None or not self.is_loading():
            index.close()  # the import finished first, failed or was cancelled
            return
        self.file_model.set_index(index)
        self._use_model(self.file_model)
        self.filter_bar.setEnabled(False)
        self.stack.setCurrentWidget(self.review_page)
        self.tabs.setCurrentWidget(self.records_page)
        self.count_label.setText(f"{len(index):,} lines")
        if self.file_model.rowCount():
            self.select_row(0)
        self.statusBar().showMessage(f"Showing {os.path.basename(path)} from the file while it is imported: "
                                     "browse now; decisions open when the import is done", 30000)
        self.table.setFocus()
        self._update_enabled()
        self.preview_shown.emit(len(index))

    def _end_preview(self) -> None:
        if self._preview_worker is not None:
            self._preview_worker.cancel()
        if self.is_previewing():
            self._use_model(self.model)
            self.filter_bar.setEnabled(True)
        self.file_model.close()

    def _use_model(self, model) -> None:
        self.table.setModel(model)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)

    def _fail_load(self, message: str, details: str = "") -> None:
        if self.is_previewing():
            self._end_preview()
            self.stack.setCurrentWidget(self.start_page)
        self.start_page.set_busy(False)
        self.report_error("Cannot open", message, details)
        self.load_failed.emit(message, details)

    @Slot()
    def _on_load_cancelled(self) -> None:
        if self.is_previewing():
            self._end_preview()
            self.stack.setCurrentWidget(self.start_page)
        self.start_page.set_busy(False)
        self.statusBar().showMessage("Cancelled", 5000)
        self.load_cancelled.emit()

    @Slot()
    def _on_load_ended(self) -> None:
        self._load_worker = None
        self._loading_path = None
        self._update_enabled()
        pending, self._pending_open = self._pending_open, None
        if pending:
            self.open_path(pending)

    def set_project(self, project: Project, info: Optional[tasks.OpenResult] = None) -> None:
        """Show an open project (the window takes ownership and closes it later)."""
        if self.project is not None and self.project is not project:
            self.close_project()
        self.project = project
        self.project_info = info
        report = getattr(info, "report", None) if info is not None else None
        if report is None:
            try:
                stored = project.load_scan("quality")
            except Exception:  # noqa: BLE001 - an unreadable old report is as good as none
                stored = None
            report = stored[1] if stored and isinstance(stored[1], dict) else None
        self.report = report
        frame = getattr(info, "frame", None) if info is not None else None
        self.frame = frame if frame is not None else RecordFrame.from_project(project, report)
        self._findings_index = None
        appsettings.add_recent_project(project.path, self.settings)
        self._apply_reviewer(project)
        self._refresh_start_page()
        self.start_page.set_busy(False)
        self._reset_filter_widgets()
        self.filter_bar.set_flag_counts(self.frame.flag_counts())
        self._refresh_labels()
        self.model.sort_key = ("id", False)
        self.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.model.set_project(project, self.frame.ids, frame=self.frame)
        errors = project.import_errors()
        self.problems_model.set_problems(errors, project.sources())
        self.problems_dock.setWindowTitle(f"Import problems ({len(errors):,})" if errors else "Import problems")
        self._set_dock(self.problems_dock, bool(errors))
        if errors:
            rows = min(len(errors), 6)
            self.resizeDocks([self.problems_dock], [60 + rows * (self.fontMetrics().height() + 8)],
                             Qt.Orientation.Vertical)
        self._show_stored_scan(project)
        for view in self.views.values():
            view.set_project(project)
            view.set_report(report)
        self.training_view.set_project(project, project.path)
        self.stack.setCurrentWidget(self.review_page)
        self.tabs.setCurrentWidget(self.records_page)
        self._update_title()
        self._update_counts()
        self._update_filter_label()
        self._update_enabled()
        if self.model.rowCount():
            self.select_row(0)
        else:
            self.detail.show_placeholder("This project has no records.")
        self.table.setFocus()
        self.restore_view_state()

    def close_project(self) -> None:
        if self._search_worker is not None:
            self._search_worker.cancel()
            self._search_worker.wait()
            self._search_worker = None
        if self._scan_worker is not None:  # it uses the project: stop it before closing that
            self._scan_worker.cancel()
            self._scan_worker.wait()
            self._scan_worker = None
        self.notes.commit()
        if self.project is not None:
            self.save_view_state()
        for view in self.views.values():
            if hasattr(view, "shutdown"):
                view.shutdown()
            view.set_project(None)
            view.set_report(None)
        self.training_view.set_project(None, None)
        project, self.project = self.project, None
        self.project_info = None
        self.report = None
        self.frame = RecordFrame()
        self._findings_index = None
        self.model.set_project(None)
        self.notes.set_record(None)
        self.problems_model.clear()
        self._set_dock(self.problems_dock, False)
        self.findings.set_report(None, has_project=False)
        self._set_dock(self.findings_dock, False)
        self.detail.show_placeholder()
        if project is not None:
            project.close()
        self.stack.setCurrentWidget(self.start_page)
        self._refresh_start_page()
        self._update_title()
        self._update_counts()
        self._update_enabled()

    # -- filtering ---------------------------------------------------------------------------------------
    def apply_filter(self) -> None:
        """Show the records matching the filter bar: status, split, finding, label, score
        (numpy masks over the record frame, milliseconds) and text (a worker)."""
        self.filter_bar.stop_timer()
        if self.project is None:
            return
        self._filter_gen += 1
        gen = self._filter_gen
        if self._search_worker is not None:
            self._search_worker.cancel()
            self._search_worker = None
        state = self.filter_bar.state()
        text = state["text"]
        if not text:
            self._set_filtered_ids(self._frame_select(state), gen)
            return
        worker = Worker(tasks.search_ids, self.project, text, state["status"], state["split"], title="Searching",
                        parent=self)
        worker.finished.connect(lambda ids, g=gen, st=state: self._set_filtered_ids(self._frame_select(st, ids), g))
        worker.failed.connect(lambda message, details: self.report_error("Search failed", message, details))
        self._search_worker = worker
        worker.ended.connect(lambda w=worker: setattr(self, "_search_worker", None)
                             if self._search_worker is w else None)
        self._start(worker)

    def _frame_select(self, state: dict, only_ids=None):
        label_ids = self.project.ids_with_label(state["label"]) if state.get("label") else None
        return self.frame.select(status=state.get("status"), split=state.get("split"), flag=state.get("flag"),
                                 label_ids=label_ids, score_min=state.get("score_min"), only_ids=only_ids)

    def _set_filtered_ids(self, ids, gen: int) -> None:
        if gen != self._filter_gen or self.project is None:
            return  # a newer filter has been asked for
        keep = self.current_id()
        self.model.set_ids(ids)
        self._update_filter_label()
        row = self.model.row_of(keep) if keep is not None else None
        if row is None and self.model.rowCount():
            row = 0
        if row is not None:
            self.select_row(row)
        else:
            self.detail.show_placeholder("No record matches the filter.")
            self.notes.set_record(None)
        self._state_timer.start()
        self.filter_applied.emit(len(ids))

    def clear_filters(self) -> None:
        if self.project is not None and not self.filter_bar.is_default():
            self.filter_bar.reset()
            self.apply_filter()

    def focus_search(self) -> None:
        if self.project is not None:
            self.tabs.setCurrentWidget(self.records_page)
            self.filter_bar.focus_search()

    # -- selection and navigation -------------------------------------------------------------------------
    def current_id(self) -> Optional[int]:
        if self.is_previewing():
            return None
        idx = self.table.currentIndex()
        return self.model.id_at(idx.row()) if idx.isValid() else None

    def selected_ids(self) -> list[int]:
        if self.is_previewing():
            return []
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        if not rows and self.table.currentIndex().isValid():
            rows = [self.table.currentIndex().row()]
        return [rid for rid in (self.model.id_at(r) for r in rows) if rid is not None]

    def select_row(self, row: int) -> None:
        model = self.table.model()
        if not 0 <= row < model.rowCount():
            return
        index = model.index(row, 0)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().setCurrentIndex(index, flags)
        self.table.scrollTo(index)

    def select_ids(self, ids: Iterable[int]) -> None:
        rows = sorted(r for r in (self.model.row_of(i) for i in ids) if r is not None)
        if not rows:
            return
        self.select_row(rows[0])
        if len(rows) > 1:
            sel = QItemSelection()
            last = self.model.columnCount() - 1
            for r in rows:
                sel.select(self.model.index(r, 0), self.model.index(r, last))
            self.table.selectionModel().select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def move_selection(self, delta: int) -> None:
        n = self.table.model().rowCount()
        if not n:
            return
        cur = self.table.currentIndex()
        row = cur.row() + delta if cur.isValid() else 0
        self.select_row(max(0, min(n - 1, row)))

    def next_unreviewed(self) -> None:
        if self.project is None or not self.model.rowCount():
            return
        todo = self.project.ids(status="unreviewed")
        cur = self.current_id()
        start = bisect_right(todo, cur) if cur is not None else 0
        for pos, wrapped in ((range(start, len(todo)), False), (range(0, start), True)):
            for i in pos:
                row = self.model.row_of(todo[i])
                if row is not None and todo[i] != cur:
                    self.select_row(row)
                    if wrapped:
                        self.statusBar().showMessage("Wrapped around to the top", 4000)
                    return
        self.statusBar().showMessage("No unreviewed record left in this view", 5000)

    @Slot(QModelIndex, QModelIndex)
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.notes.commit()  # a note being typed belongs to the record it was typed for
        self._show_current()

    def _show_current(self) -> None:
        if self.is_previewing():
            row = self.table.currentIndex().row()
            self.detail.show_placeholder("Importing… this is the record as it stands in the file:")
            self.detail.append(f"<pre>{html.escape(self.file_model.record_text(row))}</pre>")
            self.notes.set_record(None)
            return
        rid = self.current_id()
        if rid is None or self.project is None:
            self.detail.show_placeholder()
            self.notes.set_record(None)
            return
        try:
            sr = self.project.get(rid)
        except KeyError:
            self.detail.show_placeholder("This record is no longer in the project.")
            self.notes.set_record(None)
            return
        self.detail.show_record(sr, self.record_findings(rid))
        self.notes.set_record(sr, many=len(self.selected_ids()))
        self.act_restore.setEnabled(sr.is_edited)
        self._state_timer.start()

    def record_findings(self, record_id: int) -> list[tuple[str, str]]:
        """What the last scan found about one record: (kind, reason) pairs."""
        if not self.report:
            return []
        if self._findings_index is None:
            index: dict[int, list] = {}
            for f in findings_from_report(self.report):
                index.setdefault(f.record_id, []).append((f.kind, f.detail))
            self._findings_index = index
        return self._findings_index.get(record_id, [])

    def show_record_id(self, record_id: int) -> None:
        """Select and show one record; clears the filters first when they hide it."""
        if self.project is None:
            return
        row = self.model.row_of(record_id)
        if row is None:
            self._reset_filters()
            row = self.model.row_of(record_id)
        if row is None:
            self.statusBar().showMessage(f"Record {record_id} is no longer in the project", 5000)
            return
        self.select_row(row)

    def _reset_filters(self) -> None:
        """All statuses, all splits, no search text: every record shown (at once, no worker)."""
        self.filter_bar.stop_timer()
        self._filter_gen += 1
        if self._search_worker is not None:
            self._search_worker.cancel()
            self._search_worker = None
        self._reset_filter_widgets()
        self.model.set_ids(self.frame.ids)
        self._update_filter_label()
        self.statusBar().showMessage("Filters cleared to show the record", 4000)

    # -- quality scan ------------------------------------------------------------------------------------
    def is_scanning(self) -> bool:
        return self._scan_worker is not None and self._scan_worker.is_running()

    def run_scan(self) -> None:
        """Run the quality scan of the open project in a worker; the report fills the Findings dock."""
        if self.project is None or self.is_scanning():
            return
        project = self.project
        if self.scan_settings is None:
            from .dialogs import load_scan_settings

            self.scan_settings = load_scan_settings(self.settings)
        worker = Worker(_scan_and_settle, project, settings=self.scan_settings, title="Scanning", parent=self,
                        event_kw="on_result", heavy=True)
        partial: dict = {"index": "record_id"}
        worker.event.connect(lambda item, p=project, d=partial: self._on_scan_partial(p, d, item))
        worker.finished.connect(lambda report, p=project: self._on_scan_finished(p, report))
        worker.failed.connect(self._on_scan_failed)
        worker.cancelled.connect(self._on_scan_cancelled)
        worker.ended.connect(lambda w=worker: self._on_scan_ended(w))
        self._scan_worker = worker
        self._start(worker)
        self._update_enabled()

    def _on_scan_partial(self, project: Project, partial: dict, item) -> None:
        """A scanner finished: show its results at once (the full report follows)."""
        if project is not self.project or not isinstance(item, tuple) or len(item) != 2:
            return
        section, value = item
        partial[section] = value
        if section in ("flags", "exact_duplicates", "near_duplicate_clusters", "outliers", "leakage"):
            self._set_report(dict(partial))
            self.statusBar().showMessage(f"Scan: {section.replace('_', ' ')} done", 3000)

    def _on_scan_finished(self, project: Project, report: dict) -> None:
        if project is not self.project:
            return  # the project was closed meanwhile
        self._set_report(report)
        self._show_report(report)
        self.findings_dock.raise_()
        self.resizeDocks([self.findings_dock], [max(self.findings_dock.height(), 240)], Qt.Orientation.Vertical)
        self.statusBar().showMessage(scan_summary(report, short=True), 30000)
        self.scan_finished.emit(report)

    @Slot(str, str)
    def _on_scan_failed(self, message: str, details: str) -> None:
        self.report_error("Scan failed", message, details)
        self.scan_failed.emit(message, details)

    @Slot()
    def _on_scan_cancelled(self) -> None:
        self.statusBar().showMessage("Scan cancelled", 5000)
        self.scan_cancelled.emit()

    def _on_scan_ended(self, worker: Worker) -> None:
        if self._scan_worker is worker:
            self._scan_worker = None
        self._update_enabled()

    def _record_numbers(self, report: Optional[dict]) -> dict:
        """Record id -> the number the main table shows (its index in its file)."""
        if self.project is None or not report:
            return {}
        known = set(self.project.ids())
        return {sr.id: sr.index for sr in self.project.get_many(sorted(report_ids(report) & known))}

    def _set_report(self, report: Optional[dict]) -> None:
        """A new scan report: table flags and scores, filter choices, views, detail pane."""
        self.report = report
        self._findings_index = None
        self.frame.apply_report(report)
        self.filter_bar.set_flag_counts(self.frame.flag_counts())
        self.model.refresh_all()
        for view in self.views.values():
            view.set_report(report)
        self._show_current()

    def _show_report(self, report: Optional[dict]) -> None:
        self.findings.set_report(report, has_project=self.project is not None, numbers=self._record_numbers(report))
        self.findings_dock.setWindowTitle(f"Findings ({self.findings_model.total():,})" if report else "Findings")
        self._set_dock(self.findings_dock, True)

    def _show_stored_scan(self, project: Project) -> None:
        try:
            stored = project.load_scan("quality")
        except Exception:  # noqa: BLE001 - an unreadable old report is as good as none
            stored = None
        report = stored[1] if stored else None
        problems = self.problems_model.rowCount() > 0
        self._show_report(report if isinstance(report, dict) else None)
        if report or not problems:
            self.findings_dock.raise_()
        else:
            self.problems_dock.raise_()
        if not problems:
            self.resizeDocks([self.findings_dock], [200], Qt.Orientation.Vertical)

    # -- decisions ---------------------------------------------------------------------------------------
    def decide(self, action: str) -> None:
        """Approve / reject / reset the selected records; saved before this returns."""
        if self.project is None:
            return
        ids = self.selected_ids()
        if not ids:
            self.statusBar().showMessage("Select a record first", 4000)
            return
        try:
            getattr(self.project, action)(ids)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            import traceback

            self.report_error("Could not save the decision", describe_error(exc), traceback.format_exc())
            return
        self._after_change(ids)
        n = len(ids)
        self.statusBar().showMessage(f"{PAST[action]} {n:,} record{'s' if n != 1 else ''} (saved)", 4000)
        if n == 1 and action != "reset" and self.act_advance.isChecked():
            self.move_selection(1)

    def _apply(self, what: str, call, ids: list) -> bool:
        """Run one store call (a saved decision); report a failure in a dialog."""
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - shown to the user
            import traceback

            self.report_error(f"Could not save the {what}", describe_error(exc), traceback.format_exc())
            return False
        self._after_change(ids)
        return True

    def _confirm(self, title: str, text: str) -> bool:
        """Ask before a bulk change (always yes when not interactive: tests, screenshots)."""
        if not self.interactive:
            return True
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def shown_ids(self) -> list[int]:
        return [int(i) for i in self.model.ids()]

    def decide_shown(self, action: str) -> None:
        """Approve or reject every record the filter shows, after asking: one undo step."""
        if self.project is None:
            return
        ids = self.shown_ids()
        if not ids:
            self.statusBar().showMessage("No record is shown", 4000)
            return
        verb = {"approve": "Approve", "reject": "Reject"}[action]
        filtered = self.model.rowCount() != self.project.count()
        scope = "every record the current filter shows" if filtered else "every record in the project"
        if not self._confirm(f"{verb} {len(ids):,} records?",
                             f"{verb} {scope} ({len(ids):,} records)?\n\nThis is one step: Ctrl+Z undoes it."):
            return
        if self._apply("decision", lambda: getattr(self.project, action)(ids), ids):
            self.statusBar().showMessage(f"{PAST[action]} {len(ids):,} records (saved; Ctrl+Z undoes)", 6000)

    def label_shown(self) -> None:
        """Add one label to every record the filter shows (one undo step)."""
        if self.project is None or not self.model.rowCount():
            return
        ids = self.shown_ids()
        label = self.ask_text("Label all shown", f"Label to add to the {len(ids):,} records shown:")
        if not label or not label.strip():
            return
        if self._apply("labels", lambda: self.project.add_label(ids, label.strip()), ids):
            self._refresh_labels()
            self.statusBar().showMessage(f"Labelled {len(ids):,} records '{label.strip()}' (saved)", 6000)

    def ask_text(self, title: str, prompt: str, text: str = "") -> Optional[str]:
        """A one-line question (tests replace it: offscreen there is nobody to answer)."""
        answer, ok = QInputDialog.getText(self, title, prompt, text=text)
        return answer if ok else None

    # -- who decides ---------------------------------------------------------------------------
    def reviewer_name(self) -> str:
        return appsettings.reviewer_name(self.settings)

    def ask_reviewer_name(self) -> None:
        current = self.reviewer_name() or (self.project.reviewer if self.project is not None else "") or ""
        name = self.ask_text("Reviewer name", "Your name in the decision log of every project you open:", current)
        if name is not None:
            self.set_reviewer_name(name)

    def set_reviewer_name(self, name: str) -> None:
        """Remember the name and log the open project's next decisions under it."""
        appsettings.set_reviewer_name(name, self.settings)
        if self.project is not None:
            self._apply_reviewer(self.project)
        self._update_counts()

    def _apply_reviewer(self, project: Project) -> None:
        """Decisions made from here on carry the remembered name (a project imported with a
        reviewer keeps that one until a name is set in the app)."""
        name = self.reviewer_name()
        if name and project.reviewer != name:
            try:
                project.reviewer = name
            except Exception:  # noqa: BLE001 - a read-only project: its decisions cannot change anyway
                pass

    def set_labels(self, labels: list) -> None:
        """Give the selected records these labels (from the notes panel)."""
        ids = self.selected_ids()
        if self.project is None or not ids:
            return
        if self._apply("labels", lambda: self.project.set_labels(ids, labels), ids):
            self._refresh_labels()
            self.statusBar().showMessage(f"Labels saved for {len(ids):,} record{'s' if len(ids) != 1 else ''}", 4000)

    def set_note(self, record_id: int, note: str) -> None:
        if self.project is None:
            return
        if self._apply("note", lambda: self.project.set_note(record_id, note), [record_id]):
            self.statusBar().showMessage("Note saved", 3000)

    def focus_labels(self) -> None:
        if self.project is not None and self.current_id() is not None:
            self.tabs.setCurrentWidget(self.records_page)
            self.notes.labels.setFocus()
            self.notes.labels.selectAll()

    def _refresh_labels(self) -> None:
        labels = self.project.all_labels() if self.project is not None else {}
        self.filter_bar.set_labels(labels)
        self.notes.set_known_labels(labels)

    def edit_current(self) -> None:
        """Edit the current record in a dialog; the checked result is saved as an edit."""
        rid = self.current_id()
        if self.project is None or rid is None:
            return
        dialog = EditDialog(self.project.get(rid), self)
        self.edit_dialog = dialog  # tests drive it
        if not self.interactive:
            dialog.setModal(False)
            dialog.accepted.connect(lambda: self._save_edit(rid, dialog))
            dialog.show()
            return
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self._save_edit(rid, dialog)

    def _save_edit(self, rid: int, dialog: "EditDialog") -> None:
        record = dialog.record()
        if record is None or dialog.unchanged():
            self.statusBar().showMessage("Nothing changed", 3000)
            return
        if self._apply("edit", lambda: self.project.edit(rid, record), [rid]):
            self.statusBar().showMessage("Edit saved; the original is kept (Restore original brings it back)", 6000)

    def restore_current(self) -> None:
        rid = self.current_id()
        if self.project is None or rid is None or not self.project.get(rid).is_edited:
            return
        if self._apply("restore", lambda: self.project.restore_original(rid), [rid]):
            self.statusBar().showMessage("Original restored (Ctrl+Z undoes)", 5000)

    def undo(self) -> None:
        self._undo_redo(True)

    def redo(self) -> None:
        self._undo_redo(False)

    def _undo_redo(self, undo: bool) -> None:
        if self.project is None:
            return
        info = self.project.peek_undo() if undo else self.project.peek_redo()
        try:
            ids = self.project.undo() if undo else self.project.redo()
        except Exception as exc:  # noqa: BLE001
            import traceback

            self.report_error("Could not undo" if undo else "Could not redo", describe_error(exc),
                              traceback.format_exc())
            return
        if ids is None:
            self.statusBar().showMessage("Nothing to undo" if undo else "Nothing to redo", 4000)
            return
        self._after_change(ids)
        self._refresh_labels()
        self.select_ids(ids)
        what = (info or {}).get("action", "decision").replace("_", " ")
        self.statusBar().showMessage(
            f"{'Undid' if undo else 'Redid'} {what} of {len(ids):,} record{'s' if len(ids) != 1 else ''}", 4000)

    def _after_change(self, ids: list, source: Optional[QWidget] = None) -> None:
        """The store changed these records: repaint the table, counts and the other views."""
        self.model.refresh(ids)
        self._update_counts()
        self._update_enabled()
        if self.current_id() in ids:
            self._show_current()
        for view in self.views.values():
            if view is not source:
                view.refresh(list(ids))
        self.records_changed.emit(list(ids))

    # -- status ------------------------------------------------------------------------------------------------
    def _update_title(self) -> None:
        if self.project is None:
            self.setWindowTitle("ftcurate")
        else:
            name = os.path.splitext(os.path.basename(self.project.path))[0]
            self.setWindowTitle(f"{name} — ftcurate")

    def _update_counts(self) -> None:
        if self.project is None:
            self.counts_label.setText("")
            return
        counts = self.project.status_counts()
        total = sum(counts.values())
        parts = []
        for st in STATUSES:
            parts.append(f'<span style="color:{STATUS_COLORS[st]}">&#9679;</span> {counts.get(st, 0):,} '
                         f"{STATUS_LABELS[st].lower()}")
        test = self.project.count(split="test")
        tail = f"{total:,} records" + (f" ({test:,} test)" if test else "")
        who = self.project.reviewer
        if who:
            tail += f"&nbsp;&nbsp;&middot;&nbsp;&nbsp;reviewer: {html.escape(who)}"
        self.counts_label.setText("&nbsp;&nbsp;&nbsp;".join(parts) + f"&nbsp;&nbsp;&nbsp;&middot;&nbsp;&nbsp;{tail}&nbsp;")
        self.counts_label.setToolTip("Decisions are logged under this name (Edit ▸ Reviewer name…)" if who else
                                     "Set your name for the decision log: Edit ▸ Reviewer name…")

    def _reset_filter_widgets(self) -> None:
        """Every filter back to "all", search box empty, without firing the filter."""
        self.filter_bar.reset()

    def _update_filter_label(self) -> None:
        if self.project is None:
            self.count_label.setText("")
            return
        shown = self.model.rowCount()
        total = self.project.count()
        self.count_label.setText(f"{shown:,} records" if shown == total else f"{shown:,} of {total:,} records")

    def _update_enabled(self) -> None:
        has = self.project is not None
        on_records = has and self.tabs.currentIndex() == 0  # the Records tab
        for act in (self.act_close, self.act_find, self.act_export, self.act_clear_filters):
            act.setEnabled(has)
        # the one-key review actions act on the Records table: off while another view
        # (with its own keys) is in front
        for act in (self.act_approve, self.act_reject, self.act_reset, self.act_next, self.act_prev,
                    self.act_next_unreviewed, self.act_edit, self.act_labels, self.act_approve_shown,
                    self.act_reject_shown, self.act_label_shown):
            act.setEnabled(on_records)
        if self.is_previewing():  # browsing a big file while it imports
            self.act_next.setEnabled(True)
            self.act_prev.setEnabled(True)
        if not on_records:
            self.act_restore.setEnabled(False)
        self.act_scan.setEnabled(has and not self.is_scanning())
        self.act_undo.setEnabled(has and self.project.can_undo())
        self.act_redo.setEnabled(has and self.project.can_redo())
        if has:
            nxt = self.project.peek_undo()
            self.act_undo.setText(f"&Undo {nxt['action'].replace('_', ' ')}" if nxt else "&Undo")
            nxt = self.project.peek_redo()
            self.act_redo.setText(f"&Redo {nxt['action'].replace('_', ' ')}" if nxt else "&Redo")
        else:
            self.act_undo.setText("&Undo")
            self.act_redo.setText("&Redo")
        self.act_undo.setIconText("Undo")
        self.act_redo.setIconText("Redo")

    def report_error(self, title: str, message: str, details: str = "") -> None:
        """Tell the user: a message box with details (interactive), the status bar, a signal."""
        self.statusBar().showMessage(message.splitlines()[0] if message else title, 10000)
        self.error_reported.emit(title, message, details)
        if self.interactive:
            box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, self)
            if details:
                box.setDetailedText(details)
            box.exec()

    # -- help ----------------------------------------------------------------------------------------------------
    def review_actions(self) -> list[QAction]:
        actions = [self.act_approve, self.act_reject, self.act_reset, self.act_edit, self.act_labels,
                   self.act_next, self.act_prev, self.act_next_unreviewed, self.act_approve_shown,
                   self.act_reject_shown, self.act_label_shown, self.act_undo, self.act_redo, self.act_find,
                   self.act_clear_filters, self.act_scan, self.act_export, self.act_import, self.act_open_dataset,
                   self.act_open_project, self.act_close, self.act_shortcuts, self.act_quit]
        for view in self.views.values():
            actions += list(view.actions()) if hasattr(view, "actions") else []
        return actions

    def show_shortcuts(self) -> None:
        if self._shortcuts_dialog is None:
            self._shortcuts_dialog = ShortcutsDialog(self.review_actions(), self)
        self._shortcuts_dialog.show()
        self._shortcuts_dialog.raise_()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About ftcurate",
            f"<h3>ftcurate {__version__}</h3>"
            "<p>Curate fine-tuning datasets: review conversations, find duplicates, outliers, "
            "leakage and bad answers, then export a clean set.</p>"
            "<p>Everything runs on this computer; nothing is sent anywhere.</p>"
            "<p>Licensed under the Apache License 2.0.</p>",
        )

    # -- drag and drop ---------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: ANN001
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        # a project among the dropped files wins; else the first file
        projects = [p for p in paths if tasks.is_project_file(p)]
        self.open_path(projects[0] if projects else paths[0])

    # -- shutdown ----------------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel background work, wait for it, close the project."""
        self._pending_open = None
        self.training_view.shutdown()  # a running training run is cancelled (its checkpoints stay)
        for worker in list(self._workers):
            worker.cancel()
        for worker in list(self._workers):
            worker.wait(30000)
        # results that arrived while stopping: close what they opened
        if self._load_worker is not None and self._load_worker.state == "running":
            self._load_worker = None
        self.close_project()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._remember_geometry:
            self.save_window_settings()
        self.shutdown()
        event.accept()
        super().closeEvent(event)
