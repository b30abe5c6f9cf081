"""Dismissing findings in the app (issue 11): N in the Duplicates and Leakage views, Shift+D on
a record; the lists, counts and findings drop them, Ctrl+Z brings them back. Keys only."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from ftcurate.core.io.ingest import import_dataset  # noqa: E402
from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.train.data import check_leakage  # noqa: E402
from test_dismissals import hand_report  # noqa: E402
from test_gui import focus_table, home, open_and_wait, window  # noqa: E402,F401
from gui_keys import focused  # noqa: E402


@pytest.fixture
def scanned(tmp_path):
    """A project with a hand-made scan report (pairs, a leak, outliers, a flag)."""
    import json

    def chat(q, a):
        return json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})

    (tmp_path / "t.jsonl").write_text("\n".join(chat(f"Question {i}: what is {i} times {i}?", f"{i * i}")
                                                for i in range(12)) + "\n", encoding="utf-8")
    (tmp_path / "h.jsonl").write_text(chat("Held out: what is 3 times 3?", "9") + "\n", encoding="utf-8")
    path = str(tmp_path / "s.ftcurate")
    with Project.open(path, create=True) as p:
        import_dataset(p, str(tmp_path / "t.jsonl"))
        import_dataset(p, str(tmp_path / "h.jsonl"), role="test")
        p.save_scan("quality", {}, hand_report(p))
    return path


def test_not_a_duplicate_and_not_a_leak_with_keys(qtbot, window, scanned):
    project = open_and_wait(qtbot, window, scanned)
    total = window.findings_model.total()
    focus_table(qtbot, window)
    qtbot.keyClick(focused(), Qt.Key.Key_2, Qt.KeyboardModifier.AltModifier)  # Duplicates
    pairs = window.views["pairs"]
    before = pairs.model.rowCount()
    assert before >= 3
    shown = pairs.current_pair()
    qtbot.keyClick(focused(), Qt.Key.Key_N)
    qtbot.waitUntil(lambda: pairs.model.rowCount() == before - 1)
    assert all(p.ids != shown.ids for p in (pairs.model.pair(r) for r in range(pairs.model.rowCount())))
    assert window.findings_model.total() < total
    assert "dismissed by reviewers" in window.findings.summary_label.text()
    assert project.peek_undo()["action"] == "dismiss"
    qtbot.keyClick(focused(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: pairs.model.rowCount() == before)

    project.approve(project.ids(split="train"))  # everything approved: the leak would block training
    window._after_change(project.ids(split="train"))
    assert check_leakage(project)
    qtbot.keyClick(focused(), Qt.Key.Key_3, Qt.KeyboardModifier.AltModifier)  # Leakage
    leaks = window.views["leaks"]
    qtbot.waitUntil(lambda: leaks.model.rowCount() == 1)
    leaks.ask_reason = lambda *a: "a different question"
    qtbot.keyClick(focused(), Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)  # with a reason
    qtbot.waitUntil(lambda: leaks.model.rowCount() == 0)
    assert check_leakage(project) == []  # the gate counts it no more
    entry = project.history()[0]
    assert entry["action"] == "dismiss" and entry["after"]["dismissed"][0]["reason"] == "a different question"


def test_dismiss_an_outlier_from_the_records_tab(qtbot, window, scanned):
    project = open_and_wait(qtbot, window, scanned)
    outlier = hand_report(project)["outliers"][0]["index"]
    window.show_record_id(outlier)
    focus_table(qtbot, window)
    flagged = window.frame.flag_counts().get("outlier", 0)
    assert flagged == 1
    window.ask_choice = lambda title, prompt, items: next(i for i in items if i.startswith("Not an outlier"))
    window.ask_text = lambda *a, **k: ""
    qtbot.keyClick(window.table, Qt.Key.Key_D, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.frame.flag_counts().get("outlier", 0) == 0)
    assert "outlier" not in window.detail.toPlainText().lower().split("found by the scan")[-1]
    qtbot.keyClick(window.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.frame.flag_counts().get("outlier", 0) == 1)
