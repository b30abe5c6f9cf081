"""Import a dataset file into a project, and summarise a project: one code path for the
CLI and the GUI."""

from __future__ import annotations

import hashlib
import os
from typing import Optional

from .formats import DatasetReader
from ..progress import CancelCheck, ProgressCallback, Reporter
from ..project.store import Project
from .validate import (DEFAULT_MAX_TOKENS, StatsAccumulator, TokenCounter, ValidationReport, checked_records,
                       finish, size_advice)

INCLUDE_CHOICES = ("approved", "not-rejected", "all")


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_dataset(project: Project, path: str, fmt: str = "auto", mapping: Optional[dict] = None,
                   role: str = "train", max_tokens: int = DEFAULT_MAX_TOKENS,
                   tokenizer: Optional[str] = None, progress: Optional[ProgressCallback] = None,
                   cancel: Optional[CancelCheck] = None) -> ValidationReport:
    """Validate ``path`` and store its good records in ``project`` (streaming), with the
    bad ones listed as import errors. ``role="test"`` imports a held-out set (split test).
    Raises DatasetError when the file can't be read at all."""
    if role not in ("train", "test"):
        raise ValueError("role must be 'train' or 'test'")
    reader = DatasetReader(path, fmt, mapping, split="test" if role == "test" else "train")
    report = ValidationReport(reader.path, reader.format, reader.container, reader.mapping)
    acc = StatsAccumulator(TokenCounter(tokenizer), max_tokens)
    rep = Reporter(progress, cancel, every=5000)
    source_id = project.add_source(os.path.abspath(path), reader.format, role=role,
                                   sha256=file_sha256(path))

    good = checked_records(reader, report, acc, rep, f"importing {os.path.basename(path)}")
    project.add_records(source_id, good, cancel=cancel)
    project.set_source_errors(source_id, [e.to_dict() for e in report.errors], total=report.records)
    finish(report, acc, project.count(split="test") or None)
    if role == "test":
        report.advice = [f"Held-out set: {report.loaded} examples (kept out of training and export)."]
    return report


def project_stats(project: Project, include: str = "not-rejected", max_tokens: int = DEFAULT_MAX_TOKENS,
                  tokenizer: Optional[str] = None, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelCheck] = None) -> dict:
    """Counts by status and split, and token statistics of what an export would contain."""
    acc = StatsAccumulator(TokenCounter(tokenizer), max_tokens)
    rep = Reporter(progress, cancel, every=5000)
    n = 0
    for sr in iter_selected(project, include, split="train"):
        acc.add(sr.record, sr.index)
        n += 1
        rep.tick(n, "counting tokens")
    heldout = project.count(split="test")
    return {
        "project": project.path,
        "reviewer": project.reviewer,
        "records": project.count(),
        "status": project.status_counts(),
        "splits": {s: project.count(split=s) for s in ("train", "validation", "test")},
        "sources": project.sources(),
        "include": include,
        "selected": n,
        "warnings": dict(acc.warnings),
        "stats": acc.stats(),
        "advice": size_advice(n, heldout or None),
    }


def iter_selected(project: Project, include: str = "approved", split: Optional[str] = "train"):
    """Stored records an export would take: approved (edited counts as approved), not
    rejected, or all; in ``split`` (None for every split)."""
    if include not in INCLUDE_CHOICES:
        raise ValueError(f"include must be one of {INCLUDE_CHOICES}")
    for sr in project.iter_records(split=split):
        if include == "approved" and sr.status not in ("approved", "edited"):
            continue
        if include == "not-rejected" and sr.status == "rejected":
            continue
        yield sr
