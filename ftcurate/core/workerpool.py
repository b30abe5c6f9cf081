"""Worker processes for long work on every core (the import's reader, ``core/io/bulk.py``; the
scan's record pass, ``core/quality/recordpass.py``): one way to start them, wait on them and
stop them.

* :func:`spawn_pool`: a ``spawn`` process pool (no fork of a process that runs Qt threads) whose
  workers end when the process that started them is gone (killed, its workers would otherwise
  wait for work for ever); leaving the block normally shuts the pool down, leaving it by an
  exception (a cancel, an error, a consumer that stopped) ends the workers at once.
* :func:`result`: a future's result, with ``rep.check()`` (cancel) while waiting.
* :func:`in_order`: calls on a pool, results in order, a bounded number in flight.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from typing import Any, Callable, Iterable, Iterator

from .progress import Reporter


def _end_with_parent() -> None:
    """Worker start: end this worker when the process that started it is gone."""
    import multiprocessing as mp
    import threading

    parent = mp.parent_process()
    if parent is None:  # pragma: no cover - not a worker
        return

    def watch() -> None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="ftcurate-parent-watch", daemon=True).start()


@contextlib.contextmanager
def spawn_pool(nproc: int) -> Iterator[Any]:
    """A ``concurrent.futures.ProcessPoolExecutor`` of ``nproc`` spawned workers (see above)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    ex = cf.ProcessPoolExecutor(max_workers=nproc, mp_context=mp.get_context("spawn"), initializer=_end_with_parent)
    ok = False
    try:
        yield ex
        ok = True
    finally:
        if ok:
            ex.shutdown(wait=True)
        else:  # cancelled, failed, or the consumer stopped: end the workers now
            procs = list((getattr(ex, "_processes", None) or {}).values())
            for p in procs:
                p.terminate()
            ex.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                p.join(timeout=5)


def result(fut: Any, rep: Reporter) -> Any:
    """``fut.result()``, checking ``rep`` for a cancel every 0.2 s while it is not ready."""
    import concurrent.futures as cf

    while True:
        try:
            return fut.result(timeout=0.2)
        except cf.TimeoutError:
            rep.check()


def in_order(ex: Any, fn: Callable[..., Any], calls: Iterable[tuple], rep: Reporter, ahead: int) -> Iterator[Any]:
    """``fn(*args)`` on the pool ``ex`` for each ``args`` of ``calls`` (taken when submitted),
    the results in order; at most ``ahead`` calls in flight (bounded memory, a cancel close at
    hand)."""
    pending: deque = deque()
    for args in calls:
        pending.append(ex.submit(fn, *args))
        if len(pending) >= ahead:
            yield result(pending.popleft(), rep)
    while pending:
        yield result(pending.popleft(), rep)
