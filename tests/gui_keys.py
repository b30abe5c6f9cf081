"""Typing like a person in the GUI tests: each key goes to whatever widget has the keyboard
focus at that moment (the first key of a table cell opens its editor, which takes the rest)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication


def focused():
    return QApplication.focusWidget()


def type_text(qtbot, text: str) -> None:
    """Each character to the widget that has the focus when it is typed."""
    for ch in text:
        qtbot.keyClicks(focused(), ch)


def activate(qtbot, window) -> None:
    """A dialog or window in front with the keyboard, as it is when it opens on a desktop."""
    qtbot.waitUntil(window.isVisible)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)


def tab_to(qtbot, widget, limit: int = 40) -> None:
    """Press Tab on whatever has the focus until ``widget`` has it."""
    for _ in range(limit):
        if focused() is widget:
            return
        qtbot.keyClick(focused(), Qt.Key.Key_Tab)
    raise AssertionError(f"Tab never reached {widget!r}; the focus is on {focused()!r}")


def press_until(qtbot, widget, key, done, limit: int = 400) -> None:
    """Press ``key`` on ``widget`` until ``done()`` holds; fail (never spin) after ``limit`` presses."""
    for _ in range(limit):
        if done():
            return
        qtbot.keyClick(widget, key)
    assert done(), f"{limit} presses of {key} did not get there"
