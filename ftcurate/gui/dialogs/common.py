"""Shared pieces of the dialogs: labels, styles, error labels, tooltips and the worker registry."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDialogButtonBox, QLabel, QWidget

from ..workers import Worker


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

_FIELD_WIDTH = 160  # number fields and short choices: one width, so the form lines up

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
