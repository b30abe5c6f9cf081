"""Tests for train/test leakage by text (ftcurate.core.quality.textleak)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftcurate.core.io.formats import DatasetReader
from ftcurate.core.progress import Cancelled
from ftcurate.core.project.records import Record
from ftcurate.core.quality.textleak import (
    LeakHit,
    duplicate_groups_within,
    exact_leaks,
    minhash_leaks,
    ngram_leaks,
    ngram_tokens,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "resources" / "sample" / "chat_train.jsonl"
HELDOUT = REPO / "resources" / "sample" / "heldout_test.jsonl"
MANIFEST = json.loads((REPO / "tests" / "data" / "sample_manifest.json").read_text(encoding="utf-8"))
SYSTEM = "You are MathBuddy, a patient tutor who explains grade-school math step by step."


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("FTCURATE_NUMBA", "0")


def sample_fields():
    recs = {p.index: p.record for p in DatasetReader(str(SAMPLE)) if p.record is not None}
    n = MANIFEST["records"]
    train = [recs.get(i) for i in range(n)]
    test = [Record.from_content(line) for line in HELDOUT.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(test) == MANIFEST["heldout_records"]

    def get(rs, attr):
        return [getattr(r, attr) if r is not None else "" for r in rs]

    return (get(train, "prompt_text"), get(test, "prompt_text"),
            get(train, "answer_text"), get(test, "answer_text"))


def pairs(hits):
    return [(h.index, h.test_index) for h in hits]


def load_gsm8k(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.open(encoding="utf-8")]


def shares_window(a: str, b: str, n: int) -> bool:
    ta, tb = ngram_tokens(a), ngram_tokens(b)
    wa = {tuple(ta[i:i + n]) for i in range(len(ta) - n + 1)}
    return any(tuple(tb[i:i + n]) in wa for i in range(len(tb) - n + 1))


# --------------------------------------------------------------------------- sample


def test_sample_exact_leaks():
    tp, hp, _, _ = sample_fields()
    hits = exact_leaks(tp, hp)
    assert pairs(hits) == sorted(tuple(p) for p in MANIFEST["leak_exact"])
    assert all(h.method == "exact" and h.score == 1.0 and h.field == "prompt" for h in hits)


def test_sample_ngram_leaks():
    tp, hp, _, _ = sample_fields()
    hits = ngram_leaks(tp, hp)
    found = set(pairs(hits))
    exact = {tuple(p) for p in MANIFEST["leak_exact"]}
    assert exact <= found
    assert found <= exact | {tuple(p) for p in MANIFEST["leak_rephrased"]}
    assert all(h.score == 1.0 for h in hits if (h.index, h.test_index) in exact)
    # without the boilerplate filter (and the share and number rules) the shared system prompt
    # links everything; the share and number rules alone already stop most of it
    assert len(ngram_leaks(tp, hp, max_gram_frequency=None, min_share=0, numbers=False)) > 1000
    assert len(ngram_leaks(tp, hp, max_gram_frequency=None)) < 20


def test_sample_minhash_leaks():
    tp, hp, _, _ = sample_fields()
    hits = minhash_leaks(tp, hp)
    assert {tuple(p) for p in MANIFEST["leak_exact"]} <= set(pairs(hits))
    assert all(h.method == "minhash" and 0.6 <= h.score <= 1.0 for h in hits)
    dict_storage = minhash_leaks(tp, hp, storage_config={"type": "dict"})
    assert dict_storage == hits


def test_minhash_leaks_progress_is_monotone():
    tp, hp, _, _ = sample_fields()
    calls = []
    minhash_leaks(tp, hp, progress=lambda d, t, m: calls.append((d, t)))
    fracs = [d / t for d, t in calls]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0


def test_answers_compared_with_answers():
    _, _, ta, ha = sample_fields()
    for fn in (exact_leaks, ngram_leaks, minhash_leaks):
        hits = fn(ta, ha, field="answer")
        assert all(h.field == "answer" for h in hits)
    with pytest.raises(ValueError):
        exact_leaks(ta, ha, field="question")


# --------------------------------------------------------------------------- n-gram rules


def test_ngram_score_and_tokens():
    test = " ".join(f"w{i}" for i in range(20))  # 20 tokens → 8 13-grams
    train = "Intro: " + " ".join(f"W{i}," for i in range(15)) + " outro"  # case/punctuation differ
    hits = ngram_leaks([train, "nothing here"], [test])
    assert len(hits) == 1
    h = hits[0]
    assert (h.index, h.test_index, h.method) == (0, 0, "ngram")
    assert h.score == pytest.approx(3 / 8)
    assert ngram_leaks([train], [test], min_overlap=4) == []
    assert ngram_tokens("Don't 48/2=24, OK?") == ["don", "t", "48", "2", "24", "ok"]


def test_ngram_short_texts():
    nine = "one two three four five six seven eight nine"
    five = "one two three four five"
    train = ["Zero " + nine + " ten eleven", "one two three"]
    hits = ngram_leaks(train, [nine, five, ""])
    assert pairs(hits) == [(0, 0)] and hits[0].score == 1.0  # 9 tokens: whole text is the gram
    assert ngram_leaks(train, [five], min_tokens=5) != []  # 5-token text counts when allowed
    assert ngram_leaks(train, [nine], min_tokens=10) == []
    assert ngram_leaks(["", "  "], [nine]) == []
    # short test texts after long ones and of several lengths
    long_test = " ".join(f"t{i}" for i in range(30))
    ten = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    hits = ngram_leaks(["x " + ten + " y", "q " + nine, long_test], [long_test, ten, nine])
    assert pairs(hits) == [(0, 1), (1, 2), (2, 0)]
    assert all(h.score == 1.0 for h in hits)
    assert ngram_leaks([nine], []) == [] and ngram_leaks([], [nine]) == []


def test_ngram_boilerplate_lines_ignored():
    q = [f"Question {i}: how many apples does person number {i} have after buying {i} more apples today"
         for i in range(30)]
    test = [SYSTEM + "\n" + x for x in q[:15]]
    train = [SYSTEM + "\n" + x for x in q[15:]] + [SYSTEM + "\nfresh" + q[3]]
    hits = ngram_leaks(train, test)
    assert all(h.index == 15 for h in hits) and (15, 3) in pairs(hits)
    assert len(ngram_leaks(train, test, max_gram_frequency=None, min_share=0, numbers=False)) > 100


def test_ngram_cancel():
    with pytest.raises(Cancelled):
        ngram_leaks(["a b c d e f g h i j k l m n"] * 10, ["a b c d e f g h i j k l m n"],
                    cancel=lambda: True)


# --------------------------------------------------------------------------- other


def test_exact_leaks_normalisation():
    train = ["What is  2+2?", "WHAT IS 2+2?", "", "other"]
    test = ["what is 2+2?", "", "  "]
    assert pairs(exact_leaks(train, test)) == [(0, 0), (1, 0)]
    assert pairs(exact_leaks(train, test, lowercase=False)) == []


def test_minhash_leaks_rules():
    a = "the quick brown fox jumps over the lazy dog near the river bank today"
    b = "the quick brown fox jumps over the lazy dog near the river bank tonight"
    hits = minhash_leaks([a, "unrelated text about something else entirely here", ""], [b, ""])
    assert pairs(hits) == [(0, 0)]
    assert hits[0].score == pytest.approx(10 / 12, abs=0.15)
    assert minhash_leaks([], [b]) == [] and minhash_leaks([a], []) == []
    with pytest.raises(Cancelled):
        minhash_leaks([a] * 5, [b], cancel=lambda: True)


def test_duplicate_groups_within():
    assert duplicate_groups_within(["A b", "a  b", "c", "C", "d"]) == [[0, 1], [2, 3]]
    assert duplicate_groups_within(["A b", "a  b"], lowercase=False) == []


def test_leakhit_fields():
    h = LeakHit(1, 2, "ngram", 0.5, "prompt")
    assert (h.index, h.test_index, h.method, h.score, h.field) == (1, 2, "ngram", 0.5, "prompt")


# --------------------------------------------------------------------------- real data


def gsm8k(realdata):
    tr = load_gsm8k(realdata / "gsm8k_train.jsonl")
    te = load_gsm8k(realdata / "gsm8k_test.jsonl")
    return [r["question"] for r in tr], [r["question"] for r in te]


@pytest.mark.realdata
def test_gsm8k_train_test_questions(realdata):
    """GSM8K train vs test: no exact copies and no leaks. Plain 13-gram decontamination finds a
    few shared 13-token runs, all templated problems with other numbers (e.g. train 1314 / test
    602 "A train/plane travels ... At the same rate, how many additional hours would it take to
    travel an additional ..."): different problems, which the share and number rules drop."""
    trq, teq = gsm8k(realdata)
    assert exact_leaks(trq, teq) == []
    plain = ngram_leaks(trq, teq, min_share=0, numbers=False)
    assert 1 <= len(plain) <= 10 and (1314, 602) in pairs(plain)
    for h in plain:
        assert shares_window(trq[h.index], teq[h.test_index], 13)
        assert 0 < h.score < 1
        assert len(h.evidence["ngram"].split()) == 13 and h.evidence["ngram"] in " ".join(ngram_tokens(teq[h.test_index]))
    assert ngram_leaks(trq, teq) == []
    assert minhash_leaks(trq, teq) == []


@pytest.mark.realdata
def test_gsm8k_answers_share_only_boilerplate(realdata):
    """Issue 11 item 19: a GSM8K training answer shared one 13-gram of solution boilerplate with
    a long test answer (score 0.007) and was reported as a leak; now a hit must cover a
    meaningful share of the test text and keep its numbers."""
    tr = load_gsm8k(realdata / "gsm8k_train.jsonl")
    te = load_gsm8k(realdata / "gsm8k_test.jsonl")
    tra, tea = [r["answer"] for r in tr], [r["answer"] for r in te]
    plain = {(h.index, h.test_index): h.score for h in ngram_leaks(tra, tea, min_share=0, numbers=False)}
    assert plain[(699, 806)] < 0.01
    assert ngram_leaks(tra, tea) == []
    # a copied answer is still found, with the shared n-gram as evidence
    hits = ngram_leaks(tra[:50] + [tea[806]], tea)
    assert pairs(hits) == [(50, 806)] and hits[0].score == 1.0 and hits[0].evidence["ngram"]


@pytest.mark.realdata
def test_gsm8k_planted_copies_found(realdata):
    trq, teq = gsm8k(realdata)
    picks = [3, 100, 555, 1000, 1318]
    planted = [teq[j].upper() for j in picks[:2]]  # case changed
    planted += [teq[j].replace(",", " ,").replace(".", " .") for j in picks[2:4]]  # spacing changed
    planted += ["Solve this: " + teq[picks[4]]]  # prefix added
    train = trq[:2000] + planted
    want = {(2000 + k, j) for k, j in enumerate(picks)}
    assert {(2000, 3), (2001, 100)} <= set(pairs(exact_leaks(train, teq)))
    assert want <= set(pairs(ngram_leaks(train, teq)))
    # MinHash shingles are whitespace-split words: detaching punctuation changes most of them,
    # so only the case-changed and the prefixed copies are near-copies for it
    assert {(2000, 3), (2001, 100), (2004, 1318)} <= set(pairs(minhash_leaks(train, teq)))


def test_bundled_gsm8k_slices_have_no_leaks():
    tr = load_gsm8k(REPO / "tests" / "data" / "gsm8k_train_head.jsonl")
    te = load_gsm8k(REPO / "tests" / "data" / "gsm8k_test_head.jsonl")
    trq, teq = [r["question"] for r in tr], [r["question"] for r in te]
    assert exact_leaks(trq, teq) == [] and ngram_leaks(trq, teq) == []
    hits = ngram_leaks(trq + [teq[4].lower()], teq)
    assert pairs(hits) == [(len(trq), 4)] and hits[0].score == 1.0
