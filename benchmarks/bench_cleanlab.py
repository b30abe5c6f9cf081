"""ftcurate's scanners against cleanlab's Datalab on the same embeddings and data.

Data as in bench_scan.py (GSM8K train cycled with edits, planted exact copies, leaked test
questions and off-topic outliers; held-out = GSM8K test). Both sides get the same static
(WordLlama) embeddings of the user turns. Datalab issue types: near_duplicate and outlier on the
training set; leakage as near_duplicate sets that span train and test when both are
concatenated (Datalab has no train/test leakage type of its own).
ftcurate: MinHash near-duplicates + exact groups, kNN outliers, and its leakage checks.

Usage: python benchmarks/bench_cleanlab.py [--n 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_scan import build  # noqa: E402


def prf(found: set, truth: set) -> str:
    tp = len(found & truth)
    p = tp / len(found) if found else 0.0
    r = tp / len(truth) if truth else 0.0
    return f"precision {p:.2f} recall {r:.2f} ({tp}/{len(truth)} found, {len(found)} reported)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()
    from cleanlab import Datalab

    from ftcurate.core.quality import dedup, outliers, textleak
    from ftcurate.core.quality.embeddings import embed
    from ftcurate.core.quality.scan import user_text

    train, test, planted = build(args.n)
    texts = [user_text(r) for r in train]
    ttexts = [user_text(r) for r in test]
    t = time.perf_counter()
    emb = embed(texts, "static-wordllama")
    temb = embed(ttexts, "static-wordllama")
    print(f"{len(train):,} train / {len(test):,} test; shared embeddings: {time.perf_counter() - t:.1f} s")
    dup_truth = {b for _, b in planted["exact"]} | {a for a, _ in planted["exact"]}
    out_truth = set(planted["outlier"])
    leak_truth = {a for a, _ in planted["leak"]}

    # cleanlab Datalab
    t = time.perf_counter()
    lab = Datalab(data={"text": texts}, verbosity=0)
    lab.find_issues(features=emb, issue_types={"near_duplicate": {}, "outlier": {}})
    t_cl = time.perf_counter() - t
    issues = lab.get_issues()
    cl_dup = set(np.flatnonzero(issues["is_near_duplicate_issue"].to_numpy()))
    cl_out = set(np.flatnonzero(issues["is_outlier_issue"].to_numpy()))
    t = time.perf_counter()
    both = np.vstack([emb, temb])
    lab2 = Datalab(data={"text": texts + ttexts}, verbosity=0)
    lab2.find_issues(features=both, issue_types={"near_duplicate": {}})
    t_cl_leak = time.perf_counter() - t
    sets = lab2.get_info("near_duplicate")["near_duplicate_sets"]
    n = len(texts)
    cl_leak = {i for i in range(n) if any(j >= n for j in sets[i])}

    # ftcurate on the same data
    t = time.perf_counter()
    groups = dedup.exact_duplicate_groups([r.text for r in train])
    clusters = dedup.near_duplicate_clusters([r.text for r in train])
    res = outliers.knn_outliers(emb, k=10)
    t_ft = time.perf_counter() - t
    ft_dup = {i for g in groups for i in g} | {i for c in clusters for i in c.indices}
    ft_out = set(res.flagged)
    t = time.perf_counter()
    hits = textleak.exact_leaks(texts, ttexts) + textleak.ngram_leaks(texts, ttexts) + \
        textleak.minhash_leaks(texts, ttexts)
    t_ft_leak = time.perf_counter() - t
    ft_leak = {h.index for h in hits}

    print("\n| tool | duplicates + outliers time | near/exact duplicates (planted copies) | outliers (planted) "
          "| leakage time | leakage (planted leaked questions) |")
    print("|---|---|---|---|---|---|")
    print(f"| cleanlab Datalab {__import__('cleanlab').__version__} | {t_cl:.1f} s | {prf(cl_dup, dup_truth)} | "
          f"{prf(cl_out, out_truth)} | {t_cl_leak:.1f} s | {prf(cl_leak, leak_truth)} |")
    print(f"| ftcurate | {t_ft:.1f} s | {prf(ft_dup, dup_truth)} | {prf(ft_out, out_truth)} | "
          f"{t_ft_leak:.1f} s | {prf(ft_leak, leak_truth)} |")
    print(f"\nratio time ftcurate / Datalab: duplicates+outliers {t_ft / t_cl:.2f}x, leakage {t_ft_leak / t_cl_leak:.2f}x")
    print("(Datalab's near-duplicate sets also contain the many GSM8K copies this data makes by cycling with "
          "edits; 'precision' counts only planted items as true, so both tools' precision is a lower bound.)")


if __name__ == "__main__":
    main()
