"""Issue 15 C, the launching side of a multi-process run (ftcurate.train.launch) and the
rank helpers (ftcurate.train.distributed), without torch in the child: the child processes
here are a small script that behaves as rank 0 of ``ftcurate train --json`` does (JSON
events on stdout, metrics.jsonl, checkpoints, torchrun's failure summary on stderr). The
real two-process runs are in test_train_multiprocess.py.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time

import pytest

from ftcurate.core.progress import Cancelled
from ftcurate.train import distributed
from ftcurate.train.config import TrainConfig
from ftcurate.train.errors import LeakageError, TrainError
from ftcurate.train.launch import (LOG_FILE, MetricsFollower, child_command, failure_from_log,
                                   train_processes)
from ftcurate.train.runner import read_metrics

# What torchrun printed for a rank killed during a run (torch 2.13), trimmed.
TORCHRUN_SUMMARY = """\
W1203 14:33:37.927000 8261 torch/distributed/elastic/multiprocessing/api.py:1028] Sending process 8267 closing signal SIGTERM
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
ftcurate.cli FAILED
------------------------------------------------------------
Failures:
[1]:
  time      : 2026-12-03_14:34:40
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 8683)  (SIGTERM)
  error_file: <N/A>
  traceback : Signal 15 (SIGTERM) received by PID 8683
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-03_14:34:40
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 8684)  (SIGKILL)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 8684
============================================================
"""

# A stand-in for `torchrun ... ftcurate train --json`: argv[1] says what to do, argv[2] is the
# config file the launcher wrote (its output_dir is the run folder).
FAKE_CHILD = textwrap.dedent('''
    import json, os, select, signal, sys
    mode, config_file = sys.argv[1], sys.argv[2]
    out = json.load(open(config_file))["output_dir"]
    metrics = os.path.join(out, "metrics.jsonl")

    def say(event):
        print(json.dumps(event), flush=True)

    def log(step, loss):
        with open(metrics, "a") as f:
            f.write(json.dumps({"type": "train", "step": step, "loss": loss, "learning_rate": 0.1,
                                "max_steps": 6}) + "\\n")

    def checkpoint(step, complete=True):
        d = os.path.join(out, f"checkpoint-{step}")
        os.makedirs(d)
        names = ["adapter_config.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt"]
        for name in names + (["trainer_state.json"] if complete else []):
            with open(os.path.join(d, name), "w") as f:
                f.write(json.dumps({"global_step": step}) if name == "trainer_state.json" else "x")

    def end(step, stopped=False):
        with open(metrics, "a") as f:
            f.write(json.dumps({"type": "end", "step": step, "stopped": stopped}) + "\\n")
        say({"type": "end", "output_dir": out, "adapter_dir": out, "global_step": step, "max_steps": 6,
             "stopped": stopped, "world_size": 2, "device": "cpu", "final_loss": 1.0 / step})

    if mode == "refuse":
        say({"error": "bad_model", "message": "Cannot load the model from m: broken."})
        sys.exit(2)
    if mode == "leak":
        say({"error": "leakage", "message": "Training refused: 1 training record(s) leak test records.",
             "leaks": [{"record": 3, "source": "train.jsonl", "test_record": 0, "kind": "test"}]})
        sys.exit(1)
    say({"type": "warning", "message": "Training on the CPU"})
    say({"type": "start", "max_steps": 6, "world_size": 2, "device": "cpu", "resumed_from": None})
    for step in range(1, 7):
        log(step, 1.0 / step)
        if mode == "stop" and os.path.exists(os.path.join(out, "control")):
            os.unlink(os.path.join(out, "control"))
            checkpoint(step)
            end(step, stopped=True)
            sys.exit(0)
        if mode == "crash" and step == 2:
            checkpoint(2)
        if mode == "crash" and step == 3:
            checkpoint(3, complete=False)  # killed while saving
            sys.stderr.write(open(os.environ["FAKE_SUMMARY"]).read())
            sys.exit(1)
        if mode == "hang":
            signal.pause()  # a rank that never finishes: only the launcher's kill ends it
        if mode == "stop":  # a rank at work until the stop request (the control file) arrives
            while not os.path.exists(os.path.join(out, "control")):
                select.select([], [], [], 0.02)
    end(6)
''')


@pytest.fixture
def fake(tmp_path, monkeypatch):
    script = tmp_path / "fake_child.py"
    script.write_text(FAKE_CHILD)
    summary = tmp_path / "summary.txt"
    summary.write_text(TORCHRUN_SUMMARY)
    monkeypatch.setenv("FAKE_SUMMARY", str(summary))

    def run(mode: str, **kw):
        config = TrainConfig(model_dir=str(tmp_path / "model"), output_dir=str(tmp_path / "run"), world_size=2)
        events, steps = [], []

        def command(world_size, config_file, *rest):
            return [sys.executable, str(script), mode, config_file]

        result = train_processes(config, str(tmp_path / "data.jsonl"), device="cpu", command=command,
                                 on_event=events.append, progress=lambda d, t, m: steps.append((d, t)), **kw)
        return result, events, steps

    run.out = str(tmp_path / "run")
    return run


def test_a_run_is_followed_through_its_metrics_file(fake):
    result, events, steps = fake("run")
    assert result.global_step == 6 and result.world_size == 2 and not result.stopped
    kinds = [e["type"] for e in events]
    # the losses come from metrics.jsonl, in order, between the start and the end
    assert kinds == ["warning", "start"] + ["train"] * 6 + ["end"]
    assert [e["step"] for e in events if e["type"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert steps[-1] == (6, 6)
    with open(os.path.join(fake.out, LOG_FILE)) as f:
        assert "2 processes" in f.read()  # each launch is logged


def test_stop_asks_the_ranks_through_the_control_file(fake):
    asked = threading.Event()
    result, events, _ = fake("stop", stop=lambda: asked.is_set() or bool(asked.set()))
    assert result.stopped and result.global_step < 6
    assert os.path.isdir(os.path.join(fake.out, f"checkpoint-{result.global_step}"))
    assert not os.path.exists(os.path.join(fake.out, distributed.CONTROL_FILE))


def test_cancel_ends_the_processes_at_once(fake):
    t0 = time.monotonic()
    with pytest.raises(Cancelled):  # cancelled once the run has logged a step; the child would run a minute
        fake("hang", cancel=lambda: bool(read_metrics(fake.out)))
    assert time.monotonic() - t0 < 20
    assert [e["type"] for e in read_metrics(fake.out)][-1] == "train"  # not marked failed: cancelled


def test_a_failed_rank_marks_the_run_failed_and_keeps_the_last_complete_checkpoint(fake):
    with pytest.raises(TrainError) as info:
        fake("crash")
    err = info.value
    assert err.key == "rank_failed"
    assert "rank 1 of 2 was killed (SIGKILL)" in err.message and "other processes were stopped" in err.message
    assert "checkpoint-2" in err.advice and LOG_FILE in err.advice
    last = read_metrics(fake.out)[-1]
    assert last["type"] == "failed" and last["rank"] == 1 and last["checkpoint"] == "checkpoint-2"
    assert last["step"] == 3  # after the last logged step
    from ftcurate.gui.train_runs import run_outcome  # noqa: PLC0415 - the runs list says so

    assert run_outcome(read_metrics(fake.out)) == "failed"


def test_a_refusal_before_training_is_the_rank_s_own_message(fake):
    with pytest.raises(TrainError) as info:
        fake("refuse")
    assert info.value.message == "Cannot load the model from m: broken." and info.value.key == "bad_model"
    assert not os.path.exists(os.path.join(fake.out, "metrics.jsonl"))  # nothing marked: nothing started
    with pytest.raises(LeakageError) as leak:
        fake("leak")
    assert leak.value.leaks[0]["record"] == 3


def test_metrics_follower_waits_for_whole_lines_and_skips_the_resumed_history(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"type": "train", "step": 2, "loss": 1.0}) + "\n")
    f = MetricsFollower(str(path), after_step=2)
    assert f.read() == []  # history of a resumed run: already shown
    with open(path, "a") as out:
        out.write(json.dumps({"type": "train", "step": 3, "loss": 0.5}) + "\n" + '{"type": "eval", "st')
    assert [e["step"] for e in f.read()] == [3]
    with open(path, "a") as out:
        out.write('ep": 3, "eval_loss": 0.7}\n')
    assert f.read() == [{"type": "eval", "step": 3, "eval_loss": 0.7}]
    path.write_text(json.dumps({"type": "train", "step": 3, "loss": 0.5}) + "\n")  # rewritten shorter
    assert f.read() == []  # nothing twice


def test_failure_summary_names_the_rank_and_what_it_said():
    text = TORCHRUN_SUMMARY + "[rank1]: ftcurate train: The machine ran out of memory during training.\n"
    info = failure_from_log(text)
    assert (info["rank"], info["exit_code"], info["signal"]) == (1, -9, "SIGKILL")
    assert info["said"] == "The machine ran out of memory during training."
    assert failure_from_log("nothing useful") == {"rank": None, "exit_code": None, "signal": None, "said": None}


def test_child_command_uses_this_interpreter_s_torchrun():
    cmd = child_command(2, "c.json", "/d/data.jsonl", None, 0.1, True, False, False)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=2" in cmd and "--max_restarts=0" in cmd
    assert cmd[cmd.index("-m", 3):][:4] == ["-m", "ftcurate.cli", "train", "--json"]
    assert "--resume" in cmd and "--trust-remote-code" not in cmd


# -- settings and the rank helpers ---------------------------------------------------------------------


def test_world_size_and_strategy_are_settings(tmp_path):
    config = TrainConfig(model_dir="m", output_dir="o", world_size=0, strategy="zero")
    problems = " ".join(config.problems())
    assert "world_size" in problems and "unknown strategy 'zero'" in problems
    path = str(tmp_path / "run_config.json")
    TrainConfig(model_dir="m", output_dir="o", world_size=4, strategy="fsdp").to_json(path)
    again = TrainConfig.from_json(path)
    assert (again.world_size, again.strategy) == (4, "fsdp")
    with open(path) as f:
        assert json.load(f)["world_size"] == 4


def test_fsdp_needs_gpus_and_several_gpus_are_counted(monkeypatch):
    config = TrainConfig(model_dir="m", output_dir="o", world_size=2, strategy="fsdp")
    assert "NVIDIA GPUs" in distributed.strategy_problem(config, "cpu")
    assert distributed.strategy_problem(config, "cuda") == ""
    config.method = "qlora"
    assert "QLoRA" in distributed.strategy_problem(config, "cuda")
    with pytest.raises(TrainError, match="FSDP"):
        train_processes(TrainConfig(model_dir="m", output_dir="o", world_size=2, strategy="fsdp"), "d",
                        device="cpu", command=lambda *a: pytest.fail("launched"))
    from ftcurate.train import launch

    monkeypatch.setattr(launch, "device_count", lambda device: 2)
    with pytest.raises(TrainError, match="4 processes asked for, but this machine has 2 GPUs"):
        train_processes(TrainConfig(model_dir="m", output_dir="o", world_size=4), "d", device="cuda",
                        command=lambda *a: pytest.fail("launched"))


def test_trainer_settings_for_several_processes(monkeypatch):
    params = {"ddp_find_unused_parameters": None, "fsdp": None, "fsdp_config": None}
    config = TrainConfig(model_dir="m", output_dir="o", world_size=2)
    assert distributed.training_arguments(config, params) == {}  # one process: nothing changes
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.training_arguments(config, params) == {"ddp_find_unused_parameters": False}
    config.strategy = "fsdp"
    kw = distributed.training_arguments(config, params)
    assert kw["fsdp"] and kw["fsdp_config"]["state_dict_type"] == "FULL_STATE_DICT"


def test_rank_control_stop_and_cancel_requests(tmp_path, monkeypatch):
    """One process: the request is its own (several: the largest over the ranks, see
    test_train_multiprocess). A stop request is answered once: a resume starts clean."""
    out = str(tmp_path)
    control = distributed.RankControl(out)
    assert control() is False
    distributed.request_stop(out)
    assert control() is True
    assert not os.path.exists(os.path.join(out, distributed.CONTROL_FILE))
    distributed.request_stop(out, "cancel")
    with pytest.raises(Cancelled):
        control()
    flags = {"stop": False, "cancel": False}
    control = distributed.RankControl(out, flags)
    distributed.clear_control(out)
    flags["stop"] = True  # Ctrl-C in the rank's terminal
    assert control() is True
    monkeypatch.setenv("RANK", "1")
    assert not distributed.is_main_process()


def test_resuming_on_another_number_of_processes_says_what_happens_to_the_batch(tmp_path, monkeypatch):
    out = str(tmp_path)
    TrainConfig(model_dir="m", output_dir=".", batch_size=2, world_size=2).to_json(str(tmp_path / "run_config.json"))
    one = TrainConfig(model_dir="m", output_dir=out, batch_size=2)
    note = distributed.resume_note(out, one)  # this process: one
    assert "trained on 2 processes and resumes on 1" in note and "from 4 to 2" in note
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.resume_note(out, one) == ""
    assert distributed.resume_note(str(tmp_path / "none"), one) == ""


def test_ranks_cancel_themselves_when_the_launching_program_is_gone(tmp_path, monkeypatch):
    import subprocess

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    control = distributed.RankControl(str(tmp_path))
    monkeypatch.setenv(distributed.LAUNCHER_ENV, str(os.getpid()))
    assert distributed.launcher_alive() and control() is False
    monkeypatch.setenv(distributed.LAUNCHER_ENV, str(gone.pid))
    assert not distributed.launcher_alive()
    with pytest.raises(Cancelled):  # nobody follows the run any more: all ranks cancel at this step
        control()
