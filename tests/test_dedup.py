"""Tests for exact / conflicting / MinHash near-duplicate detection (ftcurate.core.quality.dedup)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from datasketch import LeanMinHash, MinHash, MinHashLSH
from hypothesis import given, settings as hsettings, strategies as st

from ftcurate.core.quality import dedup
from ftcurate.core.quality.dedup import (
    EMPTY_HASH,
    NearDuplicateCluster,
    UnionFind,
    banded_pairs,
    conflicting_groups,
    exact_duplicate_groups,
    minhash_signatures,
    near_duplicate_clusters,
    normalize,
    shingles,
)
from ftcurate.core.io.formats import DatasetReader
from ftcurate.core.progress import Cancelled

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "chat_train.jsonl"
MANIFEST = json.loads((REPO / "tests" / "data" / "sample_manifest.json").read_text(encoding="utf-8"))
WORDS = ("the a cat dog sum apples train model answer question twelve seven minus plus divide "
         "times total each how many left price store bought gave Ünïcödé ﬁsh 𝔘nit naïve "
         "<<48/2=24>>24 $12.50 don't e-mail 漢字 かな").split()


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    """Most tests use the pure-numpy signatures (no numba compile in the suite's time budget);
    test_numba_backend_matches covers the compiled kernel when numba is installed."""
    monkeypatch.setenv("FTCURATE_NUMBA", "0")


def datasketch_hashvalues(text: str, num_perm: int = 128, ngram: int = 5, seed: int = 1):
    m = MinHash(num_perm=num_perm, seed=seed)
    m.update_batch([s.encode("utf-8", "surrogatepass") for s in shingles(text, ngram)])
    return m.hashvalues


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    seps = [" ", "  ", "\n", "\t", " \u00a0", "\u2003"]
    out = []
    for _ in range(n):
        k = rng.choice([0, 1, 2, 4, 5, 6, 20, 80])
        words = [rng.choice(WORDS) + (str(rng.randint(0, 9)) if rng.random() < 0.3 else "")
                 for _ in range(k)]
        out.append("".join(w + rng.choice(seps) for w in words))
    return out + ["", "   ", "Word", "A B C D", "one two three four five", "x" * 300 + " tail",
                  " ".join(["y" * 40] * 6), "\ud800 lone surrogate"]


def load_sample():
    recs = {p.index: p.record for p in DatasetReader(str(SAMPLE)) if p.record is not None}
    n = MANIFEST["records"]

    def field(get):
        return [get(recs[i]) if i in recs else "" for i in range(n)]

    return (field(lambda r: r.text), field(lambda r: r.prompt_text),
            field(lambda r: r.answer_text))


# --------------------------------------------------------------------------- exact


def test_normalize():
    assert normalize("  a\t\tb \n c  ") == "a b c"
    assert normalize("ﬁne ＡＢＣ") == "fine ABC"  # NFKC
    assert normalize("Hello World", lowercase=True) == "hello world"
    assert normalize("Hello") == "Hello"
    assert normalize("") == "" and normalize(None) == ""  # type: ignore[arg-type]


def test_exact_duplicate_groups_basic():
    texts = ["Hello  world", "hello world", "Hello world\n", "other", "", "  ", "other"]
    assert exact_duplicate_groups(texts) == [[0, 2], [3, 6]]
    assert exact_duplicate_groups(texts, lowercase=True) == [[0, 1, 2], [3, 6]]
    assert exact_duplicate_groups([]) == []


def test_exact_and_normalised_groups_in_sample():
    text, _, _ = load_sample()
    want = sorted(MANIFEST["exact_duplicate_groups"] + MANIFEST["normalised_duplicate_groups"])
    assert exact_duplicate_groups(text) == want


def test_conflicting_groups():
    prompts = ["What is 2+2?", "what is 2+2?", "What is  2+2?", "Other", "Other", "Solo"]
    answers = ["4", "4", "5", "x", "x", "y"]
    assert conflicting_groups(prompts, answers) == [[0, 2]]
    assert conflicting_groups(prompts, answers, lowercase=True) == [[0, 1, 2]]
    assert conflicting_groups(["", ""], ["a", "b"]) == []  # empty prompts are not a conflict
    with pytest.raises(ValueError):
        conflicting_groups(["a"], [])


def test_conflicting_pairs_in_sample():
    _, prompt, answer = load_sample()
    want = sorted([i, j] for i, j, _ in MANIFEST["conflicting_pairs"])
    assert conflicting_groups(prompt, answer) == want


# --------------------------------------------------------------------------- shingles


def test_shingles():
    assert shingles("A b c d e F g", 5) == ["a b c d e", "b c d e f", "c d e f g"]
    assert shingles("one two three", 5) == ["one two three"]  # shorter than n: one shingle
    assert shingles("", 5) == [] and shingles("  \n ", 5) == []
    assert shingles("a b a b a b", 2) == ["a b", "b a"]  # distinct, first-seen order
    with pytest.raises(ValueError):
        shingles("a", 0)


# --------------------------------------------------------------------------- signatures


def test_signatures_equal_datasketch_random_texts():
    texts = random_texts(300)
    sig = minhash_signatures(texts)
    assert sig.shape == (len(texts), 128) and sig.dtype == np.uint32
    for i, t in enumerate(texts):
        assert np.array_equal(sig[i], datasketch_hashvalues(t)), (i, t)


@pytest.mark.parametrize("num_perm,ngram,seed", [(64, 3, 7), (16, 1, 42), (200, 9, 0)])
def test_signatures_equal_datasketch_other_settings(num_perm, ngram, seed):
    texts = random_texts(60, seed=seed)
    sig = minhash_signatures(texts, num_perm=num_perm, ngram=ngram, seed=seed)
    for i, t in enumerate(texts):
        assert np.array_equal(sig[i], datasketch_hashvalues(t, num_perm, ngram, seed)), i


def test_signatures_chunking_and_repeats(monkeypatch):
    """Shingles repeated across chunks are hashed once and still give datasketch's values."""
    monkeypatch.setattr(dedup, "_CHUNK_TEXTS", 7)
    texts = random_texts(40, seed=3) * 3
    sig = minhash_signatures(texts)
    for i in range(0, len(texts), 5):
        assert np.array_equal(sig[i], datasketch_hashvalues(texts[i])), i


def test_empty_text_signature_is_empty_minhash():
    sig = minhash_signatures(["", "  \n", "word"])
    assert (sig[0] == EMPTY_HASH).all() and (sig[1] == EMPTY_HASH).all()
    assert np.array_equal(sig[0], MinHash(num_perm=128).hashvalues)
    assert minhash_signatures([]).shape == (0, 128)


def test_signatures_on_real_questions(realdata):
    rows = [json.loads(x) for x in (realdata / "gsm8k_train.jsonl").open(encoding="utf-8")][:400]
    texts = [r["question"] + "\n" + r["answer"] for r in rows]
    sig = minhash_signatures(texts)
    for i in range(0, len(texts), 7):
        assert np.array_equal(sig[i], datasketch_hashvalues(texts[i])), i


def test_signatures_on_bundled_slice():
    path = REPO / "tests" / "data" / "gsm8k_train_head.jsonl"
    texts = [json.loads(x)["question"] for x in path.open(encoding="utf-8")]
    sig = minhash_signatures(texts)
    for i, t in enumerate(texts):
        assert np.array_equal(sig[i], datasketch_hashvalues(t))


def test_lean_minhash_estimates_jaccard():
    """Rows wrapped as LeanMinHash estimate the exact Jaccard of the shingle sets."""
    rng = random.Random(5)
    base = [" ".join(rng.choice(WORDS) for _ in range(60)) for _ in range(40)]
    texts = []
    for t in base:
        w = t.split()
        for _ in range(rng.randint(0, 12)):
            w[rng.randrange(len(w))] = rng.choice(WORDS)
        texts += [t, " ".join(w)]
    sig = minhash_signatures(texts)
    errs = []
    for k in range(0, len(texts), 2):
        a = LeanMinHash(seed=1, hashvalues=sig[k], scheme="affine32")
        b = LeanMinHash(seed=1, hashvalues=sig[k + 1], scheme="affine32")
        exact = dedup.jaccard(shingles(texts[k]), shingles(texts[k + 1]))
        errs.append(abs(a.jaccard(b) - exact))
        assert a.jaccard(b) == dedup.signature_jaccard(sig, k, k + 1)
    assert np.mean(errs) < 0.05 and max(errs) < 0.2


def test_signatures_cancel_and_progress(monkeypatch):
    monkeypatch.setattr(dedup, "_CHUNK_TEXTS", 10)
    texts = random_texts(50)
    calls = []
    minhash_signatures(texts, progress=lambda d, t, m: calls.append((d, t)))
    assert calls[-1] == (len(texts), len(texts))
    with pytest.raises(Cancelled):
        minhash_signatures(texts, cancel=lambda: True)


@pytest.mark.slow
def test_numba_backend_matches(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setenv("FTCURATE_NUMBA", "1")
    if dedup.signature_backend() != "numba":
        pytest.skip("numba cannot compile the kernel here")
    texts = random_texts(200, seed=9)
    sig = minhash_signatures(texts, num_perm=64, ngram=4, seed=3)
    monkeypatch.setenv("FTCURATE_NUMBA", "0")
    assert dedup.signature_backend() == "numpy"
    assert np.array_equal(sig, minhash_signatures(texts, num_perm=64, ngram=4, seed=3))


# --------------------------------------------------------------------------- clusters


def test_near_duplicates_in_sample():
    text, _, answer = load_sample()
    clusters = near_duplicate_clusters(text, answers=answer)
    pairs = {(i, j): s for c in clusters for i, j, s in c.pairs}
    for i, j, jac in MANIFEST["near_duplicate_pairs"]:
        assert (i, j) in pairs, (i, j)
        assert pairs[(i, j)] == pytest.approx(jac, abs=1e-3)  # exact verification
    exact = MANIFEST["exact_duplicate_groups"] + MANIFEST["normalised_duplicate_groups"]
    planted = {tuple(p[:2]) for p in MANIFEST["near_duplicate_pairs"]}
    groups = sorted(c.indices for c in clusters)
    assert groups == sorted([list(p) for p in planted] + exact)  # nothing unrelated
    for c in clusters:
        assert c.indices == sorted(c.indices) and c.keep in c.indices
        assert all(i < j and i in c.indices and j in c.indices and 0.8 <= s <= 1 for i, j, s in c.pairs)
        best = max(len(answer[i].strip()) for i in c.indices)
        assert len(answer[c.keep].strip()) == best
        assert c.keep == min(i for i in c.indices if len(answer[i].strip()) == best)
        assert c.reason == f"longest answer ({best} chars)"


def test_backends_agree_on_sample():
    text, _, answer = load_sample()
    sig = minhash_signatures(text)
    a = near_duplicate_clusters(text, answers=answer, signatures=sig)
    b = near_duplicate_clusters(text, answers=answer, signatures=sig, lsh_backend="datasketch")
    c = near_duplicate_clusters(text, answers=answer, signatures=sig, storage_config={"type": "dict"})
    assert a == b == c
    est = near_duplicate_clusters(text, answers=answer, signatures=sig, verify="estimate")
    assert {tuple(x.indices) for x in est} == {tuple(x.indices) for x in a}


def test_banded_pairs_equal_minhashlsh_candidates():
    rng = np.random.default_rng(0)
    sig = rng.integers(0, 2**32, size=(300, 128), dtype=np.uint64).astype(np.uint32)
    for k in range(0, 300, 3):  # plant rows that share some bands with another row
        src = int(rng.integers(300))
        mask = rng.random(128) < rng.uniform(0.3, 0.95)
        sig[k, mask] = sig[src, mask]
    sig[200:206, 0:9] = sig[199, 0:9]  # one bucket of 7 in band 0
    lsh = MinHashLSH(num_perm=128, params=(14, 9))
    mhs = [LeanMinHash(seed=1, hashvalues=row, scheme="affine32") for row in sig]
    for i, m in enumerate(mhs):
        lsh.insert(i, m)
    want = sorted({(min(i, j), max(i, j)) for i, m in enumerate(mhs) for j in lsh.query(m) if i != j})
    pi, pj = banded_pairs(sig, 14, 9)
    assert list(zip(pi.tolist(), pj.tolist())) == want
    assert len(want) > 30
    ci, cj = dedup.lsh_self_pairs(lsh, set(range(300)))
    assert list(zip(ci.tolist(), cj.tolist())) == want


def test_keeper_rules():
    base = "the quick brown fox jumps over the lazy dog and then runs far away into the woods"
    texts = [base, base + " today", base + " now", "unrelated words here entirely"]
    c = near_duplicate_clusters(texts, threshold=0.7, answers=["abc", "abcd", "abcd", "x"])
    assert len(c) == 1 and c[0].indices == [0, 1, 2]
    assert c[0].keep == 1 and c[0].reason == "longest answer (4 chars)"  # tie → lowest index
    c = near_duplicate_clusters(texts, threshold=0.7, answers=["", " ", "", "x"])
    assert c[0].keep == 1 and c[0].reason == f"all answers empty; longest text ({len(texts[1])} chars)"
    c = near_duplicate_clusters(texts, threshold=0.7)
    assert c[0].keep == 1 and c[0].reason == f"longest text ({len(texts[1])} chars)"


def test_clusters_edge_cases():
    assert near_duplicate_clusters([]) == []
    assert near_duplicate_clusters(["", "", "  "]) == []  # empty texts never cluster
    short = near_duplicate_clusters(["two words", "Two  words", "two word"])
    assert [c.indices for c in short] == [[0, 1]]
    assert short[0].pairs == [(0, 1, 1.0)]
    with pytest.raises(ValueError):
        near_duplicate_clusters(["a"], signatures=np.zeros((2, 128), dtype=np.uint32))
    with pytest.raises(ValueError):
        near_duplicate_clusters(["a"], verify="maybe")
    with pytest.raises(ValueError):
        near_duplicate_clusters(["a"], answers=[])


def test_clusters_cancel():
    text, _, _ = load_sample()
    sig = minhash_signatures(text)
    with pytest.raises(Cancelled):
        near_duplicate_clusters(text, cancel=lambda: True)
    with pytest.raises(Cancelled):
        near_duplicate_clusters(text, signatures=sig, cancel=lambda: True)


def test_clusters_progress_is_monotone():
    text, _, _ = load_sample()
    for kwargs in ({}, {"signatures": minhash_signatures(text)}, {"storage_config": {"type": "dict"}}):
        calls = []
        near_duplicate_clusters(text, progress=lambda d, t, m: calls.append((d, t)), **kwargs)
        fracs = [d / t for d, t in calls]
        assert fracs == sorted(fracs) and fracs[-1] == 1.0, kwargs


def test_cluster_dataclass_defaults():
    c = NearDuplicateCluster(indices=[1, 2])
    assert c.pairs == [] and c.keep == -1 and c.reason == ""


# --------------------------------------------------------------------------- union-find


def components(n: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    adj: dict[int, set] = {i: set() for i in range(n)}
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    seen, out = set(), []
    for s in range(n):
        if s in seen:
            continue
        stack, comp = [s], []
        seen.add(s)
        while stack:
            x = stack.pop()
            comp.append(x)
            for y in adj[x] - seen:
                seen.add(y)
                stack.append(y)
        out.append(sorted(comp))
    return sorted(out)


edge_lists = st.integers(1, 40).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                                             max_size=60)))


@hsettings(max_examples=150, deadline=None)
@given(edge_lists)
def test_union_find_matches_graph_components(data):
    n, edges = data
    uf = UnionFind(n)
    for a, b in edges:
        uf.union(a, b)
    assert sorted(uf.groups(min_size=1)) == components(n, edges)
    want2 = [g for g in components(n, edges) if len(g) >= 2]
    assert uf.groups() == sorted(want2, key=lambda g: g[0])
    involved = [x for e in edges for x in e]
    assert uf.groups(among=involved) == uf.groups()
    for a, b in edges:
        assert uf.connected(a, b)
    assert sum(uf.size[uf.find(x)] == len([y for y in range(n) if uf.connected(x, y)])
               for x in range(n)) == n


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), max_size=30))
def test_clusters_from_pairs_is_partition(edges):
    edges = [(a, b) for a, b in edges if a != b]
    texts = [f"text number {i}" for i in range(16)]
    pi = [a for a, _ in edges]
    pj = [b for _, b in edges]
    clusters = dedup.clusters_from_pairs(pi, pj, [0.9] * len(edges), 16, texts)
    seen = [i for c in clusters for i in c.indices]
    assert len(seen) == len(set(seen))
    assert sorted(c.indices for c in clusters) == [g for g in components(16, edges) if len(g) > 1]
    for c in clusters:
        assert all(i < j for i, j, _ in c.pairs)
        assert {x for p in c.pairs for x in p[:2]} == set(c.indices)


def test_unique_rows_groups_equal_signatures():
    """Rows grouped by a 64-bit hash, checked row by row: the same groups as whole-row unique."""
    rng = np.random.default_rng(3)
    sig = rng.integers(0, 4, (3000, 16)).astype(np.uint32)
    sig[2000:2500] = sig[:500]
    sig[10] = sig[2999]
    rows = np.arange(100, 3000)
    rep, of = dedup._unique_rows(sig, rows)
    void = np.ascontiguousarray(sig[rows]).view(np.dtype((np.void, 64))).reshape(-1)
    _, first, inv = np.unique(void, return_index=True, return_inverse=True)
    assert rep.tolist() == rows[np.sort(first)].tolist()
    assert of.tolist() == rows[first[inv.reshape(-1)]].tolist()
    assert np.array_equal(sig[of], sig[rows])
