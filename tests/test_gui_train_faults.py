"""The training view's side of issue 12 items 7 and 16 and issue 11 item 3 (pytest-qt, offscreen).

* "Use settings" of a past run never carries trust_remote_code over without asking: the
  form gets the run's settings with it off, and a question asks whether to turn it on.
* A run's files name the base model relative to the run folder; the Evaluate tab finds it.
* The leakage gate counts only the records that would be trained on, and names them by
  their 0-based index in the source file.
"""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402
from test_gui_train import FakeRunner, chat, cpu, errors_of, home, model_dir, write_jsonl  # noqa: E402,F401

from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.gui.train_view import TrainingView  # noqa: E402
from ftcurate.train.config import TrainConfig  # noqa: E402
from ftcurate.train.runfiles import save_run_config  # noqa: E402

RUN_TIMEOUT = 180_000  # the first run of a session imports torch & co. in its worker (slow on a busy machine)


@pytest.fixture
def view(qtbot, home, cpu, tmp_path):  # noqa: F811
    """An interactive view (it may ask questions) with a fake runner."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    v = TrainingView(settings=settings, interactive=True, runner=FakeRunner(steps=3))
    qtbot.addWidget(v)
    v.resize(1400, 900)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.shutdown()


def past_run(root, model: str, **settings) -> str:
    """A finished run folder as the runner writes it (run_config.json with a relative model path)."""
    run = os.path.join(str(root), "20240101-100000")
    os.makedirs(run)
    save_run_config(TrainConfig(model_dir=model, output_dir=run, **settings), run)
    with open(os.path.join(run, "metrics.jsonl"), "w") as f:
        f.write(json.dumps({"type": "train", "step": 1, "loss": 2.0}) + "\n")
    with open(os.path.join(run, "adapter_config.json"), "w") as f:
        f.write("{}")
    return run


def question(qtbot, view) -> QMessageBox:
    found: list = []

    def shown() -> bool:
        box = view.findChild(QMessageBox, "remote_code_question")
        if box is not None and box.isVisible():
            found.append(box)
            return True
        return False

    qtbot.waitUntil(shown)
    return found[0]


def click_use_settings(qtbot, view) -> None:
    button = view.runs_panel.use_settings_button
    button.setFocus()
    qtbot.waitUntil(button.hasFocus)
    qtbot.keyClick(button, Qt.Key.Key_Space)


@pytest.mark.parametrize("answer, expected", [(Qt.Key.Key_N, False), (Qt.Key.Key_Y, True)])
def test_use_settings_asks_before_carrying_remote_code_over(qtbot, view, home, model_dir, answer,  # noqa: F811
                                                            expected):
    run = past_run(home / "runs", model_dir, lora_r=4, trust_remote_code=True, allow_leakage=True)
    with open(os.path.join(run, "run_config.json")) as f:
        assert not os.path.isabs(json.load(f)["model_dir"])
    view.set_model_dir("")
    view.refresh_runs(select=run)
    assert view.selected_run() == run
    click_use_settings(qtbot, view)
    box = question(qtbot, view)
    # The form holds the run's settings with remote code off while the question is open.
    assert view.config().lora_r == 4 and view.config().trust_remote_code is False
    assert view.config().allow_leakage is False and view.output_edit.text() == ""
    assert view.model_edit.text() == model_dir  # found again from the run folder
    assert "left off" in view.log.toPlainText()
    qtbot.keyClick(box, answer)
    qtbot.waitUntil(lambda: view.findChild(QMessageBox, "remote_code_question") is None)
    assert view.config().trust_remote_code is expected
    # The Evaluate tab finds the base model from the run's relative path too.
    assert view.eval_panel.run_model_dir(run) == model_dir


def test_use_settings_without_remote_code_asks_nothing(qtbot, view, home, model_dir):  # noqa: F811
    run = past_run(home / "runs", model_dir, lora_r=8)
    view.refresh_runs(select=run)
    click_use_settings(qtbot, view)
    qtbot.waitUntil(lambda: view.config().lora_r == 8)
    assert view.findChild(QMessageBox, "remote_code_question") is None


def leaky_project(tmp_path, approved_leak: bool) -> str:
    """Test file first (store ids differ from indices); training records 0-9 approved, 10 and
    11 unreviewed; the scan says records 10 and 11 leak - and record 3 when ``approved_leak``."""
    from ftcurate.core.io.ingest import import_dataset

    test_file = write_jsonl(tmp_path / "ptest.jsonl", 3, start=100)
    train_file = write_jsonl(tmp_path / "ptrain.jsonl", 12)
    path = str(tmp_path / "proj.ftcurate")
    with Project.open(path, create=True) as p:
        import_dataset(p, str(test_file), role="test")
        import_dataset(p, str(train_file))
        source = [s for s in p.sources() if s["role"] == "train"][0]["id"]
        ids = [p.id_for_index(source, i) for i in range(12)]
        p.approve(ids[:10])
        test_id = p.ids(split="test")[0]
        leaking = [10, 11] + ([3] if approved_leak else [])
        hits = [{"index": ids[i], "test_index": test_id, "method": "exact", "score": 1.0, "field": "prompt"}
                for i in leaking]
        p.save_scan("quality", {}, {"index": "record_id", "leakage": hits, "validation_leakage": []})
    return path


def test_unreviewed_leaks_do_not_refuse_training(qtbot, home, cpu, tmp_path, model_dir):  # noqa: F811
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    runner = FakeRunner(steps=3)
    view = TrainingView(settings=settings, interactive=False, runner=runner)
    qtbot.addWidget(view)
    view.show()
    try:
        view.set_model_dir(model_dir)
        errors = errors_of(view)
        path = leaky_project(tmp_path, approved_leak=False)
        view.set_project(None, path)
        assert "Leakage" not in view.checks_label.text() and not view.leak_check.isVisibleTo(view)
        with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT):
            assert view.start(), errors
        assert not errors and runner.calls[0]["config"].allow_leakage is False
        # A leak among the approved records refuses, naming the record as the file numbers it.
        (tmp_path / "second").mkdir()
        view.set_project(None, leaky_project(tmp_path / "second", approved_leak=True))
        assert "record 3 of ptrain.jsonl" in view.checks_label.text()
        assert view.start() is False
        assert errors[-1][0] == "Training refused" and "1 training record(s) leak" in errors[-1][1]
        assert "record 3 of ptrain.jsonl" in errors[-1][1] and len(runner.calls) == 1
    finally:
        view.shutdown()


def test_a_pickled_adapter_is_refused_with_a_clear_message(qtbot, home, cpu, tmp_path, model_dir):  # noqa: F811
    """The real evaluator in the Evaluate tab: the message names the pickle, no traceback."""
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    view = TrainingView(settings=settings, interactive=False)
    qtbot.addWidget(view)
    view.show()
    try:
        errors = errors_of(view)
        run = past_run(home / "runs", model_dir)
        with open(os.path.join(run, "adapter_model.bin"), "wb") as f:
            f.write(b"\x80\x04K\x01.")  # a pickle
        view.refresh_runs(select=run)
        view.set_heldout_file(str(write_jsonl(tmp_path / "heldout.jsonl", 2, start=50)))
        assert view.evaluate_run(run)
        qtbot.waitUntil(lambda: bool(errors), timeout=RUN_TIMEOUT)
        title, message, _details = errors[-1]
        assert f"{os.path.join(run, 'adapter_model.bin')} is a pickle file; ftcurate refuses to load pickles" in message
        assert "Traceback" not in message
    finally:
        view.shutdown()
