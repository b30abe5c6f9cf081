"""Scan settings dialog.

:class:`ScanSettingsDialog` is generated from the :class:`~ftcurate.core.quality.scan.ScanSettings`
and :class:`~ftcurate.core.quality.heuristics.HeuristicSettings` dataclass fields: one editor per
field, chosen by its type, with the field's help text as tooltip. A new field shows up
without touching this file. :func:`load_scan_settings` / :func:`save_scan_settings` keep
the settings in QSettings as JSON.
"""

from __future__ import annotations

import json
import os
import typing
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, Callable, Optional

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QFrame, QLabel, QLineEdit, QPushButton, QScrollArea,
                               QSizePolicy, QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from ...core.quality.embeddings import BUILTIN, check_model_folder
from ...core.quality.heuristics import LANG_SCRIPT
from ...core.quality.scan import ScanSettings
from .common import MUTED_STYLE, _FIELD_WIDTH, _button_tips, _error_label, _show_error, _tip


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
                                 "iqr_factor", "outlier_max_share", "outlier_min_count", "length_outliers")),
    ("&Leakage", ("leakage", "leak_ngram", "leak_minhash_threshold", "semantic_leakage", "accurate_model")),
    ("&Heuristics", ("heuristics",)),
    ("E&ngine && index", ("engine", "ray_address", "against_index")),
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
    "outlier_max_share": "Flag at most (share)",
    "outlier_min_count": "…but never fewer than",
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
    "engine": "Scan engine",
    "ray_address": "Ray cluster address",
    "against_index": "Corpus index",
}
# Text fields with a fixed set of values (a drop-down list).
_CHOICES = {"engine": ("local", "ray")}
_PLACEHOLDERS = {"ray_address": "empty: Ray on this machine; auto, HOST:PORT or ray://HOST:PORT",
                 "against_index": "empty: none; a folder, or redis://HOST:PORT/DB"}
# (minimum, maximum, step) of number fields; others get (0, 2**31 - 1, 1) or (0, 1, 0.01).
_RANGES = {
    "num_perm": (16, 4096, 16),
    "ngram": (1, 50, 1),
    "seed": (0, 2**31 - 1, 1),
    "auto_accurate_max": (0, 100_000_000, 1000),
    "knn_k": (1, 500, 1),
    "iqr_factor": (0.1, 20.0, 0.1),
    "outlier_max_share": (0.001, 1.0, 0.005),
    "outlier_min_count": (0, 1_000_000, 5),
    "leak_ngram": (1, 100, 1),
    "max_tokens": (16, 10_000_000, 512),
    "repetition_repeats": (2, 1000, 1),
}
# A switch and the fields that only matter when it is on (disabled while it is off).
_DEPENDS = {
    "near_duplicates": ("minhash_threshold", "num_perm", "ngram", "seed", "lsh_storage"),
    "semantic_duplicates": ("semantic_threshold",),
    "outliers": ("knn_k", "iqr_factor", "outlier_max_share", "outlier_min_count"),
    "leakage": ("leak_ngram", "leak_minhash_threshold", "semantic_leakage"),
    "heuristics.too_long": ("heuristics.max_tokens",),
    "heuristics.repetition": ("heuristics.repetition_threshold", "heuristics.repetition_repeats"),
    "heuristics.language": ("heuristics.target_language",),
}
_BROWSE_TEXT = "Browse folder…"


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
        elif kind is str and (self.name.endswith("_model") or self.name in ("target_language", *_CHOICES)):
            self.kind = "choice"
            combo = QComboBox()
            if self.name in _CHOICES:
                self.choices = _CHOICES[self.name]
                combo.addItems(self.choices)
            elif self.name == "target_language":
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
            self.widget.setPlaceholderText(_PLACEHOLDERS.get(self.name, ""))
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
        return self.kind == "choice" and self.name.endswith("_model")

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
