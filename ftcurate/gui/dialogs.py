"""The app's dialogs: scan settings, export and import.

* :class:`ScanSettingsDialog` is generated from the :class:`~ftcurate.core.quality.scan.ScanSettings`
  and :class:`~ftcurate.core.quality.heuristics.HeuristicSettings` dataclass fields: one editor per
  field, chosen by its type, with the field's help text as tooltip. A new field shows up
  without touching this file. :func:`load_scan_settings` / :func:`save_scan_settings` keep
  the settings in QSettings as JSON.
* :class:`ExportDialog` runs :func:`~ftcurate.core.io.export.export_project` (through
  :func:`~ftcurate.gui.tasks.export_dataset`, as the CLI's ``export``) in a
  :class:`~ftcurate.gui.workers.Worker`, with progress and cancel, and shows the files written.
* :class:`ImportDialog` previews a dataset file with a format and column mapping, validates
  it in a worker, lists the problems with their raw text, and hands back
  :class:`~ftcurate.gui.tasks.ImportOptions` for :func:`~ftcurate.gui.tasks.open_dataset`.

Errors are shown as text inside the dialogs (never a traceback). ``interactive=False`` (tests,
screenshots) never opens a file chooser or a question box.
"""

from __future__ import annotations

import json
import os
import typing
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Callable, Optional

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QFontDatabase
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QButtonGroup, QCheckBox,
                               QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QFrame, QGridLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QRadioButton, QScrollArea, QSizePolicy,
                               QSpinBox, QSplitter, QTableView, QTabWidget, QVBoxLayout, QWidget)

from ..core.quality.embeddings import BUILTIN, check_model_folder
from ..core.io.export import EXTENSIONS
from ..core.io.formats import FORMAT_CHOICES, FORMATS
from ..core.io.formats.tabular import MAPPING_KEYS
from ..core.quality.heuristics import LANG_SCRIPT
from ..core.io.ingest import INCLUDE_CHOICES
from ..core.quality.scan import ScanSettings
from ..core.io.validate import ValidationReport, validate_path
from . import tasks
from .models import RowsTableModel
from .workers import Worker

ERROR_STYLE = "color: #e03131"
MUTED_STYLE = "color: palette(placeholder-text)"

FORMAT_LABELS = {
    "auto": "Detect automatically",
    "openai-chat": "OpenAI chat (messages)",
    "prompt-completion": "Prompt / completion",
    "alpaca": "Alpaca (instruction / input / output)",
    "sharegpt": "ShareGPT (conversations)",
    "csv": "CSV (one record a row)",
    "parquet": "Parquet (one record a row)",
}
CONTAINER_LABELS = {"jsonl": "JSON Lines", "json": "JSON array", "csv": "CSV", "parquet": "Parquet"}

# Every dialog worker stays referenced here until it has ended, so closing a dialog never
# destroys a thread that still runs (a closed dialog's workers are cancelled, their results dropped).
_RUNNING: set = set()


def _start_worker(worker: Worker) -> Worker:
    _RUNNING.add(worker)
    worker.ended.connect(lambda w=worker: _RUNNING.discard(w))
    return worker.start()


def _error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(ERROR_STYLE)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def _show_error(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))


def _tip(widget: QWidget, text: str) -> QWidget:
    """Set a tooltip on a widget (and on the line edit inside an editable combo box)."""
    widget.setToolTip(text)
    if isinstance(widget, QComboBox) and widget.lineEdit() is not None:
        widget.lineEdit().setToolTip(text)
    return widget


def _button_tips(box: QDialogButtonBox, tips: dict) -> None:
    for which, text in tips.items():
        button = box.button(which)
        if button is not None:
            button.setToolTip(text)


# ==================================================================================================
# Scan settings
# ==================================================================================================

SCAN_SETTINGS_KEY = "scan/settings"


def load_scan_settings(qsettings: QSettings) -> ScanSettings:
    """The scan settings saved in ``qsettings`` (JSON); the defaults when there are none or
    they can't be read. Settings that no longer exist are dropped."""
    text = qsettings.value(SCAN_SETTINGS_KEY, "")
    if not text:
        return ScanSettings()
    try:
        data = json.loads(str(text))
        known = {f.name for f in fields(ScanSettings)}
        return ScanSettings.from_dict({k: v for k, v in data.items() if k in known})
    except (TypeError, ValueError, AttributeError):
        return ScanSettings()


def save_scan_settings(qsettings: QSettings, settings: ScanSettings) -> None:
    qsettings.setValue(SCAN_SETTINGS_KEY, settings.to_json())


# Where each field goes (fields not listed land on an "Other" tab, so none is ever hidden).
_SCAN_GROUPS = (
    ("&Duplicates", ("lowercase", "near_duplicates", "minhash_threshold", "num_perm", "ngram", "seed",
                     "lsh_storage", "semantic_duplicates", "semantic_threshold")),
    ("&Embeddings && outliers", ("embedding_model", "outlier_model", "auto_accurate_max", "outliers", "knn_k",
                                 "iqr_factor", "length_outliers")),
    ("&Leakage", ("leakage", "leak_ngram", "leak_minhash_threshold", "semantic_leakage", "accurate_model")),
    ("&Heuristics", ("heuristics",)),
)
# Labels that read better than the field name made into words.
_SCAN_LABELS = {
    "lowercase": "Ignore case",
    "minhash_threshold": "MinHash threshold",
    "num_perm": "MinHash permutations",
    "ngram": "Words per shingle",
    "seed": "MinHash seed",
    "lsh_storage": "LSH storage (JSON)",
    "knn_k": "Neighbours (k)",
    "iqr_factor": "IQR factor",
    "auto_accurate_max": "Accurate model up to (records)",
    "leak_ngram": "Overlap n-gram (words)",
    "leak_minhash_threshold": "Leak MinHash threshold",
    "semantic_leakage": "Semantic leakage (rephrased test items)",
    "empty_answer": "Empty answers",
    "placeholder": "Placeholder answers",
    "truncated": "Truncated answers",
    "too_long": "Too long",
    "max_tokens": "Maximum tokens",
    "refusal": "Refusals and AI boilerplate",
    "pii": "Personal data and secrets (PII)",
    "mojibake": "Broken encoding (mojibake)",
    "repetition": "Repetition",
    "unseen_media": "References to unseen media",
    "language": "Wrong language",
    "template_placeholder": "Unfilled template placeholders",
}
# (minimum, maximum, step) of number fields; others get (0, 2**31 - 1, 1) or (0, 1, 0.01).
_RANGES = {
    "num_perm": (16, 4096, 16),
    "ngram": (1, 50, 1),
    "seed": (0, 2**31 - 1, 1),
    "auto_accurate_max": (0, 100_000_000, 1000),
    "knn_k": (1, 500, 1),
    "iqr_factor": (0.1, 20.0, 0.1),
    "leak_ngram": (1, 100, 1),
    "max_tokens": (16, 10_000_000, 512),
    "repetition_repeats": (2, 1000, 1),
}
# A switch and the fields that only matter when it is on (disabled while it is off).
_DEPENDS = {
    "near_duplicates": ("minhash_threshold", "num_perm", "ngram", "seed", "lsh_storage"),
    "semantic_duplicates": ("semantic_threshold",),
    "outliers": ("knn_k", "iqr_factor"),
    "leakage": ("leak_ngram", "leak_minhash_threshold", "semantic_leakage"),
    "heuristics.too_long": ("heuristics.max_tokens",),
    "heuristics.repetition": ("heuristics.repetition_threshold", "heuristics.repetition_repeats"),
    "heuristics.language": ("heuristics.target_language",),
}
_BROWSE_TEXT = "Browse folder…"
_FIELD_WIDTH = 160  # number fields and short choices: one width, so the form lines up


def _words(name: str) -> str:
    return _SCAN_LABELS.get(name) or name.replace("_", " ").capitalize()


def _unwrap(hint: Any) -> Any:
    """``Optional[X]`` -> ``X``."""
    if typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


class _Knob:
    """The editor of one settings field, made from the field's type:
    bool -> QCheckBox, int -> QSpinBox, float -> QDoubleSpinBox, str -> QLineEdit (a QComboBox
    for model names and languages), anything else -> a QLineEdit of JSON."""

    def __init__(self, path: str, hint: Any, default: Any, help_text: str, on_change: Callable[[], None],
                 browse: Callable[["_Knob"], None]) -> None:
        self.path = path  # "ngram", or "heuristics.max_tokens"
        self.name = path.rpartition(".")[2]
        self.help = help_text or _words(self.name)
        self.default = default
        self._browse = browse
        kind = _unwrap(hint)
        self.label: Optional[QLabel] = QLabel(_words(self.name) + ":")
        self.choices: tuple = ()
        if kind is bool:
            self.kind = "bool"
            self.widget: QWidget = QCheckBox(_words(self.name))
            self.widget.toggled.connect(on_change)
            self.label = None  # the check box carries its own text
        elif kind is int:
            self.kind = "int"
            lo, hi, step = _RANGES.get(self.name, (0, 2**31 - 1, 1))
            box = QSpinBox()
            box.setRange(int(lo), int(hi))
            box.setSingleStep(int(step))
            box.setGroupSeparatorShown(True)
            box.valueChanged.connect(on_change)
            self.widget = box
        elif kind is float:
            self.kind = "float"
            lo, hi, step = _RANGES.get(self.name, (0.0, 1.0, 0.01))
            box = QDoubleSpinBox()
            box.setDecimals(3)
            box.setRange(float(lo), float(hi))
            box.setSingleStep(float(step))
            box.valueChanged.connect(on_change)
            self.widget = box
        elif kind is str and (self.name.endswith("_model") or self.name == "target_language"):
            self.kind = "choice"
            combo = QComboBox()
            if self.name == "target_language":
                self.choices = tuple(sorted(LANG_SCRIPT))
                combo.addItems(self.choices)
            else:  # a built-in model, "auto" where that is the default, or a local folder
                self.choices = tuple(dict.fromkeys(([default] if default not in BUILTIN else []) + list(BUILTIN)))
                combo.setEditable(True)
                combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
                combo.addItems(self.choices)
                combo.addItem(_BROWSE_TEXT)
                combo.activated.connect(self._activated)
                combo.lineEdit().setPlaceholderText("a built-in model or a model folder")
            combo.currentTextChanged.connect(on_change)
            self.widget = combo
            self._last = str(default)
        elif kind is str:
            self.kind = "str"
            self.widget = QLineEdit()
            self.widget.textChanged.connect(on_change)
        else:
            self.kind = "json"
            edit = QLineEdit()
            edit.setPlaceholderText("empty, or a JSON object")
            edit.textChanged.connect(on_change)
            self.widget = edit
        self.widget.setObjectName(path)
        if self.is_model or self.kind in ("str", "json"):
            self.widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        elif self.kind != "bool":
            self.widget.setMinimumWidth(_FIELD_WIDTH)
        _tip(self.widget, self.help)
        if self.label is not None:
            self.label.setToolTip(self.help)
            self.label.setBuddy(self.widget)

    # -- model folder choice ------------------------------------------------------------------
    @property
    def is_model(self) -> bool:
        return self.kind == "choice" and self.name != "target_language"

    def _activated(self, index: int) -> None:
        combo: QComboBox = self.widget  # type: ignore[assignment]
        if combo.itemText(index) == _BROWSE_TEXT:
            combo.setEditText(self._last)  # until a folder is chosen
            self._browse(self)

    # -- value --------------------------------------------------------------------------------------
    def value(self) -> Any:
        w = self.widget
        if self.kind == "bool":
            return w.isChecked()
        if self.kind == "int":
            return int(w.value())
        if self.kind == "float":
            return round(float(w.value()), 6)
        if self.kind == "choice":
            return w.currentText().strip()
        text = w.text().strip()
        if self.kind == "str":
            return text
        return json.loads(text) if text else None

    def set_value(self, value: Any) -> None:
        w = self.widget
        if self.kind == "bool":
            w.setChecked(bool(value))
        elif self.kind in ("int", "float"):
            w.setValue(value)
        elif self.kind == "choice":
            text = str(value)
            if self.is_model:
                w.setEditText(text)
                self._last = text
            else:
                if w.findText(text) < 0:
                    w.addItem(text)  # a code this version doesn't list: keep it
                w.setCurrentText(text)
        elif self.kind == "str":
            w.setText("" if value is None else str(value))
        else:
            w.setText("" if value is None else json.dumps(value, ensure_ascii=False))

    def error(self) -> str:
        """Why the current input can't be saved ("" when it can)."""
        if self.kind == "json":
            text = self.widget.text().strip()
            if not text:
                return ""
            try:
                value = json.loads(text)
            except ValueError as exc:
                return f"{_words(self.name)}: not valid JSON ({exc.msg}, column {exc.colno})."
            if not isinstance(value, dict) and isinstance(self.default, (dict, type(None))):
                return f"{_words(self.name)}: must be a JSON object {{...}} or empty."
            return ""
        if self.is_model:
            text = self.widget.currentText().strip()
            if text in self.choices:
                self._last = text
                return ""
            if not text or text == _BROWSE_TEXT:
                return f"{_words(self.name)}: choose a model."
            try:
                check_model_folder(text)
            except ValueError as exc:
                return f"{_words(self.name)}: {exc}."
            self._last = text
        return ""

    def set_enabled(self, on: bool) -> None:
        self.widget.setEnabled(on)
        if self.label is not None:
            self.label.setEnabled(on)


class ScanSettingsDialog(QDialog):
    """Every scan setting, in tabs; OK is disabled (with the reason shown) while an input is
    invalid. ``interactive=False`` never opens the folder chooser."""

    def __init__(self, parent: Optional[QWidget] = None, settings: Optional[ScanSettings] = None,
                 interactive: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("Scan settings")
        self.interactive = interactive
        self.knobs: dict[str, _Knob] = {}
        self._loading = False
        lay = QVBoxLayout(self)
        intro = QLabel("Settings of the quality scan. They are saved with each report; hover over (or focus) "
                       "a setting to read what it does.")
        intro.setWordWrap(True)
        lay.addWidget(intro)

        self.tabs = QTabWidget()
        lay.addWidget(self.tabs, 1)
        self._build_tabs()

        self.help_label = QLabel()
        self.help_label.setWordWrap(True)
        self.help_label.setStyleSheet(MUTED_STYLE)
        self.help_label.setMinimumHeight(self.fontMetrics().lineSpacing() * 3)
        self.help_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        lay.addWidget(self.help_label)
        self.error_label = _error_label()
        lay.addWidget(self.error_label)

        B = QDialogButtonBox.StandardButton
        self.buttons = QDialogButtonBox(B.RestoreDefaults | B.Ok | B.Cancel)
        _button_tips(self.buttons, {B.RestoreDefaults: "Put every setting back to its default value",
                                    B.Ok: "Save these settings; they apply to the next scan",
                                    B.Cancel: "Close without saving"})
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(B.RestoreDefaults).clicked.connect(self.restore_defaults)
        lay.addWidget(self.buttons)

        app = QApplication.instance()
        if app is not None:
            app.focusChanged.connect(self._on_focus)
        self.set_settings(settings or ScanSettings())
        self.resize(660, 640)

    @property
    def ok_button(self) -> QPushButton:
        return self.buttons.button(QDialogButtonBox.StandardButton.Ok)

    # -- building ------------------------------------------------------------------------------------
    def _field_knobs(self, cls: type, prefix: str = "") -> list[_Knob]:
        """One knob per field of a settings dataclass (nested dataclasses recursed)."""
        hints = typing.get_type_hints(cls)
        out: list[_Knob] = []
        for f in fields(cls):
            hint = hints.get(f.name, str)
            if isinstance(hint, type) and is_dataclass(hint):  # nested settings: HeuristicSettings
                out += self._field_knobs(hint, prefix + f.name + ".")
                continue
            default = f.default if f.default is not MISSING else None
            knob = _Knob(prefix + f.name, hint, default, f.metadata.get("help", ""), self._validate,
                         self._browse_model)
            self.knobs[knob.path] = knob
            out.append(knob)
        return out

    def _build_tabs(self) -> None:
        knobs = self._field_knobs(ScanSettings)
        placed: set[str] = set()
        for title, names in _SCAN_GROUPS:
            group = [k for k in knobs if k.path in names or k.path.split(".")[0] in names]
            note = ScanSettings.help("heuristics") if "heuristics" in names else ""
            self.tabs.addTab(self._form(group, note), title)
            placed.update(k.path for k in group)
        rest = [k for k in knobs if k.path not in placed]
        if rest:  # fields this dialog does not know yet
            self.tabs.addTab(self._form(rest), "&Other")
        for switch, dependents in _DEPENDS.items():
            if switch in self.knobs:
                self.knobs[switch].widget.toggled.connect(self._update_dependents)

    def _form(self, knobs: list[_Knob], note: str = "") -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        if note:
            label = QLabel(note)
            label.setWordWrap(True)
            label.setStyleSheet(MUTED_STYLE)
            form.addRow(label)
        for k in knobs:
            if k.label is None:
                form.addRow(k.widget)
            else:
                form.addRow(k.label, k.widget)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(page)
        return scroll

    # -- values ---------------------------------------------------------------------------------------
    def set_settings(self, settings: ScanSettings) -> None:
        data = settings.to_dict()
        self._loading = True
        try:
            for path, knob in self.knobs.items():
                value: Any = data
                for part in path.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                knob.set_value(value)
        finally:
            self._loading = False
        self._update_dependents()
        self._validate()

    def errors(self) -> list[str]:
        return [e for e in (k.error() for k in self.knobs.values()) if e]

    def settings(self) -> ScanSettings:
        """The settings shown. Raises ValueError when an input is invalid (see :meth:`errors`)."""
        problems = self.errors()
        if problems:
            raise ValueError(" ".join(problems))
        data: dict = {}
        for path, knob in self.knobs.items():
            head, _, name = path.rpartition(".")
            (data.setdefault(head, {}) if head else data)[name] = knob.value()
        return ScanSettings.from_dict(data)

    def restore_defaults(self) -> None:
        self.set_settings(ScanSettings())

    def accept(self) -> None:
        if self._validate():
            super().accept()

    # -- reactions ----------------------------------------------------------------------------------------
    def _validate(self, *_args) -> bool:
        if self._loading:
            return True
        problems = self.errors()
        _show_error(self.error_label, "\n".join(problems))
        self.ok_button.setEnabled(not problems)
        return not problems

    def _update_dependents(self, *_args) -> None:
        for switch, dependents in _DEPENDS.items():
            if switch not in self.knobs:
                continue
            on = self.knobs[switch].widget.isChecked() and self.knobs[switch].widget.isEnabled()
            for path in dependents:
                if path in self.knobs:
                    self.knobs[path].set_enabled(on)

    def _browse_model(self, knob: _Knob) -> None:
        if not self.interactive:
            return
        start = knob.value() if os.path.isdir(str(knob.value())) else os.path.expanduser("~")
        folder = QFileDialog.getExistingDirectory(self, f"{_words(knob.name)}: model folder", start)
        if folder:
            knob.set_value(folder)
        self._validate()

    def _on_focus(self, _old: Optional[QWidget], new: Optional[QWidget]) -> None:
        """Show the focused setting's help under the tabs (tooltips need a mouse)."""
        while new is not None and new is not self:
            knob = self.knobs.get(new.objectName())
            if knob is not None and knob.widget is new:
                self.help_label.setText(f"<b>{_words(knob.name)}</b> — {knob.help}")
                return
            new = new.parentWidget()

    def done(self, result: int) -> None:
        app = QApplication.instance()
        if app is not None:
            try:
                app.focusChanged.disconnect(self._on_focus)
            except (RuntimeError, TypeError):
                pass
        super().done(result)


# ==================================================================================================
# Export
# ==================================================================================================

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
# Import
# ==================================================================================================

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


def _table(model: QAbstractTableModel, stretch: int) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
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
        grid.addWidget(self.test_none)
        grid.addLayout(row1)
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
        self.test_group.idToggled.connect(self._update_ok)
        self.test_edit.textChanged.connect(self._update_ok)
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
        return any(w.is_running() for w in self._workers)

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
        worker = Worker(tasks.preview_dataset, self.path, self._fmt, mapping, title="Preview")
        worker.finished.connect(lambda p, g=self._gen: self._on_preview(p, g))
        worker.failed.connect(lambda m, d, g=self._gen: self._on_worker_failed(m, g))
        self._run(worker)

    def _run(self, worker: Worker) -> None:
        self._workers = [w for w in self._workers if w.is_running()] + [worker]
        worker.ended.connect(self._update_ok)
        _start_worker(worker)

    def _stop_workers(self) -> None:
        for w in self._workers:
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
            counts = ", ".join(f"{k} {v:,}" for k, v in sorted(report.error_counts.items()))
            text += (f", <span style='{ERROR_STYLE}'>{report.rejected:,} with problems</span> ({counts}) "
                     "will be skipped — see Problems")
            if len(report.errors) > len(shown):
                text += f" (the first {len(shown):,} of {len(report.errors):,} are listed)"
        warn = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in report.warnings.items() if v)
        if warn:
            text += f". Warnings: {warn}"
        self.status_label.setText(text + ".")
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
        self.ok_button.setEnabled(self.preview is not None and not problem)

    def accept(self) -> None:
        self._update_ok()
        if self.ok_button.isEnabled():
            self._stop_workers()  # the import validates again anyway
            super().accept()

    def reject(self) -> None:
        self._stop_workers()
        super().reject()
