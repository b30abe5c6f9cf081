"""The Evaluate tab of the training window: did fine-tuning help, and did curation help?

:class:`EvaluatePanel` works on one run at a time, the one the training view hands it with
:meth:`EvaluatePanel.set_run` (the selected past run, else this session's last run). It runs
:func:`ftcurate.train.compare.compare` (or an injected function with the same signature) in a
worker on the golden set: the base model, the base model with few-shot examples, the run's
adapter (tuned) and, when there is one, the adapter trained on the uncurated data (the run's
``<run>-raw`` sibling, from "also train on the uncurated data"). The report is saved in the
run folder (``eval_report.json``, ``.md``, ``.html``) and shown again when the run is
selected; answers are cached there (``eval_cache.jsonl``), so evaluating again is quick.

**Pilot curve…** trains with the form's settings on 100, 250, 500, … examples
(:func:`ftcurate.train.pilot.pilot`) and plots the metric against their number.
"""

from __future__ import annotations

import html
import json
import os
import time
from typing import Any, Callable, Optional

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QMenu,
                               QMessageBox, QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from ..core.progress import Cancelled
from ..core.project.store import Project
from ..train.compare import CompareSettings, EvalOutOfMemory, EvalStopped, compare
from ..train.evaluate import merge_adapter
from ..train.fewshot import FewShotSettings
from ..train.generate import Decoding
from ..train.metrics import GENERATION_METRICS, LOSS_METRICS, METRICS
from ..train.pilot import pilot, read_pilot
from ..train.report import REPORT_JSON, save_report
from ..train.runfiles import run_model_dir
from . import settings as appsettings
from .eval_results import EvalResults, upgrade_report
from .train_common import DATASET_FILTER, WorkerPool, has_adapter, status_line, wrap_label
from .wheel_guard import guard_wheel
from .workers import Worker

REPORT_FILE = REPORT_JSON
RAW_SUFFIX = "-raw"  # the uncurated twin of a run: <run>-raw
PILOT_PREFIX = "pilot-"


def raw_run_of(run: Optional[str]) -> Optional[str]:
    """The run trained with the same settings on the uncurated data (``<run>-raw``), if any."""
    if not run or run.rstrip(os.sep).endswith(RAW_SUFFIX):
        return None
    raw = run.rstrip(os.sep) + RAW_SUFFIX
    return raw if has_adapter(raw) else None


def latest_pilot(root: Optional[str]) -> Optional[str]:
    """The newest ``pilot-*`` folder under ``root`` that holds a pilot.json."""
    try:
        names = sorted((n for n in os.listdir(root or "") if n.startswith(PILOT_PREFIX)), reverse=True)
    except OSError:
        return None
    for name in names:
        folder = os.path.join(root, name)
        if os.path.isfile(os.path.join(folder, "pilot.json")):
            return folder
    return None


# -- worker jobs (run in a worker thread; they touch no widget) --------------------------------------


def _compare_job(comparer: Callable, model_dir: str, golden: str, run: str, raw: Optional[str],
                 settings: CompareSettings, project_path: Optional[str], progress=None, cancel=None,
                 on_partial=None) -> dict:
    """Compare the systems and save the report in the run folder; a cancelled or out-of-memory
    evaluation saves what it has (marked) before it reports."""
    try:
        report = comparer(model_dir, golden, adapters=[run], raw_adapter=raw, settings=settings, progress=progress,
                          cancel=cancel, on_partial=on_partial, project_path=project_path)
    except (EvalStopped, EvalOutOfMemory) as exc:
        save_report(exc.report, run)
        raise
    if cancel is not None and cancel():
        raise Cancelled("evaluation cancelled")
    save_report(report, run)
    return report


def _pilot_job(piloter: Callable, config, source: str, golden: str, output: str, settings: CompareSettings,
               progress=None, cancel=None, on_point=None) -> dict:
    from ..train import load_data

    if progress is not None:
        progress(0, 0, "reading the training data")
    data = load_data(source, val_fraction=0.1, seed=config.seed)
    return piloter(config, data, golden, output, settings=settings, progress=progress, cancel=cancel,
                   on_point=on_point)


def _merge_job(merger: Callable, model_dir: str, adapter_dir: str, out_dir: str, progress=None,
               cancel=None) -> str:  # noqa: ARG001
    if progress is not None:
        progress(0, 0, "merging the adapter")
    return merger(model_dir, adapter_dir, out_dir)


def read_report(run: Optional[str]) -> Optional[dict]:
    """The run's saved evaluation report (older reports in today's shape), or None."""
    if not run:
        return None
    try:
        with open(os.path.join(run, REPORT_FILE), encoding="utf-8") as f:
            report = json.load(f)
        return upgrade_report(report) if isinstance(report, dict) else None
    except (OSError, ValueError):
        return None


class EvaluatePanel(QWidget):
    """Systems side by side on the golden set, for the run given by :meth:`set_run`.

    ``default_model_dir`` gives the base model to use when a run does not name its own;
    ``pilot_inputs`` (set by the training view) returns ``(config, data source, pilot folder)``
    for a pilot, or raises ValueError saying what is missing."""

    evaluation_finished = Signal(dict)  # the report (also saved in the run folder)
    partial_shown = Signal(dict)  # results so far of the evaluation under way, as shown
    pilot_finished = Signal(dict)
    merge_finished = Signal(str)  # the folder of the merged model
    record_requested = Signal(int)  # open this record (store id) in the Records tab
    error_reported = Signal(str, str, str)  # title, message, details
    log = Signal(str)

    def __init__(self, settings: QSettings, pool: WorkerPool, default_model_dir: Callable[[], str],
                 evaluator: Optional[Callable] = None, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.pool = pool
        self.default_model_dir = default_model_dir
        self.evaluator: Callable = evaluator or compare
        self.piloter: Callable = pilot
        self.merger: Callable = merge_adapter
        self.pilot_inputs: Optional[Callable[[], tuple]] = None
        self.pilot_root: Callable[[], Optional[str]] = lambda: None
        self.interactive = True
        self.project_path: Optional[str] = None
        self.run: Optional[str] = None  # the run evaluated or merged by the buttons
        self.adapter_ready = False  # the run has an adapter that is not being trained right now
        self.training = False  # a training run is under way (no pilot meanwhile)
        self.last_report: Optional[dict] = None
        self.last_pilot: Optional[dict] = None
        self._eval_worker: Optional[Worker] = None
        self._eval_run: Optional[str] = None  # the run being evaluated
        self._merge_worker: Optional[Worker] = None
        self._pilot_worker: Optional[Worker] = None
        self._pilot_dir: Optional[str] = None
        self._shown: Optional[dict] = None  # the report on show (partial while evaluating)
        self._progress_text = ""
        self._build()
        guard_wheel(self)
        self._update_buttons()

    # -- construction ---------------------------------------------------------------------------------
    def _build(self) -> None:
        v = QVBoxLayout(self)
        v.setContentsMargins(6, 6, 6, 6)
        self.eval_run_label = wrap_label()
        v.addWidget(self.eval_run_label)

        row = QHBoxLayout()
        row.addWidget(QLabel("Golden set"))
        self.eval_source_combo = QComboBox()
        self.eval_source_combo.addItem("Project test split", ("project", "test"))
        self.eval_source_combo.addItem("Project validation split", ("project", "validation"))
        self.eval_source_combo.addItem("File…", ("file", ""))
        self.eval_source_combo.setToolTip("Held-out records the systems answer; never ones the adapter was "
                                          "trained on")
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
        row.addWidget(QLabel("Systems"))
        self.base_check = QCheckBox("Base")
        self.base_check.setToolTip("The base model, zero-shot")
        self.fewshot_check = QCheckBox("Few-shot")
        self.fewshot_check.setToolTip("The base model with training examples as earlier turns of the chat: if it "
                                      "does as well as the tuned model, fine-tuning is not worth its cost")
        self.fewshot_k_spin = QSpinBox()
        self.fewshot_k_spin.setRange(1, 32)
        self.fewshot_k_spin.setValue(5)
        self.fewshot_k_spin.setSuffix(" shots")
        self.fewshot_k_spin.setToolTip("Examples in each few-shot prompt (the most similar training questions)")
        self.tuned_check = QCheckBox("Tuned")
        self.tuned_check.setToolTip("The base model with this run's adapter")
        self.raw_check = QCheckBox("Raw")
        self.raw_check.setToolTip("The adapter trained with the same settings on the uncurated data (tick “Also "
                                  "train on the uncurated data” before training): did the curation pay off?")
        for w in (self.base_check, self.fewshot_check, self.tuned_check, self.raw_check):
            w.setChecked(True)
            w.toggled.connect(self._update_buttons)
        row.addWidget(self.base_check)
        row.addWidget(self.fewshot_check)
        row.addWidget(self.fewshot_k_spin)
        row.addWidget(self.tuned_check)
        row.addWidget(self.raw_check)
        row.addStretch(1)
        v.addLayout(row)

        row = QHBoxLayout()
        row.addWidget(QLabel("Metrics"))
        self.metrics_button = QToolButton()
        self.metrics_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.metrics_button.setToolTip("The task metrics to score the answers with (Auto: picked from the "
                                       "references)")
        menu = QMenu(self.metrics_button)
        self.auto_metrics_action = QAction("Auto (from the references)", menu, checkable=True, checked=True)
        self.auto_metrics_action.toggled.connect(self._on_auto_metrics)
        menu.addAction(self.auto_metrics_action)
        menu.addSeparator()
        self.metric_actions: dict[str, QAction] = {}
        for name in GENERATION_METRICS + LOSS_METRICS:
            if name in ("json_schema", "format"):
                continue  # they need a schema / regex: the command line has them
            action = QAction(METRICS[name].label, menu, checkable=True)
            action.setToolTip(METRICS[name].help)
            action.toggled.connect(self._on_metric_toggled)
            menu.addAction(action)
            self.metric_actions[name] = action
        self.metrics_button.setMenu(menu)
        row.addWidget(self.metrics_button)
        row.addWidget(QLabel("Items"))
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(0, 1_000_000)
        self.limit_spin.setSpecialValueText("all")
        self.limit_spin.setToolTip("Evaluate the first N golden items only (a quick look); all by default")
        row.addWidget(self.limit_spin)
        row.addWidget(QLabel("Max new tokens"))
        self.max_new_spin = QSpinBox()
        self.max_new_spin.setRange(1, 8192)
        self.max_new_spin.setValue(64)
        self.max_new_spin.setToolTip("Length limit of each answer (greedy decoding, stops at the end of the turn)")
        row.addWidget(self.max_new_spin)
        row.addStretch(1)
        v.addLayout(row)
        row = QHBoxLayout()  # the buttons on a line of their own: the tab fits a 1024-pixel window
        self.eval_button = QPushButton("Evaluate")
        self.eval_button.setToolTip("Answer every golden item with each system and score the answers (saved in "
                                    "the run folder as eval_report.json, .md and .html)")
        self.eval_button.clicked.connect(self._on_evaluate_clicked)
        self.eval_cancel_button = QPushButton("Cancel")
        self.eval_cancel_button.setToolTip("Stop; the answers so far are kept and marked")
        self.eval_cancel_button.clicked.connect(self.cancel_evaluation)
        self.pilot_button = QPushButton("Pilot curve…")
        self.pilot_button.setToolTip("Train with these settings on 100, 250, 500, … examples (nested samples) and "
                                     "plot the metric against their number: would more data help?")
        self.pilot_button.clicked.connect(self._on_pilot_clicked)
        self.merge_button = QPushButton("Merge adapter and save…")
        self.merge_button.setToolTip("Fold the adapter into the base weights and save a standalone model folder")
        self.merge_button.clicked.connect(self.choose_merge_dir)
        for b in (self.eval_button, self.eval_cancel_button, self.pilot_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.merge_button)
        v.addLayout(row)
        self.eval_status = wrap_label()
        v.addWidget(self.eval_status)

        self.results = EvalResults()
        self.results.example_activated.connect(self._open_example)
        self.metrics_table, self.gen_table = self.results.metrics_table, self.results.gen_table
        self.verdict_label, self.filter_combo = self.results.verdict_label, self.results.filter_combo
        self.bars, self.pilot_chart = self.results.bars, self.results.pilot_chart
        v.addWidget(self.results, 1)
        self._sync_metrics_button()

    # -- metrics menu -----------------------------------------------------------------------------------
    def chosen_metrics(self) -> Optional[list[str]]:
        """The ticked metrics, or None for Auto."""
        if self.auto_metrics_action.isChecked():
            return None
        return [name for name, a in self.metric_actions.items() if a.isChecked()] or None

    def set_metrics(self, names: Optional[list[str]]) -> None:
        """Tick ``names`` (None: Auto)."""
        self.auto_metrics_action.setChecked(names is None)
        for name, action in self.metric_actions.items():
            was = action.blockSignals(True)
            action.setChecked(bool(names) and name in names)
            action.blockSignals(was)
        self._sync_metrics_button()

    @Slot(bool)
    def _on_auto_metrics(self, on: bool) -> None:
        if on:
            for action in self.metric_actions.values():
                was = action.blockSignals(True)
                action.setChecked(False)
                action.blockSignals(was)
        self._sync_metrics_button()

    @Slot(bool)
    def _on_metric_toggled(self, _on: bool) -> None:
        any_on = any(a.isChecked() for a in self.metric_actions.values())
        was = self.auto_metrics_action.blockSignals(True)
        self.auto_metrics_action.setChecked(not any_on)
        self.auto_metrics_action.blockSignals(was)
        self._sync_metrics_button()

    def _sync_metrics_button(self) -> None:
        chosen = self.chosen_metrics()
        self.metrics_button.setText("Auto" if chosen is None else
                                    ", ".join(METRICS[m].label for m in chosen[:2]) + (" …" if len(chosen) > 2
                                                                                       else ""))

    # -- what to evaluate ---------------------------------------------------------------------------------
    def set_run(self, run: Optional[str], adapter_ready: bool) -> None:
        """The run the buttons act on; ``adapter_ready``: its adapter exists and is not being trained."""
        self.run = run
        self.adapter_ready = adapter_ready
        self._update_buttons()

    def set_project_path(self, path: Optional[str]) -> None:
        self.project_path = path
        self._update_buttons()
        self.show_latest_pilot()

    def set_training(self, training: bool) -> None:
        self.training = training
        self._update_buttons()

    def is_busy(self) -> bool:
        return any(w is not None for w in (self._eval_worker, self._merge_worker, self._pilot_worker))

    def is_evaluating(self) -> bool:
        return self._eval_worker is not None

    def is_piloting(self) -> bool:
        return self._pilot_worker is not None

    @Slot()
    def _update_buttons(self, *_args) -> None:
        run = self.run
        evaluating = self._eval_worker is not None
        piloting = self._pilot_worker is not None
        raw = raw_run_of(run)
        any_system = any(w.isChecked() and w.isEnabled() for w in (self.base_check, self.fewshot_check,
                                                                  self.tuned_check, self.raw_check))
        self.eval_button.setEnabled(self.adapter_ready and not evaluating and not piloting and any_system)
        self.eval_cancel_button.setEnabled(evaluating or piloting)
        self.pilot_button.setEnabled(not evaluating and not piloting and not self.training
                                     and self.pilot_inputs is not None)
        self.merge_button.setEnabled(self.adapter_ready and self._merge_worker is None)
        self.raw_check.setEnabled(raw is not None)
        self.raw_check.setToolTip(
            (f"The adapter trained on the uncurated data: {raw}" if raw else
             "No adapter trained on the uncurated data for this run: tick “Also train on the uncurated data” "
             "before training (it trains <run>-raw with the same settings)"))
        self.fewshot_k_spin.setEnabled(self.fewshot_check.isChecked())
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

    def compare_settings(self, split: str = "test") -> CompareSettings:
        systems = [name for name, w in (("base", self.base_check), ("fewshot", self.fewshot_check),
                                        ("tuned", self.tuned_check), ("raw", self.raw_check))
                   if w.isChecked() and w.isEnabled()]
        return CompareSettings(baselines=systems, metrics=self.chosen_metrics(),
                               decoding=Decoding(max_new_tokens=self.max_new_spin.value()),
                               fewshot=FewShotSettings(k=self.fewshot_k_spin.value()),
                               limit=self.limit_spin.value() or None, golden_split=split, strict=False)

    # -- evaluation -------------------------------------------------------------------------------------
    @Slot()
    def _on_evaluate_clicked(self) -> None:
        self.evaluate_run()

    def evaluate_run(self, run_dir: Optional[str] = None) -> bool:
        """The chosen systems on the golden set, in a worker; the report is saved in the run."""
        run = run_dir or self.run
        if self.is_busy() and (self._eval_worker is not None or self._pilot_worker is not None):
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
        golden, split = (source[1], "test") if source[0] == "file" else source[1]
        settings = self.compare_settings(split)
        settings.cache_path = os.path.join(run, "eval_cache.jsonl")
        raw = raw_run_of(run) if "raw" in (settings.baselines or []) else None
        model_dir = self.run_model_dir(run)
        self.show_report(None)  # the results of this evaluation appear as they come
        self._progress_text = "loading the model…"
        self.eval_status.setText(status_line("muted", "…", "Evaluating: loading the model…"))
        self.log.emit(f"Evaluating {os.path.basename(run)} against {model_dir}…")
        worker = Worker(_compare_job, self.evaluator, model_dir, golden, run, raw, settings, self.project_path,
                        title="Evaluation", parent=self, heavy=self.evaluator is compare, event_kw="on_partial")
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
        for worker in (self._eval_worker, self._pilot_worker):
            if worker is not None:
                worker.cancel()

    @Slot(int, int, str)
    def _on_eval_progress(self, done: int, total: int, message: str) -> None:
        count = f" ({done:,}/{total:,})" if total else ""
        self._progress_text = f"{message}{count}"
        self.eval_status.setText(status_line("muted", "…", f"Evaluating: {self._progress_text}"))

    @Slot(object)
    def _on_eval_partial(self, report: Any) -> None:
        """Results so far (each system's loss, then its answers) while the evaluation runs."""
        if isinstance(report, dict) and self._eval_worker is not None:
            self.show_report(report)
            self.partial_shown.emit(report)

    @Slot(object)
    def _on_eval_finished(self, report: dict) -> None:
        run = self._eval_run
        self.last_report = report
        self.show_report(report)
        self.eval_status.setText(status_line("ok", "✓", f"Saved as {os.path.join(run, REPORT_FILE)} (and .md, "
                                                         ".html)"))
        self.log.emit(f"Evaluation saved in {run}.")
        self.evaluation_finished.emit(report)

    @Slot()
    def _on_eval_cancelled(self) -> None:
        saved = read_report(self._eval_run)
        if saved is not None:
            self.show_report(saved)
        self.eval_status.setText(status_line("warn", "⚠", "Evaluation cancelled: the answers so far are shown and "
                                                          "saved, marked as partial."))

    @Slot(str, str)
    def _on_eval_failed(self, message: str, details: str) -> None:
        saved = read_report(self._eval_run)
        if saved is not None and saved.get("status") == "out_of_memory":
            self.show_report(saved)
            message += " The answers so far are shown and saved."
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

    def show_report(self, report: Optional[dict]) -> None:
        """Verdict, metric table, bars and answers of ``report`` (empty for None)."""
        self._shown = report
        self.results.show_report(report)
        if report is None and self._eval_worker is None:
            self.eval_status.setText("")
        elif report is not None and report.get("status") in ("cancelled", "out_of_memory"):
            self.eval_status.setText(status_line("warn", "⚠", "Partial report: " + (
                "the evaluation was cancelled" if report["status"] == "cancelled" else "out of memory")))

    # -- the golden item's record -----------------------------------------------------------------------
    @Slot(dict)
    def _open_example(self, example: dict) -> None:
        """Open the golden item's record in the Records tab (when the project holds it)."""
        rid = self._record_id(example)
        if rid is None:
            self.eval_status.setText(status_line("muted", "ℹ", f"Record {example.get('index')} of "
                                                 f"{example.get('source') or 'the golden set'} is not in the "
                                                 "open project."))
            return
        self.record_requested.emit(rid)

    def _record_id(self, example: dict) -> Optional[int]:
        if not self.project_path or not example.get("source"):
            return None
        try:
            with Project.open(self.project_path, readonly=True) as project:
                for s in project.sources():
                    if os.path.basename(str(s.get("path") or "")) == example["source"]:
                        try:
                            return project.id_for_index(s["id"], int(example["index"]))
                        except (KeyError, ValueError):
                            continue
        except Exception:  # noqa: BLE001 - an unreadable project: nothing to open
            return None
        return None

    # -- pilot ----------------------------------------------------------------------------------------
    def show_latest_pilot(self) -> None:
        folder = latest_pilot(self.pilot_root())
        self.last_pilot = read_pilot(folder) if folder else None
        self.results.show_pilot(self.last_pilot)

    @Slot()
    def _on_pilot_clicked(self) -> None:
        if self.interactive:
            answer = QMessageBox.question(
                self, "Pilot curve", "Train with these settings on 100, 250, 500, … and all approved examples "
                "(one run each), and evaluate each on the golden set? This takes a while.")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.start_pilot()

    def start_pilot(self) -> bool:
        """Train and evaluate on nested samples, in a worker (the curve fills in point by point)."""
        if self.pilot_inputs is None or self.is_busy():
            return False
        try:
            config, source, output = self.pilot_inputs()
        except ValueError as exc:
            self.error_reported.emit("Pilot curve", str(exc), "")
            return False
        src = self.eval_source()
        if src is None:
            self.error_reported.emit("Pilot curve", "Choose a golden set (a held-out file or the project's test "
                                                    "split).", "")
            return False
        golden, split = (src[1], "test") if src[0] == "file" else src[1]
        settings = self.compare_settings(split)
        settings.baselines = None
        output = output or os.path.join(self.pilot_root() or ".", PILOT_PREFIX + time.strftime("%Y%m%d-%H%M%S"))
        self._pilot_dir = output
        self.results.pages.setCurrentIndex(2)
        self.eval_status.setText(status_line("muted", "…", "Pilot: starting…"))
        self.log.emit(f"Pilot curve in {output}…")
        worker = Worker(_pilot_job, self.piloter, config, source, golden, output, settings, title="Pilot curve",
                        parent=self, heavy=self.piloter is pilot, event_kw="on_point")
        worker.progress.connect(self._on_pilot_progress)
        worker.event.connect(self._on_pilot_point)
        worker.finished.connect(self._on_pilot_finished)
        worker.failed.connect(self._on_pilot_failed)
        worker.cancelled.connect(self._on_pilot_cancelled)
        worker.ended.connect(self._on_pilot_ended)
        self._pilot_worker = self.pool.start(worker)
        self._update_buttons()
        return True

    @Slot(int, int, str)
    def _on_pilot_progress(self, done: int, total: int, message: str) -> None:
        self.eval_status.setText(status_line("muted", "…", f"Pilot ({done}/{total} points): {message}"))

    @Slot(object)
    def _on_pilot_point(self, result: Any) -> None:
        if isinstance(result, dict):
            self.last_pilot = result
            self.results.show_pilot(result)

    @Slot(object)
    def _on_pilot_finished(self, result: dict) -> None:
        self.last_pilot = result
        self.results.show_pilot(result)
        self.eval_status.setText(status_line("ok", "✓", f"Pilot curve saved in {self._pilot_dir}"))
        self.log.emit(f"Pilot curve saved in {self._pilot_dir}.")
        self.pilot_finished.emit(result)

    @Slot()
    def _on_pilot_cancelled(self) -> None:
        saved = read_pilot(self._pilot_dir) if self._pilot_dir else None
        if saved:
            self.results.show_pilot(saved)
        self.eval_status.setText(status_line("warn", "⚠", "Pilot cancelled: the points so far are kept."))

    @Slot(str, str)
    def _on_pilot_failed(self, message: str, details: str) -> None:
        self.eval_status.setText(status_line("bad", "✗", f"Pilot failed: {message}"))
        self.error_reported.emit("Pilot curve failed", message, details)

    @Slot()
    def _on_pilot_ended(self) -> None:
        self._pilot_worker = None
        self._update_buttons()

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


__all__ = ["EvaluatePanel", "read_report", "raw_run_of", "latest_pilot", "REPORT_FILE", "Qt"]
