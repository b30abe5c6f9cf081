"""Light and dark themes. "Follow the system" (the default) reads the desktop's colour
scheme (Qt's style hints) and follows it when it changes; "Light" and "Dark" force one.
Views that draw their own colours ask :func:`is_dark`."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = {"system": "Follow the system", "light": "Light", "dark": "Dark"}
_KEY = "view/theme"
_connected = False
_current = "system"


def saved_theme(settings: QSettings) -> str:
    value = str(settings.value(_KEY, "system") or "system")
    return value if value in THEMES else "system"


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    return scheme is not None and scheme() == Qt.ColorScheme.Dark


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor("#1e2125"), QColor("#2b2f34"), QColor("#e9ecef")
    # every group gets the dark colours (a disabled button would otherwise be drawn light);
    # the disabled group then mutes its text
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive, QPalette.ColorGroup.Disabled):
        p.setColor(group, QPalette.ColorRole.Window, window)
        p.setColor(group, QPalette.ColorRole.WindowText, text)
        p.setColor(group, QPalette.ColorRole.Base, base)
        p.setColor(group, QPalette.ColorRole.AlternateBase, QColor("#25292e"))
        p.setColor(group, QPalette.ColorRole.Text, text)
        p.setColor(group, QPalette.ColorRole.Button, window)
        p.setColor(group, QPalette.ColorRole.ButtonText, text)
        p.setColor(group, QPalette.ColorRole.ToolTipBase, QColor("#343a40"))
        p.setColor(group, QPalette.ColorRole.ToolTipText, text)
        p.setColor(group, QPalette.ColorRole.Highlight, QColor("#4263eb"))
        p.setColor(group, QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
        p.setColor(group, QPalette.ColorRole.PlaceholderText, QColor("#adb5bd"))
        p.setColor(group, QPalette.ColorRole.Link, QColor("#74c0fc"))
        p.setColor(group, QPalette.ColorRole.Light, QColor("#3d434a"))
        p.setColor(group, QPalette.ColorRole.Midlight, QColor("#343a40"))
        p.setColor(group, QPalette.ColorRole.Mid, QColor("#24282c"))
        p.setColor(group, QPalette.ColorRole.Dark, QColor("#141619"))
        p.setColor(group, QPalette.ColorRole.Shadow, QColor("#000000"))
    # a disabled box is drawn on the window colour, not as an input field (it must look off)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Base, window)
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6c757d"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#6c757d"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6c757d"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor("#3d434a"))
    return p


def apply_theme(key: str, app: Optional[QApplication] = None) -> bool:
    """Apply a theme; returns True when the result is dark."""
    global _connected, _current
    _current = key
    app = app or QApplication.instance()
    if app is None:
        return False
    dark = system_is_dark() if key == "system" else key == "dark"
    app.setStyle("Fusion")  # the same look everywhere, and it honours the palette
    app.setPalette(dark_palette() if dark else app.style().standardPalette())
    hints = QGuiApplication.styleHints()
    if key == "system" and not _connected and hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda _s: apply_theme("system", app) if _current == "system" else None)
        _connected = True
    return dark


def is_dark() -> bool:
    app = QApplication.instance()
    if app is None:
        return False
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128
