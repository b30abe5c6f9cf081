"""Memory of a full scan of N short records (default 1M) against a 1,319-record test set.

Prints peak RSS and per-stage times. Usage: python benchmarks/bench_memory.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_scan import build  # noqa: E402

WORDS = ("add subtract apples pears total each left price store bought gave how many more fewer "
         "twice half train bus miles hours week days cookies friends share equally").split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args()
    from ftcurate.core.project.records import Message, Record
    from ftcurate.core.quality.scan import scan_records

    rng = random.Random(0)
    _, test, _ = build(10)
    train = [(i, Record([Message("user", " ".join(rng.choices(WORDS, k=rng.randint(6, 14))) + f" {i}?"),
                         Message("assistant", f"The answer is {rng.randint(1, 999)}.")]))
             for i in range(args.n)]
    print(f"{args.n:,} short records built; RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    t = time.perf_counter()
    report = scan_records(train, list(enumerate(test)))
    print(f"full scan: {time.perf_counter() - t:.0f} s; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    for k, v in report["timings"].items():
        print(f"  {k:22s} {v:7.1f} s")


if __name__ == "__main__":
    main()
