"""LoRA / QLoRA / DoRA fine-tuning with transformers' Trainer and peft.

``train(config, data)`` runs one training job and returns a :class:`TrainResult`. It is
safe to call from a worker thread: everything it reports goes through the callables it
is given.

* ``progress(step, max_steps, message)`` after every optimiser step;
* ``on_event(dict)`` for every logged metric, warning, start and end (see below);
* ``cancel()`` -> True: stop at once (no adapter is saved; the checkpoints written so far
  stay) and raise :class:`~ftcurate.core.progress.Cancelled` after freeing memory;
* ``stop()`` -> True: stop gracefully: a checkpoint and the adapter are saved and the
  result comes back with ``stopped=True``.

Events (also the lines of ``metrics.jsonl``, for "train" and "eval"):

* ``{"type": "start", "max_steps", "num_train", "num_eval", "device", "output_dir", "resumed_from"}``
* ``{"type": "train", "step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_per_second",
  "samples_per_second", "gpu_memory_bytes", "elapsed", "max_steps"}``
* ``{"type": "eval", "step", "epoch", "eval_loss", "samples_per_second", "gpu_memory_bytes", "elapsed",
  "max_steps", "best": bool}``
* ``{"type": "warning", "message"}`` and ``{"type": "early_stop", "step", "best_step", "best_eval_loss"}``
* ``{"type": "end", **TrainResult.to_dict()}``

The output folder ends up holding ``adapter_model.safetensors`` + ``adapter_config.json``
(with early stopping: the adapter with the lowest validation loss), the tokenizer (with the
chat template the data was formatted with), ``run_config.json``, ``metrics.jsonl`` and the
last ``checkpoint-*`` folders (``resume=True`` continues from the newest).
"""

from __future__ import annotations

import errno
import gc
import json
import math
import os
import pickle
import shutil
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Optional

from ..core.io.fileio import write_text_atomic
from ..core.progress import Cancelled, CancelCheck, ProgressCallback
from ..core.io.validate import OVERFIT_SET, SMALL_SET
from .config import TrainConfig
from .data import (FALLBACK_CHAT_TEMPLATE, IGNORE, TrainData, check_leakage, describe_leakage, has_chat_template,
                   render_full)
from .model import check_model_folder, detect_device, is_demo_model
from .distributed import (is_main_process, local_rank, resume_note, strategy_problem, sum_over_ranks,
                          world_size)
from .distributed import training_arguments as distributed_arguments
from .errors import LeakageError, TrainError
from .runfiles import (BEST_DIR, METRICS_FILE, RUN_CONFIG_FILE, checkpoint_step, last_checkpoint,
                       pickle_refused_message, plan_output_dir, refused_pickles, remove_torn_checkpoints,
                       save_run_config, scrub_adapter_files)

EventCallback = Callable[[dict], None]
#: What the "end" line of metrics.jsonl keeps of the result (no paths: run files name none).
END_RECORDED = ("global_step", "max_steps", "stopped", "early_stopped", "final_loss", "final_eval_loss",
                "best_eval_loss", "best_step", "adapter_is_best", "world_size", "elapsed")
StopCheck = Callable[[], bool]

__all__ = ["BEST_DIR", "METRICS_FILE", "RUN_CONFIG_FILE", "LeakageError", "TrainError", "TrainResult",
           "last_checkpoint", "read_metrics", "train"]


@dataclass
class TrainResult:
    output_dir: str
    adapter_dir: str  # where adapter_model.safetensors is (the output folder)
    global_step: int = 0
    max_steps: int = 0
    first_loss: Optional[float] = None
    final_loss: Optional[float] = None  # last logged training loss
    train_loss: Optional[float] = None  # mean training loss over the run (Trainer's)
    final_eval_loss: Optional[float] = None
    best_eval_loss: Optional[float] = None
    best_step: Optional[int] = None
    adapter_is_best: bool = False  # True when the saved adapter is the best-validation one
    stopped: bool = False  # stopped early by stop()
    early_stopped: bool = False
    resumed_from: Optional[str] = None
    device: str = "cpu"
    world_size: int = 1  # processes that trained together (ftcurate.train.distributed)
    num_train: int = 0
    num_eval: int = 0
    tokens: int = 0  # training tokens processed in this session (padding not counted)
    batch_tokens: int = 0  # the same with padding: tokens / batch_tokens = batch efficiency
    elapsed: float = 0.0
    metrics_path: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# -- helpers ---------------------------------------------------------------------------------


def _clean(value):
    """JSON-safe number: floats that are NaN/inf become None; tensors become floats."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        mps = getattr(torch, "mps", None)
        if mps is not None and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            mps.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass


def _gpu_memory(device: str) -> int:
    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    if device == "mps":
        try:
            return int(torch.mps.current_allocated_memory())
        except Exception:  # noqa: BLE001
            return 0
    return 0


def _is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk quota exceeded" in text


def _flash_attn_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def _dtype_kwarg() -> str:
    """``dtype`` (transformers >= 4.56) or the older ``torch_dtype``."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def read_metrics(output_dir: str) -> list[dict]:
    """The events of ``metrics.jsonl`` (broken lines, e.g. a cut-off last line, skipped)."""
    path = os.path.join(output_dir, METRICS_FILE)
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    except FileNotFoundError:
        pass
    return out


# -- batching -------------------------------------------------------------------------------


class Examples:
    """Tokenised examples: dicts with ``input_ids`` and ``labels`` lists (a torch-style dataset)."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


class _TokenCounter:
    """What a collator counts of the training batches it makes (evaluation pauses it):
    real tokens, tokens with padding, and each batch's real tokens until it is trained on
    (:class:`FtTrainer` takes them from ``pending``)."""

    def __init__(self) -> None:
        self.counting = True  # the trainer pauses counting during evaluation
        self.tokens = 0  # real tokens batched so far
        self.batch_tokens = 0  # tokens including padding
        self.pending: deque[int] = deque()  # real tokens of batches made but not yet trained on

    def _count(self, real: int, padded: int) -> None:
        if self.counting:
            self.tokens += real
            self.batch_tokens += padded
            self.pending.append(real)


class PackedCollator(_TokenCounter):
    """Padding-free batches: the examples of a batch are concatenated, with ``position_ids``
    restarting at 0 for each example, so no compute is spent on padding. Attention stays
    inside each example: transformers builds a block-diagonal mask from the position ids
    (or passes the sequence boundaries to FlashAttention).

    ``row_tokens=None`` puts the whole batch in one row (right for FlashAttention, whose
    cost is per example). With a mask-based attention (sdpa, eager) the cost grows with
    the square of the row length, so ``row_tokens`` caps it: examples are placed into rows
    of at most that many tokens (first fit, longest first) and the rows are padded to the
    longest one (a few tokens; those positions are never learned and attend only to
    themselves or their own example). ``row_tokens=LONGEST`` sizes the rows by the batch's
    longest example: each row costs what that example costs alone, and the shorter ones
    share rows instead of being padded - never more attention than a padded batch, and
    fewer rows (rows of max_seq_len would cost row/example-length times more attention)."""

    LONGEST = -1

    def __init__(self, row_tokens: Optional[int] = None) -> None:
        super().__init__()
        self.row_tokens = row_tokens

    def _rows(self, features: list[dict]) -> list[list[dict]]:
        if not self.row_tokens:
            return [features]
        cap = self.row_tokens
        if cap == self.LONGEST:
            cap = max((len(f["input_ids"]) for f in features), default=1)
        rows: list[list[dict]] = []
        room: list[int] = []
        for f in sorted(features, key=lambda f: -len(f["input_ids"])):
            n = len(f["input_ids"])
            for i, left in enumerate(room):
                if n <= left:
                    rows[i].append(f)
                    room[i] -= n
                    break
            else:
                rows.append([f])
                room.append(max(cap, n) - n)
        return rows

    def __call__(self, features: list[dict]) -> dict:
        import torch

        features = [f for f in features if len(f["input_ids"])]
        packed = []
        for row in self._rows(features):
            ids: list[int] = []
            labels: list[int] = []
            pos: list[int] = []
            for f in row:
                n = len(f["input_ids"])
                ids += f["input_ids"]
                lab = list(f["labels"])
                lab[0] = IGNORE  # the first token is never predicted from the previous example
                labels += lab
                pos += range(n)
            packed.append((ids, labels, pos))
        width = max(len(ids) for ids, _, _ in packed)
        self._count(sum(len(ids) for ids, _, _ in packed), width * len(packed))
        for ids, labels, pos in packed:
            extra = width - len(ids)
            if extra:
                # Padding continues the last example's positions: causal attention keeps the
                # real tokens from seeing it, and it is not learned.
                ids += [ids[-1]] * extra
                labels += [IGNORE] * extra
                pos += range(pos[-1] + 1, pos[-1] + 1 + extra)
        # use_cache=False matters: with a KV cache transformers does not look for packed
        # sequences in the position ids, and attention would cross example boundaries.
        return {"input_ids": torch.tensor([p[0] for p in packed], dtype=torch.long),
                "labels": torch.tensor([p[1] for p in packed], dtype=torch.long),
                "position_ids": torch.tensor([p[2] for p in packed], dtype=torch.long),
                "use_cache": False}


class PaddedCollator(_TokenCounter):
    """Right-padded batches (with ``attention_mask``), to a multiple of 8 tokens."""

    def __init__(self, pad_id: int, multiple_of: int = 8) -> None:
        self.pad_id = pad_id
        self.multiple_of = multiple_of
        super().__init__()

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        width = -(-longest // self.multiple_of) * self.multiple_of
        self._count(sum(len(f["input_ids"]) for f in features), width * len(features))
        ids, labels, mask = [], [], []
        for f in features:
            n = len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_id] * (width - n))
            labels.append(list(f["labels"]) + [IGNORE] * (width - n))
            mask.append([1] * n + [0] * (width - n))
        return {"input_ids": torch.tensor(ids, dtype=torch.long), "labels": torch.tensor(labels, dtype=torch.long),
                "attention_mask": torch.tensor(mask, dtype=torch.long)}


def packing_supported(model) -> bool:
    """Can ``model`` keep packed examples apart using position ids alone? Yes for
    transformers' own models when transformers builds masks from position ids (4.54+) or
    with FlashAttention; not assumed for models with their own (remote) code."""
    base = model
    for attr in ("get_base_model",):
        if hasattr(base, attr):
            base = getattr(base, attr)()
    if not type(base).__module__.startswith("transformers."):
        return False
    impl = str(getattr(base.config, "_attn_implementation", "") or "")
    if "flash" in impl:
        return True
    try:
        from transformers.masking_utils import find_packed_sequence_indices  # noqa: F401
    except ImportError:
        return False
    return True


# -- the run -----------------------------------------------------------------------------------


class _Run:
    """State shared by the callback and train(): where events go, timings, best eval loss."""

    def __init__(self, config: TrainConfig, output_dir: str, device: str, progress, cancel, stop, on_event) -> None:
        self.config = config
        self.output_dir = output_dir
        self.device = device
        self.progress = progress
        self.cancel = cancel
        self.stop = stop
        self.on_event = on_event
        self.trainer = None
        self.t0 = time.perf_counter()
        self.last_t = self.t0
        self.last_tokens = 0
        self.last_samples = 0
        self.max_steps = 0
        self.first_loss: Optional[float] = None
        self.final_loss: Optional[float] = None
        self.final_eval_loss: Optional[float] = None
        self.last_eval_step: Optional[int] = None
        self.best_eval_loss: Optional[float] = None
        self.best_step: Optional[int] = None
        self.best_saved = False
        self.bad_evals = 0
        self.stopped = False
        self.early_stopped = False
        self.train_loss: Optional[float] = None
        self.start_info: dict = {}
        self.metrics_path = os.path.join(output_dir, METRICS_FILE)
        self.full_paths = False

    # events
    def emit(self, event: dict, record: bool = False) -> None:
        event = {k: _clean(v) for k, v in event.items()}
        if record:
            self.record(event)
        if self.on_event is not None:
            self.on_event(event)

    def record(self, event: dict) -> None:
        """Append ``event`` to metrics.jsonl (several processes: rank 0 writes the run files)."""
        if is_main_process():
            with open(self.metrics_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(event, ensure_ascii=False) + "\n")

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("training cancelled")

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.t0, 3)

    def tokens(self) -> tuple[int, int]:
        t = self.trainer
        return sum_over_ranks(t.tokens_seen, t.samples_seen) if t is not None else (0, 0)

    # Trainer hooks
    def on_train_begin(self, state) -> None:
        self.max_steps = int(state.max_steps or 0)
        self.t0 = self.last_t = time.perf_counter()
        self.emit({"type": "start", "max_steps": self.max_steps, **self.start_info})
        if self.progress is not None:
            self.progress(int(state.global_step), self.max_steps, "training")

    def on_step_end(self, state, control) -> None:
        self.check_cancel()
        if self.stop is not None and not self.stopped and self.stop():
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        if self.progress is not None:
            msg = f"step {state.global_step}/{self.max_steps}"
            if self.final_loss is not None:
                msg += f", loss {self.final_loss:.4f}"
            self.progress(int(state.global_step), self.max_steps, msg)

    def on_log(self, state, logs: dict) -> None:
        now = time.perf_counter()
        step = int(state.global_step)
        base = {"step": step, "epoch": logs.get("epoch", state.epoch), "gpu_memory_bytes": _gpu_memory(self.device),
                "elapsed": self.elapsed(), "max_steps": self.max_steps}
        if "loss" in logs:
            tokens, samples = self.tokens()
            dt = max(now - self.last_t, 1e-9)
            event = {"type": "train", **base, "loss": logs["loss"], "learning_rate": logs.get("learning_rate", 0.0),
                     "grad_norm": logs.get("grad_norm", 0.0),
                     "tokens_per_second": round((tokens - self.last_tokens) / dt, 2),
                     "samples_per_second": round((samples - self.last_samples) / dt, 3)}
            self.last_t, self.last_tokens, self.last_samples = now, tokens, samples
            loss = _clean(logs["loss"])
            if loss is not None:
                if self.first_loss is None:
                    self.first_loss = loss
                self.final_loss = loss
            self.emit(event, record=True)
        elif "eval_loss" in logs:
            loss = _clean(logs["eval_loss"])
            best = loss is not None and (self.best_eval_loss is None or loss < self.best_eval_loss)
            event = {"type": "eval", **base, "eval_loss": logs["eval_loss"],
                     "samples_per_second": logs.get("eval_samples_per_second", 0.0), "best": best}
            self.final_eval_loss = loss
            self.last_eval_step = step
            self.emit(event, record=True)
            self.last_t = time.perf_counter()  # evaluation time is not training throughput
        elif "train_loss" in logs:
            self.train_loss = _clean(logs["train_loss"])

    def on_evaluate(self, state, control, metrics: dict, model) -> None:
        self.check_cancel()
        loss = _clean((metrics or {}).get("eval_loss"))
        if loss is None:
            return
        step = int(state.global_step)
        patience = self.config.early_stopping_patience
        if self.best_eval_loss is None or loss < self.best_eval_loss:
            self.best_eval_loss, self.best_step, self.bad_evals = loss, step, 0
            if patience > 0 and model is not None:
                self._save_best(model)
            return
        self.bad_evals += 1
        if patience > 0 and self.bad_evals >= patience and not control.should_training_stop:
            self.early_stopped = True
            control.should_training_stop = True
            self.emit({"type": "early_stop", "step": step, "best_step": self.best_step,
                       "best_eval_loss": self.best_eval_loss})

    def _save_best(self, model) -> None:
        """Keep the adapter with the lowest validation loss in ``best/`` (written beside, then swapped)."""
        final = os.path.join(self.output_dir, BEST_DIR)
        tmp = final + ".tmp"
        main = is_main_process()
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        if world_size() > 1 and self.trainer is not None:
            self.trainer.save_model(tmp)  # every rank (FSDP gathers the shards); rank 0 writes
        else:
            model.save_pretrained(tmp)
        if main:
            scrub_adapter_files(tmp, self.config, self.output_dir, self.full_paths)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        self.best_saved = True

    def on_save(self, state) -> None:
        """A checkpoint was written: its adapter files name the base model as run files do."""
        folder = os.path.join(self.output_dir, f"checkpoint-{int(state.global_step)}")
        if is_main_process() and os.path.isdir(folder):
            scrub_adapter_files(folder, self.config, self.output_dir, self.full_paths)


def _callback_class():
    from transformers import TrainerCallback

    class RunCallback(TrainerCallback):
        """Forwards Trainer events to the run (metrics file, events, progress, stop/cancel)."""

        def __init__(self, run: _Run) -> None:
            self.run = run

        def on_train_begin(self, args, state, control, **kwargs):
            self.run.on_train_begin(state)

        def on_step_end(self, args, state, control, **kwargs):
            self.run.on_step_end(state, control)

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.run.on_log(state, logs or {})

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            self.run.on_evaluate(state, control, metrics, kwargs.get("model"))

        def on_save(self, args, state, control, **kwargs):
            self.run.on_save(state)

        def on_prediction_step(self, args, state, control, **kwargs):
            self.run.check_cancel()

    return RunCallback


def _trainer_class():
    from transformers import Trainer

    class FtTrainer(Trainer):
        """Trainer that counts the examples and tokens it trains on and checks for cancel
        before every micro-batch. The collator notes each batch's real tokens as it makes it;
        they count when the batch is trained on (the data loader works a batch or more ahead,
        so counting at collation would credit tokens to the wrong logging window)."""

        def __init__(self, *args, run: Optional[_Run] = None, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.run = run
            self.samples_seen = 0
            self.tokens_seen = 0

        def training_step(self, model, inputs, *args, **kwargs):
            if self.run is not None:
                self.run.check_cancel()
            pending = getattr(self.data_collator, "pending", None)
            if pending:
                self.tokens_seen += pending.popleft()
            pos = inputs.get("position_ids")
            if pos is not None and inputs.get("attention_mask") is None:
                self.samples_seen += int((pos == 0).sum())  # packed: one 0 per example
            else:
                self.samples_seen += int(inputs["input_ids"].shape[0])
            return super().training_step(model, inputs, *args, **kwargs)

        def evaluate(self, *args, **kwargs):
            collator = self.data_collator
            if hasattr(collator, "counting"):
                collator.counting = False  # validation batches are not training throughput
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                if hasattr(collator, "counting"):
                    collator.counting = True

    return FtTrainer


def _training_arguments(config: TrainConfig, output_dir: str, device: str, has_eval: bool, bf16: bool,
                        fp16: bool, group_by_length: bool):
    """TrainingArguments for this run, spelled for the installed transformers version."""
    import inspect

    from transformers import TrainingArguments

    params = inspect.signature(TrainingArguments.__init__).parameters
    kw = dict(
        output_dir=output_dir,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        lr_scheduler_type="cosine",
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        bf16=bf16,
        fp16=fp16,
    )
    if config.gradient_checkpointing:
        # transformers 5 renamed gradient checkpointing to activation checkpointing
        name = "activation_checkpointing" if "activation_checkpointing" in params else "gradient_checkpointing"
        kw[name] = True
        kw[name + "_kwargs"] = {"use_reentrant": False}
    if "warmup_ratio" in params:
        kw["warmup_ratio"] = config.warmup_ratio
    else:  # transformers 5: a float below 1 is a fraction of the steps
        kw["warmup_steps"] = config.warmup_ratio
    strategy_key = "eval_strategy" if "eval_strategy" in params else "evaluation_strategy"
    if not has_eval:
        kw[strategy_key] = "no"
    elif config.eval_steps > 0:
        kw[strategy_key] = "steps"
        kw["eval_steps"] = config.eval_steps
    else:
        kw[strategy_key] = "epoch"
    if group_by_length:
        if "group_by_length" in params:
            kw["group_by_length"] = True
        elif "train_sampling_strategy" in params:
            kw["train_sampling_strategy"] = "group_by_length"
    if device == "cpu" and "use_cpu" in params:
        kw["use_cpu"] = True
    if "use_cache" in params:
        kw["use_cache"] = False
    kw.update(distributed_arguments(config, params))  # several processes: DDP or FSDP settings
    return TrainingArguments(**{k: v for k, v in kw.items() if k in params})


def _prepare_examples(tokenizer, records, config: TrainConfig, what: str, run: _Run) -> tuple[list[dict], int, int]:
    """Rendered examples, and how many were cut at max_seq_len / left out (nothing to learn)."""
    rows, cut, empty = [], 0, 0
    for i, rec in enumerate(records):
        if i % 200 == 0:
            run.check_cancel()
            if run.progress is not None:
                run.progress(0, 0, f"preparing {what} examples {i}/{len(records)}")
        ids, labels = render_full(tokenizer, rec, config.assistant_only_loss)
        if len(ids) > config.max_seq_len:
            cut += 1
            ids, labels = ids[: config.max_seq_len], labels[: config.max_seq_len]
        if not any(lab != IGNORE for lab in labels):
            empty += 1
            continue
        rows.append({"input_ids": ids, "labels": labels})
    return rows, cut, empty


def _resume_metrics(run: _Run, step: int) -> None:
    """On resume, drop metric lines logged after the checkpoint (they are logged again)
    and restore the best validation loss seen up to it."""
    kept = [e for e in read_metrics(run.output_dir)
            if int(e.get("step", 0)) <= step and e.get("type") not in ("end", "failed")]
    if is_main_process():
        write_text_atomic(run.metrics_path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in kept))
    for e in kept:
        if e.get("type") == "eval" and e.get("eval_loss") is not None:
            if run.best_eval_loss is None or e["eval_loss"] < run.best_eval_loss:
                run.best_eval_loss, run.best_step = e["eval_loss"], int(e["step"])
    run.best_saved = os.path.isdir(os.path.join(run.output_dir, BEST_DIR))
    losses = [e["loss"] for e in kept if e.get("type") == "train" and e.get("loss") is not None]
    if losses:
        run.first_loss = losses[0]


def train(config: TrainConfig, data: TrainData, progress: Optional[ProgressCallback] = None,
          cancel: Optional[CancelCheck] = None, on_event: Optional[EventCallback] = None,
          stop: Optional[StopCheck] = None, resume: bool = False, full_paths: bool = False) -> TrainResult:
    """Train an adapter on ``data`` as ``config`` says; see the module docstring.

    ``resume`` continues from the newest complete checkpoint (torn ones, cut off while
    saving, are skipped and removed; a warning says which checkpoint is used). Run files
    name the base model relative to the run folder, or by its folder name
    (:mod:`ftcurate.train.runfiles`); ``full_paths`` writes absolute paths instead.

    Raises :class:`LeakageError` while the project's last scan shows unresolved leakage
    (unless ``config.allow_leakage``), :class:`TrainError` for a bad model folder, an
    impossible setting, GPU out of memory or a full disk (memory is freed first), and
    :class:`~ftcurate.core.progress.Cancelled` when ``cancel()`` returned True."""
    problems = config.problems()
    if problems:
        raise TrainError("Bad training settings: " + "; ".join(problems) + ".", key="bad_config")
    output_dir = os.path.abspath(config.output_dir)
    warned: list[str] = []

    def warn(message: str) -> None:
        warned.append(message)
        if on_event is not None:
            on_event({"type": "warning", "message": message})

    # Checks that need no model: leakage, model folder, method, output folder.
    leaks = list(data.leakage)
    if data.project_path:
        # Look again (a scan may have run since the data was loaded). Leaks found at load
        # time still count: those records are in data.train even if rejected since.
        from ..core.project.store import Project

        with Project.open(data.project_path, readonly=True) as project:
            seen = {(h["index"], h["test_index"], h["kind"]) for h in leaks}
            leaks += [h for h in data.leaks_in_training(check_leakage(project))
                      if (h["index"], h["test_index"], h["kind"]) not in seen]
    if leaks:
        if not config.allow_leakage:
            raise LeakageError(leaks)
        warn(f"Training despite leakage (allowed): {describe_leakage(leaks)}; evaluation on those records "
             "will look better than it is.")
    check = check_model_folder(config.model_dir)
    if not check.ok:
        raise TrainError(check.message, "Choose a folder with config.json, the tokenizer files and "
                                        "*.safetensors weights.", key="bad_model")
    device = detect_device()
    problem = strategy_problem(config, device) if world_size() > 1 else ""
    if problem:
        raise TrainError(problem, key="bad_config")
    if config.method == "qlora":
        if device != "cuda":
            raise TrainError("QLoRA needs an NVIDIA GPU (4-bit weights through bitsandbytes); this machine has "
                             f"{'no GPU' if device == 'cpu' else 'an Apple GPU'}.",
                             "Use method 'lora' (or 'dora') instead.", key="qlora_unavailable")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise TrainError("QLoRA needs the bitsandbytes package, which is not installed.",
                             "Install it (pip install bitsandbytes) or use method 'lora'.",
                             key="qlora_unavailable") from None
    plan = plan_output_dir(output_dir, resume)
    resume_from = plan.checkpoint
    if resume_from:
        refused = refused_pickles(resume_from)
        if refused:
            path, why = refused[0]
            raise TrainError(f"Cannot resume: {pickle_refused_message(path)} ({why}).",
                             "That checkpoint was not written by ftcurate's training, or was changed since: start "
                             "a new run in a new output folder.", key="pickle_refused")
    if len(data.train) == 0:
        raise TrainError("No training examples.", key="no_data")
    if resume_from and resume_note(output_dir, config):
        warn(resume_note(output_dir, config))

    for w in data.warnings:
        warn(w)
    n = len(data.train)
    if n < SMALL_SET:
        warn(f"Only {n} training examples: under {SMALL_SET} a fine-tune learns little; aim for 500-1,000 "
             "clean examples.")
    elif n < OVERFIT_SET:
        warn(f"{n} training examples: under {OVERFIT_SET:,} overfitting is likely; keep epochs low and watch "
             "the validation loss.")
    if not data.eval:
        warn("No validation set: the validation loss cannot be watched and early stopping is off.")
    if device == "cpu":
        warn("Training on the CPU: this works but is slow; a GPU is recommended for real models.")
    if is_demo_model(config.model_dir):
        warn("This is the demo model (random weights): the run only shows that the pipeline works.")

    os.makedirs(output_dir, exist_ok=True)
    for note in plan.notes:
        warn(note)
    main = is_main_process()  # several processes: rank 0 alone changes the run folder
    if main:
        remove_torn_checkpoints(output_dir)
    if plan.restart and main:  # an earlier attempt that left nothing to resume from
        for name in (METRICS_FILE, BEST_DIR, BEST_DIR + ".tmp"):
            path = os.path.join(output_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.unlink(path)
    run = _Run(config, output_dir, device, progress, cancel, stop, on_event)
    run.full_paths = full_paths
    trainer = model = None
    try:
        import torch
        import transformers
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.utils.logging.disable_progress_bar()
        transformers.set_seed(config.seed)
        run.check_cancel()
        if progress is not None:
            progress(0, 0, "loading the tokenizer")
        try:
            tokenizer = AutoTokenizer.from_pretrained(config.model_dir, trust_remote_code=config.trust_remote_code)
        except (OSError, ValueError) as exc:
            raise TrainError(f"Cannot load the tokenizer from {config.model_dir}: {exc}",
                             "Check the tokenizer files of the model folder.", key="bad_model") from None
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is None:
                raise TrainError("The tokenizer has neither a pad nor an end-of-sequence token.",
                                 "Use a model folder whose tokenizer defines eos_token.", key="bad_tokenizer")
            tokenizer.pad_token = tokenizer.eos_token
            warn("The tokenizer has no pad token; using the end-of-sequence token for padding.")
        if not has_chat_template(tokenizer):
            tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
            warn("The tokenizer has no chat template: examples use ftcurate's fallback format "
                 "('<|role|>' line, text, EOS after replies); the tokenizer saved with the adapter carries it.")

        train_rows, cut, empty = _prepare_examples(tokenizer, data.train, config, "training", run)
        eval_rows, ecut, eempty = _prepare_examples(tokenizer, data.eval, config, "validation", run)
        if cut + ecut:
            warn(f"{cut + ecut} example(s) are longer than max_seq_len={config.max_seq_len} tokens and were cut "
                 "(their ends are not learned); raise max_seq_len if memory allows.")
        if empty + eempty:
            warn(f"{empty + eempty} example(s) have nothing to learn within max_seq_len and are left out.")
        if not train_rows:
            raise TrainError("No training example has assistant tokens to learn within max_seq_len.",
                             "Raise max_seq_len or check that the records have assistant replies.", key="no_data")

        # The model.
        run.check_cancel()
        if progress is not None:
            progress(0, 0, "loading the model")
        bf16 = fp16 = False
        load_kw: dict = {"use_safetensors": True, "trust_remote_code": config.trust_remote_code}
        if device == "cuda":
            if torch.cuda.is_bf16_supported():
                load_kw[_dtype_kwarg()], bf16 = torch.bfloat16, True
            else:
                load_kw[_dtype_kwarg()], fp16 = torch.float16, True
        else:
            load_kw[_dtype_kwarg()] = torch.float32
        if device == "cuda" and config.packing and _flash_attn_available():
            load_kw["attn_implementation"] = "flash_attention_2"  # varlen kernels: packing at full speed
        if config.method == "qlora":
            from transformers import BitsAndBytesConfig

            load_kw["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float16)
            load_kw["device_map"] = {"": local_rank()}  # this process's GPU
        try:
            try:
                model = AutoModelForCausalLM.from_pretrained(config.model_dir, **load_kw)
            except (ValueError, ImportError):
                if "attn_implementation" not in load_kw:
                    raise
                del load_kw["attn_implementation"]  # this model has no FlashAttention path: default attention
                model = AutoModelForCausalLM.from_pretrained(config.model_dir, **load_kw)
        except (OSError, ValueError, KeyError, ImportError) as exc:
            if _is_disk_full(exc):
                raise
            raise TrainError(f"Cannot load the model from {config.model_dir}: {exc}",
                             "Check that the folder is a complete causal language model (config.json, "
                             "*.safetensors).", key="bad_model") from None
        model.config.use_cache = False
        if config.method == "qlora":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
        elif config.gradient_checkpointing:
            model.enable_input_require_grads()
        lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=config.target_module_list(), bias="none", task_type="CAUSAL_LM",
                          use_dora=config.method == "dora")
        try:
            model = get_peft_model(model, lora)
        except ValueError as exc:
            raise TrainError(f"Cannot add adapters: {exc}", "Check target_modules (e.g. 'all-linear').",
                             key="bad_config") from None

        packing = config.packing and packing_supported(model)
        if config.packing and not packing:
            warn("This model cannot keep packed examples apart; using padded batches grouped by length.")
        if packing:
            # FlashAttention works per example: one row. Mask-based attention costs the
            # square of the row length: rows as long as the batch's longest example
            # (benchmarks/bench_train.py: x1.51 the baseline on CPU, against x1.33 with
            # rows of max_seq_len).
            flash = "flash" in str(getattr(model.config, "_attn_implementation", "") or "")
            collator = PackedCollator(None if flash else PackedCollator.LONGEST)
        else:
            collator = PaddedCollator(tokenizer.pad_token_id)
        args = _training_arguments(config, output_dir, device, bool(eval_rows), bf16, fp16,
                                   group_by_length=not packing)
        if data.source:  # the run file says what was trained on (evaluation's few-shot examples)
            config = replace(config, data=data.source, uncurated=data.uncurated)
        if main:
            save_run_config(config, output_dir, full_paths)
        if resume_from:
            _resume_metrics(run, checkpoint_step(resume_from))
        run.start_info = {"num_train": len(train_rows), "num_eval": len(eval_rows), "device": device,
                          "output_dir": output_dir, "resumed_from": resume_from, "packing": packing,
                          "method": config.method, "world_size": world_size(), "strategy": config.strategy,
                          "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
        trainer = _trainer_class()(model=model, args=args, data_collator=collator,
                                   train_dataset=Examples(train_rows),
                                   eval_dataset=Examples(eval_rows) if eval_rows else None,
                                   callbacks=[_callback_class()(run)], run=run)
        run.trainer = trainer
        from transformers.trainer_callback import PrinterCallback, ProgressCallback as TqdmCallback

        for cb in (PrinterCallback, TqdmCallback):  # they print to stdout; progress goes through ours
            trainer.remove_callback(cb)

        trainer.train(resume_from_checkpoint=resume_from)
        state = trainer.state
        if eval_rows and not run.stopped and run.last_eval_step != state.global_step:
            trainer.evaluate()  # the final validation loss (the callback records it)
        run.check_cancel()

        # The adapter: the best-validation one when early stopping is on, else the last.
        adapter_is_best = False
        if (config.early_stopping_patience > 0 and run.best_saved and run.best_step is not None
                and run.best_step != state.global_step and run.final_eval_loss is not None
                and run.best_eval_loss is not None and run.best_eval_loss < run.final_eval_loss):
            if main:
                best = os.path.join(output_dir, BEST_DIR)
                for name in os.listdir(best):
                    shutil.copy2(os.path.join(best, name), os.path.join(output_dir, name))
            adapter_is_best = True
        else:
            if world_size() > 1:
                trainer.save_model(output_dir)  # every rank (FSDP gathers the shards); rank 0 writes
            else:
                model.save_pretrained(output_dir)
            adapter_is_best = run.best_step is not None and run.best_step == state.global_step
        if main:
            shutil.rmtree(os.path.join(output_dir, BEST_DIR), ignore_errors=True)
            scrub_adapter_files(output_dir, config, output_dir, full_paths)
            tokenizer.save_pretrained(output_dir)

        tokens, _ = run.tokens()
        batch_tokens = sum_over_ranks(int(getattr(collator, "batch_tokens", 0)))[0] or tokens
        result = TrainResult(
            output_dir=output_dir, adapter_dir=output_dir, global_step=int(state.global_step),
            max_steps=int(state.max_steps), first_loss=run.first_loss, final_loss=run.final_loss,
            train_loss=run.train_loss, final_eval_loss=run.final_eval_loss, best_eval_loss=run.best_eval_loss,
            best_step=run.best_step, adapter_is_best=adapter_is_best, stopped=run.stopped,
            early_stopped=run.early_stopped, resumed_from=resume_from, device=device, num_train=len(train_rows),
            num_eval=len(eval_rows), tokens=tokens, batch_tokens=batch_tokens, world_size=world_size(),
            elapsed=run.elapsed(), metrics_path=run.metrics_path,
            warnings=warned)
        end = {"type": "end", **result.to_dict()}
        # metrics.jsonl ends with how the run ended (the runs list reads it), without paths
        run.record({"type": "end", "step": result.global_step,
                    **{k: _clean(end[k]) for k in END_RECORDED}})
        run.emit(end)
        return result
    except Exception as exc:  # noqa: BLE001 - sorted out below
        # Keep no reference to the failed frames (they hold the model and its tensors),
        # so that the memory can really be freed before the caller sees the error.
        if isinstance(exc, (Cancelled, TrainError)):
            pending = exc.with_traceback(None)
        elif isinstance(exc, pickle.UnpicklingError):  # a weights_only load refused a file
            pending = TrainError(f"Cannot resume: a state file in {resume_from or output_dir} is a pickle file; "
                                 "ftcurate refuses to load pickles (" + str(exc).split("\n")[0] + ").",
                                 "Start a new run in a new output folder.", key="pickle_refused")
        elif _is_oom(exc):
            pending = TrainError(
                f"The {'GPU' if device != 'cpu' else 'machine'} ran out of memory during training.",
                "Lower batch_size (and raise grad_accum to keep the effective batch), lower max_seq_len, turn on "
                "gradient_checkpointing, or use qlora; the memory estimate shows what takes the space.",
                key="out_of_memory")
        elif _is_disk_full(exc):
            pending = TrainError(f"The disk is full: cannot write to {output_dir}.",
                                 "Free some space or choose an output folder on another disk; checkpoints are "
                                 "written every save_steps steps (fewer: raise save_steps).", key="disk_full")
        else:
            raise
    finally:
        if trainer is not None:
            trainer.run = None
        run.trainer = None
        trainer = model = None
        _free_memory()
    pending.__context__ = pending.__cause__ = None
    raise pending
