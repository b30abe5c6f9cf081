"""Editing one record in place, and its labels and note.

:class:`EditDialog` edits the messages (role and text of each, or the whole content as
JSON); the content is checked with :func:`ftcurate.core.project.edit.validated_edit` before the
dialog accepts, so an edit can't store what an import would reject. :class:`NotesPanel`
sits under the conversation: labels, a note, "Edit…" and "Restore original".
"""

from __future__ import annotations

import json
from typing import Optional

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QCompleter, QComboBox, QDialog, QDialogButtonBox, QFrame, QHBoxLayout, QLabel,
                               QLineEdit, QPlainTextEdit, QPushButton, QScrollArea, QTabWidget, QToolButton,
                               QVBoxLayout, QWidget)

from ..core.project.edit import edited_messages, validated_edit
from ..core.project.records import Record
from ..core.project.store import StoredRecord

ROLES = ("system", "user", "assistant", "tool")


class _TurnEditor(QFrame):
    removed = Signal(object)

    def __init__(self, role: str, text: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        top = QHBoxLayout()
        self.role = QComboBox()
        self.role.addItems(ROLES)
        if role not in ROLES:
            self.role.addItem(role)
        self.role.setCurrentText(role)
        self.role.setToolTip("Who says this message")
        remove = QToolButton()
        remove.setText("✕")
        remove.setToolTip("Remove this message")
        remove.clicked.connect(lambda: self.removed.emit(self))
        top.addWidget(self.role)
        top.addStretch(1)
        top.addWidget(remove)
        lay.addLayout(top)
        self.text = QPlainTextEdit(text)
        self.text.setToolTip("The message text")
        lines = max(2, min(14, text.count("\n") + len(text) // 90 + 1))
        self.text.setMinimumHeight(self.fontMetrics().lineSpacing() * lines + 12)
        lay.addWidget(self.text)

    def value(self) -> tuple[str, str]:
        return self.role.currentText(), self.text.toPlainText()


class EditDialog(QDialog):
    """Edit a record; :meth:`record` is the checked new record once accepted."""

    def __init__(self, stored: StoredRecord, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Edit record {stored.index}")
        self.resize(760, 640)
        self._original = stored.record
        self._result: Optional[Record] = None
        lay = QVBoxLayout(self)
        note = QLabel("The original is kept: <i>Restore original</i> brings it back. "
                      "Ctrl+Enter saves.")
        note.setWordWrap(True)
        lay.addWidget(note)
        self.tabs = QTabWidget()
        lay.addWidget(self.tabs, 1)

        # messages tab
        holder = QWidget()
        self._turns_layout = QVBoxLayout(holder)
        self._turns_layout.setContentsMargins(0, 0, 0, 0)
        self._turns: list[_TurnEditor] = []
        for m in self._original.messages:
            self._add_turn(m.role, m.content or "")
        self._turns_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        page = QWidget()
        pl = QVBoxLayout(page)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(scroll, 1)
        add = QPushButton("Add message")
        add.setToolTip("Add a message at the end (an assistant answer after a user turn, else a user turn)")
        add.clicked.connect(self._add_next)
        pl.addWidget(add, 0, Qt.AlignmentFlag.AlignLeft)
        self.tabs.addTab(page, "Messages")

        # JSON tab: everything, tool calls included
        self.json_edit = QPlainTextEdit(json.dumps(self._original.content_dict(), ensure_ascii=False, indent=2))
        self.json_edit.setToolTip("The whole record as an OpenAI chat object: messages (with tool calls) and tools")
        self.tabs.addTab(self.json_edit, "JSON")
        self.tabs.currentChanged.connect(self._sync_tabs)
        self._tab = 0

        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #e03131")
        self.problems.hide()
        lay.addWidget(self.problems)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, activated=self.accept)

    # -- turns -----------------------------------------------------------------------------
    def _add_turn(self, role: str, text: str) -> _TurnEditor:
        ed = _TurnEditor(role, text)
        ed.removed.connect(self._remove_turn)
        self._turns_layout.insertWidget(len(self._turns), ed)
        self._turns.append(ed)
        return ed

    def _add_next(self) -> None:
        last = self._turns[-1].value()[0] if self._turns else "assistant"
        ed = self._add_turn("assistant" if last == "user" else "user", "")
        ed.text.setFocus()

    def _remove_turn(self, ed: _TurnEditor) -> None:
        self._turns.remove(ed)
        ed.setParent(None)
        ed.deleteLater()

    def turns(self) -> list[tuple[str, str]]:
        return [t.value() for t in self._turns]

    def set_turn_text(self, i: int, text: str) -> None:
        self._turns[i].text.setPlainText(text)

    def _sync_tabs(self, index: int) -> None:
        """Carry the edits made on one tab over to the other."""
        if self._tab == 0 and index == 1:
            self.json_edit.setPlainText(json.dumps(edited_messages(self._original, self.turns()),
                                                   ensure_ascii=False, indent=2))
        self._tab = index

    # -- result ----------------------------------------------------------------------------
    def content(self):
        if self.tabs.currentIndex() == 1:
            return self.json_edit.toPlainText()
        return edited_messages(self._original, self.turns())

    def accept(self) -> None:
        record, problems = validated_edit(self._original, self.content())
        if record is None:
            self.problems.setText("Can't save this edit:\n" + "\n".join(f"• {msg} ({key})" for key, msg in problems))
            self.problems.show()
            return
        self._result = record
        super().accept()

    def record(self) -> Optional[Record]:
        return self._result

    def unchanged(self) -> bool:
        return self._result is not None and self._result.content_json() == self._original.content_json()


class NotesPanel(QWidget):
    """Labels, note, Edit and Restore for the record in the detail pane. Changes are
    announced by signals; the window saves them."""

    _NOTE_HINT = "Note for this record (saved when you leave the box or press Ctrl+Enter)"
    labels_edited = Signal(list)
    note_edited = Signal(int, str)  # record id, note
    edit_requested = Signal()
    restore_requested = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        lay.setSpacing(4)
        row = QHBoxLayout()
        row.addWidget(QLabel("Labels"))
        self.labels = QLineEdit()
        self.labels.setPlaceholderText("comma-separated, e.g. math, needs-check  (L)")
        self.labels.setToolTip("Tags for this record (or the selected records), separated by commas; "
                               "Enter saves. Filter by a label above the table.")
        self._completion = QStringListModel(self)
        completer = QCompleter(self._completion, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.labels.setCompleter(completer)
        self.labels.returnPressed.connect(self._labels_done)
        row.addWidget(self.labels, 1)
        self.edit_button = QPushButton("Edit…")
        self.edit_button.setToolTip("Edit this record's messages (E); the original is kept")
        self.edit_button.clicked.connect(self.edit_requested)
        self.restore_button = QPushButton("Restore original")
        self.restore_button.setToolTip("Drop the edit and bring back the record as imported")
        self.restore_button.clicked.connect(self.restore_requested)
        row.addWidget(self.edit_button)
        row.addWidget(self.restore_button)
        lay.addLayout(row)
        self.note = QPlainTextEdit()
        self.note.setPlaceholderText(self._NOTE_HINT)
        self.note.setToolTip("A free-text note, saved with the record and exported in the decision log")
        self.note.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 14)
        self.note.setTabChangesFocus(True)  # Tab leaves the box instead of typing a tab
        self.note.installEventFilter(self)
        lay.addWidget(self.note)
        self._shown_labels: list[str] = []
        self._shown_note = ""
        self.record_id: Optional[int] = None
        self.set_record(None)

    def eventFilter(self, obj, event) -> bool:  # noqa: ANN001
        from PySide6.QtCore import QEvent

        if obj is self.note:
            if event.type() == QEvent.Type.FocusOut:
                self._note_done()
            elif event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) \
                    and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
                self._note_done()
                return True
        return super().eventFilter(obj, event)

    def set_known_labels(self, labels) -> None:
        self._completion.setStringList(sorted(labels))

    def set_record(self, sr: Optional[StoredRecord], many: int = 1) -> None:
        """Show ``sr``'s labels and note (``many`` > 1: the labels go to that many records)."""
        on = sr is not None
        self.record_id = sr.id if sr is not None else None
        for w in (self.labels, self.note, self.edit_button):
            w.setEnabled(on)
        self._shown_labels = list(sr.labels) if sr else []
        self._shown_note = sr.note if sr else ""
        self.labels.setText(", ".join(self._shown_labels))
        self.labels.setPlaceholderText(f"labels for the {many:,} selected records (Enter saves)" if many > 1 else
                                       "comma-separated, e.g. math, needs-check  (L)")
        self.note.blockSignals(True)
        self.note.setPlainText(self._shown_note)
        self.note.blockSignals(False)
        self.note.setEnabled(on and many == 1)
        self.note.setPlaceholderText(self._NOTE_HINT if many == 1 else
                                     f"{many:,} records are selected: notes are for one record at a time")
        self.restore_button.setEnabled(bool(sr and sr.is_edited))

    def current_labels(self) -> list[str]:
        return [p.strip() for p in self.labels.text().split(",") if p.strip()]

    def _labels_done(self) -> None:
        labels = self.current_labels()
        if labels != self._shown_labels:
            self._shown_labels = labels
            self.labels_edited.emit(labels)

    def _note_done(self) -> None:
        text = self.note.toPlainText()
        if self.record_id is not None and self.note.isEnabled() and text != self._shown_note:
            self._shown_note = text
            self.note_edited.emit(self.record_id, text)

    def commit(self) -> None:
        """Save a note still being typed (before moving to another record)."""
        self._note_done()
