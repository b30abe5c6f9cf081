"""Scan progress (issue 11 item 11): counted in records, stage by stage, never backwards, each
stage named, and long waits named ("loading the embedding model…") instead of a silent bar."""

from __future__ import annotations

import os
import re

from ftcurate.core.io.formats import DatasetReader
from ftcurate.core.quality import embeddings as E
from ftcurate.core.quality.scan import ScanSettings, scan_records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "resources", "sample", "chat_train.jsonl")
HELDOUT = os.path.join(ROOT, "resources", "sample", "heldout_test.jsonl")
STEP = re.compile(r"^Step (\d+)/(\d+): ([a-z ]+?)(?: — (.+))?$")


def records(path: str, limit: int) -> list:
    return [(p.index, p.record) for p in DatasetReader(path) if p.ok][:limit]


def test_scan_progress_in_records_by_stage():
    train = records(SAMPLE, 120)
    test = records(HELDOUT, 30)
    calls = []
    E.clear_models()  # the models have to be loaded: the wait must be named
    scan_records(train, test, settings=ScanSettings(outlier_model="static-wordllama"),
                 progress=lambda d, t, m: calls.append((d, t, m)))
    assert calls
    stages: list[str] = []
    last = (0, -1)
    n_stages = None
    for done, total, message in calls:
        assert total == len(train), (total, message)  # always in records of the scanned file
        assert 0 <= done <= total
        m = STEP.match(message)
        assert m, message
        k, n, name = int(m.group(1)), int(m.group(2)), m.group(3)
        n_stages = n_stages or n
        assert n == n_stages
        assert (k, done) >= last, (last, (k, done), message)  # never backwards
        last = (k, done)
        if not stages or stages[-1] != name:
            assert name not in stages, f"stage {name} came back"
            stages.append(name)
            assert k == len(stages)
    assert stages == ["heuristics", "exact duplicates", "near duplicates", "embeddings", "neighbours",
                      "outliers", "semantic duplicates", "leakage"]
    assert n_stages == len(stages)
    for name in stages:  # every stage starts at 0 and ends with all records
        mine = [(d, m) for d, _t, m in calls if STEP.match(m).group(3) == name]
        assert mine[0][0] == 0 and mine[-1][0] == len(train) and mine[-1][1].endswith("— done")
    # long steps with no count of their own say what they wait for
    waits = [m for _d, _t, m in calls if "loading the embedding model" in m]
    assert any("embeddings" in m for m in waits) and any("leakage" in m for m in waits), waits
    # the leakage stage moves through its phases (text checks, then the semantic scan)
    leak = [m for _d, _t, m in calls if ": leakage — " in m]
    assert any("13-word overlaps" in m for m in leak) and any("shortlisting" in m for m in leak)
    assert len({d for d, _t, m in calls if ": leakage" in m}) >= 5  # the count moves


def test_progress_without_test_set_or_optional_stages():
    train = records(SAMPLE, 40)
    calls = []
    s = ScanSettings(near_duplicates=False, outliers=False, semantic_duplicates=False)
    scan_records(train, settings=s, progress=lambda d, t, m: calls.append((d, t, m)))
    names = []
    for _d, t, m in calls:
        assert t == len(train)
        name = STEP.match(m).group(3)
        if not names or names[-1] != name:
            names.append(name)
    assert names == ["heuristics", "exact duplicates"]
    assert calls[-1][0] == len(train) and calls[-1][2].startswith("Step 2/2")
