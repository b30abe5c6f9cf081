"""Dialogs for how a project is annotated: its label set and its guidelines."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QColorDialog, QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView,
                               QLabel, QPlainTextEdit, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                               QTextBrowser, QVBoxLayout, QWidget)

from ..core.project.annotation import LABEL_KEYS, PALETTE, AnnotationError, LabelDef, check_label_set
from .theme import muted_label, readable


class LabelSetDialog(QDialog):
    """Edit the label set: one row per label (name, colour, key). Double-click or Enter on a
    colour cell picks a colour; the key is one of :data:`LABEL_KEYS` or empty."""

    COL_NAME, COL_COLOR, COL_KEY, COL_USED = range(4)

    def __init__(self, defs: list[LabelDef], used: Optional[dict[str, int]] = None,
                 parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Label set")
        self.used = used or {}
        lay = QVBoxLayout(self)
        lay.addWidget(muted_label(
            "The labels this project uses, their colour and the key that toggles each on the selected records "
            f"(one of {' '.join(LABEL_KEYS)}; A R U J K N E L S are the review keys). Labels outside the set stay "
            "possible: type them in the Labels box."))
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Name", "Colour", "Key", "Records"])
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setTabKeyNavigation(False)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(self.COL_NAME, QHeaderView.ResizeMode.Stretch)
        for col, width in ((self.COL_COLOR, 90), (self.COL_KEY, 50), (self.COL_USED, 70)):
            hh.resizeSection(col, width)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        self.table.itemChanged.connect(lambda _i: self._check())
        lay.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("&Add label")
        self.add_button.setToolTip("A new row at the end (Enter in its name cell to type)")
        self.add_button.clicked.connect(lambda: self.add_row())
        self.remove_button = QPushButton("&Remove label")
        self.remove_button.setToolTip("Drop the selected label from the set (records keep it as a free label)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.color_button = QPushButton("&Colour…")
        self.color_button.setToolTip("Pick the colour of the selected label")
        self.color_button.clicked.connect(lambda: self.pick_color(self.table.currentRow()))
        for b in (self.add_button, self.remove_button, self.color_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay.addLayout(buttons)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {readable('#e03131').name()}")
        lay.addWidget(self.problem)
        self.box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.box.accepted.connect(self.accept)
        self.box.rejected.connect(self.reject)
        lay.addWidget(self.box)
        for d in defs:
            self.add_row(d)
        self.resize(520, 360)
        self._check()

    def add_row(self, d: Optional[LabelDef] = None) -> None:
        row = self.table.rowCount()
        d = d or LabelDef("", PALETTE[row % len(PALETTE)], "")
        self.table.blockSignals(True)
        self.table.insertRow(row)
        self.table.setItem(row, self.COL_NAME, QTableWidgetItem(d.name))
        color = QTableWidgetItem(d.color)
        self._paint(color)
        self.table.setItem(row, self.COL_COLOR, color)
        self.table.setItem(row, self.COL_KEY, QTableWidgetItem(d.key))
        used = QTableWidgetItem(f"{self.used.get(d.name, 0):,}" if d.name else "")
        used.setFlags(used.flags() & ~Qt.ItemFlag.ItemIsEditable)
        self.table.setItem(row, self.COL_USED, used)
        self.table.blockSignals(False)
        self.table.setCurrentCell(row, self.COL_NAME)
        self._check()

    def remove_selected(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.table.removeRow(row)
            self._check()

    def _paint(self, item: QTableWidgetItem) -> None:
        c = QColor(item.text())
        if c.isValid():
            item.setBackground(c)
            item.setForeground(QColor("#ffffff") if c.lightness() < 140 else QColor("#000000"))

    def _on_double_click(self, row: int, col: int) -> None:
        if col == self.COL_COLOR:
            self.pick_color(row)

    def pick_color(self, row: int) -> None:
        if row < 0:
            return
        item = self.table.item(row, self.COL_COLOR)
        chosen = QColorDialog.getColor(QColor(item.text()), self, "Label colour")
        if chosen.isValid():
            item.setText(chosen.name())
            self._paint(item)

    def label_defs(self) -> list[LabelDef]:
        out = []
        for row in range(self.table.rowCount()):
            name = (self.table.item(row, self.COL_NAME).text() or "").strip()
            if not name:
                continue
            out.append(LabelDef(name, self.table.item(row, self.COL_COLOR).text().strip(),
                                self.table.item(row, self.COL_KEY).text().strip()))
        return out

    def _check(self) -> bool:
        try:
            check_label_set(self.label_defs())
        except AnnotationError as exc:
            self.problem.setText(str(exc))
            self.box.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
            return False
        self.problem.setText("")
        self.box.button(QDialogButtonBox.StandardButton.Ok).setEnabled(True)
        for row in range(self.table.rowCount()):
            item = self.table.item(row, self.COL_COLOR)
            if item is not None:
                self.table.blockSignals(True)
                self._paint(item)
                self.table.blockSignals(False)
        return True

    def accept(self) -> None:
        if self._check():
            super().accept()


class GuidelinesDialog(QDialog):
    """Write the project's guidelines in Markdown, with a live preview."""

    def __init__(self, text: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Guidelines")
        lay = QVBoxLayout(self)
        lay.addWidget(muted_label("How this project is reviewed, in Markdown: shown beside the record "
                                  "(View ▸ Guidelines) and in the shortcut sheet (F1)."))
        split = QSplitter(Qt.Orientation.Horizontal)
        self.editor = QPlainTextEdit(text)
        self.editor.setTabChangesFocus(True)
        self.editor.setPlaceholderText("# What to approve\n- …\n\n# What to reject\n- …")
        self.preview = QTextBrowser()
        self.preview.setOpenExternalLinks(False)
        split.addWidget(self.editor)
        split.addWidget(self.preview)
        lay.addWidget(split, 1)
        self.editor.textChanged.connect(lambda: self.preview.setMarkdown(self.editor.toPlainText()))
        self.preview.setMarkdown(text)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        lay.addWidget(box)
        self.resize(820, 520)

    def text(self) -> str:
        return self.editor.toPlainText()
