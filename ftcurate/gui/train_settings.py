"""The left side of the training window: what to train. The base model folder (or the demo
model), the training and validation data, the output folder, the pre-flight checks (data
size, leakage, device, memory estimate) and one widget per :class:`TrainConfig` field.

:class:`TrainSettingsPanel` remembers the model folder, the last settings and the training
file in QSettings. Device detection imports torch, so it runs in a worker, once per process
(:data:`_DEVICE`).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import fields
from typing import Any, Optional

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QScrollArea, QSpinBox, QVBoxLayout,
                               QWidget)

from ..core.io.validate import OVERFIT_SET, SMALL_SET
from ..core.project.store import Project, ProjectError
from ..train.config import METHODS, STRATEGIES, TrainConfig
from ..train.data import check_leakage, describe_leakage
from ..train.distributed import strategy_problem
from ..train.launch import device_count
from ..train.model import (DEMO_TRAIN_SETTINGS, check_model_folder, create_demo_model, detect_device,
                           device_memory_bytes, estimate_memory, is_demo_model)
from . import settings as appsettings
from .theme import muted_label
from .train_common import (DATASET_FILTER, DEMO_DIRNAME, GIB,
                           WorkerPool, approved_counts, runs_root, status_line, wrap_label)
from .wheel_guard import guard_wheel
from .workers import Worker, describe_error

_KEY_MODEL = "train/model_dir"
_KEY_CONFIG = "train/config"
_KEY_TRAIN_FILE = "train/train_file"

# Fields with a widget of their own outside the settings form, or none at all ("data" is written
# by training; "uncurated" runs start from the "also train on the uncurated data" box).
OWN_WIDGETS = ("model_dir", "output_dir", "allow_leakage", "data", "uncurated")
# The settings form, section by section; fields not named here land in "Other".
SECTIONS = (
    ("Adapter", ("method", "lora_r", "lora_alpha", "lora_dropout", "target_modules")),
    ("Schedule", ("learning_rate", "epochs", "max_steps", "batch_size", "grad_accum", "warmup_ratio", "seed")),
    ("Examples", ("max_seq_len", "packing", "assistant_only_loss")),
    ("Validation and checkpoints", ("eval_steps", "early_stopping_patience", "save_steps", "logging_steps")),
    ("Devices", ("world_size", "strategy")),
    ("Advanced", ("gradient_checkpointing", "trust_remote_code")),
)
CHOICES = {"method": METHODS, "strategy": STRATEGIES}  # fields shown as a drop-down
LABELS = {
    "method": "Method", "lora_r": "Rank (r)", "lora_alpha": "Alpha", "lora_dropout": "Dropout",
    "target_modules": "Target modules", "learning_rate": "Learning rate", "epochs": "Epochs",
    "max_steps": "Max steps", "batch_size": "Batch size", "grad_accum": "Gradient accumulation",
    "warmup_ratio": "Warm-up ratio", "seed": "Seed", "max_seq_len": "Max length (tokens)",
    "packing": "Packing", "assistant_only_loss": "Learn replies only", "eval_steps": "Validate every",
    "early_stopping_patience": "Early-stop patience", "save_steps": "Checkpoint every",
    "logging_steps": "Log every", "gradient_checkpointing": "Gradient checkpointing",
    "trust_remote_code": "Trust remote code", "model_dir": "Base model", "output_dir": "Output folder",
    "allow_leakage": "Allow leakage", "world_size": "Processes", "strategy": "Strategy",
}
INT_RANGES = {  # name -> (minimum, maximum, special text shown at the minimum)
    "lora_r": (1, 4096, ""), "lora_alpha": (1, 16384, ""), "batch_size": (1, 65536, ""),
    "grad_accum": (1, 65536, ""), "max_seq_len": (16, 1 << 21, ""), "seed": (0, 2 ** 31 - 1, ""),
    "eval_steps": (0, 10 ** 8, "once per epoch"), "early_stopping_patience": (0, 10 ** 4, "off"),
    "save_steps": (1, 10 ** 8, ""), "max_steps": (-1, 10 ** 9, "no limit (epochs)"),
    "logging_steps": (1, 10 ** 6, ""), "world_size": (1, 1024, ""),
}
INT_SUFFIX = {"eval_steps": " steps", "save_steps": " steps", "logging_steps": " steps",
              "early_stopping_patience": " evals"}
FLOAT_SPECS = {  # name -> (minimum, maximum, step, decimals)
    "lora_dropout": (0.0, 0.99, 0.01, 3), "epochs": (0.01, 10000.0, 0.5, 2), "warmup_ratio": (0.0, 0.99, 0.01, 3),
}

_DEVICE: Optional[tuple[str, Optional[int]]] = None  # (device, memory bytes) once detected, for every view
_DEVICE_COUNT: Optional[int] = None  # processes the device takes (GPUs found; CPU cores), once detected


# -- worker jobs (run in a worker thread; they touch no widget) --------------------------------------


def _detect_job(progress=None, cancel=None) -> tuple[str, Optional[int], int]:  # noqa: ARG001
    """The training device, its memory in bytes (None when unknown) and how many processes
    it takes (GPUs found, CPU cores). Imports torch."""
    device = detect_device()
    try:
        total = device_memory_bytes(device)
    except Exception:  # noqa: BLE001 - the estimate works without it
        total = None
    try:
        count = device_count(device)
    except Exception:  # noqa: BLE001 - one process always works
        count = 1
    return device, total, count


def _demo_job(folder: str, progress=None, cancel=None) -> str:  # noqa: ARG001
    """Create the demo model in ``folder`` (kept when a complete one is already there)."""
    if is_demo_model(folder) and check_model_folder(folder).ok:
        return folder
    if progress is not None:
        progress(0, 0, "creating the demo model")
    return create_demo_model(folder)


def detected_device() -> Optional[tuple[str, Optional[int]]]:
    """(device, memory bytes) once detected, else None."""
    return _DEVICE


FILE_PLACEHOLDER = "a dataset file, to train without a project"
FILE_PLACEHOLDER_PROJECT = "not used: a project is open"


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


# -- the panel -------------------------------------------------------------------------------------------


class TrainSettingsPanel(QScrollArea):
    """The settings column (it scrolls). ``config()`` is what the form shows."""

    changed = Signal()  # something the run buttons depend on changed (checks, output folder, override)
    train_file_changed = Signal()  # a new training file: the runs list may change
    error_reported = Signal(str, str, str)  # title, message, details
    log = Signal(str)
    demo_ready = Signal(str)  # the demo model folder

    def __init__(self, settings: QSettings, pool: WorkerPool, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.pool = pool
        self.project: Optional[Project] = None
        self.project_path: Optional[str] = None
        self.leaks: list[dict] = []
        self.estimate: Any = None  # the last MemoryEstimate
        self._demo_worker: Optional[Worker] = None
        self._detect_worker: Optional[Worker] = None
        self._loading = False  # set while widgets are filled from code (no change handling)

        self._check_timer = QTimer(self)  # new memory estimate a moment after the settings changed
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(250)
        self._check_timer.timeout.connect(self._refresh_estimate)

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
        self.setWidget(inner)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(340)
        guard_wheel(self)  # scrolling the form must not change the field under the pointer
        self._restore()

    # =====================================================================================
    # construction
    # =====================================================================================
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
        self.model_status = wrap_label()
        v.addWidget(self.model_status)
        demo_row = QHBoxLayout()
        self.demo_button = QPushButton("Create a demo model")
        self.demo_button.setToolTip("A tiny model with random weights and its own small tokenizer, made in "
                                    "seconds on the CPU, to try the flow without downloading a model. It also "
                                    "fills in settings under which it learns the help-desk sample "
                                    "(File ▸ Open help-desk sample) in a few minutes.")
        self.demo_button.clicked.connect(self.create_demo_model)
        demo_note = muted_label("demo — random weights, only to try the flow")
        demo_row.addWidget(self.demo_button)
        demo_row.addWidget(demo_note, 1)
        v.addLayout(demo_row)
        self.field_widgets["model_dir"] = self.model_edit
        return box

    def _build_data_group(self) -> QGroupBox:
        box = QGroupBox("Training data")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.source_label = wrap_label()
        form.addRow(self.source_label)
        row = QHBoxLayout()
        self.train_file_edit = QLineEdit()
        self.train_file_edit.setPlaceholderText(FILE_PLACEHOLDER)
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
        self.output_edit.textChanged.connect(self.changed)
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
        self.memory_label = wrap_label()
        self.memory_label.setTextFormat(Qt.TextFormat.RichText)
        self.device_label = wrap_label()
        self.device_label.setTextFormat(Qt.TextFormat.RichText)
        self.checks_label = wrap_label()
        self.checks_label.setTextFormat(Qt.TextFormat.RichText)
        self.leak_check = QCheckBox("Train despite leakage")
        self.leak_check.setToolTip(TrainConfig.help_text("allow_leakage"))
        self.leak_check.setVisible(False)
        self.leak_check.toggled.connect(self.changed)
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
        if name in CHOICES:
            w: QWidget = QComboBox()
            w.addItems(list(CHOICES[name]))
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
        finally:
            self._loading = False
        self._show_model_check()

    # =====================================================================================
    # the form
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

    def set_running(self, running: bool) -> None:
        """While a run trains, its model and output folder stay as they are."""
        for w in (self.model_edit, self.model_browse, self.demo_button, self.output_edit, self.output_browse):
            w.setEnabled(not running and (w is not self.demo_button or self._demo_worker is None))

    def stop_timers(self) -> None:
        self._check_timer.stop()

    @Slot()
    def _on_form_changed(self, *_args) -> None:
        if not self._loading:
            self._schedule_checks()

    def _schedule_checks(self) -> None:
        self._check_timer.start()

    @Slot()
    def _on_model_edited(self) -> None:
        self.set_model_dir(self.model_edit.text())

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
            self.model_status.setText(status_line("muted", "•", "Choose the folder of a base model, or create "
                                                                    "the demo model to try the flow."))
            return
        check = self.model_check()
        if check.ok:
            text = status_line("ok", "✓", "Model folder looks complete.")
            if is_demo_model(path):
                text += "<br>" + status_line("warn", "⚠", "This is the demo model: random weights, only to "
                                                             "try the flow.")
            self.model_status.setText(text)
        else:
            self.model_status.setText(status_line("bad", "✗", check.message))

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
        self.train_file_changed.emit()

    def set_validation_file(self, path: Optional[str]) -> None:
        self.val_file_edit.setText(path or "")
        self.refresh_checks()

    def set_project(self, project: Optional[Project], project_path: Optional[str]) -> None:
        """The open project (and its absolute path), or None for none."""
        self.project = project
        self.project_path = project_path
        self.train_file_row.setEnabled(project_path is None)
        # the file is only used without a project: say so rather than "(no project open)"
        self.train_file_edit.setPlaceholderText(FILE_PLACEHOLDER if project_path is None else FILE_PLACEHOLDER_PROJECT)
        self.train_file_edit.setToolTip("Without an open project, train on every usable record of this file" +
                                        ("" if project_path is None else " (now: the open project's approved "
                                                                         "training records are trained on)"))
        self.refresh_checks()

    def data_source(self) -> Optional[str]:
        """The project file, else the training file; None when there is neither."""
        if self.project_path:
            return self.project_path
        path = self.train_file_edit.text().strip()
        return path or None

    def validation_file(self) -> Optional[str]:
        return self.val_file_edit.text().strip() or None

    def runs_root(self) -> str:
        return runs_root(self.project_path)

    def create_demo_model(self) -> None:
        """Make (or reuse) the demo model in the data folder, in a worker; it becomes the base model."""
        if self._demo_worker is not None:
            return
        folder = str(appsettings.data_dir() / DEMO_DIRNAME)
        self.demo_button.setEnabled(False)
        self.model_status.setText(status_line("muted", "…", "Creating the demo model…"))
        worker = Worker(_demo_job, folder, title="Demo model", parent=self, heavy=True)
        worker.finished.connect(self._on_demo_ready)
        worker.failed.connect(self._on_demo_failed)
        worker.ended.connect(self._on_demo_ended)
        self._demo_worker = self.pool.start(worker)

    @Slot(str, str)
    def _on_demo_failed(self, message: str, details: str) -> None:
        self.error_reported.emit("Demo model", f"Could not create the demo model: {message}", details)

    @Slot(object)
    def _on_demo_ready(self, folder: str) -> None:
        self.set_model_dir(folder)
        self.apply_demo_settings()
        self.log.emit(f"Demo model ready in {folder} (random weights: only to try the flow). Settings under "
                      "which it learns quickly were filled in: " + ", ".join(f"{k} {v:g}" for k, v in
                                                                             DEMO_TRAIN_SETTINGS.items()) + ".")
        self.demo_ready.emit(folder)

    def apply_demo_settings(self) -> None:
        """The settings under which the tiny demo model learns visibly in a short CPU run (a
        far higher learning rate than a real model wants)."""
        for name, value in DEMO_TRAIN_SETTINGS.items():
            w = self.field_widgets.get(name)
            if w is not None:
                w.setValue(value)

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
        self.changed.emit()

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
                self.source_label.setText(status_line("bad", "✗",
                                                      f"Cannot read the project: {describe_error(exc)}"))
                self.checks_label.setText("")
                return
            n = counts["train"]
            self.source_label.setText(
                f"Project <b>{html.escape(name)}</b>: <b>{n:,}</b> approved training records, "
                f"{counts['validation']:,} approved validation, {counts['test']:,} test (held-out).")
            if n == 0:
                lines.append(status_line("bad", "✗", "No approved training records: approve or edit records in "
                                                        "the review first."))
            elif n < SMALL_SET:
                lines.append(status_line("warn", "⚠", f"Only {n:,} approved examples: under {SMALL_SET} a "
                                                         "fine-tune learns little; aim for 500-1,000 clean examples."))
            elif n < OVERFIT_SET:
                lines.append(status_line("warn", "⚠", f"{n:,} approved examples: under {OVERFIT_SET:,} "
                                                         "overfitting is likely; keep epochs low and watch the "
                                                         "validation loss."))
            if counts["validation"] == 0 and not self.val_file_edit.text().strip():
                lines.append(status_line("muted", "•", "No validation split: 10% of the training records are held "
                                                          "back to watch the validation loss."))
        else:
            path = self.train_file_edit.text().strip()
            if path:
                ok = os.path.isfile(path)
                self.source_label.setText(
                    f"No project open: training on every usable record of <b>{html.escape(os.path.basename(path))}"
                    "</b>." if ok else status_line("bad", "✗", f"{path}: no such file"))
                lines.append(status_line("muted", "•", "A plain file is not reviewed: open it as a project to "
                                                          "train on approved records only."))
            else:
                self.source_label.setText("No project open: choose a training file, or open a project and approve "
                                          "records.")
        if self.leaks:
            lines.append(status_line("bad", "✗", "Leakage: " + describe_leakage(self.leaks) + ". Training is "
                                     "refused until these records are rejected or moved (Leakage tab), unless you "
                                     "allow it below (the evaluation will then look better than it is)."))
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
            self._detect_worker = self.pool.start(worker)
        return False

    @Slot(object)
    def _on_device(self, info) -> None:
        global _DEVICE, _DEVICE_COUNT
        _DEVICE = (str(info[0]), info[1])
        _DEVICE_COUNT = int(info[2]) if len(info) > 2 else None
        self._show_memory()
        self.changed.emit()

    @Slot(str, str)
    def _on_detect_failed(self, message: str, _details: str) -> None:
        self.device_label.setText(status_line("warn", "⚠", f"Cannot detect the training device: {message}"))

    @Slot()
    def _on_detect_ended(self) -> None:
        self._detect_worker = None

    def _show_memory(self) -> None:
        check = self.model_check()
        if not check.ok:
            self.memory_label.setText(status_line("muted", "•", "Memory estimate: choose a complete model "
                                                                    "folder."))
            self.device_label.setText("")
            self.estimate = None
            return
        if not self._ensure_device():
            self.memory_label.setText(status_line("muted", "…", "Memory estimate: detecting the device…"))
            return
        device, total = _DEVICE
        config = self.config()
        if device == "cpu":
            self.device_label.setText(status_line("warn", "⚠", "No GPU found: training runs on the CPU. Fine "
                                                                   "for the demo model; very slow for real models."))
        elif device == "mps":
            self.device_label.setText(status_line("ok", "✓", "Apple GPU (MPS). QLoRA needs an NVIDIA GPU."))
        else:
            memory = f", {total / GIB:.0f} GiB" if total else ""
            found = f"{_DEVICE_COUNT} NVIDIA GPUs" if (_DEVICE_COUNT or 1) > 1 else "NVIDIA GPU"
            self.device_label.setText(status_line("ok", "✓", f"{found}{memory}."))
        self._show_processes(device, config)
        try:
            est = estimate_memory(config, config.model_dir, device_total_bytes=total, device=device)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.estimate = None
            self.memory_label.setText(status_line("muted", "•",
                                                  f"Memory estimate unavailable: {describe_error(exc)}"))
            return
        self.estimate = est
        parts = ", ".join(f"{k.replace('_', ' ')} {v / GIB:.1f}" for k, v in est.parts.items())
        self.memory_label.setToolTip(f"Estimated peak memory in GiB: {parts}")
        if est.fits is True:
            self.memory_label.setText(status_line("ok", "✓", f"Fits: {est.advice}"))
        elif est.fits is False:
            self.memory_label.setText(status_line("bad", "✗", f"Won't fit: {est.advice}"))
        else:
            self.memory_label.setText(status_line("muted", "•", f"Memory: {est.advice}"))

    def _show_processes(self, device: str, config: TrainConfig) -> None:
        """The Processes field's range and tooltip, and a line saying how the run will be split."""
        spin = self.field_widgets.get("world_size")
        if isinstance(spin, QSpinBox):
            found = _DEVICE_COUNT
            what = {"cuda": f"{found} GPU(s) found" if found else "GPUs",
                    "cpu": f"no GPU: CPU processes, {found} cores" if found else "no GPU: CPU processes",
                    "mps": "an Apple GPU: one process"}.get(device, "")
            spin.setToolTip(TrainConfig.help_text("world_size") + (f" This machine: {what}." if what else ""))
            if found:
                spin.setMaximum(max(1, found))  # one process per GPU (per core on the CPU)
        n = config.world_size
        if n <= 1:
            return
        batch = config.batch_size * config.grad_accum * n
        problem = strategy_problem(config, device)
        if problem:
            line = status_line("bad", "✗", problem)
        elif device == "cpu":
            line = status_line("warn", "⚠", f"{n} CPU processes ({config.strategy}, gloo): only to try a "
                                            f"multi-process run; effective batch {batch}.")
        else:
            line = status_line("ok", "✓", f"{n} processes, one per GPU ({config.strategy}); effective batch "
                                          f"{batch}.")
        self.device_label.setText(self.device_label.text() + "<br>" + line)
