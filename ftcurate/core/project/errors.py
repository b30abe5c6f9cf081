"""Errors of the project store, and what an SQLite or OS error on a project file means.

Every error a command shows for a project is one of these, with one sentence that says what
happened to *the project* (disk full, read-only, in use, damaged...) and names the project
file or its folder - never the journal, lock or temp file SQLite happened to touch.
Standard library only.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from typing import Optional

#: below this many free bytes an I/O error on a project is taken for a full disk
_NEARLY_FULL = 1 << 20


class ProjectError(Exception):
    """A project file cannot be used (missing, not a project, newer schema, read-only...)."""

    key = "project_error"


class ProjectInUse(ProjectError):
    """Another ftcurate process (or Project object) already has the project open."""

    key = "in_use"

    def __init__(self, message: str, path: str = "", pid: Optional[int] = None) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid


class ProjectWriteError(ProjectError):
    """The project cannot be written: disk I/O error (see the subclasses for the usual causes)."""

    key = "write_failed"


class ProjectDiskFull(ProjectWriteError):
    key = "disk_full"


class ProjectReadOnly(ProjectWriteError):
    """The project file, its folder or its file system is read-only (or permission denied)."""

    key = "read_only"


class ProjectSchemaError(ProjectError):
    """The file's schema is not the one ftcurate made (foreign triggers, views, tables...)."""

    key = "bad_schema"


class ProjectDamaged(ProjectError):
    """Part of the project cannot be read (a malformed page, a broken history entry...)."""

    key = "damaged"


class DamagedRecord(ProjectDamaged, KeyError):
    """A stored record whose values cannot be read; the rest of the project can.

    It is a KeyError too, so callers that skip records that vanished skip damaged ones."""

    key = "damaged_record"

    def __init__(self, message: str, rows: Optional[list[dict]] = None) -> None:
        super().__init__(message)
        self.rows = rows or []

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# -- what an error means ------------------------------------------------------------------

_MESSAGE_CODES = (  # for Pythons whose sqlite3 errors carry no error name (before 3.11)
    ("database or disk is full", "SQLITE_FULL"),
    ("readonly database", "SQLITE_READONLY"),
    ("disk i/o error", "SQLITE_IOERR"),
    ("unable to open database file", "SQLITE_CANTOPEN"),
    ("file is not a database", "SQLITE_NOTADB"),
    ("malformed", "SQLITE_CORRUPT"),
    ("database is locked", "SQLITE_BUSY"),
)


def sqlite_code(exc: BaseException) -> str:
    """``SQLITE_FULL``, ``SQLITE_IOERR_WRITE``... for an sqlite3 error ('' if unknown)."""
    name = getattr(exc, "sqlite_errorname", None)
    if name:
        return str(name)
    text = str(exc).lower()
    for needle, code in _MESSAGE_CODES:
        if needle in text:
            return code
    return ""


def _folder(path: str) -> str:
    return os.path.dirname(os.path.abspath(path)) or "."


def _free_bytes(folder: str) -> Optional[int]:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _read_only_fs(folder: str) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return False


def disk_full(path: str) -> ProjectDiskFull:
    folder = _folder(path)
    free = _free_bytes(folder)
    room = f"{free // 1024} KB free in {folder}" if free is not None else f"no space left in {folder}"
    return ProjectDiskFull(f"The disk is full: cannot write to project {path} ({room}). "
                           "Free some space and try again.")


def write_problem(path: str, exists: Optional[bool] = None) -> Optional[ProjectReadOnly]:
    """Why ``path`` (a project file, or one to be created) cannot be written, or None.

    Asks the OS up front (read-only file system, file mode, folder mode), so that a command
    refuses before it changes anything. Root passes the mode checks: for root only the file
    system's read-only flag stops writes, and SQLite's own errors say the rest."""
    folder = _folder(path)
    if exists is None:
        exists = os.path.exists(path)
    if _read_only_fs(folder):
        return ProjectReadOnly(f"Project {path} is read-only: its folder {folder} is on a read-only file system. "
                               "Copy the project to a writable folder to change it.")
    if exists and not os.access(path, os.W_OK):
        return ProjectReadOnly(f"Project {path} is read-only (permission denied: the file is not writable). "
                               "Make it writable or copy it to change it.")
    if not os.access(folder, os.W_OK):
        what = "cannot create project" if not exists else "cannot write to project"
        return ProjectReadOnly(f"Permission denied: {what} {path}: its folder {folder} is read-only (ftcurate "
                               "keeps a lock and a journal beside the project file).")
    return None


def from_os_error(exc: OSError, path: str) -> ProjectError:
    """An OSError met while opening ``path`` (or a file beside it) as a project error about
    ``path`` itself."""
    if exc.errno == errno.ENOSPC:
        return disk_full(path)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return write_problem(path) or ProjectReadOnly(
            f"Permission denied: cannot write to project {path} or its folder {_folder(path)}.")
    return ProjectError(f"Cannot use project {path}: {exc.strerror or exc}")


def explain(exc: BaseException, path: str, doing: str = "use") -> ProjectError:
    """A clear :class:`ProjectError` for an sqlite3 (or OS) error met while ``doing`` the
    project at ``path``."""
    if isinstance(exc, ProjectError):
        return exc
    if isinstance(exc, OSError):
        return from_os_error(exc, path)
    code = sqlite_code(exc)
    if code == "SQLITE_FULL":
        return disk_full(path)
    if code.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        problem = write_problem(path)
        if problem is not None:
            return problem
        if code.startswith("SQLITE_READONLY"):
            return ProjectReadOnly(f"Project {path} is read-only here ({exc}).")
        return ProjectError(f"Cannot {doing} project {path}: {exc}")
    if code.startswith("SQLITE_IOERR"):
        free = _free_bytes(_folder(path))
        if free is not None and free < _NEARLY_FULL:
            return disk_full(path)
        problem = write_problem(path)
        if problem is not None:
            return problem
        return ProjectWriteError(f"Disk I/O error on project {path} ({exc}); check the disk and try again.")
    if code == "SQLITE_NOTADB":
        return ProjectError(f"{path} is not an ftcurate project (not an SQLite database)")
    if code.startswith("SQLITE_CORRUPT"):
        return ProjectDamaged(f"Project {path} is damaged ({exc}); the records that can be read can be exported "
                              "with `ftcurate export`, or restore a backup.")
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return ProjectInUse(f"Project {path} is busy: another program is writing to it ({exc})", path)
    return ProjectError(f"Cannot {doing} project {path}: {exc}")


def is_sqlite_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.Error)
