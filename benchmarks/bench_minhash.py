"""MinHash near-duplicate benchmark: ftcurate's vectorised signatures + LSH vs the plain
datasketch loop, in the same process on the same texts.

Data: GSM8K questions + answers (shared/realdata) cycled up to N texts; every copy after the
first gets ~25 % of its words replaced by random ones (so copies are *not* near-duplicates of
each other, Jaccard ~0.1), and 2 % of the N texts are planted near-duplicates of another text
(1-3 words edited, Jaccard ~0.8-0.95).

Methods (threshold 0.8, 128 permutations, word 5-gram shingles, seed 1):
  * datasketch loop: per text ``MinHash(num_perm, seed)`` + ``update_batch`` of the UTF-8
    shingles, ``MinHashLSH.insert``, then ``query`` per text and ``MinHash.jaccard`` >= t.
  * datasketch bulk: the same with ``MinHash.bulk`` (shares the permutations), signatures only.
  * ftcurate: ``minhash_signatures`` + ``near_duplicate_clusters(verify="estimate")`` (and the
    default ``verify="exact"``), with the numba signature kernel (when installed) and with the
    pure-numpy one.
Quality: mean absolute error of the Jaccard estimates against exact Jaccard over sampled pairs
(planted pairs, random pairs, LSH candidates), and recall / precision of the pairs >= t each
method reports, against the exact Jaccard of every pair any method found plus the planted ones.
Times are wall-clock and process CPU seconds (the CPU column is less disturbed by other load).

Usage: python benchmarks/bench_minhash.py [--sizes 20000,100000] [--out /tmp/bench_minhash.md]
       [--backends numba,numpy] [--skip-baseline-over N] [--no-bulk]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

REALDATA = [os.path.join(os.path.dirname(ROOT), "shared", "realdata"),
            os.path.join(ROOT, "shared", "realdata")]


def load_base() -> list[str]:
    for d in REALDATA:
        p = os.path.join(d, "gsm8k_train.jsonl")
        if os.path.exists(p):
            out = []
            for name in ("gsm8k_train.jsonl", "gsm8k_test.jsonl"):
                with open(os.path.join(d, name), encoding="utf-8") as f:
                    for line in f:
                        r = json.loads(line)
                        out.append(r["question"] + "\n" + r["answer"])
            return out
    raise SystemExit("shared/realdata/gsm8k_*.jsonl not found")


def make_texts(n: int, seed: int = 0, planted_frac: float = 0.02):
    base = load_base()
    rng = random.Random(seed)
    vocab = sorted({w for t in base[:2000] for w in t.split()})
    n_planted = int(n * planted_frac)
    n_base = n - n_planted
    texts = []
    for i in range(n_base):
        t = base[i % len(base)]
        if i >= len(base):
            w = t.split()
            for k in rng.sample(range(len(w)), max(1, len(w) // 4)):
                w[k] = rng.choice(vocab)
            t = " ".join(w)
        texts.append(t)
    planted = []
    for _ in range(n_planted):
        src = rng.randrange(n_base)
        w = texts[src].split()
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(w))
            w[k] = rng.choice(vocab) if rng.random() < 0.7 else w[k] + "s"
        planted.append((src, len(texts)))
        texts.append(" ".join(w))
    return texts, planted


class Timer:
    def __init__(self):
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self):
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def exact_jaccards(texts, pairs, ngram):
    from ftcurate.core.quality.dedup import shingle_jaccard

    if not pairs:
        return {}
    pi = np.array([p[0] for p in pairs])
    pj = np.array([p[1] for p in pairs])
    return dict(zip(pairs, shingle_jaccard(texts, pi, pj, ngram).tolist()))


def run_baseline(texts, threshold, num_perm, ngram, seed):
    from datasketch import MinHash, MinHashLSH

    from ftcurate.core.quality.dedup import shingles

    t = Timer()
    mhs = []
    for text in texts:
        m = MinHash(num_perm=num_perm, seed=seed)
        m.update_batch([s.encode("utf-8") for s in shingles(text, ngram)])
        mhs.append(m)
    sig_time = t.stop()
    t = Timer()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    for i, m in enumerate(mhs):
        lsh.insert(i, m)
    cands, found = set(), set()
    for i, m in enumerate(mhs):
        for j in lsh.query(m):
            if j > i:
                cands.add((i, j))
                if m.jaccard(mhs[j]) >= threshold:
                    found.add((i, j))
    lsh_time = t.stop()
    return mhs, sig_time, lsh_time, cands, found


def run_bulk(texts, num_perm, ngram, seed):
    from datasketch import MinHash

    from ftcurate.core.quality.dedup import shingles

    t = Timer()
    MinHash.bulk([[s.encode("utf-8") for s in shingles(x, ngram)] for x in texts],
                 num_perm=num_perm, seed=seed)
    return t.stop()


def run_ours(texts, threshold, num_perm, ngram, seed, verify):
    from ftcurate.core.quality.dedup import minhash_signatures, near_duplicate_clusters

    t = Timer()
    sig = minhash_signatures(texts, num_perm=num_perm, ngram=ngram, seed=seed)
    sig_time = t.stop()
    t = Timer()
    clusters = near_duplicate_clusters(texts, threshold=threshold, num_perm=num_perm, ngram=ngram,
                                       seed=seed, signatures=sig, verify=verify)
    lsh_time = t.stop()
    found = {(i, j) for c in clusters for i, j, _ in c.pairs}
    return sig, sig_time, lsh_time, found


def fmt_t(t):
    return f"{t[0]:.2f} s ({t[1]:.2f} s CPU)"


def bench(n, args, rows):
    threshold, num_perm, ngram, seed = args.threshold, args.num_perm, args.ngram, 1
    texts, planted = make_texts(n)
    nwords = sum(len(t.split()) for t in texts) / len(texts)
    print(f"\n== {n} texts (mean {nwords:.0f} words, {len(planted)} planted near-duplicates)")
    from ftcurate.core.quality.dedup import minhash_signatures, near_duplicate_clusters, signature_backend

    # warm-up outside the timings: numba JIT compile / cache load, datasketch + scipy imports
    t = Timer()
    minhash_signatures(texts[:10], num_perm=num_perm, ngram=ngram)
    near_duplicate_clusters(texts[:10], threshold=threshold, num_perm=num_perm, ngram=ngram)
    warm = t.stop()
    print(f"warm-up (backend {signature_backend()}: first call, imports) {fmt_t(warm)}")
    os.environ.pop("FTCURATE_NUMBA", None)

    backends = {}
    for backend in args.backends:
        os.environ["FTCURATE_NUMBA"] = "1" if backend == "numba" else "0"
        if signature_backend() != backend:
            print(f"backend {backend} not available, skipped")
            continue
        minhash_signatures(texts[:10], num_perm=num_perm, ngram=ngram)  # warm (numba: load)
        sig, our_sig_t, our_lsh_t, our_found = run_ours(texts, threshold, num_perm, ngram, seed,
                                                        "estimate")
        print(f"ftcurate[{backend}] signatures      {fmt_t(our_sig_t)}")
        print(f"ftcurate[{backend}] LSH+estimate    {fmt_t(our_lsh_t)}  pairs {len(our_found)}")
        _, _, exact_lsh_t, exact_found = run_ours(texts, threshold, num_perm, ngram, seed, "exact")
        print(f"ftcurate[{backend}] LSH+exact       {fmt_t(exact_lsh_t)}  pairs {len(exact_found)}")
        backends[backend] = dict(sig=sig, our_sig=our_sig_t, our_lsh=our_lsh_t,
                                 exact_lsh=exact_lsh_t)
    if not backends:
        raise SystemExit("no ftcurate backend ran")
    sigs = [b["sig"] for b in backends.values()]
    same_backends = all(np.array_equal(sigs[0], x) for x in sigs[1:])
    print(f"backends give identical signatures: {same_backends}")
    sig = sigs[0]
    for b in backends.values():
        del b["sig"]

    run_base = n <= args.skip_baseline_over
    if run_base:
        mhs, b_sig_t, b_lsh_t, b_cands, b_found = run_baseline(texts, threshold, num_perm, ngram, seed)
        print(f"datasketch signatures    {fmt_t(b_sig_t)}")
        print(f"datasketch LSH+jaccard   {fmt_t(b_lsh_t)}  pairs {len(b_found)}")
        base_sig = np.array([m.hashvalues for m in mhs], dtype=np.uint32)
        identical = bool(np.array_equal(base_sig, sig))
        print(f"signatures bit-identical to datasketch: {identical}")
        del mhs
        bulk_t = run_bulk(texts, num_perm, ngram, seed) if args.bulk else None
        if bulk_t:
            print(f"datasketch bulk sigs     {fmt_t(bulk_t)}")
    else:
        b_sig_t = b_lsh_t = bulk_t = None
        b_cands, b_found, identical = set(), set(), None

    # quality
    rng = random.Random(1)
    rand_pairs = set()
    while len(rand_pairs) < 2000:
        i, j = sorted(rng.sample(range(n), 2))
        rand_pairs.add((i, j))
    planted_pairs = {tuple(sorted(p)) for p in planted}
    sample = sorted(planted_pairs | rand_pairs | set(rng.sample(sorted(b_cands), min(2000, len(b_cands)))))
    truth_pairs = sorted(planted_pairs | our_found | exact_found | b_found)
    ex = exact_jaccards(texts, sorted(set(sample) | set(truth_pairs)), ngram)
    est = sig_jac = None
    from ftcurate.core.quality.dedup import signature_jaccard

    pi = np.array([p[0] for p in sample])
    pj = np.array([p[1] for p in sample])
    est = signature_jaccard(sig, pi, pj)
    exact_s = np.array([ex[p] for p in sample])
    mae_ours = float(np.mean(np.abs(est - exact_s)))
    sig_jac = mae_ours
    is_planted = np.array([p in planted_pairs for p in sample])
    mae_planted = float(np.mean(np.abs(est - exact_s)[is_planted]))
    if run_base:
        mae_base = float(np.mean(np.abs(signature_jaccard(base_sig, pi, pj) - exact_s)))
    else:
        mae_base = None
    true_set = {p for p in truth_pairs if ex[p] >= threshold}

    def rp(found):
        if not found:
            return 0.0, 1.0
        tp = sum(1 for p in found if ex.get(p, 0) >= threshold)
        return tp / max(1, len(true_set)), tp / len(found)

    r_o, p_o = rp(our_found)
    r_e, p_e = rp(exact_found)
    r_b, p_b = rp(b_found) if run_base else (None, None)
    print(f"MAE of Jaccard estimates over {len(sample)} pairs: ftcurate {mae_ours:.4f}"
          + (f", datasketch {mae_base:.4f}" if mae_base is not None else "")
          + f"; over the {int(is_planted.sum())} planted pairs only: {mae_planted:.4f}")
    print(f"true pairs >= {threshold}: {len(true_set)}; recall/precision: ftcurate(estimate) "
          f"{r_o:.3f}/{p_o:.3f}, ftcurate(exact) {r_e:.3f}/{p_e:.3f}"
          + (f", datasketch {r_b:.3f}/{p_b:.3f}" if run_base else ""))
    if run_base:
        b_total = (b_sig_t[0] + b_lsh_t[0], b_sig_t[1] + b_lsh_t[1])
        for name, b in backends.items():
            our_total = (b["our_sig"][0] + b["our_lsh"][0], b["our_sig"][1] + b["our_lsh"][1])
            print(f"speed-up [{name}]: signatures {b_sig_t[0] / b['our_sig'][0]:.1f}x wall "
                  f"({b_sig_t[1] / b['our_sig'][1]:.1f}x CPU); end to end "
                  f"{b_total[0] / our_total[0]:.1f}x wall ({b_total[1] / our_total[1]:.1f}x CPU)")
    rows.append(dict(warm=warm, n=n, words=nwords, planted=len(planted), backends=backends,
                     same_backends=same_backends, b_sig=b_sig_t, b_lsh=b_lsh_t, bulk=bulk_t,
                     identical=identical, mae_ours=mae_ours, mae_planted=mae_planted, n_planted=int(is_planted.sum()), mae_base=mae_base, sample=len(sample),
                     true=len(true_set), r_o=r_o, p_o=p_o, r_e=r_e, p_e=p_e, r_b=r_b, p_b=p_b))


def write_md(rows, args, path):
    import datasketch

    try:
        import numba  # noqa: F401
        nb = f"numba {numba.__version__} installed"
    except ImportError:
        nb = "numba not installed"
    lines = [
        "## MinHash near-duplicates (benchmarks/bench_minhash.py)",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
        f"datasketch {datasketch.__version__}, {nb}. "
        f"Threshold {args.threshold}, {args.num_perm} permutations, word {args.ngram}-grams. "
        "Data: GSM8K question+answer texts cycled with ~25 % random word edits per copy, plus 2 % "
        "planted near-duplicates (1-3 words edited). Times: wall (process CPU).",
        "",
        "| texts | method | signatures | LSH + verify | total | speed-up (wall / CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["b_sig"]:
            b_tot = (r["b_sig"][0] + r["b_lsh"][0], r["b_sig"][1] + r["b_lsh"][1])
            lines.append(f"| {r['n']:,} | datasketch loop (MinHash per record, LSH insert + query, "
                         f"MinHash.jaccard) | {fmt_t(r['b_sig'])} | {fmt_t(r['b_lsh'])} | "
                         f"{fmt_t(b_tot)} | 1.0x |")
            if r["bulk"]:
                lines.append(f"| {r['n']:,} | datasketch MinHash.bulk (signatures only) | "
                             f"{fmt_t(r['bulk'])} | | | |")

            def sp(t):
                return f"**{b_tot[0] / t[0]:.1f}x** / {b_tot[1] / t[1]:.1f}x"
        else:
            def sp(t):
                return "n/a"
        for name, b in r["backends"].items():
            o_tot = (b["our_sig"][0] + b["our_lsh"][0], b["our_sig"][1] + b["our_lsh"][1])
            e_tot = (b["our_sig"][0] + b["exact_lsh"][0], b["our_sig"][1] + b["exact_lsh"][1])
            lines.append(f"| {r['n']:,} | ftcurate, {name} signatures, estimate verify | "
                         f"{fmt_t(b['our_sig'])} | {fmt_t(b['our_lsh'])} | {fmt_t(o_tot)} | {sp(o_tot)} |")
            lines.append(f"| {r['n']:,} | ftcurate, {name} signatures, exact verify (default) | "
                         f"{fmt_t(b['our_sig'])} | {fmt_t(b['exact_lsh'])} | {fmt_t(e_tot)} | {sp(e_tot)} |")
    lines += ["", f"First call in a process (not in the times above): {fmt_t(rows[0]['warm'])} "
              "(numba: loading the compiled kernel from numba's on-disk cache; the very first run "
              "after installing numba or editing dedup.py compiles it, 10-20 s on this machine; "
              "`dedup.warm_up()` does it up front)."]
    lines += ["", "| texts | signatures identical to datasketch (and between backends) | MAE of Jaccard estimate "
              "(sampled pairs) | MAE on planted pairs | true pairs >= t | recall / precision: datasketch "
              "| ftcurate estimate | ftcurate exact |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mae = f"{r['mae_ours']:.4f}" + (f" (datasketch {r['mae_base']:.4f})" if r["mae_base"] is not None else "")
        base = f"{r['r_b']:.3f} / {r['p_b']:.3f}" if r["r_b"] is not None else "n/a"
        lines.append(f"| {r['n']:,} | {r['identical']} ({r['same_backends']}) | {mae} ({r['sample']}) | {r['mae_planted']:.4f} ({r['n_planted']}) | {r['true']} | {base} | "
                     f"{r['r_o']:.3f} / {r['p_o']:.3f} | {r['r_e']:.3f} / {r['p_e']:.3f} |")
    lines += ["", "Recall is measured against every pair >= t that any method found plus the planted "
              "pairs (exact Jaccard of the shingle sets), so it compares the methods rather than "
              "bounding the true recall. Sampled pairs: the planted pairs, 2,000 random pairs and up "
              "to 2,000 datasketch LSH candidates. datasketch's LSH uses its default weights "
              "(0.5, 0.5): b=9, r=13 at t=0.8; ftcurate's uses (0.1, 0.9): b=14, r=9, then verifies.",
              "",
              "Notes: ftcurate's signatures equal datasketch's bit for bit, so estimate quality is "
              "the same by construction; the recall difference comes from the LSH band layout "
              "(ftcurate favours recall and verifies every candidate). The numpy backend spends "
              "most of its time in one `hashlib.sha1` call per distinct shingle (data with "
              "repeated boilerplate, e.g. a system prompt in every record, hashes it once); the "
              "numba backend computes SHA-1 in compiled code and runs texts in parallel (the "
              "wall/CPU columns show whether the second core was free during the run).",
              ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"\nwrote {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--skip-baseline-over", type=int, default=10**9,
                    help="skip the datasketch baseline for sizes above this")
    ap.add_argument("--no-bulk", dest="bulk", action="store_false",
                    help="skip the MinHash.bulk signature baseline")
    ap.add_argument("--backends", default="numba,numpy",
                    help="ftcurate signature backends to time (numba is skipped if not installed)")
    ap.add_argument("--out", default="/tmp/bench_minhash.md")
    args = ap.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    rows = []
    for n in [int(x) for x in args.sizes.split(",") if x]:
        bench(n, args, rows)
    write_md(rows, args, args.out)


if __name__ == "__main__":
    main()
