"""Guards against bugs in the Qt bindings, applied once when ftcurate.gui is imported."""

from __future__ import annotations

import sys

_guarded = False


def guard_singleton_refcounts() -> bool:
    """Work around a binding bug that kills the interpreter while plotting.

    With some PySide6 builds (seen with 6.12.0 on Python 3.11) a call of a C++ method that
    returns nothing takes one reference from ``None`` without having given it one, and
    ``Signal.emit`` does the same to ``True``. Python 3.12+ never frees these singletons
    (they are immortal there), but on 3.10/3.11 their count reaches zero after a few
    thousand such calls - a chart repaint makes hundreds - and the process aborts with
    "Fatal Python error: none_dealloc" (or bool_dealloc). When the bug is measured here,
    the singletons get a huge reference count, which is what 3.12 does by design. Returns
    True when it had to; harmless to call again; a no-op on fixed builds and newer Pythons.
    """
    global _guarded
    if _guarded or sys.version_info >= (3, 12):
        return _guarded
    from PySide6.QtCore import QObject

    probe = QObject()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(16):
        probe.setObjectName("probe")  # returns void
        probe.objectNameChanged.emit("probe")  # returns True
    if none_before - sys.getrefcount(None) >= 16 or true_before - sys.getrefcount(True) >= 16:
        import ctypes

        for singleton in (None, True, False, NotImplemented, Ellipsis):
            ctypes.c_ssize_t.from_address(id(singleton)).value += 1 << 40  # ob_refcnt: PyObject's first field
        _guarded = True
    return _guarded
