"""Progress reporting and cancellation for long-running core work.

Every long function in ``ftcurate.core`` and ``ftcurate.train`` takes two optional
keyword arguments:

* ``progress(done, total, message)``: called now and then; ``total`` may be 0 when unknown.
* ``cancel()``: returns True when the caller wants the work to stop; the function then
  raises :class:`Cancelled` at the next safe point, leaving stored data consistent.
"""

from __future__ import annotations

from typing import Callable, Optional

ProgressCallback = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


class Cancelled(Exception):
    """Raised inside core work when the cancel check returned True."""


def no_progress(done: int, total: int, message: str = "") -> None:  # noqa: ARG001
    return None


def never_cancel() -> bool:
    return False


class Reporter:
    """Throttles progress calls and checks cancellation in one place."""

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

    def tick(self, done: int, message: str = "") -> None:
        if done - self._last >= self.every or done == self.total:
            self._last = done
            if self.cancel():
                raise Cancelled(message or "cancelled")
            self.progress(done, self.total, message)

    def check(self) -> None:
        if self.cancel():
            raise Cancelled("cancelled")
