"""The per-record pass of a scan (heuristic flags, exact-duplicate fingerprints, token counts)
in this process against worker processes on every core, same records, same run (issue 14:
both cores for heuristics and exact hashing). Wall time and this process's CPU time; the
results are checked to be identical.

Usage: python benchmarks/bench_recordpass.py [--n 200000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from bench_scan import build

    from ftcurate.core.quality import recordpass
    from ftcurate.core.quality.heuristics import HeuristicSettings

    recs, _test, _planted = build(args.n)
    print(f"{len(recs):,} records, {os.cpu_count()} cores, load average {open('/proc/loadavg').read().split()[:3]}")
    results = {}
    for _ in range(args.repeat):
        for label, workers in (("this process", "1"), ("worker processes", "")):
            os.environ["FTCURATE_WORKERS"] = workers
            w, c = time.perf_counter(), time.process_time()
            res = recordpass.record_pass(recs, HeuristicSettings())
            wall, cpu = time.perf_counter() - w, time.process_time() - c
            print(f"{label:18s} ({recordpass.workers(len(recs))} process(es)): {wall:6.1f} s wall, "
                  f"{cpu:6.1f} s CPU in this process", flush=True)
            prev = results.get(label)
            results[label] = (min(wall, prev[0]) if prev else wall, res)
    a, b = results["this process"], results["worker processes"]
    same = a[1].flags == b[1].flags and all(np.array_equal(getattr(a[1], f), getattr(b[1], f))
                                            for f in ("content", "prompt", "answer", "tokens"))
    print(f"best of {args.repeat}: {a[0]:.1f} s vs {b[0]:.1f} s = {a[0] / b[0]:.2f}x; identical results: {same}")


if __name__ == "__main__":
    main()
