"""The training window: settings, pre-flight checks, a live run with charts, past runs,
and base-vs-tuned evaluation.

:class:`TrainingView` is a plain QWidget: the main window shows it as a tab or in a window
of its own and tells it which project is open with :meth:`TrainingView.set_project`.
Everything it runs comes from :mod:`ftcurate.train` (Qt-free) and runs in a
:class:`~ftcurate.gui.workers.Worker`: the runner's ``on_event`` callback becomes the
worker's queued ``event`` signal, so chart points and log lines are added in the GUI
thread as the events arrive - nothing polls files or sleeps.

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
import json
import os
import threading
import time
from dataclasses import fields
from typing import Any, Callable, Optional

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFontDatabase, QShowEvent, QValidator
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QFrame, QGridLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton,
                               QScrollArea, QSizePolicy, QSpinBox, QSplitter, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout, QWidget)

from ..core.io.ingest import iter_selected
from ..core.progress import Cancelled
from ..core.project.store import Project, ProjectError
from ..core.io.validate import OVERFIT_SET, SMALL_SET
from ..train.config import METHODS, TrainConfig
from ..train.data import check_leakage, describe_leakage, load_data
from ..train.evaluate import REPORT_FILE, evaluate, merge_adapter, save_report
from ..train.model import (check_model_folder, create_demo_model, detect_device, device_memory_bytes,
                           estimate_memory, is_demo_model)
from ..train.runner import METRICS_FILE, RUN_CONFIG_FILE, TrainError, last_checkpoint, read_metrics, train
from . import settings as appsettings
from .charts import COLORS, CompactAxis, LossChart, MetricChart, ScientificAxis, loss_curves
from .workers import Worker, describe_error

RUNS_DIRNAME = "runs"
DEMO_DIRNAME = "demo-model"
ADAPTER_CONFIG = "adapter_config.json"  # written by peft beside the adapter weights

_KEY_MODEL = "train/model_dir"
_KEY_CONFIG = "train/config"
_KEY_TRAIN_FILE = "train/train_file"
_KEY_SMOOTHING = "train/smoothing"

GIB = float(1 << 30)
DATASET_FILTER = "Datasets (*.jsonl *.json *.csv *.tsv *.parquet);;All files (*)"

# Fields with a widget of their own outside the settings form.
OWN_WIDGETS = ("model_dir", "output_dir", "allow_leakage")
# The settings form, section by section; fields not named here land in "Other".
SECTIONS = (
    ("Adapter", ("method", "lora_r", "lora_alpha", "lora_dropout", "target_modules")),
    ("Schedule", ("learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "warmup_ratio", "seed")),
    ("Examples", ("max_seq_len", "packing", "assistant_only_loss")),
    ("Validation and checkpoints", ("eval_steps", "early_stopping_patience", "save_steps", "logging_steps")),
    ("Advanced", ("gradient_checkpointing", "trust_remote_code")),
)
LABELS = {
    "method": "Method", "lora_r": "Rank (r)", "lora_alpha": "Alpha", "lora_dropout": "Dropout",
    "target_modules": "Target modules", "learning_rate": "Learning rate", "epochs": "Epochs",
    "max_steps": "Max steps", "batch_size": "Batch size", "grad_accum": "Gradient accumulation",
    "warmup_ratio": "Warm-up ratio", "seed": "Seed", "max_seq_len": "Max length (tokens)",
    "packing": "Packing", "assistant_only_loss": "Learn replies only", "eval_steps": "Validate every",
    "early_stopping_patience": "Early-stop patience", "save_steps": "Checkpoint every",
    "logging_steps": "Log every", "gradient_checkpointing": "Gradient checkpointing",
    "trust_remote_code": "Trust remote code", "model_dir": "Base model", "output_dir": "Output folder",
    "allow_leakage": "Allow leakage",
}
INT_RANGES = {  # name -> (minimum, maximum, special text shown at the minimum)
    "lora_r": (1, 4096, ""), "lora_alpha": (1, 16384, ""), "batch_size": (1, 65536, ""),
    "grad_accum": (1, 65536, ""), "max_seq_len": (16, 1 << 21, ""), "seed": (0, 2 ** 31 - 1, ""),
    "eval_steps": (0, 10 ** 8, "once per epoch"), "early_stopping_patience": (0, 10 ** 4, "off"),
    "save_steps": (1, 10 ** 8, ""), "max_steps": (-1, 10 ** 9, "no limit (epochs)"),
    "logging_steps": (1, 10 ** 6, ""),
}
INT_SUFFIX = {"eval_steps": " steps", "save_steps": " steps", "logging_steps": " steps",
              "early_stopping_patience": " evals"}
FLOAT_SPECS = {  # name -> (minimum, maximum, step, decimals)
    "lora_dropout": (0.0, 0.99, 0.01, 3), "epochs": (0.01, 10000.0, 0.5, 2), "warmup_ratio": (0.0, 0.99, 0.01, 3),
}

OK_COLOR, WARN_COLOR, BAD_COLOR, MUTED_COLOR = "#2b8a3e", "#e67700", "#e03131", "#868e96"


# -- helpers without widgets ------------------------------------------------------------------


def runs_root(project_path: Optional[str]) -> str:
    """Where new runs go: beside the project (its own subfolder), else in the data folder."""
    if project_path:
        folder, name = os.path.split(os.path.abspath(project_path))
        return os.path.join(folder, RUNS_DIRNAME, os.path.splitext(name)[0])
    return str(appsettings.data_dir() / RUNS_DIRNAME)


def new_run_dir(root: str) -> str:
    """``root/<YYYYmmdd-HHMMSS>`` that does not exist yet (``-2``, ``-3``... on a clash)."""
    base = os.path.join(root, time.strftime("%Y%m%d-%H%M%S"))
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def is_run_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, METRICS_FILE)) or os.path.isfile(os.path.join(path, RUN_CONFIG_FILE))


def list_runs(root: str) -> list[str]:
    """Run folders directly under ``root``, newest first."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    runs = [os.path.join(root, n) for n in names if is_run_dir(os.path.join(root, n))]
    return sorted(runs, key=lambda p: (os.path.getmtime(p), p), reverse=True)


def has_checkpoint(run_dir: Optional[str]) -> bool:
    return bool(run_dir) and last_checkpoint(run_dir) is not None


def has_adapter(run_dir: Optional[str]) -> bool:
    return bool(run_dir) and os.path.isfile(os.path.join(run_dir, ADAPTER_CONFIG))


def approved_counts(project: Project) -> dict[str, int]:
    """Approved (or edited) records per split, and all test records (the held-out set)."""
    out = {}
    for split in ("train", "validation"):
        counts = project.status_counts(split=split)
        out[split] = counts.get("approved", 0) + counts.get("edited", 0)
    out["test"] = project.count(split="test")
    return out


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _num(value: Any, fmt: str = ".4f") -> str:
    try:
        return format(float(value), fmt)
    except (TypeError, ValueError):
        return "–"


class ExplainedError(Exception):
    """An error with advice, shown as two paragraphs (TrainError's message and advice)."""

    def __init__(self, message: str, advice: str = "") -> None:
        super().__init__(message)
        self.message, self.advice = message, advice

    def __str__(self) -> str:
        return f"{self.message}\n\n{self.advice}" if self.advice else self.message


# -- worker jobs (run in a worker thread; they touch no widget) --------------------------------------


def _detect_job(progress=None, cancel=None) -> tuple[str, Optional[int]]:  # noqa: ARG001
    """The training device and its memory in bytes (None when unknown). Imports torch."""
    device = detect_device()
    try:
        total = device_memory_bytes(device)
    except Exception:  # noqa: BLE001 - the estimate works without it
        total = None
    return device, total


def _demo_job(folder: str, progress=None, cancel=None) -> str:  # noqa: ARG001
    """Create the demo model in ``folder`` (kept when a complete one is already there)."""
    if is_demo_model(folder) and check_model_folder(folder).ok:
        return folder
    if progress is not None:
        progress(0, 0, "creating the demo model")
    return create_demo_model(folder)


def _train_job(runner: Callable, config: TrainConfig, source: str, eval_source: Optional[str], resume: bool,
               progress=None, cancel=None, on_event=None, stop=None):
    """Load the data, then train. TrainError's advice travels as :class:`ExplainedError`."""
    if progress is not None:
        progress(0, 0, "reading the training data")
    data = load_data(source, eval_source=eval_source or None, val_fraction=0.1, seed=config.seed)
    if cancel is not None and cancel():
        raise Cancelled("training cancelled")
    if on_event is not None:
        on_event({"type": "info", "message": f"Data: {data.summary()}."})
    try:
        return runner(config, data, progress=progress, cancel=cancel, on_event=on_event, stop=stop, resume=resume)
    except TrainError as exc:
        raise ExplainedError(exc.message, exc.advice) from None


def _evaluate_job(evaluator: Callable, model_dir: str, source: tuple, adapter_dir: str, max_new_tokens: int,
                  num_generations: int, progress=None, cancel=None) -> dict:
    """Evaluate base vs base + adapter and save the report beside the adapter.

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
                       num_generations=num_generations, progress=progress, cancel=cancel)
    if cancel is not None and cancel():
        raise Cancelled("evaluation cancelled")
    save_report(report, adapter_dir)
    return report


def _merge_job(merger: Callable, model_dir: str, adapter_dir: str, out_dir: str, progress=None,
               cancel=None) -> str:  # noqa: ARG001
    if progress is not None:
        progress(0, 0, "merging the adapter")
    return merger(model_dir, adapter_dir, out_dir)


_DEVICE: Optional[tuple[str, Optional[int]]] = None  # (device, memory bytes) once detected, for every view


# -- small widgets ------------------------------------------------------------------------------------


class SciSpinBox(QDoubleSpinBox):
    """A spin box for small positive numbers such as learning rates, written like ``2e-4``.
    The arrows halve and double the value."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(1e-9, 10.0)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt's name
        if value == 0:
            return "0"
        mantissa, exponent = f"{value:.3e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):  # noqa: D102
        t = text.strip()
        try:
            float(t)
            return QValidator.State.Acceptable, text, pos
        except ValueError:
            if t == "" or all(c in "0123456789.eE+-" for c in t):
                return QValidator.State.Intermediate, text, pos
            return QValidator.State.Invalid, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        self.setValue(self.value() * (2.0 ** steps))


def _wrap_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    return label


def _line(color: str, symbol: str, text: str) -> str:
    return f'<span style="color:{color}">{symbol}</span> {html.escape(text, quote=False)}'


# -- the view -------------------------------------------------------------------------------------------


class TrainingView(QWidget):
    """Train a LoRA/QLoRA/DoRA adapter on the open project's approved records.

    ``runner`` and ``evaluator`` default to :func:`ftcurate.train.runner.train` and
    :func:`ftcurate.train.evaluate.evaluate` (tests inject fakes with the same signature);
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

    def __init__(self, parent: Optional[QWidget] = None, settings: Optional[QSettings] = None,
                 interactive: bool = True, runner: Optional[Callable] = None,
                 evaluator: Optional[Callable] = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else appsettings.make_settings()
        self.interactive = interactive
        self.runner: Callable = runner or train
        self.evaluator: Callable = evaluator or evaluate
        self.merger: Callable = merge_adapter
        self.project: Optional[Project] = None
        self.project_path: Optional[str] = None
        self.state = "idle"
        self.run_dir: Optional[str] = None  # the current or last run of this session
        self.last_result: Any = None
        self.last_report: Optional[dict] = None
        self.events: list[dict] = []  # the live run's events, as received
        self.warnings: list[str] = []
        self.leaks: list[dict] = []
        self.estimate: Any = None  # the last MemoryEstimate
        self._session_runs: list[str] = []  # runs started here (they may live outside runs_root)
        self._workers: list[Worker] = []
        self._train_worker: Optional[Worker] = None
        self._eval_worker: Optional[Worker] = None
        self._eval_run: Optional[str] = None  # the run being evaluated
        self._merge_worker: Optional[Worker] = None
        self._demo_worker: Optional[Worker] = None
        self._detect_worker: Optional[Worker] = None
        self._graceful = threading.Event()
        self._eta_start: Optional[tuple[float, int]] = None
        self._run_started_at = 0.0
        self._loading = False  # set while widgets are filled from code (no change handling)

        self._check_timer = QTimer(self)  # new memory estimate a moment after the settings changed
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(250)
        self._check_timer.timeout.connect(self._refresh_estimate)

        self._build()
        self._restore()
        self._update_buttons()
        self.refresh_checks()
        self.refresh_runs()

    # =====================================================================================
    # construction
    # =====================================================================================
    def _build(self) -> None:
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._build_setup())
        splitter.addWidget(self._build_run())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([400, 900])
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

    # -- left: what to train -----------------------------------------------------------------
    def _build_setup(self) -> QWidget:
        inner = QWidget()
        col = QVBoxLayout(inner)
        col.setContentsMargins(0, 0, 6, 0)
        col.setSpacing(8)
        self.field_widgets: dict[str, QWidget] = {}
        col.addWidget(self._build_model_group())
        col.addWidget(self._build_data_group())
        col.addWidget(self._build_output_group())
        col.addWidget(self._build_checks_group())
        self._build_form(col)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(340)
        return scroll

    def _build_model_group(self) -> QGroupBox:
        box = QGroupBox("Base model")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("Folder with config.json, tokenizer and *.safetensors")
        self.model_edit.setToolTip(TrainConfig.help_text("model_dir"))
        self.model_edit.editingFinished.connect(self._on_model_edited)
        self.model_browse = QPushButton("Browse…")
        self.model_browse.setToolTip("Choose the base model folder (nothing is downloaded)")
        self.model_browse.clicked.connect(self.choose_model_dir)
        row.addWidget(self.model_edit, 1)
        row.addWidget(self.model_browse)
        v.addLayout(row)
        self.model_status = _wrap_label()
        v.addWidget(self.model_status)
        demo_row = QHBoxLayout()
        self.demo_button = QPushButton("Create a demo model")
        self.demo_button.setToolTip("A tiny model with random weights and its own small tokenizer, made in "
                                    "seconds on the CPU: it learns nothing useful, it only lets you try the "
                                    "training flow without downloading a model.")
        self.demo_button.clicked.connect(self.create_demo_model)
        demo_note = QLabel("demo — random weights, only to try the flow")
        demo_note.setStyleSheet(f"color: {MUTED_COLOR};")
        demo_note.setWordWrap(True)
        demo_row.addWidget(self.demo_button)
        demo_row.addWidget(demo_note, 1)
        v.addLayout(demo_row)
        self.field_widgets["model_dir"] = self.model_edit
        return box

    def _build_data_group(self) -> QGroupBox:
        box = QGroupBox("Training data")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.source_label = _wrap_label()
        form.addRow(self.source_label)
        row = QHBoxLayout()
        self.train_file_edit = QLineEdit()
        self.train_file_edit.setPlaceholderText("a dataset file (no project open)")
        self.train_file_edit.setToolTip("Without an open project, train on every usable record of this file")
        self.train_file_edit.editingFinished.connect(self.refresh_checks)
        self.train_file_browse = QPushButton("Browse…")
        self.train_file_browse.clicked.connect(self.choose_train_file)
        row.addWidget(self.train_file_edit, 1)
        row.addWidget(self.train_file_browse)
        self.train_file_row = QWidget()
        self.train_file_row.setLayout(row)
        row.setContentsMargins(0, 0, 0, 0)
        form.addRow("File", self.train_file_row)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.val_file_edit = QLineEdit()
        self.val_file_edit.setPlaceholderText("project validation split, else 10% of the records")
        self.val_file_edit.setToolTip("Validation records watched during training (validation loss, early "
                                      "stopping). Empty: the project's approved validation records, else a "
                                      "deterministic 10% of the training records.")
        self.val_file_edit.editingFinished.connect(self.refresh_checks)
        self.val_file_browse = QPushButton("Browse…")
        self.val_file_browse.clicked.connect(self.choose_val_file)
        row.addWidget(self.val_file_edit, 1)
        row.addWidget(self.val_file_browse)
        val_row = QWidget()
        val_row.setLayout(row)
        form.addRow("Validation", val_row)
        return box

    def _build_output_group(self) -> QGroupBox:
        box = QGroupBox("Output")
        row = QHBoxLayout(box)
        self.output_edit = QLineEdit()
        self.output_edit.setToolTip(TrainConfig.help_text("output_dir") + " Empty: a new folder named by the "
                                    "date and time under the project's runs folder.")
        self.output_edit.textChanged.connect(self._update_buttons)
        self.output_browse = QPushButton("Browse…")
        self.output_browse.clicked.connect(self.choose_output_dir)
        row.addWidget(self.output_edit, 1)
        row.addWidget(self.output_browse)
        self.field_widgets["output_dir"] = self.output_edit
        return box

    def _build_checks_group(self) -> QGroupBox:
        box = QGroupBox("Before you start")
        v = QVBoxLayout(box)
        v.setSpacing(4)
        self.memory_label = _wrap_label()
        self.memory_label.setTextFormat(Qt.TextFormat.RichText)
        self.device_label = _wrap_label()
        self.device_label.setTextFormat(Qt.TextFormat.RichText)
        self.checks_label = _wrap_label()
        self.checks_label.setTextFormat(Qt.TextFormat.RichText)
        self.leak_check = QCheckBox("Train despite leakage")
        self.leak_check.setToolTip(TrainConfig.help_text("allow_leakage"))
        self.leak_check.setVisible(False)
        self.leak_check.toggled.connect(self._update_buttons)
        for w in (self.memory_label, self.device_label, self.checks_label, self.leak_check):
            v.addWidget(w)
        self.field_widgets["allow_leakage"] = self.leak_check
        return box

    def _build_form(self, col: QVBoxLayout) -> None:
        """One widget per TrainConfig field (tooltips: the field's help text)."""
        all_fields = {f.name: f for f in fields(TrainConfig)}
        placed = set(OWN_WIDGETS)
        sections = [(title, [n for n in names if n in all_fields]) for title, names in SECTIONS]
        for _title, names in sections:
            placed.update(names)
        rest = [n for n in all_fields if n not in placed]
        if rest:
            sections.append(("Other", rest))
        self.form_boxes: dict[str, QGroupBox] = {}
        for title, names in sections:
            if not names:
                continue
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
            for name in names:
                f = all_fields[name]
                widget = self._field_widget(name, f.default)
                tip = f.metadata.get("help", "")
                widget.setToolTip(tip)
                label = QLabel(LABELS.get(name, name.replace("_", " ").capitalize()))
                label.setToolTip(tip)
                label.setBuddy(widget)
                form.addRow(label, widget)
                self.field_widgets[name] = widget
            col.addWidget(box)
            self.form_boxes[title] = box

    def _field_widget(self, name: str, default: Any) -> QWidget:
        if name == "method":
            w: QWidget = QComboBox()
            w.addItems(list(METHODS))
            w.currentTextChanged.connect(self._on_form_changed)
        elif isinstance(default, bool):
            w = QCheckBox()
            w.toggled.connect(self._on_form_changed)
        elif isinstance(default, int):
            lo, hi, special = INT_RANGES.get(name, (0, 2 ** 31 - 1, ""))
            w = QSpinBox()
            w.setRange(lo, hi)
            if special:
                w.setSpecialValueText(special)
            if name in INT_SUFFIX:
                w.setSuffix(INT_SUFFIX[name])
            w.setGroupSeparatorShown(True)
            w.valueChanged.connect(self._on_form_changed)
        elif isinstance(default, float):
            if name in FLOAT_SPECS:
                lo, hi, step, decimals = FLOAT_SPECS[name]
                w = QDoubleSpinBox()
                w.setRange(lo, hi)
                w.setSingleStep(step)
                w.setDecimals(decimals)
            else:
                w = SciSpinBox()
            w.valueChanged.connect(self._on_form_changed)
        else:
            w = QLineEdit()
            w.textChanged.connect(self._on_form_changed)
        return w

    # -- right: the run -------------------------------------------------------------------------
    def _build_run(self) -> QWidget:
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
        buttons.addSpacing(12)
        self.state_label = QLabel()
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
        self.tabs.addTab(self._build_charts_tab(), "Charts")
        self.tabs.addTab(self._build_eval_tab(), "Evaluate")
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

    def _build_charts_tab(self) -> QWidget:
        page = QWidget()
        h = QHBoxLayout(page)
        h.setContentsMargins(4, 4, 4, 4)
        grid = QGridLayout()
        grid.setSpacing(6)
        self.loss_chart = LossChart("Loss")
        self.loss_chart.smoothing_changed.connect(self._on_smoothing_changed)
        self.lr_chart = MetricChart("Learning rate", left_axis=ScientificAxis("left"))
        self.lr_chart.add_series("lr", COLORS[3])
        self.throughput_chart = MetricChart("Throughput", "tokens/s", left_axis=CompactAxis("left"))
        self.throughput_chart.add_series("tokens_per_second", COLORS[2])
        self.memory_chart = MetricChart("GPU memory", "GiB")
        self.memory_chart.add_series("gpu_memory", COLORS[4])
        grid.addWidget(self.loss_chart, 0, 0, 1, 3)
        grid.addWidget(self.lr_chart, 1, 0)
        grid.addWidget(self.throughput_chart, 1, 1)
        grid.addWidget(self.memory_chart, 1, 2)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)
        h.addLayout(grid, 1)

        side = QVBoxLayout()
        side.addWidget(QLabel("<b>Past runs</b>"))
        hint = QLabel("Tick runs to overlay their loss curves.")
        hint.setWordWrap(True)
        hint.setStyleSheet(f"color: {MUTED_COLOR};")
        side.addWidget(hint)
        self.runs_list = QListWidget()
        self.runs_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_list.itemChanged.connect(self._on_run_item_changed)
        self.runs_list.currentItemChanged.connect(self._on_selected_run_changed)
        side.addWidget(self.runs_list, 1)
        row = QHBoxLayout()
        self.refresh_runs_button = QPushButton("Refresh")
        self.refresh_runs_button.setToolTip("Look for run folders again")
        self.refresh_runs_button.clicked.connect(self.refresh_runs)
        self.use_settings_button = QPushButton("Use settings")
        self.use_settings_button.setToolTip("Fill the settings form with the selected run's run_config.json")
        self.use_settings_button.clicked.connect(self.use_selected_run_settings)
        row.addWidget(self.refresh_runs_button)
        row.addWidget(self.use_settings_button)
        side.addLayout(row)
        side_w = QWidget()
        side_w.setLayout(side)
        side.setContentsMargins(0, 0, 0, 0)
        side_w.setFixedWidth(210)
        h.addWidget(side_w)
        return page

    def _build_eval_tab(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(6, 6, 6, 6)
        self.eval_run_label = _wrap_label()
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
        self.eval_button = QPushButton("Evaluate")
        self.eval_button.setToolTip("Loss, perplexity and sample answers of the base model and base + adapter "
                                    "(saved in the run folder as eval_report.json)")
        self.eval_button.clicked.connect(self.evaluate_run)
        self.eval_cancel_button = QPushButton("Cancel")
        self.eval_cancel_button.clicked.connect(self.cancel_evaluation)
        self.merge_button = QPushButton("Merge adapter and save…")
        self.merge_button.setToolTip("Fold the adapter into the base weights and save a standalone model folder")
        self.merge_button.clicked.connect(self.choose_merge_dir)
        row.addWidget(self.eval_button)
        row.addWidget(self.eval_cancel_button)
        row.addWidget(self.merge_button)
        v.addLayout(row)
        self.eval_status = _wrap_label()
        v.addWidget(self.eval_status)

        self.metrics_table = QTableWidget(2, 3)
        self.metrics_table.setHorizontalHeaderLabels(["Base", "Tuned", "Change"])
        self.metrics_table.setVerticalHeaderLabels(["Loss", "Perplexity"])
        self.metrics_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
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
        self.gen_table.setWordWrap(True)
        self.gen_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # rows of six lines (drag a row border for more; the tooltip holds the whole text):
        # fitting every row to its longest reference made one answer fill the table
        self.gen_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.gen_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().lineSpacing() * 6 + 8)
        self.gen_table.setTextElideMode(Qt.TextElideMode.ElideRight)
        v.addWidget(self.gen_table, 1)
        return page

    def _restore(self) -> None:
        """The remembered model folder, settings and training file."""
        self._loading = True
        try:
            raw = self.settings.value(_KEY_CONFIG, "")
            config = None
            if raw:
                try:
                    config = TrainConfig.from_dict(json.loads(str(raw)))
                except (ValueError, TypeError):
                    config = None
            config = config or TrainConfig(model_dir="")
            config.model_dir = str(self.settings.value(_KEY_MODEL, "") or "")
            config.output_dir = ""
            config.allow_leakage = False
            self.set_config(config)
            self.train_file_edit.setText(str(self.settings.value(_KEY_TRAIN_FILE, "") or ""))
            try:
                smoothing = float(self.settings.value(_KEY_SMOOTHING, 0.6))
            except (TypeError, ValueError):
                smoothing = 0.6
            self.loss_chart.set_smoothing(smoothing)
        finally:
            self._loading = False
        self._show_model_check()

    # =====================================================================================
    # settings form
    # =====================================================================================
    def config(self) -> TrainConfig:
        """The settings as the form shows them (``output_dir`` as typed, possibly empty)."""
        values: dict[str, Any] = {}
        for f in fields(TrainConfig):
            w = self.field_widgets.get(f.name)
            if w is None:
                continue
            if isinstance(w, QComboBox):
                values[f.name] = w.currentText()
            elif isinstance(w, QCheckBox):
                values[f.name] = w.isChecked()
            elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
                values[f.name] = w.value()
            elif isinstance(w, QLineEdit):
                values[f.name] = w.text().strip()
        return TrainConfig.from_dict(values)

    def set_config(self, config: TrainConfig) -> None:
        """Show ``config`` in the form (every field, the model and output folders included)."""
        was, self._loading = self._loading, True
        try:
            for key, value in config.to_dict().items():
                w = self.field_widgets.get(key)
                if w is None:
                    continue
                if isinstance(w, QComboBox):
                    i = w.findText(str(value))
                    if i < 0:
                        w.addItem(str(value))
                        i = w.count() - 1
                    w.setCurrentIndex(i)
                elif isinstance(w, QCheckBox):
                    w.setChecked(bool(value))
                elif isinstance(w, QSpinBox):
                    w.setValue(int(value))
                elif isinstance(w, QDoubleSpinBox):
                    w.setValue(float(value))
                elif isinstance(w, QLineEdit):
                    w.setText("" if value is None else str(value))
        finally:
            self._loading = was
        self._show_model_check()
        self._schedule_checks()

    def save_settings(self) -> None:
        """Remember the form (not the output folder or the leakage override) and the model folder."""
        config = self.config()
        d = config.to_dict()
        for key in OWN_WIDGETS:
            d.pop(key, None)
        self.settings.setValue(_KEY_CONFIG, json.dumps(d))
        self.settings.setValue(_KEY_MODEL, config.model_dir)
        self.settings.setValue(_KEY_TRAIN_FILE, self.train_file_edit.text().strip())

    @Slot()
    def _on_form_changed(self, *_args) -> None:
        if not self._loading:
            self._schedule_checks()

    def _schedule_checks(self) -> None:
        self._check_timer.start()

    @Slot()
    def _on_model_edited(self) -> None:
        self.set_model_dir(self.model_edit.text())

    @Slot()
    def _on_start_clicked(self) -> None:
        self.start()

    @Slot(float)
    def _on_smoothing_changed(self, weight: float) -> None:
        self.settings.setValue(_KEY_SMOOTHING, weight)

    # =====================================================================================
    # model folder, data, output
    # =====================================================================================
    def set_model_dir(self, path: str) -> None:
        path = (path or "").strip()
        if self.model_edit.text() != path:
            self.model_edit.setText(path)
        if path:
            self.settings.setValue(_KEY_MODEL, path)
        self._show_model_check()
        self._schedule_checks()

    def model_check(self):
        return check_model_folder(self.model_edit.text().strip())

    def _show_model_check(self) -> None:
        path = self.model_edit.text().strip()
        if not path:
            self.model_status.setText(_line(MUTED_COLOR, "•", "Choose the folder of a base model, or create the "
                                                              "demo model to try the flow."))
            return
        check = self.model_check()
        if check.ok:
            text = _line(OK_COLOR, "✓", "Model folder looks complete.")
            if is_demo_model(path):
                text += "<br>" + _line(WARN_COLOR, "⚠", "This is the demo model: random weights, only to try "
                                                       "the flow.")
            self.model_status.setText(text)
        else:
            self.model_status.setText(_line(BAD_COLOR, "✗", check.message))

    def choose_model_dir(self) -> None:
        start = self.model_edit.text().strip() or appsettings.last_folder(self.settings)
        path = QFileDialog.getExistingDirectory(self, "Base model folder", start)
        if path:
            self.set_model_dir(path)

    def choose_train_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training file", appsettings.last_folder(self.settings),
                                              DATASET_FILTER)
        if path:
            appsettings.set_last_folder(path, self.settings)
            self.set_train_file(path)

    def choose_val_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Validation file", appsettings.last_folder(self.settings),
                                              DATASET_FILTER)
        if path:
            self.set_validation_file(path)

    def choose_output_dir(self) -> None:
        start = self.output_edit.text().strip() or self.runs_root()
        path = QFileDialog.getExistingDirectory(self, "Output folder", start)
        if path:
            self.output_edit.setText(path)

    def set_train_file(self, path: Optional[str]) -> None:
        """Train on a dataset file (used while no project is open)."""
        self.train_file_edit.setText(path or "")
        self.settings.setValue(_KEY_TRAIN_FILE, path or "")
        self.refresh_checks()
        self.refresh_runs()

    def set_validation_file(self, path: Optional[str]) -> None:
        self.val_file_edit.setText(path or "")
        self.refresh_checks()

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
        self.train_file_row.setEnabled(self.project_path is None)
        self.refresh_checks()
        self.refresh_runs()
        if switched and self.runs_list.count() and not self.checked_runs():
            # an opened project shows its newest run rather than empty charts
            newest = self.run_paths()[0]
            self.select_run(newest)
            self.set_run_checked(newest)

    def data_source(self) -> Optional[str]:
        """The project file, else the training file; None when there is neither."""
        if self.project_path:
            return self.project_path
        path = self.train_file_edit.text().strip()
        return path or None

    def runs_root(self) -> str:
        if self.project_path:
            return runs_root(self.project_path)
        return runs_root(None)

    def create_demo_model(self) -> None:
        """Make (or reuse) the demo model in the data folder, in a worker; it becomes the base model."""
        if self._demo_worker is not None:
            return
        folder = str(appsettings.data_dir() / DEMO_DIRNAME)
        self.demo_button.setEnabled(False)
        self.model_status.setText(_line(MUTED_COLOR, "…", "Creating the demo model…"))
        worker = Worker(_demo_job, folder, title="Demo model", parent=self, heavy=True)
        worker.finished.connect(self._on_demo_ready)
        worker.failed.connect(self._on_demo_failed)
        worker.ended.connect(self._on_demo_ended)
        self._demo_worker = self._track(worker)

    @Slot(str, str)
    def _on_demo_failed(self, message: str, details: str) -> None:
        self.report_error("Demo model", f"Could not create the demo model: {message}", details)

    @Slot(object)
    def _on_demo_ready(self, folder: str) -> None:
        self.set_model_dir(folder)
        self.log_line(f"Demo model ready in {folder} (random weights: only to try the flow).")
        self.demo_ready.emit(folder)

    @Slot()
    def _on_demo_ended(self) -> None:
        self._demo_worker = None
        self.demo_button.setEnabled(True)
        self._show_model_check()

    # =====================================================================================
    # pre-flight checks
    # =====================================================================================
    def refresh_checks(self) -> None:
        """Data size, leakage, device and memory estimate for the current settings."""
        self._show_source()
        self._refresh_estimate()

    def _refresh_estimate(self) -> None:
        """The memory estimate only (the settings changed; the data did not)."""
        self._check_timer.stop()
        self._show_memory()
        self._update_buttons()

    def _show_source(self) -> None:
        root = self.runs_root()
        self.output_edit.setPlaceholderText("automatic: a new dated folder under runs/")
        self.output_edit.setToolTip(TrainConfig.help_text("output_dir") + f" Empty: a new folder named by the date "
                                    f"and time in {root}.")
        lines: list[str] = []
        self.leaks = []
        if self.project_path:
            name = os.path.basename(self.project_path)
            try:
                counts, self.leaks = self._project_facts()
            except (ProjectError, OSError, ValueError) as exc:
                self.source_label.setText(_line(BAD_COLOR, "✗", f"Cannot read the project: {describe_error(exc)}"))
                self.checks_label.setText("")
                return
            n = counts["train"]
            self.source_label.setText(
                f"Project <b>{html.escape(name)}</b>: <b>{n:,}</b> approved training records, "
                f"{counts['validation']:,} approved validation, {counts['test']:,} test (held-out).")
            if n == 0:
                lines.append(_line(BAD_COLOR, "✗", "No approved training records: approve or edit records in the "
                                                  "review first."))
            elif n < SMALL_SET:
                lines.append(_line(WARN_COLOR, "⚠", f"Only {n:,} approved examples: under {SMALL_SET} a fine-tune "
                                                   "learns little; aim for 500-1,000 clean examples."))
            elif n < OVERFIT_SET:
                lines.append(_line(WARN_COLOR, "⚠", f"{n:,} approved examples: under {OVERFIT_SET:,} overfitting is "
                                                   "likely; keep epochs low and watch the validation loss."))
            if counts["validation"] == 0 and not self.val_file_edit.text().strip():
                lines.append(_line(MUTED_COLOR, "•", "No validation split: 10% of the training records are held "
                                                    "back to watch the validation loss."))
        else:
            path = self.train_file_edit.text().strip()
            if path:
                ok = os.path.isfile(path)
                self.source_label.setText(
                    f"No project open: training on every usable record of <b>{html.escape(os.path.basename(path))}"
                    "</b>." if ok else _line(BAD_COLOR, "✗", f"{path}: no such file"))
                lines.append(_line(MUTED_COLOR, "•", "A plain file is not reviewed: open it as a project to train on "
                                                    "approved records only."))
            else:
                self.source_label.setText("No project open: choose a training file, or open a project and approve "
                                          "records.")
        if self.leaks:
            lines.append(_line(BAD_COLOR, "✗", "Leakage: " + describe_leakage(self.leaks) + ". Training is refused "
                               "until these records are rejected or moved (Leakage tab), unless you allow it below "
                               "(the evaluation will then look better than it is)."))
        self.leak_check.setVisible(bool(self.leaks))
        if not self.leaks:
            self.leak_check.setChecked(False)
        self.checks_label.setText("<br>".join(lines))
        self.checks_label.setVisible(bool(lines))

    def _project_facts(self) -> tuple[dict, list]:
        """Record counts and unresolved leakage of the project (the open one, else the
        file opened read-only for a moment)."""
        project = self.project
        if project is not None and not getattr(project, "closed", False):
            return approved_counts(project), check_leakage(project)
        with Project.open(self.project_path, readonly=True) as p:
            return approved_counts(p), check_leakage(p)

    def _ensure_device(self) -> bool:
        """True when the device is known; else start detecting it (torch loads in a worker)."""
        if _DEVICE is not None:
            return True
        if self._detect_worker is None:
            worker = Worker(_detect_job, title="Detecting the device", parent=self, heavy=True)
            worker.finished.connect(self._on_device)
            worker.failed.connect(self._on_detect_failed)
            worker.ended.connect(self._on_detect_ended)
            self._detect_worker = self._track(worker)
        return False

    @Slot(object)
    def _on_device(self, info) -> None:
        global _DEVICE
        _DEVICE = (str(info[0]), info[1])
        self._show_memory()

    @Slot(str, str)
    def _on_detect_failed(self, message: str, _details: str) -> None:
        self.device_label.setText(_line(WARN_COLOR, "⚠", f"Cannot detect the training device: {message}"))

    @Slot()
    def _on_detect_ended(self) -> None:
        self._detect_worker = None

    def _show_memory(self) -> None:
        check = self.model_check()
        if not check.ok:
            self.memory_label.setText(_line(MUTED_COLOR, "•", "Memory estimate: choose a complete model folder."))
            self.device_label.setText("")
            self.estimate = None
            return
        if not self._ensure_device():
            self.memory_label.setText(_line(MUTED_COLOR, "…", "Memory estimate: detecting the device…"))
            return
        device, total = _DEVICE
        if device == "cpu":
            self.device_label.setText(_line(WARN_COLOR, "⚠", "No GPU found: training runs on the CPU. Fine for the "
                                                             "demo model; very slow for real models."))
        elif device == "mps":
            self.device_label.setText(_line(OK_COLOR, "✓", "Apple GPU (MPS). QLoRA needs an NVIDIA GPU."))
        else:
            memory = f", {total / GIB:.0f} GiB" if total else ""
            self.device_label.setText(_line(OK_COLOR, "✓", f"NVIDIA GPU{memory}."))
        config = self.config()
        try:
            est = estimate_memory(config, config.model_dir, device_total_bytes=total, device=device)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.estimate = None
            self.memory_label.setText(_line(MUTED_COLOR, "•", f"Memory estimate unavailable: {describe_error(exc)}"))
            return
        self.estimate = est
        parts = ", ".join(f"{k.replace('_', ' ')} {v / GIB:.1f}" for k, v in est.parts.items())
        self.memory_label.setToolTip(f"Estimated peak memory in GiB: {parts}")
        if est.fits is True:
            self.memory_label.setText(_line(OK_COLOR, "✓", f"Fits: {est.advice}"))
        elif est.fits is False:
            self.memory_label.setText(_line(BAD_COLOR, "✗", f"Won't fit: {est.advice}"))
        else:
            self.memory_label.setText(_line(MUTED_COLOR, "•", f"Memory: {est.advice}"))

    # =====================================================================================
    # the run
    # =====================================================================================
    def is_running(self) -> bool:
        return self._train_worker is not None

    def start(self, resume: bool = False, run_dir: Optional[str] = None) -> bool:
        """Check, then start training in a worker. Returns False (after telling why) when it
        cannot start. ``resume``: continue ``run_dir`` (default: the run Resume would pick)."""
        if self.is_running():
            return False
        self.refresh_checks()
        config = self.config()
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
        if self.leaks and not self.leak_check.isChecked():
            self.report_error("Training refused", "Training records leak held-out records: "
                              + describe_leakage(self.leaks) + ".\n\nReject them or move them out of the training "
                              "split (Leakage tab) and scan again, or tick “Train despite leakage”.")
            return False
        if resume:
            run_dir = run_dir or self.resume_target()
            if not has_checkpoint(run_dir):
                self.report_error("Nothing to resume", "The selected run has no checkpoint to continue from.")
                return False
            output = run_dir
        else:
            output = self.output_edit.text().strip() or new_run_dir(self.runs_root())
        config.output_dir = os.path.abspath(output)
        config.allow_leakage = bool(self.leaks) and self.leak_check.isChecked()
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
        self._reset_charts()
        if resume:  # the chart starts with what the run logged before its checkpoint
            self._load_live_history(self.run_dir)
        self._eta_start = None
        self._run_started_at = time.monotonic()
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat("%v / %m steps")
        self.eta_label.setText("starting…")
        self.log_line(("Resuming" if resume else "Starting") + f" a {config.method} run in {self.run_dir}")
        eval_source = self.val_file_edit.text().strip() or None
        worker = Worker(_train_job, self.runner, config, source, eval_source, resume, title="Training",
                        parent=self, event_kw="on_event", stop=self._graceful.is_set, heavy=True)
        worker.progress.connect(self._on_progress)
        worker.event.connect(self._on_event)
        worker.finished.connect(self._on_train_finished)
        worker.failed.connect(self._on_train_failed)
        worker.cancelled.connect(self._on_train_cancelled)
        worker.ended.connect(self._on_train_ended)
        self._train_worker = self._track(worker)
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

    def _reset_charts(self) -> None:
        self.loss_chart.clear_live()
        for chart in (self.lr_chart, self.throughput_chart, self.memory_chart):
            chart.clear_data()

    def _load_live_history(self, run_dir: str) -> None:
        """Plot what a resumed run logged up to its newest checkpoint (the runner logs the
        steps after it again)."""
        ckpt = last_checkpoint(run_dir)
        upto = int(os.path.basename(ckpt).split("-")[-1]) if ckpt else 0
        for event in read_metrics(run_dir):
            if int(event.get("step") or 0) <= upto:
                self._plot_event(event)
        self.loss_chart.redraw()

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
        self._plot_event(event)
        line = self._describe_event(event)
        if line:
            self.log_line(line)

    def _plot_event(self, e: dict, loss: bool = True) -> None:
        """One metrics event onto the charts (``loss=False``: the small charts only)."""
        kind = e.get("type")
        step = e.get("step")
        if step is None:
            return
        if "loss" in e and kind in (None, "train"):
            if loss:
                self.loss_chart.add_train_loss(step, e.get("loss"))
            if e.get("learning_rate") is not None:
                self.lr_chart.add_point("lr", step, e["learning_rate"])
            if e.get("tokens_per_second") is not None:
                self.throughput_chart.add_point("tokens_per_second", step, e["tokens_per_second"])
        elif "eval_loss" in e and kind in (None, "eval") and loss:
            self.loss_chart.add_eval_loss(step, e.get("eval_loss"))
        if e.get("gpu_memory_bytes"):
            self.memory_chart.add_point("gpu_memory", step, e["gpu_memory_bytes"] / GIB)

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
                parts.append(f"on {e['device']}")
            if e.get("max_steps"):
                parts.append(f"{e['max_steps']} steps")
            if e.get("trainable_parameters"):
                parts.append(f"{e['trainable_parameters']:,} trainable parameters")
            if e.get("resumed_from"):
                parts.append(f"resumed from {os.path.basename(str(e['resumed_from']))}")
            return "Started: " + ", ".join(parts)
        if kind == "early_stop":
            return (f"Early stop at step {e.get('step')}: the validation loss has not improved since step "
                    f"{e.get('best_step')} ({_num(e.get('best_eval_loss'))}).")
        if kind == "end":
            return ""  # the finished handler writes the summary
        step = e.get("step")
        if "loss" in e and kind in (None, "train"):
            text = f"step {step:>6}  loss {_num(e.get('loss'))}"
            if e.get("learning_rate") is not None:
                text += f"  lr {_num(e['learning_rate'], '.2e')}"
            if e.get("grad_norm") is not None:
                text += f"  grad {_num(e['grad_norm'], '.3f')}"
            if e.get("tokens_per_second"):
                text += f"  {_num(e['tokens_per_second'], ',.0f')} tok/s"
            if e.get("gpu_memory_bytes"):
                text += f"  {e['gpu_memory_bytes'] / GIB:.2f} GiB"
            return text
        if "eval_loss" in e:
            return f"step {step:>6}  validation loss {_num(e.get('eval_loss'))}" + ("  (best)" if e.get("best") else "")
        return ""

    @Slot(object)
    def _on_train_finished(self, result: Any) -> None:
        self.last_result = result
        stopped = bool(getattr(result, "stopped", False))
        step = getattr(result, "global_step", None)
        summary = [f"{'Stopped' if stopped else 'Finished'} at step {step}"]
        if getattr(result, "final_loss", None) is not None:
            summary.append(f"training loss {_num(result.final_loss)}")
        if getattr(result, "best_eval_loss", None) is not None:
            summary.append(f"best validation loss {_num(result.best_eval_loss)} (step {result.best_step})")
        if getattr(result, "elapsed", None):
            summary.append(f"in {duration(result.elapsed)}")
        self.log_line(", ".join(summary) + f". Adapter saved in {self.run_dir}.")
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(1)
        self.eta_label.setText(f"done in {duration(time.monotonic() - self._run_started_at)}")
        self._finish_state("finished", "stopped — adapter saved" if stopped else "finished")
        self.refresh_runs(select=self.run_dir)
        self.run_finished.emit(self.run_dir or "")

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
        color = {"running": OK_COLOR, "finished": OK_COLOR, "stopping": WARN_COLOR, "cancelling": WARN_COLOR,
                 "failed": BAD_COLOR, "cancelled": WARN_COLOR}.get(state, MUTED_COLOR)
        self.state_label.setText(f'<span style="color:{color}">●</span> {html.escape(text or state)}'
                                 if state != "idle" else "")
        self._update_buttons()
        self.state_changed.emit(state)

    def _update_buttons(self) -> None:
        running = self.is_running()
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running and self.state == "running")
        self.cancel_button.setEnabled(running and self.state != "cancelling")
        self.resume_button.setEnabled(not running and self.resume_target() is not None)
        for w in (self.model_edit, self.model_browse, self.demo_button, self.output_edit, self.output_browse):
            w.setEnabled(not running and (w is not self.demo_button or self._demo_worker is None))
        run = self.selected_run() or self.run_dir
        evaluating = self._eval_worker is not None
        adapter = has_adapter(run) and not (running and run == self.run_dir)
        self.eval_button.setEnabled(adapter and not evaluating)
        self.eval_cancel_button.setEnabled(evaluating)
        self.merge_button.setEnabled(adapter and self._merge_worker is None)
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
        self.use_settings_button.setEnabled(bool(self.selected_run()))

    def log_line(self, text: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    # =====================================================================================
    # past runs
    # =====================================================================================
    def refresh_runs(self, select: Optional[str] = None) -> None:
        """List the run folders (newest first), keeping ticks and the selection."""
        checked = set(self.checked_runs())
        current = select or self.selected_run()
        runs = list_runs(self.runs_root())
        for extra in self._session_runs:
            if extra not in runs and is_run_dir(extra):
                runs.insert(0, extra)
        self.runs_list.blockSignals(True)
        try:
            self.runs_list.clear()
            for path in runs:
                name = os.path.basename(path)
                tags = []
                if has_adapter(path):
                    tags.append("adapter")
                if os.path.isfile(os.path.join(path, REPORT_FILE)):
                    tags.append("evaluated")
                item = QListWidgetItem(name + (f"  ({', '.join(tags)})" if tags else ""))
                item.setData(Qt.ItemDataRole.UserRole, path)
                item.setToolTip(path)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if path in checked else Qt.CheckState.Unchecked)
                self.runs_list.addItem(item)
                if path == current:
                    self.runs_list.setCurrentItem(item)
        finally:
            self.runs_list.blockSignals(False)
        # overlays of runs that are gone go too; ticked ones are re-read (a run may have grown)
        self.set_overlays(self.checked_runs())
        self._on_selected_run_changed()

    def run_paths(self) -> list[str]:
        return [self.runs_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.runs_list.count())]

    def checked_runs(self) -> list[str]:
        return [self.runs_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.runs_list.count())
                if self.runs_list.item(i).checkState() == Qt.CheckState.Checked]

    def selected_run(self) -> Optional[str]:
        item = self.runs_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def select_run(self, path: str) -> None:
        for i in range(self.runs_list.count()):
            if self.runs_list.item(i).data(Qt.ItemDataRole.UserRole) == path:
                self.runs_list.setCurrentRow(i)
                return

    def set_run_checked(self, path: str, checked: bool = True) -> None:
        """Tick a run in the list: its loss curves are overlaid on the loss chart."""
        for i in range(self.runs_list.count()):
            item = self.runs_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == path:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def set_overlays(self, run_dirs: list[str]) -> None:
        """Overlay exactly these runs' curves (read from their metrics.jsonl)."""
        labels = {os.path.basename(p): p for p in run_dirs}
        for label in self.loss_chart.overlays():
            if label not in labels:
                self.loss_chart.remove_overlay(label)
        for label, path in labels.items():
            train, evals = loss_curves(read_metrics(path))
            self.loss_chart.add_overlay(label, train, evals)

    @Slot(QListWidgetItem)
    def _on_run_item_changed(self, _item: QListWidgetItem) -> None:
        self.set_overlays(self.checked_runs())

    @Slot()
    def _on_selected_run_changed(self, *_args) -> None:
        run = self.selected_run()
        if run and self._eval_worker is None:
            self._show_report(self._read_report(run))
        if self.run_dir is None and not self.is_running():
            self._show_run_details(run)
        self._update_buttons()

    def _show_run_details(self, run: Optional[str]) -> None:
        """Before a run starts here, the small charts (learning rate, throughput, memory) show
        the selected past run (its loss curves are the ticked overlays)."""
        charts = (self.lr_chart, self.throughput_chart, self.memory_chart)
        for chart in charts:
            chart.clear_data()
        if run:
            for event in read_metrics(run):
                self._plot_event(event, loss=False)
        for chart in charts:
            chart.redraw()

    def use_selected_run_settings(self) -> None:
        run = self.selected_run()
        if not run:
            return
        try:
            config = TrainConfig.from_json(os.path.join(run, RUN_CONFIG_FILE))
        except (OSError, ValueError) as exc:
            self.report_error("Run settings", f"Cannot read the run's settings: {describe_error(exc)}")
            return
        config.output_dir = ""
        config.allow_leakage = False
        self.set_config(config)
        self.log_line(f"Settings of {os.path.basename(run)} loaded into the form.")

    # =====================================================================================
    # evaluation and merging
    # =====================================================================================
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

    def _run_model_dir(self, run: str) -> str:
        """The base model a run was trained on (its run_config.json), else the form's."""
        try:
            with open(os.path.join(run, RUN_CONFIG_FILE), encoding="utf-8") as f:
                model = json.load(f).get("model_dir")
            if model:
                return str(model)
        except (OSError, ValueError, AttributeError):
            pass
        return self.model_edit.text().strip()

    def evaluate_run(self, run_dir: Optional[str] = None) -> bool:
        """Base vs base + adapter on the held-out data, in a worker; the report is saved in the run."""
        run = run_dir or self.selected_run() or self.run_dir
        if self._eval_worker is not None:
            return False
        if not has_adapter(run):
            self.report_error("Evaluate", "Choose a run with a saved adapter (a finished or stopped run).")
            return False
        source = self.eval_source()
        if source is None:
            self.report_error("Evaluate", "Choose a held-out file (or open a project with test records).")
            return False
        if source[0] == "file" and not os.path.isfile(source[1]):
            self.report_error("Evaluate", f"{source[1]}: no such file")
            return False
        model_dir = self._run_model_dir(run)
        self.eval_status.setText(_line(MUTED_COLOR, "…", "Evaluating: loading the model…"))
        self.log_line(f"Evaluating {os.path.basename(run)} against {model_dir}…")
        worker = Worker(_evaluate_job, self.evaluator, model_dir, source, run, self.max_new_spin.value(),
                        self.num_gen_spin.value(), title="Evaluation", parent=self, heavy=True)
        worker.progress.connect(self._on_eval_progress)
        worker.finished.connect(self._on_eval_finished)
        worker.failed.connect(self._on_eval_failed)
        worker.cancelled.connect(self._on_eval_cancelled)
        worker.ended.connect(self._on_eval_ended)
        self._eval_run = run
        self._eval_worker = self._track(worker)
        self._update_buttons()
        return True

    def cancel_evaluation(self) -> None:
        if self._eval_worker is not None:
            self._eval_worker.cancel()

    @Slot(int, int, str)
    def _on_eval_progress(self, done: int, total: int, message: str) -> None:
        count = f" ({done:,}/{total:,})" if total else ""
        self.eval_status.setText(_line(MUTED_COLOR, "…", f"Evaluating: {message}{count}"))

    @Slot(object)
    def _on_eval_finished(self, report: dict) -> None:
        run = self._eval_run
        self.last_report = report
        self._show_report(report)
        self.eval_status.setText(_line(OK_COLOR, "✓", f"Saved as {os.path.join(run, REPORT_FILE)}"))
        self.log_line(f"Evaluation saved in {run}.")
        self.refresh_runs(select=run)
        self.evaluation_finished.emit(report)

    @Slot()
    def _on_eval_cancelled(self) -> None:
        self.eval_status.setText(_line(WARN_COLOR, "⚠", "Evaluation cancelled."))

    @Slot(str, str)
    def _on_eval_failed(self, message: str, details: str) -> None:
        self.eval_status.setText(_line(BAD_COLOR, "✗", f"Evaluation failed: {message}"))
        self.report_error("Evaluation failed", message, details)

    @Slot()
    def _on_eval_ended(self) -> None:
        self._eval_worker = None
        self._update_buttons()

    @staticmethod
    def _read_report(run: str) -> Optional[dict]:
        try:
            with open(os.path.join(run, REPORT_FILE), encoding="utf-8") as f:
                report = json.load(f)
            return report if isinstance(report, dict) else None
        except (OSError, ValueError):
            return None

    def _show_report(self, report: Optional[dict]) -> None:
        """Fill the loss/perplexity table and the generations table (empty for None)."""
        base = (report or {}).get("base") or {}
        tuned = (report or {}).get("tuned") or {}
        for row, key in enumerate(("loss", "perplexity")):
            b, t = base.get(key), tuned.get(key)
            change = ""
            if isinstance(b, (int, float)) and isinstance(t, (int, float)):
                pct = f" ({(t - b) / b:+.1%})" if b else ""
                change = f"{t - b:+.4f}{pct}"
            for col, text in enumerate((_num(b), _num(t), change)):
                item = QTableWidgetItem(text if report else "")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if col == 2 and change:  # lower is better for both
                    item.setForeground(QColor(OK_COLOR if t < b else BAD_COLOR if t > b else MUTED_COLOR))
                self.metrics_table.setItem(row, col, item)
        gens = (report or {}).get("generations") or []
        self.gen_table.setRowCount(len(gens))
        for row, g in enumerate(gens):
            for col, key in enumerate(("prompt", "reference", "base", "tuned")):
                text = str(g.get(key, "") or "")
                item = QTableWidgetItem(text if text.strip() or key not in ("base", "tuned") else "(empty answer)")
                if not text.strip() and key in ("base", "tuned"):  # say so rather than show a blank cell
                    item.setForeground(self.palette().placeholderText())
                    font = item.font()
                    font.setItalic(True)
                    item.setFont(font)
                item.setToolTip(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
                self.gen_table.setItem(row, col, item)
        if report is None:
            self.eval_status.setText("")

    def choose_merge_dir(self) -> None:
        run = self.selected_run() or self.run_dir
        if not has_adapter(run):
            return
        start = os.path.join(os.path.dirname(run), os.path.basename(run) + "-merged")
        path = QFileDialog.getExistingDirectory(self, "Save the merged model in", os.path.dirname(start))
        if path:
            self.merge_to(path, run)

    def merge_to(self, out_dir: str, run_dir: Optional[str] = None) -> bool:
        """Merge the run's adapter into the base model and save it in ``out_dir`` (a worker)."""
        run = run_dir or self.selected_run() or self.run_dir
        if self._merge_worker is not None or not has_adapter(run):
            return False
        model_dir = self._run_model_dir(run)
        self.eval_status.setText(_line(MUTED_COLOR, "…", "Merging the adapter into the base model…"))
        worker = Worker(_merge_job, self.merger, model_dir, run, out_dir, title="Merging", parent=self, heavy=True)
        worker.finished.connect(self._on_merge_finished)
        worker.failed.connect(self._on_merge_failed)
        worker.ended.connect(self._on_merge_ended)
        self._merge_worker = self._track(worker)
        self._update_buttons()
        return True

    @Slot(str, str)
    def _on_merge_failed(self, message: str, details: str) -> None:
        self.eval_status.setText(_line(BAD_COLOR, "✗", f"Merge failed: {message}"))
        self.report_error("Merge failed", message, details)

    @Slot(object)
    def _on_merge_finished(self, out_dir: str) -> None:
        self.eval_status.setText(_line(OK_COLOR, "✓", f"Merged model saved in {out_dir}"))
        self.log_line(f"Merged model saved in {out_dir}.")
        self.merge_finished.emit(str(out_dir))

    @Slot()
    def _on_merge_ended(self) -> None:
        self._merge_worker = None
        self._update_buttons()

    # =====================================================================================
    # plumbing
    # =====================================================================================
    def _track(self, worker: Worker) -> Worker:
        """Start ``worker`` and keep it until it has ended."""
        self._workers.append(worker)
        worker.ended.connect(self._forget_worker)
        return worker.start()

    # Signals connect to methods, not to lambdas that hold ``self``: such a cycle lets the
    # garbage collector delete a parentless view behind Qt's back.
    @Slot()
    def _forget_worker(self) -> None:
        worker = self.sender()
        if worker in self._workers:
            self._workers.remove(worker)
        if isinstance(worker, Worker):
            worker.deleteLater()

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
        self._check_timer.stop()
        try:
            self.save_settings()
        except RuntimeError:  # widgets already gone
            pass
        pending = [w for w in self._workers if w.is_running()]
        for worker in pending:
            worker.cancel()
        if pending:
            # Worker.wait() alone would block the queued "cancelled"/"finished" signals that
            # let the thread quit: wait in a local event loop until every worker has ended.
            loop = QEventLoop()
            left = set(pending)

            def ended(w: Worker) -> None:
                left.discard(w)
                if not left:
                    loop.quit()

            for worker in pending:
                worker.ended.connect(lambda w=worker: ended(w))
            QTimer.singleShot(timeout_ms, loop.quit)
            if left:
                loop.exec()
