"""Training settings: one dataclass, saved beside every run as ``run_config.json``.

Each field carries its help text in ``metadata["help"]`` (the app shows it as a tooltip and
``ftcurate train --help`` uses the same words). Only the standard library is used here, so
the GUI can build its form without importing torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..core.io.fileio import write_text_atomic

METHODS = ("lora", "qlora", "dora")
STRATEGIES = ("ddp", "fsdp")  # how several processes share the work (ftcurate.train.distributed)


def _opt(default: Any, help: str, choices: tuple = ()) -> Any:  # noqa: A002 - mirrors argparse's name
    metadata: dict = {"help": help}
    if choices:
        metadata["choices"] = choices
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Everything a LoRA / QLoRA / DoRA run needs besides the data."""

    model_dir: str = field(metadata={"help": "Local folder of the base model (Hugging Face layout: config.json, "
                                             "tokenizer files and *.safetensors weights). Nothing is downloaded."})
    method: str = _opt("lora", "lora: low-rank adapters on the full-precision (bf16) model. qlora: the base model "
                               "loaded in 4 bits (bitsandbytes, NVIDIA GPUs only), about 3x less memory. dora: "
                               "weight-decomposed LoRA, sometimes better at low ranks, ~20% slower.", METHODS)
    lora_r: int = _opt(16, "Rank of the adapter matrices: capacity of the adapter. 8-32 suits most "
                           "format/behaviour tuning; higher ranks need more data.")
    lora_alpha: int = _opt(32, "Scale of the adapter update (alpha / r multiplies it). 2 x rank is a common choice.")
    lora_dropout: float = _opt(0.05, "Dropout on the adapter input during training (regularisation for small sets).")
    target_modules: str = _opt("all-linear", "Layers that get adapters: 'all-linear' (every linear layer but the "
                                             "output head, recommended) or comma-separated module names such as "
                                             "'q_proj,v_proj'.")
    learning_rate: float = _opt(2e-4, "Peak learning rate. 1e-4 to 2e-4 is usual for LoRA; lower it if the loss "
                                      "jumps around or the eval loss rises early.")
    epochs: float = _opt(3.0, "Passes over the training set (ignored when max_steps is set). About 3 for a few "
                              "hundred to a few thousand examples; fewer for large sets.")
    batch_size: int = _opt(4, "Examples per step on the device. Lower it first when the GPU runs out of memory.")
    grad_accum: int = _opt(1, "Steps whose gradients are added up before each update: effective batch = "
                              "batch_size x grad_accum, at the memory cost of batch_size.")
    max_seq_len: int = _opt(1024, "Tokens per example; longer conversations are cut at this length (their end "
                                  "is lost). Memory grows with it.")
    warmup_ratio: float = _opt(0.03, "Fraction of the steps spent ramping the learning rate up from zero.")
    seed: int = _opt(42, "Random seed (data order, adapter initialisation, validation split).")
    eval_steps: int = _opt(50, "Evaluate on the validation set every N steps (0 = once per epoch).")
    early_stopping_patience: int = _opt(3, "Stop when the validation loss has not improved for this many "
                                           "evaluations in a row (0 = off). The adapter kept is the one with "
                                           "the lowest validation loss.")
    save_steps: int = _opt(200, "Save a checkpoint every N steps (training can resume from the last one).")
    max_steps: int = _opt(-1, "Stop after this many optimiser steps (-1 = run the full number of epochs).")
    output_dir: str = _opt("", "Folder for the adapter, checkpoints, metrics.jsonl and run_config.json.")
    assistant_only_loss: bool = _opt(True, "Learn only the assistant's replies (system and user turns are "
                                           "context, not targets). Recommended.")
    trust_remote_code: bool = _opt(False, "Run Python code shipped inside the model folder. Only for folders "
                                          "you trust; off by default.")
    allow_leakage: bool = _opt(False, "Train even though the last scan found training records that leak "
                                      "validation or test records (the evaluation will then be optimistic).")
    packing: bool = _opt(True, "Padding-free batches: the examples of a step are concatenated with their "
                               "positions restarting per example, so no compute is spent on padding. Off: "
                               "padded batches of similar lengths.")
    logging_steps: int = _opt(1, "Record the training loss every N steps (metrics.jsonl and the chart).")
    gradient_checkpointing: bool = _opt(False, "Recompute activations in the backward pass: much less memory "
                                               "for long sequences, about 30% slower.")
    data: str = _opt("", "The training data: a project (.ftcurate) or a dataset file. Training records it in "
                         "run_config.json (relative to the run folder, like the model); evaluation takes its "
                         "few-shot examples from it.")
    uncurated: bool = _opt(False, "Train on every imported training record of the project, whatever its review "
                                  "state (the raw, uncurated data; records the last scan found leaking held-out "
                                  "items are still left out), to measure what the curation gained.")
    world_size: int = _opt(1, "Processes to train with, one per device: GPUs found on this machine (CUDA), or "
                              "CPU processes (only for trying it out). Above 1 the run is started as that many "
                              "processes (torchrun) that split every batch: the effective batch is batch_size x "
                              "grad_accum x processes, so halve batch_size to keep it when doubling them.")
    strategy: str = _opt("ddp", "How several processes share the work. ddp: each holds the whole model and they "
                                "average gradients (the model must fit on one GPU). fsdp: the model's weights are "
                                "sharded over the GPUs, for models too big for one (NVIDIA GPUs only).", STRATEGIES)

    # -- checks ------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """What is wrong with these settings, one sentence each (empty when fine)."""
        out = []
        if not self.model_dir:
            out.append("no model folder is set")
        if self.method not in METHODS:
            out.append(f"unknown method {self.method!r} (use one of {', '.join(METHODS)})")
        if self.lora_r < 1:
            out.append("lora_r must be at least 1")
        if not 0 <= self.lora_dropout < 1:
            out.append("lora_dropout must be in [0, 1)")
        if self.learning_rate <= 0:
            out.append("learning_rate must be positive")
        if self.batch_size < 1 or self.grad_accum < 1:
            out.append("batch_size and grad_accum must be at least 1")
        if self.max_seq_len < 16:
            out.append("max_seq_len must be at least 16")
        if self.max_steps == 0 or self.max_steps < -1:
            out.append("max_steps must be positive, or -1 for the full number of epochs")
        if self.max_steps == -1 and self.epochs <= 0:
            out.append("epochs must be positive")
        if not 0 <= self.warmup_ratio < 1:
            out.append("warmup_ratio must be in [0, 1)")
        if self.eval_steps < 0 or self.save_steps < 1 or self.logging_steps < 1:
            out.append("eval_steps must be 0 or more; save_steps and logging_steps at least 1")
        if self.early_stopping_patience < 0:
            out.append("early_stopping_patience must be 0 (off) or more")
        if not self.output_dir:
            out.append("no output folder is set")
        if self.world_size < 1:
            out.append("world_size (processes) must be at least 1")
        if self.strategy not in STRATEGIES:
            out.append(f"unknown strategy {self.strategy!r} (use one of {', '.join(STRATEGIES)})")
        return out

    def target_module_list(self) -> str | list[str]:
        """``target_modules`` as peft wants it: "all-linear" or a list of names."""
        t = (self.target_modules or "all-linear").strip()
        if t == "all-linear":
            return t
        return [p.strip() for p in t.split(",") if p.strip()]

    # -- (de)serialisation ---------------------------------------------------------------

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> "TrainConfig":
        """Build from a dict, strictly (ftcurate.core.config): booleans are true/false or 1/0,
        numbers are numbers, ``method`` is one of METHODS, an unknown key is an error naming
        it; missing keys keep their defaults (``model_dir``: ""). Raises ConfigError (a
        ValueError); ``where`` names the file in its message."""
        from ..core.config import from_dict

        return from_dict(cls, d, where=where, defaults={"model_dir": ""})

    def to_json(self, path: str) -> None:
        """Write the settings as indented JSON (atomically)."""
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def from_json(cls, path: str) -> "TrainConfig":
        """The settings in a JSON file, read as strictly as :meth:`from_dict` (paths as
        written; ``ftcurate.train.runfiles.load_run_config`` resolves a run file's relative
        paths). Raises ConfigError naming the file and the key, OSError when unreadable."""
        from ..core.config import from_json_file

        return from_json_file(cls, path, defaults={"model_dir": ""})

    @classmethod
    def help_text(cls, name: str) -> str:
        """The help text of field ``name`` ("" for an unknown name)."""
        return help_text(name)


def help_text(name: str) -> str:
    """The help text of TrainConfig field ``name`` ("" for an unknown name)."""
    for f in fields(TrainConfig):
        if f.name == name:
            return f.metadata.get("help", "")
    return ""


def default_output_dir(base: str, model_dir: str) -> str:
    """``base/<model folder name>-<YYYYmmdd-HHMMSS>``: a fresh folder for a new run."""
    import time

    name = os.path.basename(os.path.normpath(model_dir)) or "model"
    return os.path.join(base, f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")
