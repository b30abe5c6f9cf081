"""The main window: start page, records table, conversation view, import problems.

The window holds at most one open :class:`~ftcurate.core.project.store.Project`. Opening and
importing run in a :class:`~ftcurate.gui.workers.Worker`; review decisions are quick
single transactions and run in the GUI thread, saved before the call returns.
"""

from __future__ import annotations

import os
from typing import Optional

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDockWidget, QFileDialog, QFrame, QHeaderView,
                               QMainWindow, QMessageBox, QScrollArea, QSplitter,
                               QStackedWidget, QTabWidget, QVBoxLayout, QWidget)

from ..core.quality.scan import ScanSettings
from ..core.project.dismissals import apply_dismissals
from ..core.project.store import Project
from ..core.io.lineindex import LineIndex
from ..core.project.table import RecordFrame
from . import settings as appsettings
from . import tasks, theme
from .file_model import FileTableModel
from .filter_bar import FilterBar
from .record_editor import NotesPanel
from .models import ImportProblemsModel, RecordTableModel
from .scan_view import FindingsPanel
from .widgets import ConversationView, RecordsTable, ShortcutsDialog, StartPage, app_icon, list_table
from .workers import Worker
from .annotation_ops import AnnotationMixin
from .columns_ops import ColumnsMixin
from .review_ops import ReviewMixin
from .similar_ops import SimilarMixin
from .scan_control import ScanMixin
from .window_chrome import ChromeMixin

#: Datasets at least this big are shown straight from the file (read-only) while they import.
PREVIEW_MIN_BYTES = 8 << 20
DATASET_FILTER = "Datasets (*.jsonl *.json *.csv *.tsv *.parquet);;All files (*)"
PROJECT_FILTER = "ftcurate projects (*.ftcurate);;All files (*)"


def _with_frame(opener, *args, progress=None, cancel=None):
    """Run an open task, then read the record frame (the table's columns) and the stored
    scan report in the same worker, so the window shows a ready table."""
    result = opener(*args, progress=progress, cancel=cancel)
    try:
        try:
            stored = result.project.load_scan("quality")
        except Exception:  # noqa: BLE001 - an unreadable old report is as good as none
            stored = None
        result.raw_report = stored[1] if stored and isinstance(stored[1], dict) else None
        result.report = apply_dismissals(result.project, result.raw_report)  # what the reviewer sees
        result.frame = RecordFrame.from_project(result.project, result.report, progress=progress, cancel=cancel)
    except BaseException:
        _close_result(result)
        raise
    return result


def _close_result(result) -> None:
    """Close what an open task opened (never the window's own project, handed back as ``reused``)."""
    project = getattr(result, "project", None)
    if project is not None and not getattr(result, "reused", False):
        project.close()


class MainWindow(ChromeMixin, ReviewMixin, ScanMixin, AnnotationMixin, SimilarMixin, ColumnsMixin, QMainWindow):
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
    similar_shown = Signal(int)  # records listed nearest-first by meaning

    def __init__(self, settings: Optional[QSettings] = None, interactive: bool = True,
                 restore_geometry: bool = True) -> None:
        super().__init__()
        self.settings = settings if settings is not None else appsettings.make_settings()
        self.interactive = interactive
        # ask for the reviewer's name before the first decision (not in screenshots; tests turn it on)
        self.ask_reviewer_first = interactive
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
        self.report: Optional[dict] = None  # the last quality scan report of the open project, as reviewed
        self._raw_report: Optional[dict] = None  # the same as scanned (before dismissals)
        self.frame = RecordFrame()  # the table's columns (numpy) of the open project
        self._findings_index: Optional[dict] = None  # record id -> [(kind, reason)], built on demand
        self._numbers: Optional[dict] = None  # record id -> its index in its file, for the report's records
        # settings for the next quality scan (None: the defaults); tests set a faster one
        self.scan_settings: Optional[ScanSettings] = None

        self.setWindowTitle("ftcurate")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.resize(1280, 800)

        self._build_actions()
        self._build_central()
        self._build_tab_actions()
        self._build_annotation()
        self._build_similar()
        self._build_columns()
        self._build_dock()
        self._build_menus()
        self._build_toolbar()
        self._build_statusbar()
        self._update_enabled()
        self._refresh_start_page()
        if restore_geometry:
            self._restore_geometry()

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
        self.table = RecordsTable()
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
        self.table.setTabKeyNavigation(False)  # Tab moves on to the detail pane; arrows and J/K move between rows
        self.table.setIconSize(QSize(12, 12))
        vh = self.table.verticalHeader()
        vh.hide()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(self.fontMetrics().height() + 10)
        hh = self.table.horizontalHeader()
        hh.setHighlightSections(False)
        hh.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.table.setup_columns(self.COLUMN_WIDTHS)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
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

    #: Records table column widths (the prompt column takes the rest, see RecordsTable)
    COLUMN_WIDTHS = ((RecordTableModel.COL_INDEX, 56), (RecordTableModel.COL_STATUS, 104),
                     (RecordTableModel.COL_SPLIT, 64), (RecordTableModel.COL_MSGS, 48),
                     (RecordTableModel.COL_TOKENS, 60), (RecordTableModel.COL_FLAGS, 96),
                     (RecordTableModel.COL_SCORE, 56), (RecordTableModel.COL_LABELS, 120))

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
        self.training_view.record_requested.connect(self.show_record_id)  # a golden item of the Evaluate tab
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
        elif view in (self.views.get("pairs"), self.views.get("leaks"), self.views.get("map")):
            self.ensure_reviewer()  # these views decide with one key: know who decides first
        if view is self.training_view and self.project is not None:
            self.training_view.refresh_checks()  # the approved set may have changed meanwhile
        self._state_timer.start()

    def show_tab(self, key: str) -> None:
        view = {"records": self.records_page, "training": self.training_view}.get(key) or self.views.get(key)
        if view is not None:
            self.tabs.setCurrentWidget(self._page_of(view))

    def view_state(self) -> dict:
        state = {"filter": self.filter_bar.state(), "current": self.current_id(), "tab": self.tabs.currentIndex(),
                 "sort": list(self.model.sort_key) if self.model.sort_key[0] != "rank" else ["id", False],
                 "columns": list(self.model.meta_keys)}
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
        self._apply_sort(state.get("sort"))
        if isinstance(state.get("columns"), list) and state["columns"]:
            self.set_meta_columns([str(k) for k in state["columns"]])
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

    def set_theme(self, key: str) -> None:
        self.settings.setValue("view/theme", key)
        theme.apply_theme(key)
        self._show_current()
        self._update_counts()  # the status bar's coloured dots

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
        self.act_open_helpdesk.setEnabled(appsettings.helpdesk_sample() is not None)

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

    def open_helpdesk_sample(self) -> None:
        sample = appsettings.helpdesk_sample()
        if sample is None:
            self.report_error("No sample", "This copy of ftcurate has no help-desk sample.")
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
        if self._is_open_already(path, options):
            self.stack.setCurrentWidget(self.review_page)
            self.statusBar().showMessage(f"{os.path.basename(path)} is already open", 5000)
            return
        if options is not None and self.project is not None:
            self.close_project()  # a re-import of the open dataset with other options
        # The open project stays open until the new one is ready: a file that cannot be
        # opened leaves the user where they were.
        name = os.path.basename(path)
        if tasks.is_project_file(path):
            worker = Worker(_with_frame, tasks.open_project, path, title=f"Opening {name}", discard=_close_result,
                            parent=self)
        else:
            tests = tasks.sample_test_files(path, appsettings.SAMPLE_DIR)
            if options is not None:  # the dialog chose the held-out data
                tests = []
            worker = Worker(_with_frame, tasks.open_dataset, path, str(appsettings.projects_dir()), tuple(tests),
                            options, self.project, title=f"Importing {name}", discard=_close_result, parent=self)
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

    def _is_open_already(self, path: str, options) -> bool:
        """``path`` is the open project's file. (The open project's unchanged dataset is found
        by the open task, which hands the open project back: see ``tasks.open_dataset``.)"""
        return (self.project is not None and tasks.is_project_file(path)
                and os.path.abspath(self.project.path) == path)

    def _start(self, worker: Worker) -> None:
        self._workers.append(worker)
        worker.ended.connect(lambda w=worker: self._workers.remove(w) if w in self._workers else None)
        self.progress_panel.track(worker)
        worker.start()

    @Slot(object)
    def _on_loaded(self, result: tasks.OpenResult) -> None:
        if getattr(result, "reused", False) and result.project is self.project:
            self.stack.setCurrentWidget(self.review_page)
            self.statusBar().showMessage(f"{os.path.basename(result.dataset or '')} is already open", 5000)
            self.project_loaded.emit(result.project)
            return
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
        if self._loading_path != path or not self.is_loading():
            index.close()  # the import finished first, failed or was cancelled
            return
        if self.project is not None:  # the new file reads well: leave the old project for it
            self.close_project()
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
        self.table.setup_columns(self.COLUMN_WIDTHS)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)

    def _fail_load(self, message: str, details: str = "") -> None:
        if self.is_previewing():
            self._end_preview()
            self.stack.setCurrentWidget(self.start_page)
        self.start_page.set_busy(False)
        if self.project is not None:  # still open: the user stays where they were
            self.stack.setCurrentWidget(self.review_page)
        self.report_error("Cannot open", message, details)
        self.load_failed.emit(message, details)

    @Slot()
    def _on_load_cancelled(self) -> None:
        if self.is_previewing():
            self._end_preview()
            self.stack.setCurrentWidget(self.start_page if self.project is None else self.review_page)
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
        raw = getattr(info, "raw_report", None) if info is not None else None
        report = getattr(info, "report", None) if info is not None else None
        if report is None:
            try:
                stored = project.load_scan("quality")
            except Exception:  # noqa: BLE001 - an unreadable old report is as good as none
                stored = None
            raw = stored[1] if stored and isinstance(stored[1], dict) else None
            report = apply_dismissals(project, raw)
        self._raw_report = raw if raw is not None else report  # as scanned; self.report: dismissals applied
        self.report = report
        frame = getattr(info, "frame", None) if info is not None else None
        self.frame = frame if frame is not None else RecordFrame.from_project(project, report)
        self._findings_index = None
        self._numbers = None
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
        self.table.update_empty_columns()
        errors = project.import_errors()
        sources = project.sources()
        self.problems_model.set_problems(errors, sources)
        n_problems = self.problems_model.rowCount()
        self.problems_dock.setWindowTitle(f"Import problems ({n_problems:,})" if n_problems else "Import problems")
        self._set_dock(self.problems_dock, bool(n_problems))
        unfinished = [s for s in sources if not s.get("complete", True)]
        if unfinished:
            self.statusBar().showMessage(f"The import of {os.path.basename(unfinished[0]['path'])} did not finish: "
                                         "import the file again to finish it (see Import problems)", 30000)
        if n_problems:
            rows = min(n_problems, 6)
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
        self._refresh_annotation()
        self._refresh_columns()
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
        self._raw_report = None
        self.frame = RecordFrame()
        self._findings_index = None
        self._numbers = None
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
        self._refresh_annotation()
        self._refresh_columns()
        self._refresh_start_page()
        self._update_title()
        self._update_counts()
        self._update_enabled()

    def report_error(self, title: str, message: str, details: str = "") -> None:
        """Tell the user: a message box with details (interactive), the status bar, a signal."""
        self.statusBar().showMessage(message.splitlines()[0] if message else title, 10000)
        self.error_reported.emit(title, message, details)
        if self.interactive:
            # shown once the event loop runs again: the signals that follow a failure (a
            # worker's `ended`) first clear progress bars and busy states behind the box
            QTimer.singleShot(0, lambda: self._error_box(title, message, details))

    def _error_box(self, title: str, message: str, details: str = "") -> None:
        box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        self.error_box = box  # tests look at it
        box.exec()

    def resizeEvent(self, event) -> None:  # noqa: ANN001
        super().resizeEvent(event)
        if (event.oldSize().width() >= self.WIDE_STATUS) != (event.size().width() >= self.WIDE_STATUS):
            self._update_counts()  # the status bar's long or short form

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
