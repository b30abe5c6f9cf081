"""kill -9 at random points of `ftcurate import` and `ftcurate decide` (issue 12's fault
harness, a few trials with a fixed seed; benchmarks/kill_trials.py runs many more and
docs/benchmarks.md has its results). After every kill: the project opens and is intact,
every decision printed before the kill is saved, no partial import is shown as complete
(by the store or by `ftcurate stats`), and importing the file again completes it without
duplicates."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

from kill_trials import Harness  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_during_import_and_decide(tmp_path):
    h = Harness(str(tmp_path), records=6000, seed=12)
    h.setup()
    trials = [h.import_trial(at_commit=True), h.import_trial(), h.decide_trial()]
    for t in trials:
        assert not t.problems, (t.kind, t.killed_after, t.problems)
    # the kill at the first commit left a partial source, which the next import finished
    assert trials[0].state == "incomplete" and trials[0].finished_by == "finished the incomplete import"
    assert all(t.finished_by != "?" for t in trials if t.kind != "decide")
