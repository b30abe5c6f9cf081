"""Tests for reviewing duplicate pairs and leaks (ftcurate.core.project.review): the pairs a report
gives, word-level differences, and decisions as single undo steps."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ftcurate.core.project import review
from ftcurate.core.project.records import Message, Record, Source
from ftcurate.core.project.review import DuplicatePair, LeakPair
from ftcurate.core.project.store import Project


def chat(question: str, answer: str, i: int, split: str = "train") -> Record:
    return Record(messages=[Message("system", "be brief"), Message("user", question), Message("assistant", answer)],
                  source=Source("data.jsonl", i + 1, i), split=split)


@pytest.fixture
def project(tmp_path: Path):
    """8 training records (ids 1-8) and 3 test records (ids 9-11)."""
    p = Project.create(tmp_path / "p.ftcurate", reviewer="alice")
    sid = p.add_source(tmp_path / "data.jsonl", "jsonl", total=8)
    p.add_records(sid, (chat(f"question {i}", f"answer {i}", i) for i in range(8)))
    tid = p.add_source(tmp_path / "test.jsonl", "jsonl", role="test", total=3)
    p.add_records(tid, (chat(f"test question {i}", f"test answer {i}", i, "test") for i in range(3)))
    assert p.ids(split="train") == list(range(1, 9)) and p.ids(split="test") == [9, 10, 11]
    yield p
    p.close()


REPORT = {
    "version": 1, "index": "record_id",
    "near_duplicate_clusters": [
        # keeper 3; 1-2 compared directly only with each other (no direct pair with the keeper for 1)
        {"indices": [1, 2, 3], "keep": 3, "reason": "longest answer (40 chars)",
         "pairs": [{"a": 1, "b": 2, "similarity": 0.97}, {"a": 2, "b": 3, "similarity": 0.88}]},
        {"indices": [5, 6], "keep": 5, "reason": "longest answer (12 chars)",
         "pairs": [{"a": 5, "b": 6, "similarity": 0.99}]},
    ],
    # 5 and 6 are identical: inside cluster 2, so only marks that pair as exact
    "exact_duplicates": [[5, 6], [7, 8]],
    "semantic_duplicates": [{"a": 2, "b": 3, "similarity": 0.96},  # already a cluster pair
                            {"a": 1, "b": 2, "similarity": 0.95},  # same cluster: left out
                            {"a": 4, "b": 8, "similarity": 0.955}],
    "leakage": [{"index": 4, "test_index": 9, "method": "ngram", "score": 0.5, "field": "answer"},
                {"index": 4, "test_index": 9, "method": "exact", "score": 1.0, "field": "prompt"},
                {"index": 7, "test_index": 10, "method": "semantic", "score": 0.93, "field": "prompt"},
                {"index": 2, "test_index": 11, "method": "minhash", "score": 0.7, "field": "prompt"}],
    "validation_leakage": [{"index": 6, "test_index": 10, "method": "ngram", "score": 0.8, "field": "prompt"}],
}


def statuses(project: Project, ids=range(1, 12)) -> dict[int, str]:
    return {i: project.get(i).status for i in ids}


# -- the pairs ------------------------------------------------------------------------------------


def test_duplicate_pairs_from_a_report():
    pairs = review.duplicate_pairs(REPORT)
    got = [(p.left, p.right, p.kind, p.cluster, p.keeper, p.similarity) for p in pairs]
    assert got == [
        (5, 6, "exact", 1, 5, 1.0),  # near pair marked exact by the group inside its cluster
        (7, 8, "exact", 2, 7, 1.0),  # an exact group of its own: similarity 1.0, keeper = first
        (3, 1, "near", 3, 3, 0.97),  # no direct pair with the keeper: the member's best similarity
        (3, 2, "near", 3, 3, 0.88),  # the cluster's direct pair similarity
        (4, 8, "semantic", 4, 4, 0.955),  # a cluster of two; the other two semantic pairs are cluster pairs
    ]  # clusters numbered 1, 2, ... in list order
    # clusters by descending cluster similarity (its lowest pair), pairs inside by similarity
    assert pairs[2].reason == "longest answer (40 chars)"
    # every unordered pair once
    keys = [frozenset(p.ids) for p in pairs]
    assert len(keys) == len(set(keys))
    assert review.duplicate_pairs(None) == [] and review.duplicate_pairs({}) == []
    assert review.cluster_similarity(review.clusters(pairs)[3]) == 0.88


def test_exact_group_spanning_clusters_uses_the_near_keeper():
    report = {"near_duplicate_clusters": [{"indices": [1, 2], "keep": 2, "reason": "r",
                                           "pairs": [{"a": 1, "b": 2, "similarity": 0.9}]}],
              "exact_duplicates": [[3, 2]]}
    pairs = review.duplicate_pairs(report)
    assert [(p.left, p.right, p.kind, p.keeper) for p in pairs] == [(2, 3, "exact", 2), (2, 1, "near", 2)]


def test_pair_decision_labels():
    assert review.pair_decision("approved", "rejected") == "kept left"
    assert review.pair_decision("rejected", "edited") == "kept right"
    assert review.pair_decision("edited", "approved") == "kept both"
    assert review.pair_decision("rejected", "rejected") == "rejected both"
    assert review.pair_decision("approved", "unreviewed") == ""
    assert review.pair_decision(None, "approved") == ""


# -- decisions ---------------------------------------------------------------------------------------


def test_pair_decisions_are_one_undo_step_each(project):
    pair = DuplicatePair(3, 1, 0.97, "near", 1, 3, "")
    review.keep_left(project, pair)
    assert (project.get(3).status, project.get(1).status) == ("approved", "rejected")
    assert project.peek_undo()["action"] == "keep_left" and project.peek_undo()["count"] == 2
    assert sorted(project.undo()) == [1, 3]
    assert (project.get(3).status, project.get(1).status) == ("unreviewed", "unreviewed")

    review.keep_right(project, pair)
    assert (project.get(3).status, project.get(1).status) == ("rejected", "approved")
    review.reject_both(project, pair)
    assert (project.get(3).status, project.get(1).status) == ("rejected", "rejected")
    review.keep_both(project, pair)
    assert (project.get(3).status, project.get(1).status) == ("approved", "approved")
    assert [h["action"] for h in project.history(limit=8)][::2] == ["keep_both", "reject_both", "keep_right",
                                                                    "keep_left"]
    project.undo()
    assert (project.get(3).status, project.get(1).status) == ("rejected", "rejected")


def test_keeping_an_edited_record_leaves_it_edited(project):
    rec = project.get(1).record
    rec.messages[2].content = "a better answer"
    project.edit(1, rec)
    review.keep_left(project, DuplicatePair(1, 2, 0.9, "near"))
    assert (project.get(1).status, project.get(2).status) == ("edited", "rejected")
    assert project.get(1).record.messages[2].content == "a better answer"


def test_accept_suggestions_is_one_undo_step_and_respects_people(project):
    pairs = review.duplicate_pairs(REPORT)
    before = statuses(project)
    # a person already decided: 6 approved (cluster 2's copy: it stands in for keeper 5)
    project.approve(6)
    # above 0.9: clusters 1 (1.0), 2 (1.0) and the semantic pair 4 (0.955); cluster 3 (0.88)
    # is not similar enough; 8 is a copy in cluster 2, so rejected though it keeps 4's pair
    plan = review.suggestion_plan(project, pairs, 0.9)
    assert plan == {4: "approved", 5: "rejected", 7: "approved", 8: "rejected"}
    n_groups = len(project.history())
    assert review.accept_suggestions(project, pairs, 0.9) == 4
    assert len(project.history()) == n_groups + 4
    assert project.peek_undo()["action"] == "accept_suggestions"
    now = statuses(project)
    assert (now[5], now[6], now[7], now[8]) == ("rejected", "approved", "approved", "rejected")
    assert now[1] == now[2] == now[3] == "unreviewed"
    # once more: nothing left to change
    assert review.accept_suggestions(project, pairs, 0.9) == 0
    project.undo()  # the whole bulk step at once
    assert statuses(project) == {**before, 6: "approved"}

    # lower threshold: cluster 3 too; keeper 3 approved, 1 and 2 rejected
    assert review.accept_suggestions(project, pairs, 0.8) == 7
    now = statuses(project)
    assert (now[1], now[2], now[3]) == ("rejected", "rejected", "approved")
    # a semantic pair is a cluster of two with a suggestion too
    assert now[4] == "approved"


def test_accept_suggestions_skips_a_cluster_whose_keeper_a_person_rejected(project):
    pairs = review.duplicate_pairs(REPORT)
    project.reject(3)
    plan = review.suggestion_plan(project, pairs, 0.8)
    assert not {1, 2, 3} & set(plan)
    assert plan[5] == "approved" and plan[6] == "rejected"


def test_leak_pairs_decisions_and_unresolved(project):
    pairs = review.leak_pairs(REPORT)
    assert [(p.train, p.test, p.method, p.section) for p in pairs] == [
        (4, 9, "exact", "leakage"),  # the most certain method of the pair; listed once
        (2, 11, "minhash", "leakage"),
        (7, 10, "semantic", "leakage"),
        (6, 10, "ngram", "validation_leakage"),
    ]
    assert pairs[0].held_out_split == "test" and pairs[3].held_out_split == "validation"
    assert len(review.unresolved_leaks(project, REPORT)) == 4

    review.remove_leak(project, pairs[0])
    assert project.get(4).status == "rejected"
    assert project.peek_undo()["action"] == "remove_leak"
    review.move_leak_to_test(project, pairs[1])
    assert project.get(2).split == "test" and project.get(2).status == "unreviewed"
    assert project.peek_undo()["action"] == "set_split"
    review.move_leak_to_test(project, pairs[3])  # a validation leak goes to validation
    assert project.get(6).split == "validation"
    assert [p.train for p in review.unresolved_leaks(project, REPORT)] == [7]

    project.undo()
    project.undo()
    assert project.get(2).split == "train"
    assert [p.train for p in review.unresolved_leaks(project, REPORT)] == [2, 7, 6]
    assert review.leak_pairs(None) == []
    assert review.unresolved_leaks(project, {"leakage": [{"index": 999, "test_index": 9, "method": "exact",
                                                          "score": 1.0, "field": "prompt"}]}) == []


def test_leak_pair_defaults():
    p = LeakPair(1, 2, "exact", 1.0, "prompt")
    assert p.section == "leakage" and p.ids == (1, 2)


# -- word diff -----------------------------------------------------------------------------------------


def joined(ops):
    return "".join(a for _, a, _ in ops), "".join(b for _, _, b in ops)


def test_word_diff_words_and_punctuation():
    a = "The cat sat on the mat. It was happy."
    b = "The cat sat on a mat! It was very happy."
    ops = review.word_diff(a, b)
    assert joined(ops) == (a, b)
    changed = [(op, x.strip(), y.strip()) for op, x, y in ops if op != "equal"]
    assert changed == [("replace", "the", "a"), ("replace", ".", "!"), ("insert", "", "very")]
    assert review.word_diff("", "") == []
    assert review.word_diff("same", "same") == [("equal", "same", "same")]
    assert review.word_diff("", "new") == [("insert", "", "new")]
    assert review.word_diff("old", "") == [("delete", "old", "")]
    # whitespace does not count as a difference
    assert [op for op, _, _ in review.word_diff("a  b\nc", "a b c")] == ["equal"]


def _edited(text: str, edits: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = text.split(" ")
    for _ in range(edits):
        words[rng.randrange(len(words))] = "CHANGED"
    return " ".join(words)


@pytest.mark.parametrize("size", [20_000, 120_000, 600_000])
def test_word_diff_is_exact_on_long_texts(size):
    """Correctness on long texts; the speed is measured in benchmarks/bench_diff.py (no timed
    test: a loaded machine makes them fail for nothing)."""
    rng = random.Random(1)
    vocab = ["the", "a", "of", "=", "and", "is", "to", ".", ","] + [f"w{i}" for i in range(500)]
    text = " ".join(rng.choice(vocab) + ("\n" if rng.random() < 0.02 else "") for _ in range(size // 4))[:size]
    other = _edited(text, size // 200)
    ops = review.word_diff(text, other)
    assert joined(ops) == (text, other)
    # the edits are found word by word, not as one block
    changed = sum(len(a) for op, a, _ in ops if op != "equal")
    assert changed < len(text) * 0.2
    # two unrelated texts: still the texts back
    unrelated = " ".join(rng.choice(vocab) for _ in range(size // 4))[:size]
    assert joined(review.word_diff(text, unrelated)) == (text, unrelated)


def test_review_imports_no_qt():
    import ast

    tree = ast.parse(Path(review.__file__).read_text(encoding="utf-8"))
    names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [n for n in names if n.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6")]
