"""Progress reporting and cancellation for long-running core work.

Every long function in ``ftcurate.core`` and ``ftcurate.train`` takes two optional
keyword arguments:

* ``progress(done, total, message)``: called now and then; ``total`` may be 0 when unknown.
* ``cancel()``: returns True when the caller wants the work to stop; the function then
  raises :class:`Cancelled` at the next safe point, leaving stored data consistent.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

ProgressCallback = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


class Cancelled(Exception):
    """Raised inside core work when the cancel check returned True."""


def no_progress(done: int, total: int, message: str = "") -> None:  # noqa: ARG001
    return None


def never_cancel() -> bool:
    return False


_YIELD_EVERY = 0.005  # seconds of work between two GIL hand-overs in a background thread
_MAIN = threading.main_thread()


class Reporter:
    """Throttles progress calls and checks cancellation in one place.

    Run outside the main thread (a GUI worker), it also hands the GIL over for 0.1 ms at
    most every 5 ms: loops that release the GIL only for instants (line reads, SQLite
    inserts) otherwise starve the GUI thread for 50-180 ms at a time (see
    benchmarks/bench_gui.py); the cost is about 2%.
    """

    def __init__(
        self,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelCheck] = None,
        total: int = 0,
        every: int = 1000,
    ) -> None:
        self.progress = progress or no_progress
        self.cancel = cancel or never_cancel
        self.total = total
        self.every = max(1, every)
        self._last = -1
        self._background = threading.current_thread() is not _MAIN
        self._yielded = time.monotonic()

    def _share(self) -> None:
        if self._background:
            now = time.monotonic()
            if now - self._yielded >= _YIELD_EVERY:
                time.sleep(0.0001)
                self._yielded = time.monotonic()

    def tick(self, done: int, message: str = "") -> None:
        self._share()
        if done - self._last >= self.every or done == self.total:
            self._last = done
            if self.cancel():
                raise Cancelled(message or "cancelled")
            self.progress(done, self.total, message)

    def check(self) -> None:
        self._share()
        if self.cancel():
            raise Cancelled("cancelled")
