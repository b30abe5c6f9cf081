"""Duplicate clusters and leak evidence (ftcurate.core.project.review), issue 11 items 6 and 19:
a semantic pair is a cluster of two with a suggested keeper, clusters are numbered in list
order, thresholds compare at the two decimals people see, and a leak says why it was flagged
(the scan's evidence, or shared words worked out for an old report)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftcurate.core.project import review
from ftcurate.core.project.records import Message, Record, Source
from ftcurate.core.project.review import LeakEvidence, LeakPair
from ftcurate.core.project.store import Project


def chat(question: str, answer: str, i: int) -> Record:
    return Record(messages=[Message("system", "You are a patient tutor."), Message("user", question),
                            Message("assistant", answer)], source=Source("data.jsonl", i + 1, i), split="train")


@pytest.fixture
def project(tmp_path: Path):
    """Six training records (ids 1-6); 2 has a longer answer than 1, 3 and 4 tie."""
    p = Project.create(tmp_path / "p.ftcurate", reviewer="alice")
    sid = p.add_source(tmp_path / "data.jsonl", "jsonl", total=6)
    p.add_records(sid, [chat("How far is it to the moon?", "Far.", 0),
                        chat("What is the distance to the moon?", "About 384,400 km on average.", 1),
                        chat("Name a prime number.", "Seven.", 2),
                        chat("Give me a prime number.", "Three.", 3),
                        chat("Spell cat.", "C-A-T.", 4),
                        chat("How do you spell cat?", "C A T.", 5)])
    yield p
    p.close()


SEMANTIC_ONLY = {"semantic_duplicates": [{"a": 1, "b": 2, "similarity": 0.9549},
                                         {"a": 3, "b": 4, "similarity": 0.9612},
                                         {"a": 5, "b": 6, "similarity": 0.9496}]}


def test_a_semantic_pair_is_a_cluster_of_two_with_a_keeper(project):
    pairs = review.duplicate_pairs(SEMANTIC_ONLY, project)
    got = [(p.left, p.right, p.cluster, p.keeper) for p in pairs]
    # by similarity; the keeper (left) has the longer answer, a tie keeps the first record
    assert got == [(3, 4, 1, 3), (2, 1, 2, 2), (5, 6, 3, 5)]
    assert pairs[1].reason.startswith("longest answer") and pairs[0].reason
    assert all(p.kind == "semantic" for p in pairs)
    assert len(review.clusters(pairs)) == 3
    # without the project: the first record of each pair, still a suggestion
    bare = review.duplicate_pairs(SEMANTIC_ONLY)
    assert [(p.left, p.keeper) for p in bare] == [(3, 3), (1, 1), (5, 5)]
    # the report's own keeper wins
    named = {"semantic_duplicates": [{"a": 1, "b": 2, "similarity": 0.96, "keep": 1, "reason": "picked"}]}
    assert [(p.left, p.right, p.reason) for p in review.duplicate_pairs(named, project)] == [(1, 2, "picked")]


def test_clusters_are_numbered_in_list_order():
    report = {"near_duplicate_clusters": [{"indices": [9], "keep": 9},  # too small: no pairs
                                          {"indices": [1, 2], "keep": 1,
                                           "pairs": [{"a": 1, "b": 2, "similarity": 0.8}]},
                                          {"indices": [3, 4], "keep": 3,
                                           "pairs": [{"a": 3, "b": 4, "similarity": 0.9}]}],
              "exact_duplicates": [[3, 4]],  # inside a near cluster: adds nothing, numbers nothing
              "semantic_duplicates": [{"a": 5, "b": 6, "similarity": 0.97}]}
    pairs = review.duplicate_pairs(report)
    assert [(p.left, p.right, p.cluster) for p in pairs] == [(3, 4, 1), (1, 2, 2), (5, 6, 3)]


def test_suggestions_cover_semantic_pairs_at_the_shown_precision(project):
    pairs = review.duplicate_pairs(SEMANTIC_ONLY, project)
    # 0.9496 shows as 0.95: at a threshold of 0.95 all three pairs count
    plan = review.suggestion_plan(project, pairs, 0.95)
    assert plan == {3: "approved", 4: "rejected", 2: "approved", 1: "rejected", 5: "approved", 6: "rejected"}
    assert review.similar_enough(0.9496, 0.95) and not review.similar_enough(0.9449, 0.95)
    assert review.suggestion_plan(project, pairs, 0.96) == {3: "approved", 4: "rejected"}
    assert review.accept_suggestions(project, pairs, 0.95) == 6
    assert project.peek_undo()["action"] == "accept_suggestions"


def test_leak_pairs_carry_the_scans_evidence():
    report = {"leakage": [
        {"index": 1, "test_index": 9, "method": "ngram", "score": 0.5, "field": "prompt",
         "evidence": {"ngram": "the white rabbit can hop 15 meters in one minute the brown rabbit hops"}},
        {"index": 2, "test_index": 9, "method": "semantic", "score": 0.91, "field": "prompt",
         "evidence": {"matched_words": ["Rabbit", "hop", "meters"]}},
        {"index": 3, "test_index": 9, "method": "minhash", "score": 0.7, "field": "prompt", "evidence": "junk"},
    ]}
    by_train = {p.train: p for p in review.leak_pairs(report)}
    assert by_train[1].ngram.startswith("the white rabbit") and by_train[1].matched_words == ()
    assert by_train[2].matched_words == ("Rabbit", "hop", "meters")
    assert by_train[3].ngram == "" and by_train[3].matched_words == ()  # unreadable evidence: none
    ev = review.leak_evidence(by_train[2])
    assert ev == LeakEvidence("", ("rabbit", "hop", "meters"), True)


def test_evidence_is_worked_out_for_a_report_without_any():
    train = chat("The white rabbit can hop 15 meters in one minute. How far in 5 minutes?", "75 meters.", 0)
    test = chat("A white rabbit can hop 15 meters in one minute! How far does it go in 3 minutes?", "45.", 1)
    ngram = LeakPair(1, 9, "ngram", 0.4, "prompt")
    ev = review.leak_evidence(ngram, train, test)
    assert ev == LeakEvidence("white rabbit can hop 15 meters in one minute how far", (), False)
    exact = LeakPair(1, 9, "exact", 1.0, "answer")  # an exact hit shows the shared text as one run
    assert review.leak_evidence(exact, train, chat("q", "It is 75 meters.", 2)).ngram == ""  # too short a run
    same = chat("q", "The rabbit hops 75 meters in all.", 3)
    assert review.leak_evidence(exact, same, same).ngram == "the rabbit hops 75 meters in all"
    semantic = LeakPair(1, 9, "semantic", 0.9, "prompt")
    words = review.leak_evidence(semantic, train, test).words
    assert words[:5] == ("white", "rabbit", "hop", "15", "meters")
    assert "the" not in words and "tutor" not in words  # no common words, no system prompt
    assert review.leak_evidence(semantic) == LeakEvidence(from_scan=False)  # no records: nothing to say
    assert not review.leak_evidence(semantic)


def test_evidence_spans_find_the_ngram_and_the_words_in_a_text():
    text = "The white Rabbit can hop 15 meters\nin one minute. Rabbits don't hop."
    ev = LeakEvidence("white rabbit can hop 15 meters in one minute")
    (start, end), = review.evidence_spans(text, ev)
    assert text[start:end] == "white Rabbit can hop 15 meters\nin one minute"
    spans = review.evidence_spans(text, LeakEvidence("", ("rabbit", "hop", "don", "t")))
    assert [text[a:b] for a, b in spans] == ["Rabbit", "hop", "don", "t", "hop"]  # whole words only
    assert review.evidence_spans(text, LeakEvidence()) == []
    assert review.evidence_spans("", ev) == []


def test_shared_words_and_runs():
    assert review.shared_words("Is it 42 or 7, Tom?", "tom says 42; it is 7") == ("42", "7", "tom")
    assert review.shared_words("a b c", "") == ()
    assert review.shared_run("one two three four five", "zero one two three four") == "one two three four"
    assert review.shared_run("one two three", "one two three") == ""  # under four words: no run
