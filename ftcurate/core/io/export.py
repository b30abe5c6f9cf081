"""Export a project's curated records, with a dataset card and a decision log beside them."""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from typing import Optional

from .fileio import write_text_atomic
from .formats import FORMATS, write_records
from .ingest import iter_selected
from ..progress import CancelCheck, ProgressCallback
from ..project.store import Project
from .validate import size_advice

EXTENSIONS = {"openai-chat": ".jsonl", "prompt-completion": ".jsonl", "alpaca": ".json",
              "sharegpt": ".json", "csv": ".csv", "parquet": ".parquet"}


@dataclass
class ExportResult:
    files: dict = field(default_factory=dict)  # split name -> path
    counts: dict = field(default_factory=dict)  # split name -> records written
    skipped: list = field(default_factory=list)  # (split, position, reason)
    card: str = ""
    log: str = ""

    def to_dict(self) -> dict:
        return {"files": self.files, "counts": self.counts, "card": self.card, "decision_log": self.log,
                "skipped": [{"split": s, "position": p, "reason": r} for s, p, r in self.skipped]}


def sibling(path: str, suffix: str) -> str:
    """``out/data.jsonl`` + ``.card.md`` -> ``out/data.card.md``."""
    root, _ = os.path.splitext(path)
    return root + suffix


def assign_validation(ids: list[int], fraction: float, seed: int) -> set[int]:
    """Deterministic choice of ``round(len(ids) * fraction)`` ids, stable for a seed."""
    if fraction <= 0 or not ids:
        return set()
    if fraction >= 1:
        raise ValueError("validation fraction must be below 1")
    k = round(len(ids) * fraction)
    keyed = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest())
    return set(keyed[:k])


def export_project(project: Project, out: str, fmt: str = "openai-chat", include: str = "approved",
                   val_fraction: float = 0.0, seed: int = 0,
                   progress: Optional[ProgressCallback] = None,
                   cancel: Optional[CancelCheck] = None) -> ExportResult:
    """Write the selected training records (edits applied) to ``out`` in ``fmt``; with
    ``val_fraction`` a deterministic validation split goes to ``<stem>.validation<ext>``
    (records the project already marks as validation go there too). Each file is written
    atomically. Writes ``<stem>.card.md`` and ``<stem>.decisions.csv`` beside."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = os.path.abspath(out)
    train = list(iter_selected(project, include, split="train"))
    val_ids = assign_validation([sr.id for sr in train], val_fraction, seed)
    validation = [sr for sr in train if sr.id in val_ids]
    validation += list(iter_selected(project, include, split="validation"))
    train = [sr for sr in train if sr.id not in val_ids]
    result = ExportResult()
    parts = [("train", out, train)]
    if validation:
        root, ext = os.path.splitext(out)
        parts.append(("validation", root + ".validation" + (ext or EXTENSIONS[fmt]), validation))
    for name, path, items in parts:
        wr = write_records((sr.record for sr in items), path, fmt, progress=progress, cancel=cancel)
        result.files[name] = path
        result.counts[name] = wr.written
        result.skipped += [(name, pos, reason) for pos, reason in wr.skipped]
    result.log = sibling(out, ".decisions.csv")
    write_text_atomic(result.log, decision_log_csv(project))
    result.card = sibling(out, ".card.md")
    write_text_atomic(result.card, dataset_card(project, result, fmt, include, val_fraction, seed))
    return result


def _iso(ts: Optional[float]) -> str:
    if ts is None:
        return ""
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).isoformat(timespec="seconds")


def decision_log_csv(project: Project) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["decision", "group", "time_utc", "reviewer", "record_id", "source_index", "action",
                "status_before", "status_after", "labels_after", "note_after", "undone"])
    index_of: dict[int, int] = {}
    for h in reversed(project.history()):  # oldest first
        rid = h["record_id"]
        if rid not in index_of:
            try:
                index_of[rid] = project.get(rid).index
            except KeyError:
                index_of[rid] = -1
        before, after = h.get("before") or {}, h.get("after") or {}
        w.writerow([h["id"], h.get("group"), _iso(h.get("ts")), h.get("reviewer") or "", rid, index_of[rid],
                    h["action"], before.get("status", ""), after.get("status", ""),
                    ";".join(after.get("labels") or []), after.get("note") or "", int(bool(h.get("undone")))])
    return buf.getvalue()


def dataset_card(project: Project, result: ExportResult, fmt: str, include: str,
                 val_fraction: float, seed: int) -> str:
    counts = project.status_counts()
    total_written = sum(result.counts.values())
    lines = [f"# Dataset card: {os.path.basename(result.files.get('train', ''))}", "",
             f"Exported by ftcurate on {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}"
             f" from project `{project.path}`" + (f", reviewer {project.reviewer}" if project.reviewer else "") + ".",
             "", "## Contents", "", "| split | file | records |", "|---|---|---|"]
    for name, path in result.files.items():
        lines.append(f"| {name} | `{os.path.basename(path)}` | {result.counts[name]} |")
    lines += ["", f"Format: `{fmt}`. Selection: `{include}` records of the train split"
              + (f"; validation split {val_fraction:.0%} with seed {seed}" if val_fraction else "") + ".",
              "Edits made in review are applied.", "", "## Review", "", "| status | records |", "|---|---|"]
    for status, n in counts.items():
        lines.append(f"| {status} | {n} |")
    lines += ["", "## What was removed and why", ""]
    rejected = [sr for sr in project.iter_records(status="rejected")]
    reasons: dict[str, int] = {}
    for sr in rejected:
        key = ", ".join(sr.labels) or (sr.note.strip().splitlines()[0] if sr.note.strip() else "rejected in review")
        reasons[key] = reasons.get(key, 0) + 1
    if include == "approved":
        unrev = counts.get("unreviewed", 0)
        if unrev:
            reasons["not reviewed (only approved records exported)"] = unrev
    if not reasons:
        lines.append("Nothing was removed in review.")
    for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        lines.append(f"- {n} × {why}")
    errors: dict[str, int] = {}
    for e in project.import_errors():
        errors[e["key"]] = errors.get(e["key"], 0) + 1
    if errors:
        lines.append("- records that could not be imported: " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())))
    if result.skipped:
        lines.append(f"- {len(result.skipped)} records the `{fmt}` format cannot hold (e.g. "
                     f"{result.skipped[0][2]})")
    lines += ["", "## Scans", ""]
    scans = project.list_scans() if hasattr(project, "list_scans") else []
    if not scans:
        lines.append("No quality scan has been stored in this project.")
    for name in scans:
        loaded = project.load_scan(name)
        if loaded:
            lines.append(f"- `{name}` settings: `{json.dumps(loaded[0], sort_keys=True)}`")
    lines += ["", "## Source files", "", "| file | role | format | records | sha256 |", "|---|---|---|---|---|"]
    for s in project.sources():
        lines.append(f"| `{s.get('path')}` | {s.get('role')} | {s.get('format')} | {s.get('total')} | "
                     f"`{(s.get('sha256') or '')[:16]}` |")
    lines += ["", "## Advice", ""]
    lines += [f"- {a}" for a in size_advice(total_written, project.count(split="test") or None)]
    lines.append("")
    return "\n".join(lines)
