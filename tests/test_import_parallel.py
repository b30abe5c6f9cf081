"""A large JSON Lines import read on every core (ftcurate/core/io/bulk.py, issue 14) stores
exactly what the one-process import stores: the same rows, record indices, line numbers,
errors kept and counted, statistics and warnings; a cancel ends the workers and leaves the
project as it was; a killed one resumes; small files and other containers stay in one process.
Sizes are small here: the ranges the workers read are made tiny instead."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftcurate.core.io import bulk, ingest
from ftcurate.core.io.formats import DatasetReader, RecordError
from ftcurate.core.io.ingest import import_dataset
from ftcurate.core.io.validate import StatsAccumulator, TokenCounter, checked_records, new_report
from ftcurate.core.progress import Cancelled, Reporter
from ftcurate.core.project.records import canonical_json
from ftcurate.core.project.store import Project

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def chat(i: int, **extra) -> dict:
    return {"messages": [{"role": "system", "content": "You are a tutor."},
                         {"role": "user", "content": f"What is {i} plus {i}? é ✓ 𝄞"},
                         {"role": "assistant", "content": f"It is {2 * i}."}], **extra}


def mixed_lines(n: int = 60) -> list[bytes]:
    """Good records of every shape the reader takes, and bad ones of every kind, with blank
    lines, CRLF endings and a BOM."""
    good = [
        lambda i: chat(i),
        lambda i: chat(i, source="gsm8k", score=0.1, big=1e16, n=2 ** 70),  # metadata json writes its own way
        lambda i: {"messages": [{"role": "user", "content": "hi", "name": "ana"},
                                {"role": "assistant", "content": "hello", "weight": 0}]},
        lambda i: {"messages": [{"role": "user", "content": "weather?"},
                                {"role": "assistant", "content": None,
                                 "tool_calls": [{"id": "c1", "type": "function",
                                                 "function": {"name": "w", "arguments": "{\"t\": 1.5}"}}]},
                                {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
                                {"role": "assistant", "content": "Sunny."}],
                   "tools": [{"type": "function", "function": {"name": "w", "parameters": {"x": 1.0}}}]},
        lambda i: {"messages": [{"role": "user", "content": "no system " * 30},
                                {"role": "assistant", "content": "fine"}]},
        lambda i: {"messages": [{"content": "x", "role": "assistant"}], "tools": None},
    ]
    bad = [
        b'{"messages": [{"role": "user", "content": "cut',
        b'{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "x"}]}',
        b'{"messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", "content": "x"}]}',
        b'{"messages": [{"role": "user", "content": NaN}, {"role": "assistant", "content": "x"}]}',
        b'[1, 2, 3]',
        b'{"messages": [{"role": "user", "content": "only a question"}]}',
        b'{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": ""}]}',
        b'{"messages": []}',
        b'"just text"',
        b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], '
        b'"tools": "not json"}',
        b'[' * 5000 + b']' * 5000,
    ]
    lines: list[bytes] = []
    for i in range(n):
        lines.append(json.dumps(good[i % len(good)](i), ensure_ascii=i % 2 == 0).encode("utf-8"))
        if i % 7 == 3:
            lines.append(bad[(i // 7) % len(bad)])
        if i % 11 == 5:
            lines.append(b"")
        if i % 13 == 6:
            lines.append(b"  \t ")
    lines[0] = b"\xef\xbb\xbf" + lines[0]
    return lines


def write(path: str, lines: list[bytes], crlf_every: int = 5, final_newline: bool = False) -> str:
    with open(path, "wb") as f:
        for k, line in enumerate(lines):
            last = k == len(lines) - 1
            if last and not final_newline:
                f.write(line)
            else:
                f.write(line + (b"\r\n" if k % crlf_every == 2 else b"\n"))
    return path


def serial(path: str, max_tokens: int = 40):
    """The one-process reading: report, statistics and (index, line) of the good records."""
    reader = DatasetReader(path)
    report = new_report(reader)
    acc = StatsAccumulator(TokenCounter(), max_tokens)
    got = [(r.source.index, r.source.line, r.content_json(), canonical_json(r.metadata) if r.metadata else "{}")
           for r in checked_records(reader, report, acc, Reporter())]
    return report, acc, got


def chunked(path: str, chunk_bytes: int, max_tokens: int = 40):
    """The workers' reading, in this process: every range through read_chunk, merged."""
    reader = DatasetReader(path)
    report = new_report(reader)
    acc = StatsAccumulator(TokenCounter(), max_tokens)
    got = []
    first = line0 = 0
    for start, end in bulk.chunk_bounds(path, chunk_bytes):
        c = bulk.read_chunk(path, start, end, reader.format, reader.mapping, "train", max_tokens)
        report.records += c.records
        for idx, line, problems in c.rejected:
            report.add_rejected([RecordError(first + idx, line0 + line, k, m) for k, m in problems])
        report.loaded += len(c.rows)
        acc.merge(c.acc, first)
        got += [(first + i, line0 + ln, content, meta) for i, ln, content, _h, meta in c.rows]
        first += c.records
        line0 += c.lines
    return report, acc, got


def same_stats(a: StatsAccumulator, b: StatsAccumulator) -> None:
    assert a.warnings == b.warnings and a.warning_examples == b.warning_examples
    assert a.with_system == b.with_system
    assert (list(a.n_messages), list(a.n_tokens), list(a.n_assistant)) == \
        (list(b.n_messages), list(b.n_tokens), list(b.n_assistant))


@pytest.mark.parametrize("final_newline", [False, True])
def test_ranges_read_what_one_process_reads(tmp_path, final_newline):
    path = write(str(tmp_path / "mixed.jsonl"), mixed_lines(), final_newline=final_newline)
    want_report, want_acc, want = serial(path)
    assert want_report.rejected >= 8 and want_report.loaded >= 50  # the file has both
    assert {"invalid_json", "invalid_utf8", "data_type", "example_missing_assistant_message"} <= \
        set(want_report.error_counts)
    for chunk_bytes in (1, 37, 200, 1000, 1 << 20):
        report, acc, got = chunked(path, chunk_bytes)
        assert got == want, chunk_bytes
        assert report.to_dict() == want_report.to_dict(), chunk_bytes
        same_stats(acc, want_acc)


def test_chunk_bounds_cover_the_file_on_line_endings(tmp_path):
    path = write(str(tmp_path / "m.jsonl"), mixed_lines(30))
    data = open(path, "rb").read()
    for chunk_bytes in (1, 10, 333, len(data), 10 * len(data)):
        bounds = list(bulk.chunk_bounds(path, chunk_bytes))
        assert bounds[0][0] == 0 and bounds[-1][1] == len(data)
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert all(data[e - 1:e] == b"\n" for _, e in bounds[:-1])


@pytest.fixture
def parallel(monkeypatch):
    """Every JSON Lines import goes to two worker processes, reading ranges of ~2 KB."""
    monkeypatch.setattr(bulk, "MIN_BYTES", 0)
    monkeypatch.setattr(bulk, "CHUNK_BYTES", 2048)
    monkeypatch.setattr(ingest, "BULK_BATCH", 30)
    monkeypatch.setenv("FTCURATE_WORKERS", "2")


def stored(path: str) -> tuple:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return (db.execute("SELECT idx, line, split, content, content_hash, metadata FROM records ORDER BY id").fetchall(),
                db.execute("SELECT record_id, status, labels FROM reviews ORDER BY record_id").fetchall(),
                db.execute("SELECT format, role, sha256, total, state, options, error_counts, errors_left_out "
                           "FROM sources").fetchall(),
                db.execute("SELECT line, idx, key, message FROM import_errors ORDER BY id").fetchall())
    finally:
        db.close()


def test_parallel_import_stores_what_the_serial_one_stores(tmp_path, parallel, monkeypatch):
    data = write(str(tmp_path / "mixed.jsonl"), mixed_lines(120))
    calls = []
    real = bulk.read_parallel

    def spy(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(bulk, "read_parallel", spy)
    reports = {}
    for name, workers in (("one", "1"), ("two", "2")):
        monkeypatch.setenv("FTCURATE_WORKERS", workers)
        with Project.open(str(tmp_path / f"{name}.ftcurate"), create=True) as p:
            reports[name] = import_dataset(p, data, max_error_details=5, progress=lambda *a: None).to_dict()
    assert calls == [1]  # the second import (two workers) went the parallel way
    assert stored(str(tmp_path / "one.ftcurate")) == stored(str(tmp_path / "two.ftcurate"))
    assert reports["one"] == reports["two"]
    assert reports["two"]["errors_left_out"] > 0 and reports["two"]["added"] == reports["two"]["loaded"]
    # a test set read the parallel way gets the split "test"
    with Project.open(str(tmp_path / "two.ftcurate")) as p:
        rep = import_dataset(p, write(str(tmp_path / "test.jsonl"), mixed_lines(40)), role="test")
        assert rep.added and p.count(split="test") == rep.added


def test_cancel_during_a_parallel_import_leaves_the_project_as_it_was(tmp_path, parallel):
    path = str(tmp_path / "p.ftcurate")
    small = write(str(tmp_path / "small.jsonl"), [json.dumps(chat(i)).encode() for i in range(10)])
    big = write(str(tmp_path / "big.jsonl"), [json.dumps(chat(i)).encode() for i in range(600)])
    with Project.open(path, create=True) as p:
        import_dataset(p, small)
        p.approve(p.id_for_index(1, 0))
    before = stored(path)
    calls = []

    def cancel():  # once a few batches are stored
        calls.append(1)
        return len(calls) > 3

    with Project.open(path) as p:
        with pytest.raises(Cancelled):
            import_dataset(p, big, cancel=cancel)
        assert p.count() == 10 and len(p.sources()) == 1
    assert stored(path) == before
    assert mp.active_children() == []  # the workers were ended


KILLED = """
import os, sys
sys.path.insert(0, sys.argv[3])
from ftcurate.core.io import bulk, ingest
from ftcurate.core.io.ingest import import_dataset
from ftcurate.core.project.store import Project
bulk.MIN_BYTES, bulk.CHUNK_BYTES, ingest.BULK_BATCH = 0, 2048, 30
def cancel():  # asked between batches: dies like kill -9 once a batch is committed
    import sqlite3
    db = sqlite3.connect(f"file:{sys.argv[2]}?mode=ro", uri=True)
    if db.execute("SELECT COUNT(*) FROM records").fetchone()[0]:
        os._exit(137)
    db.close()
    return False
if __name__ == "__main__":
    import_dataset(Project.open(sys.argv[2], create=True), sys.argv[1], cancel=cancel)
"""


def test_a_killed_parallel_import_is_finished_by_the_next_one(tmp_path, parallel):
    data = write(str(tmp_path / "d.jsonl"), [json.dumps(chat(i)).encode() for i in range(800)], final_newline=True)
    path = str(tmp_path / "p.ftcurate")
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    proc = subprocess.run([sys.executable, str(script), data, path, ROOT], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "FTCURATE_WORKERS": "2"})
    assert proc.returncode == 137, proc.stderr
    with Project.open(path) as p:
        (src,) = p.sources()
        assert not src["complete"] and 0 < src["records"] < 800
        rep = import_dataset(p, data)
        assert rep.outcome == "resumed" and rep.added == 800 - src["records"]
    with Project.open(str(tmp_path / "serial.ftcurate"), create=True) as p:
        import_dataset(p, data)
    a, b = stored(path), stored(str(tmp_path / "serial.ftcurate"))
    assert a[0] == b[0] and a[2] == b[2]


def test_small_files_and_other_containers_are_read_in_this_process(tmp_path, monkeypatch):
    monkeypatch.setenv("FTCURATE_WORKERS", "2")
    small = write(str(tmp_path / "s.jsonl"), [json.dumps(chat(i)).encode() for i in range(20)])
    assert bulk.workers_for(DatasetReader(small), None) == 1  # under MIN_BYTES
    monkeypatch.setattr(bulk, "MIN_BYTES", 0)
    assert bulk.workers_for(DatasetReader(small), None) == 2
    assert bulk.workers_for(DatasetReader(small), "some/tokenizer") == 1  # token counts by a real tokenizer
    array = tmp_path / "a.json"
    array.write_text(json.dumps([chat(i) for i in range(5)]))
    assert bulk.workers_for(DatasetReader(str(array)), None) == 1
    csv = tmp_path / "c.csv"
    csv.write_text("prompt,completion\nhi,hello\n")
    assert bulk.workers_for(DatasetReader(str(csv)), None) == 1
    monkeypatch.setenv("FTCURATE_WORKERS", "1")
    assert bulk.workers_for(DatasetReader(small), None) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_canonical_json_is_what_json_dumps_writes(value):
    want = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert canonical_json(value) == want


@pytest.mark.parametrize("value", ["\ud800", {"a": "x\udfff"}, {1: 2}, [1e16, 0.1, -0.0], math.inf,
                                   {"k": [[[[[[[[[[]]]]]]]]]]}, 2 ** 64, -(2 ** 63) - 1, (1, "a")])
def test_canonical_json_edge_values(value):
    assert canonical_json(value) == json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("container", ["jsonl", "json"])
def test_half_a_surrogate_pair_is_a_bad_record_not_a_failed_import(tmp_path, capsys, container):
    """A ``\\ud800`` escape with no partner decodes to text that cannot be stored as UTF-8: the
    record is listed as bad and the rest imported (it used to stop the whole import)."""
    from ftcurate.cli import main

    records = ['{"messages": [{"role": "user", "content": "a \\ud800 b"}, {"role": "assistant", "content": "x"}]}',
               '{"messages": [{"role": "user", "content": "\\ud83d\\ude00 ok"}, {"role": "assistant", "content": "y"}]}']
    data = tmp_path / f"d.{container}"
    data.write_text("\n".join(records) + "\n" if container == "jsonl" else "[\n" + ",\n".join(records) + "\n]\n")
    project = str(tmp_path / "p.ftcurate")
    assert main(["import", str(data), "--project", project, "--json"]) == 1
    imp = json.loads(capsys.readouterr().out)["imports"][0]
    assert imp["loaded"] == 1 and imp["rejected"] == 1 and imp["added"] == 1
    (err,) = imp["errors"]
    assert err["index"] == 0 and err["key"] == "invalid_json" and "\\ud800" in err["message"]
    with Project.open(project, readonly=True) as p:
        (rec,) = list(p.iter_records())
        assert rec.index == 1 and rec.record.messages[0].content == "\U0001F600 ok"
