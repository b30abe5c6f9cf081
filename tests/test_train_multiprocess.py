"""Issue 15 C: the same training as two processes (torchrun, DDP over gloo on the CPU).

Real runs of the demo model, a handful of steps each: two launches of two processes (each
imports torch and transformers: the slowest part) and one in-process reference run, in one
test. What is checked:

* **the same loss curve**: two processes at batch 2 each give the losses of one process at
  batch 4 (same seed, same data order: the Trainer deals consecutive slices of each global
  batch to the ranks), within a relative tolerance of ``LOSS_RTOL`` = 1e-4 per step (measured:
  ~1e-7; summing in another order is all that differs). LoRA dropout is 0 for the
  comparison: with dropout the ranks draw other masks than one process would, and the
  curves agree only statistically;
* **a rank that dies** (``ftcurate train --devices 2``; rank 1 kills itself with SIGKILL at
  the end of step 3): the other is stopped, the run is marked failed, the newest complete
  checkpoint is kept;
* **the Training tab resumes it** (pytest-qt, offscreen, driven with keys): the failed run
  is listed as failed, its settings (two processes) fill the form, Resume continues from
  the checkpoint on two processes followed through metrics.jsonl, Stop ends it gracefully
  - and the curve over both launches is the one-process curve.
"""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from ftcurate.cli import main  # noqa: E402
from ftcurate.core.project.records import Message, Record  # noqa: E402
from ftcurate.train import TrainConfig, create_demo_model, load_data, read_metrics, train  # noqa: E402
from ftcurate.train.distributed import FAULT_ENV  # noqa: E402
from ftcurate.train.launch import LOG_FILE  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="gloo launch tested on POSIX")]

LOSS_RTOL = 1e-4
# max_steps is far beyond what runs (the runs are stopped): the learning-rate schedule is the same for all
SETTINGS = dict(learning_rate=1e-2, max_seq_len=64, lora_r=4, lora_dropout=0.0, eval_steps=0, warmup_ratio=0.0,
                early_stopping_patience=0, save_steps=2, max_steps=200, logging_steps=1)
REFERENCE_STEPS = 8


def chat(i: int) -> Record:
    return Record([Message("user", f"What is {i} plus {i}?"), Message("assistant", f"It is {2 * i}.")])


def losses(run_dir: str) -> dict:
    return {e["step"]: e["loss"] for e in read_metrics(run_dir) if e.get("type") == "train"}


def test_two_processes_train_like_one_a_dead_rank_fails_the_run_and_the_app_resumes_it(qtbot, tmp_path, monkeypatch,
                                                                                       capsys):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QSettings, QStandardPaths, Qt

    from ftcurate.gui import train_settings
    from ftcurate.gui.train_common import runs_root
    from ftcurate.gui.train_view import TrainingView

    monkeypatch.setenv("FTCURATE_HOME", str(tmp_path / "home"))
    QStandardPaths.setTestModeEnabled(True)

    demo = create_demo_model(str(tmp_path / "models" / "demo"), vocab_size=512)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_file = str(data_dir / "train.jsonl")
    with open(data_file, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(chat(i).content_dict()) + "\n" for i in range(64))

    # one process, batch 4: the reference curve (stopped after REFERENCE_STEPS steps)
    one = str(tmp_path / "one")
    done: list = []
    train(TrainConfig(model_dir=demo, output_dir=one, batch_size=4, **SETTINGS), load_data(data_file, val_fraction=0.1),
          progress=lambda d, t, m: done.append(d) if t else None, stop=lambda: len(done) > REFERENCE_STEPS)
    reference = losses(one)
    assert sorted(reference)[:REFERENCE_STEPS] == list(range(1, REFERENCE_STEPS + 1))

    # two processes, batch 2 each (in the app's runs folder); rank 1 dies at the end of step 3
    config = str(tmp_path / "settings.json")
    TrainConfig(model_dir=demo, output_dir="", batch_size=2, **SETTINGS).to_json(config)
    run = os.path.join(runs_root(None), "two")
    args = ["train", "--config", config, "--data", data_file, "--output", run, "--val-fraction", "0.1",
            "--devices", "2", "--json"]
    monkeypatch.setenv(FAULT_ENV, "1:3")
    assert main(args) == 2
    error = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert error["error"] == "rank_failed"
    assert "rank 1 of 2 was killed (SIGKILL)" in error["message"] and "checkpoint-2" in error["message"]
    failed = read_metrics(run)[-1]
    assert failed["type"] == "failed" and failed["rank"] == 1 and failed["checkpoint"] == "checkpoint-2"
    assert os.path.isfile(os.path.join(run, "checkpoint-2", "trainer_state.json"))
    assert not os.path.exists(os.path.join(run, "adapter_model.safetensors"))
    with open(os.path.join(run, LOG_FILE), encoding="utf-8") as f:
        log = f.read()
    for pid in map(int, re.findall(r"Sending process (\d+) closing signal", log)):  # the other rank was ended
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with open(os.path.join(run, "run_config.json"), encoding="utf-8") as f:
        saved = json.load(f)
    assert (saved["world_size"], saved["strategy"]) == (2, "ddp")
    monkeypatch.delenv(FAULT_ENV)

    # the app: the failed run is listed, its settings fill the form, Resume runs it on two processes again
    monkeypatch.setattr(train_settings, "_DEVICE", ("cpu", None))
    monkeypatch.setattr(train_settings, "_DEVICE_COUNT", 2)
    view = TrainingView(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), interactive=False)
    qtbot.addWidget(view)
    view.resize(1400, 900)
    view.show()
    qtbot.waitExposed(view)
    errors: list = []
    view.error_reported.connect(lambda *a: errors.append(a))
    try:
        view.set_train_file(data_file)
        assert view.run_paths() == [run] and "failed" in view.runs_list.item(0).text()
        view.runs_list.setFocus()
        qtbot.keyClick(view.runs_list, Qt.Key.Key_Home)
        assert view.selected_run() == run
        view.runs_panel.use_settings_button.setFocus()
        qtbot.keyClick(view.runs_panel.use_settings_button, Qt.Key.Key_Space)
        processes = view.field_widgets["world_size"]
        assert processes.value() == 2 and view.config().batch_size == 2 and view.model_edit.text() == demo
        assert processes.toolTip().startswith(TrainConfig.help_text("world_size")[:40])
        view.refresh_checks()
        assert "2 CPU processes" in view.device_label.text()
        assert view.resume_button.isEnabled()
        view.resume_button.setFocus()
        qtbot.keyClick(view.resume_button, Qt.Key.Key_Space)
        assert view.state == "running", errors
        # the chart follows metrics.jsonl as rank 0 writes it: wait for a few steps after the checkpoint
        qtbot.waitUntil(lambda: max(view.loss_chart.data("train")[0], default=0) >= 5 or view.state != "running",
                        timeout=180_000)
        assert view.state == "running", errors
        started = next(e for e in view.events if e.get("type") == "start")
        assert started["world_size"] == 2 and started["resumed_from"].endswith("checkpoint-2")
        assert "× 2 processes" in view.log.toPlainText()
        with qtbot.waitSignal(view.run_finished, timeout=180_000):
            qtbot.keyClick(view.stop_button, Qt.Key.Key_Space)
        assert not errors, errors
        result = view.last_result
        assert result.stopped and result.world_size == 2 and 5 <= result.global_step < SETTINGS["max_steps"]
        assert os.path.isfile(os.path.join(run, "adapter_model.safetensors"))
        assert os.path.isdir(os.path.join(run, f"checkpoint-{result.global_step}"))
        assert "stopped" in view.runs_list.item(0).text()  # no longer failed
    finally:
        view.shutdown()

    # the curve over both launches is the one-process curve
    curve = losses(run)
    common = sorted(set(curve) & set(reference))
    assert common[:5] == [1, 2, 3, 4, 5], (curve, reference)
    for step in common:
        assert curve[step] == pytest.approx(reference[step], rel=LOSS_RTOL), (step, curve, reference)
