"""Large files stream: validating or importing never holds the file's records in memory."""

import json
import os
import tracemalloc

from ftcurate.core.io.ingest import import_dataset
from ftcurate.core.project.store import Project
from ftcurate.core.io.validate import validate_path


def _big(path, n):
    line = {"messages": [{"role": "system", "content": "You are a tutor."},
                         {"role": "user", "content": "What is %d plus %d? Please explain the steps."},
                         {"role": "assistant", "content": "First add the ones, then the tens: %d."}]}
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            d = json.loads(json.dumps(line))
            d["messages"][1]["content"] %= (i, i + 1)
            d["messages"][2]["content"] %= (2 * i + 1,)
            f.write(json.dumps(d) + "\n")


def test_validate_and_import_stream_in_bounded_memory(tmp_path):
    path = str(tmp_path / "big.jsonl")
    n = 20_000
    _big(path, n)
    size = os.path.getsize(path)
    small = str(tmp_path / "small.jsonl")
    _big(small, 10)
    validate_path(small)  # warm up: module imports are not the reader's memory
    tracemalloc.start()
    report = validate_path(path)
    _, peak_validate = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.loaded == n and report.rejected == 0
    # Per-record state is three integers; the records themselves are not kept.
    assert peak_validate < 0.35 * size, (peak_validate, size)

    def import_peak(file, name):
        tracemalloc.start()
        with Project.open(str(tmp_path / name), create=True) as project:
            rep = import_dataset(project, file)
            assert project.count() == rep.loaded
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return rep, peak

    quarter = str(tmp_path / "quarter.jsonl")
    _big(quarter, n // 4)
    _, peak_quarter = import_peak(quarter, "q.ftcurate")
    rep, peak_full = import_peak(path, "p.ftcurate")
    assert rep.loaded == n
    # Imports in fixed-size batches: four times the records, about the same peak.
    assert peak_full < 1.5 * peak_quarter + 1_000_000, (peak_full, peak_quarter)
    assert peak_full < size, (peak_full, size)
