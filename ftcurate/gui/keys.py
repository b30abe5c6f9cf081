"""Single-key shortcuts that never fire while the user types or where they cannot see.

Reviewers press one letter per decision (A, R, U, J, K, …). Such a key must only act on what
the reviewer sees: never while a text box has the keyboard focus (Qt already keeps those keys
for the box), and never when the focus sits in a panel that is hidden, scrolled away or behind
another dock, where a typed sentence would otherwise run as a string of decisions.

:func:`key_shortcut` gives an action such keys through :class:`~PySide6.QtGui.QShortcut`
objects that ask :func:`focus_is_seen` first; the action itself keeps its keys with modifiers
(Ctrl+Z, …), so clicks on menus and toolbars are never held back. :func:`action_keys` lists
all of an action's keys for menus and the shortcut sheet.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit,
                               QWidget)

_MODIFIERS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
              | Qt.KeyboardModifier.MetaModifier)


def is_single_key(seq: QKeySequence) -> bool:
    """One key, alone or with Shift: what a typist produces by typing (A, Shift+A, ?, Space)."""
    if seq.count() != 1:
        return False
    combo = seq[0]
    return not (combo.keyboardModifiers() & _MODIFIERS)


def is_text_input(w: Optional[QWidget]) -> bool:
    """A widget the user types into."""
    if w is None:
        return False
    if isinstance(w, (QLineEdit, QAbstractSpinBox)):
        return True
    if isinstance(w, (QTextEdit, QPlainTextEdit)):
        return not w.isReadOnly()
    if isinstance(w, QComboBox):
        return w.isEditable()
    return False


def focus_is_seen(w: Optional[QWidget]) -> bool:
    """The keyboard focus is somewhere the user can see: shown, not clipped away, not a text box."""
    if w is None:
        return True
    if is_text_input(w) or not w.isVisible() or not w.isEnabled():
        return False
    return not w.visibleRegion().isEmpty()


def action_keys(action: QAction) -> list[QKeySequence]:
    """Every key of an action: its own shortcuts and the single keys given by :func:`key_shortcut`."""
    own = list(action.shortcuts())
    extra = action.property("single_keys") or []
    return own + [QKeySequence(k) for k in extra]


def key_shortcut(window: QWidget, action: QAction, keys: Iterable[QKeySequence],
                 blocked: Callable[[QAction], None], repeat: bool = False) -> list[QShortcut]:
    """Give ``action`` single ``keys`` that only trigger it when :func:`focus_is_seen`;
    otherwise ``blocked(action)`` is called (e.g. to say where the focus is). ``repeat``: a
    held key repeats (moving through records), off for decisions."""
    keys = list(keys)
    action.setProperty("single_keys", [k.toString() for k in keys])
    text = action.text().split("\t")[0]
    action.setText(text + "\t" + ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys))
    out = []
    for key in keys:
        sc = QShortcut(key, window)
        sc.setContext(Qt.ShortcutContext.WindowShortcut)
        sc.setAutoRepeat(repeat)

        def fire(act=action) -> None:
            if not act.isEnabled():
                return
            if focus_is_seen(QApplication.focusWidget()):
                act.trigger()
            else:
                blocked(act)

        sc.activated.connect(fire)
        # a disabled action's key is free for others (a view's own key, e.g. N in Duplicates):
        # an enabled shortcut would make the key ambiguous and neither would fire
        sc.setEnabled(action.isEnabled())
        action.enabledChanged.connect(sc.setEnabled)
        out.append(sc)
    return out
