"""Nearest neighbours by cosine similarity of L2-normalised embeddings.

* Exact search (default up to ``exact_max`` rows): blocks of rows are multiplied with the whole
  matrix (``torch`` matmul, on CUDA or Apple MPS when present) and the top ``k`` of each row kept, so
  memory stays at ``block x n`` floats whatever ``n`` is.
* Approximate search above ``exact_max`` rows: an HNSW graph from ``faiss-cpu`` (inner product on
  normalised vectors = cosine), or from ``usearch`` when faiss is not installed. If neither is
  installed the search stays exact (slower, same answer).

Rows that are all zero (empty texts) have cosine 0 with everything.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..progress import CancelCheck, ProgressCallback, Reporter

# Above this many rows the search is approximate: on 2 CPU cores exact and HNSW cost the same
# at 20k rows (3.5 s, 256-d); at 50k exact takes 23-39 s, HNSW 10-23 s (benchmarks/bench_semantic.py).
EXACT_MAX = 20_000
# Floats in one block of the similarity matrix (block rows x n columns): 64 MiB as float32.
_BLOCK_FLOATS = 16 * 1024 * 1024
# HNSW settings: graph degree, build and search beam widths.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96


def _device(device: Optional[str]) -> str:
    if device:
        return device
    import torch
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _as_f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


def approximate_backend() -> Optional[str]:
    """``"faiss"`` or ``"usearch"``: the approximate index library that can be imported, or None."""
    forced = os.environ.get("FTCURATE_ANN")
    order = [forced] if forced else ["faiss", "usearch"]
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


def _exact(query: np.ndarray, base: np.ndarray, k: int, exclude_self: bool, rep: Reporter,
           device: Optional[str], message: str) -> tuple[np.ndarray, np.ndarray]:
    import torch

    nq, nb = query.shape[0], base.shape[0]
    kk = min(k, nb - (1 if exclude_self else 0))
    idx = np.full((nq, k), -1, dtype=np.int64)
    sim = np.full((nq, k), -np.inf, dtype=np.float32)
    if nq == 0 or kk <= 0:
        return idx, sim
    dev = _device(device)
    with torch.inference_mode():
        b = torch.from_numpy(base).to(dev)
        block = max(1, min(nq, _BLOCK_FLOATS // max(1, nb)))
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


def _approx(query: np.ndarray, base: np.ndarray, k: int, exclude_self: bool, rep: Reporter,
            backend: str, message: str) -> tuple[np.ndarray, np.ndarray]:
    nq, nb, d = query.shape[0], base.shape[0], base.shape[1]
    kq = min(nb, k + (1 if exclude_self else 0))
    step = add_step = 5_000  # small steps keep the progress moving
    # progress over building (nb rows added) then searching (nq rows)
    rep.total = nb + nq
    rep.tick(0, f"{message}: building the index")
    if backend == "faiss":
        import faiss

        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        for start in range(0, nb, add_step):
            index.add(base[start:start + add_step])
            rep.tick(min(nb, start + add_step), f"{message}: building the index")
        index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * kq)

        def search(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            s, i = index.search(q, kq)
            return i.astype(np.int64), s.astype(np.float32)
    else:
        from usearch.index import Index

        index = Index(ndim=d, metric="ip", dtype="f32", connectivity=HNSW_M,
                      expansion_add=HNSW_EF_CONSTRUCTION, expansion_search=HNSW_EF_SEARCH)
        for start in range(0, nb, add_step):
            index.add(np.arange(start, min(nb, start + add_step)), base[start:start + add_step])
            rep.tick(min(nb, start + add_step), f"{message}: building the index")

        def search(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            m = index.search(q, kq)
            keys = np.asarray(m.keys, dtype=np.int64).reshape(len(q), -1)
            dist = np.asarray(m.distances, dtype=np.float32).reshape(len(q), -1)
            counts = np.asarray(m.counts).reshape(-1)
            for r in range(len(q)):  # unfilled slots
                keys[r, counts[r]:] = -1
            sims = 1.0 - dist  # usearch "ip" distance is 1 - dot
            sims[keys < 0] = -np.inf
            return keys, sims

    idx = np.full((nq, k), -1, dtype=np.int64)
    sim = np.full((nq, k), -np.inf, dtype=np.float32)
    for start in range(0, nq, step):
        stop = min(nq, start + step)
        i, s = search(query[start:stop])
        if exclude_self:
            own = i == np.arange(start, stop)[:, None]
            s = np.where(own, -np.inf, s)
            i = np.where(own, -1, i)
            order = np.argsort(-s, axis=1, kind="stable")
            i = np.take_along_axis(i, order, axis=1)
            s = np.take_along_axis(s, order, axis=1)
        w = min(k, i.shape[1])
        idx[start:stop, :w] = i[:, :w]
        sim[start:stop, :w] = s[:, :w]
        rep.tick(nb + stop, f"{message}: searching")
    sim[idx < 0] = -np.inf
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
    Exact when ``n <= exact_max`` (or ``backend="exact"``), else approximate (HNSW).
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
