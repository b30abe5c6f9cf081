"""Scrolling a form must not change its values.

Qt lets the mouse wheel change a spin box or a combo box as soon as the pointer is over
it, so scrolling through a long settings form (the Training settings) changed whatever
field passed under the pointer (LoRA rank 16 → 8). With the guard, the wheel changes a
field only after the user clicked into it (or tabbed to it): over any other field it
scrolls the surrounding scroll area as if the field were not there.

* :func:`install` guards every spin box and combo box of the application inside a scroll
  area (``app.py`` calls it once);
* :func:`guard_wheel` guards the fields inside one widget, wherever they are (views call
  it on their own forms, so they are safe in tests and embedders that skip :func:`install`).
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QApplication, QComboBox, QWidget

GUARDED = (QAbstractSpinBox, QComboBox)
_MARK = "ftcurateWheelGuard"  # set on fields guarded by guard_wheel: guarded wherever they are


def _in_scroll_area(widget: QWidget) -> bool:
    """True when ``widget`` sits inside a scroll area (the wheel means "scroll" there)."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea):
            return True
        parent = parent.parentWidget()
    return False


def _guarded_field(obj: QObject) -> Optional[QWidget]:
    """The spin box or combo box ``obj`` is (or is the line edit of), else None."""
    if isinstance(obj, GUARDED):
        return obj
    parent = obj.parent() if isinstance(obj, QWidget) else None
    if isinstance(parent, QAbstractSpinBox):  # the spin box's own line edit
        return parent
    return None


class WheelGuard(QObject):
    """An event filter: wheel events over an unfocused spin box or combo box inside a
    scroll area are ignored by the field and go on to the scroll area."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        kind = event.type()
        if kind == QEvent.Type.Polish and isinstance(obj, GUARDED):
            prepare(obj)
        elif kind == QEvent.Type.Wheel:
            field = _guarded_field(obj)
            if field is not None and not field.hasFocus() and (field.property(_MARK) or _in_scroll_area(field)):
                # "handled but not accepted": Qt then offers the event to the parents,
                # up to the scroll area, which scrolls
                event.ignore()
                return True
        return False


_GUARD: Optional[WheelGuard] = None


def _guard() -> WheelGuard:
    global _GUARD
    if _GUARD is None:
        _GUARD = WheelGuard()
    return _GUARD


def prepare(field: QWidget) -> None:
    """The wheel no longer gives focus: a click or Tab does (Qt.StrongFocus)."""
    if field.focusPolicy() == Qt.FocusPolicy.WheelFocus:
        field.setFocusPolicy(Qt.FocusPolicy.StrongFocus)


def guard_wheel(root: QWidget) -> None:
    """Guard the spin boxes and combo boxes inside ``root`` (call after building it)."""
    guard = _guard()
    for field in root.findChildren(QWidget):
        if isinstance(field, GUARDED):
            prepare(field)
            field.setProperty(_MARK, True)
            field.installEventFilter(guard)


def install(app: Optional[QApplication] = None) -> None:
    """Guard every spin box and combo box of the application, now and later."""
    app = app or QApplication.instance()
    if app is None or getattr(app, "_ftcurate_wheel_guard", False):
        return
    app.installEventFilter(_guard())
    app._ftcurate_wheel_guard = True  # noqa: SLF001 - a marker, so that the filter is installed once
