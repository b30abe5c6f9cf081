"""The project at a glance: counts, token lengths, what a training run would see, and
advice banners. One streaming pass over the records; no Qt (the GUI's Overview tab and
any other front end show the :class:`Overview` it returns).

What a training run sees is what an export with ``include="approved"`` takes: approved
and edited records of the train split (:func:`~ftcurate.core.io.ingest.iter_selected`),
counted with the same :class:`~ftcurate.core.io.validate.StatsAccumulator` as
:func:`~ftcurate.core.io.ingest.project_stats`, so the numbers agree with ``ftcurate stats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter
from .records import SPLITS, Record
from .store import STATUSES, Project
from .table import FINDING_KINDS, report_findings
from ..io.validate import DEFAULT_MAX_TOKENS, OVERFIT_SET, SMALL_SET, StatsAccumulator, TokenCounter

#: Statuses a training run takes (an edit counts as approved).
RUN_STATUSES = ("approved", "edited")
#: Banner levels, most serious first.
LEVELS = ("error", "warning", "info")

_TOKEN_BINS = 40  # bars in the token-length histogram
_TOKEN_CLIP_QUANTILE = 0.995  # far longer records share the last bar: one giant record can't squash the rest
_TURNS_CAP = 20  # examples with more turns share the last bar


@dataclass
class Overview:
    """Everything the Overview tab shows. Arrays are per record, in ascending id order."""

    records: int = 0
    #: records by review status, every split (held-out test records are never reviewed:
    #: they stay "unreviewed" in the store)
    status: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    #: records by review status, the held-out test records left out: what review is about
    review_status: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUSES})
    #: held-out test records (kept out of review, training and export)
    held_out: int = 0
    splits: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    #: finding kind -> records carrying it (kinds nobody has are left out), from the report
    flags: dict[str, int] = field(default_factory=dict)
    #: the same, counting only records that are not rejected (what is left to look at)
    flags_open: dict[str, int] = field(default_factory=dict)
    has_report: bool = False
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # tokens per record
    turns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # user turns per record
    in_run: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # a training run takes it
    #: token histogram: ``token_edges`` (bins + 1 edges) and counts of all records / of the run
    token_edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    token_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    token_counts_run: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: records longer than this share the last bar (None: nothing was clipped)
    token_clip: Optional[int] = None
    #: turns histogram: bar ``i`` counts examples with ``turn_values[i]`` turns (the last: that many or more)
    turn_values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    turn_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    turn_counts_run: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    approved: int = 0  # approved + edited, every split
    run_examples: int = 0  # approved + edited train records: what a training run sees
    run_tokens: int = 0  # their tokens (one epoch)
    run_stats: dict = field(default_factory=dict)  # StatsAccumulator.stats() of those records
    max_tokens: int = DEFAULT_MAX_TOKENS
    tokenizer: str = ""
    #: distinct training records that leak a test / validation record and are still in training
    unresolved_leaks: int = 0
    unresolved_validation_leaks: int = 0
    #: (level, text): level is "error", "warning" or "info"; most serious first
    banners: list[tuple[str, str]] = field(default_factory=list)

    unreviewed_train: int = 0  # training records still waiting for a decision

    @property
    def unreviewed(self) -> int:
        """Records still waiting for a decision (held-out test records are not waiting)."""
        return self.review_status.get("unreviewed", 0)


def overview(project: Project, report: Optional[dict] = None, counter: Optional[TokenCounter] = None,
             max_tokens: int = DEFAULT_MAX_TOKENS, progress: Optional[ProgressCallback] = None,
             cancel: Optional[CancelCheck] = None) -> Overview:
    """Summarise ``project`` (and the findings of its scan ``report``, record ids as indices)
    in one pass over the records. Tokens are counted with ``counter`` (default: the
    ~4-characters-a-token estimate). Raises :class:`Cancelled` when ``cancel()`` turns true."""
    counter = counter or TokenCounter()
    n = project.count()
    rep = Reporter(progress, cancel, total=n, every=2000)
    rep.tick(0, "Counting tokens")
    acc = StatsAccumulator(counter, max_tokens)  # the run's records, as project_stats counts them
    status_code = {s: i for i, s in enumerate(STATUSES)}
    split_code = {s: i for i, s in enumerate(SPLITS)}
    ids = np.zeros(n, np.int64)
    tokens = np.zeros(n, np.int64)
    turns = np.zeros(n, np.int16)
    status = np.zeros(n, np.int8)
    split = np.zeros(n, np.int8)
    in_run = np.zeros(n, bool)
    i = 0
    for sr in project.iter_records():
        if i == n:  # records added while we read: the counts are of the first n
            break
        rec = sr.record
        ids[i] = sr.id
        status[i] = status_code.get(sr.status, 0)
        split[i] = split_code.get(sr.split, 0)
        turns[i] = min(_turns(rec), np.iinfo(np.int16).max)
        if sr.split == "train" and sr.status in RUN_STATUSES:
            in_run[i] = True
            acc.add(rec, sr.index)
            tokens[i] = acc.n_tokens[-1]  # counted once, by the accumulator
        else:
            tokens[i] = counter.messages(rec)[0]
        i += 1
        rep.tick(i, "Counting tokens")
    if i < n:  # records removed while we read
        ids, tokens, turns, status, split, in_run = (a[:i] for a in (ids, tokens, turns, status, split, in_run))

    ov = Overview(records=int(i), ids=ids, tokens=tokens, turns=turns, in_run=in_run, max_tokens=max_tokens,
                  tokenizer=counter.name, has_report=bool(report))
    ov.status = {s: int(np.count_nonzero(status == k)) for s, k in status_code.items()}
    ov.splits = {s: int(np.count_nonzero(split == k)) for s, k in split_code.items()}
    reviewed = split != split_code["test"]
    ov.review_status = {s: int(np.count_nonzero((status == k) & reviewed)) for s, k in status_code.items()}
    ov.held_out = ov.splits["test"]
    ov.approved = sum(ov.status[s] for s in RUN_STATUSES)
    ov.run_stats = acc.stats()
    ov.run_examples = int(ov.run_stats["examples"])
    ov.run_tokens = int(ov.run_stats["total_tokens"])
    _histograms(ov)
    rejected = status == status_code["rejected"]
    ov.unreviewed_train = int(np.count_nonzero((status == status_code["unreviewed"])
                                               & (split == split_code["train"])))
    ov.flags, ov.flags_open = _flag_counts(report, ids, rejected)
    in_train = (split == split_code["train"]) & ~rejected
    ov.unresolved_leaks = _unresolved(report, "leakage", ids, in_train)
    ov.unresolved_validation_leaks = _unresolved(report, "validation_leakage", ids, in_train)
    ov.banners = banners(ov)
    rep.tick(n, "Overview ready")
    return ov


def _turns(rec: Record) -> int:
    """User turns of an example: one question and its answer make one turn."""
    return sum(1 for m in rec.messages if m.role == "user")


def _histograms(ov: Overview) -> None:
    """Fill the token-length and turns histograms (all records, and the run's records)."""
    if ov.records == 0:
        return
    tok = ov.tokens
    lo, hi = int(tok.min()), int(tok.max())
    clip = int(np.ceil(np.quantile(tok, _TOKEN_CLIP_QUANTILE)))
    if lo < clip and hi > 1.5 * clip:  # a long tail: it would squash the bars into one
        ov.token_clip = clip
        hi = clip
    edges = np.histogram_bin_edges(np.clip(tok, lo, hi), bins=min(_TOKEN_BINS, max(1, hi - lo + 1)),
                                   range=(lo, hi + 1))
    clipped = np.minimum(tok, hi)
    ov.token_edges = edges
    ov.token_counts = np.histogram(clipped, bins=edges)[0].astype(np.int64)
    ov.token_counts_run = np.histogram(clipped[ov.in_run], bins=edges)[0].astype(np.int64)

    top = min(int(ov.turns.max()), _TURNS_CAP)
    capped = np.minimum(ov.turns.astype(np.int64), top)
    ov.turn_values = np.arange(top + 1, dtype=np.int64)
    ov.turn_counts = np.bincount(capped, minlength=top + 1).astype(np.int64)
    ov.turn_counts_run = np.bincount(capped[ov.in_run], minlength=top + 1).astype(np.int64)
    # leave out leading empty bars (a set without 0-turn examples starts at 1)
    first = int(np.flatnonzero(ov.turn_counts)[0]) if ov.turn_counts.any() else 0
    ov.turn_values, ov.turn_counts, ov.turn_counts_run = (
        a[first:] for a in (ov.turn_values, ov.turn_counts, ov.turn_counts_run))


def _flag_counts(report: Optional[dict], ids: np.ndarray, rejected: np.ndarray) -> tuple[dict, dict]:
    """Records per finding kind (every record of the project / those not rejected)."""
    bits, _scores = report_findings(report)
    if not bits or not len(ids):
        return {}, {}
    keys = np.fromiter(bits, np.int64, len(bits))
    values = np.fromiter(bits.values(), np.uint64, len(bits))
    pos = np.searchsorted(ids, keys)  # ids are ascending
    pos = np.minimum(pos, len(ids) - 1)
    here = ids[pos] == keys  # findings of records that no longer exist are left out
    keys, values, still_open = keys[here], values[here], ~rejected[pos[here]]
    total: dict[str, int] = {}
    open_: dict[str, int] = {}
    for k, kind in enumerate(FINDING_KINDS):
        has = (values & (np.uint64(1) << np.uint64(k))) != 0
        n = int(np.count_nonzero(has))
        if n:
            total[kind] = n
            open_[kind] = int(np.count_nonzero(has & still_open))
    return total, open_


def _unresolved(report: Optional[dict], section: str, ids: np.ndarray, in_train: np.ndarray) -> int:
    """Distinct training records of a leakage section that are neither rejected nor moved
    out of the train split."""
    hits = (report or {}).get(section) or []
    if not hits or not len(ids):
        return 0
    leaked = np.unique(np.fromiter((int(h["index"]) for h in hits), np.int64))
    pos = np.minimum(np.searchsorted(ids, leaked), len(ids) - 1)
    return int(np.count_nonzero((ids[pos] == leaked) & in_train[pos]))


def banners(ov: Overview) -> list[tuple[str, str]]:
    """Advice for the project as it stands: (level, text), most serious first."""
    out: list[tuple[str, str]] = []
    if ov.records == 0:
        return [("info", "This project has no records yet: import a dataset.")]
    n = ov.run_examples
    waiting = ov.unreviewed_train
    left = f" {waiting:,} training record{'s are' if waiting != 1 else ' is'} still unreviewed." if waiting else ""
    if n < SMALL_SET:
        out.append(("error", f"Only {n:,} approved training examples: under {SMALL_SET}, little will be "
                             f"learnt. Aim for 500–1,000 clean examples.{left}"))
    elif n < OVERFIT_SET:
        out.append(("warning", f"{n:,} approved training examples: under {OVERFIT_SET:,}, overfitting is likely; "
                               f"500–1,000 clean examples beat many noisy ones. Keep epochs low and watch the "
                               f"validation loss.{left}"))
    if ov.unresolved_leaks:
        one = ov.unresolved_leaks == 1
        it = "it" if one else "them"
        out.append(("error", f"{ov.unresolved_leaks:,} training record{'' if one else 's'} "
                             f"{'leaks' if one else 'leak'} the test set and {'is' if one else 'are'} still in "
                             f"training: reject {it} or move {it} to the test split (Leakage tab), or the "
                             "evaluation will flatter the model."))
    if ov.unresolved_validation_leaks:
        one = ov.unresolved_validation_leaks == 1
        out.append(("warning", f"{ov.unresolved_validation_leaks:,} training record{'' if one else 's'} "
                               f"{'matches' if one else 'match'} validation records: the validation loss will "
                               "look better than it is."))
    too_long = int(np.count_nonzero(ov.tokens[ov.in_run] > ov.max_tokens)) if ov.records else 0
    if too_long:
        out.append(("warning", f"{too_long:,} approved example{'s' if too_long != 1 else ''} "
                               f"{'are' if too_long != 1 else 'is'} longer than {ov.max_tokens:,} tokens and "
                               "will be cut in training."))
    if not ov.has_report:
        out.append(("info", "No quality scan yet: run Scan ▸ Run quality scan to find duplicates, outliers, "
                            "leakage and bad answers."))
    if not ov.splits.get("test"):
        out.append(("info", "No held-out set: keep a golden test set apart to compare the tuned model with "
                            "the base model (File ▸ Import dataset…, as a test set)."))
    out.sort(key=lambda b: LEVELS.index(b[0]))
    return out
