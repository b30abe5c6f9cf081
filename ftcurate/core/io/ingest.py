"""Import a dataset file into a project, and summarise a project: one code path for the
CLI and the GUI.

An import is "the same import" as an earlier one when the file has the same content
(sha256), role, format and column mapping. Importing a file that is already fully in the
project adds nothing and says so; one whose earlier import was killed is finished (the
records already stored are kept, with any decisions on them); an incomplete import of an
older version of the file (same path) is replaced. Bad records are counted by error key;
the details of the first ``max_error_details`` are kept in the project, and how many were
left out.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Iterator, Optional

from . import bulk
from .formats import DatasetReader, RecordError
from ..progress import CancelCheck, ProgressCallback, Reporter
from ..project.store import Project, StoredRecord
from .validate import (DEFAULT_MAX_ERRORS, DEFAULT_MAX_TOKENS, StatsAccumulator, TokenCounter, ValidationReport,
                       checked_records, finish, size_advice)

INCLUDE_CHOICES = ("approved", "not-rejected", "all")
#: error details kept per imported file (all errors are counted by key regardless)
MAX_ERROR_DETAILS = DEFAULT_MAX_ERRORS
OUTCOMES = ("imported", "resumed", "replaced", "already_imported")
#: rows a transaction when a large file is read on every core (small files: 5,000, see Project.import_source)
BULK_BATCH = 50_000


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ImportReport(ValidationReport):
    """A validation report of the imported file (the details of its first ``max_errors``
    errors, all of them counted), plus what the import did: ``outcome`` (imported / resumed /
    replaced / already_imported), the ``source_id`` and the records ``added``."""

    source_id: Optional[int] = None
    outcome: str = "imported"
    added: int = 0

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.update(source_id=self.source_id, outcome=self.outcome, added=self.added)
        return d

    def summary(self, max_errors: int = 20) -> str:
        text = super().summary(max_errors)
        what = {
            "imported": f"imported as source {self.source_id}: {self.added} records added",
            "resumed": f"finished the incomplete import of source {self.source_id}: {self.added} records added",
            "replaced": f"imported as source {self.source_id} (replacing an incomplete import of an older "
                        f"version): {self.added} records added",
            "already_imported": f"already in the project (source {self.source_id}): nothing added",
        }[self.outcome]
        return text + "\n  " + what


def _already_imported(project: Project, src: dict, report: ImportReport) -> ImportReport:
    report.source_id = src["id"]
    report.outcome = "already_imported"
    report.records = int(src["total"] or 0)
    report.loaded = int(src["records"])
    report.rejected = max(0, report.records - report.loaded)
    report.error_counts = dict(src["error_counts"])
    report.errors = [RecordError(e["index"], e["line"], e["key"], e["message"])
                     for e in project.import_errors(src["id"])]
    report.errors_left_out = int(src["errors_left_out"])
    report.advice = [f"{os.path.basename(src['path'])} is already in the project (source {src['id']}); "
                     "nothing was added."]
    return report


def import_dataset(project: Project, path: str, fmt: str = "auto", mapping: Optional[dict] = None,
                   role: str = "train", max_tokens: int = DEFAULT_MAX_TOKENS,
                   tokenizer: Optional[str] = None, progress: Optional[ProgressCallback] = None,
                   cancel: Optional[CancelCheck] = None,
                   max_error_details: int = MAX_ERROR_DETAILS) -> ImportReport:
    """Validate ``path`` and store its good records in ``project`` (streaming), with the
    bad ones counted as import errors (details for the first ``max_error_details``).
    ``role="test"`` imports a held-out set (split test). Raises DatasetError when the file
    can't be read at all, and ProjectError (disk full, read-only...) when the project can't
    be written - then nothing of this import is left in the project (see
    :meth:`Project.import_source`)."""
    if role not in ("train", "test"):
        raise ValueError("role must be 'train' or 'test'")
    reader = DatasetReader(path, fmt, mapping, split="test" if role == "test" else "train")
    report = ImportReport(reader.path, reader.format, reader.container, reader.mapping,
                          max_errors=max(0, int(max_error_details)), format_votes=dict(reader.format_votes))
    abspath = os.path.abspath(path)
    digest = file_sha256(path)
    options = {"mapping": reader.mapping}
    sources = project.sources()
    # sources from before options were stored (schema 1) have none: content, role and format decide
    same = [s for s in sources if s["sha256"] == digest and s["role"] == role and s["format"] == reader.format
            and (s["options"] == options or not s["options"])]
    done = next((s for s in same if s["complete"]), None)
    if done is not None:
        return _already_imported(project, done, report)
    resume = next((s["id"] for s in same if not s["complete"]), None)
    replaced = [s["id"] for s in sources if not s["complete"] and s["path"] == abspath and s["role"] == role
                and s["id"] != resume and project.remove_source(s["id"])]

    acc = StatsAccumulator(TokenCounter(tokenizer), max_tokens)
    rep = Reporter(progress, cancel, every=5000)
    message = f"importing {os.path.basename(path)}"

    def summary() -> dict:
        return {"errors": [e.to_dict() for e in report.errors], "error_counts": dict(report.error_counts),
                "errors_left_out": report.errors_left_out, "total": report.records}

    nproc = bulk.workers_for(reader, tokenizer)
    if nproc > 1:  # a large JSON Lines file: read on every core while this process stores the rows
        split = "test" if role == "test" else "train"
        parts = _rows_of_chunks(bulk.read_parallel(reader, split, max_tokens, nproc, rep), split, report, acc,
                                rep, message)
        report.source_id, report.added = project.import_rows(
            abspath, reader.format, parts, role=role, sha256=digest, options=options, resume=resume,
            finish=summary, cancel=cancel, batch=BULK_BATCH)
    else:
        good = checked_records(reader, report, acc, rep, message)
        report.source_id, report.added = project.import_source(
            abspath, reader.format, good, role=role, sha256=digest, options=options, resume=resume,
            finish=summary, cancel=cancel)
    report.outcome = "resumed" if resume is not None else ("replaced" if replaced else "imported")
    finish(report, acc, project.count(split="test") or None)
    if role == "test":
        report.advice = [f"Held-out set: {report.loaded} examples (kept out of training and export)."]
    return report


def _rows_of_chunks(chunks: Iterator[tuple[int, int, "bulk.Chunk"]], split: str, report: ValidationReport,
                    acc: StatsAccumulator, rep: Reporter, message: str) -> Iterator[list[tuple]]:
    """The rows of each chunk numbered in the file, its bad records and statistics counted
    into ``report`` and ``acc`` as :func:`checked_records` counts them."""
    for first, line0, chunk in chunks:
        report.records += chunk.records
        for idx, line, problems in chunk.rejected:
            report.add_rejected([RecordError(first + idx, line0 + line, k, m) for k, m in problems])
        report.loaded += len(chunk.rows)
        acc.merge(chunk.acc, first)
        rows = [(first + i, line0 + ln, split, c, h, m) for i, ln, c, h, m in chunk.rows]
        chunk.rows = []
        rep.tick(report.records, message)
        yield rows


def _selected(sr: StoredRecord, include: str) -> bool:
    if include == "approved":
        return sr.status in ("approved", "edited")
    if include == "not-rejected":
        return sr.status != "rejected"
    return True


def project_stats(project: Project, include: str = "not-rejected", max_tokens: int = DEFAULT_MAX_TOKENS,
                  tokenizer: Optional[str] = None, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelCheck] = None) -> dict:
    """Counts by status and split, and token statistics of what an export would contain;
    the sources with their import state and errors; the records that cannot be read
    (``damaged``; every record is read once)."""
    if include not in INCLUDE_CHOICES:
        raise ValueError(f"include must be one of {INCLUDE_CHOICES}")
    acc = StatsAccumulator(TokenCounter(tokenizer), max_tokens)
    rep = Reporter(progress, cancel, every=5000)
    n = 0
    damaged: list[dict] = []
    for done, sr in enumerate(project.iter_records(damaged=damaged), 1):
        if sr.split == "train" and _selected(sr, include):
            acc.add(sr.record, sr.index)
            n += 1
        rep.tick(done, "counting tokens")
    heldout = project.count(split="test")
    sources = project.sources()
    errors = {"records": 0, "errors": 0, "kept": 0, "left_out": 0, "by_key": {}}
    for s in sources:
        if s["complete"]:
            errors["records"] += max(0, int(s["total"] or 0) - int(s["records"]))
        errors["errors"] += s["errors"]
        errors["kept"] += s["errors_kept"]
        errors["left_out"] += s["errors_left_out"]
        for k, v in s["error_counts"].items():
            errors["by_key"][k] = errors["by_key"].get(k, 0) + v
    return {
        "project": project.path,
        "reviewer": project.reviewer,
        "records": project.count(),
        "status": project.status_counts(),
        "splits": {s: project.count(split=s) for s in ("train", "validation", "test")},
        "sources": sources,
        "incomplete": [s["id"] for s in sources if not s["complete"]],
        "import_errors": errors,
        "damaged": damaged,
        "include": include,
        "selected": n,
        "warnings": dict(acc.warnings),
        "stats": acc.stats(),
        "advice": size_advice(n, heldout or None),
    }


def iter_selected(project: Project, include: str = "approved", split: Optional[str] = "train"):
    """Stored records an export would take: approved (edited counts as approved), not
    rejected, or all; in ``split`` (None for every split). Damaged records are skipped
    (``project.damaged_seen`` lists them)."""
    if include not in INCLUDE_CHOICES:
        raise ValueError(f"include must be one of {INCLUDE_CHOICES}")
    for sr in project.iter_records(split=split):
        if _selected(sr, include):
            yield sr
