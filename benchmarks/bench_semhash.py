"""Semantic duplicates: ftcurate against semhash, same encoder, same records, whole process
(issue 14).

semhash (PyPI ``semhash``; a benchmark-only dependency: ``pip install semhash``) is given
ftcurate's built-in static model (WordLlama, the same vectors ftcurate uses) as its encoder, so
both find pairs of records whose cosine is at least 0.95 from identical embeddings. Each run is a
fresh interpreter that reads the records from one JSON Lines file, loads the model, embeds and
finds the duplicates: imports and model loading are counted (the time a user waits for
``ftcurate scan`` or a semhash script). The two tools alternate at each size, twice.

Agreement: the records each tool would drop (all but the first of every group of duplicates:
semhash's ``self_deduplicate`` result; for ftcurate, the connected components of its pairs),
compared as sets.

Data: GSM8K training questions cycled with random word edits (benchmarks/bench_scan.py
``build``), the user turn of each record.

Usage: python benchmarks/bench_semhash.py [--n 20000 50000 200000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
THRESHOLD = 0.95

FTCURATE = r'''
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from ftcurate.core.quality.embeddings import embed, load_model
from ftcurate.core.quality.semantic import semantic_duplicates
texts = [json.loads(l)["text"] for l in open({path!r}, encoding="utf-8")]
t1 = time.perf_counter()
load_model("static-wordllama")
t2 = time.perf_counter()
emb = embed(texts)
t3 = time.perf_counter()
pairs = semantic_duplicates(emb, threshold={thr!r})
t4 = time.perf_counter()
print("RESULT " + json.dumps({{"pairs": [[a, b] for a, b, _ in pairs], "import_read": t1 - t0, "load": t2 - t1,
      "embed": t3 - t2, "dedup": t4 - t3, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
'''

SEMHASH = r'''
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from semhash import SemHash
from ftcurate.core.quality.embeddings import load_model
records = [json.loads(l) for l in open({path!r}, encoding="utf-8")]
t1 = time.perf_counter()
model = load_model("static-wordllama")  # the same encoder as ftcurate's
t2 = time.perf_counter()
sh = SemHash.from_records(records=records, columns=["text"], model=model)
t3 = time.perf_counter()
res = sh.self_deduplicate(threshold={thr!r})
t4 = time.perf_counter()
dropped = sorted({{int(d.record["id"]) for d in res.filtered}}) if hasattr(res, "filtered") else None
if dropped is None:
    dropped = sorted({{int(d.record["id"]) for d in res.duplicates}})
print("RESULT " + json.dumps({{"dropped": dropped, "import_read": t1 - t0, "load": t2 - t1, "embed_index": t3 - t2,
      "dedup": t4 - t3, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
'''


def dropped_from_pairs(pairs: list, n: int) -> set[int]:
    """All but the smallest index of each connected component of the pairs."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i for i in range(n) if find(i) != i}


def run(code: str) -> tuple[float, dict]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return wall, json.loads(line[7:])
    raise RuntimeError(proc.stderr[-3000:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[20_000, 50_000, 200_000])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    from bench_scan import build

    print(f"{os.cpu_count()} cores, load average {open('/proc/loadavg').read().split()[:3]}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ftcurate-semhash-") as tmp:
        for n in args.n:
            train, _test, _planted = build(n - 100)
            texts = [r.messages[1].content for r in train][:n]
            path = os.path.join(tmp, f"texts_{n}.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                for i, t in enumerate(texts):
                    f.write(json.dumps({"id": i, "text": t}) + "\n")
            best: dict = {}
            for _ in range(args.repeat):
                for name, tpl in (("semhash", SEMHASH), ("ftcurate", FTCURATE)):
                    wall, res = run(tpl.format(root=ROOT, path=path, thr=THRESHOLD))
                    print(f"n={len(texts):,} {name}: {wall:.2f} s whole process "
                          f"({', '.join(f'{k} {v:.2f}' for k, v in res.items() if isinstance(v, float) and k != 'rss')}), "
                          f"peak RSS {res['rss']:.0f} MB", flush=True)
                    if name not in best or wall < best[name][0]:
                        best[name] = (wall, res)
            a = set(best["semhash"][1]["dropped"])
            b = dropped_from_pairs(best["ftcurate"][1]["pairs"], len(texts))
            both = len(a & b)
            row = {"n": len(texts), "semhash_s": round(best["semhash"][0], 2), "ftcurate_s": round(best["ftcurate"][0], 2),
                   "speedup": round(best["semhash"][0] / best["ftcurate"][0], 2),
                   "semhash_rss": round(best["semhash"][1]["rss"]), "ftcurate_rss": round(best["ftcurate"][1]["rss"]),
                   "semhash_load": round(best["semhash"][1]["load"], 2), "ftcurate_load": round(best["ftcurate"][1]["load"], 2),
                   "dropped_semhash": len(a), "dropped_ftcurate": len(b), "dropped_both": both,
                   "agreement_jaccard": round(both / max(1, len(a | b)), 4)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| records | semhash (whole process) | ftcurate | ftcurate speed vs semhash | peak RSS semhash / ftcurate "
          "| model load semhash / ftcurate | records dropped: semhash / ftcurate / both (Jaccard) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} | {r['semhash_s']:.2f} s | {r['ftcurate_s']:.2f} s | {r['speedup']:.2f}x | "
              f"{r['semhash_rss']:,} / {r['ftcurate_rss']:,} MB | {r['semhash_load']:.2f} / {r['ftcurate_load']:.2f} s | "
              f"{r['dropped_semhash']:,} / {r['dropped_ftcurate']:,} / {r['dropped_both']:,} ({r['agreement_jaccard']:.3f}) |")


if __name__ == "__main__":
    main()
