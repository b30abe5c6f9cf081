"""Project store faults of issue 12: partial imports (4), hostile project files (9), full disk
and read-only paths (12), corrupt rows (13), waiting for the lock and exporting beside the app
(21), and the cap on stored import-error details (20).

The full-disk and read-only cases run for real where the test can make a private mount
namespace (a small tmpfs, a read-only bind mount: ``unshare -m``); a full disk is also
simulated everywhere with SQLite's own page limit (``PRAGMA max_page_count``), which makes
SQLite fail with the same "database or disk is full" error through the same code paths.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

from ftcurate.cli import main
from ftcurate.core.project import store as store_mod
from ftcurate.core.project.store import DamagedRecord, Project, ProjectError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = [sys.executable, "-m", "ftcurate.cli"]


def write_chat(path, n, bad=()):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            if i in bad:
                f.write("{not json\n")
                continue
            f.write(json.dumps({"messages": [{"role": "user", "content": f"question {i}?"},
                                             {"role": "assistant", "content": f"answer {i}."}]}) + "\n")


def run_cli(*args, **kw):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, cwd=ROOT, timeout=120, **kw)


def raw(path):
    """A plain sqlite3 connection, as an attacker or a broken disk would use."""
    return sqlite3.connect(path, isolation_level=None)


def snapshot(path):
    """What a project holds, to check that a failed command changed nothing."""
    with raw(path) as c:
        return {t: c.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("sources", "records", "reviews", "groups", "decisions", "import_errors")}


@pytest.fixture
def imported(tmp_path):
    data = str(tmp_path / "d.jsonl")
    write_chat(data, 20, bad={5})
    path = str(tmp_path / "p.ftcurate")
    assert main(["import", data, "--project", path]) == 1  # one bad line: listed, the rest imported
    return path, data


# -- 4: a killed import ----------------------------------------------------------------------

KILLED_IMPORT = """
import os, sys
from ftcurate.core.project.store import Project
from ftcurate.core.io.ingest import import_dataset

def progress(done, total, message):
    if done >= int(sys.argv[3]):
        os._exit(137)  # dies like kill -9: no finally, no rollback, no close

p = Project.open(sys.argv[2], create=True)
import_dataset(p, sys.argv[1], progress=progress)
"""


def killed_import(data, path, after):
    proc = subprocess.run([sys.executable, "-c", KILLED_IMPORT, data, path, str(after)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, proc.stderr


def test_killed_import_is_marked_incomplete_then_resumed_without_duplicates(tmp_path, capsys):
    data = str(tmp_path / "d.jsonl")
    write_chat(data, 12000, bad={3, 11000})
    path = str(tmp_path / "p.ftcurate")
    killed_import(data, path, after=7000)
    with Project.open(path, readonly=True) as p:
        (src,) = p.sources()
        assert not src["complete"] and 0 < src["records"] < 11998
        partial = src["records"]
    # stats says so, and exits 1 (the data has a problem), not 0
    assert main(["stats", path, "--json"]) == 1
    stats = json.loads(capsys.readouterr().out)
    assert stats["sources"][0]["complete"] is False and stats["incomplete"] == [src["id"]]
    assert main(["stats", path]) == 1
    out = capsys.readouterr().out
    assert "incomplete" in out and "import it again" in out
    # decide does not address the partial source by default
    assert main(["decide", path, "--approve", "0"]) == 2
    err = capsys.readouterr().err
    assert "incomplete" in err and "Traceback" not in err
    # importing the same file again finishes it: no duplicates, one source (exit 1: two bad lines)
    assert main(["import", data, "--project", path, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    imp = out["imports"][0]
    assert imp["outcome"] == "resumed" and imp["added"] == 11998 - partial
    assert imp["records"] == 12000 and imp["loaded"] == 11998 and imp["rejected"] == 2
    with Project.open(path, readonly=True) as p:
        (src,) = p.sources()
        assert src["complete"] and src["records"] == 11998 and src["total"] == 12000 and src["errors"] == 2
        assert p.count() == 11998
        dup = p._db.execute("SELECT idx FROM records GROUP BY source_id, idx HAVING COUNT(*) > 1").fetchall()
        assert dup == []
    # and once more: already in the project, nothing added
    assert main(["import", data, "--project", path]) == 1  # the file still has its two bad lines
    assert "already in the project" in capsys.readouterr().out
    with Project.open(path, readonly=True) as p:
        assert p.count() == 11998 and len(p.sources()) == 1
    assert main(["decide", path, "--approve", "0"]) == 0


def test_decide_explicit_source_may_address_a_partial_import(tmp_path, capsys):
    data = str(tmp_path / "d.jsonl")
    write_chat(data, 12000)
    path = str(tmp_path / "p.ftcurate")
    killed_import(data, path, after=7000)
    assert main(["decide", path, "--source", "1", "--approve", "0"]) == 0
    assert "incomplete" in capsys.readouterr().err  # said, not hidden
    # the decision survives the re-import that completes the source
    assert main(["import", data, "--project", path]) == 0
    with Project.open(path, readonly=True) as p:
        assert p.get(p.id_for_index(1, 0)).status == "approved" and p.count() == 12000


def test_an_old_partial_source_is_marked_incomplete_on_upgrade(tmp_path):
    """Schema-1 projects killed mid-import (total 0, some records) are found on upgrade."""
    path = str(tmp_path / "old.ftcurate")
    with raw(path) as c:
        c.execute("BEGIN")
        store_mod._MIGRATIONS[0](c)
        c.execute("PRAGMA user_version = 1")
        c.execute(f"PRAGMA application_id = {store_mod.APPLICATION_ID}")
        c.execute("INSERT INTO sources(path, format, role, sha256, total, imported_at) "
                  "VALUES ('a.jsonl', 'openai-chat', 'train', 'x', 0, 0)")
        c.execute("INSERT INTO sources(path, format, role, sha256, total, imported_at) "
                  "VALUES ('b.jsonl', 'openai-chat', 'train', 'y', 3, 0)")
        c.execute("COMMIT")
    with Project.open(path) as p:
        assert [s["complete"] for s in p.sources()] == [False, True]


@pytest.mark.parametrize("after", [0, 2])
def test_a_cancelled_import_leaves_nothing_behind(imported, tmp_path, after):
    from ftcurate.core.io.ingest import import_dataset
    from ftcurate.core.progress import Cancelled

    path, _ = imported
    before = snapshot(path)
    other = str(tmp_path / "other.jsonl")
    write_chat(other, 12000)
    calls = []

    def cancel():  # at once, or once a batch of records has been committed
        calls.append(1)
        return len(calls) > after

    with Project.open(path) as p:
        with pytest.raises(Cancelled):
            import_dataset(p, other, cancel=cancel)
    assert snapshot(path) == before


# -- 9: a hostile project file ---------------------------------------------------------------


HOSTILE = {
    "trigger": "CREATE TRIGGER wipe AFTER UPDATE ON reviews BEGIN DELETE FROM decisions; END",
    "view": "CREATE VIEW v AS SELECT * FROM records",
    "table": "CREATE TABLE extra (x)",
    "column": "ALTER TABLE reviews ADD COLUMN evil TEXT",
    "index": "CREATE INDEX odd ON records(content)",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_project_with_foreign_schema_objects_is_refused(imported, capsys, kind):
    path, _ = imported
    assert main(["decide", path, "--approve", "0"]) == 0
    with raw(path) as c:
        c.execute(HOSTILE[kind])
    before = snapshot(path)
    capsys.readouterr()
    for argv in (["decide", path, "--approve", "1"], ["stats", path], ["export", path, "-o", path + ".out.jsonl"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "not created by ftcurate" in err and "Traceback" not in err, err
    assert snapshot(path) == before
    with raw(path) as c:
        assert c.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1
    with pytest.raises(ProjectError, match="not created by ftcurate"):
        Project.open(path, readonly=True)


def test_trigger_message_names_it(imported, capsys):
    path, _ = imported
    with raw(path) as c:
        c.execute(HOSTILE["trigger"])
    assert main(["decide", path, "--approve", "1"]) == 2
    assert "trigger 'wipe'" in capsys.readouterr().err


def test_connections_do_not_trust_the_schema(imported):
    path, _ = imported
    with Project.open(path) as p:
        assert p._db.execute("PRAGMA trusted_schema").fetchone()[0] == 0
    with Project.open(path, readonly=True) as p:
        assert p._db.execute("PRAGMA trusted_schema").fetchone()[0] == 0


def test_expected_schema_follows_the_migrations():
    """The reference schema is built by running the migrations: a new table added by a new
    migration is expected without touching the check."""
    ref = store_mod.expected_schema(store_mod.SCHEMA_VERSION)
    assert ("table", "decisions") in ref and ("index", "decisions_grp") in ref
    assert not [k for k in ref if k[0] in ("trigger", "view")]


# -- 12: full disk -------------------------------------------------------------------------


@pytest.fixture
def disk_fills_up(monkeypatch):
    """Every project connection opened from now on may grow by only a few pages: SQLite then
    fails with SQLITE_FULL, "database or disk is full", like on a full disk."""
    real = store_mod._connect

    def connect(target, uri=False):
        conn = real(target, uri=uri)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        # a new project gets room for its schema (and a few records), an existing one for a few pages
        conn.execute(f"PRAGMA max_page_count = {pages + 2 if pages else 64}")
        return conn

    monkeypatch.setattr(store_mod, "_connect", connect)


def test_full_disk_during_import_says_so_and_changes_nothing(imported, tmp_path, capsys, disk_fills_up):
    path, _ = imported
    before = snapshot(path)
    big = str(tmp_path / "big.jsonl")
    write_chat(big, 3000)
    capsys.readouterr()
    assert main(["import", big, "--project", path]) == 2
    err = capsys.readouterr().err
    assert "disk is full" in err and path in err and "Traceback" not in err
    assert snapshot(path) == before  # no empty or partial source left


def test_full_disk_on_a_new_project_leaves_no_file(tmp_path, capsys, disk_fills_up):
    big = str(tmp_path / "big.jsonl")
    write_chat(big, 3000)
    path = str(tmp_path / "new.ftcurate")
    assert main(["import", big, "--project", path]) == 2
    err = capsys.readouterr().err
    assert "disk is full" in err and "Traceback" not in err
    assert not [f for f in os.listdir(tmp_path) if f.startswith("new.ftcurate")]


def test_full_disk_during_decide_says_so(tmp_path, capsys, monkeypatch):
    data = str(tmp_path / "d.jsonl")
    write_chat(data, 300)
    path = str(tmp_path / "p.ftcurate")
    assert main(["import", data, "--project", path]) == 0
    real = store_mod._connect

    def connect(target, uri=False):  # not one page more than the file has now
        conn = real(target, uri=uri)
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
        return conn

    monkeypatch.setattr(store_mod, "_connect", connect)
    capsys.readouterr()
    assert main(["decide", path, "--reject", *map(str, range(300))]) == 2
    out, err = capsys.readouterr()
    assert "disk is full" in err and path in err and "Traceback" not in err
    assert "not an ftcurate project" not in err
    printed = [int(line.split()[1]) for line in out.splitlines()]
    monkeypatch.undo()
    with Project.open(path, readonly=True) as p:  # what was printed is saved, nothing else
        rejected = sorted(p.get(i).index for i in p.ids(status="rejected"))
    assert rejected == printed and len(printed) < 300


# -- 12: full disk and read-only paths for real (private mount namespace) -------------------


@functools.lru_cache(maxsize=1)
def _namespace_prefix():
    """``unshare`` arguments that give a private mount namespace where mounting works."""
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return None
    probe = tempfile.mkdtemp()
    try:
        for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
            try:
                ok = subprocess.run(prefix + ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                                    capture_output=True, timeout=20).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
            if ok:
                return prefix
        return None
    finally:
        os.rmdir(probe)


JAIL = """
import json, os, subprocess, sys
spec = json.loads(sys.argv[1])
for cmd in spec["setup"]:
    subprocess.run(cmd, check=True, capture_output=True)
out = []
for argv in spec["steps"]:
    p = subprocess.run(argv, capture_output=True, text=True, cwd=spec["cwd"])
    out.append({"rc": p.returncode, "out": p.stdout, "err": p.stderr})
print(json.dumps(out))
"""


def jailed(setup, steps):
    """Run ``setup`` shell commands (mounts) then the CLI ``steps`` in a private mount namespace."""
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare -m / mount not permitted)")
    spec = {"setup": setup, "steps": [CLI + [str(a) for a in s] for s in steps], "cwd": ROOT}
    proc = subprocess.run(prefix + [sys.executable, "-c", JAIL, json.dumps(spec)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


FULL = """
import json, os, subprocess, sys
mnt, small, big, root = sys.argv[1:5]
p, clean = os.path.join(mnt, "p.ftcurate"), os.path.join(mnt, "clean.ftcurate")
cli = [sys.executable, "-m", "ftcurate.cli"]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], check=True)

def run(*a):
    r = subprocess.run(cli + list(a), capture_output=True, text=True, cwd=root)
    return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}

def sources(path, immutable=False):
    import sqlite3
    c = sqlite3.connect("file:" + path + "?mode=ro" + ("&immutable=1" if immutable else ""), uri=True)
    try:
        return c.execute("SELECT id, state FROM sources").fetchall(), c.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    finally:
        c.close()

out = {"import": run("import", small, "--project", p), "clean": run("import", small, "--project", clean),
       "decide0": run("decide", p, "--approve", "0")}
out["big"] = run("import", big, "--project", p)  # fills the disk part-way through
out["after_big"] = sources(p)
out["new"] = run("import", big, "--project", os.path.join(mnt, "new.ftcurate"))
out["files"] = sorted(os.listdir(mnt))
subprocess.run(["dd", "if=/dev/zero", "of=" + os.path.join(mnt, "fill"), "bs=4k"], capture_output=True)
out["decide"] = run("decide", clean, "--approve", "1")  # no journal to reuse: nothing can be written
out["decide_p"] = run("decide", p, "--approve", "1")  # may fit in the journal the big import left
out["stats"] = run("stats", clean)
out["export"] = run("export", clean, "-o", os.path.join(mnt, "out.jsonl"))
out["after"] = sources(clean, immutable=True)  # the disk is full: no -shm
print(json.dumps(out))
"""


def test_real_full_disk(tmp_path):
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare -m / mount not permitted)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    write_chat(str(small), 1000)
    write_chat(str(big), 20000)
    proc = subprocess.run(prefix + [sys.executable, "-c", FULL, str(mnt), str(small), str(big), ROOT],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["import"]["rc"] == 0 and res["clean"]["rc"] == 0 and res["decide0"]["rc"] == 0, res
    for step in ("big", "new", "decide"):
        r = res[step]
        assert r["rc"] == 2 and "disk is full" in r["err"] and "Traceback" not in r["err"], (step, r)
        assert "not an ftcurate project" not in r["err"]
    r = res["decide_p"]
    assert r["rc"] == 0 and r["out"] == "approved 1\n" or r["rc"] == 2 and "disk is full" in r["err"], r
    # the failed import left the project as it was, or (when even that could not be written)
    # kept what it stored marked incomplete and said so
    (srcs, n) = res["after_big"]
    assert srcs == [[1, "complete"]] and n == 1000 or "incomplete import" in res["big"]["err"], res
    assert "new.ftcurate" not in res["files"]
    assert res["stats"]["rc"] == 0 and "1000 records" in res["stats"]["out"], res["stats"]  # reading needs no space
    assert res["export"]["rc"] != 0 and "Traceback" not in res["export"]["err"]
    assert res["after"] == [[[1, "complete"]], 1000]


def _read_only_setup(*paths):
    """Commands that make ``paths`` read-only for everyone, root included."""
    return [["mount", "--bind", "-o", "ro", str(p), str(p)] for p in paths]


@pytest.fixture
def ro_project(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    data = folder / "d.jsonl"
    write_chat(str(data), 30)
    path = folder / "p.ftcurate"
    assert main(["import", str(data), "--project", str(path)]) == 0
    os.unlink(str(path) + ".lock")
    return folder, path, data


def _as_read_only(setup_paths, steps):
    """Run CLI steps with ``setup_paths`` read-only: chmod when that stops this user, else a
    read-only bind mount in a private namespace (root ignores file modes)."""
    if os.name == "posix" and os.geteuid() != 0:
        modes = {p: os.stat(p).st_mode for p in setup_paths}
        for p in setup_paths:
            os.chmod(p, 0o555 if os.path.isdir(p) else 0o444)
        try:
            return [dict(zip(("rc", "out", "err"), (r.returncode, r.stdout, r.stderr)))
                    for r in (run_cli(*s) for s in steps)]
        finally:
            for p, m in modes.items():
                os.chmod(p, m)
    return jailed(_read_only_setup(*setup_paths), steps)


def test_read_only_project_file(ro_project):
    folder, path, data = ro_project
    before = snapshot(str(path))
    res = _as_read_only([path], [["decide", path, "--approve", "0"], ["stats", path],
                                 ["import", data, "--project", path], ["export", path, "-o", folder / "o.jsonl"]])
    decide, stats, imp, export = res
    assert decide["rc"] == 2 and "read-only" in decide["err"] and str(path) in decide["err"], decide
    assert "not an ftcurate project" not in decide["err"] and "Traceback" not in decide["err"]
    assert stats["rc"] == 0, stats
    assert imp["rc"] == 2 and "read-only" in imp["err"], imp
    assert export["rc"] == 0, export  # export only reads the project
    assert snapshot(str(path)) == before


def test_read_only_project_folder(ro_project, tmp_path):
    folder, path, data = ro_project
    before = snapshot(str(path))
    res = _as_read_only([folder], [["decide", path, "--approve", "0"], ["stats", path],
                                   ["export", path, "-o", tmp_path / "o.jsonl"],
                                   ["import", data, "--project", folder / "new.ftcurate"]])
    decide, stats, export, new = res
    assert decide["rc"] == 2 and "read-only" in decide["err"] and str(folder) in decide["err"], decide
    assert ".lock" not in decide["err"] and "Traceback" not in decide["err"]
    assert stats["rc"] == 0 and "30 records" in stats["out"], stats
    assert export["rc"] == 0, export
    assert new["rc"] == 2 and "read-only" in new["err"] and ".lock" not in new["err"], new
    assert snapshot(str(path)) == before
    assert not os.path.exists(folder / "new.ftcurate")


def test_read_only_check_in_process(ro_project, monkeypatch):
    """Where neither chmod nor a mount namespace can make a file read-only, the upfront check
    still names the file: os.access is what the store asks."""
    folder, path, _ = ro_project
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if (os.fspath(p) == str(path) and mode == os.W_OK)
                        else real(p, mode, **k))
    with pytest.raises(ProjectError, match="read-only") as info:
        Project.open(path)
    assert info.value.key == "read_only"
    with Project.open(path, readonly=True) as p:
        assert p.count() == 30


# -- 13: corrupt rows ----------------------------------------------------------------------


CORRUPT = {
    3: ("records", "content", "not json"),
    4: ("records", "metadata", "{bad"),
    6: ("reviews", "labels", "[oops"),
    7: ("reviews", "status", "bogus"),
    8: ("records", "content", '{"messages": 5}'),
    9: ("records", "content", '{"messages": [{"role": 1, "content": ["x"]}]}'),
    10: ("records", "split", "nowhere"),
}


@pytest.fixture
def corrupt(tmp_path):
    data = str(tmp_path / "d.jsonl")
    write_chat(data, 20)
    path = str(tmp_path / "p.ftcurate")
    assert main(["import", data, "--project", path]) == 0
    assert main(["decide", path, "--approve", "0", "1", "2"]) == 0
    with raw(path) as c:
        for idx, (table, col, value) in CORRUPT.items():
            rid = c.execute("SELECT id FROM records WHERE idx = ?", (idx,)).fetchone()[0]
            key = "id" if table == "records" else "record_id"
            c.execute(f"UPDATE {table} SET {col} = ? WHERE {key} = ?", (value, rid))
        c.execute("UPDATE meta SET value = '{oops' WHERE key = 'created_at'")
    return path


def test_stats_reports_corrupt_rows_and_counts_the_rest(corrupt, capsys):
    capsys.readouterr()
    assert main(["stats", corrupt, "--json", "--include", "all"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert sorted(d["index"] for d in out["damaged"]) == sorted(CORRUPT)
    assert out["selected"] == 20 - len(CORRUPT)
    assert main(["stats", corrupt]) == 1
    cap = capsys.readouterr()
    assert "damaged" in cap.out and "Traceback" not in cap.err


def test_export_skips_corrupt_rows_and_says_which(corrupt, tmp_path, capsys):
    out = str(tmp_path / "clean.jsonl")
    capsys.readouterr()
    assert main(["export", corrupt, "-o", out, "--include", "all"]) == 1
    cap = capsys.readouterr()
    assert "damaged" in cap.err and "Traceback" not in cap.err
    with open(out, encoding="utf-8") as f:
        assert len(f.readlines()) == 20 - len(CORRUPT)


def test_decide_works_on_good_rows_and_refuses_damaged_ones_clearly(corrupt, capsys):
    capsys.readouterr()
    assert main(["decide", corrupt, "--approve", "12"]) == 0
    assert main(["decide", corrupt, "--approve", "6"]) == 2  # its labels are not JSON
    err = capsys.readouterr().err
    assert "damaged" in err and "Traceback" not in err


def test_store_reads_around_corrupt_rows(corrupt):
    from ftcurate.core.project.table import RecordFrame

    with Project.open(corrupt) as p:
        assert len(RecordFrame.from_project(p)) == 20
        good = list(p.iter_records())
        assert len(good) == 20 - len(CORRUPT)
        assert sorted(d["index"] for d in p.damaged_rows()) == sorted(CORRUPT)
        bad_id = p.id_for_index(1, 3)
        with pytest.raises(DamagedRecord, match="damaged"):
            p.get(bad_id)
        with pytest.raises(KeyError):  # callers that skip missing records skip damaged ones too
            p.get_many([p.id_for_index(1, 0), bad_id])
        p.all_labels()
        p.ids_with_label("x")
        assert p.meta_get("created_at", "fallback") == "fallback"
        p.history()


def test_damaged_decision_history_entry_gives_a_clear_undo_error(imported, capsys):
    path, _ = imported
    assert main(["decide", path, "--approve", "0"]) == 0
    with raw(path) as c:
        c.execute("UPDATE decisions SET before = '{broken'")
    capsys.readouterr()
    assert main(["decide", path, "--undo"]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "Traceback" not in err


def test_a_malformed_database_page_is_a_clear_error(imported, capsys):
    path, _ = imported
    with Project.open(path) as p:
        p.approve(p.ids())
    with raw(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:  # scribble over the last pages (records and indexes)
        f.seek(size - 3 * 4096)
        f.write(os.urandom(3 * 4096))
    rc = main(["stats", path])
    err = capsys.readouterr().err
    assert rc in (1, 2) and "Traceback" not in err
    if rc == 2:
        assert "damaged" in err


# -- 21: waiting for the lock, exporting beside the app ------------------------------------


def test_decide_wait_gets_the_lock_when_the_holder_lets_go(imported):
    path, _ = imported
    holder = Project.open(path)
    proc = subprocess.Popen(CLI + ["decide", path, "--approve", "0", "--wait", "30"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "waiting" in line and str(os.getpid()) in line, line
        holder.close()
        out, err = proc.communicate(timeout=60)
    finally:
        holder.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.strip() == "approved 0"


def test_decide_wait_gives_up_after_the_time(imported, capsys):
    path, _ = imported
    with Project.open(path):
        start = time.monotonic()
        assert main(["decide", path, "--approve", "0", "--wait", "0.5"]) == 2
        waited = time.monotonic() - start
    err = capsys.readouterr().err
    assert "in use" in err and f"pid {os.getpid()}" in err
    assert 0.4 <= waited < 10


def test_export_runs_while_the_app_has_the_project_open(imported, tmp_path, capsys):
    path, _ = imported
    out = str(tmp_path / "clean.jsonl")
    with Project.open(path) as app:
        app.approve(app.ids()[:3])
        assert main(["export", path, "-o", out]) == 0
        assert main(["stats", path]) == 0
    with open(out, encoding="utf-8") as f:
        assert len(f.readlines()) == 3


# -- 20: import error details are capped, counts are not ----------------------------------


def test_import_keeps_n_error_details_and_all_counts(tmp_path, capsys):
    data = str(tmp_path / "d.jsonl")
    write_chat(data, 60, bad=set(range(0, 60, 2)))
    path = str(tmp_path / "p.ftcurate")
    assert main(["import", data, "--project", path, "--max-errors", "10", "--json"]) == 1  # data has errors
    imp = json.loads(capsys.readouterr().out)["imports"][0]
    assert imp["rejected"] == 30 and sum(imp["error_counts"].values()) == 30
    assert len(imp["errors"]) == 10 and imp["errors_left_out"] == 20
    with Project.open(path, readonly=True) as p:
        (src,) = p.sources()
        assert src["errors"] == 30 and src["errors_kept"] == 10 and src["errors_left_out"] == 20
        assert src["error_counts"] == imp["error_counts"]
        assert len(p.import_errors()) == 10
    assert main(["stats", path]) == 0
    out = capsys.readouterr().out
    assert "30 records could not be imported" in out and "20 not kept" in out


def test_export_card_counts_every_import_error_not_only_those_kept(tmp_path, capsys):
    data = str(tmp_path / "d.jsonl")
    write_chat(data, 40, bad=set(range(0, 40, 2)))
    path = str(tmp_path / "p.ftcurate")
    assert main(["import", data, "--project", path, "--max-errors", "3"]) == 1  # data has errors
    assert main(["decide", path, "--approve", "1"]) == 0
    capsys.readouterr()
    assert main(["export", path, "-o", str(tmp_path / "out.jsonl"), "--json"]) == 0
    card = open(json.loads(capsys.readouterr().out)["card"], encoding="utf-8").read()
    assert "records that could not be imported: invalid\\_json 20" in card  # Markdown-escaped key


def test_stats_upgrades_an_old_project_once_then_reads_it(tmp_path, capsys):
    path = str(tmp_path / "old.ftcurate")
    with raw(path) as c:
        c.execute("BEGIN")
        store_mod._MIGRATIONS[0](c)
        c.execute("PRAGMA user_version = 1")
        c.execute(f"PRAGMA application_id = {store_mod.APPLICATION_ID}")
        c.execute("INSERT INTO sources(path, format, role, sha256, total, imported_at) "
                  "VALUES ('a.jsonl', 'openai-chat', 'train', 'x', 3, 0)")
        c.execute("COMMIT")
    assert main(["stats", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sources"][0]["complete"] is True
    with raw(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION


def test_a_read_only_open_of_an_older_project_upgrades_it_first(tmp_path):
    """What the app does to find the project of a dataset it opened before: those projects
    are of the older schema, and must still be found (with their decisions)."""
    path = str(tmp_path / "old.ftcurate")
    with raw(path) as c:
        c.execute("BEGIN")
        store_mod._MIGRATIONS[0](c)
        c.execute("PRAGMA user_version = 1")
        c.execute(f"PRAGMA application_id = {store_mod.APPLICATION_ID}")
        c.execute("INSERT INTO sources(path, format, role, sha256, total, imported_at) "
                  "VALUES ('a.jsonl', 'openai-chat', 'train', 'x', 3, 0)")
        c.execute("COMMIT")
    with Project.open(path, readonly=True) as p:
        assert p.readonly and p.schema_version == store_mod.SCHEMA_VERSION
        assert p.sources()[0]["sha256"] == "x" and p.sources()[0]["complete"]
    assert not os.path.exists(path + ".lock") or open(path + ".lock").read() == ""
