"""Semantic duplicates and semantic (rephrased) leakage, from sentence embeddings.

Semantic duplicates (:func:`semantic_duplicates`) are pairs of records whose embeddings have a
cosine of at least ``threshold`` (0.95 by default). They are reported apart from MinHash
near-duplicates: MinHash finds shared wording, this finds shared meaning (and, with the static
model, shared vocabulary: GSM8K problems that differ only in their numbers score above 0.95).

Semantic leakage (:func:`semantic_leaks`) looks for training prompts that restate a held-out
(test) prompt in other words.

*Margin, not raw cosine.* A raw cosine cut-off cannot serve every dataset: a rephrased MMLU
question scores about 0.6 with MiniLM, while unrelated GSM8K training and test problems (same
style, same vocabulary) reach 0.9. So a pair (train x, test y) is scored by how far its cosine
stands above the test prompt's *background*: ``margin = cos(x, y) - r(y)``, where ``r(y)`` is the
mean cosine of y with its 4th..13th most similar prompts among the training prompts *and the
other test prompts* (ranks 1-3 are skipped so that up to three copies of a leak do not hide it).
In a crowded neighbourhood (a test set full of similar problems) r(y) is high, for an unusual
test prompt it is low. (Margin scoring is what bitext mining uses against "hub" sentences.) The
test prompts are part of the pool because they do not change with the training set: with
training prompts alone the background of a small training set was weak and its same-topic rows
were flagged (1.5% of 2,000 GSM8K rows, 0.4% of 7,473, at one threshold); with both, one
threshold holds from 500 to 7,000 rows (:func:`test_neighbours`, ``test_side``). A pair is a hit
when its margin reaches ``threshold`` and its raw cosine the model's floor (:data:`RAW_FLOOR`),
or when its raw cosine alone reaches :data:`ABSOLUTE_HIT` (near-verbatim copies).

Modes:

* ``"two-stage"`` (default): the static model embeds every prompt; each training prompt proposes
  its ``shortlist_k`` test prompts with the best fast margin, if that margin reaches
  ``shortlist_threshold``. A proposal is dropped when the test prompt's question has two or more
  numbers and the training prompt lacks more than a fifth of them (rephrasings keep the numbers;
  same-template problems change them); pairs sharing three or more uncommon numbers are proposed
  too. MiniLM then embeds the proposed training prompts and every test prompt (cached); the
  background r(y) is taken over the proposed training prompts and the other test prompts. Cost
  grows with the test set and the number of proposals, which ``max_confirm`` bounds.
* ``"fast"``: the static model only, margin over all training prompts.
* ``"accurate"``: MiniLM on every prompt, margin over all training prompts (slow on a CPU).

The confirm stage cuts texts at :data:`CONFIRM_MAX_TOKENS` (128) word pieces instead of
MiniLM's 256: 2.5 times faster on long passages, and the question views carry the long items.

*Question views*: a prompt of several lines whose last line is a question of its own (a passage
followed by "Which of the following...?", as in MMLU US history) is also embedded as that last
line alone, and a pair scores the best cosine over the views of both sides. Rephrasings often
restate only the question; comparing whole prompts then misses them.

The default thresholds were calibrated on real data (benchmarks/bench_semantic.py, results in
docs/benchmarks.md): rephrased MMLU questions (llm-decontaminator) and hand-written rephrasings
of GSM8K test questions as positives, planted among clean rows; GSM8K training rows and Alpaca
instructions against MMLU and against GSM8K test questions (same style, no rephrasings), and
MMLU rephrasings against the other subjects' test sets as negatives, at training-set sizes
500, 2,000 and 7,000; the two-stage threshold was chosen on half of the clean rows and checked on
the other half. They are for the built-in models; a local model folder needs its own
``threshold``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np

from .embeddings import ACCURATE, FAST, EmbeddingCache, embed
from .neighbors import EXACT_MAX, knn
from ..progress import CancelCheck, Cancelled, ProgressCallback, Reporter

DUPLICATE_THRESHOLD = 0.95

# Calibrated margins (see the module docstring); keys are the built-in model names.
LEAK_THRESHOLD = {FAST: 0.25, ACCURATE: 0.215}    # fast / accurate mode, margin over all prompts
TWO_STAGE_THRESHOLD = {ACCURATE: 0.16}            # MiniLM margin after the fast shortlist
RAW_FLOOR = {FAST: 0.50, ACCURATE: 0.55}          # and the raw cosine a hit needs at least
SHORTLIST_THRESHOLD = 0.05                         # fast margin to be proposed
SHORTLIST_K = 3
ABSOLUTE_HIT = 0.92                                # a raw cosine this high is a hit whatever the margin
MAX_CONFIRM = 1500                                 # training prompts sent to the accurate model, at most
CONFIRM_MAX_TOKENS = 128                           # MiniLM input cut in the confirm stage (speed)
BACKGROUND_K = 10
BACKGROUND_SKIP = 3
NUMBER_SHARE = 0.8
MODES = ("two-stage", "fast", "accurate")

_BLOCK = 4096
_KEEP_ROWS_BYTES = 256 << 20  # one-pass margins: full cosine rows kept for a rare exact rank check


# -- duplicates ----------------------------------------------------------------------------------

def semantic_duplicates(
    emb: np.ndarray,
    threshold: float = DUPLICATE_THRESHOLD,
    exact_max: int = EXACT_MAX,
    k: int = 20,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
    device: Optional[str] = None,
    neighbors: Optional[tuple[np.ndarray, np.ndarray]] = None,
    method: Optional[str] = None,
    max_partners: Optional[int] = None,
) -> list[tuple[int, int, float]]:
    """Pairs ``(i, j, cosine)`` with ``i < j`` and cosine >= ``threshold``, highest first.

    ``method`` (default: ``"neighbours"`` when ``neighbors`` is given, else ``"exact"`` up to
    ``exact_max`` rows and ``"clustered"`` above):

    * ``"exact"``: every pair, in blocks (float32 BLAS on every core, no top-k);
    * ``"clustered"``: each row against the rows of its nearest clusters (k-means; see
      :mod:`~ftcurate.core.quality.pairsearch`): no cap on the partners of a row, and 99.6-100%
      of the exact pairs in the measurements (docs/benchmarks.md);
    * ``"neighbours"``: the ``neighbors`` given (a :func:`knn` result ``(idx, sim)`` already
      computed, e.g. for outliers), or ``knn`` with ``k`` neighbours: a group of more than
      ``k + 1`` copies yields only part of its pairs.

    ``max_partners`` (exact method): each record is paired with at most this many of the records
    after it, its most similar (see :func:`.pairsearch.exact_candidates`): at most
    ``max_partners * n`` pairs, like the neighbour lists' cap on large sets.

    Every pair found is scored again in float64 and kept when that score reaches ``threshold``,
    so the similarities and ties at the threshold are the same whatever the method. Zero rows
    (empty texts) never pair. Memory: one block of products at a time, plus the pairs found.
    """
    from . import pairsearch as ps

    emb = np.ascontiguousarray(np.asarray(emb, dtype=np.float32))
    n = emb.shape[0]
    rep = Reporter(progress, cancel, total=n, every=1)
    rep.check()
    if n < 2:
        return []
    if method is None:
        method = "neighbours" if neighbors is not None else ("exact" if n <= exact_max else "clustered")
    if method not in ("exact", "clustered", "neighbours"):
        raise ValueError("method must be 'exact', 'clustered' or 'neighbours'")
    live = ps.live_rows(emb)
    cand = ps.Candidates(n)
    if method == "neighbours":
        idx, sim = neighbors if neighbors is not None else knn(emb, k=k, exact_max=exact_max, progress=progress,
                                                               cancel=cancel, device=device)
        ps.neighbour_candidates(idx, sim, threshold, cand)
    elif len(live) >= 2:
        if method == "exact":
            ps.exact_candidates(emb, live, threshold, rep, cand, max_partners=max_partners)
        else:
            ps.clustered_candidates(emb, live, threshold, rep, cand)
    rep.check()
    pairs = ps.decide(emb, cand, threshold, live)
    rep.tick(rep.total, "semantic duplicates")
    return pairs


# -- leakage -------------------------------------------------------------------------------------

@dataclass
class LeakHit:
    """A training prompt that restates a test prompt.

    ``score``: cosine of the deciding model (MiniLM in two-stage and accurate modes, the static
    model in fast mode), best over the question views; ``margin``: ``score`` minus the test
    prompt's background (what the threshold applies to); ``fast_score``: the static model's
    cosine when it was computed; ``via``: why the pair was looked at (``"embedding"`` or
    ``"numbers"``)."""

    train_index: int
    test_index: int
    score: float
    method: str = "semantic"
    margin: float = 0.0
    fast_score: Optional[float] = None
    via: str = "embedding"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LeakScan:
    """Hits plus what the scan did (for reports and the benchmark). With ``keep_all`` the scan
    also lists every pair it scored in ``scored`` (hits or not)."""

    hits: list[LeakHit]
    mode: str
    threshold: float
    candidate_pairs: int = 0
    confirmed_train: int = 0
    confirmed_test: int = 0
    truncated: int = 0
    timings: dict = field(default_factory=dict)
    scored: list[LeakHit] = field(default_factory=list)


def question_view(text: str, min_words: int = 3, max_share: float = 0.7) -> Optional[str]:
    """The last line of a prompt of several lines, when it reads as a question of its own: at
    least ``min_words`` words and at most ``max_share`` of the text. None otherwise."""
    if not text:
        return None
    stripped = text.strip()
    if "\n" not in stripped:
        return None
    lines = [ln.strip() for ln in stripped.split("\n") if ln.strip()]
    if len(lines) < 2:
        return None
    last = lines[-1]
    if len(last.split()) < min_words or len(last) > max_share * len(stripped):
        return None
    return last


def _views(texts: Sequence[str], use_views: bool) -> tuple[list[str], np.ndarray]:
    """Flattened views (full text first, then the question view when there is one) and the
    owner of each view (0-based text index, non-decreasing)."""
    out: list[str] = []
    owner: list[int] = []
    for i, t in enumerate(texts):
        out.append(t)
        owner.append(i)
        if use_views:
            q = question_view(t)
            if q is not None:
                out.append(q)
                owner.append(i)
    return out, np.asarray(owner, dtype=np.int64)


def _starts(owner: np.ndarray) -> np.ndarray:
    if owner.size == 0:
        return owner
    return np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])


def _item_sims(a: np.ndarray, a_owner_local: np.ndarray, n_a: int, b: np.ndarray,
               b_starts: np.ndarray) -> np.ndarray:
    """Cosines of items (best over views): rows = items of ``a`` (owner local, 0..n_a-1),
    columns = items of ``b`` (views grouped contiguously, group starts ``b_starts``). numpy's
    BLAS: no torch import (200 MB) for a scan that never needs the accurate model."""
    s = np.ascontiguousarray(a, dtype=np.float32) @ np.ascontiguousarray(b, dtype=np.float32).T
    if s.shape[1] != len(b_starts):
        s = np.maximum.reduceat(s, b_starts, axis=1)
    if s.shape[0] != n_a:
        out = np.full((n_a, s.shape[1]), -np.inf, dtype=np.float32)
        np.maximum.at(out, a_owner_local, s)
        s = out
    return s


def _blocks(owner: np.ndarray, n_items: int, size: int):
    """(first item, last item + 1, first row, last row + 1) of item blocks."""
    starts = _starts(owner)
    item = 0
    while item < n_items:
        stop = min(n_items, item + size)
        r0 = starts[item]
        r1 = starts[stop] if stop < n_items else owner.shape[0]
        yield item, stop, r0, r1
        item = stop


def _push_top(top: Optional[np.ndarray], block: np.ndarray, m: int) -> np.ndarray:
    """Running ``m`` largest values per column (unsorted), merging a new block of rows."""
    both = block if top is None else np.concatenate([top, block], axis=0)
    if both.shape[0] <= m:
        return both
    return np.partition(both, both.shape[0] - m, axis=0)[-m:]


def background(top: Optional[np.ndarray], k: int = BACKGROUND_K, skip: int = BACKGROUND_SKIP,
               n_cols: int = 0) -> np.ndarray:
    """Per column: mean of the values ranked ``skip+1 .. skip+k`` (missing ranks count as 0)."""
    if top is None or top.shape[0] == 0:
        return np.zeros(n_cols, dtype=np.float32)
    srt = -np.sort(-top, axis=0)
    window = srt[skip:skip + k]
    window = np.where(np.isfinite(window), window, 0.0)
    return (window.sum(axis=0) / k).astype(np.float32)


_NUM = re.compile(r"(?<![\w.])[-+]?\$?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?%?")
_NUM_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
_NUM_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70",
                   "eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000",
                   "dozen": "12"})
_WORDS = re.compile(r"[A-Za-z]+")


def numbers_of(text: str, words: bool = False) -> set[str]:
    """Distinct numbers in ``text``, normalised ("1,000" -> "1000", "2.50" -> "2.5"); with
    ``words`` also number words ("three" -> "3", up to twenty, tens, hundred, thousand, dozen)."""
    out = set()
    for m in _NUM.finditer(text or ""):
        whole = m.group(1).replace(",", "").lstrip("0") or "0"
        frac = (m.group(2) or "").rstrip("0")
        out.add(f"{whole}.{frac}" if frac else whole)
    if words:
        for w in _WORDS.findall(text or ""):
            v = _NUM_WORDS.get(w.lower())
            if v is not None:
                out.add(v)
    return out


def number_pairs(train_texts: Sequence[str], test_numbers: Sequence[set], min_shared: int = 3,
                 min_share: float = NUMBER_SHARE, max_df: float = 0.05,
                 rep: Optional[Reporter] = None) -> set[tuple[int, int]]:
    """Pairs (train, test) sharing at least ``min_shared`` numbers that are uncommon in the test
    set (in at most ``max_df`` of its prompts), which are also ``min_share`` of the test prompt's
    numbers."""
    df: dict[str, int] = {}
    for nums in test_numbers:
        for x in nums:
            df[x] = df.get(x, 0) + 1
    limit = max(2, int(max_df * max(1, len(test_numbers))))
    index: dict[str, list[int]] = {}
    for j, nums in enumerate(test_numbers):
        for x in nums:
            if df[x] <= limit:
                index.setdefault(x, []).append(j)
    out: set[tuple[int, int]] = set()
    if not index:
        return out
    # numbers_of(t, words=True), less what cannot count: number words whose value is not in the
    # index are not looked for, and a text with fewer than min_shared indexed numbers is skipped
    words = sorted((w for w, v in _NUM_WORDS.items() if v in index), key=len, reverse=True)
    find_words = re.compile(r"(?<![A-Za-z])(?:" + "|".join(words) + r")(?![A-Za-z])",
                            re.IGNORECASE | re.ASCII).findall if words else None
    need = max(1, min_shared)
    for i in _may_have_numbers(train_texts, words, need, rep):
        t = train_texts[i]
        nums = numbers_of(t)
        if find_words is not None:
            nums.update(_NUM_WORDS[w.lower()] for w in find_words(t or ""))
        found = [index[x] for x in nums if x in index]
        if len(found) < need:
            continue
        counts: dict[int, int] = {}
        for js in found:
            for j in js:
                counts[j] = counts.get(j, 0) + 1
        for j, c in counts.items():
            if c >= min_shared and c >= min_share * len(test_numbers[j]):
                out.add((i, j))
    return out


_NUMBER_CHUNK = 4096


def _may_have_numbers(texts: Sequence[str], words: list[str], need: int, rep: Reporter | None):
    """Indices of the texts that may hold ``need`` distinct numbers (digits, or the number
    ``words``), in order. A chunk of ASCII texts is sifted at once: a text has no more
    numbers than runs of digits plus occurrences of the words in its lower-cased text."""
    for lo in range(0, len(texts), _NUMBER_CHUNK):
        if rep is not None:
            rep.check()
        part = [t or "" for t in texts[lo:lo + _NUMBER_CHUNK]]
        joined = "\n".join(part) + "\n"  # every text then ends in a byte of its own
        if need <= 1 or not joined.isascii():
            yield from range(lo, lo + len(part))
            continue
        raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
        digit = (raw >= 48) & (raw <= 57)
        run = digit.copy()
        run[1:] &= ~digit[:-1]
        starts = np.zeros(len(part) + 1, dtype=np.int64)
        np.cumsum([len(t) + 1 for t in part], out=starts[1:])
        per_text = np.add.reduceat(run.astype(np.int64), starts[:-1])
        low = joined.lower()
        for w in words:
            at = low.find(w)
            while at >= 0:
                per_text[np.searchsorted(starts, at, "right") - 1] += 1
                at = low.find(w, at + 1)
        yield from (lo + np.flatnonzero(per_text >= need)).tolist()


def _numbers_agree(train_nums: set, test_nums: set, share: float = NUMBER_SHARE) -> bool:
    """False when the test prompt has two or more numbers (digits) and the training prompt
    (digits and number words) lacks more than ``1 - share`` of them."""
    if len(test_nums) < 2:
        return True
    return len(train_nums & test_nums) >= share * len(test_nums)


def _margin_pass(a_train: np.ndarray, tr_owner: np.ndarray, n_train: int, a_test: np.ndarray,
                 te_owner: np.ndarray, k: int, min_margin: float, rep: Reporter, label: str,
                 extra_top: np.ndarray | None = None,
                 ) -> tuple[dict[tuple[int, int], tuple[float, float]], np.ndarray]:
    """Each training prompt's ``k`` test prompts with the best margin, kept when the margin
    reaches ``min_margin`` or the cosine :data:`ABSOLUTE_HIT`, in one pass over the training
    prompts. ``extra_top``: more rows of the background pool (the test prompts' own neighbours,
    see :func:`test_neighbours`). Returns ``{(i, j): (cosine, margin)}`` and the backgrounds.

    A column's background only grows as rows are added, so a margin against the background so
    far is an upper bound of the final one: every pair that can pass is kept as a candidate
    (with its cosine, bit for bit the one a second pass would compute) and decided against the
    final background at the end (:func:`_pick_top`). Ties at a row's ``k``-th margin go to the
    lower test index. ``min_margin = -inf`` (every row's ``k`` best) takes
    :func:`_margin_pass_two`."""
    if not np.isfinite(min_margin):
        return _margin_pass_two(a_train, tr_owner, n_train, a_test, te_owner, k, min_margin, rep, label,
                                extra_top=extra_top)
    te_starts = _starts(te_owner)
    n_test = len(te_starts)
    m = BACKGROUND_SKIP + BACKGROUND_K
    top = _TopM(m, n_test, extra_top)
    rep.total = n_train
    ci: list[np.ndarray] = []
    cj: list[np.ndarray] = []
    cv: list[np.ndarray] = []
    rows_kept: dict[int, np.ndarray] = {}  # full rows of items with a cosine >= ABSOLUTE_HIT
    row_budget = _KEEP_ROWS_BYTES // (4 * max(1, n_test))
    blocks = list(_blocks(tr_owner, n_train, _BLOCK))
    for i0, i1, r0, r1 in blocks:
        s = _item_sims(a_train[r0:r1], tr_owner[r0:r1] - i0, i1 - i0, a_test, te_starts)
        r, c, v = top.push(s, min_margin)
        ci.append(r + i0)
        cj.append(c)
        cv.append(v)
        absolute = np.unique(r[v >= ABSOLUTE_HIT])
        for x in absolute.tolist():
            if len(rows_kept) < row_budget:
                rows_kept[i0 + x] = s[x].copy()
        rep.tick(i1, label)
    bg = background(top.top, n_cols=n_test)
    ci_a, cj_a, cv_a = (np.concatenate(x) for x in (ci, cj, cv))

    def full_rows(items: list[int]) -> dict[int, np.ndarray]:
        """The cosine rows of ``items`` (kept, or computed again block by block as before)."""
        out = {i: rows_kept[i] for i in items if i in rows_kept}
        missing = sorted(set(items) - set(out))
        for i0, i1, r0, r1 in blocks:
            here = [i for i in missing if i0 <= i < i1]
            if here:
                rep.check()
                s = _item_sims(a_train[r0:r1], tr_owner[r0:r1] - i0, i1 - i0, a_test, te_starts)
                out.update({i: s[i - i0].copy() for i in here})
        return out

    return _pick_top(ci_a, cj_a, cv_a, bg, min(k, n_test), n_test, min_margin, full_rows), bg


class _TopM:
    """Running ``m`` largest values per column (unsorted, ``-inf`` where fewer), and the
    candidate pairs of a block against the background so far (a lower bound of the final one)."""

    def __init__(self, m: int, n_cols: int, extra_top: np.ndarray | None) -> None:
        self.m = m
        self.top = np.full((m, n_cols), -np.inf, dtype=np.float32)
        if extra_top is not None and extra_top.shape[0]:
            self.top = _push_top(self.top, np.asarray(extra_top, dtype=np.float32), m)
        self._refresh()

    def _refresh(self, cols: np.ndarray | None = None) -> None:
        if cols is None:
            self.low = self.top.min(axis=0)
        else:
            self.low[cols] = self.top[:, cols].min(axis=0)
        self.bg = _background_floor(self.top)

    def push(self, s: np.ndarray, min_margin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Merges block ``s`` and returns its candidates (row, col, cosine): a margin against the
        background so far >= ``min_margin``, or a cosine >= ABSOLUTE_HIT."""
        if not np.isfinite(self.low).all():  # a column not yet full: merge the whole block
            self.top = _push_top(self.top, s, self.m)
            self._refresh()
            r, c = _nonzero(((s - self.bg[None, :]) >= min_margin) | (s >= ABSOLUTE_HIT))
            return r, c, s[r, c]
        # only values above a column's m-th best change it, and only values near or above
        # background + min_margin can be candidates: one comparison with the lower of the two
        # (a little below, so rounding cannot lose a candidate)
        near = np.minimum(self.bg.astype(np.float64) + min_margin, ABSOLUTE_HIT) - 1e-4
        bound = np.minimum(self.low, near.astype(np.float32))
        r, c = _nonzero(s >= bound[None, :])
        v = s[r, c]
        bg = self.bg
        cand = ((v - bg[c]) >= min_margin) | (v >= ABSOLUTE_HIT)
        up = v > self.low[c]
        if up.any():
            self._merge(c[up], v[up])
        return r[cand], c[cand], v[cand]

    def _merge(self, cols: np.ndarray, vals: np.ndarray) -> None:
        uc, inv = np.unique(cols, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        inv, vals = inv[order], vals[order]
        cnt = np.bincount(inv, minlength=len(uc))
        first = np.concatenate(([0], np.cumsum(cnt)[:-1]))
        pad = np.full((int(cnt.max()), len(uc)), -np.inf, dtype=np.float32)
        pad[np.arange(len(inv)) - first[inv], inv] = vals
        both = np.concatenate([self.top[:, uc], pad], axis=0)
        self.top[:, uc] = np.partition(both, both.shape[0] - self.m, axis=0)[-self.m:]
        self._refresh(uc)


def _nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a 2-d mask (through the flat indices: many times faster when few are set)."""
    f = np.flatnonzero(mask)
    return f // mask.shape[1], f % mask.shape[1]


def _background_floor(top: np.ndarray, k: int = BACKGROUND_K, skip: int = BACKGROUND_SKIP) -> np.ndarray:
    """:func:`background` where it cannot drop any more as values are added (every rank of the
    window filled), ``-inf`` elsewhere (a missing rank counts as 0, more than a cosine can be)."""
    out = background(top, k, skip, n_cols=top.shape[1])
    srt = -np.sort(-top, axis=0)
    out[~np.isfinite(srt[skip:skip + k]).all(axis=0)] = -np.inf
    return out


def _pick_top(ci: np.ndarray, cj: np.ndarray, cv: np.ndarray, bg: np.ndarray, kk: int, n_test: int,
              min_margin: float, full_rows) -> dict[tuple[int, int], tuple[float, float]]:
    """From candidates (item ``ci``, column ``cj``, cosine ``cv``) and the final backgrounds:
    the pairs whose column is among the row's ``kk`` best margins (ties: lower column first)
    and whose margin reaches ``min_margin`` or cosine ABSOLUTE_HIT. Every column of a row with a
    margin >= ``min_margin`` is a candidate; a candidate there only by its cosine needs its
    row's other margins, which ``full_rows(items)`` gives (rare)."""
    marg = cv - bg[cj]
    good = marg >= min_margin
    absolute = ~good & (cv >= ABSOLUTE_HIT)
    if kk >= n_test:
        keep = np.flatnonzero(good | absolute)
    else:
        g = np.flatnonzero(good)
        g = g[np.lexsort((cj[g], -marg[g], ci[g]))]
        row = ci[g]
        new_row = np.r_[True, row[1:] != row[:-1]] if len(row) else np.zeros(0, dtype=bool)
        starts = np.flatnonzero(new_row)
        rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
        keep_parts = [g[rank < kk]]
        a = np.flatnonzero(absolute)
        if len(a):
            n_good = dict(zip(row[starts].tolist(), np.diff(np.r_[starts, len(g)]).tolist()))
            a = a[[n_good.get(i, 0) < kk for i in ci[a].tolist()]]
        if len(a):
            rows = full_rows(sorted(set(ci[a].tolist())))
            cols = np.arange(n_test)
            sel = []
            for e in a.tolist():
                fm = rows[int(ci[e])] - bg
                mc = fm[cj[e]]
                ahead = np.count_nonzero(fm > mc) + np.count_nonzero((fm == mc) & (cols < cj[e]))
                if ahead < kk:
                    sel.append(e)
            keep_parts.append(np.asarray(sel, dtype=np.int64))
        keep = np.concatenate(keep_parts)
    keep = keep[np.lexsort((cj[keep], ci[keep]))]
    return {(int(i), int(j)): (float(v), float(mg))
            for i, j, v, mg in zip(ci[keep].tolist(), cj[keep].tolist(), cv[keep].tolist(), marg[keep].tolist())}


def _margin_pass_two(a_train: np.ndarray, tr_owner: np.ndarray, n_train: int, a_test: np.ndarray,
                     te_owner: np.ndarray, k: int, min_margin: float, rep: Reporter, label: str,
                     extra_top: Optional[np.ndarray] = None,
                     ) -> tuple[dict[tuple[int, int], tuple[float, float]], np.ndarray]:
    """Two passes over the training prompts: the background of every test prompt, then each
    training prompt's ``k`` test prompts with the best margin (>= ``min_margin``, or
    a cosine >= ABSOLUTE_HIT; ties at the ``k``-th margin as ``np.argpartition`` leaves them).
    ``extra_top``: more rows of the background pool (the test prompts' own neighbours, see
    :func:`test_neighbours`). Returns ``{(i, j): (cosine, margin)}`` and the backgrounds."""
    te_starts = _starts(te_owner)
    n_test = len(te_starts)
    m = BACKGROUND_SKIP + BACKGROUND_K
    top = extra_top
    rep.total = 2 * n_train
    for i0, i1, r0, r1 in _blocks(tr_owner, n_train, _BLOCK):
        s = _item_sims(a_train[r0:r1], tr_owner[r0:r1] - i0, i1 - i0, a_test, te_starts)
        top = _push_top(top, s, m)
        rep.tick(i1, label)
    bg = background(top, n_cols=n_test)
    out: dict[tuple[int, int], tuple[float, float]] = {}
    kk = min(k, n_test)
    for i0, i1, r0, r1 in _blocks(tr_owner, n_train, _BLOCK):
        s = _item_sims(a_train[r0:r1], tr_owner[r0:r1] - i0, i1 - i0, a_test, te_starts)
        marg = s - bg[None, :]
        if kk < n_test:
            best = np.argpartition(-marg, kk - 1, axis=1)[:, :kk]
        else:
            best = np.broadcast_to(np.arange(n_test), (s.shape[0], n_test))
        vals = np.take_along_axis(marg, best, axis=1)
        raw = np.take_along_axis(s, best, axis=1)
        rows, cols = np.nonzero((vals >= min_margin) | (raw >= ABSOLUTE_HIT))
        for r, c in zip(rows.tolist(), cols.tolist()):
            out[(i0 + r, int(best[r, c]))] = (float(raw[r, c]), float(vals[r, c]))
        rep.tick(n_train + i1, label)
    return out, bg


def test_neighbours(a_test: np.ndarray, te_owner: np.ndarray, items: Optional[Sequence[int]] = None,
                    cancel: Optional[CancelCheck] = None) -> np.ndarray:
    """For each test prompt of ``items`` (default all): its cosines with its
    ``BACKGROUND_SKIP + BACKGROUND_K`` most similar *other* test prompts (best over question
    views), as a (13, len(items)) array of rows to merge into a background (-inf where there
    are fewer other prompts)."""
    te_starts = _starts(te_owner)
    n_test = len(te_starts)
    items = list(range(n_test)) if items is None else list(items)
    m = BACKGROUND_SKIP + BACKGROUND_K
    out = np.full((m, len(items)), -np.inf, dtype=np.float32)
    if n_test < 2 or not items:
        return out
    ends = np.r_[te_starts[1:], len(te_owner)]
    rep = Reporter(None, cancel)
    step = max(1, min(_BLOCK, (16 * 1024 * 1024) // max(1, n_test)))
    for s0 in range(0, len(items), step):
        rep.check()
        block = items[s0:s0 + step]
        rows = np.concatenate([np.arange(te_starts[j], ends[j]) for j in block])
        local = np.repeat(np.arange(len(block)), [ends[j] - te_starts[j] for j in block])
        sims = _item_sims(a_test[rows], local, len(block), a_test, te_starts)  # (block, n_test)
        sims[np.arange(len(block)), block] = -np.inf  # not itself
        top = _push_top(None, sims.T, m)
        out[m - top.shape[0]:, s0:s0 + len(block)] = top
    return out


def _phase(progress: Optional[ProgressCallback], lo: int, hi: int, message: str,
           total: int = 1000) -> Optional[ProgressCallback]:
    """Maps a phase's own (done, n) onto [lo, hi] of one 0..``total`` scale, with ``message``."""
    if progress is None:
        return None

    def sub(done: int, n: int, inner: str = "") -> None:
        frac = min(1.0, done / n) if n else 0.0
        # a wait the phase's own message does not name (loading a model) is passed on
        progress(lo + int((hi - lo) * frac), total, inner if inner.startswith("loading") else message)

    return sub


def semantic_leak_scan(
    train_prompts: Sequence[str],
    test_prompts: Sequence[str],
    mode: str = "two-stage",
    fast_model: str = FAST,
    accurate_model: str = ACCURATE,
    threshold: Optional[float] = None,
    min_score: Optional[float] = None,
    shortlist_k: int = SHORTLIST_K,
    shortlist_threshold: float = SHORTLIST_THRESHOLD,
    numbers: bool = True,
    views: bool = True,
    max_confirm: Optional[int] = MAX_CONFIRM,
    train_emb_fast: Optional[np.ndarray] = None,
    test_emb_fast: Optional[np.ndarray] = None,
    cache: Optional[EmbeddingCache] = None,
    device: Optional[str] = None,
    keep_all: bool = False,
    confirm_max_tokens: Optional[int] = CONFIRM_MAX_TOKENS,
    test_side: Optional[bool] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
) -> LeakScan:
    """:func:`semantic_leaks` with the scan's statistics (see :class:`LeakScan`).

    ``test_side``: put the other test prompts into the background pool (default: in two-stage
    mode, whose threshold was calibrated that way; the fast and accurate thresholds were
    calibrated on training prompts alone).

    Progress is one monotone 0..1000 scale over the phases (embedding, shortlist, confirmation),
    each named in the message."""
    import time

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    train_prompts = [t or "" for t in train_prompts]
    test_prompts = [t or "" for t in test_prompts]
    n_train, n_test = len(train_prompts), len(test_prompts)
    decide_model = fast_model if mode == "fast" else accurate_model
    if test_side is None:
        test_side = mode == "two-stage"
    if threshold is None:
        table = TWO_STAGE_THRESHOLD if mode == "two-stage" else LEAK_THRESHOLD
        if decide_model not in table:
            raise ValueError(f"no calibrated threshold for model {decide_model!r}: pass threshold=")
        threshold = table[decide_model]
    if min_score is None:
        min_score = RAW_FLOOR.get(decide_model, -1.0)
    floor = float(min_score)

    def is_hit(raw: float, marg: float) -> bool:
        return raw >= ABSOLUTE_HIT or (raw >= floor and marg >= threshold)

    rep = Reporter(None, cancel)
    rep.check()
    scan = LeakScan([], mode, float(threshold))
    if n_train == 0 or n_test == 0:
        if progress is not None:
            progress(1000, 1000, "semantic leakage: nothing to compare")
        return scan
    timings = scan.timings
    t0 = time.perf_counter()

    tr_views, tr_owner = _views(train_prompts, views)
    te_views, te_owner = _views(test_prompts, views)
    first_model = accurate_model if mode == "accurate" else fast_model
    # phases on one 0..1000 scale
    if mode == "two-stage":
        cut = {"train": (0, 250), "test": (250, 300), "compare": (300, 550), "numbers": (550, 600),
               "acc_test": (600, 800), "acc_train": (800, 980)}
    else:
        cut = {"train": (0, 600), "test": (600, 700), "compare": (700, 1000)}

    def first_pass(views_list: list[str], owner: np.ndarray, n: int, pre: Optional[np.ndarray],
                   label: str, phase: str) -> np.ndarray:
        sub = _phase(progress, *cut[phase], f"embedding the {label} prompts ({first_model})")
        if pre is not None and mode != "accurate":
            pre = np.asarray(pre, dtype=np.float32)
            if pre.shape[0] != n:
                raise ValueError(f"{label} embeddings: {pre.shape[0]} rows for {n} texts")
            extra = np.zeros(len(views_list), dtype=bool)
            extra[1:] = owner[1:] == owner[:-1]
            if not extra.any():  # no question views: the given vectors as they are (no copy)
                if sub is not None:
                    sub(1, 1)
                return np.ascontiguousarray(pre)
            out = np.empty((len(views_list), pre.shape[1]), dtype=np.float32)
            out[~extra] = pre
            if extra.any():
                rows = np.flatnonzero(extra)
                out[rows] = embed([views_list[r] for r in rows], first_model, cache=cache,
                                  device=device, progress=sub, cancel=cancel)
            elif sub is not None:
                sub(1, 1)
            return out
        return embed(views_list, first_model, cache=cache, device=device, progress=sub, cancel=cancel)

    a_train = first_pass(tr_views, tr_owner, n_train, train_emb_fast, "training", "train")
    a_test = first_pass(te_views, te_owner, n_test, test_emb_fast, "test", "test")
    timings["embed_first"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    if mode in ("fast", "accurate"):
        own = test_neighbours(a_test, te_owner, cancel=cancel) if test_side else None
        cmp = Reporter(_phase(progress, *cut["compare"], "comparing prompts"), cancel, every=1)
        pairs, _bg = _margin_pass(a_train, tr_owner, n_train, a_test, te_owner, shortlist_k,
                                  -np.inf if keep_all else threshold, cmp, "comparing prompts",
                                  extra_top=own)
        scan.candidate_pairs = len(pairs)
        for (i, j), (raw, marg) in pairs.items():
            hit = LeakHit(i, j, raw, margin=marg, fast_score=raw if mode == "fast" else None)
            if keep_all:
                scan.scored.append(hit)
            if is_hit(raw, marg):
                scan.hits.append(hit)
        timings["compare"] = time.perf_counter() - t1
        scan.hits.sort(key=lambda h: (-h.margin, h.train_index, h.test_index))
        timings["total"] = time.perf_counter() - t0
        if progress is not None:
            progress(1000, 1000, "semantic leakage done")
        return scan

    # -- two-stage: shortlist with the fast model (and numbers) ----------------------------------
    cmp = Reporter(_phase(progress, *cut["compare"], "shortlisting pairs"), cancel, every=1)
    pairs, _bg = _margin_pass(a_train, tr_owner, n_train, a_test, te_owner, shortlist_k,
                              shortlist_threshold, cmp, "shortlisting pairs")
    nums = Reporter(_phase(progress, *cut["numbers"], "matching numbers"), cancel, total=1, every=1)
    test_nums = [numbers_of(question_view(t) or t) for t in test_prompts]
    via: dict[tuple[int, int], str] = {}
    train_nums: dict[int, set] = {}
    for (i, j) in pairs:
        if i not in train_nums:
            train_nums[i] = numbers_of(train_prompts[i], words=True)
        if _numbers_agree(train_nums[i], test_nums[j]):
            via[(i, j)] = "embedding"
    if numbers:
        for p in number_pairs(train_prompts, test_nums, rep=nums):
            via.setdefault(p, "numbers")
    nums.tick(1, "matching numbers")
    timings["shortlist"] = time.perf_counter() - t1
    cand = list(via)
    scan.candidate_pairs = len(cand)
    if max_confirm is not None:
        best: dict[int, float] = {}
        for (i, j) in cand:
            best[i] = max(best.get(i, -np.inf), pairs.get((i, j), (0.0, 0.0))[1])
        if len(best) > max_confirm:
            keep = set(sorted(best, key=lambda i: (-best[i], i))[:max_confirm])
            scan.truncated = len(best) - len(keep)
            cand = [p for p in cand if p[0] in keep]
    if not cand:
        timings["total"] = time.perf_counter() - t0
        if progress is not None:
            progress(1000, 1000, "semantic leakage done")
        return scan

    # -- confirm with the accurate model ---------------------------------------------------------
    # The test prompts are embedded whole (the test-side background needs them all; they are
    # cached), the training prompts only where shortlisted.
    t2 = time.perf_counter()
    train_items = sorted({i for i, _ in cand})
    test_items = sorted({j for _, j in cand})
    scan.confirmed_train = len(train_items)
    scan.confirmed_test = n_test if test_side else len(test_items)
    tr_sel, tr_sel_owner = _views([train_prompts[i] for i in train_items], views)
    if test_side:
        te_sel, te_sel_owner, te_cols = te_views, te_owner, test_items
    else:
        te_sel, te_sel_owner = _views([test_prompts[j] for j in test_items], views)
        te_cols = list(range(len(test_items)))
    rep.check()
    b_test = embed(te_sel, accurate_model, cache=cache, device=device, max_tokens=confirm_max_tokens,
                   progress=_phase(progress, *cut["acc_test"], f"embedding the test prompts ({accurate_model})"),
                   cancel=cancel)
    b_train = embed(tr_sel, accurate_model, cache=cache, device=device, max_tokens=confirm_max_tokens,
                    progress=_phase(progress, *cut["acc_train"],
                                    f"embedding {len(train_items):,} shortlisted training prompts ({accurate_model})"),
                    cancel=cancel)
    timings["embed_accurate"] = time.perf_counter() - t2
    if progress is not None:
        progress(980, 1000, "scoring pairs")
    te_starts = _starts(te_sel_owner)
    m = BACKGROUND_SKIP + BACKGROUND_K
    top = test_neighbours(b_test, te_sel_owner, test_items, cancel=cancel) if test_side else None
    sims_blocks = []
    for i0, i1, r0, r1 in _blocks(tr_sel_owner, len(train_items), _BLOCK):
        s = _item_sims(b_train[r0:r1], tr_sel_owner[r0:r1] - i0, i1 - i0, b_test, te_starts)[:, te_cols]
        top = _push_top(top, s, m)
        sims_blocks.append(s)
    bg = background(top, n_cols=len(test_items))
    sims = np.concatenate(sims_blocks, axis=0)
    tr_pos = {i: p for p, i in enumerate(train_items)}
    te_pos = {j: p for p, j in enumerate(test_items)}
    for (i, j) in cand:
        a, b = tr_pos[i], te_pos[j]
        raw = float(sims[a, b])
        marg = raw - float(bg[b])
        fs = pairs.get((i, j))
        hit = LeakHit(i, j, raw, margin=marg, fast_score=None if fs is None else fs[0], via=via[(i, j)])
        if keep_all:
            scan.scored.append(hit)
        if is_hit(raw, marg):
            scan.hits.append(hit)
    scan.hits.sort(key=lambda h: (-h.margin, h.train_index, h.test_index))
    if progress is not None:
        progress(1000, 1000, "semantic leakage done")
    timings["total"] = time.perf_counter() - t0
    return scan


def semantic_leaks(
    train_prompts: Sequence[str],
    test_prompts: Sequence[str],
    mode: str = "two-stage",
    fast_model: str = FAST,
    accurate_model: str = ACCURATE,
    threshold: Optional[float] = None,
    min_score: Optional[float] = None,
    shortlist_k: int = SHORTLIST_K,
    shortlist_threshold: float = SHORTLIST_THRESHOLD,
    numbers: bool = True,
    views: bool = True,
    max_confirm: Optional[int] = MAX_CONFIRM,
    train_emb_fast: Optional[np.ndarray] = None,
    test_emb_fast: Optional[np.ndarray] = None,
    cache: Optional[EmbeddingCache] = None,
    device: Optional[str] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
) -> list[LeakHit]:
    """Training prompts that restate test prompts: :class:`LeakHit` list, highest margin first
    (a training prompt may match more than one test prompt).

    ``mode``: ``"two-stage"`` (default), ``"fast"`` or ``"accurate"`` (see the module docs).
    ``threshold``: the margin a pair needs (default: calibrated for the built-in models,
    :data:`TWO_STAGE_THRESHOLD` / :data:`LEAK_THRESHOLD`); ``min_score``: the raw cosine a hit
    needs as well (default :data:`RAW_FLOOR` of the deciding model, else no floor).
    ``shortlist_k`` / ``shortlist_threshold``: test prompts proposed per training prompt by the
    fast model and the fast margin they need (two-stage); in fast and accurate modes a training
    prompt is compared with its ``shortlist_k`` best test prompts.
    ``numbers``: the number rules of the two-stage shortlist (see the module docs).
    ``views``: also compare the question line of multi-line prompts.
    ``max_confirm``: at most this many training prompts go to the accurate model (those with
    the best fast margins; ``None``: no limit), bounding the time on data that is all on the test
    set's topic. ``train_emb_fast`` / ``test_emb_fast``: static-model embeddings of the full
    prompts already computed (e.g. by the outlier scan). Pass the user turns (not a shared system
    prompt) as prompts. Raises :class:`Cancelled` when cancelled.
    """
    return semantic_leak_scan(train_prompts, test_prompts, mode=mode, fast_model=fast_model,
                              accurate_model=accurate_model, threshold=threshold,
                              min_score=min_score, shortlist_k=shortlist_k, shortlist_threshold=shortlist_threshold,
                              numbers=numbers, views=views, max_confirm=max_confirm,
                              train_emb_fast=train_emb_fast, test_emb_fast=test_emb_fast, cache=cache,
                              device=device, progress=progress, cancel=cancel).hits


__all__ = ["DUPLICATE_THRESHOLD", "LEAK_THRESHOLD", "TWO_STAGE_THRESHOLD", "SHORTLIST_THRESHOLD",
           "SHORTLIST_K", "ABSOLUTE_HIT", "RAW_FLOOR", "CONFIRM_MAX_TOKENS", "MAX_CONFIRM", "MODES", "LeakHit", "LeakScan", "Cancelled",
           "background", "numbers_of", "number_pairs", "question_view", "semantic_duplicates", "test_neighbours",
           "semantic_leaks", "semantic_leak_scan"]
