"""Training on several devices of this machine: the run as N child processes.

:func:`train_processes` starts ``python -m torch.distributed.run --nproc_per_node N -m
ftcurate.cli train --json ...`` (torchrun from the interpreter that runs ftcurate, never a
``torchrun`` found on PATH) and follows it with the same callbacks as
:func:`ftcurate.train.train`, so ``ftcurate train --devices N`` and the app's Training tab
use it like the in-process runner:

* **events**: rank 0 prints its events as JSON lines (start, warnings, end, errors); the
  training and validation losses are read from the run's ``metrics.jsonl`` as rank 0 appends
  them (the live charts follow the file), with ``progress(step, max_steps, message)``;
* **stop** (``stop()`` -> True): ``stop`` is written into ``<output>/control``; the ranks
  agree on it at the end of the current step, save a checkpoint and the adapter, and end
  (the result has ``stopped=True``);
* **cancel** (``cancel()`` -> True): the processes are ended at once (SIGTERM to their
  process group, SIGKILL if they linger): no adapter is saved, the complete checkpoints
  stay (a torn one is skipped by a resume) - :class:`~ftcurate.core.progress.Cancelled`;
* **a rank that fails** (a crash, a kill, out of memory on one GPU): torchrun ends the
  others; the run is marked failed at the end of its ``metrics.jsonl`` (a ``"failed"``
  line naming the rank and the newest complete checkpoint, which is kept) and
  :class:`TrainError` says so, with what the failing rank said. Resume continues from that
  checkpoint;
* the children's output goes to ``<output>/train.log`` (appended by each launch).

The processes run in a session of their own, so Ctrl-C in a terminal reaches only the
launching program, which turns it into stop or cancel (SIGTERM: cancel). Should the launching
program die without cancelling, the ranks notice at the end of their step and cancel
themselves (``FTCURATE_LAUNCHER_PID``).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import fields, replace
from typing import Callable, Optional

from ..core.progress import Cancelled, CancelCheck, ProgressCallback
from .config import TrainConfig
from .distributed import CONTROL_FILE, LAUNCHER_ENV, clear_control, request_stop, strategy_problem
from .errors import LeakageError, TrainError
from .runfiles import METRICS_FILE, checkpoint_step, last_checkpoint
from .runner import TrainResult

EventCallback = Callable[[dict], None]
LOG_FILE = "train.log"
_POLL = 0.2  # seconds between looks at metrics.jsonl while nothing else arrives
_KILL_GRACE = 10.0  # seconds the processes get to end after SIGTERM


class RankLeakageError(LeakageError):
    """The ranks refused to train because of leakage (``leaks`` as the CLI reports them)."""

    def __init__(self, message: str, leaks: list) -> None:  # noqa: D107 - LeakageError builds its own message
        TrainError.__init__(self, message, key="leakage")
        self.leaks = leaks


# -- devices -----------------------------------------------------------------------------------------


def device_count(device: str) -> int:
    """How many processes ``device`` can usefully take: the CUDA GPUs found, the CPU cores
    (CPU processes are for trying a multi-process run out), 1 for an Apple GPU."""
    if device == "cuda":
        import torch

        return int(torch.cuda.device_count())
    if device == "cpu":
        return os.cpu_count() or 1
    return 1


def check_devices(config: TrainConfig, device: str) -> None:
    """TrainError when ``config.world_size`` processes cannot train on this machine."""
    n = config.world_size
    problem = strategy_problem(config, device)
    if problem:
        raise TrainError(problem, key="bad_config")
    if device == "cuda":
        found = device_count("cuda")
        if n > found:
            raise TrainError(f"{n} processes asked for, but this machine has {found} GPU{'s' if found != 1 else ''}.",
                             f"Use at most {found} processes (one per GPU), or several machines (see "
                             "docs/training.md, several machines).", key="bad_config")


# -- the command -----------------------------------------------------------------------------------


def child_command(world_size: int, config_file: str, source: str, eval_source: Optional[str],
                  val_fraction: float, resume: bool, full_paths: bool, trust_remote_code: bool) -> list[str]:
    """The command line of a local multi-process run: torchrun from this interpreter,
    one node, a rendezvous on a free local port, no restarts (a failed rank fails the run)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
           f"--nproc_per_node={world_size}", "--max_restarts=0",
           "-m", "ftcurate.cli", "train", "--json", "--config", config_file, "--data", source,
           "--val-fraction", repr(float(val_fraction))]
    if eval_source:
        cmd += ["--eval", eval_source]
    if resume:
        cmd.append("--resume")
    if full_paths:
        cmd.append("--full-paths")
    if trust_remote_code:
        cmd.append("--trust-remote-code")
    return cmd


def _child_env(world_size: int) -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env[LAUNCHER_ENV] = str(os.getpid())  # the ranks cancel themselves when this program is gone
    # torchrun would set 1 thread per process (and say so); share the cores instead
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // world_size)))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # the child finds this ftcurate even when it is not installed (a source checkout)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# -- following the run -----------------------------------------------------------------------------


class MetricsFollower:
    """The new complete lines of a growing ``metrics.jsonl`` (a cut-off last line waits for
    its end). Lines of steps up to ``after_step`` are skipped (a resumed run's history)."""

    def __init__(self, path: str, after_step: int = 0) -> None:
        self.path = path
        self.after_step = after_step
        self.offset = 0
        self.seen: set = set()

    def read(self) -> list[dict]:
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return []
        if size < self.offset:  # replaced by a shorter file: read it again (seen lines are skipped)
            self.offset = 0
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        out = []
        for raw in chunk[: end + 1].splitlines():
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(event, dict) or event.get("type") not in ("train", "eval"):
                continue
            key = (event.get("type"), event.get("step"))
            step = event.get("step")
            if key in self.seen or not isinstance(step, int) or step <= self.after_step:
                continue
            self.seen.add(key)
            out.append(event)
        return out


def _read_lines(stream, q: queue.Queue, log) -> None:
    """Reader thread: JSON objects from the child's stdout go to ``q``, other lines to the log."""
    try:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            obj = None
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = None
            if isinstance(obj, dict):
                q.put(obj)
            elif line.strip():
                try:
                    log.write(line + "\n")
                    log.flush()
                except (OSError, ValueError):
                    pass
    finally:
        q.put(None)  # end of output


_ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)(?:[^\n]*\((SIG\w+)\))?", re.S)


def failure_from_log(text: str) -> dict:
    """What torchrun's summary and the ranks' output say about a failed run: ``rank``,
    ``exit_code``, ``signal`` and ``said`` (the failing rank's last error line), each None
    when not found."""
    out: dict = {"rank": None, "exit_code": None, "signal": None, "said": None}
    m = _ROOT_CAUSE.search(text)
    if m:
        out["rank"], out["exit_code"], out["signal"] = int(m.group(1)), int(m.group(2)), m.group(3)
    said = None
    for line in text.splitlines():
        line = re.sub(r"^\[(?:rank|default)?\d+\]:", "", line.strip()).strip()
        if line.startswith("ftcurate train: "):
            said = line[len("ftcurate train: "):]
        elif said is None and re.match(r"^[A-Za-z_.]*(Error|Exception): ", line) and "ChildFailedError" not in line:
            said = line
    out["said"] = said
    return out


def _describe_failure(info: dict, world_size: int) -> str:
    who = f"rank {info['rank']} of {world_size}" if info.get("rank") is not None else "a training process"
    if info.get("signal"):
        how = f"was killed ({info['signal']})"
    elif info.get("exit_code") is not None and info["exit_code"] < 0:
        how = f"was killed (signal {-info['exit_code']})"
    elif info.get("exit_code") is not None:
        how = f"failed (exit code {info['exit_code']})"
    else:
        how = "failed"
    text = f"Training failed: {who} {how}, and the other processes were stopped"
    if info.get("said"):
        text += f". It said: {info['said']}"
    return text + "."


def mark_failed(output_dir: str, message: str, info: dict, started_at: float) -> Optional[str]:
    """Append the ``"failed"`` line to the run's metrics.jsonl (after its last step); the
    newest complete checkpoint's name (kept for a resume), or None."""
    from .runner import read_metrics

    events = read_metrics(output_dir)
    step = max((int(e.get("step") or 0) for e in events if e.get("type") in ("train", "eval")), default=0)
    ckpt = last_checkpoint(output_dir)
    line = {"type": "failed", "step": step, "message": message, "rank": info.get("rank"),
            "exit_code": info.get("exit_code"), "checkpoint": os.path.basename(ckpt) if ckpt else None,
            "elapsed": round(time.time() - started_at, 3)}
    with open(os.path.join(output_dir, METRICS_FILE), "a", encoding="utf-8") as f:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return os.path.basename(ckpt) if ckpt else None


def _end_process(proc: subprocess.Popen) -> None:
    """SIGTERM to the child's process group (torchrun and its ranks), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGTERM)
        else:  # pragma: no cover - Windows
            proc.terminate()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=_KILL_GRACE)
    except subprocess.TimeoutExpired:
        try:
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, signal.SIGKILL)
            else:  # pragma: no cover
                proc.kill()
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


def _result(event: dict) -> TrainResult:
    names = {f.name for f in fields(TrainResult)}
    return TrainResult(**{k: v for k, v in event.items() if k in names})


def train_processes(config: TrainConfig, source: str, eval_source: Optional[str] = None, val_fraction: float = 0.1,
                    progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
                    on_event: Optional[EventCallback] = None, stop: Optional[Callable[[], bool]] = None,
                    resume: bool = False, full_paths: bool = False, device: Optional[str] = None,
                    command: Optional[Callable[..., list]] = None) -> TrainResult:
    """Train as ``config.world_size`` processes on this machine; see the module docstring.

    ``source`` / ``eval_source`` / ``val_fraction`` are what :func:`ftcurate.train.load_data`
    takes (each rank loads the data itself). ``device`` skips detecting it; ``command``
    replaces :func:`child_command` (tests). Raises :class:`TrainError` (bad settings, a
    failed rank), :class:`LeakageError` and :class:`Cancelled` like the in-process runner."""
    problems = config.problems()
    if problems:
        raise TrainError("Bad training settings: " + "; ".join(problems) + ".", key="bad_config")
    if device is None:
        from .model import detect_device

        device = detect_device()
    check_devices(config, device)
    output_dir = os.path.abspath(config.output_dir)
    os.makedirs(output_dir, exist_ok=True)
    clear_control(output_dir)  # a stop request of an earlier launch does not stop this one
    tmp = tempfile.mkdtemp(prefix="ftcurate-launch-")
    config_file = os.path.join(tmp, "config.json")
    replace(config, output_dir=output_dir, model_dir=os.path.abspath(config.model_dir)).to_json(config_file)
    cmd = (command or child_command)(config.world_size, config_file, os.path.abspath(source),
                                     os.path.abspath(eval_source) if eval_source else None, val_fraction, resume,
                                     full_paths, config.trust_remote_code)
    log_path = os.path.join(output_dir, LOG_FILE)
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
    log.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {config.world_size} processes: {' '.join(cmd)}\n")
    log.flush()
    started_at = time.time()
    proc: Optional[subprocess.Popen] = None
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                env=_child_env(config.world_size), start_new_session=True)
        q: queue.Queue = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, q, log), daemon=True,
                                  name="ftcurate-launch-reader")
        reader.start()
        outcome = _follow(proc, q, output_dir, progress, cancel, on_event, stop)
        rc = proc.wait()
        reader.join(timeout=5)
    except BaseException:
        if proc is not None:
            _end_process(proc)
        raise
    finally:
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    end, error, started = outcome
    if end is not None and rc == 0:
        return _result(end)
    if error is not None and not started:  # refused before training began: nothing to mark
        message = str(error.get("message") or "training failed")
        if error.get("error") == "leakage":
            raise RankLeakageError(message, list(error.get("leaks") or []))
        raise TrainError(message, key=str(error.get("error") or "train_error"))
    with open(log_path, encoding="utf-8", errors="replace") as f:
        info = failure_from_log(f.read()[-200_000:])
    if info["exit_code"] is None:
        info["exit_code"] = rc
    if info["exit_code"] == 130 and error is None:  # the ranks were cancelled (a "cancel" request)
        raise Cancelled("training cancelled")
    if error is not None and error.get("message"):
        info["said"] = str(error["message"])
        if info["rank"] is None:
            info["rank"] = 0
    message = _describe_failure(info, config.world_size)
    checkpoint = mark_failed(output_dir, message, info, started_at) if started else None
    if not started:
        found = last_checkpoint(output_dir)
        checkpoint = os.path.basename(found) if found else None
    advice = (f"The newest complete checkpoint ({checkpoint}) is kept: resume the run to continue from it."
              if checkpoint else "No checkpoint was complete yet: start the run again.")
    raise TrainError(message, advice + f" The processes' output is in {log_path}.", key="rank_failed")


def _follow(proc: subprocess.Popen, q: queue.Queue, output_dir: str, progress, cancel, on_event,
            stop) -> tuple[Optional[dict], Optional[dict], bool]:
    """Pass the child's events on until its output ends: (end event, error, started)."""
    follower: Optional[MetricsFollower] = None
    end = error = None
    max_steps = 0
    stop_sent = False
    done = False

    def deliver(event: dict) -> None:
        if on_event is not None:
            on_event(event)

    while not done:
        if cancel is not None and cancel():
            _end_process(proc)
            raise Cancelled("training cancelled")
        if stop is not None and not stop_sent and stop():
            request_stop(output_dir)
            stop_sent = True
        try:
            item = q.get(timeout=_POLL)
        except queue.Empty:
            item = False
        items = [item]
        while True:  # whatever else is waiting
            try:
                items.append(q.get_nowait())
            except queue.Empty:
                break
        for event in items:
            if event is False:
                continue
            if event is None:
                done = True
                continue
            if "error" in event and "type" not in event:
                error = error or event
                continue
            kind = event.get("type")
            if kind == "start":
                max_steps = int(event.get("max_steps") or 0)
                resumed = event.get("resumed_from")
                follower = MetricsFollower(os.path.join(output_dir, METRICS_FILE),
                                           checkpoint_step(resumed) if resumed else 0)
                deliver(event)
                if progress is not None:
                    progress(follower.after_step, max_steps, "training")
            elif kind in ("train", "eval"):
                continue  # they come from metrics.jsonl
            elif kind == "end":
                end = event
            else:
                deliver(event)
        if follower is not None:
            for event in follower.read():
                deliver(event)
                if progress is not None and event.get("type") == "train":
                    msg = f"step {event['step']}/{max_steps}"
                    if event.get("loss") is not None:
                        msg += f", loss {event['loss']:.4f}"
                    progress(int(event["step"]), max_steps, msg)
        if end is not None and not done:
            continue
    if end is not None:
        deliver(end)
    return end, error, follower is not None


__all__ = ["CONTROL_FILE", "LOG_FILE", "MetricsFollower", "RankLeakageError", "check_devices", "child_command",
           "device_count", "failure_from_log", "mark_failed", "train_processes"]
