"""Neighbour search settings: time and recall of each way to find every row's neighbours, on the
same embeddings, in one run.

Embeds ``--n`` one-line synthetic questions (the 1M-record case of ``bench_scale.py --data
short``) with the scan's fast model once (cached in ``--cache``), then, for each setting,
searches every row's ``--k`` nearest rows:

* ``clustered:P``: ``neighbors.knn``'s clustered search (core/quality/ivf.py) with ``P`` probes
  (the scan's default: 16);
* ``M:ef_construction:ef_search:extra``: a usearch int8 HNSW graph (every core), asked for
  ``10 + extra`` candidates of every row, re-scored with the exact cosine (the scan's search
  before the clustered one).

Recall@10 is checked on 1,000 sampled rows against exact search (tie-aware: a found neighbour
counts when its cosine is at least the true 10th best). The first setting is the baseline of
the ratios. The outlier columns compare the scan's capped outlier list from each setting's
lists, refined and not, with the exact list.

    python benchmarks/bench_ann.py --n 200000
    python benchmarks/bench_ann.py --n 1000000 --settings 10:48:56:6 clustered:16 --no-exact-list
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

from annrecall import ExactSample  # noqa: E402
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


def search(emb: np.ndarray, setting: str, k: int):
    """Search every row with one setting: ``clustered:P`` (``neighbors.knn_search``'s clustered
    search with ``P`` probes) or ``M:ef_construction:ef_search:extra`` (a usearch HNSW graph,
    candidates re-scored exactly). Returns the :class:`Neighbours` and the build (None for the
    clustered search) and total times."""
    from ftcurate.core.progress import Reporter
    from ftcurate.core.quality import neighbors as nb
    from ftcurate.core.quality.neighbors import Neighbours, _Graph

    n = len(emb)
    t = time.perf_counter()
    if setting.startswith("clustered"):
        probes, nb.KNN_PROBES = nb.KNN_PROBES, int(setting.split(":")[1])
        try:
            found = nb.knn_search(emb, k, exact_max=0, backend="clustered")
        finally:
            nb.KNN_PROBES = probes
        return found, None, time.perf_counter() - t
    m, efc, efs, extra = (int(x) for x in setting.split(":"))
    graph = _Graph(emb, "usearch", Reporter(None, None, total=n), "", m, efc)
    built = time.perf_counter() - t
    idx, sim = graph.search(emb, k, np.arange(n), efs, extra)
    return Neighbours(idx, sim, False, emb, graph), built, time.perf_counter() - t


def flagged(emb: np.ndarray, nbrs, refine, share: float) -> tuple[list[int], float]:
    """The scan's outlier list (k 10, capped at ``share``) from these lists, refined with
    ``refine`` (None: not refined); returns it and the refining time."""
    from ftcurate.core.quality.outliers import knn_outliers

    t = time.perf_counter()
    res = knn_outliers(emb, k=10, neighbors=(nbrs.idx[:, :10], nbrs.sim[:, :10]), max_share=share, min_count=20,
                       refine=refine)
    return res.flagged, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--settings", nargs="+", default=["10:48:56:6", "clustered:12", "clustered:16"],
                    help="M:ef_construction:ef_search:extra (usearch HNSW) or clustered:PROBES")
    ap.add_argument("--k", type=int, default=20, help="neighbours kept per row (the scan keeps 20 above 10k rows)")
    ap.add_argument("--share", type=float, default=0.01, help="the outlier cap (the scan's outlier_max_share)")
    ap.add_argument("--graph-refine", action="store_true",
                    help="refine the outlier candidates on the index (more clusters / a wider beam) even where "
                         "exact refining is affordable (what the scan does at 1M rows)")
    ap.add_argument("--no-exact-list", action="store_true",
                    help="skip the exact outlier list (277 s at 1M rows) and its agreement columns")
    ap.add_argument("--cache", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "ftcurate-bench-ann"))
    args = ap.parse_args()
    emb = embeddings(args.n, args.cache)
    exact = ExactSample(emb)
    print(f"{args.n:,} rows x {emb.shape[1]} dims, {os.cpu_count()} cores, k {args.k}")
    from ftcurate.core.quality import neighbors as nb
    from ftcurate.core.quality import outliers as outl

    truth = None
    print("| setting | build s | total s | vs first | recall@10 "
          "| outliers: refine s | agree (refined) | agree (not refined) |")
    print("|---|---|---|---|---|---|---|---|")
    first = None
    for setting in args.settings:
        found, built, total = search(emb, setting, args.k)
        _strict, recall = exact.recall(found.idx)
        if args.no_exact_list:
            first = first or total
            print(f"| {setting} | {'-' if built is None else f'{built:.1f}'} | {total:.1f} | x{total / first:.2f} "
                  f"| {recall:.4f} | | | |", flush=True)
            continue
        if truth is None:  # exact refinement until no row can enter the list: the exact list
            rounds, pairs = outl._REFINE_ROUNDS, nb.EXACT_REFINE_PAIRS
            outl._REFINE_ROUNDS, nb.EXACT_REFINE_PAIRS = 10_000, 10**18
            truth, t_exact = flagged(emb, found, lambda rows: found.refine(rows, 10), args.share)
            outl._REFINE_ROUNDS, nb.EXACT_REFINE_PAIRS = rounds, pairs
            print(f"exact outlier list: {len(truth):,} rows, {t_exact:.1f} s", flush=True)
        pairs = nb.EXACT_REFINE_PAIRS
        nb.EXACT_REFINE_PAIRS = 0 if args.graph_refine else pairs
        got_r, t_ref = flagged(emb, found, lambda rows: found.refine(rows, 10), args.share)
        nb.EXACT_REFINE_PAIRS = pairs
        got_n, _t = flagged(emb, found, None, args.share)
        agree_r = len(set(got_r) & set(truth)) / max(1, len(truth))
        agree_n = len(set(got_n) & set(truth)) / max(1, len(truth))
        first = first or total
        print(f"| {setting} | {'-' if built is None else f'{built:.1f}'} | {total:.1f} | x{total / first:.2f} "
              f"| {recall:.4f} | {t_ref:.1f} "
              f"| {agree_r:.3f} | {agree_n:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
