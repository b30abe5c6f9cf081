"""Pairs of rows whose cosine reaches a threshold (semantic duplicates), without a top-k.

Rows are L2-normalised embeddings; zero rows (empty texts) never pair. Three ways to find the
candidates, one way to decide:

* :func:`exact_candidates`: every pair, in blocks of rows times the rows after them (float32
  BLAS on every core); each block keeps the entries that reach the threshold (``np.nonzero``,
  no sort), so memory stays at one block whatever the size.
* :func:`clustered_candidates`: spherical k-means on a sample cuts the rows into about
  ``sqrt(probes * n)`` clusters; every row is compared, exactly, with the members of the
  ``probes`` clusters whose centres are nearest to it (the inverted file of :mod:`.ivf`, with a
  threshold instead of a top-k). A near-duplicate pair is missed only when neither row has the other's
  cluster among its nearest ``probes`` centres: measured against exact search on 20k-200k
  GSM8K-like records, 99.6-100% of the pairs at 0.95 are found (benchmarks/bench_semhash.py,
  docs/benchmarks.md). Unlike a k-nearest-neighbour list it has no cap on the partners of a
  row: a group of 50 copies yields all its pairs.
* :func:`neighbour_candidates`: a ``knn`` result already computed (the scan's, for outliers).

Every candidate is then scored once more, in float64, by :func:`cosines` (the same arithmetic
whatever path found it), and kept when that score is at least the threshold: ties at the
threshold and the similarities reported do not depend on blocking or on the path. Candidates
are gathered a hair below the threshold (:data:`SLACK`) so that float32 rounding in a block
never drops a pair the float64 score keeps.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..progress import Reporter
from . import ivf

SLACK = 1e-5
PROBES = 12           # clusters each row is compared with


def live_rows(x: np.ndarray) -> np.ndarray:
    """Indices of the rows that are not all zero."""
    return np.flatnonzero(np.einsum("ij,ij->i", x, x) > 0)


class Candidates:
    """Pairs ``(a, b)``, ``a < b``, gathered as int64 keys ``a * n + b`` (duplicates allowed)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.parts: list[np.ndarray] = []
        self.count = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        keep = a != b
        if not keep.all():
            a, b = a[keep], b[keep]
        if len(a):
            lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
            self.parts.append(lo * self.n + hi)
            self.count += len(a)
            if len(self.parts) > 64:  # keep the list short and the keys unique as we go
                self.parts = [np.unique(np.concatenate(self.parts))]

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        keys = np.unique(np.concatenate(self.parts))
        return keys // self.n, keys % self.n


def cosines(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 dot products of rows ``a`` and ``b`` of ``x`` (the deciding score)."""
    out = np.empty(len(a), dtype=np.float64)
    step = 1 << 15
    for s in range(0, len(a), step):
        xa = x[a[s:s + step]].astype(np.float64)
        xb = x[b[s:s + step]].astype(np.float64)
        out[s:s + step] = np.einsum("ij,ij->i", xa, xb)
    return out


def decide(x: np.ndarray, cand: Candidates, threshold: float,
           live: Optional[np.ndarray] = None) -> list[tuple[int, int, float]]:
    """``(a, b, cosine)`` of the candidates whose float64 cosine is at least ``threshold`` and
    whose rows are both ``live`` (default: not all zero), highest first (ties by ``a``, then
    ``b``)."""
    a, b = cand.pairs()
    sim = cosines(x, a, b)
    alive = np.zeros(len(x), dtype=bool)
    alive[live_rows(x) if live is None else live] = True
    keep = (sim >= threshold) & alive[a] & alive[b]
    a, b, sim = a[keep], b[keep], sim[keep]
    order = np.lexsort((b, a, -sim))
    return list(zip(a[order].tolist(), b[order].tolist(), sim[order].tolist()))


def exact_candidates(x: np.ndarray, live: np.ndarray, threshold: float, rep: Reporter,
                     cand: Candidates, message: str = "semantic duplicates",
                     max_partners: Optional[int] = None) -> None:
    """Every pair of ``live`` rows, in blocks of rows times the rows after them.

    ``max_partners``: each row keeps at most this many of its pairs with the rows after it, the
    most similar (ties: the earlier row), so there are at most ``max_partners * n`` pairs: a
    set of a few thousand copies of one prompt would otherwise give millions (every pair of
    copies) and take gigabytes to report."""
    xl = x if len(live) == len(x) else np.ascontiguousarray(x[live])
    m = len(xl)
    rep.total = m
    cut = np.float32(threshold - SLACK)
    block = max(1, min(m, ivf.TILE // max(1, m)))
    for start in range(0, m, block):
        stop = min(m, start + block)
        s = xl[start:stop] @ xl[start:].T  # columns start.. : only j > i is kept
        r, c = np.nonzero(s >= cut)
        keep = c > r
        r, c = r[keep], c[keep]
        if max_partners is not None and len(r):
            r, c = _most_similar(s, r, c, max_partners)
        if len(r):
            cand.add(live[r + start], live[c + start])
        rep.tick(stop, message)


def _most_similar(s: np.ndarray, r: np.ndarray, c: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Of the entries ``(r, c)`` of ``s``, at most ``k`` per row: the largest (ties: lower ``c``)."""
    counts = np.bincount(r)
    if counts.max() <= k:
        return r, c
    order = np.lexsort((c, -s[r, c], r))  # by row, then most similar first
    r, c = r[order], c[order]
    starts = np.cumsum(counts) - counts
    keep = np.arange(len(r)) - starts[r] < k
    return r[keep], c[keep]


def clustered_candidates(x: np.ndarray, live: np.ndarray, threshold: float, rep: Reporter,
                         cand: Candidates, probes: int = PROBES, seed: int = 0,
                         message: str = "semantic duplicates") -> None:
    """Each ``live`` row against the members of its ``probes`` nearest clusters (see the module
    docs and :mod:`.ivf`). Falls back to :func:`exact_candidates` when there are no more
    clusters than probes."""
    m = len(live)
    n_clusters = ivf.cluster_count(m, probes)
    if n_clusters <= probes:
        exact_candidates(x, live, threshold, rep, cand, message)
        return
    xl = x if m == len(x) else np.ascontiguousarray(x[live])
    rep.total = n_clusters + 2
    rep.tick(0, f"{message}: grouping the records")
    inv = ivf.InvertedFile(xl, n_clusters, probes, rep, seed)
    rep.tick(2, message)
    near = inv.pop_probes()
    cut = np.float32(threshold - SLACK)

    def work(qt: np.ndarray, mt: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r, k = np.nonzero(s >= cut)
        return qt[r], mt[k]

    for blocks in inv.blocks(np.arange(m), near, work, rep, lambda done: rep.tick(2 + done, message)):
        for r, k in blocks:
            if len(r):
                cand.add(live[r], live[k])
    rep.tick(n_clusters + 2, message)


def neighbour_candidates(idx: np.ndarray, sim: np.ndarray, threshold: float, cand: Candidates) -> None:
    """The ``(row, neighbour)`` entries of a ``knn`` result that reach the threshold."""
    rows, cols = np.nonzero(np.asarray(sim) >= np.float32(threshold - SLACK))
    j = np.asarray(idx)[rows, cols]
    ok = j >= 0
    cand.add(rows[ok].astype(np.int64), j[ok].astype(np.int64))


__all__ = ["SLACK", "PROBES", "Candidates", "cosines", "decide", "exact_candidates", "clustered_candidates",
           "neighbour_candidates", "live_rows"]
