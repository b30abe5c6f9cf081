"""GUI tests (pytest-qt, offscreen): open a dataset through the real code path, review
with the keyboard, undo, navigate, filter, and take a screenshot in a subprocess.

Nothing here writes to the real user folders: FTCURATE_HOME points every test at
tmp_path (projects and the settings file live there). Waiting is always on a signal or
a condition, never on a fixed sleep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, QStandardPaths, Qt, QThread, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QImage  # noqa: E402
from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from ftcurate.core.progress import Cancelled  # noqa: E402
from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.gui import settings as appsettings  # noqa: E402
from ftcurate.gui import tasks  # noqa: E402
from ftcurate.gui.main_window import MainWindow  # noqa: E402
from ftcurate.gui.models import RecordTableModel  # noqa: E402
from ftcurate.gui.workers import Worker  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LOAD_TIMEOUT = 60_000


# -- helpers -------------------------------------------------------------------------------


def write_jsonl(path: Path, n: int, bad_line: bool = True, extra: str = "") -> Path:
    """``n`` valid chat records (and one malformed line after the third)."""
    lines = []
    for i in range(n):
        msgs = [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": f"question {i}: what is {i} plus {i}?{extra}"},
            {"role": "assistant", "content": f"The answer is {2 * i}."},
        ]
        lines.append(json.dumps({"messages": msgs}))
    if bad_line:
        lines.insert(3, '{"messages": [ this is not json')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "ftcurate-home"
    monkeypatch.setenv("FTCURATE_HOME", str(h))
    QStandardPaths.setTestModeEnabled(True)  # belt and braces: never the real user folders
    return h


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_jsonl(tmp_path / "chats.jsonl", 12)


@pytest.fixture
def window(qtbot, home):
    w = MainWindow(interactive=False, restore_geometry=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


def open_and_wait(qtbot, window: MainWindow, path) -> Project:
    events: list = []
    window.project_loaded.connect(lambda p: events.append(("loaded", p)))
    window.load_failed.connect(lambda m, d: events.append(("failed", m, d)))
    window.open_path(str(path))
    qtbot.waitUntil(lambda: bool(events), timeout=LOAD_TIMEOUT)
    assert events[0][0] == "loaded", events[0]
    return events[0][1]


def focus_table(qtbot, window: MainWindow) -> None:
    window.activateWindow()
    window.table.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5000)


def status_of(project: Project, record_id: int) -> str:
    return project.get(record_id).status


# -- opening -------------------------------------------------------------------------------


def test_open_dataset_imports_in_a_worker_thread(qtbot, window, dataset, home, monkeypatch):
    threads = []
    real = tasks.open_dataset

    def spy(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks, "open_dataset", spy)
    project = open_and_wait(qtbot, window, dataset)

    assert threads and threads[0] != threading.get_ident()  # imported off the GUI thread
    assert window.project is project
    assert project.count() == 12
    assert window.model.rowCount() == 12
    assert window.stack.currentWidget() is window.review_page
    # the project lives in the overridable data folder, named <stem>-<8 hex>.ftcurate
    assert Path(project.path).parent == home / "projects"
    assert Path(project.path).name == tasks.project_base_name(str(dataset)) + ".ftcurate"
    assert not list((home / "projects").glob("*.partial"))
    # the malformed line is listed under Import problems
    assert window.problems_model.rowCount() == 1
    assert window.problems_model.index(0, 1).data() == "4"  # physical line
    assert window.problems_dock.isVisibleTo(window)
    # the first record is selected and shown
    assert window.current_id() == window.model.id_at(0)
    text = window.detail.toPlainText()
    assert "question 0: what is 0 plus 0?" in text and "The answer is 0." in text
    # remembered as a recent project, in the settings file under FTCURATE_HOME
    assert appsettings.recent_projects(window.settings)[0] == os.path.abspath(project.path)
    assert window.settings.fileName() == str(home / "settings.ini")
    assert appsettings.last_folder(window.settings) == str(dataset.parent)
    window._fill_recent_menu()
    assert [a.toolTip() for a in window.recent_menu.actions()][0] == os.path.abspath(project.path)


def test_reopening_a_dataset_reuses_its_project_until_the_file_changes(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    first_path = project.path
    rid = window.model.id_at(2)
    project.approve([rid])
    window.close_project()
    assert project.closed

    again = open_and_wait(qtbot, window, dataset)
    assert again.path == first_path  # same file, same sha256: opened, not re-imported
    assert again.count() == 12 and status_of(again, rid) == "approved"

    write_jsonl(dataset, 5, bad_line=False)  # the file changed
    changed = open_and_wait(qtbot, window, dataset)
    assert changed.path != first_path and changed.path.endswith("-2.ftcurate")
    assert changed.count() == 5
    assert os.path.exists(first_path)  # the earlier project and its decisions are kept


def test_open_project_file(qtbot, window, dataset, tmp_path):
    path = str(tmp_path / "mine.ftcurate")
    with Project.open(path, create=True) as p:
        from ftcurate.core.io.ingest import import_dataset

        import_dataset(p, str(dataset))
    project = open_and_wait(qtbot, window, path)
    assert project.path == path and window.model.rowCount() == 12
    assert "mine" in window.windowTitle()


def test_bad_file_reports_an_error_and_opens_nothing(qtbot, window, tmp_path, home):
    bad = tmp_path / "noise.jsonl"
    bad.write_bytes(b"\x00\x01\x02 not a dataset \xff\xfe" * 50)
    errors = []
    window.error_reported.connect(lambda title, msg, details: errors.append((title, msg, details)))
    with qtbot.waitSignal(window.load_failed, timeout=LOAD_TIMEOUT) as blocker:
        window.open_path(str(bad))
    message, details = blocker.args
    assert message and "Traceback" not in message
    assert errors and errors[0][1] == message
    assert window.project is None
    assert window.stack.currentWidget() is window.start_page
    assert not list((home / "projects").glob("*.ftcurate*"))  # no half-made project left


def test_missing_file_reports_an_error(qtbot, window, tmp_path):
    with qtbot.waitSignal(window.load_failed, timeout=5000) as blocker:
        window.open_path(str(tmp_path / "nope.jsonl"))
    assert "no such file" in blocker.args[0]


def test_cancelled_import_leaves_no_project(qtbot, window, tmp_path, home):
    big = write_jsonl(tmp_path / "big.jsonl", 20000, bad_line=False)
    with qtbot.waitSignal(window.load_cancelled, timeout=LOAD_TIMEOUT):
        window.open_path(str(big))
        assert window.progress_panel.isVisibleTo(window)
        window.progress_panel.cancel_button.click()
    assert window.project is None
    qtbot.waitUntil(lambda: not window.progress_panel.isVisibleTo(window), timeout=5000)
    projects = home / "projects"
    assert not (projects.exists() and [p for p in projects.iterdir() if not p.name.endswith(".lock")])


def test_cancel_in_the_middle_of_an_import_removes_the_partial_project(tmp_path):
    big = write_jsonl(tmp_path / "big.jsonl", 12000, bad_line=False)
    projects = tmp_path / "projects"
    calls = []

    def progress(done, total, message):
        calls.append((done, message))

    def cancel():
        return any(done > 0 for done, _ in calls)  # stop once records are going in

    with pytest.raises(Cancelled):
        tasks.open_dataset(str(big), projects, progress=progress, cancel=cancel)
    assert any(done > 0 for done, _ in calls)
    assert [p.name for p in projects.iterdir()] == []


def test_dropping_a_file_opens_it(qtbot, window, dataset):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(dataset))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.project_loaded, timeout=LOAD_TIMEOUT):
        window.dropEvent(event)
    assert window.model.rowCount() == 12


def test_sample_test_files_only_for_the_bundled_sample_folder(tmp_path):
    (tmp_path / "train.jsonl").write_text("")
    (tmp_path / "heldout_test.jsonl").write_text("")
    assert tasks.sample_test_files(str(tmp_path / "train.jsonl"), tmp_path / "elsewhere") == []
    assert tasks.sample_test_files(str(tmp_path / "train.jsonl"), tmp_path) == [str(tmp_path / "heldout_test.jsonl")]
    assert tasks.sample_test_files(str(tmp_path / "heldout_test.jsonl"), tmp_path) == []


# -- reviewing with the keyboard ----------------------------------------------------------------


def test_a_approves_ctrl_z_undoes_ctrl_shift_z_redoes(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    window.select_row(0)
    rid = window.model.id_at(0)

    qtbot.keyClick(window.table, Qt.Key.Key_A)
    assert status_of(project, rid) == "approved"
    # saved at once: another (read-only) connection sees it
    with Project.open(project.path, readonly=True) as other:
        assert other.get(rid).status == "approved"
    assert window.model.index(0, RecordTableModel.COL_STATUS).data() == "Approved"
    assert window.current_id() == window.model.id_at(1)  # advanced to the next record

    qtbot.keyClick(window.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert status_of(project, rid) == "unreviewed"
    assert window.model.index(0, RecordTableModel.COL_STATUS).data() == "Unreviewed"
    assert window.current_id() == rid  # the undone record is selected again

    qtbot.keyClick(window.table, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert status_of(project, rid) == "approved"


def test_r_rejects_and_u_resets_the_whole_selection(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    window.select_ids([window.model.id_at(r) for r in (1, 2, 3)])
    ids = window.selected_ids()
    assert len(ids) == 3

    qtbot.keyClick(window.table, Qt.Key.Key_R)
    assert {status_of(project, i) for i in ids} == {"rejected"}
    assert project.status_counts()["rejected"] == 3
    assert "3 rejected" in window.counts_label.toolTip() and "3&nbsp;decided" in window.counts_label.text()

    qtbot.keyClick(window.table, Qt.Key.Key_U)
    assert {status_of(project, i) for i in ids} == {"unreviewed"}


def test_j_k_move_and_n_jumps_to_next_unreviewed(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    focus_table(qtbot, window)
    window.select_row(0)

    qtbot.keyClick(window.table, Qt.Key.Key_J)
    assert window.table.currentIndex().row() == 1
    qtbot.keyClick(window.table, Qt.Key.Key_J)
    assert window.table.currentIndex().row() == 2
    qtbot.keyClick(window.table, Qt.Key.Key_K)
    assert window.table.currentIndex().row() == 1
    assert "question 1:" in window.detail.toPlainText()

    project.approve([window.model.id_at(r) for r in (2, 3, 4)])
    window.model.refresh_all()
    qtbot.keyClick(window.table, Qt.Key.Key_N)
    assert window.table.currentIndex().row() == 5


def test_status_filter_and_text_search(qtbot, window, dataset):
    project = open_and_wait(qtbot, window, dataset)
    approved = [window.model.id_at(0), window.model.id_at(5)]
    project.approve(approved)
    window.model.refresh(approved)  # the store changed behind the window's back: tell the table

    with qtbot.waitSignal(window.filter_applied, timeout=5000) as blocker:
        window.status_filter.setCurrentIndex(window.status_filter.findData("approved"))
    assert blocker.args == [2] and window.model.rowCount() == 2
    assert "2 of 12" in window.count_label.text()

    with qtbot.waitSignal(window.filter_applied, timeout=LOAD_TIMEOUT) as blocker:
        window.search_box.setText("question 11:")  # typing waits a moment before searching
        window.status_filter.setCurrentIndex(0)  # this filters at once, with the text
    assert blocker.args == [1]
    assert "question 11:" in window.detail.toPlainText()


# -- the table model and the detail pane -------------------------------------------------------


def test_model_is_lazy_and_makes_no_row_widgets(qtbot, window, tmp_path):
    n = 3000
    open_and_wait(qtbot, window, write_jsonl(tmp_path / "many.jsonl", n, bad_line=False))
    model, table = window.model, window.table
    assert model.rowCount() == n
    widgets_before = len(table.findChildren(QWidget))
    # touch every row: the cache stays bounded and no widget is created per row
    for row in range(0, n, 7):
        model.index(row, RecordTableModel.COL_FIRST_USER).data()
    table.scrollToBottom()
    qtbot.waitUntil(lambda: table.rowAt(table.viewport().height() - 2) >= n - 30, timeout=5000)
    assert model.cached_rows() <= model.cache_size < n
    assert model.fetches < n // 10  # rows come a block at a time
    assert len(table.findChildren(QWidget)) == widgets_before
    assert len(table.findChildren(QWidget)) < 40
    assert all(table.indexWidget(model.index(r, c)) is None
               for r in range(n - 20, n) for c in range(model.columnCount()))
    assert model.ids().dtype == np.int64 and len(model.ids()) == n  # ids only: 8 bytes a row


def test_detail_pane_escapes_and_shows_every_role(qtbot, window, tmp_path):
    path = tmp_path / "tools.jsonl"
    rec = {
        "messages": [
            {"role": "system", "content": "sys <b>not bold</b> & co"},
            {"role": "user", "content": "weather in <Paris>?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
            {"role": "assistant", "content": "It is 21 degrees <script>alert(1)</script>."},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
    }
    path.write_text(json.dumps(rec) + "\n", encoding="utf-8")
    open_and_wait(qtbot, window, path)
    text = window.detail.toPlainText()
    for needle in ("System", "User", "Assistant", "Tool", "sys <b>not bold</b> & co", "weather in <Paris>?",
                   "get_weather", "<script>alert(1)</script>", "Source: tools.jsonl"):
        assert needle in text, needle


# -- background work -------------------------------------------------------------------------------


def test_worker_reports_progress_result_failure_and_cancel_in_the_gui_thread(qtbot):
    gui_thread = QThread.currentThread()
    seen_threads = []

    def work(n, progress=None, cancel=None):
        for i in range(n):
            progress(i + 1, n, "working")
        return n * 2

    w = Worker(work, 5, title="double")
    w.progress.connect(lambda *a: seen_threads.append(QThread.currentThread()))
    with qtbot.waitSignal(w.finished, timeout=10000) as blocker:
        w.start()
    assert blocker.args == [10] and w.state == "finished"
    assert seen_threads and all(t is gui_thread for t in seen_threads)

    def boom(progress=None, cancel=None):
        raise ValueError("bad value here")

    w2 = Worker(boom)
    with qtbot.waitSignal(w2.failed, timeout=10000) as blocker:
        w2.start()
    assert blocker.args[0] == "bad value here" and "Traceback" in blocker.args[1]

    gate = threading.Event()

    def slow(progress=None, cancel=None):
        gate.wait(10)
        if cancel():
            raise Cancelled()
        return "not cancelled"

    w3 = Worker(slow)
    with qtbot.waitSignal(w3.cancelled, timeout=10000):
        w3.start()
        w3.cancel()
        gate.set()
    assert w3.state == "cancelled"


def test_keyboard_shortcuts_sheet_lists_the_review_keys(qtbot, window):
    window.show_shortcuts()
    dialog = window._shortcuts_dialog
    qtbot.waitExposed(dialog)
    table = dialog.table
    keys = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert {"A", "R", "U", "J", "K", "N", "Ctrl+Z"} <= keys
    dialog.close()


# -- screenshot mode (a real process) -----------------------------------------------------------------


def _run_gui(args, home: Path, timeout=180, cli=False):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", FTCURATE_HOME=str(home))
    code = "import sys; from ftcurate.gui.app import main; sys.exit(main(sys.argv[1:]))"
    if cli:  # through `ftcurate gui ...`, which hands every option to the app's parser
        code = "import sys; from ftcurate.cli import main; sys.exit(main(['gui', *sys.argv[1:]]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=str(REPO), env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_screenshot_mode_writes_a_png(tmp_path, dataset):
    png = tmp_path / "shot.png"
    proc = _run_gui(["--tab", "overview", str(dataset), "--screenshot", str(png), "--theme", "dark"],
                    tmp_path / "home", cli=True)
    assert proc.returncode == 0, proc.stderr
    assert png.exists() and png.stat().st_size > 10_000
    img = QImage(str(png))
    assert img.width() >= 800 and img.height() >= 600
    colors = {img.pixel(x, y) for x in range(0, img.width(), 37) for y in range(0, img.height(), 41)}
    assert len(colors) > 20  # a drawn window, not a blank image
    assert list((tmp_path / "home" / "projects").glob("*.ftcurate"))  # projects went to FTCURATE_HOME


def test_screenshot_mode_bad_file_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("just,some,columns\n1,2,3\n", encoding="utf-8")
    png = tmp_path / "shot.png"
    proc = _run_gui([str(bad), "--screenshot", str(png)], tmp_path / "home")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip()
    assert not png.exists()


def test_window_geometry_is_remembered(qtbot, home):
    first = MainWindow(interactive=False, restore_geometry=True)
    qtbot.addWidget(first)
    first.resize(760, 560)  # the offscreen screen is 800 x 600
    first.show()
    qtbot.waitExposed(first)
    qtbot.waitUntil(lambda: first.width() == 760, timeout=5000)
    first.close()
    second = MainWindow(interactive=False, restore_geometry=True)
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (760, 560)
    assert (home / "settings.ini").exists()
