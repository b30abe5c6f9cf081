"""The scan on a Ray cluster with 1 and 2 worker nodes, against the local scan of the same data
in the same run (issue 15 A).

Data: tests/scan_data.py's synthetic chat set (words of the bundled sample; planted exact and
near copies, off-topic records, leaked test prompts), N training records against 200 test
records. Settings: the defaults without semantic leakage (its MiniLM stage runs on the driver
either way). The cluster is real and local: a head node without CPUs for tasks and 1 or 2
worker nodes of 1 CPU each, all on 127.0.0.1 (ray.cluster_utils). Reported: wall time of
scan_files (connecting and reading included, starting the cluster not), per-stage timings,
and whether the reports agree with the local one (exact groups, leaks, near pairs, outliers).

Usage: python benchmarks/bench_ray.py [--n 20000] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # one machine: everything on 127.0.0.1

from ftcurate.core.quality.scan import ScanSettings, scan_files  # noqa: E402
from scan_data import make_dataset, write_jsonl  # noqa: E402


def agreement(local: dict, ray: dict) -> dict:
    pairs = lambda r: {(p["a"], p["b"]) for c in r["near_duplicate_clusters"] for p in c["pairs"]}  # noqa: E731
    lp, rp = pairs(local), pairs(ray)
    lo, ro = {o["index"] for o in local["outliers"]}, {o["index"] for o in ray["outliers"]}
    return {"exact_groups_equal": local["exact_duplicates"] == ray["exact_duplicates"],
            "leaks_equal": local["leakage"] == ray["leakage"],
            "near_pairs_found": round(len(lp & rp) / max(1, len(lp)), 4),
            "outliers_found": round(len(lo & ro) / max(1, len(lo)), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    ray_constants.ENABLE_RAY_CLUSTER = False
    tmp = tempfile.mkdtemp(prefix="bench-ray-")
    train, test = make_dataset(args.n, 200, seed=1)
    tr, te = write_jsonl(os.path.join(tmp, "train.jsonl"), train), write_jsonl(os.path.join(tmp, "test.jsonl"), test)
    settings = dict(semantic_leakage=False)
    t = time.perf_counter()
    local = scan_files(tr, te, settings=ScanSettings(**settings))
    rows = [{"engine": "local (this process)", "seconds": round(time.perf_counter() - t, 1), "timings": local["timings"]}]
    print(json.dumps(rows[-1]), flush=True)
    node = {"node_ip_address": "127.0.0.1", "object_store_memory": 512 * 1024 * 1024}
    for w in args.workers:
        cluster = Cluster(initialize_head=True, head_node_args=dict(node, num_cpus=0, include_dashboard=False))
        for _ in range(w):
            cluster.add_node(num_cpus=1, **node)
        cluster.wait_for_nodes()
        try:
            t = time.perf_counter()
            got = scan_files(tr, te, settings=ScanSettings(engine="ray", ray_address=cluster.address, **settings))
            rows.append({"engine": f"ray, {w} worker node(s) x 1 CPU", "seconds": round(time.perf_counter() - t, 1),
                         "shards": got["engine"]["shards"], "timings": got["timings"], **agreement(local, got)})
            print(json.dumps(rows[-1]), flush=True)
        finally:
            if ray.is_initialized():
                ray.shutdown()
            cluster.shutdown()
    print("\n| engine | scan (s) | vs 1 worker | agreement |\n|---|---|---|---|")
    one = next((r["seconds"] for r in rows if r["engine"].startswith("ray, 1 ")), None)
    for r in rows:
        ratio = f"{one / r['seconds']:.2f}x" if one and r["engine"].startswith("ray") else ""
        agree = "" if "leaks_equal" not in r else (
            f"exact {'=' if r['exact_groups_equal'] else '≠'}, leaks {'=' if r['leaks_equal'] else '≠'}, "
            f"near pairs {r['near_pairs_found']:.2%}, outliers {r['outliers_found']:.2%}")
        print(f"| {r['engine']} | {r['seconds']} | {ratio} | {agree} |")


if __name__ == "__main__":
    main()
