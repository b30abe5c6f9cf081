"""Widgets of the main window: the conversation view, the start page, the shortcuts sheet
and small drawn icons. They display what they are given; none reads or writes the store."""

from __future__ import annotations

import html
import json
import os
from typing import Iterable, Optional

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QKeySequence, QPainter, QPainterPath, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QDialog, QDialogButtonBox, QFrame, QHBoxLayout, QHeaderView, QLabel,
                               QListWidget, QListWidgetItem, QPushButton, QTableView, QTableWidget,
                               QTableWidgetItem, QTextBrowser, QVBoxLayout, QWidget)

from ..core.project.store import StoredRecord
from .keys import action_keys
from .models import STATUS_COLORS, STATUS_LABELS
from .settings import ICON_PATH
from .theme import set_muted

# role -> (label colour, background, border)
ROLE_STYLES = {
    "system": ("#495057", "#f1f3f5", "#ced4da"),
    "user": ("#1864ab", "#e7f5ff", "#a5d8ff"),
    "assistant": ("#2b8a3e", "#ebfbee", "#b2f2bb"),
    "tool": ("#a05a00", "#fff4e6", "#ffd8a8"),
    "function": ("#a05a00", "#fff4e6", "#ffd8a8"),
}
# the same for a dark theme
ROLE_STYLES_DARK = {
    "system": ("#ced4da", "#2c3034", "#495057"),
    "user": ("#74c0fc", "#1b2a38", "#1c4f7a"),
    "assistant": ("#8ce99a", "#1b2e22", "#2b6a3a"),
    "tool": ("#ffc078", "#33281b", "#7a5321"),
    "function": ("#ffc078", "#33281b", "#7a5321"),
}
_TEXT = "#1b1f24"
_MUTED = "#6b7280"


def _palette() -> tuple[dict, str, str, str]:
    """(role styles, text colour, muted colour, page background) for the current theme."""
    from .theme import colors

    c = colors()
    return (ROLE_STYLES_DARK if c.dark else ROLE_STYLES), c.text, c.muted, c.base


def _readable(color: str) -> str:
    from .theme import readable

    return readable(color).name()


def _esc(text: Optional[str]) -> str:
    return html.escape(text or "", quote=True)


def _pretty_json(value) -> str:
    try:
        if isinstance(value, str):
            value = json.loads(value)
        return json.dumps(value, ensure_ascii=False, indent=2)
    except (TypeError, ValueError):
        return str(value)


def conversation_html(sr: StoredRecord, findings: Iterable[tuple[str, str]] = (), selected: int = 1) -> str:
    """Simple, escaped HTML for one stored record: a header line, what the last scan found
    (``findings``: (kind, reason) pairs), then one box a message. ``selected`` > 1: that many
    records are selected (said first: decisions and labels go to all of them)."""
    rec = sr.record
    styles, _TEXT, _MUTED, _bg = _palette()
    color = _readable(STATUS_COLORS.get(sr.status, _MUTED))
    where = os.path.basename(rec.source.file) or "?"
    if sr.line is not None:
        where += f", line {sr.line}"
    parts = [f'<html><body style="color:{_TEXT}">']
    if selected > 1:
        parts.append(f'<p style="font-size:large; font-weight:600">{selected:,} records selected</p>'
                     f'<p style="color:{_MUTED}">Approve, reject, reset and labels apply to all {selected:,}; '
                     "notes and edits are for one record at a time. Below: the current record.</p><hr>")
    parts += [
        '<table width="100%" cellspacing="0" cellpadding="0"><tr><td>',
        f'<span style="font-size:large; font-weight:600">Record {sr.index}</span>'
        f'&nbsp;&nbsp;<span style="color:{color}; font-weight:600">&#9679; '
        f'{_esc(STATUS_LABELS.get(sr.status, sr.status))}</span>'
        f'&nbsp;&nbsp;<span style="color:{_MUTED}">split: {_esc(sr.split)}</span>',
        "</td></tr><tr><td>",
        f'<span style="color:{_MUTED}">Source: {_esc(where)} &middot; record {sr.index} '
        f"&middot; {len(rec.messages)} messages"
        + (f" &middot; reviewed by {_esc(sr.reviewer)}" if sr.reviewer else "")
        + "</span>",
    ]
    if sr.is_edited:
        parts.append(f'<br><span style="color:{_readable(STATUS_COLORS["edited"])}">Showing the edited version '
                     "(the original is kept).</span>")
    if sr.labels:
        parts.append(f'<br><span style="color:{_MUTED}">Labels:</span> ' + ", ".join(_esc(x) for x in sr.labels))
    if sr.note:
        parts.append(f'<br><span style="color:{_MUTED}">Note:</span> {_esc(sr.note)}')
    if rec.tools:
        names = []
        for t in rec.tools:
            fn = t.get("function", t) if isinstance(t, dict) else {}
            names.append(str(fn.get("name", "?")) if isinstance(fn, dict) else "?")
        parts.append(f'<br><span style="color:{_MUTED}">Tools offered:</span> ' + _esc(", ".join(names)))
    findings = list(findings)
    if findings:
        parts.append(f'<br><span style="color:{_readable("#e8590c")}; font-weight:600">Found by the scan:</span>')
        parts.append("".join(f'<br>&nbsp;&nbsp;&#9888; <b>{_esc(kind)}</b>'
                             + (f' <span style="color:{_MUTED}">— {_esc(reason)}</span>' if reason else "")
                             for kind, reason in findings))
    parts.append("</td></tr></table><br>")

    for m in rec.messages:
        label_color, bg, border = styles.get(m.role, styles["system"])
        title = m.role.capitalize()
        if m.name:
            title += f" · {m.name}"
        if m.tool_call_id:
            title += f" · reply to {m.tool_call_id}"
        if m.weight == 0:
            title += " · weight 0 (not trained on)"
        body = ""
        if m.content:
            body += f'<div style="white-space:pre-wrap">{_esc(m.content)}</div>'
        elif not m.has_call:
            body += f'<div style="color:{_MUTED}"><i>(empty)</i></div>'
        for name, args, cid in m.calls():
            args = _pretty_json(args)
            body += (
                f'<div style="margin-top:4px; color:{label_color}">Calls <b>{_esc(str(name))}</b>'
                + (f' <span style="color:{_MUTED}">({_esc(str(cid))})</span>' if cid else "")
                + f'</div><pre style="margin:2px 0 0 0">{_esc(args)}</pre>'
            )
        parts.append(
            f'<table width="100%" cellspacing="0" cellpadding="8" bgcolor="{bg}" '
            f'style="border:1px solid {border}; margin-bottom:8px">'
            f'<tr><td><div style="color:{label_color}; font-weight:700">{_esc(title)}</div>{body}</td></tr></table>'
        )
    parts.append("</body></html>")
    return "".join(parts)


class ConversationView(QTextBrowser):
    """Read-only view of the selected record. It redraws itself in the new colours when the
    theme changes (the HTML carries colours, so a theme switch alone would leave it stale)."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.document().setDocumentMargin(12)
        self.record_id: Optional[int] = None
        self.selected = 0  # records selected when the record was shown
        self._shown: tuple = ()  # what to draw again after a theme change
        self._redrawing = False
        self.show_placeholder()

    def _paint_background(self) -> None:
        self.setStyleSheet(f"QTextBrowser {{ background: {_palette()[3]}; }}")

    def show_record(self, sr: Optional[StoredRecord], findings: Iterable[tuple[str, str]] = (),
                    selected: int = 1) -> None:
        if sr is None:
            self.show_placeholder()
            return
        findings = list(findings)
        keep = self.verticalScrollBar().value() if sr.id == self.record_id else 0
        self.record_id = sr.id
        self.selected = selected
        self._shown = ("record", sr, findings, selected)
        self._paint_background()
        self.setHtml(conversation_html(sr, findings, selected))
        self.verticalScrollBar().setValue(keep)

    def show_placeholder(self, text: str = "Select a record to read it here.") -> None:
        self.record_id = None
        self._shown = ("placeholder", text)
        self._paint_background()
        self.setHtml(f'<p style="color:{_palette()[2]}; margin-top:24px" align="center">{_esc(text)}</p>')

    def changeEvent(self, event) -> None:  # noqa: ANN001
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange and not self._redrawing and self._shown:
            self._redrawing = True
            try:
                if self._shown[0] == "record":
                    _, sr, findings, selected = self._shown
                    keep = self.verticalScrollBar().value()
                    self._paint_background()
                    self.setHtml(conversation_html(sr, findings, selected))
                    self.verticalScrollBar().setValue(keep)
                else:
                    self.show_placeholder(self._shown[1])
            finally:
                self._redrawing = False


# -- icons --------------------------------------------------------------------------------


def app_icon() -> QIcon:
    icon = QIcon(str(ICON_PATH)) if ICON_PATH.is_file() else QIcon()
    if icon.isNull() or not icon.availableSizes() and icon.pixmap(32).isNull():
        pm = QPixmap(64, 64)
        pm.fill(QColor("#3b5bdb"))
        return QIcon(pm)
    return icon


def drawn_icon(kind: str, color: Optional[str] = None, size: int = 32) -> QIcon:
    """Small vector icons for the toolbar, drawn so that no icon theme is needed
    (``color`` None: the palette's text colour, so they suit light and dark themes)."""
    if color is None:
        app = QApplication.instance()
        color = app.palette().color(QPalette.ColorRole.WindowText).name() if app is not None else "#495057"
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = size / 32.0
    pen = QPen(QColor(color), 3.2 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    path = QPainterPath()
    if kind == "approve":
        path.moveTo(7 * s, 17 * s)
        path.lineTo(13 * s, 23 * s)
        path.lineTo(25 * s, 9 * s)
    elif kind == "reject":
        path.moveTo(9 * s, 9 * s)
        path.lineTo(23 * s, 23 * s)
        path.moveTo(23 * s, 9 * s)
        path.lineTo(9 * s, 23 * s)
    elif kind == "reset":
        p.drawArc(QRectF(7 * s, 7 * s, 18 * s, 18 * s), 100 * 16, 290 * 16)
        path.moveTo(9 * s, 5 * s)
        path.lineTo(14 * s, 8 * s)
        path.lineTo(10 * s, 12 * s)
    elif kind in ("next", "previous"):
        if kind == "next":
            path.moveTo(9 * s, 12 * s)
            path.lineTo(16 * s, 20 * s)
            path.lineTo(23 * s, 12 * s)
        else:
            path.moveTo(9 * s, 20 * s)
            path.lineTo(16 * s, 12 * s)
            path.lineTo(23 * s, 20 * s)
    elif kind == "next-unreviewed":
        path.moveTo(6 * s, 10 * s)
        path.lineTo(13 * s, 17 * s)
        path.lineTo(20 * s, 10 * s)
        p.setBrush(QColor(color))
        p.drawEllipse(QPointF(24 * s, 22 * s), 3.5 * s, 3.5 * s)
        p.setBrush(Qt.BrushStyle.NoBrush)
    elif kind in ("undo", "redo"):
        if kind == "undo":
            p.drawArc(QRectF(8 * s, 9 * s, 18 * s, 16 * s), 270 * 16, 200 * 16)
            path.moveTo(12 * s, 5 * s)
            path.lineTo(8 * s, 9 * s)
            path.lineTo(12 * s, 13 * s)
        else:
            p.drawArc(QRectF(6 * s, 9 * s, 18 * s, 16 * s), 70 * 16, 200 * 16)
            path.moveTo(20 * s, 5 * s)
            path.lineTo(24 * s, 9 * s)
            path.lineTo(20 * s, 13 * s)
    elif kind in ("open-dataset", "open-project"):
        p.setPen(QPen(QColor(color), 2.2 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                      Qt.PenJoinStyle.RoundJoin))
        if kind == "open-dataset":
            path.addRoundedRect(QRectF(8 * s, 4 * s, 16 * s, 24 * s), 2 * s, 2 * s)
            for y in (10, 15, 20):
                path.moveTo(12 * s, y * s)
                path.lineTo(20 * s, y * s)
        else:
            path.moveTo(4 * s, 9 * s)
            path.lineTo(12 * s, 9 * s)
            path.lineTo(15 * s, 12 * s)
            path.lineTo(28 * s, 12 * s)
            path.lineTo(28 * s, 26 * s)
            path.lineTo(4 * s, 26 * s)
            path.closeSubpath()
    elif kind == "edit":  # a pencil
        path.moveTo(8 * s, 24 * s)
        path.lineTo(10 * s, 18 * s)
        path.lineTo(21 * s, 7 * s)
        path.lineTo(25 * s, 11 * s)
        path.lineTo(14 * s, 22 * s)
        path.closeSubpath()
    elif kind == "export":  # an arrow out of a tray
        path.moveTo(16 * s, 20 * s)
        path.lineTo(16 * s, 5 * s)
        path.moveTo(10 * s, 11 * s)
        path.lineTo(16 * s, 5 * s)
        path.lineTo(22 * s, 11 * s)
        path.moveTo(6 * s, 18 * s)
        path.lineTo(6 * s, 26 * s)
        path.lineTo(26 * s, 26 * s)
        path.lineTo(26 * s, 18 * s)
    elif kind == "scan":  # a magnifying glass
        p.drawEllipse(QPointF(14 * s, 14 * s), 8 * s, 8 * s)
        path.moveTo(20 * s, 20 * s)
        path.lineTo(27 * s, 27 * s)
    p.drawPath(path)
    p.end()
    return QIcon(pm)


# -- start page ------------------------------------------------------------------------------


class StartPage(QWidget):
    """Shown when no project is open: open buttons, the sample, recent projects."""

    open_dataset = Signal()
    open_project = Signal()
    open_sample = Signal()
    open_recent = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("StartPage")
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        col = QVBoxLayout()
        col.setSpacing(10)

        head = QHBoxLayout()
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(QSize(56, 56)))
        head.addWidget(logo)
        titles = QVBoxLayout()
        title = QLabel("ftcurate")
        f = QFont(title.font())
        f.setPointSizeF(f.pointSizeF() * 2.0)
        f.setBold(True)
        title.setFont(f)
        subtitle = QLabel("Review and clean fine-tuning datasets, one conversation at a time.")
        set_muted(subtitle)
        titles.addWidget(title)
        titles.addWidget(subtitle)
        head.addLayout(titles)
        head.addStretch(1)
        col.addLayout(head)
        col.addSpacing(8)

        buttons = QHBoxLayout()
        self.dataset_button = QPushButton(drawn_icon("open-dataset"), "Open dataset…")
        self.project_button = QPushButton(drawn_icon("open-project"), "Open project…")
        self.sample_button = QPushButton("Open sample")
        self.dataset_button.setToolTip("JSON Lines, JSON, CSV or Parquet: OpenAI chat, ShareGPT, Alpaca, prompt/completion")
        self.project_button.setToolTip("An .ftcurate project file")
        self.sample_button.setToolTip("The bundled sample dataset (grade-school math tutor chats)")
        for b in (self.dataset_button, self.project_button, self.sample_button):
            b.setMinimumHeight(34)
            b.setIconSize(QSize(18, 18))
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.dataset_button.clicked.connect(self.open_dataset)
        self.project_button.clicked.connect(self.open_project)
        self.sample_button.clicked.connect(self.open_sample)
        col.addLayout(buttons)

        hint = QLabel("…or drop a dataset or project file onto this window.")
        set_muted(hint)
        col.addWidget(hint)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.hide()
        col.addWidget(self.message)
        col.addSpacing(12)

        self.recent_label = QLabel("Recent projects")
        rf = QFont(self.recent_label.font())
        rf.setBold(True)
        self.recent_label.setFont(rf)
        col.addWidget(self.recent_label)
        self.recent_list = QListWidget()
        self.recent_list.setMinimumWidth(560)
        self.recent_list.setStyleSheet("QListWidget::item { padding: 5px 4px; }")
        self.recent_list.setCursor(Qt.CursorShape.PointingHandCursor)
        self.recent_list.setToolTip("Click to open")
        self.recent_list.itemClicked.connect(lambda item: self.open_recent.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.recent_list.itemActivated.connect(lambda item: self.open_recent.emit(item.data(Qt.ItemDataRole.UserRole)))
        col.addWidget(self.recent_list)
        self.no_recent = QLabel("No recent projects yet.")
        set_muted(self.no_recent)
        col.addWidget(self.no_recent)

        row.addLayout(col)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    def set_recent(self, paths: Iterable[str]) -> None:
        self.recent_list.clear()
        for path in paths:
            item = QListWidgetItem(f"{os.path.splitext(os.path.basename(path))[0]}    —    {os.path.dirname(path)}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)
            if not os.path.exists(path):
                item.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
                item.setToolTip(path + "\n(missing)")
            self.recent_list.addItem(item)
        has = self.recent_list.count() > 0
        rows = max(1, min(self.recent_list.count(), 8))
        row_h = max(self.recent_list.sizeHintForRow(0), self.fontMetrics().height() + 10) if has else 0
        self.recent_list.setFixedHeight(rows * row_h + 2 * self.recent_list.frameWidth() + 4)
        self.recent_list.setVisible(has)
        self.no_recent.setVisible(not has)

    def set_sample_available(self, available: bool) -> None:
        self.sample_button.setVisible(available)

    def set_busy(self, busy: bool, message: str = "") -> None:
        for w in (self.dataset_button, self.project_button, self.sample_button, self.recent_list):
            w.setEnabled(not busy)
        self.message.setText(message)
        self.message.setVisible(bool(message))


# -- keyboard shortcuts sheet --------------------------------------------------------------------


def list_table(model, name: str = "", multi: bool = False, widths: Iterable[tuple[int, int]] = (),
               tip: str = "") -> QTableView:
    """A read-only table of whole-row selections with the app's look: fixed row height, no
    grid or row numbers, elided text, left-aligned headers and a stretched last column.
    ``widths``: (column, pixels) pairs; ``multi``: extended rather than single selection."""
    view = QTableView()
    if name:
        view.setObjectName(name)
    view.setModel(model)
    vh = view.verticalHeader()
    vh.hide()
    vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    vh.setDefaultSectionSize(view.fontMetrics().height() + 8)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection if multi
                          else QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setAlternatingRowColors(True)
    view.setShowGrid(False)
    view.setWordWrap(False)
    view.setTextElideMode(Qt.TextElideMode.ElideRight)
    view.setCornerButtonEnabled(False)
    view.setTabKeyNavigation(False)  # Tab leaves the table (arrows move between rows)
    if tip:
        view.setToolTip(tip)
    hh = view.horizontalHeader()
    hh.setHighlightSections(False)
    hh.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    for col, width in widths:
        hh.resizeSection(col, width)
    hh.setStretchLastSection(True)
    return view


class RecordsTable(QTableView):
    """The Records tab's table. Its prompt column (the model's ``COL_FIRST_USER``) comes
    right after status and split and keeps a readable width: in a narrow window the columns
    after it scroll instead of squeezing it out of view. Columns a model marks empty
    (``empty_columns()``: no scan yet, so no flags or scores) are hidden."""

    MIN_MAIN = 240  # pixels the prompt column keeps at least
    MAIN_AT = 3  # its visual position

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._fitting = False
        self.horizontalHeader().sectionResized.connect(self._on_section_resized)

    def main_column(self) -> int:
        model = self.model()
        return int(getattr(model, "COL_FIRST_USER", model.columnCount() - 1 if model is not None else 0))

    def setup_columns(self, widths: Iterable[tuple[int, int]]) -> None:
        """Widths of the other columns, the prompt column in place, empty columns hidden."""
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(False)
        for col, width in widths:
            if col < self.model().columnCount():
                hh.resizeSection(col, width)
        main = self.main_column()
        if hh.visualIndex(main) != self.MAIN_AT and self.model().columnCount() > self.MAIN_AT:
            hh.moveSection(hh.visualIndex(main), self.MAIN_AT)
        self.update_empty_columns()

    def update_empty_columns(self) -> None:
        empty = set(getattr(self.model(), "empty_columns", lambda: ())())
        hh = self.horizontalHeader()
        for col in range(self.model().columnCount()):
            hh.setSectionHidden(col, col in empty)
        self.fit_columns()

    def fit_columns(self) -> None:
        """The prompt column takes the room the others leave, and at least :attr:`MIN_MAIN`."""
        model = self.model()
        if model is None or self._fitting:
            return
        hh = self.horizontalHeader()
        main = self.main_column()
        others = sum(hh.sectionSize(c) for c in range(model.columnCount()) if c != main and not hh.isSectionHidden(c))
        want = max(self.MIN_MAIN, self.viewport().width() - others)
        if hh.sectionSize(main) != want:
            self._fitting = True
            try:
                hh.resizeSection(main, want)
            finally:
                self._fitting = False

    def _on_section_resized(self, index: int, _old: int, _new: int) -> None:
        if index != self.main_column():
            self.fit_columns()

    def resizeEvent(self, event) -> None:  # noqa: ANN001
        super().resizeEvent(event)
        self.fit_columns()


class ShortcutsDialog(QDialog):
    """Lists the shortcuts of the given actions (so the sheet always matches the menus)."""

    def __init__(self, actions: Iterable, parent: Optional[QWidget] = None, guidelines: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts and guidelines" if guidelines else "Keyboard shortcuts")
        layout = QVBoxLayout(self)
        rows = []
        for action in actions:
            keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action_keys(action)]
            if keys:
                what = str(action.property("help") or action.text()).split("\t")[0]
                rows.append((" or ".join(keys), str(what).replace("&", "").rstrip("…").rstrip(".")))
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for i, (keys, what) in enumerate(rows):
            k = QTableWidgetItem(keys)
            kf = QFont(k.font())
            kf.setBold(True)
            k.setFont(kf)
            table.setItem(i, 0, k)
            table.setItem(i, 1, QTableWidgetItem(what))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        table.resizeRowsToContents()
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        full = table.horizontalHeader().height() + table.verticalHeader().length() + 2 * table.frameWidth() + 2
        screen = (parent.screen() if parent is not None else None) or QApplication.primaryScreen()
        room = int(screen.availableGeometry().height() * 0.75) if screen is not None else full
        if full <= room:  # all rows at once; on a small screen the table scrolls instead
            table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        table.setMinimumHeight(min(full, room))
        layout.addWidget(table)
        self.guidelines = None
        if guidelines:  # the project's review guidelines, under the keys
            self.guidelines = QTextBrowser()
            self.guidelines.setObjectName("ShortcutsGuidelines")
            self.guidelines.setMarkdown(guidelines)
            self.guidelines.setMinimumHeight(160)
            layout.addWidget(QLabel("<b>Guidelines of this project</b>"))
            layout.addWidget(self.guidelines, 1)
        note = QLabel("Single-letter keys act on what you see: never while you type in a box, and "
                      "not while the keyboard focus is in a hidden panel. Alt+1…Alt+6 or Ctrl+Tab move "
                      "between tabs; Tab moves between the parts of a tab. Decisions are saved at once "
                      "and can be undone.")
        note.setWordWrap(True)
        set_muted(note)
        layout.addWidget(note)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        box.rejected.connect(self.reject)
        box.accepted.connect(self.accept)
        layout.addWidget(box)
        self.table = table
        self.setMinimumWidth(460)
        self.adjustSize()
