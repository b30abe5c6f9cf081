"""The record frame (numpy columns of the review table) and validated edits."""

from __future__ import annotations

import numpy as np
import pytest

from ftcurate.core.project.edit import edited_messages, validated_edit
from ftcurate.core.project.table import FINDING_KINDS, RecordFrame, report_findings
from test_store import new_project


def _report(ids):
    return {
        "exact_duplicates": [[ids[0], ids[1]]],
        "outliers": [{"index": ids[3], "score": 2.5}],
        "outlier_scores": {"scores": [float(i) / 10 for i in range(len(ids))]},
        "scanned_ids": list(ids),
        "leakage": [{"index": ids[2], "test_index": ids[-1], "method": "exact", "score": 1.0}],
        "flags": [{"index": ids[2], "flag": "pii", "reason": "an e-mail"}],
    }


def test_frame_reads_the_store_and_filters(tmp_path):
    p, _ = new_project(tmp_path, 10)
    ids = p.ids()
    frame = RecordFrame.from_project(p, _report(ids))
    assert list(frame.ids) == ids and len(frame) == 10
    assert (frame.messages > 0).all() and (frame.chars > 0).all()
    assert frame.flag_counts() == {"exact duplicate": 2, "outlier": 1, "leakage": 1, "pii": 1}
    assert list(frame.select(flag="exact duplicate")) == ids[:2]
    assert list(frame.select(flag="any")) == ids[:4]
    assert len(frame.select(flag="none")) == 6
    # the flagged outlier keeps its own score; the others come from outlier_scores
    assert frame.score[3] == pytest.approx(2.5) and frame.score[5] == pytest.approx(0.5)
    assert list(frame.select(score_min=0.75)) == [ids[3], ids[8], ids[9]]

    p.approve(ids[:3])
    p.add_label(ids[4:6], "math")
    frame.update(p, ids[:6])
    assert list(frame.select(status="approved")) == ids[:3]
    assert list(frame.select(label_ids=p.ids_with_label("math"))) == ids[4:6]
    assert list(frame.select(status="approved", flag="exact duplicate")) == ids[:2]
    assert p.all_labels() == {"math": 2}


def test_frame_sorts_stably_with_unscored_last(tmp_path):
    p, _ = new_project(tmp_path, 6)
    ids = p.ids()
    frame = RecordFrame.from_project(p, {"outliers": [{"index": ids[4], "score": 3.0},
                                                       {"index": ids[1], "score": 1.0}]})
    assert list(frame.order(np.array(ids), "score", descending=True)[:2]) == [ids[4], ids[1]]
    assert list(frame.order(np.array(ids), "score")[:2]) == [ids[1], ids[4]]
    assert list(frame.order(np.array(ids), "id", descending=True)) == ids[::-1]
    assert list(frame.order(np.array(ids), "flags", descending=True)[:2]) == [ids[1], ids[4]]
    with pytest.raises(ValueError):
        frame.order(np.array(ids), "colour")


def test_report_findings_ignores_unknown_flags():
    bits, scores = report_findings({"flags": [{"index": 1, "flag": "not-a-flag"}], "outliers": []})
    assert bits == {} and scores == {}
    assert "near duplicate" in FINDING_KINDS


def test_validated_edit_checks_like_an_import(tmp_path):
    p, _ = new_project(tmp_path, 1)
    original = p.get(p.ids()[0]).record
    turns = [(m.role, m.content or "") for m in original.messages]
    turns[-1] = (turns[-1][0], "A better answer.")
    rec, problems = validated_edit(original, edited_messages(original, turns))
    assert problems == [] and rec.messages[-1].content == "A better answer."
    assert rec.source == original.source and rec.split == original.split

    rec, problems = validated_edit(original, edited_messages(original, [("user", "only a question")]))
    assert rec is None and problems[0][0] == "example_missing_assistant_message"
    rec, problems = validated_edit(original, "{not json")
    assert rec is None and problems[0][0] == "invalid_json"
    rec, problems = validated_edit(original, {"messages": [], "extra": 1})
    assert rec is None and problems[0][0] == "unrecognized_key"
