"""Nearest neighbours by cosine similarity of L2-normalised embeddings.

* Exact search (default up to ``exact_max`` rows): blocks of rows are multiplied with the whole
  matrix (numpy's BLAS on the CPU, using every core; ``torch`` on CUDA or Apple MPS when a GPU is
  asked for or torch is already loaded and sees one) and the top ``k`` of each row kept, so memory
  stays at ``block x n`` floats whatever ``n`` is.
* Approximate search above ``exact_max`` rows: an HNSW graph from ``usearch`` over int8-quantised
  vectors (a quarter of the memory of float32, and faster to build and search), built and searched
  on every core; the candidates it returns (a few more than ``k``) are re-scored with the exact
  float32 cosine and re-ranked, so the similarities reported are exact. ``faiss-cpu`` HNSW is the
  fallback when usearch is not installed; if neither is installed the search stays exact (slower,
  same answer). The settings were chosen by measurement (benchmarks/bench_neighbors.py, results
  in docs/benchmarks.md): recall of the true 10 nearest neighbours >= 0.95 on samples checked
  against exact search.

Rows that are all zero (empty texts) have cosine 0 with everything.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter

# Above this many rows the search is approximate (benchmarks/bench_neighbors.py: at 10k rows the
# int8 HNSW graph is already cheaper than the exact product on 2 CPU cores).
EXACT_MAX = 10_000
# Floats in one block of the similarity matrix (block rows x n columns): 64 MiB as float32.
_BLOCK_FLOATS = 16 * 1024 * 1024
# HNSW settings: graph degree, build and search beam widths.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 64
# Candidates asked of the approximate index beyond k (re-scored exactly, then cut to k).
EXTRA_CANDIDATES = 4
# Quantisation of the usearch index ("i8": int8; "f16"/"f32" to trade memory for recall).
USEARCH_DTYPE = os.environ.get("FTCURATE_ANN_DTYPE", "i8")


def threads() -> int:
    """Worker threads for the index: every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


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


def _exact(query: np.ndarray, base: np.ndarray, k: int, exclude_self: bool, rep: Reporter,
           device: Optional[str], message: str) -> tuple[np.ndarray, np.ndarray]:
    nq, nb = query.shape[0], base.shape[0]
    kk = min(k, nb - (1 if exclude_self else 0))
    idx = np.full((nq, k), -1, dtype=np.int64)
    sim = np.full((nq, k), -np.inf, dtype=np.float32)
    if nq == 0 or kk <= 0:
        return idx, sim
    dev = _device(device)
    block = max(1, min(nq, _BLOCK_FLOATS // max(1, nb)))
    if dev == "cpu":
        for start in range(0, nq, block):
            stop = min(nq, start + block)
            s = query[start:stop] @ base.T
            if exclude_self:
                rows = np.arange(stop - start)
                s[rows, rows + start] = -np.inf
            i, v = _top_k(s, kk)
            idx[start:stop, :kk] = i
            sim[start:stop, :kk] = v
            rep.tick(stop, message)
        return idx, sim
    import torch

    with torch.inference_mode():
        b = torch.from_numpy(base).to(dev)
        for start in range(0, nq, block):
            stop = min(nq, start + block)
            q = torch.from_numpy(query[start:stop]).to(dev)
            s = q @ b.T
            if exclude_self:
                rows = torch.arange(stop - start, device=dev)
                s[rows, rows + start] = -float("inf")
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


def _approx(query: np.ndarray, base: np.ndarray, k: int, exclude_self: bool, rep: Reporter,
            backend: str, message: str) -> tuple[np.ndarray, np.ndarray]:
    nq, nb, d = query.shape[0], base.shape[0], base.shape[1]
    kq = min(nb, k + (1 if exclude_self else 0) + EXTRA_CANDIDATES)
    nthreads = threads()
    step = add_step = 20_000  # steps keep the progress moving and cancel close at hand
    # progress over building (nb rows added) then searching (nq rows)
    rep.total = nb + nq
    rep.tick(0, f"{message}: building the index")
    if backend == "faiss":
        import faiss

        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        for start in range(0, nb, add_step):
            index.add(base[start:start + add_step])
            rep.tick(min(nb, start + add_step), f"{message}: building the index")
        index.hnsw.efSearch = max(96, 2 * kq)

        def search(q: np.ndarray) -> np.ndarray:
            _s, i = index.search(q, kq)
            return i.astype(np.int64)
    else:
        from usearch.index import Index

        index = Index(ndim=d, metric="ip", dtype=USEARCH_DTYPE, connectivity=HNSW_M,
                      expansion_add=HNSW_EF_CONSTRUCTION, expansion_search=max(HNSW_EF_SEARCH, 2 * kq))
        if hasattr(index, "reserve"):
            index.reserve(nb)
        for start in range(0, nb, add_step):
            index.add(np.arange(start, min(nb, start + add_step)), base[start:start + add_step],
                      threads=nthreads)
            rep.tick(min(nb, start + add_step), f"{message}: building the index")

        def search(q: np.ndarray) -> np.ndarray:
            m = index.search(q, kq, threads=nthreads)
            keys = np.asarray(m.keys, dtype=np.int64).reshape(len(q), -1)
            counts = np.asarray(m.counts).reshape(-1)
            keys[np.arange(keys.shape[1])[None, :] >= counts[:, None]] = -1  # unfilled slots
            return keys

    idx = np.full((nq, k), -1, dtype=np.int64)
    sim = np.full((nq, k), -np.inf, dtype=np.float32)
    for start in range(0, nq, step):
        stop = min(nq, start + step)
        i = search(query[start:stop])
        if exclude_self:
            i = np.where(i == np.arange(start, stop)[:, None], -1, i)
        s = _rescore(query[start:stop], base, i)
        order = np.argsort(-s, axis=1, kind="stable")
        i = np.take_along_axis(i, order, axis=1)
        s = np.take_along_axis(s, order, axis=1)
        w = min(k, i.shape[1])
        idx[start:stop, :w] = i[:, :w]
        sim[start:stop, :w] = s[:, :w]
        rep.tick(nb + stop, f"{message}: searching")
    sim[idx < 0] = -np.inf
    idx[~np.isfinite(sim)] = -1
    return idx, sim


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
    Exact when ``n <= exact_max`` (or ``backend="exact"``), else approximate (HNSW candidates,
    re-scored exactly: the similarities are exact, a true neighbour may be missed).
    """
    emb = _as_f32(emb)
    n = emb.shape[0]
    rep = Reporter(progress, cancel, total=n, every=1)
    rep.check()
    use = backend or ("exact" if n <= exact_max else (approximate_backend() or "exact"))
    if use == "exact":
        return _exact(emb, emb, k, True, rep, device, "nearest neighbours")
    return _approx(emb, emb, k, True, rep, use, "nearest neighbours (approximate)")


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
        return _exact(query, base, k, False, rep, device, "nearest neighbours")
    return _approx(query, base, k, False, rep, use, "nearest neighbours (approximate)")
