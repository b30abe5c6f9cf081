"""Pairs of rows whose cosine reaches a threshold (semantic duplicates), without a top-k.

Rows are L2-normalised embeddings; zero rows (empty texts) never pair. Three ways to find the
candidates, one way to decide:

* :func:`exact_candidates`: every pair, in blocks of rows times the rows after them (float32
  BLAS on every core); each block keeps the entries that reach the threshold (``np.nonzero``,
  no sort), so memory stays at one block whatever the size.
* :func:`clustered_candidates`: spherical k-means on a sample cuts the rows into about
  ``sqrt(probes * n)`` clusters; every row is compared, exactly, with the members of the
  ``probes`` clusters whose centres are nearest to it (an inverted-file search with a threshold
  instead of a top-k). A near-duplicate pair is missed only when neither row has the other's
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

import contextlib
import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from ..progress import Reporter
from .neighbors import _top_k

SLACK = 1e-5
PROBES = 12           # clusters each row is compared with
KMEANS_ITERS = 5
KMEANS_SAMPLE = 20    # rows sampled per cluster to fit the centres
MIN_CLUSTER = 16      # rows per cluster at least (small sets: fewer clusters)
_TILE = 4 * 1024 * 1024  # float32 products held at once (16 MiB)


def threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS on one thread inside the block (our own threads share the cores instead). Many small
    products on BLAS's own threads wait on each other at every call, badly so when other
    processes hold the cores. Without threadpoolctl, nothing changes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn / sentence-transformers
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _in_threads(work: Callable[[int], object], items: Iterable[int], n_threads: int) -> Iterator[object]:
    """``work(item)`` for each item on ``n_threads`` threads, results in order; at most two
    tasks per thread are queued, so a consumer that stops (cancel) waits for few."""
    if n_threads <= 1:
        for item in items:
            yield work(item)
        return
    with ThreadPoolExecutor(n_threads) as pool:
        queued: deque = deque()
        for item in items:
            queued.append(pool.submit(work, item))
            if len(queued) >= 2 * n_threads:
                yield queued.popleft().result()
        while queued:
            yield queued.popleft().result()


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
                     cand: Candidates, message: str = "semantic duplicates") -> None:
    """Every pair of ``live`` rows, in blocks of rows times the rows after them."""
    xl = x if len(live) == len(x) else np.ascontiguousarray(x[live])
    m = len(xl)
    rep.total = m
    cut = np.float32(threshold - SLACK)
    block = max(1, min(m, _TILE // max(1, m)))
    for start in range(0, m, block):
        stop = min(m, start + block)
        s = xl[start:stop] @ xl[start:].T  # columns start.. : only j > i is kept
        r, c = np.nonzero(s >= cut)
        keep = c > r
        if keep.any():
            cand.add(live[r[keep] + start], live[c[keep] + start])
        rep.tick(stop, message)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int, sample: int) -> np.ndarray:
    """Spherical k-means centres (unit rows) fitted on a random sample of ``x``."""
    n = len(x)
    s = x if n <= sample else x[np.sort(rng.choice(n, sample, replace=False))]
    cent = s[np.sort(rng.choice(len(s), k, replace=False))].copy()
    step = 4096
    for _ in range(iters):
        with _one_blas_thread():
            assign = np.concatenate(list(_in_threads(lambda st: np.argmax(s[st:st + step] @ cent.T, axis=1),
                                                     range(0, len(s), step), threads())))
        sums = np.zeros_like(cent)
        np.add.at(sums, assign, s)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        ok = norms[:, 0] > 0  # an empty cluster keeps its centre
        cent[ok] = sums[ok] / norms[ok]
    return cent


def _nearest_centres(x: np.ndarray, cent: np.ndarray, p: int, rep: Reporter, message: str) -> np.ndarray:
    """(n, p) int32: each row's ``p`` nearest centres, the nearest first (blocks on every core)."""
    n = len(x)
    out = np.empty((n, p), dtype=np.int32)
    step = max(256, _TILE // max(1, len(cent)) // 4)

    def one(start: int) -> int:
        stop = min(n, start + step)
        out[start:stop] = _top_k(x[start:stop] @ cent.T, p)[0]
        return stop

    for _stop in _in_threads(one, range(0, n, step), threads()):
        rep.check()
    return out


def clustered_candidates(x: np.ndarray, live: np.ndarray, threshold: float, rep: Reporter,
                         cand: Candidates, probes: int = PROBES, seed: int = 0,
                         message: str = "semantic duplicates") -> None:
    """Each ``live`` row against the members of its ``probes`` nearest clusters (see the module
    docs). Falls back to :func:`exact_candidates` when there are no more clusters than probes."""
    m = len(live)
    n_clusters = int(min(max(1, m // MIN_CLUSTER), max(1, round(math.sqrt(probes * m)))))
    if n_clusters <= probes:
        exact_candidates(x, live, threshold, rep, cand, message)
        return
    xl = x if m == len(x) else np.ascontiguousarray(x[live])
    rep.total = n_clusters + 2
    rep.tick(0, f"{message}: grouping the records")
    rng = np.random.default_rng(seed)
    cent = _kmeans(xl, n_clusters, rng, KMEANS_ITERS, min(m, KMEANS_SAMPLE * n_clusters))
    rep.tick(1, f"{message}: grouping the records")
    with _one_blas_thread():
        near = _nearest_centres(xl, cent, probes, rep, message)
    rep.tick(2, message)
    home = near[:, 0]
    members = np.argsort(home, kind="stable")
    m_start = np.searchsorted(home[members], np.arange(n_clusters + 1))
    flat = near.ravel()
    by_cluster = np.argsort(flat, kind="stable")
    q_start = np.searchsorted(flat[by_cluster], np.arange(n_clusters + 1))
    queries = by_cluster // probes  # the row of each (row, probe), grouped by cluster
    del flat, by_cluster
    cut = np.float32(threshold - SLACK)

    def cluster(c: int) -> tuple[np.ndarray, np.ndarray]:
        mem = members[m_start[c]:m_start[c + 1]]
        qry = queries[q_start[c]:q_start[c + 1]]
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        m_step = min(len(mem), max(1, _TILE // 256))
        for ms in range(0, len(mem), m_step):
            mt = mem[ms:ms + m_step]
            xm = xl[mt]
            q_step = max(1, _TILE // len(mt))
            for qs in range(0, len(qry), q_step):
                qt = qry[qs:qs + q_step]
                r, k = np.nonzero(xl[qt] @ xm.T >= cut)
                if len(r):
                    rows.append(qt[r])
                    cols.append(mt[k])
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(rows), np.concatenate(cols)

    todo = [c for c in range(n_clusters) if m_start[c + 1] > m_start[c] and q_start[c + 1] > q_start[c]]
    done = 0
    with _one_blas_thread():
        for r, k in _in_threads(cluster, todo, threads()):
            if len(r):
                cand.add(live[r], live[k])
            done += 1
            rep.tick(3 + done * (n_clusters - 1) // max(1, len(todo)), message)
    rep.tick(n_clusters + 2, message)


def neighbour_candidates(idx: np.ndarray, sim: np.ndarray, threshold: float, cand: Candidates) -> None:
    """The ``(row, neighbour)`` entries of a ``knn`` result that reach the threshold."""
    rows, cols = np.nonzero(np.asarray(sim) >= np.float32(threshold - SLACK))
    j = np.asarray(idx)[rows, cols]
    ok = j >= 0
    cand.add(rows[ok].astype(np.int64), j[ok].astype(np.int64))


__all__ = ["SLACK", "PROBES", "Candidates", "cosines", "decide", "exact_candidates", "clustered_candidates",
           "neighbour_candidates", "live_rows"]
