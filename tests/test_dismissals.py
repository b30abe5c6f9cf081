"""Dismissed findings (issue 11): "not a duplicate / not a leak / not an outlier" are
decisions (undo, log), survive a rescan (keyed by content), and the counts and the training
gate respect them."""

from __future__ import annotations

import json

import pytest

from ftcurate.core.io.ingest import import_dataset
from ftcurate.core.project.dismissals import (FLAG, LENGTH_OUTLIER, OUTLIER, apply_dismissals, dismiss_finding,
                                              dismiss_leak, dismiss_pair, stored_report)
from ftcurate.core.project.store import Project
from ftcurate.core.quality.scan import ScanSettings, scan_project
from ftcurate.train.data import check_leakage


def chat(q, a):
    return json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})


@pytest.fixture
def project(tmp_path):
    train = [chat(f"What is {i} plus {i}? Please show the working step by step.", f"{i} + {i} = {2 * i}.")
             for i in range(12)]
    train[5] = train[4]  # an exact copy
    train[7] = chat("What is 6 plus 6? Please show the working step by step, thanks.", "6 + 6 = 12.")  # near
    test = [chat("What is 3 plus 3? Please show the working step by step.", "6")]
    (tmp_path / "t.jsonl").write_text("\n".join(train) + "\n", encoding="utf-8")
    (tmp_path / "h.jsonl").write_text("\n".join(test) + "\n", encoding="utf-8")
    with Project.open(str(tmp_path / "p.ftcurate"), create=True) as p:
        import_dataset(p, str(tmp_path / "t.jsonl"))
        import_dataset(p, str(tmp_path / "h.jsonl"), role="test")
        yield p


def ids(project, split="train"):
    return project.ids(split=split)


def hand_report(project):
    tr, te = ids(project), ids(project, "test")
    return {"index": "record_id", "records": len(tr),
            "exact_duplicates": [[tr[4], tr[5]]],
            "near_duplicate_clusters": [{"indices": [tr[6], tr[7], tr[8]], "keep": tr[6], "reason": "r",
                                         "pairs": [{"a": tr[6], "b": tr[7], "similarity": 0.9},
                                                   {"a": tr[7], "b": tr[8], "similarity": 0.85}]}],
            "near_duplicates": [[tr[6], tr[7], tr[8]]],
            "semantic_duplicates": [{"a": tr[1], "b": tr[2], "similarity": 0.96}],
            "leakage": [{"index": tr[3], "test_index": te[0], "method": "ngram", "score": 0.8, "field": "prompt"}],
            "outliers": [{"index": tr[9], "score": 0.9}],
            "length_outliers": [{"index": tr[10], "tokens": 900, "score": 5.0}],
            "flags": [{"index": tr[11], "flag": "refusal", "reason": "x"}]}


def test_each_kind_is_left_out_and_counted(project):
    report = hand_report(project)
    tr, te = ids(project), ids(project, "test")
    assert apply_dismissals(project, report) is report  # nothing dismissed: the report as it is
    dismiss_pair(project, tr[1], tr[2], reason="different numbers")
    dismiss_pair(project, tr[6], tr[8])
    dismiss_leak(project, tr[3], te[0])
    dismiss_finding(project, [tr[9]], OUTLIER)
    dismiss_finding(project, [tr[10]], LENGTH_OUTLIER)
    dismiss_finding(project, [tr[11]], FLAG + "refusal")
    out = apply_dismissals(project, report)
    assert out["semantic_duplicates"] == []
    assert out["near_duplicate_clusters"][0]["indices"] == [tr[6], tr[7]]
    assert out["near_duplicates"] == [[tr[6], tr[7]]]
    assert out["exact_duplicates"] == [[tr[4], tr[5]]]
    assert out["leakage"] == [] and out["outliers"] == [] and out["length_outliers"] == [] and out["flags"] == []
    assert out["dismissed"] == {"duplicate pairs": 2, "leaks": 1, "outliers": 2, "flags": 1}
    assert len(report["semantic_duplicates"]) == 1  # the stored report is left as it was
    assert project.get(tr[1]).record is not None
    hist = project.history(tr[1])
    assert hist[0]["action"] == "dismiss"


def test_dismissals_are_decisions_with_undo(project):
    tr, te = ids(project), ids(project, "test")
    report = hand_report(project)
    dismiss_leak(project, tr[3], te[0], reason="another problem")
    assert apply_dismissals(project, report)["leakage"] == []
    assert project.peek_undo()["action"] == "dismiss"
    project.undo()
    assert apply_dismissals(project, report) is report
    project.redo()
    assert apply_dismissals(project, report)["leakage"] == []


def test_a_dismissal_survives_a_rescan_and_the_gate_respects_it(project):
    settings = ScanSettings(semantic_leakage=False, semantic_duplicates=False, outliers=False,
                            length_outliers=False, outlier_model="static-wordllama", leak_ngram=5)
    report = scan_project(project, settings)
    leaks = report["leakage"]
    assert leaks, "the planted leak is found"
    train_id = leaks[0]["index"]
    project.approve(ids(project))
    assert check_leakage(project)  # approved and leaking: training would refuse
    dismiss_leak(project, train_id, leaks[0]["test_index"], reason="different question")
    assert not [h for h in check_leakage(project) if h["index"] == train_id]
    scan_project(project, settings)  # a rescan finds the same leak: still dismissed
    again = stored_report(project)
    assert not [h for h in again["leakage"] if h["index"] == train_id]
    assert again["dismissed"]["leaks"] == 1


def test_findings_of_a_record_and_dismissing_one(project):
    from ftcurate.core.project.dismissals import dismiss, findings_of

    tr, te = ids(project), ids(project, "test")
    report = hand_report(project)
    kinds = {(f["kind"], f["other"]) for f in findings_of(report, tr[7])}
    assert kinds == {("duplicate", tr[6])}  # a cluster member is paired with its keeper
    assert {(f["kind"], f["other"]) for f in findings_of(report, tr[6])} == {("duplicate", tr[7]),
                                                                           ("duplicate", tr[8])}
    assert findings_of(report, tr[3]) == [{"kind": "leak", "other": te[0], "what": "leaks a held-out record (ngram)"}]
    assert findings_of(report, tr[11])[0]["kind"] == "flag:refusal"
    dismiss(project, tr[3], findings_of(report, tr[3])[0], reason="another question")
    after = apply_dismissals(project, report)
    assert findings_of(after, tr[3]) == []
    assert project.history(tr[3])[0]["after"]["dismissed"][0]["reason"] == "another question"


def test_cli_dismiss_undo_and_the_scan_report(project, capsys):
    from ftcurate.cli import main

    tr, te = ids(project), ids(project, "test")
    path = project.path
    project.save_scan("quality", {}, hand_report(project))
    idx = {rid: project.get(rid).index for rid in tr}
    project.close()
    assert main(["dismiss", path, "--leak", str(idx[tr[3]]), "0", "--reason", "other question"]) == 0
    assert main(["dismiss", path, "--flag", "refusal", str(idx[tr[11]])]) == 0
    assert main(["dismiss", path, "--duplicate", str(idx[tr[1]]), str(idx[tr[2]])]) == 0
    assert "dismissed (not a duplicate" in capsys.readouterr().out
    with Project.open(path) as p:
        shown = stored_report(p)
        assert shown["leakage"] == [] and shown["flags"] == [] and shown["semantic_duplicates"] == []
    assert main(["decide", path, "--undo"]) == 0  # dismissals are decisions
    with Project.open(path) as p:
        assert len(stored_report(p)["semantic_duplicates"]) == 1
    assert main(["dismiss", path, "--flag", "refusal"]) == 2  # no record named: a clear error


def test_the_decision_log_says_what_was_dismissed(project):
    from ftcurate.core.io.export import decision_log_csv

    tr, te = ids(project), ids(project, "test")
    dismiss_leak(project, tr[3], te[0], reason="another question")
    log = decision_log_csv(project).splitlines()
    assert log[0].endswith(",dismissed_after")
    assert log[-1].endswith("not a leak (another question)") and ",dismiss," in log[-1]
