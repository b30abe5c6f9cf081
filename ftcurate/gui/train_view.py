"""The training window: settings, pre-flight checks, a live run with charts, past runs,
and base-vs-tuned evaluation.

:class:`TrainingView` is a plain QWidget: the main window shows it as a tab or in a window
of its own and tells it which project is open with :meth:`TrainingView.set_project`. It is
made of three parts and runs the training itself:

* :class:`~.train_settings.TrainSettingsPanel` (left): what to train, pre-flight checks;
* :class:`~.train_runs.RunsPanel` (the Charts tab): live charts and past runs;
* :class:`~.train_eval.EvaluatePanel` (the Evaluate tab): base vs tuned, merging.

Everything it runs comes from :mod:`ftcurate.train` (Qt-free) and runs in a
:class:`~ftcurate.gui.workers.Worker`: the runner's ``on_event`` callback becomes the
worker's queued ``event`` signal, so chart points and log lines are added in the GUI
thread as the events arrive - the GUI thread polls no file and never sleeps. A run of
several processes (*Processes* above 1) runs as child processes
(:func:`ftcurate.train.launch.train_processes`): the worker follows their ``metrics.jsonl``
and hands its lines on as the same events.

Where things go:

* runs of a project: ``<project folder>/runs/<project name>/<YYYYmmdd-HHMMSS>`` (projects
  share one folder, so each gets its own ``runs`` subfolder); runs of a plain dataset file:
  ``<data folder>/runs/<YYYYmmdd-HHMMSS>``. Each run folder holds ``run_config.json``,
  ``metrics.jsonl``, the adapter and, after an evaluation, ``eval_report.json``/``.md``;
* the demo model (random weights, for trying the flow): ``<data folder>/demo-model``;
* remembered in QSettings: the base model folder, the last settings, the training file.
"""

from __future__ import annotations

import html
import os
import threading
import time
from typing import Any, Callable, Optional

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFontDatabase, QShowEvent
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QMessageBox, QPlainTextEdit, QProgressBar,
                               QPushButton, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from ..core.progress import Cancelled
from ..core.project.store import Project
from ..train.config import TrainConfig
from ..train.data import describe_leakage, load_data
from ..train.launch import train_processes
from ..train.runfiles import load_run_settings
from ..train.runner import TrainError, train
from . import settings as appsettings
from .train_common import (GIB, ExplainedError, ThemedLabel, WorkerPool, color_token,
                           duration, has_adapter, has_checkpoint, is_run_dir, list_runs, new_run_dir, num,
                           runs_root)
from .train_eval import RAW_SUFFIX, EvaluatePanel
from .train_runs import RunsPanel
from .train_settings import TrainSettingsPanel, detected_device
from .workers import Worker, describe_error

__all__ = ["TrainingView", "runs_root"]

_KEY_SMOOTHING = "train/smoothing"


def _train_job(runner: Callable, config: TrainConfig, source: str, eval_source: Optional[str], resume: bool,
               progress=None, cancel=None, on_event=None, stop=None):
    """Load the data, then train (in a worker thread). TrainError's advice travels as
    :class:`ExplainedError`."""
    if progress is not None:
        progress(0, 0, "reading the training data")
    data = load_data(source, eval_source=eval_source or None, val_fraction=0.1, seed=config.seed,
                     uncurated=config.uncurated)
    if cancel is not None and cancel():
        raise Cancelled("training cancelled")
    if on_event is not None:
        on_event({"type": "info", "message": f"Data: {data.summary()}."})
    try:
        return runner(config, data, progress=progress, cancel=cancel, on_event=on_event, stop=stop, resume=resume)
    except TrainError as exc:
        raise ExplainedError(exc.message, exc.advice) from None


def _launch_job(launcher: Callable, config: TrainConfig, source: str, eval_source: Optional[str], resume: bool,
                progress=None, cancel=None, on_event=None, stop=None):
    """Train as ``config.world_size`` child processes (in a worker thread, which follows them:
    :func:`ftcurate.train.launch.train_processes`). Each process reads the data itself."""
    if progress is not None:
        progress(0, 0, f"starting {config.world_size} training processes")
    try:
        return launcher(config, source, eval_source=eval_source or None, val_fraction=0.1, progress=progress,
                        cancel=cancel, on_event=on_event, stop=stop, resume=resume)
    except TrainError as exc:
        raise ExplainedError(exc.message, exc.advice) from None


class TrainingView(QWidget):
    """Train a LoRA/QLoRA/DoRA adapter on the open project's approved records.

    ``runner`` and ``evaluator`` default to :func:`ftcurate.train.runner.train` and
    :func:`ftcurate.train.evaluate.evaluate` (tests inject fakes with the same signature);
    ``launcher`` (an attribute) to :func:`ftcurate.train.launch.train_processes`, which runs
    a run of several processes (the *Processes* setting above 1) as child processes;
    ``merger`` (an attribute) to :func:`ftcurate.train.evaluate.merge_adapter`.

    ``interactive=False`` (tests, screenshots) never opens a dialog: errors go out as
    :attr:`error_reported` only. When interactive, the view shows errors in a message box
    itself and does not emit the signal (so nobody shows a second box).

    ``state`` is "idle", "running", "stopping", "cancelling", "finished" (also after a
    graceful stop: ``last_result.stopped``), "cancelled" or "failed"."""

    error_reported = Signal(str, str, str)  # title, message, details
    run_started = Signal(str)  # the run folder
    run_finished = Signal(str)  # the run folder (the adapter is saved there)
    run_cancelled = Signal()
    run_failed = Signal(str, str)  # message, details
    state_changed = Signal(str)
    evaluation_finished = Signal(dict)  # the report (also saved in the run folder)
    merge_finished = Signal(str)  # the folder of the merged model
    demo_ready = Signal(str)  # the demo model folder
    record_requested = Signal(int)  # open this record (store id) in the Records tab (Evaluate's answers)

    def __init__(self, parent: Optional[QWidget] = None, settings: Optional[QSettings] = None,
                 interactive: bool = True, runner: Optional[Callable] = None,
                 evaluator: Optional[Callable] = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else appsettings.make_settings()
        self.interactive = interactive
        self.runner: Callable = runner or train
        self.launcher: Callable = train_processes  # runs of several processes
        self.project: Optional[Project] = None
        self.project_path: Optional[str] = None
        self.state = "idle"
        self.run_dir: Optional[str] = None  # the current or last run of this session
        self.last_result: Any = None
        self.events: list[dict] = []  # the live run's events, as received
        self.warnings: list[str] = []
        self.pool = WorkerPool(self)
        self._session_runs: list[str] = []  # runs started here (they may live outside runs_root)
        self._train_worker: Optional[Worker] = None
        self._graceful = threading.Event()
        self._eta_start: Optional[tuple[float, int]] = None
        self._run_started_at = 0.0
        self._raw_pending: Optional[str] = None  # a curated run whose uncurated twin trains next

        self._build(evaluator)
        self._update_buttons()
        self.refresh_checks()
        self.refresh_runs()

    # =====================================================================================
    # construction
    # =====================================================================================
    def _build(self, evaluator: Optional[Callable]) -> None:
        self.settings_panel = s = TrainSettingsPanel(self.settings, self.pool)
        s.changed.connect(self._update_buttons)
        s.train_file_changed.connect(self._on_train_file_changed)
        s.error_reported.connect(self.report_error)
        s.log.connect(self.log_line)
        s.demo_ready.connect(self.demo_ready)
        self.runs_panel = r = RunsPanel()
        r.selected_run_changed.connect(self._on_selected_run_changed)
        r.refresh_requested.connect(self.refresh_runs)
        r.use_settings_requested.connect(self.use_selected_run_settings)
        r.loss_chart.smoothing_changed.connect(self._on_smoothing_changed)
        self.eval_panel = e = EvaluatePanel(self.settings, self.pool, self._form_model_dir, evaluator)
        e.interactive = self.interactive
        e.pilot_inputs = self._pilot_inputs
        e.pilot_root = self.runs_root
        e.record_requested.connect(self.record_requested)
        e.evaluation_finished.connect(self._on_evaluation_finished)
        e.merge_finished.connect(self.merge_finished)
        e.error_reported.connect(self.report_error)
        e.log.connect(self.log_line)

        # shortcuts to the parts' widgets (the main window, tests and screenshots use them)
        self.field_widgets = s.field_widgets
        self.model_edit, self.model_status, self.demo_button = s.model_edit, s.model_status, s.demo_button
        self.train_file_edit, self.output_edit, self.leak_check = s.train_file_edit, s.output_edit, s.leak_check
        self.source_label, self.checks_label = s.source_label, s.checks_label
        self.memory_label, self.device_label = s.memory_label, s.device_label
        self.loss_chart, self.lr_chart = r.loss_chart, r.lr_chart
        self.throughput_chart, self.memory_chart, self.runs_list = r.throughput_chart, r.memory_chart, r.runs_list
        self.eval_button, self.eval_source_combo = e.eval_button, e.eval_source_combo
        self.limit_spin, self.max_new_spin = e.limit_spin, e.max_new_spin
        self.metrics_table, self.gen_table = e.metrics_table, e.gen_table

        try:
            smoothing = float(self.settings.value(_KEY_SMOOTHING, 0.6))
        except (TypeError, ValueError):
            smoothing = 0.6
        r.loss_chart.set_smoothing(smoothing)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(s)
        splitter.addWidget(self._build_run())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([400, 900])
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

    def _build_run(self) -> QWidget:
        """The right side: run buttons, progress, the Charts and Evaluate tabs, the log."""
        panel = QWidget()
        v = QVBoxLayout(panel)
        v.setContentsMargins(6, 0, 0, 0)
        v.setSpacing(6)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start training")
        self.start_button.setToolTip("Train a new adapter with these settings")
        self.start_button.clicked.connect(self._on_start_clicked)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Finish the current step, save a checkpoint and the adapter, then stop")
        self.stop_button.clicked.connect(self.stop)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop at once; no adapter is saved (checkpoints written so far stay)")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the selected (or last) run from its newest checkpoint")
        self.resume_button.clicked.connect(self.resume)
        for b in (self.start_button, self.stop_button, self.cancel_button, self.resume_button):
            buttons.addWidget(b)
        self.raw_run_check = QCheckBox("Also train on the uncurated data")
        self.raw_run_check.setToolTip("After this run, train a second adapter with the same settings on every "
                                      "imported training record, whatever its review state (<run>-raw): the "
                                      "Evaluate tab then shows whether the curation paid off")
        buttons.addWidget(self.raw_run_check)
        buttons.addSpacing(12)
        self.state_label = ThemedLabel()
        self.state_label.setTextFormat(Qt.TextFormat.RichText)
        buttons.addWidget(self.state_label, 1)
        v.addLayout(buttons)

        bar_row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("no run yet")
        self.eta_label = QLabel()
        self.eta_label.setMinimumWidth(220)
        bar_row.addWidget(self.progress_bar, 1)
        bar_row.addWidget(self.eta_label)
        v.addLayout(bar_row)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)  # the pages on the window's background (readable muted text)
        self.tabs.addTab(self.runs_panel, "Charts")
        self.tabs.addTab(self.eval_panel, "Evaluate")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(20000)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setPlaceholderText("Training events and warnings appear here.")
        vsplit = QSplitter(Qt.Orientation.Vertical)
        vsplit.setChildrenCollapsible(False)
        vsplit.addWidget(self.tabs)
        vsplit.addWidget(self.log)
        vsplit.setStretchFactor(0, 4)
        vsplit.setStretchFactor(1, 1)
        vsplit.setSizes([600, 150])
        v.addWidget(vsplit, 1)
        return panel

    # =====================================================================================
    # the parts, as one view
    # =====================================================================================
    def config(self) -> TrainConfig:
        """The settings as the form shows them (``output_dir`` as typed, possibly empty)."""
        return self.settings_panel.config()

    def set_config(self, config: TrainConfig) -> None:
        self.settings_panel.set_config(config)

    def save_settings(self) -> None:
        self.settings_panel.save_settings()

    def set_model_dir(self, path: str) -> None:
        self.settings_panel.set_model_dir(path)

    def model_check(self):
        return self.settings_panel.model_check()

    def set_train_file(self, path: Optional[str]) -> None:
        """Train on a dataset file (used while no project is open)."""
        self.settings_panel.set_train_file(path)

    def set_validation_file(self, path: Optional[str]) -> None:
        self.settings_panel.set_validation_file(path)

    def data_source(self) -> Optional[str]:
        return self.settings_panel.data_source()

    def runs_root(self) -> str:
        return runs_root(self.project_path)

    def create_demo_model(self) -> None:
        self.settings_panel.create_demo_model()

    def refresh_checks(self) -> None:
        """Data size, leakage, device and memory estimate for the current settings."""
        self.settings_panel.refresh_checks()

    @property
    def estimate(self) -> Any:
        """The last memory estimate (None when there is none)."""
        return self.settings_panel.estimate

    @property
    def leaks(self) -> list[dict]:
        return self.settings_panel.leaks

    def run_paths(self) -> list[str]:
        return self.runs_panel.run_paths()

    def checked_runs(self) -> list[str]:
        return self.runs_panel.checked_runs()

    def selected_run(self) -> Optional[str]:
        return self.runs_panel.selected_run()

    def select_run(self, path: str) -> None:
        self.runs_panel.select_run(path)

    def set_run_checked(self, path: str, checked: bool = True) -> None:
        self.runs_panel.set_run_checked(path, checked)

    def set_overlays(self, run_dirs: list[str]) -> None:
        self.runs_panel.set_overlays(run_dirs)

    @property
    def evaluator(self) -> Callable:
        return self.eval_panel.evaluator

    @evaluator.setter
    def evaluator(self, fn: Callable) -> None:
        self.eval_panel.evaluator = fn

    @property
    def merger(self) -> Callable:
        return self.eval_panel.merger

    @merger.setter
    def merger(self, fn: Callable) -> None:
        self.eval_panel.merger = fn

    @property
    def last_report(self) -> Optional[dict]:
        return self.eval_panel.last_report

    def current_run(self) -> Optional[str]:
        """The run the Evaluate tab acts on: the selected past run, else this session's last run."""
        return self.selected_run() or self.run_dir

    def evaluate_run(self, run_dir: Optional[str] = None) -> bool:
        """Base vs base + adapter on the held-out data, in a worker; the report is saved in the run."""
        return self.eval_panel.evaluate_run(run_dir or self.current_run())

    def cancel_evaluation(self) -> None:
        self.eval_panel.cancel_evaluation()

    def set_heldout_file(self, path: str) -> None:
        self.eval_panel.set_heldout_file(path)

    def eval_source(self) -> Optional[tuple]:
        return self.eval_panel.eval_source()

    def merge_to(self, out_dir: str, run_dir: Optional[str] = None) -> bool:
        """Merge the run's adapter into the base model and save it in ``out_dir`` (a worker)."""
        return self.eval_panel.merge_to(out_dir, run_dir or self.current_run())

    def _form_model_dir(self) -> str:
        return self.settings_panel.model_edit.text().strip()

    def _pilot_inputs(self) -> tuple:
        """(settings, training data, pilot folder) for the Evaluate tab's pilot curve; ValueError
        says what is missing."""
        check = self.model_check()
        if not check.ok:
            raise ValueError(check.message or "Choose a base model folder.")
        source = self.data_source()
        if not source:
            raise ValueError("Open a project with approved records, or choose a training file.")
        config = self.config()
        config.allow_leakage = bool(self.leaks) and self.leak_check.isChecked()
        if self.leaks and not config.allow_leakage:
            raise ValueError("Training records leak held-out records: " + describe_leakage(self.leaks) + ".")
        root = self.runs_root()
        config.output_dir = os.path.join(root, "pilot")  # each point trains in <pilot folder>/n-<size>
        return config, source, os.path.join(root, "pilot-" + time.strftime("%Y%m%d-%H%M%S"))

    # =====================================================================================
    # project
    # =====================================================================================
    def set_project(self, project: Optional[Project], project_path: Optional[str] = None) -> None:
        """The open project (None when none is open). Its approved training records are trained on."""
        self.project = project
        if project_path is None and project is not None:
            project_path = project.path
        new_path = os.path.abspath(project_path) if project_path else None
        switched = new_path != self.project_path and not self.is_running()
        if switched:
            self.run_dir = None  # the last run belongs to the previous project
            self._session_runs = []
        self.project_path = new_path
        self.eval_panel.set_project_path(new_path)
        self.settings_panel.set_project(project, new_path)
        self.refresh_runs()
        if switched and self.runs_list.count() and not self.checked_runs():
            # an opened project shows its newest run rather than empty charts
            newest = self.run_paths()[0]
            self.select_run(newest)
            self.set_run_checked(newest)

    @Slot()
    def _on_train_file_changed(self) -> None:
        self.refresh_runs()

    @Slot()
    def _on_start_clicked(self) -> None:
        self.start()

    @Slot(float)
    def _on_smoothing_changed(self, weight: float) -> None:
        self.settings.setValue(_KEY_SMOOTHING, weight)

    # =====================================================================================
    # the run
    # =====================================================================================
    def is_running(self) -> bool:
        return self._train_worker is not None

    def start(self, resume: bool = False, run_dir: Optional[str] = None, raw_of: Optional[str] = None) -> bool:
        """Check, then start training in a worker. Returns False (after telling why) when it
        cannot start. ``resume``: continue ``run_dir`` (default: the run Resume would pick).
        ``raw_of``: train the uncurated twin of that run (``<run>-raw``, same settings)."""
        if self.is_running() or self.eval_panel.is_piloting():
            return False
        self.refresh_checks()
        config = self.config()
        if raw_of:
            if not self.project_path:
                return False
            config.uncurated = True
        check = self.model_check()
        if not check.ok:
            self.report_error("Base model folder", check.message or "Choose a base model folder.",
                              "Needed: config.json, the tokenizer files and *.safetensors weights.")
            return False
        source = self.data_source()
        if not source:
            self.report_error("No training data", "Open a project with approved records, or choose a training file.")
            return False
        if not self.project_path and not os.path.isfile(source):
            self.report_error("No training data", f"{source}: no such file")
            return False
        leaks = self.settings_panel.leaks
        if leaks and not self.leak_check.isChecked():
            self.report_error("Training refused", "Training records leak held-out records: "
                              + describe_leakage(leaks) + ".\n\nReject them or move them out of the training "
                              "split (Leakage tab) and scan again, or tick “Train despite leakage”.")
            return False
        if resume:
            run_dir = run_dir or self.resume_target()
            if not has_checkpoint(run_dir):
                self.report_error("Nothing to resume", "The selected run has no checkpoint to continue from.")
                return False
            output = run_dir
        elif raw_of:
            output = raw_of.rstrip(os.sep) + RAW_SUFFIX
        else:
            output = self.output_edit.text().strip() or new_run_dir(self.runs_root())
        config.output_dir = os.path.abspath(output)
        config.allow_leakage = bool(leaks) and self.leak_check.isChecked()
        problems = config.problems()
        if problems:
            self.report_error("Training settings", "Please fix: " + "; ".join(problems) + ".")
            return False
        self.save_settings()

        self.run_dir = config.output_dir
        if self.run_dir not in self._session_runs:
            self._session_runs.append(self.run_dir)
        self.last_result = None
        self.events = []
        self.warnings = []
        self._graceful.clear()
        self.runs_panel.reset_live()
        if resume:  # the chart starts with what the run logged before its checkpoint
            self.runs_panel.load_live_history(self.run_dir)
        self._eta_start = None
        self._run_started_at = time.monotonic()
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat("%v / %m steps")
        self.eta_label.setText("starting…")
        self.log_line(("Resuming" if resume else "Starting") + f" a {config.method} run in {self.run_dir}"
                      + (" on the uncurated data (every imported training record)" if raw_of else ""))
        self._raw_pending = None if raw_of or resume or not self.project_path else (
            self.run_dir if self.raw_run_check.isChecked() else None)
        if config.world_size > 1:  # child processes, followed from a worker
            job, fn = _launch_job, self.launcher
            self.log_line(f"{config.world_size} processes ({config.strategy}); their output goes to "
                          f"{os.path.join(self.run_dir, 'train.log')}")
        else:
            job, fn = _train_job, self.runner
        worker = Worker(job, fn, config, source, self.settings_panel.validation_file(), resume,
                        title="Training", parent=self, event_kw="on_event", stop=self._graceful.is_set, heavy=True)
        worker.progress.connect(self._on_progress)
        worker.event.connect(self._on_event)
        worker.finished.connect(self._on_train_finished)
        worker.failed.connect(self._on_train_failed)
        worker.cancelled.connect(self._on_train_cancelled)
        worker.ended.connect(self._on_train_ended)
        self._train_worker = self.pool.start(worker)
        self._set_state("running")
        self.run_started.emit(self.run_dir)
        return True

    def stop(self) -> None:
        """Graceful stop: the runner saves a checkpoint and the adapter after the current step."""
        if self.is_running() and self.state == "running":
            self._graceful.set()
            self.log_line("Stopping after this step: a checkpoint and the adapter are saved…")
            self._set_state("stopping")

    def cancel(self) -> None:
        """Quick stop: no adapter is saved."""
        if self.is_running() and self.state != "cancelling":
            self._train_worker.cancel()
            self.log_line("Cancelling…")
            self._set_state("cancelling")

    def resume(self) -> bool:
        return self.start(resume=True)

    def resume_target(self) -> Optional[str]:
        """The selected past run when it has a checkpoint, else this session's last run."""
        selected = self.selected_run()
        for candidate in (selected, self.run_dir):
            if has_checkpoint(candidate):
                return candidate
        return None

    # -- worker signals ----------------------------------------------------------------------------
    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if total <= 0:
            self.progress_bar.setRange(0, 0)
            self.eta_label.setText(message or "working…")
            return
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(min(done, total))
        if self._eta_start is None or done < self._eta_start[1]:
            self._eta_start = (now, done)
        t0, d0 = self._eta_start
        elapsed = duration(now - self._run_started_at)
        if done > d0 and now > t0:
            rate = (done - d0) / (now - t0)
            self.eta_label.setText(f"{elapsed} elapsed · ETA {duration((total - done) / rate)}")
        else:
            self.eta_label.setText(f"{elapsed} elapsed · ETA –")

    @Slot(object)
    def _on_event(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        self.events.append(event)
        self.runs_panel.plot_event(event)
        line = self._describe_event(event)
        if line:
            self.log_line(line)

    def _describe_event(self, e: dict) -> str:
        kind = e.get("type")
        if kind == "warning":
            message = str(e.get("message", ""))
            self.warnings.append(message)
            return f"Warning: {message}"
        if kind == "info":
            return str(e.get("message", ""))
        if kind == "start":
            if e.get("max_steps"):
                self.progress_bar.setRange(0, int(e["max_steps"]))
            parts = [f"{e.get('num_train', '?')} training / {e.get('num_eval', '?')} validation examples"]
            if e.get("device"):
                n = int(e.get("world_size") or 1)
                parts.append(f"on {e['device']}" + (f" × {n} processes ({e.get('strategy') or 'ddp'})" if n > 1
                                                     else ""))
            if e.get("max_steps"):
                parts.append(f"{e['max_steps']} steps")
            if e.get("trainable_parameters"):
                parts.append(f"{e['trainable_parameters']:,} trainable parameters")
            if e.get("resumed_from"):
                parts.append(f"resumed from {os.path.basename(str(e['resumed_from']))}")
            return "Started: " + ", ".join(parts)
        if kind == "early_stop":
            return (f"Early stop at step {e.get('step')}: the validation loss has not improved since step "
                    f"{e.get('best_step')} ({num(e.get('best_eval_loss'))}).")
        if kind == "end":
            return ""  # the finished handler writes the summary
        step = e.get("step")
        if "loss" in e and kind in (None, "train"):
            text = f"step {step:>6}  loss {num(e.get('loss'))}"
            if e.get("learning_rate") is not None:
                text += f"  lr {num(e['learning_rate'], '.2e')}"
            if e.get("grad_norm") is not None:
                text += f"  grad {num(e['grad_norm'], '.3f')}"
            if e.get("tokens_per_second"):
                text += f"  {num(e['tokens_per_second'], ',.0f')} tok/s"
            if e.get("gpu_memory_bytes"):
                text += f"  {e['gpu_memory_bytes'] / GIB:.2f} GiB"
            return text
        if "eval_loss" in e:
            return f"step {step:>6}  validation loss {num(e.get('eval_loss'))}" + ("  (best)" if e.get("best") else "")
        return ""

    @Slot(object)
    def _on_train_finished(self, result: Any) -> None:
        self.last_result = result
        stopped = bool(getattr(result, "stopped", False))
        step = getattr(result, "global_step", None)
        summary = [f"{'Stopped' if stopped else 'Finished'} at step {step}"]
        if getattr(result, "final_loss", None) is not None:
            summary.append(f"training loss {num(result.final_loss)}")
        if getattr(result, "best_eval_loss", None) is not None:
            summary.append(f"best validation loss {num(result.best_eval_loss)} (step {result.best_step})")
        if getattr(result, "elapsed", None):
            summary.append(f"in {duration(result.elapsed)}")
        self.log_line(", ".join(summary) + f". Adapter saved in {self.run_dir}.")
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(1)
        took = duration(time.monotonic() - self._run_started_at)
        if stopped:  # stopped by the user before the end: not "done"
            of = f" of {result.max_steps:,}" if getattr(result, "max_steps", None) else ""
            self.eta_label.setText(f"stopped at step {step}{of} after {took}")
            self.progress_bar.setFormat("%v / %m steps (stopped)")
            state_text = f"stopped at step {step}{of} — adapter saved"
        else:
            early = bool(getattr(result, "early_stopped", False))
            self.eta_label.setText(f"{'early stop' if early else 'finished'} in {took}")
            state_text = "finished (early stop)" if early else "finished"
        self._finish_state("finished", state_text)
        self.refresh_runs(select=self.run_dir)
        self.run_finished.emit(self.run_dir or "")
        curated, self._raw_pending = self._raw_pending, None
        if curated and not stopped:  # "also train on the uncurated data": the twin, same settings
            QTimer.singleShot(0, lambda: self.start(raw_of=curated))

    @Slot(str, str)
    def _on_train_failed(self, message: str, details: str) -> None:
        self.log_line(f"Failed: {message}")
        self.eta_label.setText("failed")
        self._finish_state("failed", "failed")
        self.refresh_runs()
        self.run_failed.emit(message, details)
        self.report_error("Training failed", message, details)

    @Slot()
    def _on_train_cancelled(self) -> None:
        self.log_line("Cancelled: no adapter was saved (checkpoints written so far are kept).")
        self.eta_label.setText("cancelled")
        self._finish_state("cancelled", "cancelled")
        self.refresh_runs()
        self.run_cancelled.emit()

    @Slot()
    def _on_train_ended(self) -> None:
        self._train_worker = None
        self._update_buttons()

    def _finish_state(self, state: str, text: str) -> None:
        self._train_worker = None
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1)
        self._set_state(state, text)

    def _set_state(self, state: str, text: str = "") -> None:
        self.state = state
        kind = {"running": "ok", "finished": "ok", "stopping": "warn", "cancelling": "warn", "failed": "bad",
                "cancelled": "warn"}.get(state, "muted")
        self.state_label.setText(f'<span style="color:{color_token(kind)}">●</span> {html.escape(text or state)}'
                                 if state != "idle" else "")
        self._update_buttons()
        self.state_changed.emit(state)

    @Slot()
    def _update_buttons(self) -> None:
        running = self.is_running()
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running and self.state == "running")
        self.cancel_button.setEnabled(running and self.state != "cancelling")
        self.resume_button.setEnabled(not running and self.resume_target() is not None)
        self.settings_panel.set_running(running)
        self.eval_panel.set_training(running)
        self.start_button.setEnabled(not running and not self.eval_panel.is_piloting())
        device = detected_device()
        self.runs_panel.set_default_device(device[0] if device else "")
        run = self.current_run()
        self.eval_panel.set_run(run, has_adapter(run) and not (running and run == self.run_dir))

    @Slot(str)
    def log_line(self, text: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    # =====================================================================================
    # past runs
    # =====================================================================================
    @Slot()
    def refresh_runs(self, select: Optional[str] = None) -> None:
        """List the run folders (newest first), keeping ticks and the selection."""
        runs = list_runs(self.runs_root())
        for extra in self._session_runs:
            if extra not in runs and is_run_dir(extra):
                runs.insert(0, extra)
        self.runs_panel.set_runs(runs, select)

    @Slot()
    def _on_selected_run_changed(self) -> None:
        run = self.selected_run()
        self.eval_panel.show_run_report(run)
        if self.run_dir is None and not self.is_running():
            # before a run starts here, the small charts show the selected past run
            self.runs_panel.show_run_details(run)
        self._update_buttons()

    def use_selected_run_settings(self) -> None:
        """Fill the form with the selected run's settings - without trust_remote_code: when
        the run had it on, the user is asked before it is carried over."""
        run = self.selected_run()
        if not run:
            return
        try:
            loaded = load_run_settings(run, current_model_dir=self.model_edit.text().strip())
        except (OSError, ValueError) as exc:
            self.report_error("Run settings", f"Cannot read the run's settings: {describe_error(exc)}")
            return
        self.set_config(loaded.config)
        self.log_line(f"Settings of {os.path.basename(run)} loaded into the form.")
        for note in loaded.notes:
            self.log_line(note)
        if loaded.remote_code and self.interactive:
            self._ask_remote_code(os.path.basename(run))

    def _ask_remote_code(self, run_name: str) -> None:
        """Ask (window-modal, not blocking) whether to turn trust_remote_code on again."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Trust remote code?",
                          f"The run {run_name} had “Trust remote code” on: it ran Python code shipped in the model "
                          "folder. It was left off.\n\nTurn it on for the next run too? Only if you trust that code.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setObjectName("remote_code_question")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(button) -> None:
            if box.standardButton(button) == QMessageBox.StandardButton.Yes:
                self.field_widgets["trust_remote_code"].setChecked(True)
                self.log_line("Trust remote code turned on, as asked.")

        box.buttonClicked.connect(answered)
        box.open()

    @Slot(dict)
    def _on_evaluation_finished(self, report: dict) -> None:
        self.refresh_runs(select=self.eval_panel.evaluated_run())
        self.evaluation_finished.emit(report)

    # =====================================================================================
    # plumbing
    # =====================================================================================
    @Slot(str, str, str)
    def report_error(self, title: str, message: str, details: str = "") -> None:
        """A message box when interactive, else the :attr:`error_reported` signal."""
        self.log_line(f"{title}: {message.splitlines()[0] if message else ''}")
        if self.interactive:
            box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, self)
            if details:
                box.setDetailedText(details)
            box.exec()
        else:
            self.error_reported.emit(title, message, details)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        if not self.is_running():
            self.refresh_checks()  # the project may have been reviewed or scanned meanwhile

    def shutdown(self, timeout_ms: int = 60000) -> None:
        """Cancel whatever runs (training stops without saving an adapter) and wait for it."""
        self.settings_panel.stop_timers()
        try:
            self.save_settings()
        except RuntimeError:  # widgets already gone
            pass
        self.pool.shutdown(timeout_ms)
