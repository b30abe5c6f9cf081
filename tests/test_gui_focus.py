"""Focus can be seen and moved with the keyboard (issue 11, item 2): the theme draws a
2-pixel focus ring in the accent colour, readable in both themes (WCAG non-text contrast,
3:1), and Tab / Shift+Tab move between the widgets of the training, overview and map
views rather than between the rows of their tables."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, QStandardPaths, Qt  # noqa: E402
from PySide6.QtGui import QColor, QImage, QPalette  # noqa: E402
from PySide6.QtWidgets import (QApplication, QComboBox, QHBoxLayout, QLineEdit, QPushButton,  # noqa: E402
                               QSpinBox, QWidget)

from ftcurate.gui import theme, train_settings  # noqa: E402
from ftcurate.gui.theme import FocusRingStyle, contrast_ratio  # noqa: E402
from ftcurate.gui.train_view import TrainingView  # noqa: E402


@pytest.fixture
def restore_theme():
    app = QApplication.instance()
    style, palette = app.style().name(), app.palette()
    yield app
    app.setStyle(style)
    app.setPalette(palette)


def accent_pixels(widget: QWidget, color: QColor) -> int:
    """Pixels of ``widget`` drawn in (nearly) ``color``."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    w, h = image.width(), image.height()
    a = np.frombuffer(image.constBits(), np.uint32, count=image.bytesPerLine() * h // 4).reshape(h, -1)[:, :w]
    rgb = np.stack([(a >> 16) & 255, (a >> 8) & 255, a & 255], axis=-1).astype(int)
    target = np.array([color.red(), color.green(), color.blue()])
    return int(np.count_nonzero(np.abs(rgb - target).max(axis=-1) <= 24))


@pytest.mark.parametrize("name", ["light", "dark"])
def test_the_focus_ring_is_drawn_and_visible(qtbot, restore_theme, name):
    theme.apply_theme(name, restore_theme)
    row = QWidget()
    box = QHBoxLayout(row)
    fields = [QLineEdit("text"), QPushButton("Button"), QComboBox(), QSpinBox()]
    fields[2].addItems(["one", "two"])
    for f in fields:
        box.addWidget(f)
    qtbot.addWidget(row)
    row.show()
    qtbot.waitExposed(row)
    pal = QApplication.instance().palette()
    ring = FocusRingStyle.ring_color_for(pal)
    for bg in (QPalette.ColorRole.Window, QPalette.ColorRole.Button, QPalette.ColorRole.Base):
        assert contrast_ratio(ring, pal.color(bg)) >= 3.0, (name, bg)
    row.activateWindow()
    fields[0].setFocus()
    qtbot.waitUntil(fields[0].hasFocus)
    for i, field in enumerate(fields):
        if i:  # Tab moves the focus, and the ring with it
            qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
            qtbot.waitUntil(field.hasFocus)
        perimeter = 2 * (field.width() + field.height())
        focused = accent_pixels(field, ring)
        assert focused >= perimeter, (name, type(field).__name__, focused, perimeter)  # ~2 px all round
        previous = fields[i - 1] if i else None
        if previous is not None:
            assert accent_pixels(previous, ring) < perimeter / 4, (name, type(previous).__name__)


@pytest.fixture
def view(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("FTCURATE_HOME", str(tmp_path / "home"))
    QStandardPaths.setTestModeEnabled(True)
    monkeypatch.setattr(train_settings, "_DEVICE", ("cpu", None))
    v = TrainingView(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), interactive=False)
    qtbot.addWidget(v)
    v.resize(1024, 600)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.shutdown()


def test_tab_leaves_the_evaluate_tables(qtbot, view):
    """Tab in a table of the Evaluate tab moved from cell to cell; it moves to the next widget."""
    view.tabs.setCurrentIndex(1)
    view.eval_panel.show_report({"base": {"loss": 2.0, "perplexity": 7.4}, "tuned": {"loss": 1.0, "perplexity": 2.7},
                                 "generations": [{"prompt": "p", "reference": "r", "base": "b", "tuned": "t"}]})
    for page, table in enumerate((view.metrics_table, view.gen_table)):
        view.eval_panel.results.pages.setCurrentIndex(page)  # Summary, then Answers
        table.setFocus()
        table.setCurrentCell(0, 0)
        qtbot.waitUntil(table.hasFocus)
        qtbot.keyClick(table, Qt.Key.Key_Tab)
        assert not table.hasFocus(), table
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Backtab)
        assert table.hasFocus() and table.currentRow() == 0 and table.currentColumn() == 0
