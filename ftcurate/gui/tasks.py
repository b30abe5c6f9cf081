"""The long-running things the GUI does, as plain functions for a :class:`Worker`.

Each takes ``progress`` and ``cancel`` keyword arguments and only calls
ftcurate.core; none touches Qt, so each runs safely in a worker thread (and could
move down into core unchanged).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..core.formats import DatasetError
from ..core.ingest import file_sha256, import_dataset
from ..core.progress import CancelCheck, Cancelled, ProgressCallback
from ..core.store import Project, ProjectError, ProjectInUse

PROJECT_SUFFIX = ".ftcurate"
DATASET_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
_SIDE_FILES = ("", "-wal", "-shm", "-journal", ".lock")


@dataclass
class OpenResult:
    """What an open task hands back to the GUI thread."""

    project: Project
    dataset: Optional[str] = None  # the dataset file, when a dataset was opened
    created: bool = False  # True when the dataset was imported just now
    reports: list = field(default_factory=list)  # ValidationReports of the imports
    test_files: list = field(default_factory=list)


def is_project_file(path: str) -> bool:
    return path.lower().endswith(PROJECT_SUFFIX)


def project_base_name(dataset: str) -> str:
    """``<stem>-<8 hex of sha256 of the absolute path>`` for a dataset file."""
    abspath = os.path.abspath(dataset)
    digest = hashlib.sha256(abspath.encode("utf-8")).hexdigest()[:8]
    return f"{Path(abspath).stem}-{digest}"


def project_candidates(dataset: str, projects_dir: str | os.PathLike):
    """Project paths for a dataset, in order: ``<base>.ftcurate``, ``<base>-2.ftcurate``...

    A later name is used when the dataset file changed since an earlier project was
    made from it: earlier projects (and their review decisions) are never overwritten.
    """
    base = os.path.join(os.fspath(projects_dir), project_base_name(dataset))
    yield base + PROJECT_SUFFIX
    n = 2
    while True:
        yield f"{base}-{n}{PROJECT_SUFFIX}"
        n += 1


def sample_test_files(dataset: str, sample_dir: str | os.PathLike) -> list[str]:
    """Held-out test files beside a dataset of the bundled sample folder (``*test*.jsonl``).

    Only for files inside ``sample_dir``: a user's own folder is never searched.
    """
    path = Path(dataset).resolve()
    folder = Path(sample_dir).resolve()
    if path.parent != folder or "test" in path.name.lower():
        return []
    return [str(p) for p in sorted(folder.glob("*.jsonl")) if "test" in p.name.lower() and p != path]


def _remove_project_files(path: str) -> None:
    for suffix in _SIDE_FILES:
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def _matches(project_path: str, dataset: str, digest: str) -> bool:
    """True when the project holds ``dataset`` as a training source with that sha256."""
    try:
        with Project.open(project_path, readonly=True) as project:
            return any(
                s["role"] == "train" and s["path"] == dataset and s["sha256"] == digest for s in project.sources()
            )
    except ProjectError:
        return False


def open_project(path: str, progress: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelCheck] = None) -> OpenResult:
    """Open an existing project file for review."""
    if progress:
        progress(0, 0, f"Opening {os.path.basename(path)}")
    return OpenResult(project=Project.open(path))


def open_dataset(dataset: str, projects_dir: str | os.PathLike, test_files: tuple = (),
                 progress: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelCheck] = None) -> OpenResult:
    """Open the project made from ``dataset``, importing it first when needed.

    The project lives in ``projects_dir``. An existing project whose training source
    has the same path and sha256 is opened as it is; otherwise the dataset (then each
    of ``test_files`` with role "test") is imported into ``<name>.partial``, which is
    renamed into place only when every import succeeded, so a cancelled or failed
    import never leaves a half-made project behind.
    """
    dataset = os.path.abspath(dataset)
    name = os.path.basename(dataset)
    if not os.path.isfile(dataset):
        raise DatasetError("not_found", f"{dataset}: no such file")
    if progress:
        progress(0, 0, f"Reading {name}")
    digest = file_sha256(dataset)
    if cancel and cancel():
        raise Cancelled("cancelled")
    os.makedirs(projects_dir, exist_ok=True)

    target = None
    for candidate in project_candidates(dataset, projects_dir):
        if not os.path.exists(candidate):
            target = candidate
            break
        if _matches(candidate, dataset, digest):
            if progress:
                progress(0, 0, f"Opening {os.path.basename(candidate)}")
            return OpenResult(project=Project.open(candidate), dataset=dataset, created=False,
                              test_files=list(test_files))
    assert target is not None

    partial = target + ".partial"
    if os.path.exists(partial):  # left by an earlier run killed mid-import - or another one importing now
        try:
            Project.open(partial).close()
        except ProjectInUse:
            raise ProjectInUse(f"{name} is being imported by another ftcurate window; try again when it is done",
                               partial) from None
        except ProjectError:
            pass
        _remove_project_files(partial)
    project = Project.open(partial, create=True)
    reports = []
    try:
        reports.append(import_dataset(project, dataset, progress=progress, cancel=cancel))
        for test in test_files:
            reports.append(import_dataset(project, test, role="test", progress=progress, cancel=cancel))
    except BaseException:
        project.close()
        _remove_project_files(partial)
        raise
    project.close()
    os.replace(partial, target)
    _remove_project_files(partial)
    return OpenResult(project=Project.open(target), dataset=dataset, created=True, reports=reports,
                      test_files=list(test_files))


def search_ids(project: Project, text: str, status: Optional[str] = None, split: Optional[str] = None,
               progress: Optional[ProgressCallback] = None,
               cancel: Optional[CancelCheck] = None) -> list[int]:
    """Ids (ascending) of records whose message text contains ``text`` (case-insensitive),
    among those with that status and split: the store finds candidates, which are then
    checked on their real text (the store's match also sees JSON keys)."""
    needle = text.casefold()
    candidates = project.search_ids(text, status=status, split=split)
    out: list[int] = []
    for start in range(0, len(candidates), 500):
        if cancel and cancel():
            raise Cancelled("cancelled")
        if progress:
            progress(start, len(candidates), "Searching")
        out += [sr.id for sr in project.get_many(candidates[start:start + 500])
                if needle in sr.record.text.casefold()]
    return out
