"""Atomic file writing: a temp file in the destination folder, fsync, then rename.

What a user expects of a saved file, whichever ftcurate command wrote it:

* A new file's mode follows the umask (0644 under the usual 022), as any program's would; a
  replaced file keeps its mode (and, where the OS lets us, its owner and group).
* A read-only file (no write bit, whoever runs ftcurate: root too) is not replaced:
  :class:`WriteError` says so.
* A symlink is written through: the file it points to gets the new content and the link stays
  (as a shell's ``>`` or an editor does).
* Errors name the file the user asked for, never a temp file, and say "disk full" or
  "permission denied" in words; the previous file is left as it was.

:func:`exclusive_lock` is a lock file beside a target that a second writer fails on at once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
from typing import Iterator, Optional

__all__ = ["WriteError", "atomic_path", "atomic_text", "write_text_atomic", "resolve_target",
           "check_replaceable", "match_target", "explain_os_error", "fsync_folder", "exclusive_lock"]

TEMP_PREFIX = ".ftcurate-"


class WriteError(OSError):
    """A file could not be written. ``str()`` is a plain sentence naming the target file;
    ``key`` is one of ``disk_full``, ``permission_denied``, ``read_only``, ``read_only_fs``,
    ``is_directory``, ``busy``, ``write_failed``."""

    def __init__(self, message: str, path: str = "", key: str = "write_failed",
                 err: Optional[int] = None) -> None:
        super().__init__(err if err is not None else errno.EIO, message)
        self.message = message
        self.filename = path
        self.key = key

    def __str__(self) -> str:
        return self.message


_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}
_DENIED = {errno.EACCES, errno.EPERM}


def explain_os_error(exc: BaseException, target: str, kept: str = "it was left as it was") -> WriteError:
    """``exc`` (raised while writing ``target`` or its temp file) as a :class:`WriteError`
    that names ``target``; ``kept`` says what became of the previous content."""
    err = getattr(exc, "errno", None)
    if err in _DISK_FULL:
        return WriteError(f"disk full while writing {target}; {kept}", target, "disk_full", err)
    if err in _DENIED:
        return WriteError(f"permission denied writing {target} (check the folder's permissions); {kept}",
                          target, "permission_denied", err)
    if err == errno.EROFS:
        return WriteError(f"cannot write {target}: the file system is read-only", target, "read_only_fs", err)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return WriteError(f"cannot write {target}: {reason}; {kept}", target, "write_failed", err)


def resolve_target(path: str) -> str:
    """The file that writing ``path`` changes: ``path`` itself, or the file a symlink at
    ``path`` points to (followed to the end, even when that file does not exist yet)."""
    path = os.path.abspath(os.fspath(path))
    return os.path.realpath(path) if os.path.islink(path) else path


def check_replaceable(target: str, shown: Optional[str] = None) -> Optional[os.stat_result]:
    """Raise :class:`WriteError` when ``target`` is a folder or a read-only file (judged by its
    mode bits: root may write anything, but a file marked read-only is not replaced). Returns
    its stat, or None when it does not exist."""
    shown = shown or target
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise explain_os_error(exc, shown) from exc
    if stat.S_ISDIR(st.st_mode):
        raise WriteError(f"{shown} is a folder: give a file name", shown, "is_directory", errno.EISDIR)
    if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise WriteError(f"{shown} is read-only: not replacing it (make it writable, or choose another file)",
                         shown, "read_only", errno.EACCES)
    return st


def match_target(tmp: str, existing: Optional[os.stat_result]) -> None:
    """Give ``tmp`` the mode (and, where allowed, owner and group) of the file it replaces.
    With no file to replace, ``tmp`` keeps the umask mode it was created with."""
    if existing is None:
        return
    os.chmod(tmp, stat.S_IMODE(existing.st_mode))
    if hasattr(os, "chown"):
        st = os.stat(tmp)
        if (st.st_uid, st.st_gid) != (existing.st_uid, existing.st_gid):
            try:
                os.chown(tmp, existing.st_uid, existing.st_gid)
            except OSError:
                with contextlib.suppress(OSError):
                    os.chown(tmp, -1, existing.st_gid)
            os.chmod(tmp, stat.S_IMODE(existing.st_mode))  # chown may clear set-id bits


def fsync_folder(folder: str) -> None:
    """Make renames in ``folder`` durable (best effort: not every OS or file system can)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_temp(folder: str) -> tuple[str, int]:
    """Create an empty temp file in ``folder``; return it and the mode the umask gives a new file."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the mode the umask leaves is a new file's mode
        except FileExistsError:
            continue
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # private while it is being written
        finally:
            os.close(fd)
        return tmp, mode
    raise FileExistsError(errno.EEXIST, "no free temporary file name", folder)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step
    (fsynced; mode kept or from the umask; a symlink written through), on error it is removed
    and ``path`` is left as it was. Errors are :class:`WriteError` naming ``path``."""
    shown = os.path.abspath(os.fspath(path))
    target = resolve_target(shown)
    existing = check_replaceable(target, shown)
    folder = os.path.dirname(target)
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        tmp, mode = _new_temp(folder)
        yield tmp
        _fsync_file(tmp)
        if existing is None:
            os.chmod(tmp, mode)
        else:
            match_target(tmp, existing)
        os.replace(tmp, target)
        tmp = None
        fsync_folder(folder)
    except OSError as exc:
        if isinstance(exc, WriteError):
            raise
        raise explain_os_error(exc, shown) from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


@contextlib.contextmanager
def atomic_text(path: str):
    """Open a text file for writing (UTF-8, no newline translation) that appears whole or not at all."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            yield f


def write_text_atomic(path: str, text: str) -> None:
    with atomic_text(path) as f:
        f.write(text)


# -- a lock beside a target -----------------------------------------------------------------


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive_lock(lock_path: str, busy_message: str, shown: Optional[str] = None) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created, and removed afterwards) for the block.
    A second holder - another process, or another thread of this one - gets
    :class:`WriteError` ``busy`` with ``busy_message`` at once. The OS drops the lock of a
    process that dies; the file it leaves is reused."""
    shown = shown or lock_path
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            raise explain_os_error(exc, shown, "nothing was written") from exc
        if not _try_lock(fd):
            os.close(fd)
            raise WriteError(busy_message, shown, "busy", errno.EBUSY)
        # The holder before us may have removed the file after we opened it: lock the file
        # that is there now, or two writers would each hold a lock on a different file.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except OSError:
            same = False
        if same:
            break
        _unlock(fd)
        os.close(fd)
    try:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield
    finally:
        if os.name == "posix":  # remove it while holding it (see above); Windows can't
            with contextlib.suppress(OSError):
                os.unlink(lock_path)
        _unlock(fd)
        os.close(fd)
