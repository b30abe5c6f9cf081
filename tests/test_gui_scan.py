"""GUI tests of the quality scan (pytest-qt, offscreen): Scan ▸ Run quality scan on the
bundled sample in a worker, the Findings dock, jumping to a finding's record, cancel.

FTCURATE_HOME points at tmp_path (projects and settings live there), as in test_gui.py.
Waiting is always on a signal or a condition, never on a fixed sleep.
"""

from __future__ import annotations

import json
import os
import threading

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QStandardPaths, Qt  # noqa: E402

from ftcurate.core.quality.scan import ScanSettings  # noqa: E402
from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.gui import scan_control as mw  # noqa: E402
from ftcurate.gui import settings as appsettings  # noqa: E402
from ftcurate.gui.main_window import MainWindow  # noqa: E402
from ftcurate.gui.scan_view import EMPTY_TEXT, FindingsModel, findings_from_report, scan_summary  # noqa: E402

LOAD_TIMEOUT = 60_000
SCAN_TIMEOUT = 180_000
FAST = ScanSettings(semantic_leakage=False, outlier_model="static-wordllama")

pytestmark = pytest.mark.skipif(appsettings.sample_dataset() is None, reason="no bundled sample")


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "ftcurate-home"
    monkeypatch.setenv("FTCURATE_HOME", str(h))
    QStandardPaths.setTestModeEnabled(True)
    return h


@pytest.fixture
def window(qtbot, home):
    w = MainWindow(interactive=False, restore_geometry=False)
    w.scan_settings = FAST
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def open_sample(qtbot, window: MainWindow) -> Project:
    events: list = []
    window.project_loaded.connect(lambda p: events.append(("loaded", p)))
    window.load_failed.connect(lambda m, d: events.append(("failed", m, d)))
    window.open_sample()
    qtbot.waitUntil(lambda: bool(events), timeout=LOAD_TIMEOUT)
    assert events[0][0] == "loaded", events[0]
    return events[0][1]


def kinds(model: FindingsModel) -> set:
    return {model.finding(r).kind for r in range(model.rowCount())}


# -- the report as rows -----------------------------------------------------------------------


def test_findings_from_the_documented_report_shape():
    report = {"exact_duplicates": [[12, 40, 57]], "conflicting": [[3, 9]],
              "near_duplicate_clusters": [{"indices": [8, 93], "keep": 93, "reason": "longest answer (412 chars)",
                                           "pairs": [{"a": 8, "b": 93, "similarity": 0.8712}]}],
              "semantic_duplicates": [{"a": 5, "b": 61, "similarity": 0.962}],
              "outliers": [{"index": 149, "score": 0.41}],
              "leakage": [{"index": 22, "test_index": 7, "method": "exact", "score": 0.95, "field": "prompt"}],
              "flags": [{"index": 91, "flag": "placeholder_answer", "reason": "answer is a placeholder: 'N/A'"}]}
    rows = {(f.kind, f.record_id): f.detail for f in findings_from_report(report)}
    assert rows[("exact duplicate", 12)] == "same as 40, 57"
    assert rows[("near duplicate", 8)] == "similarity 0.87 with 93, keep 93 (longest answer (412 chars))"
    assert ("conflicting answers", 9) in rows
    assert rows[("semantic duplicate", 5)] == "similarity 0.96 with 61"
    assert rows[("outlier", 149)].startswith("score 0.41")
    assert rows[("leakage (exact)", 22)] == "leaks test record 7 (prompt, 0.95)"
    assert rows[("flag: placeholder answer", 91)] == "answer is a placeholder: 'N/A'"
    assert scan_summary(report).startswith("Scan: 1 duplicate group, 1 near-duplicate cluster")
    assert findings_from_report(None) == []
    # ids are shown as the numbers people see (the record's index in its file)
    numbered = findings_from_report(report, numbers={12: 10, 40: 38, 57: 55})
    assert (numbered[0].record_id, numbered[0].number, numbered[0].detail) == (12, 10, "same as 38, 55")


# -- in the window ------------------------------------------------------------------------------


def test_scan_fills_findings_and_a_finding_selects_its_record(qtbot, window, monkeypatch):
    threads = []
    real = mw.scan_project

    def spy(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(mw, "scan_project", spy)
    errors: list = []
    window.error_reported.connect(lambda *a: errors.append(a))
    project = open_sample(qtbot, window)
    # no stored report yet: the dock says how to make one
    assert window.findings_dock.isVisibleTo(window)
    assert window.findings_model.rowCount() == 0
    assert window.findings.stack.currentWidget() is window.findings.empty_label
    assert window.findings.empty_label.text() == EMPTY_TEXT
    assert window.act_scan.isEnabled()
    assert "&Scan" in [a.text() for a in window.menuBar().actions()]
    assert window.act_scan in window.toolbar.actions()

    with qtbot.waitSignal(window.scan_finished, timeout=SCAN_TIMEOUT) as blocker:
        window.act_scan.trigger()
        assert window.is_scanning() and not window.act_scan.isEnabled()
        assert window.progress_panel.isVisibleTo(window)
    report = blocker.args[0]
    assert threads and threads[0] != threading.get_ident()  # scanned off the GUI thread
    assert not errors
    qtbot.waitUntil(lambda: window.findings_model.rowCount() > 0, timeout=5000)
    found = kinds(window.findings_model)
    assert "exact duplicate" in found
    assert any(k.startswith("leakage (") for k in found)
    assert window.statusBar().currentMessage() == scan_summary(report, short=True)
    assert window.statusBar().currentMessage().startswith("Scan: ")
    assert window.act_scan.isEnabled() and not window.progress_panel.isVisibleTo(window)

    # the kind filter shows only leakage rows
    panel = window.findings
    leak_kind = next(k for k in found if k.startswith("leakage ("))
    panel.select_kind(leak_kind)
    assert kinds(window.findings_model) == {leak_kind}
    finding = window.findings_model.finding(0)

    # hide the training record behind the split filter: activating the finding clears it
    window.split_filter.setCurrentIndex(window.split_filter.findData("test"))
    qtbot.waitUntil(lambda: window.model.row_of(finding.record_id) is None, timeout=5000)
    view = panel.view
    index = window.findings_model.index(0, 0)
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(index).center())
    assert window.current_id() == finding.record_id
    assert window.split_filter.currentData() is None
    # the finding shows the record by the number the main table's "#" column shows
    row = window.table.currentIndex().row()
    assert window.model.index(row, 0).data() == window.findings_model.index(0, 1).data() == str(finding.number)
    assert window.detail.toPlainText().strip()

    # keyboard activation of another row (Enter) does the same
    other = window.findings_model.finding(1)
    view.setFocus()
    view.setCurrentIndex(window.findings_model.index(1, 0))
    view.activated.emit(window.findings_model.index(1, 0))
    assert window.current_id() == other.record_id

    # reopening shows the stored report at once
    window.close_project()
    assert window.findings_model.rowCount() == 0
    open_sample(qtbot, window)
    assert window.findings_model.rowCount() == len(findings_from_report(report))
    assert window.findings_dock.isVisibleTo(window)
    assert project.closed


def test_cancelling_a_scan_leaves_the_app_usable(qtbot, window):
    errors: list = []
    finished: list = []
    window.error_reported.connect(lambda *a: errors.append(a))
    window.scan_finished.connect(lambda r: finished.append(r))
    project = open_sample(qtbot, window)
    panel = window.progress_panel

    with qtbot.waitSignal(window.scan_cancelled, timeout=SCAN_TIMEOUT):
        window.act_scan.trigger()
        qtbot.waitUntil(lambda: panel.isVisibleTo(window) and panel.cancel_button.isEnabled(), timeout=5000)
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.is_scanning(), timeout=5000)

    assert not errors and not finished
    assert window.findings_model.rowCount() == 0
    assert window.findings.empty_label.text() == EMPTY_TEXT
    assert project.load_scan("quality") is None  # nothing stored
    assert window.statusBar().currentMessage() == "Scan cancelled"
    assert window.act_scan.isEnabled()
    qtbot.waitUntil(lambda: not panel.isVisibleTo(window), timeout=5000)
    # still usable: a decision saves, navigation works
    rid = window.current_id()
    window.decide("approve")
    assert project.get(rid).status == "approved"
    window.move_selection(1)
    assert window.current_id() != rid


def test_a_failing_scan_reports_the_error_and_changes_nothing(qtbot, window, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("the scanner broke")

    monkeypatch.setattr(mw, "scan_project", boom)
    errors: list = []
    window.error_reported.connect(lambda *a: errors.append(a))
    open_sample(qtbot, window)
    with qtbot.waitSignal(window.scan_failed, timeout=30_000) as blocker:
        window.run_scan()
    assert blocker.args[0] == "the scanner broke" and "Traceback" in blocker.args[1]
    assert errors and errors[0][0] == "Scan failed"
    assert window.findings_model.rowCount() == 0
    qtbot.waitUntil(lambda: window.act_scan.isEnabled(), timeout=5000)


def test_heavy_imports_run_with_the_collector_paused_then_frozen():
    """In a fresh interpreter: torch & co. are imported without a single collection, then
    frozen; the collector is on again afterwards, and a second call does nothing."""
    import subprocess
    import sys

    code = """
import gc, json, sys
from ftcurate.gui.tasks import import_heavy_modules
collections = []
gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)
first = import_heavy_modules()
print(json.dumps({"first": first, "during": len(collections), "enabled": gc.isenabled(),
                  "frozen": gc.get_freeze_count(), "again": import_heavy_modules()}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "torch" in result["first"] and result["during"] == 0
    assert result["enabled"] and result["frozen"] > 100_000 and result["again"] == []
