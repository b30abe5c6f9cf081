"""The review table's columns as numpy arrays: filter and sort a million records at once.

:class:`RecordFrame` holds, per record, the few values the table shows and filters on -
id, status, split, size, number of messages, whether it has labels, the scan flags (one
bit per finding kind) and the outlier score - in numpy arrays (about 40 bytes a record).
The record text stays in the store. :meth:`RecordFrame.select` answers a filter with a
boolean mask in milliseconds, :meth:`RecordFrame.order` sorts by a column, and
:meth:`RecordFrame.update` re-reads the rows a decision changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import json

import numpy as np

from ..quality.heuristics import FLAGS
from ..progress import CancelCheck, ProgressCallback, Reporter
from .records import SPLITS
from .store import STATUSES, Project

#: Finding kinds of a scan report, then the heuristic flags: bit ``i`` of ``flags``.
FINDING_KINDS: tuple[str, ...] = (
    "exact duplicate", "near duplicate", "semantic duplicate", "conflicting answers",
    "outlier", "length outlier", "leakage", "validation leakage", "in corpus index",
) + tuple(FLAGS)
CHARS_PER_TOKEN = 4  # the token estimate used where no tokenizer is given (see validate.py)
SORT_KEYS = ("id", "status", "split", "messages", "chars", "tokens", "flags", "score")


def _bit(kind: str) -> np.uint64:
    return np.uint64(1) << np.uint64(FINDING_KINDS.index(kind))


def report_findings(report: Optional[dict]) -> tuple[dict[int, int], dict[int, float]]:
    """``({record id: flag bits}, {record id: outlier score})`` from a project scan report."""
    bits: dict[int, int] = {}
    scores: dict[int, float] = {}
    if not report:
        return bits, scores

    def mark(rid, kind: str) -> None:
        if kind in FINDING_KINDS:
            bits[int(rid)] = bits.get(int(rid), 0) | (1 << FINDING_KINDS.index(kind))

    for group in report.get("exact_duplicates") or []:
        for rid in group:
            mark(rid, "exact duplicate")
    for group in report.get("conflicting") or []:
        for rid in group:
            mark(rid, "conflicting answers")
    for cluster in report.get("near_duplicate_clusters") or []:
        for rid in cluster.get("indices") or []:
            mark(rid, "near duplicate")
    for p in report.get("semantic_duplicates") or []:
        mark(p["a"], "semantic duplicate")
        mark(p["b"], "semantic duplicate")
    for o in report.get("outliers") or []:
        mark(o["index"], "outlier")
    for o in report.get("length_outliers") or []:
        mark(o["index"], "length outlier")
    for h in report.get("leakage") or []:
        mark(h["index"], "leakage")
    for h in report.get("validation_leakage") or []:
        mark(h["index"], "validation leakage")
    for h in report.get("against_index") or []:  # copies of records in a corpus index
        mark(h["index"], "in corpus index")
    for f in report.get("flags") or []:
        mark(f["index"], f.get("flag", ""))
    # outlier score of every scanned record: "outlier_scores" lists them in scan order,
    # which is the order of the report's training records; the flagged ones carry theirs
    for o in report.get("outliers") or []:
        scores[int(o["index"])] = float(o.get("score", np.nan))
    order = report.get("scanned_ids")
    all_scores = (report.get("outlier_scores") or {}).get("scores")
    if order and all_scores and len(order) == len(all_scores):
        for rid, sc in zip(order, all_scores):
            scores.setdefault(int(rid), float(sc))
    return bits, scores


def flag_names(bits: int) -> list[str]:
    return [k for i, k in enumerate(FINDING_KINDS) if bits >> i & 1]


@dataclass
class RecordFrame:
    """Per-record columns of a project, in ascending id order."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    status: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # index into STATUSES
    split: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))  # index into SPLITS
    chars: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # canonical JSON size
    messages: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    labeled: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    flags: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    #: fields of the source records shown as columns (key -> one str per row, "" when absent)
    meta: dict = field(default_factory=dict)
    score: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # NaN: not scored

    # -- building --------------------------------------------------------------------------
    @classmethod
    def from_project(cls, project: Project, report: Optional[dict] = None,
                     progress: Optional[ProgressCallback] = None,
                     cancel: Optional[CancelCheck] = None) -> "RecordFrame":
        n = project.count()
        rep = Reporter(progress, cancel, total=n)
        cols: dict[str, list] = {k: [] for k in ("ids", "index", "status", "split", "chars", "messages", "labeled")}
        status_code = {s: i for i, s in enumerate(STATUSES)}
        split_code = {s: i for i, s in enumerate(SPLITS)}
        rep.tick(0, "Reading the records")
        for done, (rid, idx, split, status, chars, msgs, labels) in enumerate(project.light_rows(), 1):
            cols["ids"].append(rid)
            cols["index"].append(idx)
            cols["status"].append(status_code.get(status, 0))
            cols["split"].append(split_code.get(split, 0))
            cols["chars"].append(chars or 0)
            cols["messages"].append(msgs or 0)
            cols["labeled"].append(labels not in (None, "", "[]"))
            if done % 50000 == 0:
                rep.tick(done, "Reading the records")
        frame = cls(
            ids=np.asarray(cols["ids"], np.int64),
            index=np.asarray(cols["index"], np.int64),
            status=np.asarray(cols["status"], np.int8),
            split=np.asarray(cols["split"], np.int8),
            chars=np.minimum(np.asarray(cols["chars"], np.int64), np.iinfo(np.int32).max).astype(np.int32),
            messages=np.minimum(np.asarray(cols["messages"], np.int64), np.iinfo(np.int16).max).astype(np.int16),
            labeled=np.asarray(cols["labeled"], bool),
        )
        frame.flags = np.zeros(len(frame), np.uint64)
        frame.score = np.full(len(frame), np.nan, np.float32)
        frame.apply_report(report)
        rep.tick(n, "Records read")
        return frame

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def rows_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row positions of ``ids`` (-1 where an id is not in the frame)."""
        ids = np.asarray(ids, np.int64)
        pos = np.searchsorted(self.ids, ids)
        pos = np.minimum(pos, max(len(self) - 1, 0))
        ok = (len(self) > 0) & (self.ids[pos] == ids) if len(self) else np.zeros(ids.shape, bool)
        return np.where(ok, pos, -1)

    def load_meta(self, project: Project, key: str) -> np.ndarray:
        """The values of metadata field ``key`` as text, one per row (read once, then kept)."""
        col = self.meta.get(key)
        if col is None:
            ids, values = project.metadata_column(key)
            col = np.full(len(self), "", dtype=object)
            rows = self.rows_of(ids)
            for row, v in zip(rows.tolist(), values):
                if row >= 0 and v is not None:
                    col[row] = v if isinstance(v, str) else (json.dumps(v) if not isinstance(v, (int, float))
                                                            else f"{v:g}" if isinstance(v, float) else str(v))
            self.meta[key] = col
        return col

    def numbers(self, ids: Sequence[int]) -> dict[int, int]:
        """Record id -> its index in its source file (the number people see), for the ids in
        the frame (see :mod:`ftcurate.core.project.numbering`)."""
        rows = self.rows_of(ids)
        ok = rows >= 0
        return dict(zip(np.asarray(ids, np.int64)[ok].tolist(), self.index[rows[ok]].tolist()))

    def apply_report(self, report: Optional[dict]) -> None:
        """Set the flag bits and outlier scores from a scan report (clears the old ones)."""
        self.flags[:] = 0
        self.score[:] = np.nan
        bits, scores = report_findings(report)
        if bits:
            keys = np.fromiter(bits, np.int64, len(bits))
            rows = self.rows_of(keys)
            ok = rows >= 0
            self.flags[rows[ok]] = np.fromiter(bits.values(), np.uint64, len(bits))[ok]
        if scores:
            keys = np.fromiter(scores, np.int64, len(scores))
            rows = self.rows_of(keys)
            ok = rows >= 0
            self.score[rows[ok]] = np.fromiter(scores.values(), np.float32, len(scores))[ok]

    def update(self, project: Project, ids: Iterable[int]) -> None:
        """Re-read status, split, size and labels of ``ids`` after a decision (or undo)."""
        ids = list(ids)
        if not ids:
            return
        status_code = {s: i for i, s in enumerate(STATUSES)}
        split_code = {s: i for i, s in enumerate(SPLITS)}
        for rid, _idx, split, status, chars, msgs, labels in project.light_rows(ids):
            row = int(self.rows_of([rid])[0])
            if row < 0:
                continue
            self.status[row] = status_code.get(status, 0)
            self.split[row] = split_code.get(split, 0)
            self.chars[row] = min(chars or 0, np.iinfo(np.int32).max)
            self.messages[row] = min(msgs or 0, np.iinfo(np.int16).max)
            self.labeled[row] = labels not in (None, "", "[]")

    # -- reading ---------------------------------------------------------------------------
    def status_of(self, row: int) -> str:
        return STATUSES[int(self.status[row])]

    def tokens(self) -> np.ndarray:
        """Estimated tokens per record (about four characters a token)."""
        return (self.chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN

    def flag_counts(self) -> dict[str, int]:
        """How many records carry each finding kind (kinds nobody has are left out)."""
        out = {}
        for i, kind in enumerate(FINDING_KINDS):
            n = int(np.count_nonzero(self.flags & (np.uint64(1) << np.uint64(i))))
            if n:
                out[kind] = n
        return out

    def mask(self, status: Optional[str] = None, split: Optional[str] = None, flag: Optional[str] = None,
             label_ids: Optional[Iterable[int]] = None, score_min: Optional[float] = None,
             score_max: Optional[float] = None, tokens_min: Optional[int] = None,
             tokens_max: Optional[int] = None, only_ids: Optional[Iterable[int]] = None,
             meta: Optional[dict] = None) -> np.ndarray:
        """Rows matching every given condition. ``flag``: a finding kind, "any" (some
        finding) or "none" (no finding); ``label_ids``/``only_ids``: records to keep
        (e.g. those with a label, or the hits of a text search); ``meta``: {field: value} of
        loaded metadata columns (:meth:`load_meta`), compared without case."""
        m = np.ones(len(self), bool)
        for key, value in (meta or {}).items():
            col = self.meta.get(key)
            if col is not None:
                want = str(value).casefold()
                m &= np.fromiter((str(v).casefold() == want for v in col), bool, len(col))
        if status is not None:
            m &= self.status == STATUSES.index(status)
        if split is not None:
            m &= self.split == SPLITS.index(split)
        if flag == "any":
            m &= self.flags != 0
        elif flag == "none":
            m &= self.flags == 0
        elif flag is not None:
            m &= (self.flags & _bit(flag)) != 0
        for keep in (label_ids, only_ids):
            if keep is not None:
                keep = np.fromiter(keep, np.int64) if not isinstance(keep, np.ndarray) else keep.astype(np.int64)
                m &= np.isin(self.ids, keep, assume_unique=False)
        if score_min is not None:
            m &= self.score >= score_min  # NaN (not scored) never passes a score bound
        if score_max is not None:
            m &= self.score <= score_max
        if tokens_min is not None or tokens_max is not None:
            tok = self.tokens()
            if tokens_min is not None:
                m &= tok >= tokens_min
            if tokens_max is not None:
                m &= tok <= tokens_max
        return m

    def select(self, **conditions) -> np.ndarray:
        """Ids (ascending) of the records matching :meth:`mask`'s conditions."""
        return self.ids[self.mask(**conditions)]

    def order(self, ids: np.ndarray, key: str = "id", descending: bool = False) -> np.ndarray:
        """``ids`` sorted by a column (stable; ties keep id order; unscored last)."""
        if key not in SORT_KEYS:
            raise ValueError(f"unknown sort key {key!r} (expected one of {SORT_KEYS})")
        ids = np.asarray(ids, np.int64)
        if key == "id":
            out = np.sort(ids)
            return out[::-1] if descending else out
        rows = self.rows_of(ids)
        if key == "score":
            col = self.score[rows].astype(np.float64)
            col = np.where(np.isnan(col), -np.inf if descending else np.inf, col)
        elif key == "tokens":
            col = self.tokens()[rows]
        elif key == "flags":
            col = np.array([bin(int(b)).count("1") for b in self.flags[rows]]) if len(rows) < 4096 else \
                np.unpackbits(self.flags[rows].view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
        else:
            col = getattr(self, key)[rows]
        if descending:
            order = np.lexsort((ids, -col.astype(np.float64)))
        else:
            order = np.lexsort((ids, col))
        return ids[order]



def split_meta_query(text: str, keys: Iterable[str]) -> tuple[dict[str, str], str]:
    """``"category:math how many"`` -> ({"category": "math"}, "how many"): the ``field:value``
    words whose field is one of ``keys`` (a value with spaces in double quotes) become
    metadata conditions; the rest stays a text search."""
    import re
    import shlex

    keys = {k.casefold(): k for k in keys}
    if not keys or ":" not in text:
        return {}, text.strip()
    try:
        words = shlex.split(text)
    except ValueError:  # an unclosed quote: take the words as they are
        words = text.split()
    meta: dict[str, str] = {}
    rest: list[str] = []
    for w in words:
        m = re.match(r"^([^:\s]+):(.*)$", w)
        if m and m.group(1).casefold() in keys and m.group(2) != "":
            meta[keys[m.group(1).casefold()]] = m.group(2)
        else:
            rest.append(w)
    return meta, " ".join(rest)

