"""The long-running things the GUI does, as plain functions for a :class:`Worker`.

Each takes ``progress`` and ``cancel`` keyword arguments and only calls
ftcurate.core; none touches Qt, so each runs safely in a worker thread (and could
move down into core unchanged). The dialogs' plain data lives here too:
:class:`ImportOptions` (what the import dialog chose, accepted by :func:`open_dataset`),
:func:`preview_dataset` and :func:`raw_record_text` (its preview and problem view),
:class:`ExportOptions` / :func:`export_dataset` / :func:`export_counts` (the export dialog).
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from ..core.io.export import ExportResult, assign_validation, export_project
from ..core.io.formats import DatasetError, DatasetReader, rawio
from ..core.io.ingest import INCLUDE_CHOICES, file_sha256, import_dataset
from ..core.io.validate import heldout_reading
from ..core.progress import CancelCheck, Cancelled, ProgressCallback
from ..core.project.store import Project, ProjectError, ProjectInUse

PROJECT_SUFFIX = ".ftcurate"
DATASET_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
_SIDE_FILES = ("", "-wal", "-shm", "-journal", ".lock")


HEAVY_MODULES = ("torch", "transformers", "sentence_transformers")


def import_heavy_modules(progress: Optional[ProgressCallback] = None) -> list[str]:
    """Import torch, transformers and sentence-transformers with the garbage collector paused,
    then freeze what they made; returns the modules imported now (none when loaded already,
    and then ``progress`` hears nothing).

    Their import makes ~600,000 long-lived objects. With the collector on, that growth sets off
    full collections over an ever larger heap, each holding the GIL for 0.1-0.4 s in the worker
    thread, and the GUI stalls for as long (benchmarks/bench_gui.py, (d), first scan). Paused,
    no collection runs; frozen afterwards, later full collections skip these objects."""
    missing = [name for name in HEAVY_MODULES if name not in sys.modules]
    if not missing:
        return []
    if progress is not None:
        progress(0, 0, "loading the libraries")
    enabled = gc.isenabled()
    gc.disable()
    imported = []
    try:
        for name in missing:
            try:
                importlib.import_module(name)
                imported.append(name)
            except ImportError:  # an optional part that is not installed: the scan says so itself
                pass
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
    return imported


@dataclass
class OpenResult:
    """What an open task hands back to the GUI thread."""

    project: Project
    dataset: Optional[str] = None  # the dataset file, when a dataset was opened
    created: bool = False  # True when the dataset was imported just now
    reports: list = field(default_factory=list)  # ValidationReports of the imports
    test_files: list = field(default_factory=list)
    reused: bool = False  # True when the project is the one the window already has open


@dataclass
class ImportOptions:
    """How to import a dataset file (the import dialog's answer; the CLI's ``import`` flags).

    ``fmt``/``mapping`` as for :class:`~ftcurate.core.io.formats.DatasetReader` (``mapping``
    None: detected). Held-out data is either ``test_file`` (imported with role "test") or
    ``test_fraction`` of the training records moved to the test split, chosen
    deterministically by ``seed`` (or both, or neither)."""

    path: str
    fmt: str = "auto"
    mapping: Optional[dict] = None
    test_file: Optional[str] = None
    test_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError("the test fraction must be at least 0 and below 1")

    def key(self) -> dict:
        """What makes two imports of the same file different projects (stored in the project)."""
        d = asdict(self)
        d.pop("path")
        if d["test_file"]:
            d["test_file"] = os.path.abspath(d["test_file"])
        return d


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
    """Held-out test files beside a dataset of the bundled sample folder (``*test*.jsonl``), or
    of one of its subfolders (each sample's own test file).

    Only for files inside ``sample_dir``: a user's own folder is never searched.
    """
    path = Path(dataset).resolve()
    folder = Path(sample_dir).resolve()
    if (path.parent != folder and folder not in path.parents) or "test" in path.name.lower():
        return []
    return [str(p) for p in sorted(path.parent.glob("*.jsonl")) if "test" in p.name.lower() and p != path]


def _remove_project_files(path: str) -> None:
    for suffix in _SIDE_FILES:
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


IMPORT_OPTIONS_META = "import_options"


def _matches(project_path: str, dataset: str, digest: str, options_key: Optional[dict] = None) -> bool:
    """True when the project holds ``dataset`` as a training source with that sha256 (and,
    when ``options_key`` is given, was imported with those options)."""
    try:
        with Project.open(project_path, readonly=True) as project:
            if options_key is not None and project.meta_get(IMPORT_OPTIONS_META) != options_key:
                return False
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
                 options: Optional[ImportOptions] = None, open_now: Optional[Project] = None,
                 progress: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelCheck] = None) -> OpenResult:
    """Open the project made from ``dataset``, importing it first when needed.

    The project lives in ``projects_dir``. An existing project whose training source
    has the same path and sha256 is opened as it is; otherwise the dataset (then each
    of ``test_files`` with role "test") is imported into ``<name>.partial``, which is
    renamed into place only when every import succeeded, so a cancelled or failed
    import never leaves a half-made project behind.

    ``open_now``: the project the caller has open; when it is the one to open, it is handed back
    (``reused``) instead of being opened a second time.

    ``options`` (from the import dialog; its ``path`` is not used, ``dataset`` is) set the
    format and column mapping and add held-out data: its ``test_file`` is imported after
    ``test_files`` (with the same format and mapping when it has the dataset's file
    extension, else detected), and ``test_fraction`` of the training records is moved to
    the test split (:func:`split_off_test`). With options, only a project made with the
    same options is reused; they are stored in the project's meta.
    """
    options_key = options.key() if options is not None else None
    fmt, mapping = (options.fmt, options.mapping) if options is not None else ("auto", None)
    test_files = tuple(test_files)
    if options is not None and options.test_file:
        test_files += (os.path.abspath(options.test_file),)
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
        if _matches(candidate, dataset, digest, options_key):
            if open_now is not None and os.path.abspath(open_now.path) == os.path.abspath(candidate):
                # the window has it open already (the file has not changed): show it again
                return OpenResult(project=open_now, dataset=dataset, created=False, test_files=list(test_files),
                                  reused=True)
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
        reports.append(import_dataset(project, dataset, fmt, mapping, progress=progress, cancel=cancel))
        for test in test_files:
            test_fmt, test_mapping = heldout_reading(dataset, test, fmt, mapping)  # as the import dialog checks it
            reports.append(import_dataset(project, test, test_fmt, test_mapping,
                                          role="test", progress=progress, cancel=cancel))
        if options is not None:
            if options.test_fraction > 0:
                split_off_test(project, options.test_fraction, options.seed)
            project.meta_set(IMPORT_OPTIONS_META, options_key)
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


# -- import: held-out split, preview, raw text ----------------------------------------------------


def split_off_test(project: Project, fraction: float, seed: int = 0) -> list[int]:
    """Move ``round(n * fraction)`` of the training records to the test split, chosen by a
    seeded hash of their ids (the same choice for the same seed, as the export's validation
    split). Recorded as one ``set_split`` decision, so it is in the decision log. Returns the
    ids moved, ascending."""
    if fraction <= 0:
        return []
    ids = sorted(assign_validation(project.ids(split="train"), fraction, seed))
    project.set_split(ids, "test")
    return ids


def import_with_options(options: ImportOptions, projects_dir: str | os.PathLike, test_files: tuple = (),
                        progress: Optional[ProgressCallback] = None,
                        cancel: Optional[CancelCheck] = None) -> OpenResult:
    """:func:`open_dataset` of ``options.path`` with those options."""
    return open_dataset(options.path, projects_dir, test_files, options, progress=progress, cancel=cancel)


PREVIEW_ROWS = 50
_PREVIEW_CHARS = 300


@dataclass
class PreviewRow:
    """One record of a preview: its roles, first user turn and answer, or its problem."""

    index: int
    line: Optional[int]
    roles: str = ""
    first_user: str = ""
    answer: str = ""
    problem: str = ""  # "key: message" when the record can't be imported


@dataclass
class DatasetPreview:
    """The first records of a file read with a format and mapping; ``error`` (with
    ``error_key``) when the file can't be read that way at all."""

    path: str
    fmt: str = "auto"
    format: str = ""  # the schema used: detected, or the one asked for
    container: str = ""  # jsonl / json / csv / parquet
    columns: list = field(default_factory=list)  # CSV / Parquet column names
    mapping: Optional[dict] = None  # the mapping used (detected when none was given)
    rows: list = field(default_factory=list)  # PreviewRow
    error: str = ""
    error_key: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def tabular(self) -> bool:
        return self.container in ("csv", "parquet")


def _short(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


def preview_dataset(path: str, fmt: str = "auto", mapping: Optional[dict] = None, limit: int = PREVIEW_ROWS,
                    progress: Optional[ProgressCallback] = None,
                    cancel: Optional[CancelCheck] = None) -> DatasetPreview:
    """Detect ``path``'s format (or use ``fmt``/``mapping``) and summarise its first ``limit``
    records. A file that can't be read is reported in the result, not raised."""
    out = DatasetPreview(os.path.abspath(path), fmt)
    if progress:
        progress(0, 0, f"Reading {os.path.basename(path)}")
    try:
        reader = DatasetReader(out.path, fmt, mapping)
        out.format, out.container, out.columns = reader.format, reader.container, list(reader.columns)
        out.mapping = dict(reader.mapping) if reader.mapping else None
        for parsed in reader:
            if cancel and cancel():
                raise Cancelled("cancelled")
            if parsed.errors:
                row = PreviewRow(parsed.index, parsed.line,
                                 problem="; ".join(f"{e.key}: {e.message}" for e in parsed.errors))
            else:
                rec = parsed.record
                row = PreviewRow(parsed.index, parsed.line, roles=", ".join(m.role for m in rec.messages),
                                 first_user=_short(rec.first_user), answer=_short(rec.answer_text))
            out.rows.append(row)
            if len(out.rows) >= limit:
                break
    except DatasetError as exc:
        out.error, out.error_key = exc.message, exc.key
        if exc.key in ("no_mapping", "bad_mapping"):  # a table whose columns must be chosen
            out.container, out.columns = _table_columns(out.path)
    except (OSError, ValueError) as exc:  # e.g. a broken Parquet file
        out.error, out.error_key = str(exc) or type(exc).__name__, "unreadable"
    return out


def _table_columns(path: str) -> tuple[str, list]:
    """(container, column names) of a CSV or Parquet file."""
    try:
        if rawio.sniff(path).startswith(b"PAR1"):
            return "parquet", list(rawio.parquet_columns(path))
        return "csv", list(rawio.csv_columns(path))
    except (DatasetError, OSError, ValueError):
        return "", []


_RAW_MAX_LINES = 200
_RAW_MAX_CHARS = 200_000


def _physical_lines(path: str, first: int, last: int) -> str:
    """Lines ``first``..``last`` (1-based, inclusive) of a text file, as they are."""
    out: list[str] = []
    size = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if lineno < first:
                continue
            if lineno > last or size > _RAW_MAX_CHARS:
                break
            out.append(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            size += len(raw)
    text = "\n".join(out)
    return text if len(text) <= _RAW_MAX_CHARS else text[:_RAW_MAX_CHARS] + "\n… (cut)"


def raw_record_text(path: str, container: str, line: Optional[int], index: int) -> str:
    """The text of record ``index`` as it is in the file, for showing a problem: the JSON
    Lines line; the lines of a JSON-array element or CSV row (up to where the next record
    starts); a Parquet row as JSON."""
    if line is not None and container == "jsonl":
        return _physical_lines(path, line, line)
    items = {"json": rawio.iter_json_array, "csv": rawio.iter_csv, "parquet": rawio.iter_parquet}.get(container)
    if items is None:
        return ""
    if line is not None:  # JSON array or CSV: from this record's line to the next record's
        end = line + _RAW_MAX_LINES - 1
        for item in items(path):
            if item.index > index and item.line is not None:
                end = min(end, max(line, item.line - 1))
                break
        return _physical_lines(path, line, end)
    for item in items(path):  # Parquet rows have no line
        if item.index == index:
            if item.error is not None:
                return item.error[1]
            return json.dumps(item.obj, ensure_ascii=False, indent=2, default=str)
    return ""


# -- export ----------------------------------------------------------------------------------------


@dataclass
class ExportOptions:
    """What the export dialog chose; the arguments of :func:`~ftcurate.core.io.export.export_project`."""

    out: str
    fmt: str = "openai-chat"
    include: str = "approved"
    val_fraction: float = 0.0
    seed: int = 0


@dataclass
class ExportSummary:
    """An export's result, with the main file and the number of records written."""

    result: ExportResult
    path: str = ""  # the training file
    written: int = 0  # records written, all splits

    @property
    def files(self) -> dict:
        return self.result.files

    @property
    def card(self) -> str:
        return self.result.card

    @property
    def log(self) -> str:
        return self.result.log


def export_dataset(project: Project, options: ExportOptions, progress: Optional[ProgressCallback] = None,
                   cancel: Optional[CancelCheck] = None) -> ExportSummary:
    """Export ``project`` as the CLI's ``export`` command does (data, card, decision log)."""
    result = export_project(project, options.out, options.fmt, options.include, options.val_fraction,
                            options.seed, progress=progress, cancel=cancel)
    return ExportSummary(result, result.files.get("train", ""), sum(result.counts.values()))


def export_counts(project: Project, include: str = "approved", val_fraction: float = 0.0) -> dict:
    """How many records an export would write: ``{"train": n, "validation": n}`` (from the
    store's status counts: no record is read). Records the chosen format can't hold are
    only found while writing (and skipped), so this is an upper bound."""
    if include not in INCLUDE_CHOICES:
        raise ValueError(f"include must be one of {INCLUDE_CHOICES}")

    def selected(split: str) -> int:
        c = project.status_counts(split=split)
        if include == "approved":
            return c.get("approved", 0) + c.get("edited", 0)
        if include == "not-rejected":
            return sum(c.values()) - c.get("rejected", 0)
        return sum(c.values())

    train = selected("train")
    moved = round(train * val_fraction) if 0 < val_fraction < 1 and train else 0
    return {"train": train - moved, "validation": moved + selected("validation")}


def default_export_path(project: Project, fmt: str, folder: Optional[str] = None) -> str:
    """``<folder>/<dataset stem>-curated<ext>``: named after the project's training file (the
    project's own name when it has none), in ``folder`` or beside that file."""
    from ..core.io.export import EXTENSIONS

    train = [s["path"] for s in project.sources() if s.get("role") == "train" and s.get("path")]
    source = train[0] if train else project.path
    stem = Path(source).stem
    if not folder or not os.path.isdir(folder):
        folder = os.path.dirname(os.path.abspath(source))
    return os.path.join(folder, f"{stem}-curated{EXTENSIONS.get(fmt, '.jsonl')}")
