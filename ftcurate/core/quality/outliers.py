"""Outlier scores: records far from every other record, and records of unusual length.

Both use the same robust cut-off (Tukey's fences): with Q1 and Q3 the quartiles of the scores
and IQR = Q3 - Q1, a record is flagged when its score is above ``Q3 + iqr_factor * IQR``
(1.5 by default; 3 keeps only "far out" values). Quartiles do not move when a few records are
extreme, unlike a mean and standard deviation.

* :func:`knn_outliers`: the score of a record is the mean cosine *distance* (1 - cosine) to its
  ``k`` (10) nearest other records. Records in a dense topic score low, a lone record on another
  topic scores high. Empty texts (zero vectors) score 1.
* :func:`length_outliers`: the score is ``log(1 + length)`` of a length you choose (characters,
  words, tokens: :func:`text_lengths`); lengths spread over orders of magnitude, so the fences are
  set on the log scale. Flags both too long (above ``Q3 + f*IQR``) and too short (below
  ``Q1 - f*IQR``) unless ``side`` says otherwise.

When the IQR is 0 (most scores equal) the fence collapses onto Q3; a small floor keeps tiny
floating-point differences from being flagged (``min_gap``).

*A list a reviewer can read.* On a large set of similar records the scores are right-skewed and
the fence alone flags a share that grows with the set (939 of 50k, 4,773 of 200k uniform GSM8K-like
records: 2.4%). :func:`outlier_cutoff` therefore also caps the flagged records at ``max_share``
of the set (1% in the scan), never fewer than ``min_count`` (20): the cut-off is the higher of
the fence and the score of the last record within the cap. Planted off-topic records sit at the
very top of the ranking, so the cap keeps them (benchmarks/bench_outliers.py); the Outliers view
shows the score distribution and lets the reviewer move the cut-off to list more.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from .neighbors import EXACT_MAX, knn
from ..progress import CancelCheck, Cancelled, ProgressCallback


@dataclass
class OutlierResult:
    """``scores``: one per record (higher = more unusual, for lengths: log length).
    ``cutoff``: scores above it are flagged; ``low_cutoff``: scores below it are flagged
    (length only, else None). ``flagged``: 0-based indices, most extreme first."""

    scores: np.ndarray
    cutoff: float
    flagged: list[int] = field(default_factory=list)
    low_cutoff: Optional[float] = None
    q1: float = 0.0
    q3: float = 0.0
    fence: Optional[float] = None  # the IQR fence alone (``cutoff`` is higher when a cap applies)

    def to_dict(self) -> dict:
        return {"cutoff": float(self.cutoff), "low_cutoff": None if self.low_cutoff is None else float(self.low_cutoff),
                "q1": float(self.q1), "q3": float(self.q3), "flagged": list(self.flagged),
                "fence": None if self.fence is None else float(self.fence),
                "scores": [float(s) for s in self.scores]}


def iqr_fences(scores: np.ndarray, iqr_factor: float = 1.5, min_gap: float = 0.0) -> tuple[float, float, float, float]:
    """``(low, high, q1, q3)``: Tukey's fences ``Q1 - f*IQR`` and ``Q3 + f*IQR``.

    The fences are at least ``min_gap`` away from the quartiles."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("-inf"), float("inf"), 0.0, 0.0
    q1, q3 = np.percentile(s, [25, 75])
    gap = max(iqr_factor * (q3 - q1), min_gap)
    return float(q1 - gap), float(q3 + gap), float(q1), float(q3)


def outlier_cutoff(scores: np.ndarray, iqr_factor: float = 1.5, max_share: Optional[float] = None,
                   min_count: int = 0, min_gap: float = 1e-6) -> tuple[float, float, list[int]]:
    """``(cutoff, fence, flagged)`` for outlier ``scores`` (higher = more unusual).

    ``fence``: Tukey's upper fence ``Q3 + iqr_factor * IQR``. Records above it are flagged, but
    at most ``max(ceil(max_share * n), min_count)`` of them (the highest; ``max_share`` None: no
    cap); ``cutoff`` is the fence, or the score just below the last record kept when the cap
    applies. ``flagged``: 0-based indices, highest score first."""
    s = np.asarray(scores, dtype=np.float64)
    _low, fence, _q1, _q3 = iqr_fences(s, iqr_factor, min_gap=min_gap)
    order = np.argsort(-s, kind="stable")
    above = order[s[order] > fence]
    cutoff = fence
    if max_share is not None and len(above):
        cap = max(int(math.ceil(float(max_share) * len(s))), int(min_count))
        if len(above) > cap:
            above = above[:cap]
            # the first score left out is the cut-off (ties with it are left out too)
            cutoff = float(s[order[cap]])
            above = above[s[above] > cutoff]
    return float(cutoff), float(fence), [int(i) for i in above]


def knn_outliers(
    emb: np.ndarray,
    k: int = 10,
    iqr_factor: float = 1.5,
    exact_max: int = EXACT_MAX,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
    neighbors: Optional[tuple[np.ndarray, np.ndarray]] = None,
    max_share: Optional[float] = None,
    min_count: int = 0,
    refine: Optional[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = None,
) -> OutlierResult:
    """Score every row of ``emb`` (L2-normalised) by its mean cosine distance to its ``k``
    nearest other rows; flag scores above ``Q3 + iqr_factor * IQR``, at most ``max_share`` of
    the rows (never capped below ``min_count``; see :func:`outlier_cutoff`).

    ``neighbors``: an ``(idx, sim)`` pair already computed by :func:`knn` (with at least ``k``
    columns) to reuse. Fewer than ``k + 1`` rows: ``k`` shrinks to ``n - 1``; fewer than 3 rows:
    nothing is flagged.

    ``refine``: when ``neighbors`` came from an approximate search, a function giving better
    ``(idx, sim)`` lists for given rows (:meth:`~.neighbors.Neighbours.refine`). An approximate
    list can only miss neighbours, so its score is an upper bound of the true score; the rows
    that could be flagged are searched again, highest bound first, until no row left unrefined
    can reach the flagged list (:func:`_refine_top`). The flagged list is then that of the
    refined search (exact search when affordable) at the cost of a few percent of the rows.
    The quartiles of the IQR fence come from the scores as they are after refining (most of them
    from the first search): when the fence rather than the cap sets the cut-off, the list can
    still differ slightly from an exact search's.
    """
    emb = np.asarray(emb, dtype=np.float32)
    n = emb.shape[0]
    if n < 3:
        return OutlierResult(np.zeros(n, dtype=np.float32), float("inf"), [])
    kk = max(1, min(k, n - 1))
    if neighbors is None:
        _idx, sim = knn(emb, k=kk, exact_max=exact_max, progress=progress, cancel=cancel)
    else:
        sim = np.asarray(neighbors[1])[:, :kk]
    empty = ~np.any(emb, axis=1)
    scores = _mean_distance(sim)
    scores[empty] = 1.0
    if refine is not None:
        _refine_top(scores, empty, kk, iqr_factor, max_share, min_count, refine, cancel)
    _low, _high, q1, q3 = iqr_fences(scores, iqr_factor, min_gap=1e-6)
    cutoff, fence, flagged = outlier_cutoff(scores, iqr_factor, max_share, min_count)
    return OutlierResult(scores, cutoff, flagged, None, q1, q3, fence)


def _mean_distance(sim: np.ndarray) -> np.ndarray:
    sim = np.where(np.isfinite(sim), sim, 0.0)
    return (1.0 - sim.mean(axis=1)).astype(np.float32)


# Rows refined in one round, as a multiple of the flagged list's length, and the most rounds.
_REFINE_FIRST = 1.5
_REFINE_ROUNDS = 8


def _refine_top(scores: np.ndarray, empty: np.ndarray, k: int, iqr_factor: float,
                max_share: Optional[float], min_count: int,
                refine: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                cancel: Optional[CancelCheck]) -> int:
    """Replace the upper-bound ``scores`` of the rows that could be flagged by refined ones, in
    place; returns how many rows were refined.

    Rows are taken by decreasing bound. After each round the threshold ``t`` is the score a row
    needs to be flagged (the fence, or the score of the last row within the cap among the rows
    refined so far, whichever is higher); a row whose bound is not above ``t`` cannot be flagged
    (its true score is at most its bound), so the search stops at the first such row (or after
    ``_REFINE_ROUNDS`` rounds)."""
    n = len(scores)
    _low, fence, _q1, _q3 = iqr_fences(scores, iqr_factor, min_gap=1e-6)
    cap = n if max_share is None else min(n, max(int(math.ceil(float(max_share) * n)), int(min_count)))
    order = np.argsort(-scores, kind="stable")
    order = order[~empty[order]]  # empty texts score 1 whatever their neighbours
    done = 0
    batch = max(1, int(math.ceil(_REFINE_FIRST * min(cap, int(np.sum(scores > fence))))))
    for _round in range(_REFINE_ROUNDS):
        if done >= len(order) or scores[order[done]] <= fence:
            break
        rows = order[done:done + batch]
        rows = rows[scores[rows] > fence]
        if cancel is not None and cancel():
            raise Cancelled()
        _idx, sim = refine(rows)
        scores[rows] = np.minimum(scores[rows], _mean_distance(np.asarray(sim)[:, :k]))
        done += len(rows)
        refined = np.sort(scores[order[:done]])[::-1]
        t = max(fence, float(refined[cap - 1]) if len(refined) >= cap else fence)
        if done >= len(order) or scores[order[done]] <= t:
            break
        batch = min(batch, int(np.sum(scores[order[done:]] > t)))
    return done


def length_outliers(
    lengths: Sequence[float] | np.ndarray,
    iqr_factor: float = 1.5,
    side: str = "both",
) -> OutlierResult:
    """Flag lengths far from the rest on a log scale: ``score = log(1 + length)``, flagged when
    above ``Q3 + f*IQR`` (``side`` "both" or "high") or below ``Q1 - f*IQR`` ("both" or "low").

    ``flagged`` lists the too-long ones first (longest first), then the too-short ones
    (shortest first).
    """
    if side not in ("both", "high", "low"):
        raise ValueError("side must be 'both', 'high' or 'low'")
    x = np.asarray(lengths, dtype=np.float64)
    scores = np.log1p(np.maximum(x, 0.0)).astype(np.float32)
    if scores.size < 3:
        return OutlierResult(scores, float("inf"), [], float("-inf"))
    # A 1% change of length is not an outlier even when the IQR is 0.
    low, high, q1, q3 = iqr_fences(scores, iqr_factor, min_gap=0.01)
    order = np.argsort(-scores, kind="stable")
    flagged: list[int] = []
    if side in ("both", "high"):
        flagged += [int(i) for i in order if scores[i] > high]
    if side in ("both", "low"):
        flagged += [int(i) for i in order[::-1] if scores[i] < low]
    return OutlierResult(scores, high, flagged, low if side != "high" else None, q1, q3)


_WORD = re.compile(r"\S+")


def text_lengths(texts: Iterable[str], unit: str = "words") -> np.ndarray:
    """Lengths of ``texts`` in ``"chars"``, ``"words"`` (runs of non-space) or ``"tokens"``
    (tokens of the built-in fast model's Llama-2 tokenizer, a stand-in for LLM tokens)."""
    texts = list(texts)
    if unit == "chars":
        return np.array([len(t) for t in texts], dtype=np.int64)
    if unit == "words":
        return np.array([len(_WORD.findall(t)) for t in texts], dtype=np.int64)
    if unit == "tokens":
        from tokenizers import Tokenizer

        from .embeddings import model_info

        tok = Tokenizer.from_file(model_info("static-wordllama")["tokenizer"])
        tok.no_padding()
        tok.no_truncation()
        out = np.zeros(len(texts), dtype=np.int64)
        step = 4096
        for start in range(0, len(texts), step):
            enc = tok.encode_batch(texts[start:start + step], add_special_tokens=False)
            out[start:start + len(enc)] = [len(e.ids) for e in enc]
        return out
    raise ValueError("unit must be 'chars', 'words' or 'tokens'")
