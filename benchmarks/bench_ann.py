"""Neighbour search settings: time and recall of HNSW settings on the same embeddings, in one run.

Embeds ``--n`` one-line synthetic questions (the 1M-record case of ``bench_scale.py --data
short``) with the scan's fast model once (cached in ``--cache``), then, for each setting,
builds a usearch int8 HNSW graph (every core), asks it for ``10 + extra`` candidates of every
row, re-scores them with the exact cosine and keeps the best 10 — what
``neighbors.knn`` does. Recall@10 is checked on 1,000 sampled rows against exact search
(tie-aware: a found neighbour counts when its cosine is at least the true 10th best). The
first setting is the baseline of the ratios.

    python benchmarks/bench_ann.py --n 200000
    python benchmarks/bench_ann.py --n 1000000 --settings 16:64:64:4 10:48:56:6

A setting is ``M:ef_construction:ef_search:extra``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
WORDS = ("add subtract apples pears total each left price store bought gave how many more fewer "
         "twice half train bus miles hours week days cookies friends share equally").split()


def embeddings(n: int, cache: str) -> np.ndarray:
    path = os.path.join(cache, f"bench_ann_{n}.npy")
    if os.path.exists(path):
        return np.load(path)
    from ftcurate.core.quality.embeddings import embed

    rng = random.Random(0)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(6, 14))) + f" {i}?" for i in range(n)]
    t = time.perf_counter()
    emb = np.asarray(embed(texts), dtype=np.float32)
    print(f"embedded {n:,} texts in {time.perf_counter() - t:.1f} s", flush=True)
    os.makedirs(cache, exist_ok=True)
    np.save(path, emb)
    return emb


def search(emb: np.ndarray, m: int, efc: int, efs: int, extra: int) -> tuple[np.ndarray, float, float]:
    from usearch.index import Index

    from ftcurate.core.quality.neighbors import _rescore, threads

    n, kq = len(emb), 11 + extra
    t = time.perf_counter()
    index = Index(ndim=emb.shape[1], metric="ip", dtype="i8", connectivity=m, expansion_add=efc,
                  expansion_search=max(efs, 2 * kq))
    index.add(np.arange(n), emb, threads=threads())
    built = time.perf_counter() - t
    found = index.search(emb, kq, threads=threads())
    keys = np.asarray(found.keys, dtype=np.int64).reshape(n, -1)
    keys = np.where(keys == np.arange(n)[:, None], -1, keys)
    scores = _rescore(emb, emb, keys)
    order = np.argsort(-scores, axis=1, kind="stable")
    idx = np.take_along_axis(keys, order, axis=1)[:, :10]
    return idx, built, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--settings", nargs="+", default=["16:64:64:4", "10:48:56:6"])
    ap.add_argument("--cache", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ftcurate-bench-ann"))
    args = ap.parse_args()
    emb = embeddings(args.n, args.cache)
    rs = np.random.default_rng(0)
    q = rs.choice(len(emb), min(1000, len(emb)), replace=False)
    sims = emb[q] @ emb.T
    sims[np.arange(len(q)), q] = -np.inf
    top = np.argpartition(-sims, 10, axis=1)[:, :10]
    tenth = np.take_along_axis(sims, top, axis=1).min(axis=1)
    print(f"{args.n:,} rows x {emb.shape[1]} dims, {os.cpu_count()} cores")
    print("| M : ef_construction : ef_search : extra | build s | total s | vs first | recall@10 |")
    print("|---|---|---|---|---|")
    first = None
    for setting in args.settings:
        m, efc, efs, extra = (int(x) for x in setting.split(":"))
        idx, built, total = search(emb, m, efc, efs, extra)
        got = np.take_along_axis(sims, np.maximum(idx[q], 0), axis=1)
        recall = float(np.mean((got >= tenth[:, None] - 1e-5) & (idx[q] >= 0)))
        first = first or total
        print(f"| {setting} | {built:.1f} | {total:.1f} | x{total / first:.2f} | {recall:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
