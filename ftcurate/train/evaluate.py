"""Compare a base model with its fine-tuned adapter on held-out data.

``evaluate`` computes the loss (and perplexity) of the assistant replies of a held-out set
under the base model and under base + adapter, and shows greedy generations of both for a
few prompts next to the reference answer. A ``general_path`` set (everyday conversations,
unrelated to the fine-tune) shows whether the tuning hurt general ability.

The base model is loaded once: the tuned numbers come from the same weights with the
adapter switched on, the base numbers with it switched off.
"""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Callable, Optional, Sequence, Union

from ..core.io.fileio import write_text_atomic
from ..core.progress import CancelCheck, ProgressCallback, Reporter
from ..core.project.records import Record
from .data import (FALLBACK_CHAT_TEMPLATE, IGNORE, format_chat, has_chat_template, is_project_file,
                   prompt_and_reference, render)
from .model import adapter_folder_problem, check_model_folder, detect_device

REPORT_FILE = "eval_report.json"
REPORT_MD = "eval_report.md"
DEFAULT_MAX_LEN = 2048


class EvalError(ValueError):
    """The evaluation cannot run (bad model or adapter folder, no data)."""


def load_eval_records(source: Union[str, Sequence[Record]]) -> list[Record]:
    """Records to evaluate on: a list as given, a dataset file, or a project's test split
    (its golden held-out set; all test records, whatever their review state)."""
    if not isinstance(source, (str, os.PathLike)):
        return list(source)
    path = os.fspath(source)
    if not os.path.exists(path):
        raise EvalError(f"{path}: no such file")
    if is_project_file(path):
        from ..core.project.store import Project

        with Project.open(path, readonly=True) as project:
            records = [sr.record for sr in project.iter_records(split="test")]
        if not records:
            raise EvalError(f"{path}: the project has no test (held-out) records; import one with "
                            "`ftcurate import FILE --project P --role test`")
        return records
    from ..core.io.formats import DatasetReader

    return [item.record for item in DatasetReader(path) if item.ok]


def _tokenizer_dir(model_dir: str, adapter_dir: Optional[str]) -> str:
    """The adapter's own tokenizer when it has one (it carries the chat template used in training)."""
    if adapter_dir and any(os.path.isfile(os.path.join(adapter_dir, f))
                           for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")):
        return adapter_dir
    return model_dir


def _max_len(adapter_dir: Optional[str]) -> int:
    """max_seq_len of the training run when its run_config.json is there."""
    if adapter_dir:
        try:
            with open(os.path.join(adapter_dir, "run_config.json"), encoding="utf-8") as f:
                return int(json.load(f).get("max_seq_len") or DEFAULT_MAX_LEN)
        except (OSError, ValueError):
            pass
    return DEFAULT_MAX_LEN


def _load(model_dir: str, adapter_dir: Optional[str], trust_remote_code: bool = False):
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .runner import _dtype_kwarg

    transformers.utils.logging.disable_progress_bar()
    check = check_model_folder(model_dir)
    if not check.ok:
        raise EvalError(check.message)
    if adapter_dir is not None and adapter_folder_problem(adapter_dir):
        raise EvalError(adapter_folder_problem(adapter_dir))
    tokenizer = AutoTokenizer.from_pretrained(_tokenizer_dir(model_dir, adapter_dir),
                                              trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if not has_chat_template(tokenizer):
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    device = detect_device()
    dtype = torch.float32
    if device == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True, trust_remote_code=trust_remote_code,
                                                 **{_dtype_kwarg(): dtype})
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    model.to(device)
    model.eval()
    return tokenizer, model, device


def _loss(model, tokenizer, records: list[Record], max_len: int, device: str, rep: Reporter,
          label: str, offset: int) -> dict:
    """Token-weighted mean loss of the assistant replies, and its perplexity."""
    import torch

    total, count = 0.0, 0
    for i, rec in enumerate(records):
        rep.tick(offset + i, label)
        ids, labels = render(tokenizer, rec, max_len, assistant_only=True)
        n = sum(1 for lab in labels[1:] if lab != IGNORE)  # the model predicts labels[1:]
        if not n:
            continue
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids], device=device), labels=torch.tensor([labels], device=device))
        total += float(out.loss) * n
        count += n
    if not count:
        return {"loss": None, "perplexity": None}
    loss = total / count
    return {"loss": round(loss, 6), "perplexity": round(math.exp(min(loss, 700)), 4)}


def _generate(model, tokenizer, messages: list[dict], tools, max_new_tokens: int, device: str) -> str:
    import torch

    prompt = format_chat(tokenizer, messages, tools, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


def evaluate(model_dir: str, data_path_or_records: Union[str, Sequence[Record]], adapter_dir: Optional[str] = None,
             max_new_tokens: int = 64, num_generations: int = 5, progress: Optional[ProgressCallback] = None,
             cancel: Optional[CancelCheck] = None, general_path: Optional[str] = None,
             trust_remote_code: bool = False, max_len: Optional[int] = None,
             on_partial: Optional[Callable[[dict], None]] = None) -> dict:
    """Base vs tuned on held-out data::

        {"base": {"loss", "perplexity"}, "tuned": {...} (with an adapter),
         "generations": [{"prompt", "reference", "base", "tuned"}],
         "general": {"base": {...}, "tuned": {...}} (with general_path),
         "examples": n, "model_dir", "adapter_dir", "data", "max_len"}

    Loss is the mean per-token cross-entropy of the assistant replies (what training
    optimises); perplexity is exp(loss). Generations are greedy (``max_new_tokens`` each)
    for the first ``num_generations`` records. Examples are cut at ``max_len`` tokens
    (default: the training run's max_seq_len, else 2048). ``on_partial(report so far)`` is
    called after each loss and each generation (a copy, with ``"partial": True``), so that
    a long evaluation can show its results as they come."""
    from contextlib import nullcontext

    records = [r for r in load_eval_records(data_path_or_records)
               if any(m.role == "assistant" for m in r.messages)]
    if not records:
        raise EvalError("no held-out record has an assistant reply to compare")
    general = load_eval_records(general_path) if general_path else []
    max_len = max_len or _max_len(adapter_dir)
    tokenizer, model, device = _load(model_dir, adapter_dir, trust_remote_code)
    tuned = adapter_dir is not None
    n_gen = min(max(0, num_generations), len(records))
    sets = [records] + ([general] if general else [])
    total = sum(len(s) for s in sets) * (2 if tuned else 1) + n_gen
    rep = Reporter(progress, cancel, total=total, every=1)
    report: dict = {"model_dir": os.path.abspath(model_dir),
                    "adapter_dir": os.path.abspath(adapter_dir) if adapter_dir else None,
                    "data": data_path_or_records if isinstance(data_path_or_records, str) else "records",
                    "examples": len(records), "max_len": max_len}
    gens: list = []

    def share() -> None:
        if on_partial is not None:
            on_partial(copy.deepcopy({**report, "generations": gens, "partial": True}))  # no shared dicts

    try:
        done = 0

        def losses(recs, label, out):
            nonlocal done
            # The adapter off = the base model; on = the tuned model.
            with (model.disable_adapter() if tuned else nullcontext()):
                out["base"] = _loss(model, tokenizer, recs, max_len, device, rep, f"{label}: base", done)
            done += len(recs)
            share()
            if tuned:
                out["tuned"] = _loss(model, tokenizer, recs, max_len, device, rep, f"{label}: tuned", done)
                done += len(recs)
                share()

        losses(records, "loss", report)
        if general:
            report["general"] = {}
            losses(general, "general", report["general"])
        for rec in records[:n_gen]:
            rep.tick(done, "generating")
            done += 1
            messages, reference = prompt_and_reference(rec)
            item = {"prompt": messages[-1]["content"] if messages else "", "reference": reference}
            with (model.disable_adapter() if tuned else nullcontext()):
                item["base"] = _generate(model, tokenizer, messages, rec.tools, max_new_tokens, device)
            if tuned:
                item["tuned"] = _generate(model, tokenizer, messages, rec.tools, max_new_tokens, device)
            gens.append(item)
            share()
        report["generations"] = gens
        rep.check()
        if progress is not None:
            progress(total, total, "done")
    finally:
        del model
        from .runner import _free_memory

        _free_memory()
    return report


def report_markdown(report: dict) -> str:
    """A short human summary of an evaluation report."""
    lines = ["# Evaluation", "", f"Model: `{report.get('model_dir')}`"]
    if report.get("adapter_dir"):
        lines.append(f"Adapter: `{report['adapter_dir']}`")
    lines += [f"Held-out examples: {report.get('examples', 0)}", "", "| | loss | perplexity |", "|---|---|---|"]

    def row(name, m):
        if m and m.get("loss") is not None:
            lines.append(f"| {name} | {m['loss']:.4f} | {m['perplexity']:.2f} |")

    row("base", report.get("base"))
    row("tuned", report.get("tuned"))
    for key in ("base", "tuned"):
        row(f"general ({key})", (report.get("general") or {}).get(key))
    for i, g in enumerate(report.get("generations") or [], 1):
        lines += ["", f"## Example {i}", "", "**Prompt:** " + g.get("prompt", ""), "",
                  "**Reference:** " + g.get("reference", ""), "", "**Base:** " + g.get("base", "")]
        if "tuned" in g:
            lines += ["", "**Tuned:** " + g["tuned"]]
    return "\n".join(lines) + "\n"


def save_report(report: dict, run_dir: str) -> str:
    """Write ``eval_report.json`` and ``eval_report.md`` into ``run_dir``; returns the JSON path."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, REPORT_FILE)
    write_text_atomic(path, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    write_text_atomic(os.path.join(run_dir, REPORT_MD), report_markdown(report))
    return path


def merge_adapter(model_dir: str, adapter_dir: str, out_dir: str, trust_remote_code: bool = False) -> str:
    """Fold the adapter into the base weights and save a standalone model (safetensors,
    with the adapter's tokenizer) in ``out_dir``. The base is loaded in full precision
    (bf16 on a GPU), also for QLoRA adapters."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .runner import _dtype_kwarg, _free_memory

    check = check_model_folder(model_dir)
    if not check.ok:
        raise EvalError(check.message)
    if adapter_folder_problem(adapter_dir):
        raise EvalError(adapter_folder_problem(adapter_dir))
    dtype = torch.bfloat16 if detect_device() == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True, trust_remote_code=trust_remote_code,
                                                 **{_dtype_kwarg(): dtype})
    try:
        merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        os.makedirs(out_dir, exist_ok=True)
        merged.save_pretrained(out_dir)
        AutoTokenizer.from_pretrained(_tokenizer_dir(model_dir, adapter_dir),
                                      trust_remote_code=trust_remote_code).save_pretrained(out_dir)
    finally:
        model = merged = None  # noqa: F841
        _free_memory()
    return out_dir
