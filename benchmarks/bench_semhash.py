"""Semantic duplicates: ftcurate against semhash, same encoder, same records, whole process
(issue 14).

semhash (PyPI ``semhash``; a benchmark-only dependency: ``pip install semhash``) is given
ftcurate's built-in static model (WordLlama, the same vectors ftcurate uses) as its encoder, so
both find pairs of records whose cosine is at least 0.95 from identical embeddings. Each run is a
fresh interpreter that reads the records from one JSON Lines file, loads the model, embeds and
finds the duplicates: imports and model loading are counted (the time a user waits for
``ftcurate scan`` or a semhash script). The two tools alternate at each size, twice.

Agreement: the records each tool would drop, by one rule (semhash's: records in order, a
record is dropped when it pairs with an earlier record that was kept): semhash's own
``self_deduplicate`` result against the same rule applied to ftcurate's pairs, compared as sets.
Recall of the pairs: every pair (cosine >= 0.95, exact float32 products) of a random sample of
records with all records, found by neither subprocess's timing, against each tool's pairs.

Model loading: each loader in a fresh interpreter, three times (median): ftcurate's
``load_model`` (numpy weights and the tokenizer, no torch) and the loader ftcurate had before
(sentence-transformers ``StaticEmbedding`` over the same weights: imports torch). (wordllama's
own ``WordLlama.load`` is left out: it reaches for the Hugging Face hub.)

Data: GSM8K training questions cycled with random word edits (benchmarks/bench_scan.py
``build``), the user turn of each record.

Usage: python benchmarks/bench_semhash.py [--n 20000 50000 200000] [--repeat 2] [--sample 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
THRESHOLD = 0.95

FTCURATE = r'''
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from ftcurate.core.quality.embeddings import embed, load_model
from ftcurate.core.quality.semantic import semantic_duplicates
import numpy as np
texts = [json.loads(l)["text"] for l in open({path!r}, encoding="utf-8")]
t1 = time.perf_counter()
load_model("static-wordllama")
t2 = time.perf_counter()
emb = embed(texts)
t3 = time.perf_counter()
pairs = semantic_duplicates(emb, threshold={thr!r})
t4 = time.perf_counter()
np.save({emb_path!r}, emb)  # for the reference pairs (after the timing)
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
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
pairs = set()  # after the timing: the pairs semhash found (its groups of exact copies expanded)
groups, neighbours, _v = getattr(res, "_selection_inputs", None) or (None, None, None)
if groups is not None:
    ids = [[int(r["id"]) for r in g] for g in groups]
    for g, (idx, sims) in enumerate(neighbours):
        for a in ids[g]:
            pairs.update((min(a, b), max(a, b)) for b in ids[g] if b != a)
        for h, sim in zip(idx.tolist(), sims.tolist()):
            if sim >= {thr!r} and h != g:
                pairs.update((min(a, b), max(a, b)) for a in ids[g] for b in ids[int(h)])
print("RESULT " + json.dumps({{"dropped": dropped, "pairs": sorted(pairs) if groups is not None else None,
      "import_read": t1 - t0, "load": t2 - t1, "embed_index": t3 - t2, "dedup": t4 - t3, "rss": rss}}))
'''


LOADERS = {
    "ftcurate": r'''
import sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from ftcurate.core.quality.embeddings import load_model
t1 = time.perf_counter()
load_model("static-wordllama")
t2 = time.perf_counter()
print("RESULT", t2 - t1, t2 - t0, "torch" in sys.modules)
''',
    "before (sentence-transformers)": r'''
import sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from ftcurate.core.quality.embeddings import _wordllama_files
t1 = time.perf_counter()
from safetensors import safe_open
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer
try:
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
except ImportError:
    from sentence_transformers.models import StaticEmbedding
weights_path, tok_path = _wordllama_files()
with safe_open(weights_path, framework="np") as f:
    weights = f.get_tensor("embedding.weight").astype("float32")
model = SentenceTransformer(modules=[StaticEmbedding(Tokenizer.from_file(tok_path), embedding_weights=weights)], device="cpu")
t2 = time.perf_counter()
print("RESULT", t2 - t1, t2 - t0, "torch" in sys.modules)
''',
}


def loader_times(repeat: int = 3) -> list[dict]:
    """Each loader in a fresh interpreter, ``repeat`` times, interleaved: median seconds of the
    load itself and of the imports plus the load."""
    import statistics

    got: dict = {name: [] for name in LOADERS}
    for _ in range(repeat):
        for name, code in LOADERS.items():
            proc = subprocess.run([sys.executable, "-c", code.format(root=ROOT)], capture_output=True, text=True,
                                  timeout=600)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                print(f"loader {name}: failed: {proc.stderr.strip()[-300:]}", flush=True)
                continue
            _r, load, total, torch = line.split()
            got[name].append((float(load), float(total), torch == "True"))
    out = []
    for name, runs in got.items():
        if runs:
            out.append({"loader": name, "load_s": round(statistics.median(r[0] for r in runs), 3),
                        "with_imports_s": round(statistics.median(r[1] for r in runs), 3),
                        "imports_torch": runs[0][2]})
    return out


def reference_pairs(emb_path: str, sample: int, threshold: float = THRESHOLD, seed: int = 0) -> tuple[set, np.ndarray]:
    """Every pair ``(a, b)`` with cosine >= threshold that has a record of a random sample in it
    (exact float32 products of the sample with all records), and the sample."""

    x = np.load(emb_path)
    n = len(x)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, sample), replace=False))
    out = set()
    for start in range(0, len(rows), 1024):
        q = rows[start:start + 1024]
        r, c = np.nonzero(x[q] @ x.T >= threshold)
        a, b = q[r], c
        keep = a != b
        out.update(zip(np.minimum(a, b)[keep].tolist(), np.maximum(a, b)[keep].tolist()))
    return out, rows


def recall(truth: set, found, rows) -> float:
    """Share of the reference pairs (those with a sampled record in them) in ``found``."""
    if not truth:
        return 1.0
    found = {(min(a, b), max(a, b)) for a, b in found}
    return len(truth & found) / len(truth)


def dropped_greedy(pairs: list, n: int) -> set[int]:
    """Records dropped by semhash's rule: in order, a record is dropped when it pairs with an
    earlier record that was kept."""
    partners: dict[int, list[int]] = {}
    for a, b in pairs:
        a, b = min(a, b), max(a, b)
        partners.setdefault(b, []).append(a)
    dropped: set[int] = set()
    for i in sorted(partners):
        if any(j not in dropped for j in partners[i]):
            dropped.add(i)
    return dropped


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
    ap.add_argument("--sample", type=int, default=5000, help="records whose pairs are checked against exact search")
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    from bench_scan import build

    print(f"{os.cpu_count()} cores, load average {open('/proc/loadavg').read().split()[:3]}", flush=True)
    loaders = loader_times()
    for r in loaders:
        print(f"model load, fresh process: {r['loader']}: {r['load_s']:.2f} s "
              f"({r['with_imports_s']:.2f} s with imports; torch imported: {r['imports_torch']})", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ftcurate-semhash-") as tmp:
        for n in args.n:
            train, _test, _planted = build(n - 100)
            texts = [r.messages[1].content for r in train][:n]
            path = os.path.join(tmp, f"texts_{n}.jsonl")
            emb_path = os.path.join(tmp, f"emb_{n}.npy")
            with open(path, "w", encoding="utf-8") as f:
                for i, t in enumerate(texts):
                    f.write(json.dumps({"id": i, "text": t}) + "\n")
            best: dict = {}
            for _ in range(args.repeat):
                for name, tpl in (("semhash", SEMHASH), ("ftcurate", FTCURATE)):
                    wall, res = run(tpl.format(root=ROOT, path=path, thr=THRESHOLD, emb_path=emb_path))
                    print(f"n={len(texts):,} {name}: {wall:.2f} s whole process "
                          f"({', '.join(f'{k} {v:.2f}' for k, v in res.items() if isinstance(v, float) and k != 'rss')}), "
                          f"peak RSS {res['rss']:.0f} MB", flush=True)
                    if name not in best or wall < best[name][0]:
                        best[name] = (wall, res)
            a = set(best["semhash"][1]["dropped"])
            b = dropped_greedy(best["ftcurate"][1]["pairs"], len(texts))
            both = len(a & b)
            truth, sampled = reference_pairs(emb_path, args.sample)
            rec_ft = recall(truth, best["ftcurate"][1]["pairs"], sampled)
            sh_pairs = best["semhash"][1].get("pairs")
            rec_sh = recall(truth, sh_pairs, sampled) if sh_pairs is not None else float("nan")
            row = {"n": len(texts), "semhash_s": round(best["semhash"][0], 2), "ftcurate_s": round(best["ftcurate"][0], 2),
                   "speedup": round(best["semhash"][0] / best["ftcurate"][0], 2),
                   "semhash_rss": round(best["semhash"][1]["rss"]), "ftcurate_rss": round(best["ftcurate"][1]["rss"]),
                   "semhash_load": round(best["semhash"][1]["load"], 2), "ftcurate_load": round(best["ftcurate"][1]["load"], 2),
                   "dropped_semhash": len(a), "dropped_ftcurate": len(b), "dropped_both": both,
                   "agreement_jaccard": round(both / max(1, len(a | b)), 4),
                   "pairs_semhash": len(sh_pairs) if sh_pairs is not None else None,
                   "pairs_ftcurate": len(best["ftcurate"][1]["pairs"]), "reference_pairs": len(truth),
                   "sampled": len(sampled), "recall_semhash": round(rec_sh, 4), "recall_ftcurate": round(rec_ft, 4)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| records | semhash (whole process) | ftcurate | ftcurate speed vs semhash | peak RSS semhash / ftcurate "
          "| model load in the run semhash / ftcurate | records dropped: semhash / ftcurate / both (Jaccard) "
          "| pairs semhash / ftcurate | recall of exact pairs semhash / ftcurate |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} | {r['semhash_s']:.2f} s | {r['ftcurate_s']:.2f} s | {r['speedup']:.2f}x | "
              f"{r['semhash_rss']:,} / {r['ftcurate_rss']:,} MB | {r['semhash_load']:.2f} / {r['ftcurate_load']:.2f} s | "
              f"{r['dropped_semhash']:,} / {r['dropped_ftcurate']:,} / {r['dropped_both']:,} ({r['agreement_jaccard']:.3f}) | "
              f"{r['pairs_semhash'] if r['pairs_semhash'] is not None else '?':,} / {r['pairs_ftcurate']:,} | "
              f"{r['recall_semhash']:.4f} / {r['recall_ftcurate']:.4f} ({r['reference_pairs']:,} pairs of "
              f"{r['sampled']:,} records) |")
    print("\n| loader (fresh process) | load | with imports | imports torch |")
    print("|---|---|---|---|")
    for r in loaders:
        print(f"| {r['loader']} | {r['load_s']:.2f} s | {r['with_imports_s']:.2f} s | {r['imports_torch']} |")


if __name__ == "__main__":
    main()
