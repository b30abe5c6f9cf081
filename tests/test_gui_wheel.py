"""The mouse wheel over a spin box or combo box in a scrolling form scrolls the form; it
changes the field only once the field has focus (issue 10, item 8: scrolling the Training
settings changed the LoRA rank from 16 to 8).

Qt only passes *spontaneous* wheel events (from the window system) on to the parents; the
events sent here are not spontaneous, so the tests check what decides it: the field leaves
the event unaccepted (Qt then offers it to the scroll area) and keeps its value.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, QSettings, QStandardPaths, Qt  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtWidgets import (QApplication, QComboBox, QScrollArea, QSpinBox, QVBoxLayout,  # noqa: E402
                               QWidget)

from ftcurate.gui import train_settings, wheel_guard  # noqa: E402
from ftcurate.gui.train_view import TrainingView  # noqa: E402


def wheel(widget: QWidget, steps: int = -1) -> QWheelEvent:
    """One notch of the wheel over the middle of ``widget`` (negative: towards the user)."""
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(pos, QPointF(widget.mapToGlobal(pos.toPoint())), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                        False)
    QApplication.sendEvent(widget, event)
    return event


@pytest.fixture
def view(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("FTCURATE_HOME", str(tmp_path / "home"))
    QStandardPaths.setTestModeEnabled(True)
    monkeypatch.setattr(train_settings, "_DEVICE", ("cpu", None))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    v = TrainingView(settings=settings, interactive=False)
    qtbot.addWidget(v)
    v.resize(1024, 600)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.shutdown()


def test_scrolling_the_training_settings_leaves_the_lora_rank_alone(qtbot, view):
    rank = view.field_widgets["lora_r"]
    rank.setValue(16)
    panel = view.settings_panel
    panel.ensureWidgetVisible(rank)
    assert not rank.hasFocus()
    assert rank.focusPolicy() == Qt.FocusPolicy.StrongFocus  # the wheel gives no focus
    event = wheel(rank)
    assert rank.value() == 16
    assert not event.isAccepted()  # passed on: the settings scroll instead
    for name in ("method", "learning_rate", "lora_dropout", "epochs"):  # combo, custom and double spin boxes
        field = view.field_widgets[name]
        panel.ensureWidgetVisible(field)
        before = field.currentText() if isinstance(field, QComboBox) else field.value()
        assert not wheel(field).isAccepted()
        assert (field.currentText() if isinstance(field, QComboBox) else field.value()) == before, name
    # the scroll area itself still scrolls with the wheel
    bar = panel.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(0)
    wheel(panel.viewport())
    assert bar.value() > 0


def test_the_wheel_changes_a_field_once_it_has_focus(qtbot, view):
    rank = view.field_widgets["lora_r"]
    rank.setValue(16)
    view.settings_panel.ensureWidgetVisible(rank)
    qtbot.mouseClick(rank.lineEdit(), Qt.MouseButton.LeftButton)  # a click into the field
    qtbot.waitUntil(rank.hasFocus)
    wheel(rank, steps=-1)
    assert rank.value() == 15
    # Tab moves on to the next field; the wheel then changes that one, not the rank
    alpha = view.field_widgets["lora_alpha"]
    before = alpha.value()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    qtbot.waitUntil(alpha.hasFocus)
    wheel(alpha, steps=1)
    assert alpha.value() == before + 1 and rank.value() == 15
    # keys change the focused field as before
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Up)
    assert alpha.value() == before + 2


def test_evaluate_fields_are_guarded_too(qtbot, view):
    view.tabs.setCurrentIndex(1)
    for field in (view.eval_source_combo, view.limit_spin, view.max_new_spin, view.eval_panel.fewshot_k_spin):
        assert field.focusPolicy() == Qt.FocusPolicy.StrongFocus
        before = field.currentIndex() if isinstance(field, QComboBox) else field.value()
        wheel(field, steps=-1)
        assert (field.currentIndex() if isinstance(field, QComboBox) else field.value()) == before


def test_install_guards_fields_of_any_view(qtbot):
    """The application-wide guard (app.py installs it): a form nobody guarded by hand."""
    app = QApplication.instance()
    wheel_guard.install(app)
    try:
        scroll = QScrollArea()
        inner = QWidget()
        box = QVBoxLayout(inner)
        spin, combo = QSpinBox(), QComboBox()
        spin.setValue(5)
        combo.addItems(["a", "b", "c"])
        for w in (spin, combo):
            box.addWidget(w)
        box.addSpacing(2000)
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        qtbot.addWidget(scroll)
        scroll.resize(300, 200)
        scroll.show()
        qtbot.waitExposed(scroll)
        assert spin.focusPolicy() == Qt.FocusPolicy.StrongFocus
        assert not wheel(spin).isAccepted() and spin.value() == 5
        assert not wheel(combo).isAccepted() and combo.currentIndex() == 0
        spin.setFocus()
        qtbot.waitUntil(spin.hasFocus)
        wheel(spin, steps=1)
        assert spin.value() == 6
    finally:
        app.removeEventFilter(wheel_guard._guard())
        app._ftcurate_wheel_guard = False
