"""One rank of a multi-process training run (DDP, or FSDP on GPUs).

A run on N devices is N copies of the same ``ftcurate train`` command started by
``torch.distributed.run`` (torchrun): :mod:`ftcurate.train.launch` starts them on this machine
(``ftcurate train --devices N``, the app's *Processes* setting), and on a cluster you start
them with torchrun yourself (docs/training.md). Each rank runs :func:`ftcurate.train.train`
on the same data; transformers' Trainer (through accelerate) splits every batch between
them and averages the gradients, so N processes at ``batch_size`` B train like one process
at ``batch_size`` N x B.

What this module adds to a rank:

* **one writer**: only rank 0 writes run files (``metrics.jsonl``, ``run_config.json``, the
  adapter); :func:`is_main_process` says which one that is (from torchrun's environment);
* **stop and cancel at the same step on every rank** (:class:`RankControl`): at the end of
  each optimiser step every rank passes its own request (rank 0 reads the control file
  ``<output>/control``; any rank may have been sent Ctrl-C) and all take the largest, so
  they stop together - a rank that stopped alone would leave the others waiting;
* **throughput over all ranks** (:func:`sum_over_ranks`);
* **the Trainer's settings** for the strategy (:func:`training_arguments`);
* **no orphans**: a run that ftcurate launched (``FTCURATE_LAUNCHER_PID``) is cancelled at
  the end of the step when the launching program is gone (killed, or closed without
  cancelling): nobody would follow or stop it;
* a **fault hook for tests**: ``FTCURATE_FAULT_KILL_RANK="R:S"`` makes rank R kill itself
  (SIGKILL, as the kernel's out-of-memory killer would) at the end of its S-th step.

Nothing here imports torch until a rank needs it; a single-process run is unaffected
(world size 1: every helper is a no-op).
"""

from __future__ import annotations

import os
import signal
from typing import Any, Optional

from ..core.progress import Cancelled
from .config import STRATEGIES  # noqa: F401 - re-exported

CONTROL_FILE = "control"  # in the run folder: "stop" (or "cancel") asks the run to stop after this step
FAULT_ENV = "FTCURATE_FAULT_KILL_RANK"
LAUNCHER_ENV = "FTCURATE_LAUNCHER_PID"  # set by ftcurate.train.launch: the program that follows the run

_STOP, _CANCEL = 1, 2


# -- where this process stands (torchrun's environment) --------------------------------------------


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def world_size() -> int:
    """How many processes train together (1 outside torchrun)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def rank() -> int:
    return _env_int("RANK", 0)


def local_rank() -> int:
    """This process's index on its machine: the GPU it trains on."""
    return _env_int("LOCAL_RANK", 0)


def is_main_process() -> bool:
    """True for the process that writes the run files (rank 0, or the only one)."""
    return rank() == 0


def launched_rank() -> bool:
    """Is this process one rank of several started by torchrun?"""
    return world_size() > 1 and "LOCAL_RANK" in os.environ


# -- settings ----------------------------------------------------------------------------------------


def strategy_problem(config: Any, device: str) -> str:
    """Why ``config`` cannot train on ``config.world_size`` processes on ``device`` ("" when it can)."""
    n = int(getattr(config, "world_size", 1) or 1)
    strategy = getattr(config, "strategy", "ddp")
    if n < 2:
        return ""
    if strategy == "fsdp":
        if device != "cuda":
            return ("FSDP shards the model over NVIDIA GPUs (accelerate runs it on CUDA devices only); this "
                    f"machine trains on {'the CPU' if device == 'cpu' else 'an Apple GPU'}. Use the ddp "
                    "strategy here.")
        if config.method == "qlora":
            return "QLoRA cannot be combined with FSDP here: use ddp (each GPU holds the 4-bit model), or lora."
    if device == "mps":
        return "Apple GPUs (MPS) train in one process: set the number of processes to 1."
    return ""


def training_arguments(config: Any, params: Any) -> dict:
    """TrainingArguments for a run on several processes (empty for one process).

    DDP: LoRA uses every adapter weight in each step, so DDP need not look for unused ones
    (it would walk the graph again each step). FSDP (GPUs only): the model's decoder layers
    are sharded over the ranks (accelerate wraps ``_no_split_modules``; transformers adds
    peft's wrapping of the adapter layers), FSDP2 where transformers has it, and the
    adapter is gathered whole when saved."""
    if world_size() < 2:
        return {}
    kw: dict = {"ddp_find_unused_parameters": False}
    if getattr(config, "strategy", "ddp") == "fsdp":
        import transformers

        major = int(transformers.__version__.split(".")[0])
        if major >= 5:
            kw["fsdp"] = True
            kw["fsdp_config"] = {"version": 2, "state_dict_type": "FULL_STATE_DICT"}
        else:  # transformers 4.x: the option string, FSDP1
            kw["fsdp"] = "full_shard auto_wrap"
            kw["fsdp_config"] = {"use_orig_params": True, "state_dict_type": "FULL_STATE_DICT"}
        if getattr(config, "gradient_checkpointing", False):
            kw["fsdp_config"]["activation_checkpointing"] = True
    return {k: v for k, v in kw.items() if k in params}


# -- talking between ranks ----------------------------------------------------------------------------

_GROUP: Any = None


def _group():
    """A gloo process group for the small control messages (the training group may be NCCL,
    which only moves GPU tensors). Made by the first call, which every rank makes at the
    same point of the run; None outside a distributed run."""
    global _GROUP
    if world_size() < 2:
        return None
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return None
    if _GROUP is None:
        _GROUP = dist.group.WORLD if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
    return _GROUP


def _all_reduce(values: list, op_name: str) -> list:
    group = _group()
    if group is None:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=getattr(dist.ReduceOp, op_name), group=group)
    return [v.item() for v in t]


def sum_over_ranks(*values: float) -> tuple:
    """The sums of ``values`` over all ranks (the values as they are in one process). Every
    rank must call it at the same point of the run."""
    out = _all_reduce([float(v) for v in values], "SUM")
    return tuple(type(v)(o) if isinstance(v, int) else o for v, o in zip(values, out))


class RankControl:
    """The ``stop`` callable of a rank: called by the runner at the end of every optimiser
    step, on every rank. Rank 0 reads the control file; any rank may have a request of its
    own (``flags``: ``{"stop": bool, "cancel": bool}``, set by Ctrl-C). The largest request
    over all ranks wins, so every rank returns the same answer at the same step: True
    (stop: save a checkpoint and the adapter) or :class:`Cancelled` raised (cancel: stop
    at once, nothing saved)."""

    def __init__(self, output_dir: str, flags: Optional[dict] = None) -> None:
        self.control_file = os.path.join(output_dir, CONTROL_FILE)
        self.flags = flags if flags is not None else {"stop": False, "cancel": False}
        self.steps = 0
        self._fault = self._parse_fault()

    @staticmethod
    def _parse_fault() -> Optional[tuple[int, int]]:
        value = os.environ.get(FAULT_ENV, "")
        try:
            r, s = value.split(":")
            return int(r), int(s)
        except ValueError:
            return None

    def _requested(self) -> int:
        want = _CANCEL if self.flags.get("cancel") else _STOP if self.flags.get("stop") else 0
        if is_main_process() and not launcher_alive():
            return _CANCEL
        if is_main_process():
            try:
                with open(self.control_file, encoding="utf-8") as f:
                    text = f.read().strip().lower()
            except OSError:
                text = ""
            if text:
                want = max(want, _CANCEL if text.startswith("cancel") else _STOP)
        return want

    def __call__(self) -> bool:
        self.steps += 1
        if self._fault is not None and self._fault == (rank(), self.steps):
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
        value = int(_all_reduce([float(self._requested())], "MAX")[0])
        if value >= _CANCEL:
            raise Cancelled("training cancelled")
        if value >= _STOP and is_main_process():
            clear_control(os.path.dirname(self.control_file))  # answered: a resume must not stop again
        return value >= _STOP


def launcher_alive() -> bool:
    """False when the program that launched this run (``FTCURATE_LAUNCHER_PID``) has ended."""
    try:
        pid = int(os.environ.get(LAUNCHER_ENV, "0"))
    except ValueError:
        return True
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists (another user's, or no permission to ask): alive
        return True
    return True


def clear_control(output_dir: str) -> None:
    """Remove a stop request left in ``output_dir`` (a run that is started anew starts clean)."""
    try:
        os.unlink(os.path.join(output_dir, CONTROL_FILE))
    except OSError:
        pass


def request_stop(output_dir: str, how: str = "stop") -> None:
    """Ask the run training in ``output_dir`` to stop after its current step ("stop": save a
    checkpoint and the adapter; "cancel": nothing saved)."""
    from ..core.io.fileio import write_text_atomic

    write_text_atomic(os.path.join(output_dir, CONTROL_FILE), how + "\n")


def resume_note(output_dir: str, config: Any) -> str:
    """A warning when a run is resumed on another number of processes than it trained on
    ("" when the same, or unknown): the effective batch changes with it."""
    import json

    try:
        with open(os.path.join(output_dir, "run_config.json"), encoding="utf-8") as f:
            before = json.load(f)
        was = int(before.get("world_size", 1) or 1)
    except (OSError, ValueError, TypeError, AttributeError):
        return ""
    now = world_size()
    if was == now:
        return ""
    try:
        before_batch = int(before.get("batch_size") or 1) * int(before.get("grad_accum") or 1) * was
    except (TypeError, ValueError):
        return ""
    after_batch = int(config.batch_size) * int(config.grad_accum) * now
    return (f"This run trained on {was} process{'es' if was != 1 else ''} and resumes on {now}: the effective "
            f"batch (batch_size x grad_accum x processes) goes from {before_batch} to {after_batch}.")


def prepare_rank(config: Any) -> Any:
    """``config`` for this rank: its ``world_size`` is the real one (torchrun's), so that
    ``run_config.json`` records it. Other ranks than 0 print nothing on stdout (rank 0
    speaks for the run)."""
    import sys
    from dataclasses import replace

    if not is_main_process():
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - for the life of the process
    return replace(config, world_size=world_size())
