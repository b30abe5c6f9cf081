"""Background work for the GUI: run a core function in a QThread, with progress and cancel.

A core function takes ``progress(done, total, message)`` and ``cancel()`` keyword
arguments (see :mod:`ftcurate.core.progress`). :class:`Worker` runs one in a
``QThread`` and reports back over queued signals, always delivered in the GUI thread:

* ``progress(int done, int total, str message)`` - ``total`` is 0 when unknown
* ``finished(object result)``
* ``failed(str message, str details)`` - details hold the traceback
* ``cancelled()``
* ``ended()`` - after any of the three above; the thread has stopped by then

The function never touches a widget: it runs in another thread. :class:`TaskProgress`
is the status-bar widget (label, progress bar, Cancel button) that follows workers.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from ..core.io.formats import DatasetError
from ..core.progress import Cancelled

_PROGRESS_INTERVAL = 0.05  # seconds between progress signals (the last one always goes)


def describe_error(exc: BaseException) -> str:
    """A one-paragraph message for the user (no traceback)."""
    if isinstance(exc, DatasetError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = str(exc).strip()
    return text or type(exc).__name__


class _Runner(QObject):
    """Lives in the worker thread and calls the function there."""

    progress = Signal(int, int, str)
    succeeded = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    event = Signal(object)

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, stop: threading.Event,
                 event_kw: Optional[str] = None, heavy: bool = False) -> None:
        super().__init__()
        self._fn = fn
        self._heavy = heavy
        self._args = args
        self._kwargs = dict(kwargs)
        if event_kw:  # the function reports partial results through this callback
            self._kwargs[event_kw] = lambda *a: self.event.emit(a[0] if len(a) == 1 else a)
        self._stop = stop
        self._last = 0.0

    def _progress(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if now - self._last >= _PROGRESS_INTERVAL or (total and done >= total):
            self._last = now
            self.progress.emit(int(done), int(total or 0), str(message or ""))

    @Slot()
    def run(self) -> None:
        try:
            if self._heavy:  # torch & co. first, with the garbage collector paused
                from .tasks import import_heavy_modules

                import_heavy_modules(progress=self._progress)
            result = self._fn(*self._args, progress=self._progress, cancel=self._stop.is_set, **self._kwargs)
        except Cancelled:
            self.cancelled.emit()
        except Exception as exc:  # reported to the user, never raised into Qt
            self.failed.emit(describe_error(exc), traceback.format_exc())
        else:
            self.succeeded.emit(result)
        finally:
            # the work is done: end the thread's event loop now, so wait() returns at once
            # (the signals above are already queued for the GUI thread)
            QThread.currentThread().quit()


class Worker(QObject):
    """Runs ``fn(*args, progress=..., cancel=..., **kwargs)`` in its own QThread.

    Keep a reference to the worker until ``ended`` fires. ``discard(result)`` is called
    (in the GUI thread) for a result that arrives after :meth:`cancel` was asked for:
    the worker then reports ``cancelled`` instead of ``finished`` - use it to close
    what the function opened.

    ``heavy=True``: the function uses torch, transformers or sentence-transformers; the
    worker imports them first with the garbage collector paused, so the GUI does not stall
    on collections while they load (:func:`ftcurate.gui.tasks.import_heavy_modules`).

    ``event_kw="on_result"`` passes the function a callback under that name; each call
    arrives in the GUI thread as :attr:`event` (one argument as is, several as a tuple):
    partial results, training metrics.
    """

    progress = Signal(int, int, str)
    event = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    ended = Signal()

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        title: str = "",
        discard: Optional[Callable[[Any], None]] = None,
        parent: Optional[QObject] = None,
        event_kw: Optional[str] = None,
        heavy: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(parent)
        self.title = title or getattr(fn, "__name__", "working")
        self._discard = discard
        self._stop = threading.Event()
        self._runner: Optional[_Runner] = _Runner(fn, args, kwargs, self._stop, event_kw, heavy)
        self._thread: Optional[QThread] = None
        self._state = "new"  # new / running / finished / failed / cancelled

    # -- control -------------------------------------------------------------------------
    def start(self) -> "Worker":
        if self._state != "new" or self._runner is None:
            raise RuntimeError("a Worker can be started once")
        thread = QThread()
        thread.setObjectName(f"ftcurate-worker:{self.title}")
        runner = self._runner
        runner.moveToThread(thread)
        thread.started.connect(runner.run)
        q = Qt.ConnectionType.QueuedConnection
        runner.progress.connect(self._on_progress, q)
        runner.event.connect(self._on_event, q)
        runner.succeeded.connect(self._on_succeeded, q)
        runner.failed.connect(self._on_failed, q)
        runner.cancelled.connect(self._on_cancelled, q)
        self._thread = thread
        self._state = "running"
        thread.start()
        return self

    def cancel(self) -> None:
        """Ask the function to stop at its next safe point (it raises Cancelled)."""
        self._stop.set()

    @property
    def cancel_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def state(self) -> str:
        return self._state

    def is_running(self) -> bool:
        return self._state == "running"

    def wait(self, msecs: int = 30000) -> bool:
        """Block until the thread has stopped (for shutdown only)."""
        thread = self._thread
        if thread is None:
            return True
        return thread.wait(msecs)

    # -- results (GUI thread) ----------------------------------------------------------------
    def _stop_thread(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.quit()
            thread.wait()
        self._runner = None  # the thread has ended: safe to let it go

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, message: str) -> None:
        if self._state == "running":
            self.progress.emit(done, total, message)

    @Slot(object)
    def _on_event(self, value: Any) -> None:
        if self._state == "running":
            self.event.emit(value)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        self._stop_thread()
        if self._stop.is_set():
            if self._discard is not None:
                try:
                    self._discard(result)
                except Exception:
                    pass
            self._state = "cancelled"
            self.cancelled.emit()
        else:
            self._state = "finished"
            self.finished.emit(result)
        self.ended.emit()

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        self._stop_thread()
        self._state = "failed"
        self.failed.emit(message, details)
        self.ended.emit()

    @Slot()
    def _on_cancelled(self) -> None:
        self._stop_thread()
        self._state = "cancelled"
        self.cancelled.emit()
        self.ended.emit()


class TaskProgress(QWidget):
    """Status-bar widget: what is running, a progress bar and a Cancel button.

    Follows every worker given to :meth:`track`; shows the newest one still running
    and hides itself when none is left.
    """

    LABEL_WIDTH = 200  # pixels for the task's message

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 4, 0)
        layout.setSpacing(6)
        self.label = QLabel()
        self.label.setMaximumWidth(self.LABEL_WIDTH + 8)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(90)
        self.bar.setMaximumHeight(16)
        self.bar.setTextVisible(False)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop this task")
        self.cancel_button.clicked.connect(self.cancel_current)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel_button)
        self._workers: list[Worker] = []
        self._last: dict[int, tuple[int, int, str]] = {}
        self.hide()

    def track(self, worker: Worker) -> None:
        self._workers.append(worker)
        self._last[id(worker)] = (0, 0, worker.title)
        worker.progress.connect(self._on_progress)
        worker.ended.connect(self._on_ended)
        self._show_current()

    @property
    def current(self) -> Optional[Worker]:
        return self._workers[-1] if self._workers else None

    @Slot()
    def cancel_current(self) -> None:
        worker = self.current
        if worker is not None:
            worker.cancel()
            self.label.setText(f"Cancelling {worker.title}…")
            self.cancel_button.setEnabled(False)

    @Slot(int, int, str)
    def _on_progress(self, done: int, total: int, message: str) -> None:
        worker = self.sender()
        if isinstance(worker, Worker):
            self._last[id(worker)] = (done, total, message or worker.title)
            if worker is self.current:
                self._show_current()

    @Slot()
    def _on_ended(self) -> None:
        worker = self.sender()
        if isinstance(worker, Worker) and worker in self._workers:
            self._workers.remove(worker)
            self._last.pop(id(worker), None)
        self._show_current()

    def _show_current(self) -> None:
        worker = self.current
        if worker is None:
            self.hide()
            return
        done, total, message = self._last.get(id(worker), (0, 0, worker.title))
        if worker.cancel_requested:
            text = f"Cancelling {worker.title}…"
        else:
            count = f" {done:,}/{total:,}" if total else (f" {done:,}" if done else "")
            text = f"{message}{count}"
        # never wider than its share of the status bar: long messages are elided (whole in the tooltip)
        self.label.setToolTip(text)
        self.label.setText(self.label.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, self.LABEL_WIDTH))
        self.cancel_button.setEnabled(not worker.cancel_requested)
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        else:
            self.bar.setRange(0, 0)  # busy
        self.show()
