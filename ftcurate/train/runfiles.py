"""The files of a run folder: checkpoints, ``run_config.json``, and the paths written into them.

* **Checkpoints.** A ``checkpoint-N`` folder is complete once the Trainer has written its
  ``trainer_state.json`` (the last file it saves, after the adapter, optimizer and
  scheduler). A run killed while saving leaves a torn folder; :func:`last_checkpoint`
  skips those, so a resume continues from the newest complete checkpoint.
* **Pickles.** A checkpoint's optimizer, scheduler and random-state files are torch
  pickles. transformers reads them with ``weights_only=True`` (plain tensors and numbers
  only); :func:`refused_pickles` finds, without loading anything, the files that would need
  more than that, so the run can say which file is refused instead of ending in a traceback.
* **Paths.** Run files (``run_config.json``, ``adapter_config.json``, the adapter README)
  name the base model relative to the run folder when both lie in the same folder tree
  (below your home folder or a top-level folder), else by the model folder's name only;
  the full path only when asked for (``full_paths``). Credentials are masked
  (:mod:`ftcurate.core.io.redact`, shared with the export). :func:`run_model_dir` finds the base model again from a run folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from typing import Optional

from ..core.io.fileio import write_text_atomic
from ..core.io.redact import display_path
from ..core.io.redact import redact as redact_settings
from .config import TrainConfig
from .errors import TrainError

RUN_CONFIG_FILE = "run_config.json"
METRICS_FILE = "metrics.jsonl"
BEST_DIR = "best"  # the adapter with the lowest validation loss so far (early stopping)
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TRAINER_STATE = "trainer_state.json"
CHECKPOINT_PREFIX = "checkpoint-"
#: What a checkpoint needs to be resumed from (the Trainer writes trainer_state.json last).
CHECKPOINT_NEEDS = (ADAPTER_CONFIG, ADAPTER_WEIGHTS, "optimizer.pt", "scheduler.pt", TRAINER_STATE)
#: Pickled files a resume loads (with weights_only=True).
_STATE_PICKLE = re.compile(r"^(optimizer|scheduler|scaler)(_\d+)?\.pt$|^rng_state(_\d+)?\.pth$")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


# -- checkpoints --------------------------------------------------------------------------------


def checkpoint_step(path: str) -> int:
    return int(os.path.basename(os.path.normpath(path))[len(CHECKPOINT_PREFIX):])


def checkpoint_problem(path: str) -> str:
    """Why ``path`` cannot be resumed from ("" when it is complete)."""
    try:
        have = set(os.listdir(path))
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    missing = [n for n in CHECKPOINT_NEEDS if n not in have]
    if missing:
        return "incomplete (cut off while saving: no " + ", ".join(missing) + ")"
    try:
        with open(os.path.join(path, TRAINER_STATE), encoding="utf-8") as f:
            state = json.load(f)
        int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"incomplete (cut off while saving: {TRAINER_STATE} is unreadable)"
    return ""


def list_checkpoints(output_dir: str) -> list[tuple[str, str]]:
    """``(path, problem)`` of every ``checkpoint-N`` folder, newest first (problem "" when complete)."""
    try:
        names = os.listdir(output_dir)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(output_dir, name)
        if name.startswith(CHECKPOINT_PREFIX) and name[len(CHECKPOINT_PREFIX):].isdigit() and os.path.isdir(path):
            found.append(path)
    found.sort(key=checkpoint_step, reverse=True)
    return [(p, checkpoint_problem(p)) for p in found]


def last_checkpoint(output_dir: str) -> Optional[str]:
    """The newest complete ``checkpoint-N`` folder in ``output_dir``, or None (torn
    checkpoints, cut off while saving, are skipped)."""
    for path, problem in list_checkpoints(output_dir):
        if not problem:
            return path
    return None


def remove_torn_checkpoints(output_dir: str) -> list[str]:
    """Delete the incomplete checkpoint folders (they cannot be resumed from); their names."""
    removed = []
    for path, problem in list_checkpoints(output_dir):
        if problem:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(os.path.basename(path))
    return removed


@dataclass
class OutputPlan:
    """What train() does with its output folder: resume from ``checkpoint`` (None: from
    the beginning), ``restart`` an earlier attempt that left no complete checkpoint (its
    metrics and torn checkpoints are cleared), and ``notes`` to warn about."""

    checkpoint: Optional[str] = None
    restart: bool = False
    notes: list[str] = field(default_factory=list)


def plan_output_dir(output_dir: str, resume: bool) -> OutputPlan:
    """Plan the output folder (nothing is changed here). A run resumes from its newest
    complete checkpoint, skipping torn ones (cut off while saving). A folder whose run left
    no complete checkpoint and no adapter is started again from the beginning, by a
    resume or a new run alike. TrainError when a new run would overwrite a run that can
    be resumed or has an adapter, or there is no run to resume."""
    found = list_checkpoints(output_dir)
    complete = [p for p, problem in found if not problem]
    torn = [(os.path.basename(p), problem) for p, problem in found if problem]
    torn_text = "; ".join(f"{name} is {problem}" for name, problem in torn)
    has_adapter = os.path.isfile(os.path.join(output_dir, "adapter_model.safetensors"))
    started = os.path.isfile(os.path.join(output_dir, METRICS_FILE)) or \
        os.path.isfile(os.path.join(output_dir, RUN_CONFIG_FILE)) or bool(found)
    plan = OutputPlan()
    if complete:
        newest = os.path.basename(complete[0])
        if not resume:
            raise TrainError(f"{output_dir} already holds a training run (its newest checkpoint is {newest}).",
                             f"Choose a new output folder, or resume that run (it continues from {newest}).",
                             key="output_exists")
        plan.checkpoint = complete[0]
        newer = [(n, p) for n, p in torn if int(n.split("-")[-1]) > checkpoint_step(complete[0])]
        if newer:
            plan.notes.append(f"Resuming from {newest}, the newest complete checkpoint: "
                              + "; ".join(f"{n} is {p}" for n, p in newer) + ", and is removed.")
        elif torn:
            plan.notes.append(f"Removed incomplete checkpoint(s): {torn_text}.")
        return plan
    if has_adapter:
        if resume:
            raise TrainError(f"Nothing to resume: {output_dir} holds a saved adapter but no complete checkpoint"
                             + (f" ({torn_text})." if torn else "."),
                             "Start a new run in a new output folder (this run's adapter stays usable).",
                             key="no_checkpoint")
        raise TrainError(f"{output_dir} already holds a training run (adapter_model.safetensors).",
                         "Choose a new output folder.", key="output_exists")
    if not started:
        if resume:
            raise TrainError(f"Nothing to resume: {output_dir} has no checkpoint-* folder.",
                             "Start a new run instead (checkpoints are written every save_steps steps).",
                             key="no_checkpoint")
        return plan
    plan.restart = True
    plan.notes.append(f"{output_dir} holds a run that left no complete checkpoint"
                      + (f" ({torn_text})" if torn else "")
                      + ": training starts again from the beginning in this folder.")
    return plan


# -- pickles ----------------------------------------------------------------------------------


def pickle_refused_message(path: str) -> str:
    return f"{path} is a pickle file; ftcurate refuses to load pickles"


def _allowed_globals():
    """The context in which transformers loads checkpoint state (numpy arrays allowed)."""
    try:
        from transformers.trainer_pt_utils import safe_globals

        return safe_globals()
    except ImportError:  # pragma: no cover - transformers is a dependency
        from contextlib import nullcontext

        return nullcontext()


def refused_pickles(checkpoint: str) -> list[tuple[str, str]]:
    """``(path, why)`` for each state file of ``checkpoint`` that a ``weights_only`` load
    would refuse: it holds more than tensors, numbers and numpy arrays (something that can
    run code when unpickled), or is not a torch zip file at all. Nothing is loaded: the
    pickle is disassembled (torch.serialization.get_unsafe_globals_in_checkpoint)."""
    import torch

    out = []
    try:
        names = sorted(os.listdir(checkpoint))
    except OSError:
        return []
    for name in names:
        if not _STATE_PICKLE.match(name):
            continue
        path = os.path.join(checkpoint, name)
        try:
            with _allowed_globals():
                unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception as exc:  # noqa: BLE001 - not a torch zip: an old-style or foreign pickle
            out.append((path, f"not a plain torch checkpoint ({exc})"))
            continue
        if unsafe:
            out.append((path, "it references " + ", ".join(sorted(unsafe)[:3])))
    return out


def pickled_files(folder: str) -> list[str]:
    """Pickle-format files in ``folder`` (by extension), sorted."""
    try:
        return sorted(n for n in os.listdir(folder) if n.endswith(PICKLE_SUFFIXES))
    except OSError:
        return []


# -- paths and credentials in run files -----------------------------------------------------------

def redact(text: str) -> str:
    """``text`` with credentials masked (passwords and tokens in URLs: ftcurate.core.io.redact)."""
    return redact_settings(text)


def _same_tree(a: str, b: str) -> bool:
    """Do ``a`` and ``b`` share a folder below the home folder (or, outside it, below a
    top-level folder)? Then a relative path between them says nothing about the user."""
    try:
        common = os.path.commonpath([os.path.normcase(a), os.path.normcase(b)])
    except ValueError:  # different drives
        return False
    if not common or os.path.dirname(common) == common:  # the filesystem root
        return False
    home = os.path.normcase(os.path.abspath(os.path.expanduser("~")))
    return not (home == common or home.startswith(common.rstrip(os.sep) + os.sep))


def portable_path(path: str, run_dir: str, full: bool = False) -> str:
    """How a run file names ``path``: relative to ``run_dir`` when both lie in the same
    folder tree, else the last path component only; the absolute path when ``full``.
    Credentials are masked either way."""
    if not path:
        return path
    absolute = os.path.abspath(os.path.expanduser(path))
    if full:
        return redact(absolute)
    run_dir = os.path.abspath(run_dir)
    if _same_tree(absolute, run_dir):
        return redact(os.path.relpath(absolute, run_dir))
    return redact(display_path(absolute))  # the folder's name


def resolve_path(value: str, base_dir: str) -> str:
    """A path as a run file wrote it, made absolute against ``base_dir`` (the run folder)."""
    if not value:
        return value
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))


def run_config_dict(config: TrainConfig, output_dir: str, full_paths: bool = False) -> dict:
    """``config`` as ``run_config.json`` holds it: the model folder as :func:`portable_path`
    writes it, the output folder as "." (the folder the file is in), strings redacted."""
    d = redact_settings(config.to_dict())
    d["model_dir"] = portable_path(config.model_dir, output_dir, full_paths)
    d["output_dir"] = redact(os.path.abspath(output_dir)) if full_paths else "."
    d["data"] = portable_path(config.data, output_dir, full_paths)
    return d


def save_run_config(config: TrainConfig, output_dir: str, full_paths: bool = False) -> str:
    path = os.path.join(output_dir, RUN_CONFIG_FILE)
    write_text_atomic(path, json.dumps(run_config_dict(config, output_dir, full_paths), indent=2,
                                       ensure_ascii=False) + "\n")
    return path


def load_run_config(path: str) -> TrainConfig:
    """Training settings from a JSON file (a run's ``run_config.json`` or one written by
    hand), strictly (ConfigError names the key). Relative paths are relative to the file's
    folder; a model folder that is not found there but is from the current folder is taken
    from there; one found nowhere (a run file that kept only the model's name) stays as
    written, and the model check will ask for the folder."""
    config = TrainConfig.from_json(path)
    base = os.path.dirname(os.path.abspath(path))
    if config.model_dir and not os.path.isabs(os.path.expanduser(config.model_dir)):
        beside = resolve_path(config.model_dir, base)
        if os.path.isdir(beside):
            config.model_dir = beside
        elif os.path.isdir(config.model_dir):
            config.model_dir = os.path.abspath(config.model_dir)
    if config.output_dir:
        config.output_dir = resolve_path(config.output_dir, base)
    if config.data and not os.path.isabs(os.path.expanduser(config.data)):
        beside = resolve_path(config.data, base)
        if os.path.exists(beside):
            config.data = beside
    return config


def run_training_data(run_dir: str) -> Optional[tuple[str, bool]]:
    """``(path, uncurated)`` of the data a run was trained on, when its ``run_config.json``
    names it and it can still be found (relative to the run folder, or in full); else None."""
    try:
        with open(os.path.join(run_dir, RUN_CONFIG_FILE), encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    value = d.get("data") if isinstance(d, dict) else None
    if not isinstance(value, str) or not value:
        return None
    path = resolve_path(value, run_dir)
    return (path, d.get("uncurated") is True) if os.path.exists(path) else None


def run_model_dir(run_dir: str) -> Optional[str]:
    """The base model folder a run was trained on, when it can still be found (its
    ``run_config.json`` names it relative to the run folder, or in full), else None."""
    try:
        with open(os.path.join(run_dir, RUN_CONFIG_FILE), encoding="utf-8") as f:
            value = json.load(f).get("model_dir")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(value, str) or not value:
        return None
    path = resolve_path(value, run_dir)
    return path if os.path.isdir(path) else None


def scrub_adapter_files(folder: str, config: TrainConfig, output_dir: str, full_paths: bool = False) -> None:
    """Rewrite the base model path that peft writes into ``adapter_config.json`` and the
    adapter README (as given to from_pretrained: usually absolute) the way run files name
    it, and delete ``training_args.bin`` (a pickle holding the absolute output folder that
    nothing loads)."""
    value = portable_path(config.model_dir, output_dir, full_paths)
    cfg_path = os.path.join(folder, ADAPTER_CONFIG)
    if os.path.isfile(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
        if isinstance(cfg, dict) and cfg.get("base_model_name_or_path") != value:
            cfg["base_model_name_or_path"] = value
            write_text_atomic(cfg_path, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    readme = os.path.join(folder, "README.md")
    if os.path.isfile(readme):
        with open(readme, encoding="utf-8") as f:
            text = f.read()
        new = text
        for written in sorted({config.model_dir, os.path.abspath(config.model_dir),
                               os.path.normpath(config.model_dir)}, key=len, reverse=True):
            if written and written != value:
                new = new.replace(written, value)
        new = redact(new)
        if new != text:
            write_text_atomic(readme, new)
    args_file = os.path.join(folder, "training_args.bin")
    if os.path.isfile(args_file):
        os.unlink(args_file)


# -- another run's settings ------------------------------------------------------------------------


@dataclass
class RunSettings:
    """Settings of a past run, ready for a new run: ``config`` (no output folder, leakage
    not allowed, remote code off), ``remote_code`` (the run had trust_remote_code on; it
    was left off) and ``notes`` (what was changed, one sentence each)."""

    config: TrainConfig
    remote_code: bool = False
    notes: list[str] = field(default_factory=list)


REMOTE_CODE_NOTE = ("That run had trust_remote_code on (it ran Python code shipped in the model folder); it was "
                    "left off. Turn it on yourself only if you trust that code.")


def load_run_settings(run_dir: str, current_model_dir: str = "") -> RunSettings:
    """The settings of the run in ``run_dir`` for a new run, WITHOUT trust_remote_code:
    that stays off and ``remote_code`` says whether the run had it on (ask the user before
    carrying it over). When the run's base model can no longer be found,
    ``current_model_dir`` is kept. Raises ConfigError / OSError for an unreadable file."""
    config = load_run_config(os.path.join(run_dir, RUN_CONFIG_FILE))
    out = RunSettings(config)
    if config.trust_remote_code:
        config.trust_remote_code = False
        out.remote_code = True
        out.notes.append(REMOTE_CODE_NOTE)
    config.output_dir = ""
    config.allow_leakage = False
    if not config.model_dir or not os.path.isdir(config.model_dir):
        if config.model_dir:
            out.notes.append(f"The run's base model ({os.path.basename(config.model_dir)}) was not found; "
                             "the model folder chosen now is kept.")
        config.model_dir = current_model_dir
    return out
