"""The project lock: one writer per project file, across processes and within one.

A writable project holds an exclusive lock on the sidecar file ``<path>.lock``
(``fcntl.flock``; ``msvcrt.locking`` on Windows) for its whole life, with its pid written
inside. The OS drops the lock when the process dies. A second writer gets
:class:`ProjectInUse` at once, or after waiting up to ``wait`` seconds for the lock.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable, Optional

from .errors import ProjectError, ProjectInUse, from_os_error

_WIN_LOCK_OFFSET = 1 << 20  # Windows: lock a byte past the pid so others can read it
_POLL = 0.05  # seconds between two tries while waiting for the lock

_OPEN_IN_PROCESS: set[str] = set()  # lock paths held by Project objects of this process
_OPEN_GUARD = threading.Lock()


class FileLock:
    """Exclusive, non-blocking lock on ``<project>.lock`` holding the owner's pid."""

    def __init__(self, project_path: str) -> None:
        self.project_path = project_path
        self.path = project_path + ".lock"
        self.key = os.path.normcase(os.path.realpath(self.path))
        self.fd: Optional[int] = None
        self.created = False

    def acquire(self, wait: float = 0.0, on_wait: Optional[Callable[[ProjectInUse], None]] = None) -> None:
        """Take the lock; while another holder has it, retry for up to ``wait`` seconds
        (``on_wait`` hears about the holder once, when waiting starts)."""
        deadline = time.monotonic() + max(0.0, float(wait or 0.0))
        told = False
        while True:
            try:
                self._try_acquire()
                return
            except ProjectInUse as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                if not told and on_wait is not None:
                    on_wait(exc)
                    told = True
                time.sleep(min(_POLL, left))

    def _try_acquire(self) -> None:
        with _OPEN_GUARD:
            if self.key in _OPEN_IN_PROCESS:
                raise ProjectInUse(
                    f"Project {self.project_path} is in use: it is already open in this "
                    f"ftcurate process (pid {os.getpid()})",
                    self.project_path,
                    os.getpid(),
                )
            existed = os.path.exists(self.path)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise from_os_error(exc, self.project_path) from exc
            self.created = self.created or not existed
            try:
                _lock_fd(fd)
            except OSError:
                os.close(fd)
                pid = read_pid(self.path)
                who = f"pid {pid}" if pid is not None else "pid unknown"
                if pid == os.getpid():
                    msg = f"Project {self.project_path} is in use: it is already open in this ftcurate process ({who})"
                else:
                    msg = f"Project {self.project_path} is in use by another ftcurate process ({who})"
                raise ProjectInUse(msg, self.project_path, pid) from None
            try:
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
                os.fsync(fd)
            except OSError:
                pass  # the pid is informative only; the lock itself is held
            self.fd = fd
            _OPEN_IN_PROCESS.add(self.key)

    def release(self, remove: bool = False) -> None:
        with _OPEN_GUARD:
            fd, self.fd = self.fd, None
            if fd is None:
                return
            _OPEN_IN_PROCESS.discard(self.key)
            if remove:
                # Only for lock files we created next to something that turned out
                # not to be a project (or a project we removed): nobody else can be waiting on them.
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            else:
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            try:
                _unlock_fd(fd)
            except OSError:
                pass
            os.close(fd)


def writer_active(project_path: str) -> bool:
    """True when some process holds the project's write lock (a best-effort probe that takes
    no lock and creates nothing; False where it cannot tell)."""
    path = project_path + ".lock"
    key = os.path.normcase(os.path.realpath(path))
    with _OPEN_GUARD:
        if key in _OPEN_IN_PROCESS:
            return True
    if sys.platform == "win32":  # pragma: no cover - msvcrt has no shared probe
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # no lock file: nobody has the project open for writing
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_fd(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        os.lseek(fd, 0, os.SEEK_SET)

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def read_pid(lock_path: str) -> Optional[int]:
    try:
        with open(lock_path, "rb") as fh:
            text = fh.read(64).decode("ascii", "replace").strip()
        return int(text.split()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None


__all__ = ["FileLock", "ProjectError", "ProjectInUse", "read_pid", "writer_active"]
