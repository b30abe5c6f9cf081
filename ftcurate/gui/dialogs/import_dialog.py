"""Import dialog.

:class:`ImportDialog` previews a dataset file with a format and column mapping, validates
it in a worker, lists the problems with their raw text, and hands back
:class:`~ftcurate.gui.tasks.ImportOptions` for :func:`~ftcurate.gui.tasks.open_dataset`.
"""

from __future__ import annotations

import os
from typing import Optional

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QPlainTextEdit, QPushButton, QRadioButton, QSpinBox, QSplitter, QTableView,
                               QTabWidget, QVBoxLayout, QWidget)

from ...core.io.formats import FORMAT_CHOICES
from ...core.io.formats.tabular import MAPPING_KEYS
from ...core.io.validate import ValidationReport, heldout_reading, validate_path
from .. import tasks
from ..models import RowsTableModel
from ..workers import Worker
from .common import (CONTAINER_LABELS, ERROR_STYLE, FORMAT_LABELS, MUTED_STYLE, _FIELD_WIDTH, _button_tips,
                     _error_label, _show_error, _start_worker, _tip)


# Column layouts of a CSV / Parquet file: (label, required keys, optional keys).
TABULAR_LAYOUTS = {
    "messages": ("A messages column (OpenAI chat, JSON)", ("messages",), ("tools", "metadata")),
    "conversations": ("A conversations column (ShareGPT, JSON)", ("conversations",), ("system", "tools", "metadata")),
    "prompt": ("Prompt and completion columns", ("prompt", "completion"), ("system", "metadata")),
    "instruction": ("Instruction / input / output columns (Alpaca)", ("instruction", "output"),
                    ("input", "system", "metadata")),
}
MAPPING_HELP = {
    "messages": "The column holding the messages list (JSON text, or a list in Parquet)",
    "conversations": "The column holding ShareGPT turns ({from, value} objects, as JSON)",
    "prompt": "The column with the user's prompt",
    "completion": "The column with the answer the model should learn",
    "system": "Optional: a column with the system prompt",
    "instruction": "The column with the instruction",
    "input": "Optional: a column with extra input for the instruction",
    "output": "The column with the answer the model should learn",
    "tools": "Optional: a column with the tool definitions (JSON list)",
    "metadata": "Optional: a column with a JSON object of metadata (other columns go to metadata too)",
}
MAX_PROBLEMS_SHOWN = 2000
_NO_COLUMN = "(none)"
DATASET_FILTER = "Datasets (*.jsonl *.json *.csv *.tsv *.parquet);;All files (*)"


def _layout_of(mapping: Optional[dict]) -> str:
    mapping = mapping or {}
    for key in ("messages", "conversations", "instruction"):
        if mapping.get(key):
            return key
    return "prompt"


class PreviewModel(RowsTableModel):
    """The first records of a file: record, line, roles, first user turn, answer (or the problem)."""

    COLUMNS = ("Record", "Line", "Roles", "First user turn", "Answer")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list[tasks.PreviewRow] = []

    @property
    def rows(self) -> list:
        return self._rows

    def set_rows(self, rows: list) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if col == 0:
                return str(row.index)
            if col == 1:
                return "" if row.line is None else str(row.line)
            if row.problem:
                return ("can't be imported", row.problem, "")[col - 2]
            return (row.roles, row.first_user, row.answer)[col - 2]
        if role == Qt.ItemDataRole.ForegroundRole and row.problem and col >= 2:
            return QColor("#e03131")
        if role == Qt.ItemDataRole.TextAlignmentRole and col < 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class ProblemsModel(RowsTableModel):
    """Validation problems: line, record, error key, message."""

    COLUMNS = ("Line", "Record", "Error", "Message")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._rows: list = []  # RecordError

    @property
    def errors(self) -> list:
        return self._rows

    def set_errors(self, errors: list) -> None:
        self.beginResetModel()
        self._rows = list(errors)
        self.endResetModel()

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        e = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return ("" if e.line is None else str(e.line), str(e.index), e.key, e.message)[index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() < 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def mixed_formats_note(report: ValidationReport) -> str:
    """A line for a file whose records are of several formats ("" when they are not)."""
    if not report.mixed_formats:
        return ""
    others = [(k, v) for k, v in sorted(report.format_votes.items(), key=lambda kv: -kv[1]) if k != report.format]
    what = ", ".join(f"{v:,} {FORMAT_LABELS.get(k, k)}" for k, v in others)
    return (f"Mixed formats: most records are {FORMAT_LABELS.get(report.format, report.format)}, which is how the "
            f"file is read; others look like another format ({what}, among the records checked) and can't be "
            "imported this way — choose their format above to read those instead.")


def _table(model: QAbstractTableModel, stretch: int) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setTabKeyNavigation(False)  # Tab moves on to the next field, not to the next cell
    view.setWordWrap(False)
    view.setAlternatingRowColors(True)
    view.verticalHeader().hide()
    view.setCornerButtonEnabled(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 8)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    for col in range(model.columnCount()):
        if col < stretch:
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
    return view


class ImportDialog(QDialog):
    """Choose how to import a dataset file: format, column mapping, held-out data.

    The preview (first :data:`~ftcurate.gui.tasks.PREVIEW_ROWS` records) and the validation of
    the whole file run in workers and follow every change of format or mapping;
    ``preview_ready(DatasetPreview)`` and ``validation_ready(ValidationReport)`` tell when they
    are shown. :meth:`import_options` is the answer, for :func:`tasks.open_dataset`.
    """

    preview_ready = Signal(object)
    validation_ready = Signal(object)

    def __init__(self, path: str, parent: Optional[QWidget] = None, interactive: bool = True) -> None:
        super().__init__(parent)
        self.path = os.path.abspath(path)
        self.interactive = interactive
        self.preview: Optional[tasks.DatasetPreview] = None
        self.report: Optional[ValidationReport] = None
        self._fmt = "auto"
        self._mapping: Optional[dict] = None  # CSV / Parquet: the columns chosen
        self._columns: list = []
        self._gen = 0
        self._workers: list[Worker] = []
        self._test_workers: list[Worker] = []  # checks of the test file (not stopped by a refresh)
        self.test_report: Optional[ValidationReport] = None  # the chosen test file, checked
        self._test_error = ""  # why the chosen test file can't be read
        self._test_checked = ""  # the test file (and how it is read) that test_report is about
        self._test_gen = 0
        self._test_timer = QTimer(self)
        self._test_timer.setSingleShot(True)
        self._test_timer.setInterval(250)  # after typing stops
        self._test_timer.timeout.connect(self.check_test_file)
        self._building = False
        self.setWindowTitle(f"Import {os.path.basename(self.path)}")
        lay = QVBoxLayout(self)

        # -- file and format
        top = QFormLayout()
        top.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        self.file_label = QLabel(self.path)
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_label.setToolTip(self.path)
        top.addRow("File:", self.file_label)
        fmt_row = QHBoxLayout()
        self.format_combo = QComboBox()
        for fmt in FORMAT_CHOICES:
            self.format_combo.addItem(FORMAT_LABELS.get(fmt, fmt), fmt)
        _tip(self.format_combo, "How to read the file: detected from its content, or forced here when the "
                                "detection is wrong")
        self.detected_label = QLabel("Reading…")
        self.detected_label.setStyleSheet(MUTED_STYLE)
        self.detected_label.setToolTip("The format found in the file")
        fmt_row.addWidget(self.format_combo)
        fmt_row.addWidget(self.detected_label, 1)
        fmt_label = QLabel("&Format:")
        fmt_label.setBuddy(self.format_combo)
        top.addRow(fmt_label, fmt_row)
        lay.addLayout(top)

        # -- column mapping (CSV / Parquet)
        self.mapping_box = QGroupBox("Columns")
        self.mapping_box.setToolTip("Which column of the file holds what")
        self.mapping_grid = QGridLayout(self.mapping_box)
        self.mapping_grid.setColumnStretch(1, 1)
        self.mapping_grid.setColumnStretch(3, 1)
        self.mapping_grid.setHorizontalSpacing(10)
        self.layout_combo = QComboBox()
        for key, (label, _req, _opt) in TABULAR_LAYOUTS.items():
            self.layout_combo.addItem(label, key)
        _tip(self.layout_combo, "What the columns hold: a whole conversation in one column, or one column per part")
        layout_label = QLabel("&Layout:")
        layout_label.setBuddy(self.layout_combo)
        self.mapping_grid.addWidget(layout_label, 0, 0)
        self.mapping_grid.addWidget(self.layout_combo, 0, 1, 1, 3)
        self.column_combos: dict[str, QComboBox] = {}
        self.column_labels: dict[str, QLabel] = {}
        for key in MAPPING_KEYS:
            combo = QComboBox()
            combo.setObjectName(f"map_{key}")
            combo.setMinimumWidth(_FIELD_WIDTH)
            _tip(combo, MAPPING_HELP.get(key, key))
            combo.currentIndexChanged.connect(self._mapping_changed)
            label = QLabel(f"{key.capitalize()}:")
            label.setBuddy(combo)
            label.setToolTip(MAPPING_HELP.get(key, key))
            self.column_combos[key] = combo
            self.column_labels[key] = label
        self.layout_combo.currentIndexChanged.connect(self._layout_changed)
        self.mapping_box.hide()
        lay.addWidget(self.mapping_box)

        # -- preview and problems
        self.tabs = QTabWidget()
        self.preview_model = PreviewModel(self)
        self.preview_view = _table(self.preview_model, 2)
        self.preview_view.setToolTip(f"The first {tasks.PREVIEW_ROWS} records as they will be imported")
        self.preview_view.setColumnWidth(2, 170)
        self.preview_view.setColumnWidth(3, 320)
        self.tabs.addTab(self.preview_view, "&Preview")
        self.problems_model = ProblemsModel(self)
        self.problems_view = _table(self.problems_model, 3)
        self.problems_view.setToolTip("Records that can't be imported (they are skipped); select one to see its "
                                      "text in the file")
        self.problems_view.selectionModel().currentRowChanged.connect(self._problem_selected)
        self.raw_label = QLabel("Select a problem to see the record as it is in the file.")
        self.raw_label.setStyleSheet(MUTED_STYLE)
        self.raw_view = QPlainTextEdit()
        self.raw_view.setReadOnly(True)
        self.raw_view.setToolTip("The record's raw text in the file (read-only)")
        self.raw_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        raw_box = QWidget()
        raw_lay = QVBoxLayout(raw_box)
        raw_lay.setContentsMargins(0, 4, 0, 0)
        raw_lay.addWidget(self.raw_label)
        raw_lay.addWidget(self.raw_view, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.problems_view)
        split.addWidget(raw_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        self.tabs.addTab(split, "P&roblems")
        lay.addWidget(self.tabs, 1)

        # -- held-out data
        held = QGroupBox("Held-out test data")
        held.setToolTip("Test data is kept out of training and export; the scan checks the training data "
                        "against it (leakage)")
        grid = QVBoxLayout(held)
        self.test_group = QButtonGroup(self)
        self.test_none = QRadioButton("&None")
        _tip(self.test_none, "No held-out data")
        row1 = QHBoxLayout()
        self.test_from_file = QRadioButton("&Test file:")
        _tip(self.test_from_file, "Import a separate file as the test split")
        self.test_edit = QLineEdit()
        self.test_edit.setPlaceholderText("a held-out dataset file")
        _tip(self.test_edit, "The held-out test file (read with this file's format and mapping when it has the "
                             "same extension, else detected)")
        self.test_browse = QPushButton("&Browse…")
        _tip(self.test_browse, "Choose the test file")
        self.test_browse.clicked.connect(self.browse_test_file)
        row1.addWidget(self.test_from_file)
        row1.addWidget(self.test_edit, 1)
        row1.addWidget(self.test_browse)
        row2 = QHBoxLayout()
        self.test_from_split = QRadioButton("&Split off")
        _tip(self.test_from_split, "Move a share of this file's records to the test split after the import")
        self.fraction_spin = QDoubleSpinBox()
        self.fraction_spin.setRange(0.5, 90.0)
        self.fraction_spin.setDecimals(1)
        self.fraction_spin.setSingleStep(5.0)
        self.fraction_spin.setValue(10.0)
        self.fraction_spin.setSuffix(" %")
        _tip(self.fraction_spin, "Share of the records moved to the test split (chosen by the seed; recorded "
                                 "in the decision log)")
        self.fraction_spin.setMinimumWidth(110)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setMinimumWidth(110)
        _tip(self.seed_spin, "Seed of the test choice: the same seed picks the same records again")
        seed_label = QLabel("of the records as test, s&eed:")
        seed_label.setBuddy(self.seed_spin)
        row2.addWidget(self.test_from_split)
        row2.addWidget(self.fraction_spin)
        row2.addWidget(seed_label)
        row2.addWidget(self.seed_spin)
        row2.addStretch(1)
        for i, b in enumerate((self.test_none, self.test_from_file, self.test_from_split)):
            self.test_group.addButton(b, i)
        self.test_none.setChecked(True)
        self.test_summary = QLabel()
        self.test_summary.setWordWrap(True)
        self.test_summary.setStyleSheet(MUTED_STYLE)
        self.test_summary.setToolTip("What the chosen test file holds, read the way the import will read it")
        self.test_summary.hide()
        grid.addWidget(self.test_none)
        grid.addLayout(row1)
        grid.addWidget(self.test_summary)
        grid.addLayout(row2)
        lay.addWidget(held)

        # -- status and buttons
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)
        self.error_label = _error_label()
        lay.addWidget(self.error_label)
        B = QDialogButtonBox.StandardButton
        self.buttons = QDialogButtonBox(B.Ok | B.Cancel)
        self.ok_button.setText("&Import")
        _button_tips(self.buttons, {B.Ok: "Import the file into a project with these options "
                                          "(records with problems are skipped and listed)",
                                    B.Cancel: "Close without importing"})
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)

        self.format_combo.currentIndexChanged.connect(self._format_changed)
        self.test_group.idToggled.connect(self._test_choice_changed)
        self.test_edit.textChanged.connect(self._test_choice_changed)
        self._update_ok()
        self.resize(900, 720)
        QTimer.singleShot(0, self.refresh)  # after the caller connected its signals

    @property
    def ok_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    # -- the answer -----------------------------------------------------------------------------------
    def import_options(self) -> tasks.ImportOptions:
        test_file = self.test_edit.text().strip() if self.test_from_file.isChecked() else ""
        fraction = round(self.fraction_spin.value() / 100.0, 4) if self.test_from_split.isChecked() else 0.0
        return tasks.ImportOptions(path=self.path, fmt=self._fmt,
                                   mapping=dict(self._mapping) if self._mapping else None,
                                   test_file=os.path.abspath(os.path.expanduser(test_file)) if test_file else None,
                                   test_fraction=fraction, seed=self.seed_spin.value())

    def set_format(self, fmt: str) -> None:
        self.format_combo.setCurrentIndex(self.format_combo.findData(fmt))

    def set_mapping(self, mapping: dict) -> None:
        """Choose columns (CSV / Parquet): ``{"prompt": "question", "completion": "answer"}``."""
        self._building = True
        try:
            self.layout_combo.setCurrentIndex(self.layout_combo.findData(_layout_of(mapping)))
            self._show_layout_rows()
            for key, combo in self.column_combos.items():
                col = mapping.get(key)
                combo.setCurrentIndex(max(0, combo.findText(col)) if col else 0)
        finally:
            self._building = False
        self._mapping_changed()

    def is_busy(self) -> bool:
        return any(w.is_running() for w in self._workers + self._test_workers)

    # -- preview and validation -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the preview with the current format and mapping (in a worker), then validate."""
        self._gen += 1
        self._stop_workers()
        self.preview = None
        self.report = None
        self.detected_label.setText("Reading…")
        self.status_label.setText("Reading the file…")
        self.problems_model.set_errors([])
        self.tabs.setTabText(1, "P&roblems")
        self.raw_view.clear()
        self._update_ok()
        mapping = self._mapping if self._columns else None
        self._test_choice_changed()  # the test file is read with this file's format and mapping
        worker = Worker(tasks.preview_dataset, self.path, self._fmt, mapping, title="Preview")
        worker.finished.connect(lambda p, g=self._gen: self._on_preview(p, g))
        worker.failed.connect(lambda m, d, g=self._gen: self._on_worker_failed(m, g))
        self._run(worker)

    def _run(self, worker: Worker, test: bool = False) -> None:
        if test:
            self._test_workers = [w for w in self._test_workers if w.is_running()] + [worker]
        else:
            self._workers = [w for w in self._workers if w.is_running()] + [worker]
        worker.ended.connect(self._update_ok)
        _start_worker(worker)

    def _stop_workers(self, test: bool = False) -> None:
        for w in (self._test_workers if test else self._workers):
            w.cancel()

    def _on_worker_failed(self, message: str, gen: int) -> None:
        if gen == self._gen:
            _show_error(self.error_label, message)
            self.status_label.setText("")

    def _on_preview(self, preview: tasks.DatasetPreview, gen: int) -> None:
        if gen != self._gen:
            return  # the options changed meanwhile
        self.preview = preview
        self.preview_model.set_rows(preview.rows)
        if preview.tabular:
            self._show_mapping(preview)
        else:
            self.mapping_box.hide()
            self._columns, self._mapping = [], None
        if not preview.ok:
            self.detected_label.setText(CONTAINER_LABELS.get(preview.container, "") or "Not readable")
            self.status_label.setText("")
            self.preview_ready.emit(preview)
            self._update_ok()
            return
        kind = CONTAINER_LABELS.get(preview.container, preview.container)
        what = FORMAT_LABELS.get(preview.format, preview.format)
        if preview.tabular:
            layout = TABULAR_LAYOUTS[_layout_of(preview.mapping)][0]
            self.detected_label.setText(f"{kind}, {len(preview.columns)} columns: {layout[0].lower()}{layout[1:]}")
        else:
            self.detected_label.setText(f"{'Detected' if self._fmt == 'auto' else 'Read as'}: {what}, {kind}")
        self.status_label.setText(f"Showing the first {len(preview.rows)} records; checking the whole file…")
        self.preview_ready.emit(preview)
        worker = Worker(validate_path, self.path, self._fmt, preview.mapping if preview.tabular else self._mapping,
                        title="Validating")
        worker.finished.connect(lambda r, g=gen: self._on_validated(r, g))
        worker.failed.connect(lambda m, d, g=gen: self._on_worker_failed(m, g))
        worker.progress.connect(lambda done, total, msg, g=gen: self._on_validate_progress(done, g))
        self._run(worker)
        self._update_ok()

    def _on_validate_progress(self, done: int, gen: int) -> None:
        if gen == self._gen and done:
            self.status_label.setText(f"Showing the first {len(self.preview.rows) if self.preview else 0} records; "
                                      f"checked {done:,} records so far…")

    def _on_validated(self, report: ValidationReport, gen: int) -> None:
        if gen != self._gen:
            return
        self.report = report
        shown = report.errors[:MAX_PROBLEMS_SHOWN]
        self.problems_model.set_errors(shown)
        self.tabs.setTabText(1, f"P&roblems ({report.rejected:,})" if report.rejected else "P&roblems")
        text = f"{report.records:,} records: <b>{report.loaded:,}</b> can be imported"
        if report.rejected:
            # Records, not problems: one record may have several (OpenAI counts per message).
            counts = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(
                report.rejected_by_key.items(), key=lambda kv: (-kv[1], kv[0])))
            text += (f", <span style='{ERROR_STYLE}'>{report.rejected:,} with problems</span> will be "
                     f"skipped (records with {counts}) — see Problems")
            total = sum(report.error_counts.values())
            if len(shown) < total:
                text += f" (the first {len(shown):,} of {total:,} problems are listed)"
        warn = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report.warnings.items() if v)
        if warn:
            text += f". Warnings: {warn}"
        text += "."
        mixed = mixed_formats_note(report)
        if mixed:
            text += f"<br><span style='{ERROR_STYLE}'>{mixed}</span>"
        self.status_label.setText(text)
        self.validation_ready.emit(report)
        self._update_ok()

    def _problem_selected(self, current: QModelIndex, _previous: QModelIndex = QModelIndex()) -> None:
        if not current.isValid() or self.preview is None:
            return
        self.show_problem(current.row())

    def show_problem(self, row: int) -> None:
        """Show the raw text of problem ``row`` in the read-only box."""
        e = self.problems_model.errors[row]
        where = f"Line {e.line}" if e.line is not None else f"Record {e.index}"
        self.raw_label.setText(f"{where} (record {e.index}): {e.key} — {e.message}")
        try:
            text = tasks.raw_record_text(self.path, self.preview.container if self.preview else "", e.line, e.index)
        except (OSError, ValueError) as exc:
            text = f"(cannot read the file: {exc})"
        self.raw_view.setPlainText(text)

    # -- format and mapping ------------------------------------------------------------------------------
    def _format_changed(self) -> None:
        self._fmt = self.format_combo.currentData() or "auto"
        self._columns, self._mapping = [], None  # detect the mapping again
        self.refresh()

    def _show_mapping(self, preview: tasks.DatasetPreview) -> None:
        """Fill the column combos for this file's columns (once per set of columns)."""
        if preview.columns == self._columns:
            return
        self._building = True
        try:
            self._columns = list(preview.columns)
            for combo in self.column_combos.values():
                combo.clear()
                combo.addItem(_NO_COLUMN, "")
                for col in self._columns:
                    combo.addItem(col, col)
            mapping = preview.mapping or {}
            self.layout_combo.setCurrentIndex(self.layout_combo.findData(_layout_of(mapping)))
            self._show_layout_rows()
            for key, combo in self.column_combos.items():
                col = mapping.get(key)
                combo.setCurrentIndex(max(0, combo.findData(col)) if col else 0)
            self._mapping = dict(mapping) if mapping else None
        finally:
            self._building = False
        self.mapping_box.show()

    def _show_layout_rows(self) -> None:
        """Show the column choices of the current layout, two a row, required ones first."""
        _label, required, optional = TABULAR_LAYOUTS[self.layout_combo.currentData()]
        shown = list(required + optional)
        for key, combo in self.column_combos.items():
            label = self.column_labels[key]
            self.mapping_grid.removeWidget(label)
            self.mapping_grid.removeWidget(combo)
            label.setVisible(key in shown)
            combo.setVisible(key in shown)
        for i, key in enumerate(shown):
            row, col = 1 + i // 2, (i % 2) * 2
            self.mapping_grid.addWidget(self.column_labels[key], row, col)
            self.mapping_grid.addWidget(self.column_combos[key], row, col + 1)

    def _layout_changed(self) -> None:
        if self._building:
            return
        self._show_layout_rows()
        self._mapping_changed()

    def _chosen_mapping(self) -> tuple[dict, list[str]]:
        """(mapping from the visible combos, required keys without a column)."""
        _label, required, optional = TABULAR_LAYOUTS[self.layout_combo.currentData()]
        mapping = {k: self.column_combos[k].currentData() for k in required + optional
                   if self.column_combos[k].currentData()}
        return mapping, [k for k in required if k not in mapping]

    def _mapping_changed(self, *_args) -> None:
        if self._building or not self._columns:
            return
        mapping, missing = self._chosen_mapping()
        if missing:
            self._mapping = mapping  # incomplete: nothing to read yet
            self._gen += 1  # drop results of the previous mapping
            self._stop_workers()
            self.preview = None
            self.preview_model.set_rows([])
            self.status_label.setText("")
            _show_error(self.error_label, "Choose the " + " and ".join(missing) + " column"
                        + ("s" if len(missing) > 1 else "") + ".")
            self.ok_button.setEnabled(False)
            return
        if mapping != self._mapping:
            self._mapping = mapping
            self.refresh()

    # -- held-out data --------------------------------------------------------------------------------------
    def browse_test_file(self) -> None:
        if not self.interactive:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Held-out test file", os.path.dirname(self.path),
                                              DATASET_FILTER)
        if path:
            self.test_edit.setText(path)
            self.test_from_file.setChecked(True)

    def set_test_file(self, path: str) -> None:
        self.test_edit.setText(path)
        self.test_from_file.setChecked(True)

    def set_test_fraction(self, fraction: float, seed: int = 0) -> None:
        self.fraction_spin.setValue(fraction * 100.0)
        self.seed_spin.setValue(seed)
        self.test_from_split.setChecked(True)

    def _chosen_test_file(self) -> str:
        """The test file to check ("" when none is chosen, or it can't be one)."""
        if not self.test_from_file.isChecked():
            return ""
        test = self.test_edit.text().strip()
        if not test:
            return ""
        test = os.path.abspath(os.path.expanduser(test))
        return test if os.path.isfile(test) and test != self.path else ""

    def _test_reading(self, test: str) -> tuple[str, Optional[dict]]:
        return heldout_reading(self.path, test, self._fmt, dict(self._mapping) if self._mapping else None)

    def _test_choice_changed(self, *_args) -> None:
        """The test choice changed: forget the old check, check the new file shortly."""
        test = self._chosen_test_file()
        key = repr((test, self._test_reading(test))) if test else ""
        if key != self._test_checked:
            self._stop_workers(test=True)
            self._test_gen += 1
            self.test_report, self._test_error, self._test_checked = None, "", ""
            self.test_summary.hide()
            if test:
                self._test_timer.start()
        self._update_ok()

    def check_test_file(self) -> None:
        """Validate the chosen test file (in a worker), as the import will read it."""
        test = self._chosen_test_file()
        if not test:
            return
        fmt, mapping = self._test_reading(test)
        self._test_gen += 1
        gen = self._test_gen
        self._test_checked = repr((test, (fmt, mapping)))
        self.test_report, self._test_error = None, ""
        self.test_summary.setStyleSheet(MUTED_STYLE)
        self.test_summary.setText(f"Checking {os.path.basename(test)}…")
        self.test_summary.show()
        worker = Worker(validate_path, test, fmt, mapping, title="Checking the test file")
        worker.finished.connect(lambda r, g=gen: self._on_test_checked(r, g))
        worker.failed.connect(lambda m, d, g=gen: self._on_test_failed(m, g))
        self._run(worker, test=True)
        self._update_ok()

    def _on_test_checked(self, report: ValidationReport, gen: int) -> None:
        if gen != self._test_gen:
            return
        self.test_report = report
        kind = CONTAINER_LABELS.get(report.container, report.container)
        what = FORMAT_LABELS.get(report.format, report.format)
        text = f"Test file: {report.records:,} records ({what}, {kind}): <b>{report.loaded:,}</b> can be imported"
        if report.rejected:
            counts = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in sorted(
                report.rejected_by_key.items(), key=lambda kv: (-kv[1], kv[0])))
            text += f", {report.rejected:,} with problems will be skipped (records with {counts})"
        mixed = mixed_formats_note(report)
        self.test_summary.setStyleSheet(ERROR_STYLE if report.loaded == 0 or mixed else MUTED_STYLE)
        self.test_summary.setText(text + "." + (f" {mixed}" if mixed else ""))
        self.test_summary.show()
        self._update_ok()

    def _on_test_failed(self, message: str, gen: int) -> None:
        if gen != self._test_gen:
            return
        self._test_error = f"The test file can't be read: {message}"
        self.test_summary.setStyleSheet(ERROR_STYLE)
        self.test_summary.setText(self._test_error)
        self.test_summary.show()
        self._update_ok()

    def test_file_pending(self) -> bool:
        """A test file is chosen whose check has not finished."""
        return bool(self._chosen_test_file()) and self.test_report is None and not self._test_error

    # -- state ------------------------------------------------------------------------------------------------
    def problem(self) -> str:
        """Why the import can't go ahead ("" when it can)."""
        if self.preview is None:
            return ""  # still reading (or a mapping column is missing, shown already)
        if not self.preview.ok:
            if self.preview.error_key == "no_mapping":
                return "Choose which columns hold what (above)."
            return self.preview.error
        if self.test_from_file.isChecked():
            test = self.test_edit.text().strip()
            if not test:
                return "Choose the test file, or another held-out option."
            test = os.path.abspath(os.path.expanduser(test))
            if not os.path.isfile(test):
                return f"{test}: no such file."
            if test == self.path:
                return "The test file is the file being imported: choose another one."
            if self._test_error:
                return self._test_error
            if self.test_report is not None and self.test_report.loaded == 0:
                return "No record of the test file can be imported (see above)."
        if self.report is not None and self.report.loaded == 0:
            return "No record of this file can be imported with these options."
        return ""

    def _update_ok(self, *_args) -> None:
        self.test_edit.setEnabled(self.test_from_file.isChecked())
        self.test_browse.setEnabled(self.test_from_file.isChecked())
        self.fraction_spin.setEnabled(self.test_from_split.isChecked())
        self.seed_spin.setEnabled(self.test_from_split.isChecked())
        if self.preview is None and self._columns and self._chosen_mapping()[1]:
            return  # the missing-column message stays
        problem = self.problem()
        _show_error(self.error_label, problem)
        self.ok_button.setEnabled(self.preview is not None and not problem and not self.test_file_pending())

    def accept(self) -> None:
        self._update_ok()
        if self.ok_button.isEnabled():
            self._stop_workers()  # the import validates again anyway
            self._stop_workers(test=True)
            super().accept()

    def reject(self) -> None:
        self._stop_workers()
        self._stop_workers(test=True)
        super().reject()
