"""Write several files as one set: a reader finds the old set or the new one, never a mix.

An export is a set of files (data, validation data, decision log, dataset card) that must
agree with each other. :class:`FileSet` writes it so:

1. A lock file beside the set's main file: a second writer of the same set fails at once with
   a clear message (:class:`~ftcurate.core.io.fileio.WriteError` ``busy``).
2. Every new file is written into a hidden staging folder beside its target (same file system,
   so the renames below are atomic) and fsynced. Nothing the user has is touched yet: a full
   disk, an error or a cancel here leaves the previous set exactly as it was.
3. Commit: a journal of the renames is written; the previous *manifest* (the last file staged,
   the dataset card) is moved aside first, then each file is replaced (the old one moved into
   the staging folder), stale files are moved aside, and the new manifest goes in last. While
   this runs there is no manifest, so nobody mistakes a half-replaced set for a whole one. Any
   error here rolls everything back.
4. A process killed at any point leaves the staging folder; the next writer of the set rolls an
   unfinished commit back from the journal (or keeps it, if the new manifest was already in
   place) and removes the leftovers.

Symlinked targets are written through (the file they point to changes; staging happens in
that file's folder). Modes of replaced files are kept; a read-only target is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from typing import Iterator, Optional

from .fileio import (TEMP_PREFIX, WriteError, check_replaceable, exclusive_lock, explain_os_error,
                     fsync_folder, match_target, resolve_target, write_text_atomic)

__all__ = ["FileSet"]

_JOURNAL = "journal.json"
_DIRS = "folders.json"


@dataclass
class _Entry:
    shown: str  # the path the user knows
    target: str  # the file that changes (a symlink followed)
    staged: Optional[str]  # the new content (None: the target is removed)
    backup: str  # where the previous file is moved during the commit


class FileSet:
    """``with FileSet(main_path) as fs:`` ``fs.stage(path)`` gives the path to write each
    file to, ``fs.remove(path)`` drops a stale one, ``fs.commit()`` puts the set in place
    (the last file staged goes in last). Leaving the block without a commit changes nothing."""

    def __init__(self, main: str, busy_message: Optional[str] = None,
                 kept: str = "the previous files were left as they were") -> None:
        self.main = os.path.abspath(os.fspath(main))
        name = os.path.basename(self.main)
        tag = hashlib.sha1(self.main.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        self.stage_name = f"{TEMP_PREFIX}set-{name}-{tag}.tmp"
        self.lock_path = os.path.join(os.path.dirname(self.main), f"{TEMP_PREFIX}set-{name}.lock")
        self.busy_message = busy_message or (f"{self.main} is being written by another ftcurate run; "
                                             "try again when it has finished")
        self.kept = kept
        self.entries: list[_Entry] = []
        self.removals: list[_Entry] = []
        self._dirs: dict[str, str] = {}  # folder -> its staging folder
        self._lock = None
        self._keep_staging = False
        self.committed = False

    # -- the block ----------------------------------------------------------------------

    def __enter__(self) -> "FileSet":
        try:
            os.makedirs(os.path.dirname(self.main), exist_ok=True)
        except OSError as exc:
            raise explain_os_error(exc, self.main, "nothing was written") from exc
        self._lock = exclusive_lock(self.lock_path, self.busy_message, shown=self.main)
        self._lock.__enter__()
        try:
            self.recover()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if not self._keep_staging:
                self._remove_staging(list(self._dirs.values()))
        finally:
            self._lock.__exit__(None, None, None)

    @contextlib.contextmanager
    def writing(self, shown: str) -> Iterator[None]:
        """Errors raised in the block name ``shown`` (not a staging file) and say the previous
        set is intact."""
        try:
            yield
        except OSError as exc:
            if isinstance(exc, WriteError) and exc.key in ("read_only", "is_directory", "busy"):
                raise
            raise explain_os_error(exc, shown, self.kept) from exc

    # -- building the set -----------------------------------------------------------------

    def stage(self, path: str) -> str:
        """Where to write the new content of ``path`` (refused now if ``path`` is read-only)."""
        shown = os.path.abspath(os.fspath(path))
        target = resolve_target(shown)
        check_replaceable(target, shown)
        if any(e.target == target for e in self.entries):
            raise WriteError(f"{shown} is named twice in one export (through a link?)", shown, "write_failed")
        with self.writing(shown):
            folder = self._staging_for(os.path.dirname(target))
        n = len(self.entries)
        entry = _Entry(shown, target, os.path.join(folder, f"new-{n}-{os.path.basename(target)}"),
                       os.path.join(folder, f"old-{n}-{os.path.basename(target)}"))
        self.entries.append(entry)
        return entry.staged

    def remove(self, path: str) -> None:
        """Drop ``path`` (a file of the previous set the new one does not have) in the commit. A
        symlink itself is removed, not the file it points to."""
        shown = os.path.abspath(os.fspath(path))
        if not os.path.lexists(shown):
            return
        check_replaceable(resolve_target(shown), shown)
        with self.writing(shown):
            folder = self._staging_for(os.path.dirname(shown))
        n = len(self.removals)
        self.removals.append(_Entry(shown, shown, None, os.path.join(folder, f"gone-{n}-{os.path.basename(shown)}")))

    def _staging_for(self, folder: str) -> str:
        if folder in self._dirs:
            return self._dirs[folder]
        main_folder = os.path.dirname(self.main)
        if main_folder not in self._dirs:  # the main staging folder first: it lists the others
            self._make_staging(main_folder)
        if folder not in self._dirs:
            self._make_staging(folder)
            write_text_atomic(os.path.join(self._dirs[main_folder], _DIRS), json.dumps(sorted(self._dirs.values())))
        return self._dirs[folder]

    def _make_staging(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, self.stage_name)
        os.mkdir(path, 0o700)
        self._dirs[folder] = path

    # -- commit and roll back -------------------------------------------------------------------

    def commit(self) -> None:
        """Put the staged files in place, the last one staged (the manifest) last."""
        if not self.entries:
            raise ValueError("nothing staged")
        journal = os.path.join(self._dirs[os.path.dirname(self.main)], _JOURNAL)
        manifest, others = self.entries[-1], self.entries[:-1]
        done: list[_Entry] = []  # entries the commit has touched (to roll back)
        current = manifest.shown  # the file being replaced, for the error message
        try:
            for folder in self._dirs.values():
                fsync_folder(folder)
            for e in self.entries:
                current = e.shown
                match_target(e.staged, check_replaceable(e.target, e.shown))
            for e in self.removals:
                check_replaceable(resolve_target(e.shown), e.shown)
            current = self.main
            write_text_atomic(journal, json.dumps(
                {"entries": [e.__dict__ for e in self.entries], "removals": [e.__dict__ for e in self.removals]}))
            # No manifest while files are replaced: nobody takes a half-replaced set for a whole one.
            done.append(manifest)
            current = manifest.shown
            _move_aside(manifest)
            for e in others:
                done.append(e)
                current = e.shown
                _move_aside(e)
                os.replace(e.staged, e.target)
            for e in self.removals:
                done.append(e)
                current = e.shown
                _move_aside(e)
            current = manifest.shown
            os.replace(manifest.staged, manifest.target)
        except BaseException as exc:
            failed = _roll_back(done)
            if failed:  # keep the journal and the moved files: the next writer retries
                self._keep_staging = True
                where = self._dirs[os.path.dirname(self.main)]
                raise WriteError(f"could not replace or put back {failed[0]} ({exc}); the previous files are kept "
                                 f"in {where} and the next export to {self.main} puts them back",
                                 failed[0], "write_failed", getattr(exc, "errno", None)) from exc
            with contextlib.suppress(OSError):
                os.unlink(journal)
            if isinstance(exc, OSError) and not isinstance(exc, WriteError):
                raise explain_os_error(exc, current, self.kept) from exc
            raise
        self.committed = True
        with contextlib.suppress(OSError):
            os.unlink(journal)
        folders = {os.path.dirname(e.target) for e in self.entries} | {os.path.dirname(e.shown) for e in self.removals}
        for folder in folders:
            fsync_folder(folder)

    def recover(self) -> None:
        """Finish what a killed writer of this set left: roll an unfinished commit back (the
        previous set returns) and remove its staging folders."""
        main_stage = os.path.join(os.path.dirname(self.main), self.stage_name)
        if not os.path.isdir(main_stage):
            return
        dirs = [main_stage]
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(main_stage, _DIRS), encoding="utf-8") as f:
                dirs += [d for d in json.load(f) if os.path.basename(d) == self.stage_name]
        try:
            with open(os.path.join(main_stage, _JOURNAL), encoding="utf-8") as f:
                journal = json.load(f)
        except (OSError, ValueError):
            journal = None
        if journal:
            entries = [_Entry(**e) for e in journal.get("entries", [])]
            removals = [_Entry(**e) for e in journal.get("removals", [])]
            manifest_placed = bool(entries) and not os.path.exists(entries[-1].staged)
            if not manifest_placed:
                failed = _roll_back(entries + removals)
                if failed:
                    raise WriteError(f"cannot put back {failed[0]}, left by an interrupted export to {self.main}; "
                                     f"its previous files are in {main_stage}", failed[0], "write_failed")
        self._remove_staging(dirs)

    def _remove_staging(self, dirs: list[str]) -> None:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def _move_aside(e: _Entry) -> None:
    if os.path.lexists(e.target):
        os.replace(e.target, e.backup)


def _roll_back(entries: list[_Entry]) -> list[str]:
    """Undo a partial commit: the previous files back, new files with no predecessor gone.
    Goes on past a failure; returns the files it could not restore."""
    failed = []
    for e in reversed(entries):
        try:
            if os.path.lexists(e.backup):
                os.replace(e.backup, e.target)
            elif e.staged is not None and not os.path.exists(e.staged) and os.path.lexists(e.target):
                os.unlink(e.target)
        except OSError:
            failed.append(e.shown)
    return failed
