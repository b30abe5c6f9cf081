"""Full default scan at several sizes, stage by stage, the current code against a baseline
commit in the same run (issue 14).

Each (code, size) runs in a fresh interpreter, one after the other: it builds the records,
runs ``scan_records`` with the default settings against the 1,319 GSM8K test records (the
leakage check embeds them with MiniLM: nothing is cached), and prints one JSON line with the
stage timings, the total, the peak RSS and the quality numbers. ``peak_rss_with_workers_mb`` is the peak of this process and its
worker processes (record pass, static-model embedding) together, ``peak_rss_workers_mb`` the
workers' alone, both sampled every 0.2 s (``ru_maxrss`` of the children would not do: a child
forked from a large process reports that process's size as its peak). The baseline is the code of a
commit (default: the one before issue 14's changes) unpacked with ``git archive`` into a
temporary folder. Start-up (imports, loading the models and the numba kernel) is timed apart
and added to the whole.

Each unpacked copy first scans ``--warm-n`` records (default 20,000, not reported) so that its
numba kernels are compiled and cached on disk, as they are on a user's machine after the first
scan: compiling them inside the measured run added 0.2 GB to the peak at 200k and 0.75 GB at 1M
(LLVM's memory between the scan's large arrays), and 5-10 s.

Data (``--data``):
  * ``real``: GSM8K train questions cycled with random word edits, plus 50 exact copies, 30
    leaked test questions and 20 off-topic outliers (benchmarks/bench_scan.py ``build``): a
    large uniform set with planted problems;
  * ``short``: one-line synthetic questions of 6-14 words from a 28-word vocabulary and a short
    answer (benchmarks/bench_memory.py): the 1M-record memory case.

Code that has ``ftcurate.core.project.columns`` gets the training records as a ``RecordColumns``
filled one record at a time (as ``scan_files`` and ``scan_project`` fill it from the file or the
project), older code a list of ``Record`` objects.

The new code's run also checks the approximate neighbour search: recall of the true 10 nearest
neighbours on 1,000 sampled rows against exact search (``recall@10``; ``tie-aware``: a found
neighbour counts when its exact cosine is at least the true 10th best, which matters on data
with many equal vectors).

Usage:
  python benchmarks/bench_scale.py --data real --n 50000 200000
  python benchmarks/bench_scale.py --data short --n 1000000 --skip-baseline
  python benchmarks/bench_scale.py --baseline-commit <sha> ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BASELINE = "d8a5bad"  # main before issue 14

CHILD = r'''
import json, os, random, resource, sys, time
t_start = time.perf_counter()
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
import numpy as np
from bench_scan import build
WORDS = ("add subtract apples pears total each left price store bought gave how many more fewer "
         "twice half train bus miles hours week days cookies friends share equally").split()
from ftcurate.core.project.records import Message, Record
kind, n, check = {kind!r}, {n!r}, {check!r}
if kind == "real":
    train, test, planted = build(n)
else:
    rng = random.Random(0)
    _, test, _ = build(10)
    train = (Record([Message("user", " ".join(rng.choices(WORDS, k=rng.randint(6, 14))) + f" {{i}}?"),
                     Message("assistant", f"The answer is {{rng.randint(1, 999)}}.")]) for i in range(n))
    planted = {{"exact": [], "leak": [], "outlier": []}}
try:  # the code's column store, as scan_files and scan_project fill it (one record at a time)
    from ftcurate.core.project.columns import RecordColumns
    train_items = RecordColumns(enumerate(train))
except ImportError:  # older code: a list of records
    train_items = list(enumerate(train))
del train
t_built = time.perf_counter()
from ftcurate.core.quality import neighbors
from ftcurate.core.quality.scan import ScanSettings, scan_records
captured = {{}}
def capture(real):
    # only the sampled rows' lists are kept (the recall check's), not a second reference to the
    # whole n x k lists: the scan drops them after the semantic duplicates
    def wrapped(emb, *a, **kw):
        out = real(emb, *a, **kw)
        if check:
            from annrecall import sample_rows
            captured["emb"] = emb
            idx = out.idx if hasattr(out, "idx") else out[0]
            captured["sample_idx"] = np.array(idx[sample_rows(len(emb))])
        return out
    return wrapped
neighbors.knn = capture(neighbors.knn)
if hasattr(neighbors, "knn_search"):  # the scan's search since the outlier lists are refined
    neighbors.knn_search = capture(neighbors.knn_search)
import threading
stage_now, stage_rss, sampling, workers_peak = ["start"], {{}}, [True], {{"workers": 0, "total": 0}}
def rss_mb(pid="self"):
    try:
        with open(f"/proc/{{pid}}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # a worker that just ended
        return 0.0
def workers_rss_mb():  # the worker processes now running (record pass, embedding)
    pids = []
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{{t}}/children") as f:
                pids += f.read().split()
        except OSError:
            pass
    return sum(rss_mb(p) for p in pids)
def sample():  # peak RSS per stage, and of this process and its workers together (every 0.2 s)
    while sampling[0]:
        me, kids = rss_mb(), workers_rss_mb()
        stage_rss[stage_now[0]] = max(stage_rss.get(stage_now[0], 0), round(me))
        workers_peak["workers"] = max(workers_peak["workers"], round(kids))
        workers_peak["total"] = max(workers_peak["total"], round(me + kids))
        time.sleep(0.2)
def on_progress(done, total_, message=""):
    stage_now[0] = message.split(" — ")[0].split(": ", 1)[-1]
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
report = scan_records(train_items, list(enumerate(test)), settings=ScanSettings(), progress=on_progress)
total = time.perf_counter() - t0
sampling[0] = False
n_train = len(train_items)
out = {{"n": n_train, "total": round(total, 1), "timings": report["timings"], "columns": not isinstance(train_items, list),
        "build_s": round(t_built - t_start, 1), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_workers_mb": workers_peak["workers"], "peak_rss_with_workers_mb": workers_peak["total"],
        "peak_rss_mb_by_stage": stage_rss,
        "outliers": len(report["outliers"]), "outlier_share": round(len(report["outliers"]) / n_train, 4),
        "planted_outliers": len(planted["outlier"]),
        "planted_outliers_found": len({{o["index"] for o in report["outliers"]}} & set(planted["outlier"])),
        "planted_leaks_found": sum(1 for p in planted["leak"] if p in {{(h["index"], h["test_index"]) for h in report["leakage"]}}),
        "leaking_records": len({{h["index"] for h in report["leakage"]}}),
        "semantic_duplicates": len(report.get("semantic_duplicates") or []),
        "near_duplicate_clusters": len(report.get("near_duplicates") or []),
        "exact_groups": len(report["exact_duplicates"])}}
if check and "sample_idx" in captured:
    from annrecall import ExactSample
    strict, tie = ExactSample(np.asarray(captured["emb"], dtype=np.float32)).recall_of_sample(captured["sample_idx"])
    out["recall_at_10"] = round(strict, 4)
    out["recall_at_10_tie_aware"] = round(tie, 4)
print("RESULT " + json.dumps(out), flush=True)
'''


def unpack_baseline(commit: str, dest: str) -> str:
    """The ftcurate package (and benchmarks) of ``commit`` in ``dest`` (git archive)."""
    code = os.path.join(dest, "base")
    os.makedirs(code)  # dest/base: the code; dest/shared: the data
    # its benchmarks read ../shared/realdata next to the code, as in the repository
    os.symlink(os.path.join(os.path.dirname(ROOT), "shared"), os.path.join(dest, "shared"))
    tar = os.path.join(dest, "base.tar")
    subprocess.run(["git", "-C", ROOT, "archive", "-o", tar, commit, "ftcurate", "benchmarks"], check=True)
    with tarfile.open(tar) as tf:
        tf.extractall(code, filter="data")
    os.remove(tar)
    return code


def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def run(code_root: str, kind: str, n: int, check: bool, timeout: int) -> dict:
    src = CHILD.format(root=code_root, bench=os.path.join(code_root, "benchmarks"), kind=kind, n=n, check=check)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    wall = time.perf_counter() - t
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            res["process_wall"] = round(wall, 1)
            return res
    raise RuntimeError(f"run failed ({code_root}, {n}):\n{proc.stderr[-3000:]}")


def growth(points: list[tuple[int, float]]) -> str:
    """Exponent b of t ~ n^b fitted through the first and last point."""
    if len(points) < 2:
        return "-"
    (n0, t0), (n1, t1) = points[0], points[-1]
    if t0 <= 0 or t1 <= 0:
        return "-"
    return f"{math.log(t1 / t0) / math.log(n1 / n0):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=("real", "short"), default="real")
    ap.add_argument("--n", type=int, nargs="+", default=[50_000, 200_000])
    ap.add_argument("--baseline-commit", default=BASELINE)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--now-commit", default="HEAD",
                    help="the code measured as 'now' (unpacked like the baseline, so that editing the working "
                         "tree during a long run changes nothing); '.' for the working tree")
    ap.add_argument("--timeout", type=int, default=7200)
    ap.add_argument("--warm-n", type=int, default=20_000,
                    help="records of the unreported first scan of each copy (compiles the numba kernels); 0: none")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    results: dict = {"data": args.data, "cores": os.cpu_count(), "load_start": load_average(), "runs": []}
    print(f"data {args.data}, sizes {args.n}, {os.cpu_count()} cores, load average at start {results['load_start']}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="ftcurate-base-") as tmp:
        base = None if args.skip_baseline else unpack_baseline(args.baseline_commit, os.path.join(tmp, "b"))
        now = ROOT if args.now_commit == "." else unpack_baseline(args.now_commit, os.path.join(tmp, "n"))
        for root in (base, now):
            if root is not None and args.warm_n:
                run(root, args.data, args.warm_n, False, args.timeout)
        for n in args.n:
            for label, root, check in (("baseline", base, False), ("now", now, True)):
                if root is None:
                    continue
                res = run(root, args.data, n, check, args.timeout)
                res.update(code=label, load=load_average())
                results["runs"].append(res)
                print(json.dumps(res), flush=True)
    results["load_end"] = load_average()
    # per-stage table
    stages: list[str] = []
    for r in results["runs"]:
        stages += [k for k in r["timings"] if k not in stages]
    print(f"\nload average: start {results['load_start']}, end {results['load_end']}")
    head = ["stage"] + [f"{r['code']} {r['n']:,}" for r in results["runs"]]
    print(" | ".join(head))
    for k in stages + ["total", "peak_rss_mb", "peak_rss_with_workers_mb"]:
        cells = []
        for r in results["runs"]:
            v = r["timings"].get(k) if k in r["timings"] else r.get(k)
            cells.append("-" if v is None else (f"{v:,.0f} MB" if k.startswith("peak_rss") else f"{v:.1f} s"))
        print(" | ".join([k] + cells))
    for label in ("baseline", "now"):
        pts = [(r["n"], r["total"]) for r in results["runs"] if r["code"] == label]
        print(f"growth exponent ({label}, total time): {growth(pts)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
