"""The app and issue 15: the scan engine and the corpus index in the scan settings (set with the
keyboard), and records found in a corpus index shown in the Findings dock and the table's finding
filter like other findings (pytest-qt, offscreen)."""

from __future__ import annotations

import dataclasses
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QStandardPaths, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from ftcurate.core.index import add_file  # noqa: E402
from ftcurate.core.quality.scan import ScanSettings  # noqa: E402
from ftcurate.gui import settings as appsettings  # noqa: E402
from ftcurate.gui.dialogs import ScanSettingsDialog  # noqa: E402
from ftcurate.gui.main_window import MainWindow  # noqa: E402
from ftcurate.gui.scan_view import findings_from_report, scan_summary  # noqa: E402

SCAN_TIMEOUT = 180_000
FAST = ScanSettings(semantic_leakage=False, outlier_model="static-wordllama", outliers=False,
                    semantic_duplicates=False)


@pytest.fixture(autouse=True)
def _test_mode():
    QStandardPaths.setTestModeEnabled(True)


def test_engine_and_index_settings_with_the_keyboard(qtbot, tmp_path):
    dialog = ScanSettingsDialog(interactive=False)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.settings().engine == "local"
    # Ctrl+Tab to the last tab, "Engine & index"; Tab to its first field, the engine
    dialog.tabs.tabBar().setFocus()
    qtbot.waitUntil(dialog.tabs.tabBar().hasFocus)
    for _ in range(dialog.tabs.count()):
        if dialog.tabs.currentIndex() == dialog.tabs.count() - 1:
            break
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "E&ngine && index"
    engine = dialog.knobs["engine"].widget
    for _ in range(3):  # the page's scroll area first, then its fields
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        if QApplication.focusWidget() is engine:
            break
    assert QApplication.focusWidget() is engine
    assert [engine.itemText(i) for i in range(engine.count())] == ["local", "ray"]
    qtbot.keyClick(engine, Qt.Key.Key_Down)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    address = dialog.knobs["ray_address"].widget
    assert QApplication.focusWidget() is address and "ray://" in address.placeholderText()
    qtbot.keyClicks(address, "ray://head:10001")
    qtbot.keyClick(address, Qt.Key.Key_Tab)
    index = dialog.knobs["against_index"].widget
    assert QApplication.focusWidget() is index
    qtbot.keyClicks(index, "redis://cache:6379/0")
    assert "the records against" in index.toolTip() and dialog.help_label.text()
    qtbot.keyClick(index, Qt.Key.Key_Return)
    assert dialog.result() == dialog.DialogCode.Accepted
    got = dialog.settings()
    assert (got.engine, got.ray_address, got.against_index) == ("ray", "ray://head:10001", "redis://cache:6379/0")
    assert dataclasses.replace(got, engine="local", ray_address="", against_index="") == ScanSettings()


@pytest.mark.skipif(appsettings.sample_dataset() is None, reason="no bundled sample")
def test_app_shows_records_found_in_a_corpus_index(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("FTCURATE_HOME", str(tmp_path / "home"))
    loc = str(tmp_path / "corpus")
    add_file(loc, str(appsettings.sample_dataset()), name="last-quarter")
    window = MainWindow(interactive=False, restore_geometry=False)
    window.scan_settings = dataclasses.replace(FAST, against_index=loc)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    loaded: list = []
    window.project_loaded.connect(loaded.append)
    window.open_sample()
    qtbot.waitUntil(lambda: bool(loaded), timeout=60_000)
    with qtbot.waitSignal(window.scan_finished, timeout=SCAN_TIMEOUT) as blocker:
        window.act_scan.trigger()
    report = blocker.args[0]
    # the sample is the indexed file itself: every scanned record is an exact copy
    hits = report["against_index"]
    assert len(hits) == report["records"] - 0 and {h["method"] for h in hits} == {"exact"}
    assert all(h["dataset"] == "last-quarter" for h in hits)
    qtbot.waitUntil(lambda: window.findings_model.rowCount() > 0, timeout=5000)
    rows = [window.findings_model.finding(r) for r in range(window.findings_model.rowCount())]
    ours = [f for f in rows if f.kind == "in corpus index (exact)"]
    assert len(ours) == len(hits)
    assert "copy of record" in ours[0].detail and "last-quarter" in ours[0].detail
    assert len(findings_from_report(report)) == len(rows)
    assert "records in the corpus index" in scan_summary(report)
    # a finding kind of the table's filter, with its count
    assert window.frame.flag_counts().get("in corpus index") == len(hits)
    window.close()
