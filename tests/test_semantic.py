"""Semantic duplicates and semantic leakage."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from ftcurate.core.quality import embeddings as E
from ftcurate.core.quality import semantic as S
from ftcurate.core.progress import Cancelled

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample"
MANIFEST = json.loads((REPO / "tests" / "data" / "sample_manifest.json").read_text())


@pytest.fixture(scope="module")
def prompts():
    from ftcurate.core.io.formats import DatasetReader

    train = [p.record.first_user if p.record is not None else "" for p in DatasetReader(str(SAMPLE / "chat_train.jsonl"))]
    test = [p.record.first_user for p in DatasetReader(str(SAMPLE / "heldout_test.jsonl"))]
    return train, test


@pytest.fixture(scope="module")
def cache():
    return E.DictCache()


def test_semantic_duplicates_synthetic():
    rng = np.random.default_rng(0)
    x = E.normalize_rows(rng.normal(size=(50, 16)).astype(np.float32))
    x[10] = x[3]
    x[20] = E.normalize_rows((x[5] + 0.05 * rng.normal(size=16)).astype(np.float32)[None])[0]
    x[30] = 0  # empty text: never a duplicate
    x[31] = 0
    pairs = S.semantic_duplicates(x, threshold=0.95)
    assert [(i, j) for i, j, _ in pairs] == [(3, 10), (5, 20)]
    assert pairs[0][2] == pytest.approx(1.0, abs=1e-5) and pairs[0][2] >= pairs[1][2]
    # Above exact_max the approximate path finds the same pairs.
    approx = S.semantic_duplicates(x, threshold=0.95, exact_max=10)
    assert [(i, j) for i, j, _ in approx] == [(3, 10), (5, 20)]
    with pytest.raises(Cancelled):
        S.semantic_duplicates(x, cancel=lambda: True)


def test_semantic_duplicates_in_sample(prompts, cache):
    train, _test = prompts
    emb = E.embed(train, E.FAST, cache=cache)
    found = {(i, j) for i, j, _ in S.semantic_duplicates(emb, threshold=0.95)}
    for group in MANIFEST["exact_duplicate_groups"]:
        for a in group[1:]:
            assert (min(group[0], a), max(group[0], a)) in found


def test_question_view_and_numbers():
    q = "This question refers to the following information.\nA long passage here.\nWhich of the following was a result?"
    assert S.question_view(q) == "Which of the following was a result?"
    assert S.question_view("One line only?") is None
    assert S.numbers_of("He paid $1,200.50 for 3 items, 2.0 kg and 15%") == {"1200.5", "3", "2", "15"}
    assert S.numbers_of("three apples and 4 pears", words=True) == {"3", "4"}


def test_rephrased_leaks_found(prompts, cache):
    train, test = prompts
    seen = []
    scan = S.semantic_leak_scan(train, test, cache=cache, progress=lambda d, t, m: seen.append(m))
    got = {(h.train_index, h.test_index) for h in scan.hits}
    for i, j in MANIFEST["leak_rephrased"] + MANIFEST["leak_exact"]:
        assert (i, j) in got, f"missed leak {i}->{j}"
    planted = {tuple(p) for p in MANIFEST["leak_rephrased"] + MANIFEST["leak_exact"]}
    assert len(got - planted) <= 3  # false positives among 318 records
    assert all(h.method == "semantic" and h.score >= h.margin for h in scan.hits)
    assert scan.confirmed_train < len(train) // 4  # only the shortlist goes to MiniLM
    assert seen
    # Fast mode finds the rephrasings too (it is cheap, but calibrated for larger sets).
    fast = {(h.train_index, h.test_index) for h in S.semantic_leaks(train, test, mode="fast", cache=cache)}
    assert {tuple(p) for p in MANIFEST["leak_rephrased"]} <= fast


def test_leaks_cancel_and_errors(prompts):
    train, test = prompts
    with pytest.raises(Cancelled):
        S.semantic_leaks(train, test, cancel=lambda: True)
    calls = {"n": 0}

    def later():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Cancelled):
        S.semantic_leaks(train, test, cancel=later)
    with pytest.raises(ValueError):
        S.semantic_leaks(train, test, mode="nope")
    assert S.semantic_leaks([], test) == [] and S.semantic_leaks(train, []) == []


def test_reuses_fast_embeddings(prompts, cache, monkeypatch):
    train, test = prompts
    tr = E.embed(train, E.FAST, cache=cache)
    te = E.embed(test, E.FAST, cache=cache)
    calls = []
    real = S.embed

    def spy(texts, model=E.FAST, **kw):
        calls.append((model, len(list(texts))))
        return real(texts, model, **kw)

    monkeypatch.setattr(S, "embed", spy)
    S.semantic_leaks(train, test, mode="fast", train_emb_fast=tr, test_emb_fast=te)
    assert sum(n for m, n in calls if m == E.FAST) < 10  # only question views, if any


@pytest.mark.realdata
def test_rephrased_mmlu_slice(realdata, cache):
    """Loose quality check on real data: sociology rephrasings among GSM8K questions."""
    with open(realdata / "mmlu_rephrase" / "sociology_test.csv", newline="", encoding="utf-8") as f:
        test = [row[0] for row in csv.reader(f)]
    with open(realdata / "mmlu_rephrase" / "sociology_test_rephrase_english_filtered_question.jsonl",
              encoding="utf-8") as f:
        reph = [json.loads(line)["text"].strip() for line in f]
    pos = [(t, j) for j, t in enumerate(reph) if t][:60]
    with open(realdata / "gsm8k_train.jsonl", encoding="utf-8") as f:
        neg = [json.loads(line)["question"] for _, line in zip(range(400), f)]
    train = [t for t, _ in pos] + neg
    hits = S.semantic_leaks(train, test, cache=cache)
    found = {(h.train_index, h.test_index) for h in hits}
    recall = np.mean([(i, j) in found for i, (_t, j) in enumerate(pos)])
    fp = len({h.train_index for h in hits if h.train_index >= len(pos)}) / len(neg)
    assert recall >= 0.85, recall
    assert fp <= 0.02, fp
