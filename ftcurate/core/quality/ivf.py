"""An inverted file over L2-normalised rows: spherical k-means clusters, the clusters each row
probes, and exact products of the rows probing a cluster with its members, in blocks.

Two searches are built on it:

* pairs of rows whose cosine reaches a threshold (:func:`pairsearch.clustered_candidates`,
  semantic duplicates), and
* the ``k`` nearest rows of every row (:func:`neighbors.knn`, :class:`ClusteredKnn` below).

The rows are cut into about ``sqrt(probes * n)`` clusters (this balances finding each row's
nearest centres, ``n x clusters`` products, against comparing it with the members of its
``probes`` clusters, ``probes * n / clusters`` products). A row is compared exactly with the
members of its ``probes`` nearest clusters; every product is a float32 matrix-matrix product of
a block of rows with a cluster's members (BLAS), the blocks shared between the cores (one BLAS
thread each).

For the nearest neighbours every product is used twice: for the row that probes the cluster
and for the member, whose list is offered the probing row (the similarity is symmetric). A
true neighbour is then missed only when neither row probes the other's cluster. Measured on
the 1M-record case of ``benchmarks/bench_scale.py``: recall@10 0.954 with 12 probes (0.853 with
the products used once), 0.969 with 16, at a quarter of the time of an HNSW graph of the same
recall (``benchmarks/bench_ann.py``, docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from ..progress import Reporter

KMEANS_ITERS = 5
KMEANS_SAMPLE = 20    # rows sampled per cluster to fit the centres
MIN_CLUSTER = 16      # rows per cluster at least (small sets: fewer clusters)
TILE = 4 * 1024 * 1024  # float32 products held at once per thread (16 MiB)
_QUERY_ROWS = 16384     # query rows gathered at once per thread


def threads() -> int:
    """Worker threads: every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
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


def in_threads(work: Callable[[int], object], items: Iterable[int], n_threads: int) -> Iterator[object]:
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


def cluster_count(n: int, probes: int) -> int:
    """Clusters for ``n`` rows each probing ``probes`` of them: about ``sqrt(probes * n)``, with
    at least :data:`MIN_CLUSTER` rows a cluster."""
    return int(min(max(1, n // MIN_CLUSTER), max(1, round(math.sqrt(probes * n)))))


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = KMEANS_ITERS,
           sample: Optional[int] = None) -> np.ndarray:
    """Spherical k-means centres (unit rows) fitted on a random sample of ``x`` (default
    :data:`KMEANS_SAMPLE` rows per centre)."""
    n = len(x)
    sample = min(n, KMEANS_SAMPLE * k) if sample is None else sample
    s = x if n <= sample else x[np.sort(rng.choice(n, sample, replace=False))]
    cent = s[np.sort(rng.choice(len(s), k, replace=False))].copy()
    step = 4096
    for _ in range(iters):
        with one_blas_thread():
            assign = np.concatenate(list(in_threads(lambda st: np.argmax(s[st:st + step] @ cent.T, axis=1),
                                                    range(0, len(s), step), threads())))
        sums = np.zeros_like(cent)
        np.add.at(sums, assign, s)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        ok = norms[:, 0] > 0  # an empty cluster keeps its centre
        cent[ok] = sums[ok] / norms[ok]
    return cent


def nearest_centres(x: np.ndarray, cent: np.ndarray, p: int, rep: Reporter) -> np.ndarray:
    """(n, p) int32: each row's ``p`` nearest centres, the nearest first (blocks on every core;
    ties: the lower centre first)."""
    n = len(x)
    out = np.empty((n, p), dtype=np.int32)
    step = max(256, TILE // max(1, len(cent)) // 4)
    top = _kernels()[1]

    def one(start: int) -> int:
        stop = min(n, start + step)
        top(x[start:stop] @ cent.T, out[start:stop])
        return stop

    with one_blas_thread():
        for _stop in in_threads(one, range(0, n, step), threads()):
            rep.check()
    return out


def group(labels: np.ndarray, rows: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``(grouped, starts)``: ``rows[i]`` once for each label in ``labels[i]`` (one label a row,
    or a row of labels), grouped by label (``grouped[starts[g]:starts[g + 1]]``), in row order
    within a group. A counting sort: int32 row numbers where they fit, no sort keys."""
    labels = np.ascontiguousarray(labels.reshape(len(labels), -1))
    starts = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(labels.ravel(), minlength=n_groups), out=starts[1:])
    dtype = np.int32 if len(rows) == 0 or int(rows.max()) < 2**31 - 1 else np.int64
    grouped = np.empty(labels.size, dtype=dtype)
    _kernels()[2](labels, np.ascontiguousarray(rows, dtype=dtype), starts, grouped)
    return grouped, starts


class InvertedFile:
    """Clusters of the rows of ``x`` (``n_clusters`` spherical k-means centres fitted on a
    sample) and the rows whose nearest centre each is (:attr:`members` of cluster ``c`` are
    ``members[m_start[c]:m_start[c + 1]]``). :attr:`near` holds each row's ``probes`` nearest
    centres (nearest first) until :meth:`pop_probes`."""

    def __init__(self, x: np.ndarray, n_clusters: int, probes: int, rep: Reporter, seed: int = 0) -> None:
        self.x = x
        self.n_clusters = n_clusters
        self.cent = kmeans(x, n_clusters, np.random.default_rng(seed))
        rep.check()
        self.near: Optional[np.ndarray] = nearest_centres(x, self.cent, min(probes, n_clusters), rep)
        self.members, self.m_start = group(self.near[:, 0], np.arange(len(x)), n_clusters)

    def cluster(self, c: int) -> np.ndarray:
        return self.members[self.m_start[c]:self.m_start[c + 1]]

    def pop_probes(self) -> np.ndarray:
        """:attr:`near`, handed over (the index keeps no reference: its memory goes with the
        caller's)."""
        near, self.near = self.near, None
        return near

    def blocks(self, rows: np.ndarray, near: np.ndarray, work: Callable[[np.ndarray, np.ndarray, np.ndarray], object],
               rep: Reporter, tick: Callable[[int], None]) -> Iterator[object]:
        """For every cluster probed by ``rows`` (row ``rows[i]`` probes the clusters
        ``near[i]``): ``work(query_rows, member_rows, products)`` on each block of the rows
        probing it times its members (float32, ``len(query_rows) x len(member_rows)``), on
        every core. Yields what ``work`` returns, per cluster; ``tick(clusters done)`` after
        each. The products live in a buffer reused for the next block: ``work`` must not keep
        them."""
        queries, q_start = group(near, rows, self.n_clusters)  # each (row, probe) by cluster
        x = self.x

        local = threading.local()

        def buffers() -> tuple[np.ndarray, np.ndarray]:
            # one gather buffer and one product buffer per thread, reused: fresh arrays of this
            # size would be mapped and unmapped at every block (page faults: a third of the time)
            if not hasattr(local, "q"):
                local.q = np.empty((_QUERY_ROWS, x.shape[1]), dtype=x.dtype)
                local.s = np.empty(TILE, dtype=np.float32)
            return local.q, local.s

        def one(c: int) -> list:
            mem = self.cluster(c)
            qry = queries[q_start[c]:q_start[c + 1]]
            qbuf, sbuf = buffers()
            out = []
            m_step = min(len(mem), max(1, TILE // 256))
            for ms in range(0, len(mem), m_step):
                mt = mem[ms:ms + m_step]
                xm = x[mt]
                q_step = max(1, min(len(qbuf), TILE // len(mt)))
                for qs in range(0, len(qry), q_step):
                    qt = qry[qs:qs + q_step]
                    xq = np.take(x, qt, axis=0, out=qbuf[:len(qt)])
                    prod = np.matmul(xq, xm.T, out=sbuf[:len(qt) * len(mt)].reshape(len(qt), len(mt)))
                    out.append(work(qt, mt, prod))
            return out

        todo = [c for c in range(self.n_clusters) if self.m_start[c + 1] > self.m_start[c]
                and q_start[c + 1] > q_start[c]]
        done = 0
        with one_blas_thread():
            for res in in_threads(one, todo, threads()):
                done += 1
                tick(done * self.n_clusters // max(1, len(todo)))
                rep.check()
                yield res


# -- the k nearest rows ------------------------------------------------------------------------

_KERNELS = None


def _kernels():
    """numba kernels (compiled once, cached on disk), in this order: ``merge`` (a block of
    products into the running top-k lists), ``top`` (each row's largest entries, best first),
    ``bucket`` (the counting sort of :func:`group`) and ``sort`` (lists best first, in place)."""
    global _KERNELS
    if _KERNELS is None:
        import numba as nb

        globals()["_nb_worst"] = nb.njit(nogil=True, cache=True)(_py_worst)
        globals()["_nb_insert"] = nb.njit(nogil=True, cache=True)(_py_insert)
        _KERNELS = tuple(nb.njit(nogil=True, cache=True)(f) for f in (_py_merge, _py_top, _py_bucket, _py_sort))
    return _KERNELS


def _py_bucket(labels, rows, starts, out):  # pragma: no cover - compiled by numba
    """Counting sort: ``rows[i]`` into the slot of each of its labels (see :func:`group`)."""
    pos = starts[:-1].copy()
    for i in range(labels.shape[0]):
        for j in range(labels.shape[1]):
            g = labels[i, j]
            out[pos[g]] = rows[i]
            pos[g] += 1


def _py_sort(ti, ts):  # pragma: no cover - compiled by numba
    """Each list best first, in place (insertion sort: a list is short); ties keep their order;
    empty slots (-inf) get -1."""
    for r in range(ts.shape[0]):
        for a in range(1, ts.shape[1]):
            v = ts[r, a]
            c = ti[r, a]
            b = a
            while b > 0 and ts[r, b - 1] < v:
                ts[r, b] = ts[r, b - 1]
                ti[r, b] = ti[r, b - 1]
                b -= 1
            ts[r, b] = v
            ti[r, b] = c
        for a in range(ts.shape[1]):
            if not ts[r, a] > -np.inf:
                ti[r, a] = -1


def _py_top(s, out):  # pragma: no cover - compiled by numba
    """``out[i]``: the columns of the ``out.shape[1]`` largest entries of row ``i`` of ``s``,
    largest first (ties: the lower column first). Entries not above the running last are
    skipped at once: a row costs about one comparison per column."""
    n, m = s.shape
    p = out.shape[1]
    vals = np.empty(p, np.float32)
    cols = np.empty(p, np.int64)
    for i in range(n):
        filled = 0
        for j in range(m):
            v = s[i, j]
            if filled == p and not v > vals[p - 1]:
                continue
            t = filled if filled < p else p - 1
            while t > 0 and vals[t - 1] < v:
                if t < p:
                    vals[t] = vals[t - 1]
                    cols[t] = cols[t - 1]
                t -= 1
            vals[t] = v
            cols[t] = j
            if filled < p:
                filled += 1
        for t in range(p):
            out[i, t] = cols[t] if t < filled else -1


def _py_worst(ts, r):  # pragma: no cover - compiled by numba
    w = 0
    for t in range(1, ts.shape[1]):
        if ts[r, t] < ts[r, w]:
            w = t
    return w


def _py_insert(ti, ts, r, c, v):  # pragma: no cover - compiled by numba
    """Offer row ``c`` (similarity ``v``) to row ``r``'s list: it replaces the worst entry when
    better and not already there."""
    w = 0
    for t in range(ti.shape[1]):
        if ti[r, t] == c:
            return
        if ts[r, t] < ts[r, w]:
            w = t
    if v > ts[r, w]:
        ti[r, w] = c
        ts[r, w] = v


def _py_merge(s, qlist, qrows, mcols, ti, ts, both):  # pragma: no cover - compiled by numba
    """Offer each product ``s[a, b]`` (query row ``qrows[a]``, member row ``mcols[b]``) to the
    list ``qlist[a]`` and, with ``both`` (lists indexed by row), to ``mcols[b]``'s; a row is
    never in its own list. Only products above a list's current worst entry are looked at
    further."""
    nq, nm = s.shape
    wm = np.empty(nm, np.float32)
    if both:
        for b in range(nm):
            wm[b] = ts[mcols[b], _nb_worst(ts, mcols[b])]  # noqa: F821 - set by _kernels
    for a in range(nq):
        q = qlist[a]
        r = qrows[a]
        wq = ts[q, _nb_worst(ts, q)]  # noqa: F821
        for b in range(nm):
            v = s[a, b]
            if v > wq:
                c = mcols[b]
                if c != r:
                    _nb_insert(ti, ts, q, c, v)  # noqa: F821
                    wq = ts[q, _nb_worst(ts, q)]  # noqa: F821
            if both and v > wm[b]:
                c = mcols[b]
                if c != r:
                    _nb_insert(ti, ts, c, r, v)  # noqa: F821
                    wm[b] = ts[c, _nb_worst(ts, c)]  # noqa: F821


class ClusteredKnn:
    """The ``k`` nearest other rows of every row of ``x`` through an :class:`InvertedFile`
    (see the module docs), and the same search again, with more probes, for a few rows
    (:meth:`search`)."""

    def __init__(self, x: np.ndarray, probes: int, rep: Reporter, message: str, seed: int = 0) -> None:
        self.x = x
        n = len(x)
        rep.total = 1000
        rep.tick(0, f"{message}: grouping the records")
        self.ivf = InvertedFile(x, cluster_count(n, probes), probes, rep, seed)
        rep.tick(100, f"{message}: grouping the records")

    def all_rows(self, k: int, rep: Reporter, message: str) -> tuple[np.ndarray, np.ndarray]:
        """Every row's ``k`` nearest other rows ``(idx, sim)``, best first.

        First each row against the members of its own cluster (most of its neighbours are
        there), then against the other clusters it probes, each product offered to both rows:
        the lists start close to their end, so few later products get past a list's worst
        entry (the cost of the merge is in the entries it replaces)."""
        n = len(self.x)
        ivf = self.ivf
        near = ivf.pop_probes()
        rows = np.arange(n, dtype=np.int64)
        # int32 row numbers where they fit: 80 MB less at 1M rows (k 20)
        ti = np.full((n, k), -1, dtype=np.int32 if n < 2**31 - 1 else np.int64)
        ts = np.full((n, k), -np.inf, dtype=np.float32)
        c = ivf.n_clusters
        # probes nearest first, in passes: each pass starts from better lists
        cuts = [0] + [q for q in (1, 2, 4, 8) if q < near.shape[1]] + [near.shape[1]]
        for p0, p1 in zip(cuts[:-1], cuts[1:]):
            lo, hi = 100 + 900 * p0 // cuts[-1], 100 + 900 * p1 // cuts[-1]
            self._run(rows, near[:, p0:p1], None, p0 > 0, ti, ts, rep,
                      lambda done, lo=lo, hi=hi: rep.tick(lo + (hi - lo) * done // c, message))
        return _sorted(ti, ts)

    def search(self, rows: np.ndarray, k: int, probes: int,
               start: Optional[tuple[np.ndarray, np.ndarray]] = None,
               rep: Optional[Reporter] = None) -> tuple[np.ndarray, np.ndarray]:
        """``rows``' ``k`` nearest other rows through their ``probes`` nearest clusters,
        merged with ``start`` (lists found before: never worse than them)."""
        rep = rep or Reporter(None, None)
        rows = np.asarray(rows, dtype=np.int64)
        n = len(self.x)
        near = nearest_centres(self.x[rows], self.ivf.cent, min(probes, self.ivf.n_clusters), rep)
        pos = np.full(n, -1, dtype=np.int64)
        pos[rows] = np.arange(len(rows))
        ti = np.full((len(rows), k), -1, dtype=np.int64)
        ts = np.full((len(rows), k), -np.inf, dtype=np.float32)
        if start is not None:
            w = min(k, start[0].shape[1])
            ti[:, :w], ts[:, :w] = start[0][:, :w], start[1][:, :w]
            ts[ti < 0] = -np.inf
        self._run(rows, near, pos, False, ti, ts, rep, lambda done: None)
        return _sorted(ti, ts)

    def _run(self, rows: np.ndarray, near: np.ndarray, pos: Optional[np.ndarray], both: bool,
             ti: np.ndarray, ts: np.ndarray, rep: Reporter, tick: Callable[[int], None]) -> None:
        """Merge the products of ``rows`` with the clusters ``near`` into the lists ``ti``/``ts``
        (indexed by row, or by ``pos[row]``); with ``both`` also into the members' lists."""
        kernel = _kernels()[0]
        lock = threading.Lock()

        def work(qt: np.ndarray, mt: np.ndarray, s: np.ndarray) -> None:
            with lock:  # a row's list may be in two blocks at once
                kernel(s, qt if pos is None else pos[qt], qt, mt, ti, ts, both)

        for _ in self.ivf.blocks(rows, np.ascontiguousarray(near), work, rep, tick):
            pass


def _sorted(ti: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lists best first (in place: no copies of n x k arrays); empty slots ``-1`` /
    ``-inf``."""
    _kernels()[3](ti, ts)
    return ti, ts


__all__ = ["InvertedFile", "ClusteredKnn", "cluster_count", "kmeans", "nearest_centres", "group", "threads",
           "one_blas_thread", "in_threads", "TILE"]
