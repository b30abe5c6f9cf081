"""Project workflow through the CLI: import, decide (with a kill -9 crash test), stats, export."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import pytest

from ftcurate.cli import main
from ftcurate.core.io.formats import DatasetReader
from ftcurate.core.project.store import Project
from ftcurate.core.io.validate import validate_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "resources", "sample", "chat_train.jsonl")
HELDOUT = os.path.join(ROOT, "resources", "sample", "heldout_test.jsonl")


def run_json(capsys, argv):
    code = main(argv + ["--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def write_chat(path, n, start=0):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(start, start + n):
            f.write(json.dumps({"messages": [{"role": "user", "content": f"question {i}?"},
                                             {"role": "assistant", "content": f"answer {i}."}]}) + "\n")


@pytest.fixture
def project(tmp_path, capsys):
    p = str(tmp_path / "p.ftcurate")
    code, out = run_json(capsys, ["import", SAMPLE, "--project", p, "--test", HELDOUT, "--reviewer", "ana"])
    assert code == 1  # the sample has planted malformed lines: listed, the rest imported
    return p, out


def test_import_sample_reports_and_stores(project):
    path, out = project
    train, test = out["imports"]
    assert train["records"] == 322 and train["loaded"] + train["rejected"] == 322
    assert train["rejected"] == 6
    assert {e["key"] for e in train["errors"]} >= {"invalid_json", "data_type", "missing_messages_list",
                                                  "unrecognized_role", "missing_content"}
    assert test["loaded"] == 60
    with Project.open(path, readonly=True) as p:
        assert p.count(split="train") == train["loaded"]
        assert p.count(split="test") == 60
        assert p.reviewer == "ana"
        assert len(p.import_errors()) == len(train["errors"])
        lines = {e["line"] for e in p.import_errors()}
        assert {e["line"] for e in train["errors"]} == lines


def test_decide_undo_stats(project, capsys):
    path, _ = project
    assert main(["decide", path, "--approve", "0", "1", "2"]) == 0
    assert capsys.readouterr().out.split("\n")[:3] == ["approved 0", "approved 1", "approved 2"]
    assert main(["decide", path, "--reject", "4"]) == 0
    assert main(["decide", path, "--undo"]) == 0
    capsys.readouterr()
    code, stats = run_json(capsys, ["stats", path])
    assert code == 0
    assert stats["status"]["approved"] == 3 and stats["status"]["rejected"] == 0
    assert stats["splits"]["test"] == 60
    assert any("Held-out set: 60" in a for a in stats["advice"])
    assert main(["decide", path, "--redo"]) == 0
    with Project.open(path, readonly=True) as p:
        assert p.status_counts()["rejected"] == 1


def test_decide_bad_index_is_clear(project, capsys):
    path, _ = project
    assert main(["decide", path, "--approve", "99999"]) == 2
    assert "99999" in capsys.readouterr().err


def test_missing_project_is_clear(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "nope.ftcurate")]) == 2
    assert "no such project" in capsys.readouterr().err


def test_export_formats_card_log_and_split(project, tmp_path, capsys):
    path, _ = project
    main(["decide", path, "--approve", *map(str, range(0, 40))])
    main(["decide", path, "--reject", "40", "41"])
    capsys.readouterr()
    out = str(tmp_path / "out" / "clean.jsonl")
    code, res = run_json(capsys, ["export", path, "-o", out, "--val-fraction", "0.25", "--seed", "7"])
    assert code == 0
    assert res["counts"]["train"] + res["counts"]["validation"] <= 40
    assert res["counts"]["validation"] == round((res["counts"]["train"] + res["counts"]["validation"]) * 0.25)
    # Output passes validation with no errors.
    for f in res["files"].values():
        rep = validate_path(f)
        assert rep.rejected == 0 and rep.loaded > 0
    # Same seed, same split.
    code, res2 = run_json(capsys, ["export", path, "-o", str(tmp_path / "again.jsonl"), "--val-fraction", "0.25",
                                   "--seed", "7"])
    assert open(res["files"]["validation"]).read() == open(res2["files"]["validation"]).read()
    card = open(res["card"], encoding="utf-8").read()
    assert "# Dataset card" in card and "rejected" in card and "chat_train.jsonl" in card
    rows = list(csv.DictReader(open(res["decision_log"], encoding="utf-8")))
    assert [r["action"] for r in rows][:1] == ["approve"] and rows[-1]["action"] == "reject"
    assert rows[-1]["reviewer"] == "ana"
    # No temporary files left behind.
    assert not [f for f in os.listdir(tmp_path / "out") if f.startswith(".ftcurate-")]


@pytest.mark.parametrize("fmt", ["openai-chat", "prompt-completion", "alpaca", "sharegpt", "csv", "parquet"])
def test_export_each_format_reads_back(project, tmp_path, capsys, fmt):
    path, _ = project
    main(["decide", path, "--approve", *map(str, range(10))])
    capsys.readouterr()
    ext = {"csv": ".csv", "parquet": ".parquet", "alpaca": ".json"}.get(fmt, ".jsonl")
    out = str(tmp_path / f"x{ext}")
    code, res = run_json(capsys, ["export", path, "-o", out, "--format", fmt])
    assert code == 0
    written = res["counts"]["train"]
    assert written + len(res["skipped"]) == 10
    reader = DatasetReader(out)
    items = list(reader)
    assert all(i.ok for i in items) and len(items) == written
    with Project.open(path, readonly=True) as p:
        expected = [sr.record for sr in p.iter_records(status="approved")]
    if fmt in ("openai-chat", "csv", "parquet"):
        assert [i.record.content_json() for i in items] == [r.content_json() for r in expected]


def test_export_edits_applied_and_atomic_on_failure(project, tmp_path, capsys, monkeypatch):
    path, _ = project
    with Project.open(path) as p:
        rid = p.id_for_index(p.sources()[0]["id"], 0)
        rec = p.get(rid).original
        rec.messages[-1].content = "An edited, better answer."
        p.edit(rid, rec)
    out = tmp_path / "clean.jsonl"
    out.write_text("previous export\n")
    import ftcurate.core.io.formats as formats

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(formats, "_write_json", boom)
    with pytest.raises(RuntimeError):
        from ftcurate.core.io.export import export_project
        with Project.open(path) as p:
            export_project(p, str(out))
    assert out.read_text() == "previous export\n"
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".ftcurate-")]
    monkeypatch.undo()
    code, res = run_json(capsys, ["export", path, "-o", str(out)])
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and "An edited, better answer." in lines[0]


def test_second_process_gets_in_use_message(project, tmp_path):
    path, _ = project
    with Project.open(path):
        proc = subprocess.run([sys.executable, "-m", "ftcurate.cli", "decide", path, "--approve", "0"],
                              capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "in use" in proc.stderr and "Traceback" not in proc.stderr


def test_kill_9_during_decisions_loses_nothing_printed(tmp_path):
    data = str(tmp_path / "d.jsonl")
    write_chat(data, 3000)
    path = str(tmp_path / "k.ftcurate")
    assert main(["import", data, "--project", path]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "ftcurate.cli", "decide", path, "--approve",
                             *map(str, range(3000))], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    printed = []
    for line in proc.stdout:
        printed.append(int(line.split()[1]))
        if len(printed) >= 40:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Project.open(path) as p:  # not locked any more, not corrupt
        sid = p.sources()[0]["id"]
        approved = {p.get(i).index for i in p.ids(status="approved")}
        assert set(printed) <= approved
        assert p.count(source_id=sid) == 3000
