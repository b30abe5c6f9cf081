"""Light and dark themes. "Follow the system" (the default) reads the desktop's colour
scheme (Qt's style hints) and follows it when it changes; "Light" and "Dark" force one.

Both palettes are set role by role (nothing is left to the platform) so that every text
colour keeps a WCAG contrast of at least 4.5:1 with the backgrounds it is drawn on:
``Text``/``WindowText``/``ButtonText`` on ``Base``/``AlternateBase``/``Window``/``Button``,
``PlaceholderText`` (also the muted text of labels: :func:`set_muted`) on all of them while
staying visibly dimmer than the text, ``HighlightedText`` on ``Highlight``.
tests/test_gui_contrast.py checks the rendered windows.

Views that draw their own colours ask :func:`colors` (semantic colours for rich text and
plots, each readable on the theme's backgrounds) or :func:`is_dark`, and redraw on
``QEvent.PaletteChange``. Switching themes re-polishes widgets with a style sheet, so none
keeps the previous theme's colours.

The style is Fusion (the same look everywhere, and it honours the palette) wrapped in
:class:`FocusRingStyle`, which draws a clear 2-pixel focus ring in the accent colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QRectF, QSettings, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication, QLabel, QProxyStyle, QStyle, QStyleOption, QWidget

THEMES = {"system": "Follow the system", "light": "Light", "dark": "Dark"}
_KEY = "view/theme"
_connected = False
_current = "system"


@dataclass(frozen=True)
class ThemeColors:
    """Semantic colours of a theme: each is readable (≥ 4.5:1) on the theme's window and
    base backgrounds."""

    dark: bool
    window: str
    base: str
    text: str
    muted: str  # secondary text; also the placeholder colour
    ok: str
    warn: str
    bad: str
    link: str
    accent: str  # focus rings, selection outlines (≥ 3:1 on the backgrounds: non-text contrast)


LIGHT = ThemeColors(dark=False, window="#efefef", base="#ffffff", text="#1b1f24", muted="#5f6670", ok="#237032",
                    warn="#a65300", bad="#c92a2a", link="#1864ab", accent="#1c63c9")
DARK = ThemeColors(dark=True, window="#2b2f34", base="#1e2125", text="#e9ecef", muted="#9aa1a9", ok="#69db7c",
                   warn="#ffa94d", bad="#ff8787", link="#74c0fc", accent="#74c0fc")


# -- contrast (WCAG 2.x) --------------------------------------------------------------------------


def relative_luminance(color: QColor | str) -> float:
    """WCAG relative luminance of an opaque colour (0 black .. 1 white)."""
    c = QColor(color)

    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF())


def contrast_ratio(a: QColor | str, b: QColor | str) -> float:
    """WCAG contrast ratio of two opaque colours (1 .. 21)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def composite(color: QColor | str, background: QColor | str) -> QColor:
    """``color`` (with its alpha) drawn over the opaque ``background``."""
    c, bg = QColor(color), QColor(background)
    a = c.alphaF()
    return QColor.fromRgbF(c.redF() * a + bg.redF() * (1 - a), c.greenF() * a + bg.greenF() * (1 - a),
                           c.blueF() * a + bg.blueF() * (1 - a))


def legible(color: QColor | str, background: QColor | str, minimum: float = 3.0) -> QColor:
    """``color``, darkened (on a light background) or lightened (on a dark one) just enough
    to reach ``minimum`` contrast with ``background``: keeps a category colour recognisable
    while making it readable (3:1 for symbols and marks, 4.5:1 for text)."""
    c, bg = QColor(color), QColor(background)
    if contrast_ratio(c, bg) >= minimum:
        return c
    darker = relative_luminance(bg) > 0.18
    h, s, l, a = c.getHslF()
    for _ in range(100):
        l = max(0.0, l - 0.01) if darker else min(1.0, l + 0.01)
        c = QColor.fromHslF(max(h, 0.0), s, l, a)
        if contrast_ratio(c, bg) >= minimum or l in (0.0, 1.0):
            break
    return c


# -- palettes -----------------------------------------------------------------------------------------


_GROUPS = (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive, QPalette.ColorGroup.Disabled)


def _fill(p: QPalette, roles: dict) -> QPalette:
    # every group gets the same colours (a disabled button would otherwise be drawn in the
    # other theme's colours); the disabled group then mutes its text
    for group in _GROUPS:
        for role, value in roles.items():
            p.setColor(group, role, QColor(value))
    return p


def light_palette() -> QPalette:
    R = QPalette.ColorRole
    c = LIGHT
    p = _fill(QPalette(), {
        R.Window: c.window, R.WindowText: c.text, R.Base: c.base, R.AlternateBase: "#f6f7f8", R.Text: c.text,
        R.Button: "#e9ecef", R.ButtonText: c.text, R.BrightText: "#ffffff", R.ToolTipBase: "#fffbe6",
        R.ToolTipText: c.text, R.Highlight: c.accent, R.HighlightedText: "#ffffff", R.PlaceholderText: c.muted,
        R.Link: c.link, R.LinkVisited: "#6741d9", R.Light: "#ffffff", R.Midlight: "#e3e3e3", R.Mid: "#b8b8b8",
        R.Dark: "#9f9f9f", R.Shadow: "#767676",
    })
    for role in (R.Text, R.WindowText, R.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#8b929a"))
    p.setColor(QPalette.ColorGroup.Disabled, R.Highlight, QColor("#c8ccd1"))
    # a disabled box is drawn on the window colour, not as an input field: it must look off
    p.setColor(QPalette.ColorGroup.Disabled, R.Base, QColor(c.window))
    return p


def dark_palette() -> QPalette:
    R = QPalette.ColorRole
    c = DARK
    p = _fill(QPalette(), {
        R.Window: c.window, R.WindowText: c.text, R.Base: c.base, R.AlternateBase: "#25292e", R.Text: c.text,
        R.Button: "#32373d", R.ButtonText: c.text, R.BrightText: "#ffffff", R.ToolTipBase: "#212529",
        R.ToolTipText: c.text, R.Highlight: "#3b5bdb", R.HighlightedText: "#ffffff", R.PlaceholderText: c.muted,
        R.Link: c.link, R.LinkVisited: "#b197fc", R.Light: "#3d434a", R.Midlight: "#343a40", R.Mid: "#24282c",
        R.Dark: "#141619", R.Shadow: "#000000",
    })
    for role in (R.Text, R.WindowText, R.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#767d85"))
    p.setColor(QPalette.ColorGroup.Disabled, R.Highlight, QColor("#3d434a"))
    p.setColor(QPalette.ColorGroup.Disabled, R.Base, QColor(c.window))  # a disabled box looks off
    return p


# -- the focus ring -----------------------------------------------------------------------------------


class FocusRingStyle(QProxyStyle):
    """Fusion with a focus ring that can be seen: a 2-pixel rounded outline in the accent
    colour (the palette's Highlight) around the focused button, field, box or item,
    instead of Fusion's faint tint."""

    _RINGED_PRIMITIVES = (QStyle.PrimitiveElement.PE_PanelButtonCommand, QStyle.PrimitiveElement.PE_FrameLineEdit,
                          QStyle.PrimitiveElement.PE_PanelButtonTool)
    _RINGED_COMPLEX = (QStyle.ComplexControl.CC_ComboBox, QStyle.ComplexControl.CC_SpinBox,
                       QStyle.ComplexControl.CC_ToolButton, QStyle.ComplexControl.CC_Slider)

    def __init__(self, base: str = "Fusion") -> None:
        super().__init__(base)

    _cache: dict = {}

    @classmethod
    def ring_color_for(cls, palette: QPalette) -> QColor:
        """The palette's Highlight, lightened or darkened until it stands out (3:1, WCAG
        non-text contrast) from the window, button and field backgrounds it is drawn on."""
        group = QPalette.ColorGroup.Active
        highlight = palette.color(group, QPalette.ColorRole.Highlight)
        backgrounds = [palette.color(group, r) for r in (QPalette.ColorRole.Window, QPalette.ColorRole.Button,
                                                          QPalette.ColorRole.Base)]
        key = (highlight.rgba(), *(b.rgba() for b in backgrounds))
        if key not in cls._cache:
            nearest = min(backgrounds, key=lambda b: contrast_ratio(highlight, b))
            cls._cache[key] = legible(highlight, nearest, 3.0)
        return QColor(cls._cache[key])

    def ring_color(self, option: QStyleOption) -> QColor:
        return self.ring_color_for(option.palette)

    def _ring(self, option: QStyleOption, painter: QPainter, inset: float = 1.0) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pen = QPen(self.ring_color(option))
        pen.setWidthF(2.0)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(QRectF(option.rect).adjusted(inset, inset, -inset, -inset), 3, 3)
        painter.restore()

    @staticmethod
    def _focused(option: QStyleOption) -> bool:
        state = option.state
        return bool(state & QStyle.StateFlag.State_HasFocus) and bool(state & QStyle.StateFlag.State_Enabled)

    def drawPrimitive(self, element, option, painter, widget=None) -> None:  # noqa: N802 - Qt's name
        if element == QStyle.PrimitiveElement.PE_FrameFocusRect:
            self._ring(option, painter, inset=1.0)  # check boxes, radio buttons, item views
            return
        super().drawPrimitive(element, option, painter, widget)
        if element in self._RINGED_PRIMITIVES and self._focused(option):
            self._ring(option, painter)

    def drawComplexControl(self, control, option, painter, widget=None) -> None:  # noqa: N802
        super().drawComplexControl(control, option, painter, widget)
        if control in self._RINGED_COMPLEX and self._focused(option):
            self._ring(option, painter)


# -- applying a theme ------------------------------------------------------------------------------------


def saved_theme(settings: QSettings) -> str:
    value = str(settings.value(_KEY, "system") or "system")
    return value if value in THEMES else "system"


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    return scheme is not None and scheme() == Qt.ColorScheme.Dark


def apply_theme(key: str, app: Optional[QApplication] = None) -> bool:
    """Apply a theme; returns True when the result is dark."""
    global _connected, _current
    _current = key
    app = app or QApplication.instance()
    if app is None:
        return False
    dark = system_is_dark() if key == "system" else key == "dark"
    if not isinstance(app.style(), FocusRingStyle):
        app.setStyle(FocusRingStyle("Fusion"))
    app.setPalette(dark_palette() if dark else light_palette())
    # the widgets learn of the new palette from posted events: deliver them now, so that the
    # whole window has switched when this returns (and the re-polish below sees the new colours)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.ApplicationPaletteChange)
    _repolish(app)
    hints = QGuiApplication.styleHints()
    if key == "system" and not _connected and hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda _s: apply_theme("system", app) if _current == "system" else None)
        _connected = True
    return dark


def _repolish(app: QApplication) -> None:
    """Widgets with a style sheet keep the palette they were polished with: polish them again
    so that none keeps the previous theme's text colour."""
    # widgets closed with deleteLater() are still listed until their deletion is delivered, and
    # touching one that is half torn down crashes: deliver those deletions first, skip any left
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    widgets = [w for w in app.allWidgets() if shiboken6.isValid(w)]
    styled = {id(w) for w in widgets if w.styleSheet()}
    if not styled:
        return

    def under_a_sheet(w: QWidget) -> bool:  # a style sheet also styles the children of its widget
        while w is not None:
            if id(w) in styled:
                return True
            w = w.parentWidget()
        return False

    for w in widgets:
        if under_a_sheet(w):
            style = w.style()
            style.unpolish(w)
            style.polish(w)
            w.update()


def is_dark() -> bool:
    app = QApplication.instance()
    if app is None:
        return False
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def colors() -> ThemeColors:
    """The semantic colours of the theme in use."""
    return DARK if is_dark() else LIGHT


_READABLE: dict = {}


def readable(color: QColor | str, minimum: float = 4.5) -> QColor:
    """``color`` adjusted to be read on every background of the theme in use (window, base and
    the alternate row colour): 4.5:1 for text, 3:1 for marks. Category colours (statuses,
    finding kinds) keep their hue; cached per theme."""
    dark = is_dark()
    key = (QColor(color).name(QColor.NameFormat.HexArgb), minimum, dark)
    out = _READABLE.get(key)
    if out is None:
        c = colors()
        alternate = "#25292e" if dark else "#f6f7f8"
        out = QColor(color)
        for _ in range(3):  # each step can only move away from every background of one theme
            for bg in (c.window, c.base, alternate):
                out = legible(out, bg, minimum)
        _READABLE[key] = out
    return QColor(out)


def set_muted(label: QWidget) -> QWidget:
    """Draw ``label``'s text in the muted colour (the palette's PlaceholderText): dimmer than
    normal text, still ≥ 4.5:1, and it follows theme changes by itself."""
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def muted_label(text: str = "", wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    set_muted(label)
    return label
