"""Nearest neighbours by cosine similarity of L2-normalised embeddings.

* Exact search (default up to ``exact_max`` rows): blocks of rows are multiplied with the whole
  matrix (numpy's BLAS on the CPU, using every core; ``torch`` on CUDA or Apple MPS when a GPU is
  asked for or torch is already loaded and sees one) and the top ``k`` of each row kept, so memory
  stays at ``block x n`` floats whatever ``n`` is.
* Approximate search above ``exact_max`` rows, every row's neighbours (:func:`knn`): the
  clustered search of :mod:`.ivf` (spherical k-means clusters; each row compared exactly, in
  float32 matrix products on every core, with the members of its :data:`KNN_PROBES` nearest
  clusters, each product offered to both rows). The similarities reported are exact; a true
  neighbour is missed only when neither row probes the other's cluster. The settings were
  chosen by measurement (benchmarks/bench_ann.py, results in docs/benchmarks.md): recall of the
  true 10 nearest neighbours >= 0.95 on samples checked against exact search, at a quarter of
  the time of the HNSW graph it replaced.
* Approximate search of other rows (:func:`cross_knn`, a query set against a large base): an
  HNSW graph from ``usearch`` over int8-quantised vectors, built and searched on every core; the
  candidates it returns (a few more than ``k``) are re-scored with the exact float32 cosine.
  ``faiss-cpu`` HNSW is the fallback when usearch is not installed; if neither is installed the
  search stays exact (slower, same answer). ``backend="usearch"`` / ``"faiss"`` (or the
  ``FTCURATE_ANN`` environment variable) also asks :func:`knn` for the graph.
* :func:`knn_search` keeps the index so that a few rows can be searched again, harder
  (:meth:`Neighbours.refine`): exactly when ``rows x n`` is small enough, else through more
  clusters (or a wider beam on a graph). The outlier score uses it: an approximate list can
  only miss neighbours, so its score is an upper bound, and only the rows whose bound could
  reach the flagged list are refined (``outliers.knn_outliers``); the flagged list then matches
  an exact search's.

Rows that are all zero (empty texts) have cosine 0 with everything.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter
from .ivf import ClusteredKnn, threads

# Above this many rows the search is approximate (benchmarks/bench_ann.py: at 10k rows the
# int8 HNSW graph is already cheaper than the exact product on 2 CPU cores).
EXACT_MAX = 10_000
# Floats in one block of the similarity matrix (block rows x n columns): 64 MiB as float32.
_BLOCK_FLOATS = 16 * 1024 * 1024
# HNSW settings: graph degree, build and search beam widths (benchmarks/bench_ann.py: at 1M rows
# 10 : 48 : 56 : 6 takes 0.68x the time of 16 : 64 : 64 : 4 for recall@10 0.963 against 0.990;
# the outlier list keeps its agreement with exact search through refining, see knn_search).
HNSW_M = 10
HNSW_EF_CONSTRUCTION = 48
HNSW_EF_SEARCH = 56
# Candidates asked of the approximate index beyond k (re-scored exactly, then cut to k).
EXTRA_CANDIDATES = 6
# Clustered search (the default above EXACT_MAX for every row's neighbours): clusters each row
# probes (benchmarks/bench_ann.py: recall@10 0.969 at 1M rows with 16, 0.954 with 12).
KNN_PROBES = 16
# Refinement (Neighbours.refine, for the outlier candidates): exact while rows x n stays below
# this many products (a few seconds on 2 cores), else through this many clusters (clustered
# search) or a graph searched with a wider beam.
EXACT_REFINE_PAIRS = 4_000_000_000
REFINE_PROBES = 160
REFINE_EF_SEARCH = 192
REFINE_EXTRA = 16
# Quantisation of the usearch index ("i8": int8; "f16"/"f32" to trade memory for recall).
USEARCH_DTYPE = os.environ.get("FTCURATE_ANN_DTYPE", "i8")


def _device(device: Optional[str]) -> str:
    """Where exact products run: ``device`` when given, else CUDA / MPS when torch is already
    loaded and sees one, else ``"cpu"`` (numpy: no torch import for CPU work)."""
    if device:
        return device
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return "cuda"
            mps = getattr(torch.backends, "mps", None)
            if mps is not None and mps.is_available():
                return "mps"
        except Exception:  # pragma: no cover - a broken torch install: stay on the CPU
            pass
    return "cpu"


def _as_f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


def approximate_backend() -> Optional[str]:
    """``"usearch"`` or ``"faiss"``: the approximate index library that can be imported, or None."""
    forced = os.environ.get("FTCURATE_ANN")
    order = [forced] if forced else ["usearch", "faiss"]
    for name in order:
        try:
            if name == "faiss":
                import logging

                # faiss logs its CPU-feature probing (a missing AVX2 build) at INFO: not ours to show
                logging.getLogger("faiss.loader").setLevel(logging.WARNING)
                import faiss  # noqa: F401
            elif name == "usearch":
                import usearch.index  # noqa: F401
            else:
                continue
            return name
        except ImportError:
            continue
    return None


def _top_k(s: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``kk`` largest entries of each row of ``s``, best first."""
    if kk < s.shape[1]:
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(s.shape[1]), s.shape).copy()
    vals = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def _exact(query: np.ndarray, base: np.ndarray, k: int, self_rows: Optional[np.ndarray], rep: Reporter,
           device: Optional[str], message: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest rows of ``base`` for every row of ``query``; ``self_rows``: the base
    row each query row is (left out of its own list), or None.

    On the CPU, blocks of query rows times the whole of ``base`` while a block of at least 256
    rows fits ``_BLOCK_FLOATS``; above that (large ``base``) blocks of 2,048 query rows against
    column blocks of ``base``, a running top ``k`` merged per column block, so the products stay
    matrix-matrix instead of reading all of ``base`` for a few rows."""
    nq, nb = query.shape[0], base.shape[0]
    kk = min(k, nb - (1 if self_rows is not None else 0))
    idx = np.full((nq, k), -1, dtype=np.int64)
    sim = np.full((nq, k), -np.inf, dtype=np.float32)
    if nq == 0 or kk <= 0:
        return idx, sim
    dev = _device(device)
    block = max(1, min(nq, _BLOCK_FLOATS // max(1, nb)))
    if dev == "cpu":
        if _BLOCK_FLOATS // max(1, nb) < 256:
            block = min(nq, 2048)
        cblock = max(kk + 1, _BLOCK_FLOATS // block)
        for start in range(0, nq, block):
            stop = min(nq, start + block)
            own = None if self_rows is None else self_rows[start:stop]
            best_i = best_s = None
            for c0 in range(0, nb, cblock):
                c1 = min(nb, c0 + cblock)
                s = query[start:stop] @ base[c0:c1].T
                if own is not None:
                    here = np.flatnonzero((own >= c0) & (own < c1))
                    s[here, own[here] - c0] = -np.inf
                i, v = _top_k(s, min(kk, c1 - c0))
                if best_i is None:
                    best_i, best_s = i + c0, v
                else:
                    best_i, best_s = _top_k_of(np.concatenate([best_i, i + c0], axis=1),
                                               np.concatenate([best_s, v], axis=1), kk)
                rep.check()
            idx[start:stop, :kk] = best_i
            sim[start:stop, :kk] = best_s
            rep.tick(stop, message)
        return idx, sim
    import torch

    with torch.inference_mode():
        b = torch.from_numpy(base).to(dev)
        for start in range(0, nq, block):
            stop = min(nq, start + block)
            q = torch.from_numpy(query[start:stop]).to(dev)
            s = q @ b.T
            if self_rows is not None:
                rows = torch.arange(stop - start, device=dev)
                s[rows, torch.from_numpy(self_rows[start:stop]).to(dev)] = -float("inf")
            top = torch.topk(s, kk, dim=1, largest=True, sorted=True)
            sim[start:stop, :kk] = top.values.float().cpu().numpy()
            idx[start:stop, :kk] = top.indices.cpu().numpy()
            rep.tick(stop, message)
    return idx, sim


def _rescore(query: np.ndarray, base: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Exact cosines of each query row with its candidate rows (-inf where the slot is -1)."""
    out = np.empty(cand.shape, dtype=np.float32)
    step = max(1, (32 << 20) // max(1, cand.shape[1] * base.shape[1] * 4))  # ~32 MiB of gathered rows
    for start in range(0, len(cand), step):
        c = cand[start:start + step]
        out[start:start + step] = np.einsum("qd,qkd->qk", query[start:start + step], base[np.maximum(c, 0)])
    out[cand < 0] = -np.inf
    return out


class _Graph:
    """An approximate index over the rows of ``base`` (usearch HNSW, or faiss HNSW): candidates
    for a query are asked of the graph, then re-scored with the exact float32 cosine."""

    def __init__(self, base: np.ndarray, backend: str, rep: Reporter, message: str,
                 m: int, ef_construction: int) -> None:
        self.base, self.backend = base, backend
        self.nthreads = threads()
        nb, d = base.shape
        step = 20_000  # steps keep the progress moving and cancel close at hand
        if backend == "faiss":
            import faiss

            self.index = faiss.IndexHNSWFlat(d, 2 * m, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = max(80, ef_construction)
            for start in range(0, nb, step):
                self.index.add(base[start:start + step])
                rep.tick(min(nb, start + step), f"{message}: building the index")
        else:
            from usearch.index import Index

            self.index = Index(ndim=d, metric="ip", dtype=USEARCH_DTYPE, connectivity=m,
                               expansion_add=ef_construction, expansion_search=HNSW_EF_SEARCH)
            if hasattr(self.index, "reserve"):
                self.index.reserve(nb)
            for start in range(0, nb, step):
                self.index.add(np.arange(start, min(nb, start + step)), base[start:start + step],
                               threads=self.nthreads)
                rep.tick(min(nb, start + step), f"{message}: building the index")

    def candidates(self, q: np.ndarray, kq: int, ef: int) -> np.ndarray:
        """Row numbers of about ``kq`` rows near each row of ``q`` (-1 for unfilled slots)."""
        if self.backend == "faiss":
            self.index.hnsw.efSearch = max(ef, 96, 2 * kq)
            _s, i = self.index.search(q, kq)
            return i.astype(np.int64)
        self.index.expansion_search = max(ef, kq)
        m = self.index.search(q, kq, threads=self.nthreads)
        keys = np.asarray(m.keys, dtype=np.int64).reshape(len(q), -1)
        counts = np.asarray(m.counts).reshape(-1)
        keys[np.arange(keys.shape[1])[None, :] >= counts[:, None]] = -1  # unfilled slots
        return keys

    def search(self, query: np.ndarray, k: int, self_rows: Optional[np.ndarray], ef: int, extra: int,
               rep: Optional[Reporter] = None, done: int = 0, message: str = "") -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best of the graph's candidates for every row of ``query``, re-scored exactly.
        ``self_rows``: the base row each query row is (left out of its own list), or None."""
        nq, nb = query.shape[0], self.base.shape[0]
        kq = min(nb, k + (1 if self_rows is not None else 0) + extra)
        idx = np.full((nq, k), -1, dtype=np.int64)
        sim = np.full((nq, k), -np.inf, dtype=np.float32)
        step = 20_000
        for start in range(0, nq, step):
            stop = min(nq, start + step)
            i = self.candidates(query[start:stop], kq, ef)
            if self_rows is not None:
                i = np.where(i == self_rows[start:stop, None], -1, i)
            i, s = _top_k_of(i, _rescore(query[start:stop], self.base, i), i.shape[1])
            w = min(k, i.shape[1])
            idx[start:stop, :w] = i[:, :w]
            sim[start:stop, :w] = s[:, :w]
            if rep is not None:
                rep.tick(done + stop, message)
        sim[idx < 0] = -np.inf
        idx[~np.isfinite(sim)] = -1
        return idx, sim


@dataclass
class Neighbours:
    """The result of :func:`knn_search`: ``idx`` and ``sim`` (n, k) as :func:`knn` returns them,
    and :meth:`refine`, which searches again, harder, for a few rows (e.g. the outlier
    candidates): exactly when that is cheap enough, else through more clusters of the same
    clustered index (or with a wider beam on the same graph)."""

    idx: np.ndarray
    sim: np.ndarray
    exact: bool
    emb: Optional[np.ndarray] = None
    index: Optional[object] = None  # ivf.ClusteredKnn or _Graph

    def refine(self, rows: np.ndarray, k: Optional[int] = None,
               cancel: Optional[CancelCheck] = None) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour lists of ``rows`` (0-based), at least as good as ``idx``/``sim``'s: the
        exact ones when the search was exact or ``len(rows) * n <= EXACT_REFINE_PAIRS``, else
        the clustered index searched through ``REFINE_PROBES`` clusters (or the graph with beam
        ``REFINE_EF_SEARCH``). Each list is merged with the one found before (the better of the
        two per slot), so a refined similarity never drops."""
        rows = np.asarray(rows, dtype=np.int64)
        k = self.idx.shape[1] if k is None else k
        if self.exact or self.emb is None:
            return self.idx[rows, :k], self.sim[rows, :k]
        n = self.emb.shape[0]
        rep = Reporter(None, cancel, total=len(rows), every=1)
        if len(rows) * n <= EXACT_REFINE_PAIRS or self.index is None:
            return _exact(self.emb[rows], self.emb, k, rows, rep, "cpu", "nearest neighbours: refining")
        if isinstance(self.index, ClusteredKnn):
            return self.index.search(rows, k, REFINE_PROBES, start=(self.idx[rows], self.sim[rows]), rep=rep)
        i, s = self.index.search(self.emb[rows], k, rows, REFINE_EF_SEARCH, REFINE_EXTRA)
        # never worse than the first search: merge both lists and keep the best k distinct rows
        both = np.concatenate([i, self.idx[rows]], axis=1)
        i, s = _top_k_of(both, np.concatenate([s, self.sim[rows]], axis=1), both.shape[1])
        out_i = np.full((len(rows), k), -1, dtype=np.int64)
        out_s = np.full((len(rows), k), -np.inf, dtype=np.float32)
        for r in range(len(rows)):
            _u, first = np.unique(i[r], return_index=True)
            keep = np.sort(first[_u >= 0])[:k]
            out_i[r, :len(keep)], out_s[r, :len(keep)] = i[r, keep], s[r, keep]
        return out_i, out_s

    def close(self) -> None:
        """Drop the index (its memory) once no more refinement is needed."""
        self.index = None


def _top_k_of(i: np.ndarray, s: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``kk`` best (index, similarity) pairs of each row, best first (ties: earlier first)."""
    order = np.argsort(-s, axis=1, kind="stable")[:, :kk]
    return np.take_along_axis(i, order, axis=1), np.take_along_axis(s, order, axis=1)


def _approx(query: np.ndarray, base: np.ndarray, k: int, exclude_self: bool, rep: Reporter,
            backend: str, message: str, keep: bool = False) -> tuple[np.ndarray, np.ndarray, Optional[_Graph]]:
    nq, nb = query.shape[0], base.shape[0]
    # progress over building (nb rows added) then searching (nq rows)
    rep.total = nb + nq
    rep.tick(0, f"{message}: building the index")
    graph = _Graph(base, backend, rep, message, HNSW_M, HNSW_EF_CONSTRUCTION)
    self_rows = np.arange(nq) if exclude_self else None
    idx, sim = graph.search(query, k, self_rows, HNSW_EF_SEARCH, EXTRA_CANDIDATES, rep, nb, f"{message}: searching")
    return idx, sim, (graph if keep else None)


def knn(
    emb: np.ndarray,
    k: int = 10,
    exact_max: int = EXACT_MAX,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
    device: Optional[str] = None,
    backend: Optional[str] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other rows of every row of ``emb`` (rows L2-normalised).

    Returns ``(idx, sim)``, both (n, k): 0-based row indices and cosine similarities, best first,
    the row itself excluded. With fewer than ``k + 1`` rows the missing slots are ``-1`` / ``-inf``.
    Exact when ``n <= exact_max`` (or ``backend="exact"``), else approximate (the clustered
    search, or with ``backend="usearch"``/``"faiss"`` an HNSW graph's candidates re-scored: the
    similarities are exact, a true neighbour may be missed).
    """
    found = knn_search(emb, k, exact_max, progress, cancel, device, backend)
    return found.idx, found.sim


def knn_search(
    emb: np.ndarray,
    k: int = 10,
    exact_max: int = EXACT_MAX,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
    device: Optional[str] = None,
    backend: Optional[str] = None,
) -> Neighbours:
    """:func:`knn`, keeping what is needed to search again, harder, for a few rows
    (:meth:`Neighbours.refine`; call :meth:`Neighbours.close` when done)."""
    emb = _as_f32(emb)
    n = emb.shape[0]
    rep = Reporter(progress, cancel, total=n, every=1)
    rep.check()
    use = backend or ("exact" if n <= exact_max else (os.environ.get("FTCURATE_ANN") or "clustered"))
    if use == "exact":
        idx, sim = _exact(emb, emb, k, np.arange(n), rep, device, "nearest neighbours")
        return Neighbours(idx, sim, True)
    if use == "clustered":
        index = ClusteredKnn(emb, KNN_PROBES, rep, "nearest neighbours (clustered)")
        idx, sim = index.all_rows(k, rep, "nearest neighbours (clustered)")
        return Neighbours(idx, sim, False, emb, index)
    if use not in ("usearch", "faiss") or approximate_backend() is None:
        idx, sim = _exact(emb, emb, k, np.arange(n), rep, device, "nearest neighbours")
        return Neighbours(idx, sim, True)
    idx, sim, graph = _approx(emb, emb, k, True, rep, use, "nearest neighbours (approximate)", keep=True)
    return Neighbours(idx, sim, False, emb, graph)


def cross_knn(
    query: np.ndarray,
    base: np.ndarray,
    k: int = 1,
    exact_max: int = EXACT_MAX,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
    device: Optional[str] = None,
    backend: Optional[str] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For every row of ``query`` the ``k`` most similar rows of ``base``: ``(idx, sim)``, (nq, k).

    Exact when ``len(base) <= exact_max`` (or ``backend="exact"``), else approximate.
    """
    query, base = _as_f32(query), _as_f32(base)
    rep = Reporter(progress, cancel, total=query.shape[0], every=1)
    rep.check()
    use = backend or ("exact" if base.shape[0] <= exact_max else (approximate_backend() or "exact"))
    if use == "exact":
        return _exact(query, base, k, None, rep, device, "nearest neighbours")
    idx, sim, _g = _approx(query, base, k, False, rep, use, "nearest neighbours (approximate)")
    return idx, sim
