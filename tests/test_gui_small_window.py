"""The window at 1024×700 and its status bar (issue 11, items 11, 12, 13): everything
reachable and readable, status messages not clipped by the counts, progress in words that
fit, and held-out test records never counted as "unreviewed"."""

from __future__ import annotations

import os
import re
import threading

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QRect  # noqa: E402

from ftcurate.gui import settings as appsettings  # noqa: E402
from ftcurate.gui.models import RecordTableModel  # noqa: E402
from ftcurate.gui.workers import Worker  # noqa: E402
from test_gui import focus_table, home, open_and_wait, window  # noqa: E402,F401

pytestmark = pytest.mark.skipif(appsettings.sample_dataset() is None, reason="no bundled sample")


def open_sample(qtbot, window):
    events: list = []
    window.project_loaded.connect(lambda p: events.append(p))
    window.load_failed.connect(lambda m, d: events.append(m))
    window.open_sample()
    qtbot.waitUntil(lambda: bool(events), timeout=60_000)
    assert not isinstance(events[0], str), events[0]
    return events[0]


def small(qtbot, window):
    window.resize(1024, 700)
    qtbot.waitUntil(lambda: window.width() == 1024 and window.height() == 700)


def test_held_out_records_are_not_counted_as_unreviewed(qtbot, window):
    project = open_sample(qtbot, window)
    test = project.count(split="test")
    assert test > 0
    unreviewed = project.count(status="unreviewed") - project.count(status="unreviewed", split="test")
    text = window.counts_label.text()
    shown = int(re.search(r"([\d,]+)&nbsp;unreviewed", text).group(1).replace(",", ""))
    assert shown == unreviewed
    assert f"{test:,}&nbsp;held-out" in text  # 1280 px wide: the long form
    assert f"{project.count() - test:,} records under review" in window.counts_label.toolTip()


def test_records_table_prompt_column_is_readable_at_1024(qtbot, window):
    open_sample(qtbot, window)
    small(qtbot, window)
    table = window.table
    hh = table.horizontalHeader()
    col = RecordTableModel.COL_FIRST_USER
    # no scan yet: the empty Flags and Score columns take no room
    assert hh.isSectionHidden(RecordTableModel.COL_FLAGS) and hh.isSectionHidden(RecordTableModel.COL_SCORE)
    x = hh.sectionViewportPosition(col)
    assert x >= 0 and hh.sectionSize(col) >= 200
    assert x + 200 <= table.viewport().width(), (x, table.viewport().width())


def test_toolbar_commands_all_visible_at_1024(qtbot, window):
    open_sample(qtbot, window)
    small(qtbot, window)
    bar = window.toolbar
    for act in bar.actions():
        if act.isSeparator():
            continue
        w = bar.widgetForAction(act)
        assert w is not None and w.isVisible(), act.text()
        assert bar.rect().contains(w.geometry()), (act.text(), w.geometry(), bar.rect())


def test_status_bar_leaves_room_for_messages(qtbot, window):
    open_sample(qtbot, window)
    small(qtbot, window)
    window.set_reviewer_name("Ana María Fernández-Castellanos")
    release = threading.Event()

    def long_task(progress=None, cancel=None):
        progress(7, 2015, "Embedding the records for the outlier score and semantic duplicates")
        release.wait(30)
        return None

    worker = Worker(long_task, title="Scanning", parent=window)
    window._start(worker)
    qtbot.waitUntil(lambda: window.progress_panel.isVisible() and "2,015" in window.progress_panel.label.toolTip())
    window.statusBar().showMessage("Approved 2 records (saved)")
    sb = window.statusBar()
    counts, panel = window.counts_label, window.progress_panel
    qtbot.waitUntil(lambda: counts.geometry().right() <= sb.width())
    assert not counts.geometry().intersects(panel.geometry())
    assert counts.width() >= counts.sizeHint().width()  # the counts are not clipped
    # what is left for the message: at least 260 px
    left = min(counts.geometry().left(), panel.geometry().left())
    assert left >= 260, (left, counts.geometry(), panel.geometry())
    # the progress text is elided to its share, whole in the tooltip
    assert panel.label.width() <= panel.LABEL_WIDTH + 8
    assert "Embedding the records" in panel.label.toolTip()
    release.set()
    qtbot.waitUntil(lambda: not panel.isVisible(), timeout=30_000)
    assert isinstance(QRect(), QRect)
