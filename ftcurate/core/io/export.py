"""Export a project's curated records, with a dataset card and a decision log beside them.

The files of an export (data, validation data, decision log, card) are written as one set
(:class:`~ftcurate.core.io.fileset.FileSet`): all are written and fsynced in a staging folder
before any is replaced, the card goes in last, a validation file the previous card listed and
the new export lacks is removed, and a second export to the same path fails clearly while one
runs. File modes follow the umask or the replaced file; a read-only file is not replaced; a
symlink is written through.

What users and reviewers typed is escaped (:mod:`~ftcurate.core.io.safe_text`): no formula runs
from the decision log, no Markdown or HTML from the card. Credentials in scan settings are
redacted and paths shown relative to the project (:mod:`~ftcurate.core.io.redact`) unless the
caller asks for full paths. NaN and Infinity in records are written as JSON ``null``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

from .fileio import write_text_atomic
from .fileset import FileSet
from .formats import FORMATS, write_records
from .ingest import iter_selected
from .redact import display_path, public_settings
from .safe_text import csv_row, json_safe, md_code, md_text
from ..progress import CancelCheck, ProgressCallback
from ..project.records import Record
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
    sha256: dict = field(default_factory=dict)  # file name -> sha256 of what was written
    nonfinite: int = 0  # NaN / Infinity values written as null
    nonfinite_records: int = 0
    decisions: int = 0  # rows of the decision log
    removed: list = field(default_factory=list)  # stale files of the previous export, removed

    def to_dict(self) -> dict:
        return {"files": self.files, "counts": self.counts, "card": self.card, "decision_log": self.log,
                "skipped": [{"split": s, "position": p, "reason": r} for s, p, r in self.skipped],
                "sha256": self.sha256, "nonfinite_as_null": self.nonfinite, "removed": self.removed}


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
                   cancel: Optional[CancelCheck] = None, full_paths: bool = False) -> ExportResult:
    """Write the selected training records (edits applied) to ``out`` in ``fmt``; with
    ``val_fraction`` a deterministic validation split goes to ``<stem>.validation<ext>``
    (records the project already marks as validation go there too). Writes
    ``<stem>.card.md`` and ``<stem>.decisions.csv`` beside, the whole set at once (see the
    module's doc). ``full_paths``: the card shows absolute paths instead of paths relative to
    the project. Errors are :class:`~ftcurate.core.io.fileio.WriteError` (an ``OSError``)
    naming the file, with the previous export left as it was."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = os.path.abspath(out)
    train = list(iter_selected(project, include, split="train"))
    val_ids = assign_validation([sr.id for sr in train], val_fraction, seed)
    validation = [sr for sr in train if sr.id in val_ids]
    validation += list(iter_selected(project, include, split="validation"))
    train = [sr for sr in train if sr.id not in val_ids]
    result = ExportResult()
    root, ext = os.path.splitext(out)
    val_path = root + ".validation" + (ext or EXTENSIONS[fmt])
    parts = [("train", out, train)]
    if validation:
        parts.append(("validation", val_path, validation))
    result.log = sibling(out, ".decisions.csv")
    result.card = sibling(out, ".card.md")
    with FileSet(out, busy_message=f"another export to {out} is running; try again when it has finished",
                 kept="the previous export was left as it was") as fs:
        # Every file is staged (and checked: read-only ones are refused) before any is written;
        # the card last, so that it is the last to go in.
        staged = {path: fs.stage(path) for _, path, _ in parts}
        staged[result.log] = fs.stage(result.log)
        staged[result.card] = fs.stage(result.card)
        if not validation and _listed_in_previous_card(result.card, out, val_path):
            fs.remove(val_path)
            result.removed.append(val_path)
        tally = [0, 0]  # values, records
        for name, path, items in parts:
            with fs.writing(path):
                wr = write_records(_finite((sr.record for sr in items), tally), staged[path], fmt,
                                   progress=progress, cancel=cancel, array=path.lower().endswith(".json"))
            result.files[name] = path
            result.counts[name] = wr.written
            result.skipped += [(name, pos, reason) for pos, reason in wr.skipped]
            result.sha256[os.path.basename(path)] = _sha256(staged[path])
        result.nonfinite, result.nonfinite_records = tally
        with fs.writing(result.log):
            log_text, result.decisions = _decision_log(project)
            write_text_atomic(staged[result.log], log_text)
        result.sha256[os.path.basename(result.log)] = _sha256(staged[result.log])
        card = dataset_card(project, result, fmt, include, val_fraction, seed, full_paths=full_paths)
        with fs.writing(result.card):
            write_text_atomic(staged[result.card], card)
        fs.commit()
    return result


def _finite(records: Iterable[Record], tally: list) -> Iterator[Record]:
    """The records with NaN / Infinity (in metadata, tools or tool calls) replaced by None:
    strict JSON readers reject them. ``tally`` counts values and records replaced."""
    for rec in records:
        meta, a = json_safe(rec.metadata)
        tools, b = json_safe(rec.tools)
        messages, c = rec.messages, 0
        if any(m.tool_calls or m.function_call for m in rec.messages):
            messages = []
            for m in rec.messages:
                calls, n1 = json_safe(m.tool_calls)
                fcall, n2 = json_safe(m.function_call)
                messages.append(dataclasses.replace(m, tool_calls=calls, function_call=fcall) if n1 + n2 else m)
                c += n1 + n2
        if a + b + c:
            tally[0] += a + b + c
            tally[1] += 1
            rec = dataclasses.replace(rec, metadata=meta, tools=tools, messages=messages)
        yield rec


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _listed_in_previous_card(card: str, out: str, val_path: str) -> bool:
    """Whether the card of the previous export to ``out`` lists ``val_path``: then that file
    belongs to the set being replaced (a file of the user's own with that name is left alone)."""
    if not os.path.lexists(val_path):
        return False
    try:
        with open(card, encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError:
        return False
    lines = [line.strip() for line in text.splitlines()]
    train_cell = md_code(os.path.basename(out), table=True)
    val_cell = md_code(os.path.basename(val_path), table=True)
    return (any(line.startswith("| train |") and train_cell in line for line in lines)
            and any(line.startswith("| validation |") and val_cell in line for line in lines))


def _iso(ts: Optional[float]) -> str:
    if ts is None:
        return ""
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).isoformat(timespec="seconds")


def decision_log_csv(project: Project) -> str:
    """Every review decision, oldest first, as CSV text."""
    return _decision_log(project)[0]


def _decision_log(project: Project) -> tuple[str, int]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["decision", "group", "time_utc", "reviewer", "record_id", "source_index", "action",
                "status_before", "status_after", "labels_after", "note_after", "undone", "dismissed_after"])
    index_of: dict[int, int] = {}
    rows = 0
    for h in reversed(project.history()):  # oldest first
        rows += 1
        rid = h["record_id"]
        if rid not in index_of:
            try:
                index_of[rid] = project.get(rid).index
            except KeyError:
                index_of[rid] = -1
        before, after = h.get("before") or {}, h.get("after") or {}
        # Text cells go through csv_row: a reviewer name, label or note is never run as a formula.
        w.writerow(csv_row([h["id"], h.get("group"), _iso(h.get("ts")), h.get("reviewer") or "", rid, index_of[rid],
                            h["action"], before.get("status", ""), after.get("status", ""),
                            ";".join(after.get("labels") or []), after.get("note") or "",
                            int(bool(h.get("undone"))), _dismissed_text(after.get("dismissed"))]))
    return buf.getvalue(), rows


def _dismissed_text(items) -> str:
    """A record's dismissed findings for the decision log: "not a leak (why); not an outlier"."""
    from ..project.dismissals import says

    out = []
    for d in items or []:
        if isinstance(d, dict) and d.get("kind"):
            out.append(says(str(d["kind"])) + (f" ({d['reason']})" if d.get("reason") else ""))
    return "; ".join(out)


def dataset_card(project: Project, result: ExportResult, fmt: str, include: str,
                 val_fraction: float, seed: int, full_paths: bool = False) -> str:
    """The dataset card (Markdown). Everything a user typed is escaped; credentials in scan
    settings are redacted; paths are relative to the project's folder (file names for files
    outside it) unless ``full_paths``."""
    counts = project.status_counts()
    total_written = sum(result.counts.values())
    project_dir = os.path.dirname(os.path.abspath(project.path))
    project_shown = display_path(project.path, project_dir, full_paths)
    lines = [f"# Dataset card: {md_text(os.path.basename(result.files.get('train', '')))}", "",
             f"Exported by ftcurate on {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}"
             f" from project {md_code(project_shown)}"
             + (f", reviewer {md_text(project.reviewer)}" if project.reviewer else "") + ".",
             "", "## Contents", "", "| split | file | records | sha256 |", "|---|---|---|---|"]
    for name, path in result.files.items():
        base = os.path.basename(path)
        lines.append(f"| {name} | {md_code(base, table=True)} | {result.counts[name]} | {result.sha256.get(base, '')} |")
    log = os.path.basename(result.log)
    if log in result.sha256:
        lines.append(f"| decision log | {md_code(log, table=True)} | {result.decisions} decisions | "
                     f"{result.sha256[log]} |")
    lines += ["", f"Format: `{fmt}`. Selection: `{include}` records of the train split"
              + (f"; validation split {val_fraction:.0%} with seed {seed}" if val_fraction else "") + ".",
              "Edits made in review are applied. This card lists every file of the export; the sha256 "
              "sums tell whether a file is the one it describes."]
    if result.nonfinite:
        lines.append(f"JSON has no NaN or Infinity: {result.nonfinite} such numbers in "
                     f"{result.nonfinite_records} records were written as `null`.")
    lines += ["", "## Review", "", "| status | records |", "|---|---|"]
    for status, n in counts.items():
        lines.append(f"| {md_text(status)} | {n} |")
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
        lines.append(f"- {n} × {md_text(why)}")
    errors: dict[str, int] = {}
    for s in project.sources():  # every error counted, also those whose details were not kept
        for key, n in s["error_counts"].items():
            errors[key] = errors.get(key, 0) + n
    if errors:
        lines.append("- records that could not be imported: "
                     + ", ".join(f"{md_text(k)} {v}" for k, v in sorted(errors.items())))
    if result.skipped:
        lines.append(f"- {len(result.skipped)} records the `{fmt}` format cannot hold (e.g. "
                     f"{md_text(result.skipped[0][2])})")
    lines += ["", "## Scans", ""]
    scans = project.list_scans() if hasattr(project, "list_scans") else []
    if not scans:
        lines.append("No quality scan has been stored in this project.")
    for name in scans:
        loaded = project.load_scan(name)
        if loaded:
            settings = public_settings(json_safe(loaded[0])[0], project_dir, full_paths)
            lines.append(f"- {md_code(name)} settings: {md_code(json.dumps(settings, sort_keys=True))}")
    lines += ["", "## Source files", "", "| file | role | format | records | sha256 |", "|---|---|---|---|---|"]
    for s in project.sources():
        shown = display_path(s.get("path"), project_dir, full_paths)
        lines.append(f"| {md_code(shown, table=True)} | {md_text(s.get('role'))} | {md_text(s.get('format'))} | "
                     f"{s.get('total')} | {md_code((s.get('sha256') or '')[:16], table=True)} |")
    if not full_paths:
        lines += ["", "Paths are relative to the project's folder (file names for files outside it); "
                      "`ftcurate export --full-paths` writes them in full."]
    lines += ["", "## Advice", ""]
    lines += [f"- {a}" for a in size_advice(total_written, project.count(split="test") or None)]
    lines.append("")
    return "\n".join(lines)
