"""Full-scan benchmark: every scanner with the default settings on N training records
against a GSM8K-test-sized held-out set, on this machine's CPU cores.

Data: GSM8K train question/answer pairs (MIT, read from ../shared/realdata) cycled with random
word edits to N distinct records, plus planted problems (exact copies, near copies, leaked and
rephrased test questions, off-topic outliers); the held-out set is GSM8K test (1,319).
Baseline in the same run: the plain datasketch loop for near-duplicates alone
(one MinHash per record + MinHashLSH), i.e. what one scanner costs done the usual way.

Usage: python benchmarks/bench_scan.py [--n 50000] [--memory-n 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
REAL = os.path.join(ROOT, "..", "shared", "realdata")

from ftcurate.core.project.records import Message, Record  # noqa: E402


OFF_TOPIC = [
    ("Write a sonnet about the sea at night.", "Upon the tide the silver moon is cast, and waves recite the hours."),
    ("How do I reverse a linked list in Python?", "Walk the list and point each node's next at the previous node."),
    ("Give me a recipe for a vegan chocolate cake.", "Mix flour, cocoa, sugar, oil and oat milk; bake at 180 C."),
    ("Can my landlord keep my deposit for normal wear and tear?", "Usually not; ordinary wear is not damage."),
    ("Translate 'good morning' into French, German and Spanish.", "Bonjour, Guten Morgen, Buenos dias."),
    ("Write an SQL query that lists customers without orders.", "SELECT c.* FROM customers c LEFT JOIN orders o ..."),
    ("How often should I change the oil in my car?", "Every 10,000 km or once a year for most modern engines."),
    ("Configure nginx as a reverse proxy for port 8080.", "Add a server block with proxy_pass http://127.0.0.1:8080;"),
    ("What are the symptoms of iron deficiency?", "Tiredness, pale skin, shortness of breath and cold hands."),
    ("Suggest a name for my new bakery.", "Crumb & Co., The Rising Loaf, or Flour Power."),
    ("Explain the offside rule in football.", "A player is offside if nearer the goal line than the second-last defender."),
    ("Who painted the Girl with a Pearl Earring?", "Johannes Vermeer, around 1665."),
    ("Write a haiku about autumn leaves.", "Crimson leaves descend / whispering to the cold ground / the year exhales slow."),
    ("How do I set up two-factor authentication on my email?", "Open security settings and enable an app-based code."),
    ("Compare Kubernetes deployments and stateful sets.", "Stateful sets keep stable identities and storage per pod."),
    ("Plan a three-day trip to Lisbon.", "Day one Alfama and the castle, day two Belem, day three Sintra."),
    ("What is the capital of Mongolia?", "Ulaanbaatar."),
    ("Draft a polite email declining a meeting.", "Thank you for the invitation; unfortunately I cannot attend."),
    ("Which houseplants tolerate low light?", "Snake plants, pothos and ZZ plants do well in low light."),
    ("Describe the rules of chess castling.", "The king moves two squares toward a rook, which jumps over it."),
]


def gsm8k(name):
    with open(os.path.join(REAL, name), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def rec(q, a, system="You are a patient math tutor."):
    return Record([Message("system", system), Message("user", q), Message("assistant", a)])


def build(n, seed=0):
    rng = random.Random(seed)
    train = gsm8k("gsm8k_train.jsonl")
    test = gsm8k("gsm8k_test.jsonl")
    words = "apples pears boxes friends tickets hours miles dollars cookies books".split()
    out = []
    for i in range(n):
        item = train[i % len(train)]
        q = item["question"]
        if i >= len(train):  # make later copies distinct: a few random word edits
            w = q.split()
            for _ in range(max(3, len(w) // 4)):
                w[rng.randrange(len(w))] = rng.choice(words)
            q = " ".join(w)
        out.append(rec(q, item["answer"]))
    planted = {"exact": [], "leak": [], "outlier": []}
    for k in range(50):
        j = rng.randrange(n)
        out.append(out[j])
        planted["exact"].append((j, len(out) - 1))
    for k in range(30):
        t = rng.randrange(len(test))
        out.append(rec(test[t]["question"], "The answer is " + test[t]["answer"].split("####")[-1].strip()))
        planted["leak"].append((len(out) - 1, t))
    for q, a in OFF_TOPIC:
        out.append(rec(q, a))
        planted["outlier"].append(len(out) - 1)
    tests = [rec(t["question"], t["answer"]) for t in test]
    return out, tests, planted


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline_datasketch(texts, threshold=0.8, num_perm=128, ngram=5):
    from datasketch import MinHash, MinHashLSH

    from ftcurate.core.quality.dedup import shingles

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    mhs = []
    for i, t in enumerate(texts):
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([s.encode("utf-8") for s in shingles(t, ngram)])
        lsh.insert(i, m)
        mhs.append(m)
    pairs = 0
    for i, m in enumerate(mhs):
        pairs += sum(1 for j in lsh.query(m) if j > i)
    return pairs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--skip-baseline", action="store_true")
    args = ap.parse_args()
    from ftcurate.core.quality.dedup import warm_up
    from ftcurate.core.quality.embeddings import load_model
    from ftcurate.core.quality.scan import ScanSettings, scan_records

    train, test, planted = build(args.n)
    print(f"train {len(train):,} records, test {len(test):,}; cores: {os.cpu_count()}")
    t = time.perf_counter()
    warm_up()
    load_model("static-wordllama")
    load_model("minilm")
    print(f"start-up (numba kernel, models): {time.perf_counter() - t:.1f} s (not counted)")
    t = time.perf_counter()
    report = scan_records(list(enumerate(train)), list(enumerate(test)), settings=ScanSettings())
    total = time.perf_counter() - t
    print(f"full scan: {total:.1f} s   peak RSS {rss_mb():.0f} MB")
    for k, v in report["timings"].items():
        print(f"  {k:22s} {v:7.1f} s")
    exact_found = sum(1 for a, b in planted["exact"] if any(a in g and b in g for g in report["exact_duplicates"]))
    leaks = {(h["index"], h["test_index"]) for h in report["leakage"]}
    leak_found = sum(1 for p in planted["leak"] if p in leaks)
    outl = {o["index"] for o in report["outliers"]}
    print(f"planted found: exact {exact_found}/{len(planted['exact'])}, leaks {leak_found}/{len(planted['leak'])}, "
          f"outliers {len(outl & set(planted['outlier']))}/{len(planted['outlier'])}; "
          f"leaking records reported: {len({h['index'] for h in report['leakage']})}, outliers flagged: {len(outl)}")
    if not args.skip_baseline:
        t = time.perf_counter()
        baseline_datasketch([r.text for r in train])
        base = time.perf_counter() - t
        print(f"baseline, datasketch loop for near-duplicates alone: {base:.1f} s; "
              f"full ftcurate scan / that baseline = {total / base:.2f}x")


if __name__ == "__main__":
    main()
