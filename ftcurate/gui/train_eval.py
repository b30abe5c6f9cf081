"""The Evaluate tab of the training window: the base model against base + adapter on
held-out data (loss, perplexity and answers side by side), and merging an adapter into its
base model.

:class:`EvaluatePanel` works on one run at a time, the one the training view hands it with
:meth:`EvaluatePanel.set_run` (the selected past run, else this session's last run). The
evaluation runs :func:`ftcurate.train.evaluate.evaluate` (or an injected evaluator with the
same signature) in a worker and saves the report in the run folder.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any, Callable, Optional

from PySide6.QtCore import QEvent, QSettings, Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..core.io.ingest import iter_selected
from ..core.progress import Cancelled
from ..core.project.store import Project
from ..train.evaluate import REPORT_FILE, evaluate, merge_adapter, save_report
from ..train.runfiles import run_model_dir
from . import settings as appsettings
from . import theme
from .train_common import DATASET_FILTER, WorkerPool, has_adapter, num, status_line, wrap_label
from .wheel_guard import guard_wheel
from .workers import Worker

# -- worker jobs (run in a worker thread; they touch no widget) --------------------------------------


def _evaluate_job(evaluator: Callable, model_dir: str, source: tuple, adapter_dir: str, max_new_tokens: int,
                  num_generations: int, progress=None, cancel=None, on_partial=None) -> dict:
    """Evaluate base vs base + adapter and save the report beside the adapter
    (``on_partial``: the report so far, after each loss and each generation).

    ``source``: ("file", path) or ("project", (project path, split)): the test split (every
    record: the golden held-out set) or the validation split (records not rejected)."""
    kind, value = source
    if kind == "file":
        data: Any = value
    else:
        path, split = value
        with Project.open(path, readonly=True) as project:
            include = "all" if split == "test" else "not-rejected"
            data = [sr.record for sr in iter_selected(project, include, split=split)]
        if not data:
            raise ValueError(f"The project has no {split} records to evaluate on: choose a held-out file.")
    report = evaluator(model_dir, data, adapter_dir=adapter_dir, max_new_tokens=max_new_tokens,
                       num_generations=num_generations, progress=progress, cancel=cancel, on_partial=on_partial)
    if cancel is not None and cancel():
        raise Cancelled("evaluation cancelled")
    save_report(report, adapter_dir)
    return report


def _merge_job(merger: Callable, model_dir: str, adapter_dir: str, out_dir: str, progress=None,
               cancel=None) -> str:  # noqa: ARG001
    if progress is not None:
        progress(0, 0, "merging the adapter")
    return merger(model_dir, adapter_dir, out_dir)


def read_report(run: str) -> Optional[dict]:
    """The run's saved evaluation report, or None."""
    try:
        with open(os.path.join(run, REPORT_FILE), encoding="utf-8") as f:
            report = json.load(f)
        return report if isinstance(report, dict) else None
    except (OSError, ValueError):
        return None


class EvaluatePanel(QWidget):
    """Base vs tuned on held-out data, for the run given by :meth:`set_run`.

    ``default_model_dir`` gives the base model to use when a run does not name its own."""

    evaluation_finished = Signal(dict)  # the report (also saved in the run folder)
    partial_shown = Signal(dict)  # results so far of the evaluation under way, as shown
    merge_finished = Signal(str)  # the folder of the merged model
    error_reported = Signal(str, str, str)  # title, message, details
    log = Signal(str)

    def __init__(self, settings: QSettings, pool: WorkerPool, default_model_dir: Callable[[], str],
                 evaluator: Optional[Callable] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.pool = pool
        self.default_model_dir = default_model_dir
        self.evaluator: Callable = evaluator or evaluate
        self.merger: Callable = merge_adapter
        self.project_path: Optional[str] = None
        self.run: Optional[str] = None  # the run evaluated or merged by the buttons
        self.adapter_ready = False  # the run has an adapter that is not being trained right now
        self.last_report: Optional[dict] = None
        self._eval_worker: Optional[Worker] = None
        self._eval_run: Optional[str] = None  # the run being evaluated
        self._merge_worker: Optional[Worker] = None
        self._shown: Optional[dict] = None  # the report on show (partial while evaluating)
        self._progress_text = ""
        self._build()
        guard_wheel(self)
        self._update_buttons()

    def _build(self) -> None:
        v = QVBoxLayout(self)
        v.setContentsMargins(6, 6, 6, 6)
        self.eval_run_label = wrap_label()
        v.addWidget(self.eval_run_label)
        row = QHBoxLayout()
        row.addWidget(QLabel("Held-out data"))
        self.eval_source_combo = QComboBox()
        self.eval_source_combo.addItem("Project test split", ("project", "test"))
        self.eval_source_combo.addItem("Project validation split", ("project", "validation"))
        self.eval_source_combo.addItem("File…", ("file", ""))
        self.eval_source_combo.setToolTip("Records the base model and the tuned model are compared on; never "
                                          "ones the adapter was trained on")
        self.eval_source_combo.currentIndexChanged.connect(self._update_buttons)
        self.heldout_edit = QLineEdit()
        self.heldout_edit.setPlaceholderText("held-out dataset file")
        self.heldout_edit.textChanged.connect(self._on_heldout_text)
        self.heldout_browse = QPushButton("Browse…")
        self.heldout_browse.clicked.connect(self.choose_heldout_file)
        row.addWidget(self.eval_source_combo)
        row.addWidget(self.heldout_edit, 1)
        row.addWidget(self.heldout_browse)
        v.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Generations"))
        self.num_gen_spin = QSpinBox()
        self.num_gen_spin.setRange(0, 100)
        self.num_gen_spin.setValue(5)
        self.num_gen_spin.setToolTip("How many held-out prompts both models answer (greedy decoding)")
        row.addWidget(self.num_gen_spin)
        row.addWidget(QLabel("Max new tokens"))
        self.max_new_spin = QSpinBox()
        self.max_new_spin.setRange(1, 8192)
        self.max_new_spin.setValue(64)
        self.max_new_spin.setToolTip("Length limit of each generated answer")
        row.addWidget(self.max_new_spin)
        row.addStretch(1)
        v.addLayout(row)
        row = QHBoxLayout()  # the buttons on a line of their own: the tab fits a 1024-pixel window
        self.eval_button = QPushButton("Evaluate")
        self.eval_button.setToolTip("Loss, perplexity and sample answers of the base model and base + adapter "
                                    "(saved in the run folder as eval_report.json)")
        self.eval_button.clicked.connect(self._on_evaluate_clicked)
        self.eval_cancel_button = QPushButton("Cancel")
        self.eval_cancel_button.clicked.connect(self.cancel_evaluation)
        self.merge_button = QPushButton("Merge adapter and save…")
        self.merge_button.setToolTip("Fold the adapter into the base weights and save a standalone model folder")
        self.merge_button.clicked.connect(self.choose_merge_dir)
        row.addWidget(self.eval_button)
        row.addWidget(self.eval_cancel_button)
        row.addStretch(1)
        row.addWidget(self.merge_button)
        v.addLayout(row)
        self.eval_status = wrap_label()
        v.addWidget(self.eval_status)

        self.metrics_table = QTableWidget(2, 3)
        self.metrics_table.setHorizontalHeaderLabels(["Base", "Tuned", "Change"])
        self.metrics_table.setVerticalHeaderLabels(["Loss", "Perplexity"])
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics_table.setTabKeyNavigation(False)  # Tab moves on to the next widget (arrows between cells)
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.metrics_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.metrics_table.setFixedHeight(self.metrics_table.horizontalHeader().sizeHint().height()
                                          + 2 * self.metrics_table.verticalHeader().defaultSectionSize()
                                          + 2 * self.metrics_table.frameWidth())
        v.addWidget(self.metrics_table)
        self.gen_table = QTableWidget(0, 4)
        self.gen_table.setHorizontalHeaderLabels(["Prompt", "Reference", "Base", "Tuned"])
        self.gen_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.gen_table.setTabKeyNavigation(False)
        self.gen_table.setWordWrap(True)
        self.gen_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # rows of six lines (drag a row border for more; the tooltip holds the whole text):
        # fitting every row to its longest reference made one answer fill the table
        self.gen_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.gen_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().lineSpacing() * 6 + 8)
        self.gen_table.setTextElideMode(Qt.TextElideMode.ElideRight)
        v.addWidget(self.gen_table, 1)

    # -- what to evaluate ---------------------------------------------------------------------------
    def set_run(self, run: Optional[str], adapter_ready: bool) -> None:
        """The run the buttons act on; ``adapter_ready``: its adapter exists and is not being trained."""
        self.run = run
        self.adapter_ready = adapter_ready
        self._update_buttons()

    def set_project_path(self, path: Optional[str]) -> None:
        self.project_path = path
        self._update_buttons()

    def is_busy(self) -> bool:
        return self._eval_worker is not None or self._merge_worker is not None

    def is_evaluating(self) -> bool:
        return self._eval_worker is not None

    @Slot()
    def _update_buttons(self, *_args) -> None:
        run = self.run
        evaluating = self._eval_worker is not None
        self.eval_button.setEnabled(self.adapter_ready and not evaluating)
        self.eval_cancel_button.setEnabled(evaluating)
        self.merge_button.setEnabled(self.adapter_ready and self._merge_worker is None)
        kind = self.eval_source_combo.currentData()
        file_mode = bool(kind) and kind[0] == "file"
        self.heldout_edit.setEnabled(file_mode)
        model = self.eval_source_combo.model()
        for i in (0, 1):  # the project splits need a project
            item = model.item(i)
            if item is not None:
                item.setEnabled(self.project_path is not None)
        self.eval_run_label.setText(
            f"Run: <b>{html.escape(os.path.basename(run))}</b> ({html.escape(run)})" if run
            else "No run yet: train an adapter, or select a past run on the Charts tab.")

    def _on_heldout_text(self, text: str) -> None:
        if text.strip():
            i = self.eval_source_combo.findData(("file", ""))
            if i >= 0 and self.eval_source_combo.currentIndex() != i:
                self.eval_source_combo.setCurrentIndex(i)

    def choose_heldout_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Held-out file", appsettings.last_folder(self.settings),
                                              DATASET_FILTER)
        if path:
            self.set_heldout_file(path)

    def set_heldout_file(self, path: str) -> None:
        self.heldout_edit.setText(path)
        self.eval_source_combo.setCurrentIndex(self.eval_source_combo.findData(("file", "")))

    def eval_source(self) -> Optional[tuple]:
        kind = self.eval_source_combo.currentData() or ("file", "")
        if kind[0] == "file":
            path = self.heldout_edit.text().strip()
            return ("file", path) if path else None
        if not self.project_path:
            return None
        return ("project", (self.project_path, kind[1]))

    def run_model_dir(self, run: str) -> str:
        """The base model a run was trained on (its run_config.json names it relative to
        the run folder), else the form's."""
        return run_model_dir(run) or self.default_model_dir()

    # -- evaluation -------------------------------------------------------------------------------
    @Slot()
    def _on_evaluate_clicked(self) -> None:
        self.evaluate_run()

    def evaluate_run(self, run_dir: Optional[str] = None) -> bool:
        """Base vs base + adapter on the held-out data, in a worker; the report is saved in the run."""
        run = run_dir or self.run
        if self._eval_worker is not None:
            return False
        if not has_adapter(run):
            self.error_reported.emit("Evaluate", "Choose a run with a saved adapter (a finished or stopped run).", "")
            return False
        source = self.eval_source()
        if source is None:
            self.error_reported.emit("Evaluate", "Choose a held-out file (or open a project with test records).", "")
            return False
        if source[0] == "file" and not os.path.isfile(source[1]):
            self.error_reported.emit("Evaluate", f"{source[1]}: no such file", "")
            return False
        model_dir = self.run_model_dir(run)
        self.show_report(None)  # the results of this evaluation appear as they come
        self._progress_text = "loading the model…"
        self.eval_status.setText(status_line("muted", "…", "Evaluating: loading the model…"))
        self.log.emit(f"Evaluating {os.path.basename(run)} against {model_dir}…")
        worker = Worker(_evaluate_job, self.evaluator, model_dir, source, run, self.max_new_spin.value(),
                        self.num_gen_spin.value(), title="Evaluation", parent=self, heavy=True,
                        event_kw="on_partial")
        worker.progress.connect(self._on_eval_progress)
        worker.event.connect(self._on_eval_partial)
        worker.finished.connect(self._on_eval_finished)
        worker.failed.connect(self._on_eval_failed)
        worker.cancelled.connect(self._on_eval_cancelled)
        worker.ended.connect(self._on_eval_ended)
        self._eval_run = run
        self._eval_worker = self.pool.start(worker)
        self._update_buttons()
        return True

    def cancel_evaluation(self) -> None:
        if self._eval_worker is not None:
            self._eval_worker.cancel()

    @Slot(int, int, str)
    def _on_eval_progress(self, done: int, total: int, message: str) -> None:
        count = f" ({done:,}/{total:,})" if total else ""
        self._progress_text = f"{message}{count}"
        self._show_progress()

    def _show_progress(self) -> None:
        shown = self._shown or {}
        so_far = []
        if (shown.get("base") or {}).get("loss") is not None:
            so_far.append("base loss")
        if (shown.get("tuned") or {}).get("loss") is not None:
            so_far.append("tuned loss")
        if shown.get("generations"):
            n = len(shown["generations"])
            so_far.append(f"{n} answer{'s' if n != 1 else ''}")
        tail = f" · so far: {', '.join(so_far)} (below)" if so_far else ""
        self.eval_status.setText(status_line("muted", "…", f"Evaluating: {self._progress_text}{tail}"))

    @Slot(object)
    def _on_eval_partial(self, report: Any) -> None:
        """Results so far (the loss of each model, then each answer) while the evaluation runs."""
        if isinstance(report, dict) and self._eval_worker is not None:
            self.show_report(report)
            self._show_progress()
            self.partial_shown.emit(report)

    @Slot(object)
    def _on_eval_finished(self, report: dict) -> None:
        run = self._eval_run
        self.last_report = report
        self.show_report(report)
        self.eval_status.setText(status_line("ok", "✓", f"Saved as {os.path.join(run, REPORT_FILE)}"))
        self.log.emit(f"Evaluation saved in {run}.")
        self.evaluation_finished.emit(report)

    @Slot()
    def _on_eval_cancelled(self) -> None:
        self.eval_status.setText(status_line("warn", "⚠", "Evaluation cancelled."))

    @Slot(str, str)
    def _on_eval_failed(self, message: str, details: str) -> None:
        self.eval_status.setText(status_line("bad", "✗", f"Evaluation failed: {message}"))
        self.error_reported.emit("Evaluation failed", message, details)

    @Slot()
    def _on_eval_ended(self) -> None:
        self._eval_worker = None
        self._update_buttons()

    def evaluated_run(self) -> Optional[str]:
        """The run of the last evaluation started here."""
        return self._eval_run

    def show_run_report(self, run: Optional[str]) -> None:
        """The run's saved report (nothing while an evaluation is running)."""
        if run and self._eval_worker is None:
            self.show_report(read_report(run))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._shown is not None:
            self.show_report(self._shown)  # the colours of the change column follow the theme

    def show_report(self, report: Optional[dict]) -> None:
        """Fill the loss/perplexity table and the generations table (empty for None)."""
        self._shown = report
        base = (report or {}).get("base") or {}
        tuned = (report or {}).get("tuned") or {}
        for row, key in enumerate(("loss", "perplexity")):
            b, t = base.get(key), tuned.get(key)
            change = ""
            if isinstance(b, (int, float)) and isinstance(t, (int, float)):
                pct = f" ({(t - b) / b:+.1%})" if b else ""
                change = f"{t - b:+.4f}{pct}"
            for col, text in enumerate((num(b), num(t), change)):
                item = QTableWidgetItem(text if report else "")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if col == 2 and change:  # lower is better for both
                    colors = theme.colors()
                    item.setForeground(QColor(colors.ok if t < b else colors.bad if t > b else colors.muted))
                self.metrics_table.setItem(row, col, item)
        gens = (report or {}).get("generations") or []
        self.gen_table.setRowCount(len(gens))
        for row, g in enumerate(gens):
            for col, key in enumerate(("prompt", "reference", "base", "tuned")):
                text = str(g.get(key, "") or "")
                answer = key in ("base", "tuned")
                pending = answer and key not in g and bool(report.get("partial"))  # still being generated
                shown = "(generating…)" if pending else "(empty answer)" if answer and not text.strip() else text
                item = QTableWidgetItem(shown)
                if answer and not text.strip():  # say so rather than show a blank cell
                    item.setForeground(self.palette().placeholderText())
                    font = item.font()
                    font.setItalic(True)
                    item.setFont(font)
                item.setToolTip(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
                self.gen_table.setItem(row, col, item)
        if report is None:
            self.eval_status.setText("")

    # -- merging ----------------------------------------------------------------------------------
    def choose_merge_dir(self) -> None:
        run = self.run
        if not has_adapter(run):
            return
        start = os.path.join(os.path.dirname(run), os.path.basename(run) + "-merged")
        path = QFileDialog.getExistingDirectory(self, "Save the merged model in", os.path.dirname(start))
        if path:
            self.merge_to(path, run)

    def merge_to(self, out_dir: str, run_dir: Optional[str] = None) -> bool:
        """Merge the run's adapter into the base model and save it in ``out_dir`` (a worker)."""
        run = run_dir or self.run
        if self._merge_worker is not None or not has_adapter(run):
            return False
        model_dir = self.run_model_dir(run)
        self.eval_status.setText(status_line("muted", "…", "Merging the adapter into the base model…"))
        worker = Worker(_merge_job, self.merger, model_dir, run, out_dir, title="Merging", parent=self, heavy=True)
        worker.finished.connect(self._on_merge_finished)
        worker.failed.connect(self._on_merge_failed)
        worker.ended.connect(self._on_merge_ended)
        self._merge_worker = self.pool.start(worker)
        self._update_buttons()
        return True

    @Slot(str, str)
    def _on_merge_failed(self, message: str, details: str) -> None:
        self.eval_status.setText(status_line("bad", "✗", f"Merge failed: {message}"))
        self.error_reported.emit("Merge failed", message, details)

    @Slot(object)
    def _on_merge_finished(self, out_dir: str) -> None:
        self.eval_status.setText(status_line("ok", "✓", f"Merged model saved in {out_dir}"))
        self.log.emit(f"Merged model saved in {out_dir}.")
        self.merge_finished.emit(str(out_dir))

    @Slot()
    def _on_merge_ended(self) -> None:
        self._merge_worker = None
        self._update_buttons()
