"""Tests for the project store (ftcurate.core.project.store)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ftcurate.core.progress import Cancelled
from ftcurate.core.project.records import Message, Record, Source
from ftcurate.core.project.store import (
    SCHEMA_VERSION,
    STATUSES,
    Project,
    ProjectError,
    ProjectInUse,
    StoredRecord,
)

REPO = Path(__file__).resolve().parents[1]


def make_record(i: int, split: str = "train", line: int | None = None, **meta) -> Record:
    return Record(
        messages=[
            Message("system", "be brief"),
            Message("user", f"question {i}"),
            Message("assistant", f"answer {i}"),
        ],
        source=Source("data.jsonl", line if line is not None else i + 1, i),
        split=split,
        metadata=dict(meta),
    )


def new_project(tmp_path: Path, n: int = 10, reviewer: str | None = "alice") -> tuple[Project, int]:
    p = Project.create(tmp_path / "p.ftcurate", reviewer=reviewer)
    sid = p.add_source(tmp_path / "data.jsonl", "jsonl", total=n)
    assert p.add_records(sid, (make_record(i) for i in range(n))) == n
    return p, sid


def run_python(code: str, *args: str, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        **kw,
    )


# -- create / open / close ---------------------------------------------------------------


def test_create_open_close(tmp_path):
    path = tmp_path / "p.ftcurate"
    p = Project.create(path, reviewer="alice")
    assert p.path == str(path)
    assert p.schema_version == SCHEMA_VERSION
    assert p.reviewer == "alice"
    assert p.count() == 0
    assert p.status_counts() == {s: 0 for s in STATUSES}
    assert not p.can_undo() and not p.can_redo()
    assert p.undo() is None and p.redo() is None
    p.close()
    assert p.closed
    p.close()  # idempotent
    with pytest.raises(ProjectError, match="closed"):
        p.count()

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()

    with Project.open(path) as p2:
        assert p2.reviewer == "alice"
        p2.reviewer = "bob"
        p2.meta_set("thing", {"a": [1, 2]})
    with Project.open(path) as p3:
        assert p3.reviewer == "bob"
        assert p3.meta_get("thing") == {"a": [1, 2]}
        assert p3.meta_get("missing", 42) == 42


def test_create_refuses_existing_and_open_requires_existing(tmp_path):
    path = tmp_path / "p.ftcurate"
    Project.create(path).close()
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(path)
    with pytest.raises(ProjectError, match="does not exist"):
        Project.open(tmp_path / "nope.ftcurate")
    with Project.open(tmp_path / "new.ftcurate", create=True) as p:
        assert p.schema_version == SCHEMA_VERSION


def test_readonly_open(tmp_path):
    p, _ = new_project(tmp_path, 3)
    p.approve([1])
    # a read-only open works beside the writer (no lock taken)
    with Project.open(p.path, readonly=True) as ro:
        assert ro.count() == 3
        assert ro.get(1).status == "approved"
        with pytest.raises(ProjectError, match="read-only"):
            ro.approve([2])
    p.close()
    with Project.open(p.path, readonly=True) as ro:  # and with no writer at all
        assert ro.get(1).status == "approved"
        assert ro.schema_version == SCHEMA_VERSION
    with pytest.raises(ProjectError, match="does not exist"):
        Project.open(tmp_path / "missing.ftcurate", readonly=True)


# -- records -------------------------------------------------------------------------------


def test_records_round_trip(tmp_path):
    p = Project.create(tmp_path / "p.ftcurate")
    sid = p.add_source("/data/chat.jsonl", "jsonl", total=3, sha256="abc")
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    recs = [
        Record(
            [Message("user", "hi"), Message("assistant", None, tool_calls=[{"id": "c1", "type": "function"}])],
            tools=tools,
            source=Source("/data/chat.jsonl", 3, 0),
            split="train",
            metadata={"lang": "en", "n": 1},
        ),
        Record([Message("user", "héllo ✓"), Message("assistant", "ok", weight=0)], source=Source("x", 5, 1), split="validation"),
        Record([Message("user", "q"), Message("assistant", "a")], source=Source("x", None, 2), split="test"),
    ]
    assert p.add_records(sid, iter(recs)) == 3
    stored = list(p.iter_records())
    assert [s.id for s in stored] == p.ids() == [1, 2, 3]
    for s, r in zip(stored, recs):
        assert isinstance(s, StoredRecord)
        assert s.source_id == sid
        assert s.original.content_json() == r.content_json()
        assert s.original.content_hash == r.content_hash
        assert s.original.metadata == r.metadata
        assert s.original.split == r.split == s.split
        assert s.index == r.source.index and s.line == r.source.line
        assert s.original.source.file == "/data/chat.jsonl"
        assert s.original.source.index == r.source.index and s.original.source.line == r.source.line
        assert s.status == "unreviewed" and s.edited is None and s.labels == [] and s.note == ""
        assert s.record is s.original
    assert stored[0].original.tools == tools
    assert p.get(2).original.messages[0].content == "héllo ✓"
    assert p.count(split="validation") == 1
    assert p.ids(split="test") == [3]
    assert p.id_for_index(sid, 1) == 2
    with pytest.raises(KeyError, match="index 9"):
        p.id_for_index(sid, 9)
    with pytest.raises(KeyError):
        p.get(99)
    assert [s.id for s in p.get_many([3, 1])] == [3, 1]
    with pytest.raises(KeyError):
        p.get_many([1, 99])

    src = p.sources()
    assert len(src) == 1
    assert src[0]["path"] == "/data/chat.jsonl" and src[0]["format"] == "jsonl"
    assert src[0]["sha256"] == "abc" and src[0]["total"] == 3 and src[0]["records"] == 3
    assert src[0]["role"] == "train"
    p.close()


def test_test_source_records_get_test_split_and_import_errors(tmp_path):
    p = Project.create(tmp_path / "p.ftcurate")
    errors = [{"line": 4, "index": 3, "key": "messages", "message": "missing messages"}]
    sid = p.add_source("held.jsonl", "jsonl", role="test", errors=errors, total=4)
    p.add_records(sid, (make_record(i, split="train") for i in range(3)))
    assert p.count(split="test", source_id=sid) == 3
    assert p.import_errors(sid) == [{"source_id": sid, **errors[0]}]
    assert p.import_errors() == p.import_errors(sid)
    assert p.sources()[0]["errors"] == 1
    with pytest.raises(ValueError):
        p.add_source("x", "jsonl", role="bogus")
    with pytest.raises(KeyError):
        p.add_records(999, [make_record(0)])
    p.close()


def test_streaming_add_50k(tmp_path):
    p = Project.create(tmp_path / "p.ftcurate")
    sid = p.add_source("big.jsonl", "jsonl", total=50_000)
    consumed = 0
    calls = []

    def gen():
        nonlocal consumed
        for i in range(50_000):
            consumed += 1
            yield Record([Message("user", str(i))], source=Source("big.jsonl", i + 1, i))

    def progress(done, total, msg):
        calls.append((done, total, consumed))

    assert p.add_records(sid, gen(), progress=progress, batch=5000) == 50_000
    assert p.count() == 50_000 and p.status_counts()["unreviewed"] == 50_000
    # streamed: progress came while the generator was only partly consumed
    assert calls[0][0] == 5000 and calls[0][2] <= 5001
    assert calls[-1][:2] == (50_000, 50_000)
    assert p.get(p.id_for_index(sid, 49_999)).original.messages[0].content == "49999"
    assert sum(1 for _ in p.iter_records(batch=7000)) == 50_000
    p.close()


def test_add_records_cancel_rolls_back_this_call(tmp_path):
    p = Project.create(tmp_path / "p.ftcurate")
    sid = p.add_source("a.jsonl", "jsonl")
    p.add_records(sid, (make_record(i) for i in range(5)))
    sid2 = p.add_source("b.jsonl", "jsonl")
    state = {"n": 0}

    def cancel():
        state["n"] += 1
        return state["n"] > 2

    with pytest.raises(Cancelled):
        p.add_records(sid2, (make_record(i) for i in range(100)), cancel=cancel, batch=10)
    assert p.count() == 5 and p.count(source_id=sid2) == 0
    assert p.status_counts()["unreviewed"] == 5
    # duplicate indices are reported clearly and leave nothing behind
    with pytest.raises(ProjectError, match="record index"):
        p.add_records(sid2, [make_record(1), make_record(1)])
    assert p.count(source_id=sid2) == 0
    p.close()


# -- decisions -------------------------------------------------------------------------------


def test_decisions(tmp_path):
    p, sid = new_project(tmp_path, 6)
    g1 = p.approve([1, 2])
    g2 = p.reject(3, reviewer="carol")
    assert g2 > g1 > 0
    assert p.get(1).status == "approved" and p.get(1).reviewer == "alice"
    assert p.get(3).status == "rejected" and p.get(3).reviewer == "carol"
    assert p.get(3).updated_at is not None

    edited = make_record(3)  # id 4 is index 3
    edited.messages[2].content = "a better answer"
    p.edit(4, edited)
    s4 = p.get(4)
    assert s4.status == "edited"
    assert s4.edited is not None and s4.edited.messages[2].content == "a better answer"
    assert s4.original.messages[2].content == "answer 3"  # original kept beside the edit
    assert s4.record is s4.edited
    assert s4.edited.source.index == 3 and s4.edited.split == "train"

    p.approve(4)  # approving keeps the edit
    assert p.get(4).status == "approved" and p.get(4).record.messages[2].content == "a better answer"
    p.reset([4])  # back to unreviewed, edit kept
    assert p.get(4).status == "unreviewed" and p.get(4).edited is not None
    p.restore_original(4)
    assert p.get(4).status == "unreviewed" and p.get(4).edited is None

    p.set_labels([1, 2], ["pii", " pii ", "tone", ""])
    assert p.get(1).labels == ["pii", "tone"]
    p.add_label([2, 5], "dup")
    assert p.get(2).labels == ["pii", "tone", "dup"] and p.get(5).labels == ["dup"]
    p.remove_label([2], "pii")
    assert p.get(2).labels == ["tone", "dup"]
    p.set_note(1, "check the numbers")
    assert p.get(1).note == "check the numbers"
    p.set_split([5, 6], "validation")
    assert p.get(5).split == "validation" and p.get(5).original.split == "validation"
    assert p.ids(split="validation") == [5, 6]
    with pytest.raises(ValueError):
        p.set_split([5], "holdout")

    assert p.status_counts() == {"unreviewed": 3, "approved": 2, "rejected": 1, "edited": 0}
    assert p.ids(status="approved") == [1, 2]
    assert [s.id for s in p.iter_records(status="rejected")] == [3]
    assert p.count(status="unreviewed", split="validation") == 2
    assert p.status_counts(split="validation")["unreviewed"] == 2
    with pytest.raises(KeyError):
        p.approve([1, 999])
    assert p.get(1).status == "approved"  # nothing of the failed call applied
    assert p.approve([]) == 0
    p.close()


def test_undo_redo(tmp_path):
    p, _ = new_project(tmp_path, 5)
    p.approve([1, 2, 3])  # one bulk group
    p.reject([4])
    p.set_labels([1], ["x"])
    assert p.undo() == [1]
    assert p.get(1).labels == []
    assert p.undo() == [4]
    assert p.get(4).status == "unreviewed"
    assert p.can_undo() and p.can_redo()
    assert p.peek_undo()["action"] == "approve" and p.peek_undo()["count"] == 3
    assert p.undo() == [1, 2, 3]  # the bulk group is one step
    assert p.status_counts()["approved"] == 0
    assert not p.can_undo() and p.undo() is None

    assert p.redo() == [1, 2, 3]
    assert p.ids(status="approved") == [1, 2, 3]
    assert p.redo() == [4]
    assert p.get(4).status == "rejected"
    assert p.peek_redo()["action"] == "set_labels"

    # a new decision after undo drops the redo stack
    p.approve([5])
    assert not p.can_redo() and p.redo() is None
    assert p.get(1).labels == []
    assert p.undo() == [5]
    assert p.get(5).status == "unreviewed"
    assert p.undo() == [4]
    assert p.undo() == [1, 2, 3]
    assert p.status_counts()["unreviewed"] == 5
    p.close()


def test_undo_restores_edit_note_split_exactly(tmp_path):
    p, _ = new_project(tmp_path, 3)
    e = make_record(1)
    e.messages[1].content = "edited question"
    p.edit(1, e)
    p.set_note(1, "n1")
    p.set_split([1], "test")
    p.restore_original(1)
    p.undo()
    s = p.get(1)
    assert s.edited.messages[1].content == "edited question" and s.status == "edited"
    p.undo()
    assert p.get(1).split == "train" and p.get(1).note == "n1"
    p.undo()
    assert p.get(1).note == ""
    p.undo()
    assert p.get(1).edited is None and p.get(1).status == "unreviewed"
    p.redo()
    p.redo()
    assert p.get(1).note == "n1" and p.get(1).status == "edited"
    p.close()


def test_bulk_decision_100k_is_one_undo_step(tmp_path):
    p = Project.create(tmp_path / "p.ftcurate")
    sid = p.add_source("big.jsonl", "jsonl")
    p.add_records(sid, (Record([Message("user", str(i))], source=Source("big", i + 1, i)) for i in range(100_000)))
    ids = p.ids()
    p.approve(ids)
    assert p.count(status="approved") == 100_000
    assert p.peek_undo()["count"] == 100_000
    assert len(p.undo()) == 100_000
    assert p.count(status="approved") == 0
    assert not p.can_undo()
    p.close()


def test_history(tmp_path):
    p, _ = new_project(tmp_path, 3)
    p.approve([1, 2])
    p.reject([1], reviewer="bob")
    p.undo()
    h = p.history()
    assert [d["action"] for d in h] == ["reject", "approve", "approve"]
    assert set(h[0]) >= {"id", "group", "record_id", "action", "before", "after", "reviewer", "ts", "undone"}
    assert h[0]["undone"] is True and h[1]["undone"] is False
    assert h[0]["before"]["status"] == "approved" and h[0]["after"]["status"] == "rejected"
    assert h[0]["reviewer"] == "bob" and h[1]["reviewer"] == "alice"
    assert h[1]["group"] == h[2]["group"]
    assert isinstance(h[0]["ts"], float)
    assert [d["action"] for d in p.history(record_id=1)] == ["reject", "approve"]
    assert len(p.history(limit=1)) == 1
    p.approve([3])  # drops the undone reject from the redo stack
    assert p.history(record_id=1)[0]["dropped"] is True
    p.close()


def test_persistence_across_reopen(tmp_path):
    p, sid = new_project(tmp_path, 4)
    e = make_record(2)
    e.messages[2].content = "fixed"
    p.approve([1])
    p.edit(2, e)
    p.set_labels([3], ["a"])
    p.set_note(3, "note")
    p.reject([4])
    p.undo()
    path = p.path
    p.close()
    with Project.open(path) as p:
        assert p.get(1).status == "approved"
        assert p.get(2).record.messages[2].content == "fixed" and p.get(2).status == "edited"
        assert p.get(3).labels == ["a"] and p.get(3).note == "note"
        assert p.get(4).status == "unreviewed"
        assert p.can_redo()
        assert p.redo() == [4]
        assert p.get(4).status == "rejected"
        assert p.sources()[0]["id"] == sid
        assert len(p.history()) == 5


# -- locking -----------------------------------------------------------------------------


def test_second_open_in_same_process_is_refused(tmp_path):
    p, _ = new_project(tmp_path, 1)
    with pytest.raises(ProjectInUse, match="in use") as info:
        Project.open(p.path)
    assert info.value.pid == os.getpid()
    assert str(os.getpid()) in str(info.value)
    p.close()
    # released on close
    Project.open(p.path).close()


def test_second_open_from_another_process_is_refused(tmp_path):
    p, _ = new_project(tmp_path, 1)
    code = """
        import sys
        from ftcurate.core.project.store import Project, ProjectInUse
        try:
            Project.open(sys.argv[1])
        except ProjectInUse as e:
            print("INUSE", e.pid, e)
        else:
            print("OPENED")
    """
    out = run_python(code, p.path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("INUSE")
    assert f"pid {os.getpid()}" in out.stdout and "in use by another ftcurate process" in out.stdout
    p.close()
    out = run_python(code, p.path)
    assert out.stdout.strip() == "OPENED", out.stderr


def test_lock_released_when_holder_exits(tmp_path):
    p, _ = new_project(tmp_path, 1)
    path = p.path
    p.close()
    out = run_python(
        """
        import sys
        from ftcurate.core.project.store import Project
        p = Project.open(sys.argv[1])
        p.approve([1])
        print("ok")
        """,
        path,
    )
    assert out.stdout.strip() == "ok", out.stderr
    with Project.open(path) as p:
        assert p.get(1).status == "approved"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_loses_nothing_saved(tmp_path):
    p, _ = new_project(tmp_path, 2000)
    path = p.path
    p.close()
    code = """
        import sys
        from ftcurate.core.project.store import Project
        p = Project.open(sys.argv[1])
        print("ready", flush=True)
        for rid in p.ids():
            p.approve([rid])
            print(rid, flush=True)
        print("done", flush=True)
    """
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    printed: list[int] = []
    try:
        assert proc.stdout.readline().strip() == "ready"
        while len(printed) < 25:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if line.strip() == "done":
                break
            printed.append(int(line))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert printed
    with Project.open(path) as p:  # not locked any more, opens fine
        approved = set(p.ids(status="approved"))
        assert set(printed) <= approved
        assert p.count() == 2000
        assert p._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- bad files -------------------------------------------------------------------------------


def test_newer_schema_is_rejected(tmp_path):
    path = tmp_path / "p.ftcurate"
    Project.create(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(ProjectError, match="newer ftcurate"):
        Project.open(path)
    with pytest.raises(ProjectError, match="newer ftcurate"):
        Project.open(path, readonly=True)
    # the refusal left no lock behind
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    raw.commit()
    raw.close()
    Project.open(path).close()


def test_non_project_files_are_rejected(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database\n" * 10)
    with pytest.raises(ProjectError, match="not an ftcurate project"):
        Project.open(text)
    with pytest.raises(ProjectError, match="not an ftcurate project"):
        Project.open(text, create=True)
    assert text.read_text().startswith("hello")
    assert not Path(str(text) + ".lock").exists()

    other = tmp_path / "other.sqlite"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE t (x)")
    raw.commit()
    raw.close()
    with pytest.raises(ProjectError, match="not an ftcurate project"):
        Project.open(other)
    with pytest.raises(ProjectError, match="not an ftcurate project"):
        Project.open(other, readonly=True)
    raw = sqlite3.connect(other)  # untouched: still its own journal mode and tables
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert raw.execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]
    raw.close()
    assert not Path(str(other) + ".lock").exists()

    empty = tmp_path / "empty.ftcurate"
    empty.write_bytes(b"")
    with pytest.raises(ProjectError, match="not an ftcurate project"):
        Project.open(empty)
    with pytest.raises(ProjectError, match="directory"):
        Project.open(tmp_path)


# -- scan cache and results ------------------------------------------------------------------


def test_scan_cache(tmp_path):
    p, _ = new_project(tmp_path, 1)
    hashes = [f"h{i}" for i in range(1500)]
    p.cache_put_many("pii", "s1", {h: {"hits": [i]} for i, h in enumerate(hashes)})
    got = p.cache_get_many("pii", "s1", hashes + ["unknown"])
    assert len(got) == 1500 and got["h7"] == {"hits": [7]}
    assert p.cache_get_many("pii", "s2", hashes) == {}
    assert p.cache_get_many("dups", "s1", hashes) == {}
    p.cache_put_many("pii", "s1", {"h7": None, "h8": [1, "x"]})
    got = p.cache_get_many("pii", "s1", ["h7", "h8"])
    assert got == {"h7": None, "h8": [1, "x"]}
    path = p.path
    p.close()
    with Project.open(path) as p:
        assert p.cache_get_many("pii", "s1", ["h9"]) == {"h9": {"hits": [9]}}


def test_save_and_load_scan(tmp_path):
    p, _ = new_project(tmp_path, 1)
    assert p.load_scan("dups") is None
    p.save_scan("dups", {"threshold": 0.9}, {"clusters": [[1, 2]]})
    p.save_scan("dups", {"threshold": 0.8}, {"clusters": [[1, 2, 3]]})
    assert p.load_scan("dups") == ({"threshold": 0.8}, {"clusters": [[1, 2, 3]]})
    path = p.path
    p.close()
    with Project.open(path) as p:
        assert p.load_scan("dups") == ({"threshold": 0.8}, {"clusters": [[1, 2, 3]]})


def test_store_does_not_import_qt():
    out = run_python(
        """
        import sys
        import ftcurate.core.project.store
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6")))
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_search_ids_finds_text_in_original_and_edit(tmp_path):
    p = Project.create(tmp_path / "s.ftcurate")
    sid = p.add_source("s.jsonl", "jsonl")
    texts = ['say "hi"\nthen 100% done', "plain_text here", "nothing"]
    p.add_records(sid, (Record([Message("user", t), Message("assistant", "ok")], source=Source("s", i + 1, i))
                        for i, t in enumerate(texts)))
    assert p.search_ids('"hi"\nthen') == [1]
    assert p.search_ids("100%") == [1]
    assert p.search_ids("plain_") == [2]
    assert p.search_ids("PLAIN") == [2]
    p.edit(3, Record([Message("user", "edited words"), Message("assistant", "ok")]))
    assert p.search_ids("edited words") == [3]
    assert p.search_ids("nothing", status="approved") == []
    p.close()


def test_set_statuses_is_one_undo_step(tmp_path):
    p, _ = new_project(tmp_path, 4)
    ids = p.ids()
    p.set_statuses({ids[0]: "approved", ids[1]: "rejected"}, action="keep_left")
    assert p.get(ids[0]).status == "approved" and p.get(ids[1]).status == "rejected"
    assert p.peek_undo()["action"] == "keep_left" and p.peek_undo()["count"] == 2
    assert sorted(p.undo()) == sorted(ids[:2])
    assert p.get(ids[0]).status == "unreviewed" and p.get(ids[1]).status == "unreviewed"
    with pytest.raises(ValueError):
        p.set_statuses({ids[0]: "bogus"})
