"""Export dialog.

:class:`ExportDialog` runs :func:`~ftcurate.core.io.export.export_project` (through
:func:`~ftcurate.gui.tasks.export_dataset`, as the CLI's ``export``) in a
:class:`~ftcurate.gui.workers.Worker`, with progress and cancel, and shows the files written.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from PySide6.QtCore import QSettings, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton,
                               QSpinBox, QVBoxLayout, QWidget)

from ...core.io.export import EXTENSIONS
from ...core.io.formats import FORMATS
from ...core.io.ingest import INCLUDE_CHOICES
from .. import tasks
from ..workers import Worker
from .common import FORMAT_LABELS, MUTED_STYLE, _FIELD_WIDTH, _error_label, _show_error, _start_worker, _tip


EXPORT_FORMAT_KEY = "export/format"
EXPORT_FOLDER_KEY = "export/folder"
EXPORT_INCLUDE_KEY = "export/include"
EXPORT_VAL_KEY = "export/val_fraction"
EXPORT_SEED_KEY = "export/seed"

INCLUDE_LABELS = {
    "approved": ("Approved only", "Records approved (or edited) in review; unreviewed ones are left out"),
    "not-rejected": ("Everything not rejected", "Approved, edited and unreviewed records; only rejected ones "
                                                "are left out"),
    "all": ("All records", "Every training record, rejected ones included"),
}


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _setting(qs: Optional[QSettings], key: str, default: Any, kind: type = str) -> Any:
    if qs is None:
        return default
    value = qs.value(key, default)
    try:
        return kind(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


class ExportDialog(QDialog):
    """Export the project's curated records: data file, dataset card and decision log.

    The export runs in a :class:`Worker` (progress bar and Cancel in the dialog); the dialog
    stays open and lists the files written. Signals, for the window and for tests:
    ``export_finished(ExportSummary)``, ``export_failed(message, details)``,
    ``export_cancelled()``.
    """

    export_finished = Signal(object)
    export_failed = Signal(str, str)
    export_cancelled = Signal()

    def __init__(self, project, settings: Optional[QSettings] = None, parent: Optional[QWidget] = None,
                 interactive: bool = True) -> None:
        super().__init__(parent)
        self.project = project
        self.qsettings = settings
        self.interactive = interactive
        self.worker: Optional[Worker] = None
        self.summary: Optional[tasks.ExportSummary] = None
        self._close_when_done = False
        self._outcome = ""  # how the last export failed or stopped, shown until the next one
        self._counts = {"train": 0, "validation": 0}
        self.setWindowTitle("Export curated dataset")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        lay.addLayout(form)

        self.format_combo = QComboBox()
        for fmt in FORMATS:
            self.format_combo.addItem(f"{FORMAT_LABELS[fmt]} — {EXTENSIONS[fmt]}", fmt)
        _tip(self.format_combo, "The file format to write. JSON formats with a .json name are written as a JSON "
                                "array, else as JSON Lines; CSV and Parquet hold the messages as JSON in a "
                                "'messages' column")
        form.addRow("&Format:", self.format_combo)

        self.include_combo = QComboBox()
        for i, key in enumerate(INCLUDE_CHOICES):
            label, tip = INCLUDE_LABELS.get(key, (key, key))
            self.include_combo.addItem(label, key)
            self.include_combo.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        _tip(self.include_combo, "Which training records to write (edits made in review are applied; the test "
                                 "split is never exported)")
        form.addRow("&Records:", self.include_combo)
        self.include_combo.setMinimumWidth(self.format_combo.sizeHint().width())

        split_row = QHBoxLayout()
        self.val_spin = QDoubleSpinBox()
        self.val_spin.setRange(0.0, 90.0)
        self.val_spin.setDecimals(1)
        self.val_spin.setSingleStep(5.0)
        self.val_spin.setSuffix(" %")
        self.val_spin.setSpecialValueText("none")
        _tip(self.val_spin, "Share of the exported training records written to a separate validation file "
                            "(<name>.validation<ext>), chosen deterministically by the seed; 'none' for no "
                            "validation file (records already in the validation split still get one)")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        _tip(self.seed_spin, "Seed of the validation choice: the same seed picks the same records again")
        seed_label = QLabel("see&d:")
        seed_label.setBuddy(self.seed_spin)
        self.val_spin.setMinimumWidth(_FIELD_WIDTH)
        self.seed_spin.setMinimumWidth(_FIELD_WIDTH)
        split_row.addWidget(self.val_spin)
        split_row.addSpacing(12)
        split_row.addWidget(seed_label)
        split_row.addWidget(self.seed_spin)
        split_row.addStretch(1)
        val_label = QLabel("&Validation split:")
        val_label.setBuddy(self.val_spin)
        form.addRow(val_label, split_row)

        dest_row = QHBoxLayout()
        self.dest_edit = QLineEdit()
        _tip(self.dest_edit, "The data file to write; the dataset card (<name>.card.md) and the decision log "
                             "(<name>.decisions.csv) go beside it")
        self.browse_button = QPushButton("&Browse…")
        _tip(self.browse_button, "Choose where to save the export")
        self.browse_button.setAutoDefault(False)  # Enter exports
        self.browse_button.clicked.connect(self.browse)
        dest_row.addWidget(self.dest_edit, 1)
        dest_row.addWidget(self.browse_button)
        dest_label = QLabel("&Save as:")
        dest_label.setBuddy(self.dest_edit)
        form.addRow(dest_label, dest_row)

        self.count_label = QLabel()
        self.count_label.setWordWrap(True)
        lay.addWidget(self.count_label)
        self.files_label = QLabel()
        self.files_label.setWordWrap(True)
        self.files_label.setStyleSheet(MUTED_STYLE)
        lay.addWidget(self.files_label)

        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress_label = QLabel()
        progress_row.addWidget(self.progress_label)
        progress_row.addWidget(self.progress, 1)
        self.progress_box = QWidget()
        self.progress_box.setLayout(progress_row)
        progress_row.setContentsMargins(0, 0, 0, 0)
        self.progress_box.hide()
        lay.addWidget(self.progress_box)

        self.error_label = _error_label()
        lay.addWidget(self.error_label)
        self.result_view = QPlainTextEdit()
        self.result_view.setReadOnly(True)
        self.result_view.setToolTip("What was written")
        self.result_view.setMaximumHeight(self.fontMetrics().lineSpacing() * 8)
        self.result_view.hide()
        lay.addWidget(self.result_view)
        lay.addStretch(1)

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("&Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setToolTip("Write the files (in the background; Cancel stops it)")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.open_folder_button = self.buttons.addButton("&Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_folder_button.setToolTip("Show the exported files in the file manager")
        self.open_folder_button.clicked.connect(self.open_folder)
        self.open_folder_button.hide()
        self.cancel_button = self.buttons.addButton("Cancel e&xport", QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button.setToolTip("Stop the export; files already there are left as they were")
        self.cancel_button.clicked.connect(self.cancel_export)
        self.cancel_button.hide()
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.setToolTip("Close this dialog (stops an export that is running)")
        self.close_button.setAutoDefault(False)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)

        self._restore()
        self.format_combo.currentIndexChanged.connect(self._format_changed)
        self.include_combo.currentIndexChanged.connect(self._recount)
        self.val_spin.valueChanged.connect(self._recount)
        self.dest_edit.textChanged.connect(self._update)
        self._recount()
        self.resize(640, 340)

    # -- options -----------------------------------------------------------------------------------
    def _restore(self) -> None:
        qs = self.qsettings
        fmt = _setting(qs, EXPORT_FORMAT_KEY, "openai-chat")
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(fmt)))
        include = _setting(qs, EXPORT_INCLUDE_KEY, "approved")
        self.include_combo.setCurrentIndex(max(0, self.include_combo.findData(include)))
        self.val_spin.setValue(_setting(qs, EXPORT_VAL_KEY, 0.0, float) * 100)
        self.seed_spin.setValue(_setting(qs, EXPORT_SEED_KEY, 0, int))
        folder = _setting(qs, EXPORT_FOLDER_KEY, "")
        self.dest_edit.setText(tasks.default_export_path(self.project, self.fmt, folder or None))

    def _remember(self, options: tasks.ExportOptions) -> None:
        qs = self.qsettings
        if qs is None:
            return
        qs.setValue(EXPORT_FORMAT_KEY, options.fmt)
        qs.setValue(EXPORT_INCLUDE_KEY, options.include)
        qs.setValue(EXPORT_VAL_KEY, options.val_fraction)
        qs.setValue(EXPORT_SEED_KEY, options.seed)
        qs.setValue(EXPORT_FOLDER_KEY, os.path.dirname(options.out))

    @property
    def fmt(self) -> str:
        return self.format_combo.currentData()

    def export_options(self) -> tasks.ExportOptions:
        text = self.dest_edit.text().strip()
        out = os.path.abspath(os.path.expanduser(text)) if text else ""
        return tasks.ExportOptions(out=out, fmt=self.fmt, include=self.include_combo.currentData(),
                                   val_fraction=round(self.val_spin.value() / 100.0, 4), seed=self.seed_spin.value())

    def set_destination(self, path: str) -> None:
        self.dest_edit.setText(path)

    def problem(self) -> str:
        """Why the export can't start now ("" when it can)."""
        out = self.export_options().out
        if not out:
            return "Choose where to save the export."
        if os.path.isdir(out):
            return f"{out} is a folder: give a file name."
        if not os.path.isdir(os.path.dirname(out)):
            return f"The folder {os.path.dirname(out)} does not exist."
        return ""

    # -- reactions -------------------------------------------------------------------------------------
    def _format_changed(self) -> None:
        """Keep the destination's extension in step with the format."""
        text = self.dest_edit.text().strip()
        if text:
            root, ext = os.path.splitext(text)
            if ext.lower() in set(EXTENSIONS.values()) | {".tsv"}:
                self.dest_edit.setText(root + EXTENSIONS[self.fmt])
        self._update()

    def _recount(self, *_args) -> None:
        """Count what the selection writes (a few store queries; not on every keystroke)."""
        opts = self.export_options()
        self.seed_spin.setEnabled(opts.val_fraction > 0 and not self.is_running())
        try:
            counts = tasks.export_counts(self.project, opts.include, opts.val_fraction)
        except Exception as exc:  # noqa: BLE001 - a closed or broken project: say so
            self.count_label.setText(f"Cannot count the records: {exc}")
            counts = {"train": 0, "validation": 0}
        else:
            text = f"<b>{counts['train']:,}</b> training record{_s(counts['train'])}"
            if counts["validation"]:
                text += f" and <b>{counts['validation']:,}</b> validation record{_s(counts['validation'])}"
            text += " will be written."
            if counts["train"] + counts["validation"] == 0:
                text += " Nothing is selected: approve records first, or choose another selection."
            self.count_label.setText(text)
        self._counts = counts
        self._update()

    def _update(self, *_args) -> None:
        """The side files and the destination's problem, after any change."""
        opts = self.export_options()
        counts = self._counts
        if opts.out:
            root = os.path.splitext(os.path.basename(opts.out))[0]
            extra = [f"{root}.card.md (dataset card)", f"{root}.decisions.csv (decision log)"]
            if counts["validation"]:
                extra.insert(0, f"{root}.validation{os.path.splitext(opts.out)[1] or EXTENSIONS[opts.fmt]}")
            self.files_label.setText("Also written beside it: " + ", ".join(extra) + ".")
        else:
            self.files_label.setText("")
        _show_error(self.error_label, self.problem() or self._outcome)
        # enabled even with a problem: the folder may be made meanwhile; a click checks again
        self.export_button.setEnabled(bool(opts.out) and not self.is_running())

    def browse(self) -> None:
        if not self.interactive:
            return
        fmt = self.fmt
        ext = EXTENSIONS[fmt]
        path, _ = QFileDialog.getSaveFileName(self, "Export to", self.dest_edit.text(),
                                              f"{FORMAT_LABELS[fmt]} (*{ext});;All files (*)")
        if path:
            if not os.path.splitext(path)[1]:
                path += ext
            self.dest_edit.setText(path)

    def open_folder(self) -> None:
        if self.summary is not None and self.summary.path:
            QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(self.summary.path)))

    # -- running -------------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def start_export(self) -> Optional[Worker]:
        """Start the export in a worker (after asking before overwriting, when interactive)."""
        if self.is_running():
            return None
        problem = self.problem()
        if problem:
            _show_error(self.error_label, problem)
            return None
        options = self.export_options()
        if self.interactive and os.path.exists(options.out):
            answer = QMessageBox.question(self, "Replace the file?",
                                          f"{options.out} exists. Replace it (and its card and decision log)?")
            if answer != QMessageBox.StandardButton.Yes:
                return None
        self._remember(options)
        self.summary = None
        self.result_view.hide()
        self.open_folder_button.hide()
        self._outcome = ""
        _show_error(self.error_label, "")
        worker = Worker(tasks.export_dataset, self.project, options, title="Exporting")
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.ended.connect(self._on_ended)
        self.worker = worker
        self._set_running(True)
        self.progress_label.setText("Exporting…")
        self.progress.setRange(0, 0)
        return _start_worker(worker)

    def cancel_export(self) -> None:
        if self.is_running():
            self.worker.cancel()
            self.progress_label.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    def _set_running(self, on: bool) -> None:
        for w in (self.format_combo, self.include_combo, self.val_spin, self.seed_spin, self.dest_edit,
                  self.browse_button):
            w.setEnabled(not on)
        if not on:
            self.seed_spin.setEnabled(self.val_spin.value() > 0)
        self.progress_box.setVisible(on)
        self.cancel_button.setVisible(on)
        self.cancel_button.setEnabled(on)
        self.export_button.setEnabled(not on)

    def _on_progress(self, done: int, total: int, message: str) -> None:
        self.progress_label.setText((message or "Exporting").capitalize() + (f" {done:,}" if done else ""))
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
        else:
            self.progress.setRange(0, 0)

    def _on_finished(self, summary: tasks.ExportSummary) -> None:
        self.summary = summary
        res = summary.result
        lines = [f"Exported {summary.written:,} records."]
        for split, path in res.files.items():
            lines.append(f"{split} ({res.counts.get(split, 0):,} records): {path}")
        lines += [f"dataset card: {res.card}", f"decision log: {res.log}"]
        if res.skipped:
            lines.append(f"{len(res.skipped):,} records were skipped: the format cannot hold them "
                         f"(first: {res.skipped[0][2]}).")
        self.result_view.setPlainText("\n".join(lines))
        self.result_view.show()
        self.open_folder_button.show()
        self.close_button.setDefault(True)
        self.export_finished.emit(summary)

    def _on_failed(self, message: str, details: str) -> None:
        self._outcome = f"The export failed: {message}"
        _show_error(self.error_label, self._outcome)
        self.export_failed.emit(message, details)

    def _on_cancelled(self) -> None:
        self._outcome = "Export cancelled; files already there were left as they were."
        _show_error(self.error_label, self._outcome)
        self.export_cancelled.emit()

    def _on_ended(self) -> None:
        self.worker = None
        self._set_running(False)
        self._recount()  # a review may have changed meanwhile (the dialog is not modal in tests)
        if self._close_when_done:
            super().reject()

    def reject(self) -> None:
        """Close; a running export is cancelled first (the dialog closes when it has stopped)."""
        if self.is_running():
            self._close_when_done = True
            self.cancel_export()
            return
        super().reject()


# ==================================================================================================
