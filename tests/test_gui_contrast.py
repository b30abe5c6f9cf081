"""Every text of the main window is readable in both themes (issue 10, item 9).

The main window is rendered offscreen with a project open (scan report, a past training
run with its evaluation), every tab is visited in the light theme, the dark theme and the
light theme again (switching back must leave no stale colours), and for each visible
text the WCAG contrast ratio between its colour and the background actually rendered
behind it is checked.

* Text colour: what the widget draws its text with - the palette role it uses (after style
  sheets are applied), the colour of each run of rich text (``<span style="color:…">``),
  the model's ForegroundRole for table cells, the pen of a chart's axis, title or legend.
* Background: sampled from the rendered window (``grab()``): the most frequent colour of
  the pixels under the text's widget, table cell or chart item, so translucent banners,
  alternating rows, selections and legend boxes count as drawn.
* Thresholds (WCAG 2.1): 4.5:1 for text; 3:1 for large text (18 pt, or 14 pt bold) and
  for runs of symbols only (●, ✓, ⚠…: graphical objects, SC 1.4.11). Disabled controls are
  exempt (SC 1.4.3 exempts inactive components). Placeholders must reach 4.5:1 too and be
  visibly dimmer than the text (at least 1.5:1 between the two).
* Not checked: the HTML bodies of text browsers (conversation and pair views draw their
  own coloured boxes; only their default text colour is checked), tooltips, menus.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pg = pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QCoreApplication, QEvent, QPoint, QRect, QStandardPaths, Qt  # noqa: E402
from PySide6 import QtGui  # noqa: E402
from PySide6.QtGui import QColor, QFont, QImage, QPalette  # noqa: E402
from PySide6.QtWidgets import (QAbstractButton, QAbstractItemView, QAbstractScrollArea, QAbstractSpinBox,  # noqa: E402
                               QCheckBox,
                               QComboBox, QGroupBox, QHeaderView, QLabel, QLineEdit, QPlainTextEdit,
                               QRadioButton, QStatusBar, QTabBar, QTextEdit, QWidget)

from ftcurate.gui import theme  # noqa: E402
from ftcurate.gui.main_window import MainWindow  # noqa: E402
from ftcurate.gui.theme import composite, contrast_ratio  # noqa: E402
from ftcurate.gui.train_common import runs_root  # noqa: E402
from ftcurate.train.config import TrainConfig  # noqa: E402
from test_overview import build_project  # noqa: E402

LOAD_TIMEOUT = 60_000
TEXT, LARGE, GRAPHIC, DIMMER = 4.5, 3.0, 3.0, 1.5
_SYMBOLS_ONLY = re.compile(r"^[\W_]*$", re.UNICODE)  # no letter or digit: a glyph used as a graphic


# -- what is drawn where ------------------------------------------------------------------------------


@dataclass
class Check:
    where: str  # a description for the failure message
    text: str
    color: QColor  # the text colour (may be translucent: composited over the background)
    rect: QRect  # in window coordinates: the pixels behind the text
    minimum: float = TEXT

    def ratio(self, image: "Pixels") -> tuple[float, QColor]:
        bg = image.background(self.rect)
        return contrast_ratio(composite(self.color, bg), bg), bg


class Pixels:
    """The rendered window as an array; ``background(rect)``: the most frequent colour."""

    def __init__(self, image: QImage) -> None:
        image = image.convertToFormat(QImage.Format.Format_RGB32)
        w, h = image.width(), image.height()
        ptr = image.constBits()
        self.array = np.frombuffer(ptr, np.uint32, count=image.bytesPerLine() * h // 4).reshape(h, -1)[:, :w].copy()
        self.dpr = image.devicePixelRatio()

    def background(self, rect: QRect) -> QColor:
        """The most frequent colour of the pixels in ``rect`` (a tiny rectangle - a lone
        glyph - is widened a little, so that its glyph does not outnumber its background)."""
        if rect.width() < 24 or rect.height() < 14:
            rect = rect.adjusted(-4, -4, 4, 4)
        d = self.dpr
        x0, y0 = max(0, int(rect.left() * d)), max(0, int(rect.top() * d))
        x1, y1 = int((rect.right() + 1) * d), int((rect.bottom() + 1) * d)
        patch = self.array[y0:y1, x0:x1].reshape(-1)
        if not patch.size:
            return QColor("#ff00ff")
        values, counts = np.unique(patch, return_counts=True)
        return QColor.fromRgb(int(values[int(np.argmax(counts))]) & 0xFFFFFF)


class _Runs(HTMLParser):
    """Runs of rich text with the colour each is drawn in (None: the widget's colour)."""

    def __init__(self, link: QColor) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[Optional[QColor]] = [None]
        self.tags: list[str] = []
        self.link = link
        self.runs: list[tuple[str, Optional[QColor]]] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "hr", "meta"):
            return
        attrs = dict(attrs)
        color = self.stack[-1]
        m = re.search(r"(?:^|;)\s*color\s*:\s*([^;]+)", attrs.get("style") or "")
        if m:
            color = QColor(m.group(1).strip())
        elif tag == "font" and attrs.get("color"):
            color = QColor(attrs["color"])
        elif tag == "a":
            color = self.link
        self.stack.append(color)
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if tag in self.tags:
            while self.tags:
                self.stack.pop()
                if self.tags.pop() == tag:
                    break

    def handle_data(self, data):
        if data.strip():
            self.runs.append((data.strip(), self.stack[-1]))


def text_runs(text: str, rich: bool, base: QColor, link: QColor) -> list[tuple[str, QColor]]:
    if not rich:
        return [(text, base)] if text.strip() else []
    parser = _Runs(link)
    parser.feed(text)
    return [(t, c if c is not None and c.isValid() else base) for t, c in parser.runs]


def minimum_for(text: str, font: QFont) -> float:
    if _SYMBOLS_ONLY.match(text):
        return GRAPHIC
    pt = font.pointSizeF() if font.pointSizeF() > 0 else font.pixelSize() * 0.75
    large = pt >= 18 or (pt >= 14 and font.bold())
    return LARGE if large else TEXT


def window_rect(widget: QWidget, window: QWidget, rect: Optional[QRect] = None) -> QRect:
    """``rect`` (widget coordinates; default: the widget) clipped to what is visible, in window coordinates."""
    visible = widget.visibleRegion().boundingRect()
    r = (rect or widget.rect()).intersected(visible)
    if r.isEmpty():
        return QRect()
    return QRect(widget.mapTo(window, r.topLeft()), r.size())


def role_color(widget: QWidget, role: QPalette.ColorRole) -> QColor:
    return widget.palette().color(QPalette.ColorGroup.Active, role)


def path(widget: QWidget) -> str:
    """``Parent > Widget(name)``: where a text is, for the failure message."""
    own = f"{type(widget).__name__}({widget.objectName()})" if widget.objectName() else type(widget).__name__
    parent = widget.parentWidget()
    while parent is not None and type(parent).__module__.startswith("PySide6"):
        parent = parent.parentWidget()
    return f"{type(parent).__name__} > {own}" if parent is not None else own


def widget_checks(widget: QWidget, window: QWidget) -> list[Check]:
    """What ``widget`` itself draws as text."""
    name = path(widget)
    # a scroll area (item views, headers, text boxes) is covered by its viewport
    rect = window_rect(widget.viewport() if isinstance(widget, QAbstractScrollArea) else widget, window)
    if rect.isEmpty():
        return []
    out: list[Check] = []
    link = role_color(widget, QPalette.ColorRole.Link)

    def add(text: str, color: QColor, r: QRect = rect, what: str = "") -> None:
        for run, c in text_runs(text, False, color, link):
            out.append(Check(f"{name}{what}", run[:60], c, r, minimum_for(run, widget.font())))

    if isinstance(widget, QLabel):
        text = widget.text()
        if text:
            rich = widget.textFormat() == Qt.TextFormat.RichText or (
                widget.textFormat() == Qt.TextFormat.AutoText and QtGui.Qt.mightBeRichText(text))
            base = role_color(widget, widget.foregroundRole())
            for run, c in text_runs(text, rich, base, link):
                out.append(Check(name, run[:60], c, rect, minimum_for(run, widget.font())))
    elif isinstance(widget, (QCheckBox, QRadioButton)):
        add(widget.text(), role_color(widget, QPalette.ColorRole.WindowText))
    elif isinstance(widget, QAbstractButton):
        add(widget.text(), role_color(widget, QPalette.ColorRole.ButtonText))
    elif isinstance(widget, QLineEdit):
        if widget.text():
            add(widget.text(), role_color(widget, QPalette.ColorRole.Text))
        elif widget.placeholderText():
            add(widget.placeholderText(), role_color(widget, QPalette.ColorRole.PlaceholderText), what=" placeholder")
    elif isinstance(widget, QComboBox) and not widget.isEditable():
        add(widget.currentText(), role_color(widget, QPalette.ColorRole.ButtonText))
    elif isinstance(widget, (QPlainTextEdit, QTextEdit)):
        viewport = window_rect(widget.viewport(), window)
        if viewport.isEmpty():
            return []
        empty = widget.document().isEmpty()
        if empty and widget.placeholderText():
            add(widget.placeholderText(), role_color(widget, QPalette.ColorRole.PlaceholderText), viewport,
                " placeholder")
        elif not empty:
            add("text", role_color(widget, QPalette.ColorRole.Text), viewport)
    elif isinstance(widget, QGroupBox) and widget.title():
        fm = widget.fontMetrics()
        add(widget.title(), role_color(widget, QPalette.ColorRole.WindowText),
            window_rect(widget, window, QRect(0, 0, widget.width(), fm.height() + 4)), " title")
    elif isinstance(widget, QTabBar):
        for i in range(widget.count()):
            r = window_rect(widget, window, widget.tabRect(i))
            if not r.isEmpty() and widget.isTabEnabled(i):
                add(widget.tabText(i), role_color(widget, QPalette.ColorRole.WindowText), r, f" tab {i}")
    elif isinstance(widget, QStatusBar) and widget.currentMessage():
        add(widget.currentMessage(), role_color(widget, QPalette.ColorRole.WindowText))
    elif isinstance(widget, QHeaderView):
        out += header_checks(widget, window, name)
    elif isinstance(widget, QAbstractItemView):
        out += cell_checks(widget, window, name)
    return out


def header_checks(header: QHeaderView, window: QWidget, name: str) -> list[Check]:
    model = header.model()
    if model is None or not header.isVisible():
        return []
    out = []
    horizontal = header.orientation() == Qt.Orientation.Horizontal
    color = role_color(header, QPalette.ColorRole.ButtonText)
    for section in range(header.count()):
        if header.isSectionHidden(section):
            continue
        pos, size = header.sectionViewportPosition(section), header.sectionSize(section)
        r = QRect(pos, 0, size, header.height()) if horizontal else QRect(0, pos, header.width(), size)
        r = window_rect(header.viewport(), window, r)
        text = model.headerData(section, header.orientation(), Qt.ItemDataRole.DisplayRole)
        if r.isEmpty() or not text:
            continue
        fg = model.headerData(section, header.orientation(), Qt.ItemDataRole.ForegroundRole)
        c = QColor(fg.color() if hasattr(fg, "color") else fg) if fg is not None else color
        out.append(Check(f"{name} header", str(text)[:60], c, r, minimum_for(str(text), header.font())))
    return out


def cell_checks(view: QAbstractItemView, window: QWidget, name: str, limit: int = 60) -> list[Check]:
    model = view.model()
    if model is None:
        return []
    out: list[Check] = []
    viewport = view.viewport()
    selection = view.selectionModel()
    root = view.rootIndex()
    rows = model.rowCount(root)
    try:
        columns = model.columnCount(root)
    except TypeError:  # a list model
        columns = 1
    first = view.indexAt(QPoint(2, 2))
    start = first.row() if first.isValid() else 0
    for row in range(start, min(rows, start + 20)):
        for col in range(columns):
            index = model.index(row, col, root)
            r = view.visualRect(index)
            if r.isEmpty() or not viewport.rect().intersects(r):
                continue
            text = model.data(index, Qt.ItemDataRole.DisplayRole)
            if text is None or not str(text).strip():
                continue
            selected = selection is not None and selection.isSelected(index)
            fg = None if selected else model.data(index, Qt.ItemDataRole.ForegroundRole)
            if fg is not None:
                c = QColor(fg.color() if hasattr(fg, "color") else fg)
            else:
                c = role_color(view, QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
            wr = window_rect(viewport, window, r)
            if wr.isEmpty():
                continue
            flags = model.flags(index)
            if not flags & Qt.ItemFlag.ItemIsEnabled:
                continue
            out.append(Check(f"{name} cell {row},{col}", str(text)[:60], c, wr,
                             minimum_for(str(text), view.font())))
            if len(out) >= limit:
                return out
    return out


def html_color(item) -> Optional[QColor]:
    """The colour a pyqtgraph text item is drawn in (from its HTML, else its default)."""
    text_item = getattr(item, "item", item)
    html = text_item.toHtml() if hasattr(text_item, "toHtml") else ""
    found = re.findall(r"color\s*:\s*(#[0-9a-fA-F]{6,8}|rgba?\([^)]*\))", html)
    if found:
        value = found[-1]
        m = re.match(r"rgba?\(([^)]*)\)", value)
        if m:
            parts = [float(x) for x in m.group(1).split(",")]
            return QColor(int(parts[0]), int(parts[1]), int(parts[2]),
                          int(parts[3] * 255 if parts[3] <= 1 else parts[3]) if len(parts) > 3 else 255)
        return QColor(value)
    if hasattr(text_item, "defaultTextColor"):
        return text_item.defaultTextColor()
    return None


def plot_checks(plot: pg.PlotWidget, window: QWidget) -> list[Check]:
    """Axis tick labels, axis titles, the title, legend entries and text items of a chart."""
    name = f"chart({path(plot)})"
    out: list[Check] = []
    port = plot.viewport()  # (the view itself is covered by it: its visible region is empty)
    if window_rect(port, window).isEmpty():
        return out

    def scene_rect(item) -> QRect:
        r = plot.mapFromScene(item.sceneBoundingRect()).boundingRect()
        return window_rect(port, window, r)

    item = plot.getPlotItem()
    for side in ("left", "bottom", "right", "top"):
        axis = item.getAxis(side)
        if not axis.isVisible() or not axis.style.get("showValues", True):
            continue
        r = scene_rect(axis)
        if not r.isEmpty():
            out.append(Check(f"{name} {side} axis ticks", "0.5", axis.textPen().color(), r))
        if axis.label.isVisible() and axis.labelText:
            c = html_color(axis.label)
            if c is not None:
                out.append(Check(f"{name} {side} axis title", axis.labelText, c, scene_rect(axis.label)))
    title = item.titleLabel
    if title.isVisible() and title.text:
        c = html_color(title)
        if c is not None:
            out.append(Check(f"{name} title", str(title.text), c, scene_rect(title.item)))
    for child in plot.scene().items():
        if isinstance(child, pg.LegendItem) and child.isVisible():
            box = scene_rect(child)
            for _sample, label in child.items:
                c = html_color(label)
                if c is not None and label.text:
                    out.append(Check(f"{name} legend", label.text, c, box))
        elif isinstance(child, pg.TextItem) and child.isVisible() and child.toPlainText().strip():
            c = html_color(child.textItem)
            if c is not None:
                out.append(Check(f"{name} text", child.toPlainText(), c, scene_rect(child)))
    return out


def window_checks_of(widget: QWidget, window: QWidget) -> list[Check]:
    """The texts ``widget`` draws (none when it is hidden, disabled or in another window)."""
    if not widget.isVisible() or not widget.isEnabled() or widget.window() is not window:
        return []
    if isinstance(widget.parentWidget(), QAbstractSpinBox):
        return []  # the spin box's own line edit: checked as the spin box's text
    if isinstance(widget, QAbstractSpinBox):
        rect = window_rect(widget, window)
        if rect.isEmpty() or not widget.text():
            return []
        return [Check(type(widget).__name__, widget.text(), role_color(widget, QPalette.ColorRole.Text), rect)]
    if isinstance(widget, pg.PlotWidget):
        return plot_checks(widget, window)
    return widget_checks(widget, window)


KINDS = ("legend", "axis ticks", "axis title", "chart", "placeholder", "cell", "header", "tab", "title", "Banner")


def failures(window: QWidget, mine: tuple[QWidget, ...], seen: dict) -> tuple[list[str], list[str], int]:
    """(failures inside the views in ``mine``, failures elsewhere, texts checked); ``seen``
    counts the kinds of text checked."""
    image = Pixels(window.grab().toImage())
    ours, others, n = [], [], 0
    for widget in [window, *window.findChildren(QWidget)]:
        checks = window_checks_of(widget, window)
        n += len(checks)
        for check in checks:
            for kind in KINDS:
                if kind in check.where:
                    seen[kind] = seen.get(kind, 0) + 1
        here = any(view is widget or view.isAncestorOf(widget) for view in mine)
        for check in checks:
            if check.rect.isEmpty():  # scrolled out of sight
                continue
            ratio, bg = check.ratio(image)
            if ratio < check.minimum:
                (ours if here else others).append(
                    f"{ratio:.2f}:1 < {check.minimum}:1  {check.where}: {check.text!r} "
                    f"({QColor(check.color).name(QColor.NameFormat.HexArgb)} on {bg.name()} at {check.rect.getRect()})")
    return ours, others, n


# -- the project on show ----------------------------------------------------------------------------------


def write_run(project_path: Path) -> str:
    """A finished run of the project with a few metrics and an evaluation report."""
    run = Path(runs_root(str(project_path))) / "20240101-100000"
    run.mkdir(parents=True)
    TrainConfig(model_dir="/models/demo", output_dir=str(run)).to_json(str(run / "run_config.json"))
    lines = [json.dumps({"type": "start", "max_steps": 30, "device": "cpu"})]
    for step in range(1, 31):
        lines.append(json.dumps({"type": "train", "step": step, "loss": 2.5 / step ** 0.3, "learning_rate": 2e-4,
                                 "tokens_per_second": 1200.0 + step}))
        if step % 10 == 0:
            lines.append(json.dumps({"type": "eval", "step": step, "eval_loss": 2.6 / step ** 0.3}))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (run / "adapter_config.json").write_text("{}")
    (run / "eval_report.json").write_text(json.dumps({
        "base": {"loss": 2.1, "perplexity": 8.17}, "tuned": {"loss": 1.4, "perplexity": 4.06},
        "generations": [{"prompt": "How long do I boil eggs?", "reference": "About nine minutes.",
                         "base": "", "tuned": "Nine minutes."}]}))
    return str(run)


@pytest.fixture
def project_path(tmp_path) -> Path:
    p = build_project(tmp_path, n_train=60, n_test=5, n_validation=3, turns=lambda i: 1 + (i % 5 == 0))
    ids, test = p.ids(split="train"), p.ids(split="test")
    p.approve(ids[:20])
    p.reject(ids[20:24])
    scores = [round(0.1 + (i % 7) / 100, 4) for i in range(len(ids))]
    p.save_scan("quality", {}, {
        "index": "record_id", "scanned_ids": ids,
        "outliers": [{"index": ids[i], "score": 0.9} for i in (30, 31)],
        "length_outliers": [{"index": ids[40], "tokens": 900, "score": 6.8}],
        "outlier_scores": {"model": "static-wordllama", "cutoff": 0.5, "scores": scores},
        "flags": [{"index": ids[i], "flag": "refusal", "reason": "sorry"} for i in (25, 26)],
        "exact_duplicates": [[ids[10], ids[50]]],
        "near_duplicate_clusters": [{"members": [ids[11], ids[51]], "keep": ids[11], "reason": "longer"}],
        "leakage": [{"index": ids[45], "test_index": test[0], "method": "exact", "score": 1.0, "field": "prompt"}],
    })
    path = Path(p.path)
    p.close()
    write_run(path)
    return path


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch, project_path):
    monkeypatch.setenv("FTCURATE_HOME", str(tmp_path / "home"))
    QStandardPaths.setTestModeEnabled(True)
    from ftcurate.gui import train_settings

    monkeypatch.setattr(train_settings, "_DEVICE", ("cpu", None))
    app = pg.QtWidgets.QApplication.instance()
    old_style, old_palette = app.style().name(), app.palette()
    w = MainWindow(interactive=False, restore_geometry=False)
    qtbot.addWidget(w)
    w.resize(1024, 700)
    w.show()
    qtbot.waitExposed(w)
    loaded: list = []
    w.project_loaded.connect(loaded.append)
    w.open_path(str(project_path))
    qtbot.waitUntil(lambda: bool(loaded), timeout=LOAD_TIMEOUT)
    yield w
    w.close()
    app.setStyle(old_style)
    app.setPalette(old_palette)


def visit(qtbot, window: MainWindow, key: str) -> None:
    if key == "map":
        from ftcurate.core.quality.projection import MapData

        view = window.views["map"]
        if view.map is None:  # a map as computed, without loading the embedding model
            project = window.project
            ids = np.asarray(project.ids(split="train"), np.int64)
            n = len(ids)
            records = {sr.id: sr for sr in project.get_many(list(ids))}
            view.set_map(MapData(ids=ids, xy=np.c_[np.arange(n) % 8, np.arange(n) // 8].astype(np.float32),
                                 status=np.array([records[i].status for i in ids]), flag=np.zeros(n, "<U24"),
                                 score=np.full(n, np.nan, np.float32),
                                 index=np.array([records[i].index for i in ids]), snippets=[""] * n, total=n))
    if key.startswith("training"):
        window.show_tab("training")
        window.training_view.tabs.setCurrentIndex(1 if key == "training:evaluate" else 0)
    else:
        window.show_tab(key)
    if key == "map":
        view = window.views["map"]
        if view.table_model.rowCount():
            view.table.selectRow(0)
    if key == "overview":
        view = window.views["overview"]
        qtbot.waitUntil(lambda: view.data is not None and not view.is_computing(), timeout=LOAD_TIMEOUT)
    qtbot.waitUntil(lambda: not any(x.is_running() for x in window._workers), timeout=LOAD_TIMEOUT)
    for _ in range(5):  # lay out what changed (nested layouts ask one level at a time)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    for chart in window.findChildren(pg.PlotWidget):
        chart.repaint()


TABS = ("records", "pairs", "leaks", "map", "overview", "training", "training:evaluate")


def test_every_text_is_readable_in_both_themes(qtbot, window):
    """Every text of the window, on every tab, in light, dark and light again."""
    app = pg.QtWidgets.QApplication.instance()
    mine = (window.views["map"], window.views["overview"], window.training_view)
    bad: list[str] = []
    counted = 0
    seen: dict = {}
    for name in ("light", "dark", "light"):  # and back: nothing may keep the dark colours
        theme.apply_theme(name, app)
        for key in TABS:
            visit(qtbot, window, key)
            in_views, elsewhere, n = failures(window, mine, seen)
            counted += n
            bad += [f"[{name} / {key}] {line}" for line in in_views + elsewhere]
    assert counted > 300  # the check saw the window's texts, of every kind
    assert all(seen.get(kind) for kind in KINDS), sorted(seen.items())
    assert not bad, f"{len(bad)} texts below the contrast minimum:\n" + "\n".join(sorted(set(bad)))


def test_placeholders_are_dimmer_than_text_but_readable(qtbot):
    app = pg.QtWidgets.QApplication.instance()
    old = app.palette()
    try:
        for name in ("light", "dark"):
            theme.apply_theme(name, app)
            pal = app.palette()
            text = pal.color(QPalette.ColorRole.Text)
            placeholder = pal.color(QPalette.ColorRole.PlaceholderText)
            for bg in (QPalette.ColorRole.Base, QPalette.ColorRole.AlternateBase, QPalette.ColorRole.Window,
                       QPalette.ColorRole.Button):
                assert contrast_ratio(placeholder, pal.color(bg)) >= TEXT, (name, bg)
                assert contrast_ratio(text, pal.color(bg)) >= TEXT, (name, bg)
            assert contrast_ratio(text, placeholder) >= DIMMER, name
            assert contrast_ratio(pal.color(QPalette.ColorRole.HighlightedText),
                                  pal.color(QPalette.ColorRole.Highlight)) >= TEXT, name
            c = theme.colors()
            for color in (c.text, c.muted, c.ok, c.warn, c.bad, c.link):
                for bg in (c.window, c.base):
                    assert contrast_ratio(color, bg) >= TEXT, (name, color, bg)
    finally:
        app.setPalette(old)
