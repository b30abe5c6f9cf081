"""The app and damaged or hostile project files (issue 12, items 9 and 13): a project with
damaged rows opens (the rest of it is usable), a project changed outside ftcurate is refused
with its reason, and neither changes anything."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from ftcurate.cli import main  # noqa: E402
from test_gui import home, window  # noqa: E402,F401


def make_project(tmp_path, n=20):
    data = tmp_path / "d.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"messages": [{"role": "user", "content": f"question {i}?"},
                                             {"role": "assistant", "content": f"answer {i}."}]}) + "\n")
    path = str(tmp_path / "p.ftcurate")
    assert main(["import", str(data), "--project", path]) == 0
    os.unlink(path + ".lock")
    return path


def open_and_wait(qtbot, window, path):
    events: list = []
    window.project_loaded.connect(lambda p: events.append(("loaded", p)))
    window.load_failed.connect(lambda m, d: events.append(("failed", m, d)))
    window.open_path(str(path))
    qtbot.waitUntil(lambda: bool(events), timeout=60_000)
    return events[0]


def test_a_project_with_damaged_rows_opens(qtbot, window, tmp_path):
    path = make_project(tmp_path)
    with sqlite3.connect(path, isolation_level=None) as c:
        c.execute("UPDATE records SET content = 'not json' WHERE idx = 3")
        c.execute("UPDATE reviews SET labels = '[oops' WHERE record_id = (SELECT id FROM records WHERE idx = 5)")
    event = open_and_wait(qtbot, window, path)
    assert event[0] == "loaded", event
    project = event[1]
    assert window.model.rowCount() == 20
    assert len(list(project.iter_records())) == 18


def test_a_project_with_a_foreign_trigger_is_refused(qtbot, window, tmp_path):
    path = make_project(tmp_path)
    with sqlite3.connect(path, isolation_level=None) as c:
        c.execute("CREATE TRIGGER wipe AFTER UPDATE ON reviews BEGIN DELETE FROM decisions; END")
    event = open_and_wait(qtbot, window, path)
    assert event[0] == "failed" and "not created by ftcurate" in event[1], event
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == [("wipe",)]
