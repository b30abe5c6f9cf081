"""The training window (pytest-qt, offscreen): settings form, pre-flight checks, a live run
with a fake runner (chart points, warnings, Stop, Cancel, Resume), past-run overlays,
evaluation with a fake evaluator, errors - and one short run with the real engine on the
demo model.

The fake runner has the real runner's signature and reports through ``on_event`` from the
worker thread; it waits for Stop/Cancel on a threading.Event in that thread. The tests
wait on signals or conditions, never on a fixed sleep. FTCURATE_HOME points at tmp_path.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import fields
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QSettings, QStandardPaths, Qt  # noqa: E402

from ftcurate.core.progress import Cancelled  # noqa: E402
from ftcurate.core.project.records import Message, Record  # noqa: E402
from ftcurate.core.project.store import Project  # noqa: E402
from ftcurate.gui import train_settings  # noqa: E402
from ftcurate.gui.charts import LossChart, ema, loss_curves  # noqa: E402
from ftcurate.gui.train_view import TrainingView  # noqa: E402
from ftcurate.train.config import TrainConfig  # noqa: E402
from ftcurate.train.runner import TrainError, TrainResult  # noqa: E402

RUN_TIMEOUT = 20_000
# A small Llama-shaped config.json: enough for check_model_folder and estimate_memory.
TINY_CONFIG = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=128, vocab_size=1024,
                   num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)


# -- fixtures ---------------------------------------------------------------------------------


def chat(i: int) -> Record:
    return Record([Message("system", "You are terse."), Message("user", f"What is {i} plus {i}?"),
                   Message("assistant", f"It is {2 * i}.")])


def write_jsonl(path: Path, n: int, start: int = 0) -> Path:
    path.write_text("".join(json.dumps(chat(i).content_dict()) + "\n" for i in range(start, start + n)),
                    encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "ftcurate-home"
    monkeypatch.setenv("FTCURATE_HOME", str(h))
    QStandardPaths.setTestModeEnabled(True)
    return h


@pytest.fixture
def cpu(monkeypatch):
    """The device as if detected: the CPU (no torch import in these tests)."""
    monkeypatch.setattr(train_settings, "_DEVICE", ("cpu", None))


@pytest.fixture
def model_dir(tmp_path) -> str:
    """A folder that passes check_model_folder (the fake runner never loads it)."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    return str(folder)


@pytest.fixture
def train_file(tmp_path) -> str:
    return str(write_jsonl(tmp_path / "train.jsonl", 20))


def write_checkpoint(folder: str, step: int) -> None:
    """A checkpoint folder with the files of a complete one (torn ones are not resumed from)."""
    from ftcurate.train.runfiles import CHECKPOINT_NEEDS, TRAINER_STATE

    os.makedirs(folder, exist_ok=True)
    for name in CHECKPOINT_NEEDS:
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(json.dumps({"global_step": step}) if name == TRAINER_STATE else "{}")


class FakeRunner:
    """Emits ``steps`` training events (an eval every 5 steps, a warning at the start),
    writes metrics.jsonl and run_config.json like the real runner, and honours stop/cancel.
    With ``hold_at`` it waits there (in the worker thread) until asked to stop or cancel."""

    def __init__(self, steps: int = 12, hold_at: int | None = None, fail: Exception | None = None) -> None:
        self.steps = steps
        self.hold_at = hold_at
        self.fail = fail
        self.calls: list[dict] = []
        self.threads: list[int] = []
        self.reached = threading.Event()  # set when the run is held at hold_at

    def __call__(self, config, data, progress=None, cancel=None, on_event=None, stop=None, resume=False):
        self.calls.append({"config": config, "data": data, "resume": resume})
        self.threads.append(threading.get_ident())
        if self.fail is not None:
            raise self.fail
        out = config.output_dir
        os.makedirs(out, exist_ok=True)
        config.to_json(os.path.join(out, "run_config.json"))
        metrics = open(os.path.join(out, "metrics.jsonl"), "a", encoding="utf-8")

        def emit(event, record=True):
            if record:
                metrics.write(json.dumps(event) + "\n")
                metrics.flush()
            on_event(event)

        try:
            emit({"type": "start", "max_steps": self.steps, "num_train": len(data.train),
                  "num_eval": len(data.eval), "device": "cpu", "output_dir": out, "resumed_from": None}, False)
            emit({"type": "warning", "message": "Only 18 training examples: a fake warning."}, False)
            first = 1
            if resume:
                first = max(int(n.split("-")[1]) for n in os.listdir(out) if n.startswith("checkpoint-")) + 1
            stopped = False
            step = first - 1
            for step in range(first, self.steps + 1):
                if cancel():
                    raise Cancelled("training cancelled")
                loss = 3.0 / step + 0.1
                emit({"type": "train", "step": step, "epoch": step / self.steps, "loss": loss,
                      "learning_rate": 2e-4 * (1 - step / (self.steps + 1)), "grad_norm": 1.0,
                      "tokens_per_second": 1000.0 + step, "samples_per_second": 10.0,
                      "gpu_memory_bytes": (1 << 30) + step * (1 << 20), "elapsed": step * 0.1,
                      "max_steps": self.steps})
                if step % 5 == 0:
                    emit({"type": "eval", "step": step, "eval_loss": loss + 0.2, "best": True})
                progress(step, self.steps, f"step {step}/{self.steps}")
                if self.hold_at is not None and step == self.hold_at and not resume:
                    self.reached.set()
                    while not (stop() or cancel()):
                        threading.Event().wait(0.005)  # the worker thread waits, not the test
                if cancel():
                    raise Cancelled("training cancelled")
                if stop():
                    write_checkpoint(os.path.join(out, f"checkpoint-{step}"), step)
                    stopped = True
                    break
            with open(os.path.join(out, "adapter_config.json"), "w") as f:
                f.write("{}")
            result = TrainResult(output_dir=out, adapter_dir=out, global_step=step, max_steps=self.steps,
                                 final_loss=3.0 / max(step, 1) + 0.1, stopped=stopped, device="cpu")
            emit({"type": "end", **result.to_dict()})  # as the real runner ends metrics.jsonl
            return result
        finally:
            metrics.close()


@pytest.fixture
def make_view(qtbot, home, cpu, tmp_path):
    views = []

    def make(runner=None, evaluator=None, **kw) -> TrainingView:
        settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        view = TrainingView(settings=settings, interactive=False, runner=runner or FakeRunner(),
                            evaluator=evaluator, **kw)
        qtbot.addWidget(view)
        view.resize(1400, 900)
        view.show()
        qtbot.waitExposed(view)
        views.append(view)
        return view

    yield make
    for v in views:
        v.shutdown()


def ready(view: TrainingView, model_dir: str, train_file: str) -> TrainingView:
    view.set_model_dir(model_dir)
    view.set_train_file(train_file)
    return view


def errors_of(view: TrainingView) -> list:
    out: list = []
    view.error_reported.connect(lambda *a: out.append(a))
    return out


# -- charts -------------------------------------------------------------------------------------


def test_ema_and_loss_curves():
    assert list(ema([1.0, 2.0, 3.0], 0.0)) == [1.0, 2.0, 3.0]
    smooth = ema([4.0, 4.0, 4.0], 0.9)
    assert all(abs(v - 4.0) < 1e-9 for v in smooth)  # debiased: a constant stays constant
    out = ema([1.0, float("nan"), 3.0], 0.5)
    assert out[0] == 1.0 and out[1] != out[1] and 1.0 < out[2] < 3.0
    events = [{"type": "start"}, {"type": "train", "step": 1, "loss": 2.0}, {"type": "eval", "step": 1,
                                                                                "eval_loss": 2.5},
              {"step": 2, "loss": 1.5}, {"type": "warning", "message": "x"}]
    assert loss_curves(events) == (([1, 2], [2.0, 1.5]), ([1], [2.5]))


def test_many_binding_calls_do_not_free_none_or_true(qtbot):
    """gui.compat.guard_singleton_refcounts: PySide6 builds that drop a reference to None per
    void call (and to True per emit) would abort Python 3.10/3.11 here."""
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    qtbot.addWidget(label)
    for _ in range(100_000):
        label.setEnabled(True)
        label.windowTitleChanged.emit("x")
    assert sys.getrefcount(None) > 0 and sys.getrefcount(True) > 0


def test_loss_chart_smoothing_log_scale_and_overlays(qtbot):
    chart = LossChart()
    qtbot.addWidget(chart)
    for step, loss in enumerate([4.0, 1.0, 4.0, 1.0], 1):
        chart.add_train_loss(step, loss)
    chart.add_eval_loss(2, 0.0)
    qtbot.waitUntil(lambda: len(chart.data("train")[0]) == 4)  # drawn by the coalescing timer
    xs, raw = chart.data("train")
    assert list(xs) == [1, 2, 3, 4] and list(raw) == [4.0, 1.0, 4.0, 1.0]
    _, smooth = chart.data("train_smooth")
    assert max(smooth) - min(smooth) < 3.0  # smoothed: less spread than the raw values
    chart.smooth_slider.setValue(0)
    assert list(chart.data("train_smooth")[1]) == [4.0, 1.0, 4.0, 1.0]
    chart.log_check.setChecked(True)
    assert chart.log_scale and chart.plot.getPlotItem().ctrl.logYCheck.isChecked()
    ys = chart.data("eval")[1]
    assert ys[0] != ys[0]  # a zero loss is a gap on a log axis, not an error
    chart.add_overlay("run-a", ([1, 2, 3], [3.0, 2.0, 1.0]), ([2], [2.5]))
    assert chart.overlays() == ["run-a"] and list(chart.data("run:run-a")[0]) == [1, 2, 3]
    assert list(chart.data("run:run-a:eval")[1]) == [2.5]
    chart.remove_overlay("run-a")
    assert not chart.has_series("run:run-a") and not chart.has_series("run:run-a:eval")


def test_compact_axis_writes_big_counts_short():
    from ftcurate.gui.charts import CompactAxis

    axis = CompactAxis("left")
    assert axis.tickStrings([0, 500, 25000, 1_500_000], 1.0, 1.0) == ["0", "500", "25k", "1.5M"]


def test_loss_legend_lists_only_curves_with_points(qtbot):
    chart = LossChart()
    qtbot.addWidget(chart)

    def listed():
        legend = chart.legend
        return [label.text for _, label in legend.items] if legend is not None and legend.isVisible() else []

    assert listed() == []  # no run yet: no legend over the (empty) plot
    chart.add_overlay("run-a", ([1, 2, 3], [3.0, 2.0, 1.0]), ([2], [2.5]))
    qtbot.waitUntil(lambda: listed() == ["run-a"])  # the empty live curves are not listed
    chart.add_train_loss(1, 2.0)
    qtbot.waitUntil(lambda: "train" in listed())
    chart.clear_data()
    assert listed() == []


# -- the settings form ------------------------------------------------------------------------------------


def test_config_form_round_trips_and_every_field_has_a_tooltip(make_view, tmp_path):
    view = make_view()
    for f in fields(TrainConfig):
        if f.name in ("data", "uncurated"):  # recorded by training, not set in the form (the raw twin has a box)
            continue
        widget = view.field_widgets.get(f.name)
        assert widget is not None, f"no widget for {f.name}"
        assert widget.toolTip().startswith(f.metadata["help"][:40]), f.name
    config = TrainConfig(model_dir=str(tmp_path / "m"), method="dora", lora_r=8, lora_alpha=24, lora_dropout=0.1,
                         target_modules="q_proj,v_proj", learning_rate=1.5e-5, epochs=2.5, batch_size=3,
                         grad_accum=4, max_seq_len=512, warmup_ratio=0.1, seed=7, eval_steps=0,
                         early_stopping_patience=0, save_steps=25, max_steps=300,
                         output_dir=str(tmp_path / "out"), assistant_only_loss=False, trust_remote_code=True,
                         allow_leakage=True, packing=False, logging_steps=5)
    if hasattr(config, "gradient_checkpointing"):
        config.gradient_checkpointing = True
    view.set_config(config)
    assert view.config() == config
    assert view.field_widgets["learning_rate"].text() == "1.5e-5"
    lr = view.field_widgets["learning_rate"]
    lr.lineEdit().setText("3e-5")
    lr.interpretText()
    assert view.config().learning_rate == pytest.approx(3e-5)
    lr.stepBy(1)  # the arrows double and halve
    assert lr.value() == pytest.approx(6e-5)
    view.set_config(TrainConfig(model_dir=""))
    assert view.config() == TrainConfig(model_dir="")


def test_settings_are_remembered(make_view, model_dir, train_file):
    view = ready(make_view(), model_dir, train_file)
    view.field_widgets["lora_r"].setValue(32)
    view.save_settings()
    again = make_view()
    assert again.model_edit.text() == model_dir
    assert again.train_file_edit.text() == train_file
    assert again.config().lora_r == 32 and again.output_edit.text() == ""


def test_model_folder_check_and_memory_estimate(make_view, model_dir, tmp_path):
    view = make_view()
    empty = tmp_path / "empty"
    empty.mkdir()
    view.set_model_dir(str(empty))
    text = view.model_status.text()
    assert "config.json" in text and "safetensors" in text  # says what is missing
    view.set_model_dir(model_dir)
    assert "looks complete" in view.model_status.text()
    view.refresh_checks()
    assert view.estimate is not None and view.estimate.total_bytes > 0
    assert "CPU" in view.device_label.text()
    assert "Memory" in view.memory_label.text()


def test_won_t_fit_is_shown(make_view, tmp_path, monkeypatch):
    monkeypatch.setattr(train_settings, "_DEVICE", ("cuda", 8 << 30))
    big = tmp_path / "big"
    big.mkdir()
    (big / "config.json").write_text(json.dumps(dict(hidden_size=4096, num_hidden_layers=32, intermediate_size=11008,
                                                     vocab_size=32000, num_attention_heads=32)))
    (big / "tokenizer.json").write_text("{}")
    (big / "model.safetensors").write_bytes(b"")
    view = make_view()
    view.set_model_dir(str(big))
    view.refresh_checks()
    assert view.estimate.fits is False
    assert "Won't fit" in view.memory_label.text() and "qlora" in view.memory_label.text()


def test_bad_model_folder_is_reported_and_nothing_starts(make_view, train_file, tmp_path):
    runner = FakeRunner()
    view = make_view(runner)
    errors = errors_of(view)
    view.set_train_file(train_file)
    view.set_model_dir(str(tmp_path / "nope"))
    assert view.start() is False
    assert errors and errors[0][0] == "Base model folder" and "not a folder" in errors[0][1]
    assert not runner.calls and view.state == "idle" and view.start_button.isEnabled()


# -- a run with the fake runner ---------------------------------------------------------------------------


def test_run_plots_events_logs_warnings_and_finishes(qtbot, make_view, model_dir, train_file, home):
    runner = FakeRunner(steps=12)
    view = ready(make_view(runner), model_dir, train_file)
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT) as blocker:
        assert view.start()
        assert view.state == "running" and not view.start_button.isEnabled() and view.stop_button.isEnabled()
    run_dir = blocker.args[0]
    assert runner.threads and runner.threads[0] != threading.get_ident()  # trained off the GUI thread
    assert os.path.dirname(run_dir) == str(home / "runs")  # no project: the data folder's runs/
    assert view.state == "finished" and not view.last_result.stopped
    view.loss_chart.redraw()
    xs, ys = view.loss_chart.data("train")
    assert list(xs) == list(range(1, 13)) and ys[0] == pytest.approx(3.1)
    assert list(view.loss_chart.data("eval")[0]) == [5, 10]
    assert len(view.loss_chart.data("train_smooth")[0]) == 12
    for chart, name in ((view.lr_chart, "lr"), (view.throughput_chart, "tokens_per_second"),
                        (view.memory_chart, "gpu_memory")):
        chart.redraw()
        assert len(chart.data(name)[0]) == 12, name
    assert view.memory_chart.data("gpu_memory")[1][0] == pytest.approx(1 + 1 / 1024)  # GiB
    log = view.log.toPlainText()
    assert "Warning: Only 18 training examples: a fake warning." in log
    assert "Data: 18 training and 2 validation examples" in log
    assert "validation loss" in log and "Finished at step 12" in log
    assert view.warnings == ["Only 18 training examples: a fake warning."]
    assert view.progress_bar.value() == 12 and view.progress_bar.maximum() == 12
    assert view.run_paths() == [run_dir] and view.selected_run() == run_dir
    config = runner.calls[0]["config"]
    assert config.model_dir == model_dir and config.output_dir == run_dir and not config.allow_leakage
    assert view.start_button.isEnabled() and view.eval_button.isEnabled()


def test_stop_is_graceful_and_resume_continues(qtbot, make_view, model_dir, train_file):
    runner = FakeRunner(steps=10, hold_at=4)
    view = ready(make_view(runner), model_dir, train_file)
    assert not view.resume_button.isEnabled()
    assert view.start()
    qtbot.waitUntil(runner.reached.is_set, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT) as blocker:
        view.stop_button.click()
        assert view.state == "stopping" and not view.stop_button.isEnabled()
    run_dir = blocker.args[0]
    assert view.state == "finished" and view.last_result.stopped and view.last_result.global_step == 4
    assert "Stopped at step 4" in view.log.toPlainText()
    assert os.path.isdir(os.path.join(run_dir, "checkpoint-4"))
    # Resume continues the same folder from its checkpoint; the chart keeps the earlier points,
    # but not those logged after the checkpoint (as after a crash): they are logged again.
    with open(os.path.join(run_dir, "metrics.jsonl"), "a") as f:
        for step in (5, 6):
            f.write(json.dumps({"type": "train", "step": step, "loss": 9.0}) + "\n")
    assert view.resume_button.isEnabled() and view.resume_target() == run_dir
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT):
        view.resume_button.click()
    assert runner.calls[-1]["resume"] is True and runner.calls[-1]["config"].output_dir == run_dir
    view.loss_chart.redraw()
    xs, ys = view.loss_chart.data("train")
    assert list(xs) == list(range(1, 11)) and 9.0 not in ys


def test_cancel_is_quick_and_saves_no_adapter(qtbot, make_view, model_dir, train_file):
    runner = FakeRunner(steps=10, hold_at=3)
    view = ready(make_view(runner), model_dir, train_file)
    assert view.start()
    qtbot.waitUntil(runner.reached.is_set, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(view.run_cancelled, timeout=RUN_TIMEOUT):
        view.cancel_button.click()
        assert view.state == "cancelling"
    assert view.state == "cancelled" and view.last_result is None
    assert not os.path.exists(os.path.join(view.run_dir, "adapter_config.json"))
    assert "Cancelled" in view.log.toPlainText() and view.start_button.isEnabled()
    view.loss_chart.redraw()
    assert len(view.loss_chart.data("train")[0]) == 3


def test_train_error_is_reported_with_advice_and_the_view_stays_usable(qtbot, make_view, model_dir, train_file):
    runner = FakeRunner(fail=TrainError("The GPU ran out of memory during training.", "Lower batch_size."))
    view = ready(make_view(runner), model_dir, train_file)
    errors = errors_of(view)
    with qtbot.waitSignal(view.run_failed, timeout=RUN_TIMEOUT):
        assert view.start()
    assert view.state == "failed"
    title, message, _details = errors[0]
    assert title == "Training failed"
    assert message == "The GPU ran out of memory during training.\n\nLower batch_size."
    assert "Failed: The GPU ran out of memory" in view.log.toPlainText()
    runner.fail = None
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT):
        assert view.start()


def test_shutdown_cancels_a_running_run(qtbot, make_view, model_dir, train_file):
    runner = FakeRunner(steps=10, hold_at=2)
    view = ready(make_view(runner), model_dir, train_file)
    assert view.start()
    qtbot.waitUntil(runner.reached.is_set, timeout=RUN_TIMEOUT)
    view.shutdown(timeout_ms=RUN_TIMEOUT)
    assert view.state == "cancelled" and not view.is_running()


# -- projects: counts, small-set warning, leakage refusal -----------------------------------------------------


def make_project(tmp_path, n_train=12, leak=True) -> str:
    from ftcurate.core.io.ingest import import_dataset

    train_file = write_jsonl(tmp_path / "ptrain.jsonl", n_train)
    test_file = write_jsonl(tmp_path / "ptest.jsonl", 3, start=100)
    path = str(tmp_path / "proj.ftcurate")
    with Project.open(path, create=True) as p:
        import_dataset(p, str(train_file))
        import_dataset(p, str(test_file), role="test")
        train_ids, test_ids = p.ids(split="train"), p.ids(split="test")
        p.approve(train_ids[:-2])
        hits = [{"index": train_ids[0], "test_index": test_ids[0], "method": "exact", "score": 1.0,
                 "field": "prompt"}] if leak else []
        p.save_scan("quality", {}, {"index": "record_id", "leakage": hits, "validation_leakage": []})
    return path


def test_project_counts_warnings_and_leakage_override(qtbot, make_view, model_dir, tmp_path):
    path = make_project(tmp_path)
    runner = FakeRunner(steps=3)
    view = make_view(runner)
    view.set_model_dir(model_dir)
    errors = errors_of(view)
    with Project.open(path) as project:  # held open for writing, like the main window does
        view.set_project(project, path)
        assert "<b>10</b> approved training records" in view.source_label.text()
        assert "3 test" in view.source_label.text()
        checks = view.checks_label.text()
        assert "Only 10 approved examples" in checks and "Leakage" in checks
        assert view.leak_check.isVisibleTo(view) and not view.leak_check.isChecked()
        # refused without the explicit override
        assert view.start() is False
        assert errors and errors[-1][0] == "Training refused" and not runner.calls
        view.leak_check.setChecked(True)
        with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT) as blocker:
            assert view.start()
        config = runner.calls[0]["config"]
        assert config.allow_leakage is True
        assert len(runner.calls[0]["data"].train) + len(runner.calls[0]["data"].eval) == 10  # approved only
        # project runs live beside the project, in runs/<project name>/
        assert os.path.dirname(blocker.args[0]) == str(tmp_path / "runs" / "proj")
        # resolving the leak removes the warning and the override
        project.reject([project.ids(split="train")[0]])
        view.refresh_checks()
        assert "Leakage" not in view.checks_label.text() and not view.leak_check.isVisibleTo(view)
        view.set_project(None, None)
    assert "No project open" in view.source_label.text() and view.run_paths() == []


# -- past runs ------------------------------------------------------------------------------------------------


def write_run(root: Path, name: str, losses: list, evals: dict) -> str:
    run = root / name
    run.mkdir(parents=True)
    TrainConfig(model_dir="/m", output_dir=str(run), lora_r=4).to_json(str(run / "run_config.json"))
    lines = [json.dumps({"type": "start", "max_steps": len(losses)})]
    for step, loss in enumerate(losses, 1):
        lines.append(json.dumps({"type": "train", "step": step, "loss": loss, "learning_rate": 1e-4}))
        if step in evals:
            lines.append(json.dumps({"type": "eval", "step": step, "eval_loss": evals[step]}))
    lines.append('{"type": "train", "step": 99, "loss"')  # a cut-off last line is skipped
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return str(run)


def test_past_runs_overlay_their_metrics(make_view, home):
    root = home / "runs"
    a = write_run(root, "20240101-100000", [3.0, 2.0, 1.5, 1.2], {2: 2.2, 4: 1.4})
    b = write_run(root, "20240102-100000", [2.5, 2.0, 1.0], {3: 1.1})
    (root / "not-a-run").mkdir()
    os.utime(a, (1, 1))  # a is older
    view = make_view()
    assert view.run_paths() == [b, a]  # newest first; folders without metrics are not runs
    view.set_run_checked(a)
    view.set_run_checked(b)
    chart = view.loss_chart
    assert sorted(chart.overlays()) == ["20240101-100000", "20240102-100000"]
    assert list(chart.data("run:20240101-100000")[0]) == [1, 2, 3, 4]
    assert list(chart.data("run:20240101-100000:eval")[1]) == [2.2, 1.4]
    assert list(chart.data("run:20240102-100000:eval")[0]) == [3]
    chart.smooth_slider.setValue(0)
    assert list(chart.data("run:20240102-100000")[1]) == [2.5, 2.0, 1.0]
    view.set_run_checked(a, False)
    assert chart.overlays() == ["20240102-100000"] and not chart.has_series("run:20240101-100000")
    # the selected run's settings fill the form
    view.select_run(a)
    view.use_selected_run_settings()
    assert view.config().lora_r == 4 and view.output_edit.text() == ""


def test_opening_a_project_shows_its_newest_run(make_view, tmp_path):
    project_path = tmp_path / "work.ftcurate"
    root = tmp_path / "runs" / "work"  # runs_root() of that project
    old = write_run(root, "20240101-100000", [3.0, 2.0], {})
    new = write_run(root, "20240102-100000", [2.5, 1.0], {2: 1.1})
    os.utime(old, (1, 1))
    view = make_view()
    assert view.loss_chart.overlays() == []
    view.set_project(None, str(project_path))
    assert view.checked_runs() == [new] and view.selected_run() == new
    assert view.loss_chart.overlays() == ["20240102-100000"]
    # the small charts show the selected run's learning rate (write_run logs 1e-4 a step)
    assert list(view.lr_chart.data("lr")[1]) == [1e-4, 1e-4]
    view.select_run(old)
    assert len(view.lr_chart.data("lr")[1]) == 2 and list(view.lr_chart.data("lr")[0]) == [1, 2]
    view.set_run_checked(new, False)
    view.set_project(None, str(project_path))  # the same project again: the user's choice stays
    assert view.checked_runs() == []


# -- evaluation -----------------------------------------------------------------------------------------------


def _two_systems(tuned_answer: str = "It is 4.", status: str = "complete") -> dict:
    """A comparison report of base and tuned on one golden item (compare()'s shape)."""
    def system(kind, loss, exact):
        return {"kind": kind, "n": 1, "metrics": {"exact": {"mean": exact, "ci95": [exact, exact], "n": 1},
                                                  "loss": {"mean": loss, "ci95": [loss, loss], "n": 1}}}
    outputs = {"base": "banana", "tuned": tuned_answer}
    return {"status": status, "metrics": ["exact", "loss"], "headline": "exact", "clean_only": None, "leaked": [],
            "systems": {"base": system("base", 2.0, 0.0), "tuned": system("tuned", 1.0, 1.0)},
            "examples": [{"index": 0, "source": "heldout.jsonl", "prompt": "What is 2 plus 2?",
                          "reference": "It is 4.", "leaked": False, "outputs": outputs,
                          "scores": {n: {"exact": None if o is None else float(o == "It is 4.")}
                                     for n, o in outputs.items()}}],
            "verdict": ["The tuned model beats the base model by +100 points of exact match (95% CI +100 to +100)."]}


def fake_evaluator(calls):
    def compare(model_dir, golden, adapters=(), raw_adapter=None, settings=None, progress=None, cancel=None,
                on_partial=None, project_path=None):
        calls.append({"model_dir": model_dir, "data": golden, "adapter_dir": adapters[0], "settings": settings,
                      "project_path": project_path})
        progress(1, 2, "base: loss")
        on_partial(_two_systems(None, "running"))
        return _two_systems()
    return compare


def test_evaluate_shows_and_saves_the_report_and_merge_runs(qtbot, make_view, model_dir, train_file, tmp_path):
    calls: list = []
    view = ready(make_view(FakeRunner(steps=3), fake_evaluator(calls)), model_dir, train_file)
    errors = errors_of(view)
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT) as blocker:
        view.start()
    run_dir = blocker.args[0]
    assert view.eval_button.isEnabled()
    heldout = write_jsonl(tmp_path / "heldout.jsonl", 4, start=50)
    view.set_heldout_file(str(heldout))
    view.limit_spin.setValue(3)
    with qtbot.waitSignal(view.evaluation_finished, timeout=RUN_TIMEOUT):
        view.eval_button.click()
    assert not errors
    assert calls[0]["adapter_dir"] == run_dir and calls[0]["model_dir"] == model_dir
    assert calls[0]["data"] == str(heldout) and calls[0]["settings"].limit == 3
    assert view.metrics_table.item(0, 1).text() == "0.0%" and view.metrics_table.item(1, 1).text() == "100.0%"
    assert view.metrics_table.item(0, 2).text() == "2.0000" and view.metrics_table.item(1, 2).text() == "1.0000"
    assert view.gen_table.rowCount() == 1
    assert [view.gen_table.item(0, c).text() for c in range(4)] == ["0", "It is 4.", "✗  banana", "✓  It is 4."]
    saved = json.loads(Path(run_dir, "eval_report.json").read_text())
    assert saved["systems"]["tuned"]["metrics"]["loss"]["mean"] == 1.0 and Path(run_dir, "eval_report.md").is_file()
    assert "evaluated" in view.runs_list.item(0).text()

    merged = []
    view.merger = lambda model, adapter, out: merged.append((model, adapter, out)) or out
    with qtbot.waitSignal(view.merge_finished, timeout=RUN_TIMEOUT):
        assert view.merge_to(str(tmp_path / "merged"))
    assert merged == [(model_dir, run_dir, str(tmp_path / "merged"))]


def test_evaluate_on_the_project_test_split(qtbot, make_view, model_dir, tmp_path):
    path = make_project(tmp_path, leak=False)
    calls: list = []
    view = make_view(FakeRunner(steps=2), fake_evaluator(calls))
    view.set_model_dir(model_dir)
    view.set_project(None, path)
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT):
        view.start()
    view.eval_source_combo.setCurrentIndex(0)  # project test split
    with qtbot.waitSignal(view.evaluation_finished, timeout=RUN_TIMEOUT):
        assert view.evaluate_run()
    # the golden set is the project's test split (compare() reads it, with the leak check)
    assert calls[0]["data"] == path and calls[0]["settings"].golden_split == "test"
    assert calls[0]["project_path"] == path


# -- screenshot ---------------------------------------------------------------------------------------------------


def test_screenshot_after_a_run(qtbot, make_view, model_dir, home):
    root = home / "runs"
    old = write_run(root, "20240101-100000", [3.2, 2.6, 2.2, 1.9, 1.7, 1.6, 1.5, 1.45, 1.4, 1.38, 1.36, 1.35],
                    {5: 1.9, 10: 1.6})
    data = write_jsonl(home.parent / "d.jsonl", 20)
    view = ready(make_view(FakeRunner(steps=40)), model_dir, str(data))
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT):
        view.start()
    view.set_run_checked(old)
    for chart in (view.loss_chart, view.lr_chart, view.throughput_chart, view.memory_chart):
        chart.redraw()
    out = os.environ.get("FTCURATE_TRAIN_SCREENSHOT", str(home.parent / "train_view.png"))
    assert view.grab().save(out)
    assert os.path.getsize(out) > 10_000


# -- the real engine ----------------------------------------------------------------------------------------------


def test_real_engine_demo_model_short_run_and_evaluation(qtbot, home, tmp_path):
    """Demo model from the button, five real optimiser steps on the CPU, live chart points,
    then base-vs-tuned evaluation on a held-out file and a merge - all through the view."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    view = TrainingView(settings=settings, interactive=False)  # the real runner and evaluator
    qtbot.addWidget(view)
    view.show()
    errors = errors_of(view)
    try:
        with qtbot.waitSignal(view.demo_ready, timeout=180_000) as blocker:
            view.demo_button.click()
        demo = blocker.args[0]
        assert demo == str(home / "demo-model") and view.model_edit.text() == demo
        assert "demo model" in view.model_status.text()
        qtbot.waitUntil(lambda: train_settings._DEVICE is not None, timeout=60_000)  # detected in a worker
        view.refresh_checks()
        assert view.estimate is not None

        view.set_train_file(str(write_jsonl(tmp_path / "train.jsonl", 24)))
        for name, value in (("max_steps", 5), ("eval_steps", 5), ("save_steps", 5), ("max_seq_len", 128),
                            ("batch_size", 4), ("logging_steps", 1), ("learning_rate", 1e-2)):
            view.field_widgets[name].setValue(value)
        with qtbot.waitSignal(view.run_finished, timeout=180_000) as blocker:
            assert view.start()
        assert not errors, errors
        run_dir = blocker.args[0]
        assert view.last_result.global_step == 5
        view.loss_chart.redraw()
        assert list(view.loss_chart.data("train")[0]) == [1, 2, 3, 4, 5]
        assert len(view.loss_chart.data("eval")[0]) >= 1
        view.lr_chart.redraw()
        assert len(view.lr_chart.data("lr")[0]) == 5
        assert any(e.get("type") == "start" for e in view.events)
        assert "Warning:" in view.log.toPlainText()  # CPU, demo model, tiny data set
        for name in ("run_config.json", "metrics.jsonl", "adapter_config.json"):
            assert os.path.isfile(os.path.join(run_dir, name)), name
        assert view.run_paths()[0] == run_dir

        view.set_heldout_file(str(write_jsonl(tmp_path / "heldout.jsonl", 3, start=50)))
        view.max_new_spin.setValue(4)
        view.eval_panel.fewshot_check.setChecked(False)  # a file of 24 records: few-shot tested elsewhere
        partials: list = []
        view.eval_panel.partial_shown.connect(partials.append)
        with qtbot.waitSignal(view.evaluation_finished, timeout=180_000) as blocker:
            assert view.evaluate_run()
        report = blocker.args[0]
        # the results came as they were computed: each system's loss, then its answers
        assert [p["systems"]["tuned"]["n"] for p in partials] == [0, 0, 0, 3]
        loss = {n: s["metrics"]["loss"]["mean"] for n, s in report["systems"].items()}
        assert loss["base"] > loss["tuned"] > 0
        assert view.gen_table.rowCount() == 3
        assert os.path.isfile(os.path.join(run_dir, "eval_report.json"))

        merged = str(tmp_path / "merged")
        with qtbot.waitSignal(view.merge_finished, timeout=180_000):
            assert view.merge_to(merged)
        assert os.path.isfile(os.path.join(merged, "config.json"))
        assert not errors, errors
    finally:
        view.shutdown()


# -- issue 10, item 15: what the view says ------------------------------------------------------------------


def test_an_open_project_is_not_called_no_project(make_view, tmp_path):
    path = make_project(tmp_path, leak=False)
    view = make_view()
    assert "no project" in view.train_file_edit.placeholderText() or "without a project" in \
        view.train_file_edit.placeholderText()
    view.set_project(None, path)
    texts = [view.train_file_edit.placeholderText(), view.source_label.text(), view.checks_label.text()]
    assert not any("no project open" in t.lower() for t in texts), texts
    assert "a project is open" in view.train_file_edit.placeholderText()
    assert not view.train_file_edit.isEnabled()
    view.set_project(None, None)
    assert "without a project" in view.train_file_edit.placeholderText()


def test_a_stopped_run_does_not_read_done(qtbot, make_view, model_dir, train_file):
    runner = FakeRunner(steps=10, hold_at=4)
    view = ready(make_view(runner), model_dir, train_file)
    view.start_button.setFocus()
    qtbot.keyClick(view.start_button, Qt.Key.Key_Space)  # the keyboard starts the run
    qtbot.waitUntil(runner.reached.is_set, timeout=RUN_TIMEOUT)
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT):
        qtbot.keyClick(view.stop_button, Qt.Key.Key_Space)
    assert view.last_result.stopped
    assert "done" not in view.eta_label.text() and "finished" not in view.eta_label.text()
    assert view.eta_label.text().startswith("stopped at step 4 of 10")
    assert "stopped" in view.state_label.text() and "finished" not in view.state_label.text()
    assert "stopped" in view.progress_bar.text()
    assert "stopped" in view.runs_list.item(0).text()  # the past run says so too
    # a run that goes to its end says "finished"
    runner.hold_at = None
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT):
        qtbot.keyClick(view.start_button, Qt.Key.Key_Space)
    assert view.eta_label.text().startswith("finished in")


def test_the_gpu_chart_says_why_it_is_empty_on_the_cpu(qtbot, make_view, model_dir, train_file):
    class CpuRunner(FakeRunner):  # the real runner on a CPU: no GPU memory in the metrics
        def __call__(self, config, data, on_event=None, **kw):
            def no_gpu(event):
                event = {k: v for k, v in event.items() if k != "gpu_memory_bytes"}
                on_event(event)
            return super().__call__(config, data, on_event=no_gpu, **kw)

    view = ready(make_view(CpuRunner(steps=3)), model_dir, train_file)
    chart = view.memory_chart
    assert "No GPU" in chart.note_text() and not chart.plot.isVisibleTo(view)  # the CPU was detected
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT):
        view.start_button.setFocus()
        qtbot.keyClick(view.start_button, Qt.Key.Key_Space)
    assert "CPU" in chart.note_text() and chart.note.isVisibleTo(view)
    assert len(view.lr_chart.raw("lr")[0]) == 3  # the other charts plot as usual
    # a run with GPU memory points shows the chart
    view.runs_panel.set_default_device("cuda")
    view.runs_panel.reset_live()
    view.runs_panel.plot_event({"type": "start", "device": "cuda"})
    view.runs_panel.plot_event({"type": "train", "step": 1, "loss": 1.0, "gpu_memory_bytes": 1 << 30})
    assert chart.note_text() == "" and chart.plot.isVisibleTo(view)


def test_small_charts_keep_their_step_labels_apart(qtbot, make_view):
    from ftcurate.gui.charts import StepAxis

    view = make_view()
    view.resize(1024, 600)
    for step in range(1, 401):
        view.lr_chart.add_point("lr", step, 1e-4)
    view.lr_chart.redraw()
    axis = view.lr_chart.plot.getPlotItem().getAxis("bottom")
    assert isinstance(axis, StepAxis)
    width = axis.geometry().width()
    lo, hi = view.lr_chart.plot.getPlotItem().viewRange()[0]
    levels = axis.tickValues(lo, hi, width)
    labelled = levels[0][1]
    texts = axis.tickStrings(labelled, 1.0, 1.0)
    assert len(labelled) >= 2
    assert sum(view.fontMetrics().horizontalAdvance(t) + StepAxis.GAP for t in texts) <= width  # apart
    assert all(float(v).is_integer() for v in labelled)  # whole steps only


def test_a_long_evaluation_shows_results_as_they_come(qtbot, make_view, model_dir, train_file, tmp_path):
    gate = threading.Event()

    def slow_evaluator(model_dir, golden, adapters=(), raw_adapter=None, settings=None, progress=None, cancel=None,
                       on_partial=None, project_path=None):
        progress(1, 6, "base: answering")
        on_partial(_two_systems(None, "running"))
        gate.wait(RUN_TIMEOUT / 1000)  # the test looks at the view meanwhile
        return _two_systems()

    view = ready(make_view(FakeRunner(steps=2), slow_evaluator), model_dir, train_file)
    with qtbot.waitSignal(view.run_finished, timeout=RUN_TIMEOUT):
        view.start()
    view.set_heldout_file(str(write_jsonl(tmp_path / "heldout.jsonl", 3, start=50)))
    view.tabs.setCurrentIndex(1)
    view.eval_button.setFocus()
    try:
        qtbot.keyClick(view.eval_button, Qt.Key.Key_Space)
        # while it runs: the base answer is on show, the tuned one pending
        qtbot.waitUntil(lambda: view.gen_table.rowCount() == 1, timeout=RUN_TIMEOUT)
        assert view.metrics_table.item(0, 2).text() == "2.0000"
        assert view.gen_table.item(0, 2).text() == "✗  banana"
        assert view.gen_table.item(0, 3).text() == "(generating…)"
        status = view.eval_panel.eval_status.text()
        assert "Evaluating" in status and "base: answering" in status
    finally:
        gate.set()
    qtbot.waitUntil(lambda: view.eval_panel._eval_worker is None, timeout=RUN_TIMEOUT)
    assert view.gen_table.item(0, 3).text() == "✓  It is 4." and "Saved" in view.eval_panel.eval_status.text()
