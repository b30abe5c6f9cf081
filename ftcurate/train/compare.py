"""Systems side by side on a golden set: did fine-tuning help, and did curation help?

:func:`compare` answers the whole golden set with each system and scores the answers:

* ``base``: the base model, zero-shot;
* ``fewshot``: the base model with k training examples as earlier turns of the chat
  (:mod:`ftcurate.train.fewshot`), taken from the adapter's own training data (its
  ``run_config.json`` names it) or from a file;
* ``tuned``: the base model with an adapter (several adapters: ``tuned:<folder name>`` each);
* ``raw``: the adapter trained with the same settings on the uncurated data.

The base model is loaded once; adapters are switched on and off. For each system it computes
the loss of the reference replies (per example) and generates an answer to every golden
prompt (:mod:`ftcurate.train.generate`, cached), then scores them
(:mod:`ftcurate.train.metrics`) with bootstrap intervals, on all items and, when the last
scan found training records that leak golden items, on the clean items alone. Paired
differences between systems give the verdict (:mod:`ftcurate.train.verdict`). A ``general``
set (everyday conversations) gets the same before (base) and after (adapters).

The report (a dict, see :func:`compare`) is what ``ftcurate evaluate --json`` prints and what
the Evaluate tab shows; :mod:`ftcurate.train.report` writes it as JSON, Markdown and HTML.
"""

from __future__ import annotations

import copy
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

from ..core.progress import Cancelled, CancelCheck, ProgressCallback
from ..core.project.records import Record
from .data import FALLBACK_CHAT_TEMPLATE, IGNORE, format_chat, has_chat_template, prompt_and_reference, render
from .evaluate import DEFAULT_MAX_LEN, EvalError, _max_len, _tokenizer_dir, load_eval_records
from .fewshot import FewShotSettings, fewshot_messages, fewshot_record, select_shots, usable_shots
from .generate import (DEFAULT_BATCH_SIZE, Decoding, GenerationCache, cache_key, folder_fingerprint,
                       generate_texts, is_oom)
from .golden import Golden, GoldenError, load_golden
from .metrics import (GENERATION_METRICS, LOSS_METRICS, METRICS, MetricError, MetricOptions, Scorer,
                      default_metrics, headline_metric, paired_difference, parse_metric_list, summarize,
                      summarize_loss)
from .model import adapter_folder_problem, check_model_folder, detect_device

KINDS = ("base", "fewshot", "tuned", "raw")
REPORT_VERSION = 2
CACHE_FILE = "eval_cache.jsonl"


class EvalInputError(EvalError):
    """Unusable input: a bad golden set, metric, schema or adapter (``ftcurate evaluate`` exit 2)."""


class EvalStopped(Cancelled):
    """The evaluation was cancelled; ``report`` holds the results so far (marked partial)."""

    def __init__(self, report: dict) -> None:
        super().__init__("evaluation cancelled")
        self.report = report


class EvalOutOfMemory(EvalError):
    """Generation ran out of memory even one prompt at a time; ``report`` keeps the results so far."""

    def __init__(self, message: str, report: dict) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class CompareSettings:
    """What to compare and how. ``baselines``: the systems to show (None: every one that can
    run: base, fewshot when there are examples, tuned with adapters, raw with a raw adapter;
    a system named here that cannot run is an error). ``metrics``: None picks them from the
    references (:func:`~ftcurate.train.metrics.default_metrics`)."""

    baselines: Optional[Sequence[str]] = None
    metrics: Optional[Sequence[str]] = None
    metric_options: MetricOptions = field(default_factory=MetricOptions)
    decoding: Decoding = field(default_factory=Decoding)
    batch_size: int = DEFAULT_BATCH_SIZE
    fewshot: FewShotSettings = field(default_factory=FewShotSettings)
    fewshot_from: Optional[str] = None  # a dataset file or project; default: the adapter's training data
    max_len: Optional[int] = None  # default: the run's max_seq_len, else 2048
    general_path: Optional[str] = None
    cache_path: Optional[str] = None
    n_boot: int = 2000
    seed: int = 0
    limit: Optional[int] = None  # only the first N golden items
    golden_split: str = "test"  # a project's split to evaluate on: "test" (the golden set) or "validation"
    strict: bool = True  # a named system that cannot run is an error (False: a warning, e.g. in the app)
    trust_remote_code: bool = False

    def problems(self) -> list[str]:
        out = list(self.decoding.problems()) + list(self.fewshot.problems())
        unknown = [b for b in self.baselines or () if b not in KINDS]
        if unknown:
            out.append(f"unknown system(s) {', '.join(unknown)} (use {', '.join(KINDS)})")
        if self.batch_size < 1:
            out.append("the batch size must be at least 1")
        if self.limit is not None and self.limit < 1:
            out.append("limit must be at least 1")
        return out


# -- systems ----------------------------------------------------------------------------------------


@dataclass
class _System:
    name: str
    kind: str
    adapter: Optional[str] = None  # folder
    slot: Optional[str] = None  # peft adapter name
    outputs: list = field(default_factory=list)
    losses: list = field(default_factory=list)  # per example: mean token loss, or None
    tokens: list = field(default_factory=list)  # per example: scored tokens
    shots: list = field(default_factory=list)  # few-shot: examples in each prompt
    gen_done: bool = False
    loss_done: bool = False
    seconds: float = 0.0
    new_tokens: int = 0
    from_cache: int = 0

    def display(self, k: int) -> str:
        if self.kind == "base":
            return "the base model"
        if self.kind == "fewshot":
            return f"{k}-shot prompting"
        if self.kind == "raw":
            return "the model trained on the raw data"
        return "the tuned model" if self.name == "tuned" else f"the tuned model ({self.name.split(':', 1)[1]})"


def system_names(adapters: Sequence[str]) -> list[str]:
    """``tuned`` for one adapter; ``tuned:<folder name>`` each for several (made unique)."""
    if len(adapters) <= 1:
        return ["tuned"] * len(adapters)
    out: list[str] = []
    for path in adapters:
        base = "tuned:" + (os.path.basename(os.path.normpath(path)) or "adapter")
        name, n = base, 2
        while name in out:
            name, n = f"{base}-{n}", n + 1
        out.append(name)
    return out


def _load(model_dir: str, adapters: dict[str, str], trust_remote_code: bool, warnings: list[str]):
    """Tokenizer, model with every adapter loaded (peft names a0, a1, ...), device."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .runner import _dtype_kwarg

    transformers.utils.logging.disable_progress_bar()
    check = check_model_folder(model_dir)
    if not check.ok:
        raise EvalInputError(check.message)
    for path in adapters.values():
        problem = adapter_folder_problem(path)
        if problem:
            raise EvalInputError(problem)
    first = next(iter(adapters.values()), None)
    tokenizer = AutoTokenizer.from_pretrained(_tokenizer_dir(model_dir, first), trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise EvalInputError("The tokenizer has neither a pad nor an end-of-sequence token: answers cannot be "
                                 "generated in batches.")
        tokenizer.pad_token = tokenizer.eos_token
    if not has_chat_template(tokenizer):
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
        warnings.append("The model has no chat template: prompts use ftcurate's fallback format ('<|role|>' "
                        "lines). A base model never trained on it may answer poorly zero-shot; the tuned model "
                        "was trained on it.")
    device = detect_device()
    dtype = torch.float32
    if device == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    model = AutoModelForCausalLM.from_pretrained(model_dir, use_safetensors=True, trust_remote_code=trust_remote_code,
                                                 **{_dtype_kwarg(): dtype})
    if adapters:
        from peft import PeftModel

        slots = list(adapters)
        model = PeftModel.from_pretrained(model, adapters[slots[0]], adapter_name=slots[0])
        for slot in slots[1:]:
            model.load_adapter(adapters[slot], adapter_name=slot)
    model.to(device)
    model.eval()
    return tokenizer, model, device


def _use(model, system: _System):
    """A context in which ``model`` is ``system`` (its adapter on, or every adapter off)."""
    if system.slot is None:
        return model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()
    model.set_adapter(system.slot)
    return nullcontext()


def example_losses(model, tokenizer, records: Sequence[Record], max_len: int, device: str,
                   tick: Callable[[], None]) -> tuple[list[Optional[float]], list[int]]:
    """Per record: the mean cross-entropy of its assistant replies' tokens (None when it has
    none within ``max_len``) and how many tokens that is."""
    import torch

    losses: list[Optional[float]] = []
    tokens: list[int] = []
    for rec in records:
        tick()
        ids, labels = render(tokenizer, rec, max_len, assistant_only=True)
        n = sum(1 for lab in labels[1:] if lab != IGNORE)
        if not n:
            losses.append(None)
            tokens.append(0)
            continue
        with torch.no_grad():
            out = model(input_ids=torch.tensor([ids], device=device), labels=torch.tensor([labels], device=device))
        losses.append(float(out.loss))
        tokens.append(n)
    return losses, tokens


# -- the comparison ------------------------------------------------------------------------------------


def _pool_records(settings: CompareSettings, adapters: Sequence[str], warnings: list[str]) -> tuple[list[Record], str]:
    """The few-shot pool and where it came from ("" when there is none)."""
    from .data import DataError, load_data
    from .runfiles import run_training_data

    source = settings.fewshot_from
    if not source:
        for path in adapters:
            found = run_training_data(path)
            if found:
                source = found[0]  # a project: its approved records
                break
    if not source:
        return [], ""
    try:
        if settings.fewshot_from and not os.path.exists(settings.fewshot_from):
            raise EvalInputError(f"{settings.fewshot_from}: no such file (--fewshot-from)")
        data = load_data(source, val_fraction=0)
    except (DataError, OSError, ValueError) as exc:
        if settings.fewshot_from:
            raise EvalInputError(f"few-shot examples: {exc}") from None
        warnings.append(f"No few-shot examples: the adapter's training data cannot be read ({exc}).")
        return [], ""
    return usable_shots(data.train), os.path.abspath(source)


def _decide_systems(settings: CompareSettings, adapters: Sequence[str], raw_adapter: Optional[str],
                    has_pool: bool, warnings: list[str]) -> list[_System]:
    wanted = list(settings.baselines) if settings.baselines is not None else None
    out = []

    def want(kind: str, available: bool, why: str) -> bool:
        if wanted is None:
            return available
        if kind in wanted and not available:
            if settings.strict:
                raise EvalInputError(why)
            warnings.append(f"No {kind} system: {why}.")
            return False
        return kind in wanted

    if want("base", True, ""):
        out.append(_System("base", "base"))
    if want("fewshot", has_pool, "few-shot prompting needs examples: an adapter whose run_config.json names its "
                                 "training data, or --fewshot-from FILE"):
        out.append(_System("fewshot", "fewshot"))
    elif wanted is None and not has_pool and (settings.fewshot_from or adapters):
        warnings.append("No few-shot baseline: no examples to show (give --fewshot-from FILE, or an adapter "
                        "whose run_config.json names its training data).")
    if want("tuned", bool(adapters), "the tuned system needs an adapter (--adapter)"):
        for i, (name, path) in enumerate(zip(system_names(adapters), adapters)):
            out.append(_System(name, "tuned", os.path.abspath(path), f"a{i}"))
    if want("raw", bool(raw_adapter), "the raw system needs the adapter trained on the uncurated data "
                                      "(--raw-adapter)"):
        out.append(_System("raw", "raw", os.path.abspath(raw_adapter), "raw"))
    if not out:
        raise EvalInputError("nothing to compare: choose at least one system")
    return out


class _Progress:
    def __init__(self, progress: Optional[ProgressCallback], cancel: Optional[CancelCheck], total: int) -> None:
        self.progress = progress
        self.cancel = cancel
        self.total = total
        self.done = 0
        self.label = ""
        self._last = 0.0

    def tick(self, n: int = 1) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("evaluation cancelled")
        self.done += n
        now = time.monotonic()
        if self.progress is not None and (now - self._last > 0.1 or self.done >= self.total):
            self._last = now
            self.progress(min(self.done, self.total), self.total, self.label)


def compare(model_dir: str, golden: Union[str, Sequence[Record]], adapters: Sequence[str] = (),
            raw_adapter: Optional[str] = None, settings: Optional[CompareSettings] = None,
            progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
            on_partial: Optional[Callable[[dict], None]] = None, project_path: Optional[str] = None) -> dict:
    """Compare the systems on the golden set (a file, a project's test split, or records).

    Returns the report::

        {"version", "status": "complete", "model_dir", "data", "n_golden", "metrics", "headline",
         "systems": {NAME: {"kind", "adapter", "n", "metrics": {METRIC: {"mean", "ci95", "n"}}, ...}},
         "clean_only": {NAME: {...}} or None, "leaked": [index, ...],
         "comparisons": [{"a", "b", "metric", "mean", "ci95", "n", "set"}],
         "verdict": [str], "examples": [{"index", "source", "prompt", "reference", "leaked",
         "outputs": {NAME: str}, "scores": {NAME: {METRIC: float or None}}}],
         "general": {...} or None, "warnings": [...], ...}

    ``project_path``: the training project, whose last scan says which items of a held-out
    file are leaked (default: the adapter's training data when it is a project).
    ``on_partial(report so far)`` after each step (``"status": "running"``). Raises
    EvalInputError for unusable input, EvalStopped (a Cancelled, with ``.report``) when
    ``cancel()`` turned true, EvalOutOfMemory (with ``.report``) when even one answer at a
    time does not fit in memory."""
    from .report import build_report

    settings = settings or CompareSettings()
    problems = settings.problems()
    if problems:
        raise EvalInputError("; ".join(problems))
    adapters = [os.fspath(a) for a in adapters]
    warnings: list[str] = []
    if project_path is None:
        from .runfiles import run_training_data

        for path in adapters + ([raw_adapter] if raw_adapter else []):
            found = run_training_data(path)
            if found and _is_project(found[0]):
                project_path = found[0]
                break
    try:
        gold = load_golden(golden, project_path, settings.golden_split)
    except GoldenError as exc:
        raise EvalInputError(str(exc)) from None
    if settings.limit:
        _cut(gold, settings.limit)
    warnings += gold.notes
    prompts_refs = [prompt_and_reference(r) for r in gold.records]
    references = [ref for _, ref in prompts_refs]
    options = copy.copy(settings.metric_options)
    try:
        metrics = parse_metric_list(settings.metrics) if settings.metrics else default_metrics(references, options)
        scorer = Scorer(metrics, options)
    except MetricError as exc:
        raise EvalInputError(str(exc)) from None
    if not any(r.strip() for r in references):
        warnings.append("The golden set has no reference answers: only the answers side by side can be compared "
                        "(no loss, no task metric that needs a reference).")
    general: list[Record] = []
    if settings.general_path:
        try:
            general = load_eval_records(settings.general_path)
        except EvalError as exc:
            raise EvalInputError(str(exc)) from None
    pool, pool_source = ([], "")
    if settings.baselines is None or "fewshot" in settings.baselines:
        pool, pool_source = _pool_records(settings, adapters, warnings)
    systems = _decide_systems(settings, adapters, raw_adapter, bool(pool), warnings)
    max_len = settings.max_len or (_max_len(adapters[0]) if adapters else DEFAULT_MAX_LEN)
    general_systems = [s for s in systems if s.kind != "fewshot"] if general else []
    general_metrics = default_metrics([prompt_and_reference(r)[1] for r in general]) if general else []
    general_scorer = Scorer(general_metrics) if general else None
    state = _State(gold=gold, prompts_refs=prompts_refs, metrics=metrics, scorer=scorer, options=options,
                   systems=systems, settings=settings, warnings=warnings, model_dir=model_dir,
                   golden_source=golden if isinstance(golden, str) else "records", pool_source=pool_source,
                   pool_size=len(pool), max_len=max_len, general=general, general_systems=general_systems,
                   general_metrics=general_metrics, general_scorer=general_scorer)
    for s in systems:
        s.outputs = [None] * len(gold)
        s.losses, s.tokens = [None] * len(gold), [0] * len(gold)
    state.general_outputs = {s.name: [None] * len(general) for s in general_systems}
    state.general_losses = {s.name: ([None] * len(general), [0] * len(general)) for s in general_systems}

    slots = {s.slot: s.adapter for s in systems if s.slot}
    n = len(gold)
    total = sum(2 * n for _ in systems) + 2 * len(general) * len(general_systems)
    steps = _Progress(progress, cancel, total + (n if any(s.kind == "fewshot" for s in systems) else 0))
    model = None
    try:
        steps.label = "loading the model"
        if progress is not None:
            progress(0, steps.total, steps.label)
        tokenizer, model, device = _load(model_dir, slots, settings.trust_remote_code, warnings)
        context = _context_length(model, max_len)
        cache = GenerationCache(settings.cache_path)
        model_fp = folder_fingerprint(model_dir)
        shots: list[list[int]] = []
        if any(s.kind == "fewshot" for s in systems):
            steps.label = "choosing few-shot examples"
            shots = select_shots(pool, gold.records, settings.fewshot, cancel=cancel)
            steps.tick(n)

        def share() -> None:
            if on_partial is not None:
                on_partial(build_report(state, status="running", n_boot=200))

        for system in systems:
            records: list[Record] = list(gold.records)
            prompts_msgs = [m for m, _ in prompts_refs]
            if system.kind == "fewshot":
                prompts_msgs, records, system.shots = _fewshot_prompts(
                    tokenizer, pool, shots, gold.records, prompts_msgs, context, settings.decoding.max_new_tokens)
            with _use(model, system):
                steps.label = f"{system.name}: loss"
                cut = context if system.kind == "fewshot" else max_len  # the examples must not cut the reply
                system.losses, system.tokens = example_losses(model, tokenizer, records, cut, device, steps.tick)
                system.loss_done = True
                share()
                steps.label = f"{system.name}: answering"
                texts = [format_chat(tokenizer, m, r.tools, add_generation_prompt=True)
                         for m, r in zip(prompts_msgs, gold.records)]
                keys = [cache_key(model_fp, folder_fingerprint(system.adapter), settings.decoding, t) for t in texts]
                base_done = steps.done

                def progress_gen(done: int, total: int, label: str, _base=base_done) -> None:  # noqa: ARG001
                    steps.done = _base + done
                    steps.tick(0)

                result = generate_texts(model, tokenizer, texts, settings.decoding, device, settings.batch_size,
                                        progress=progress_gen, cancel=cancel, cache=cache, keys=keys,
                                        label=steps.label,
                                        max_prompt_tokens=max(16, context - settings.decoding.max_new_tokens))
                system.outputs = result.outputs
                system.seconds, system.new_tokens, system.from_cache = result.seconds, result.new_tokens, \
                    result.from_cache
                warnings.extend(f"{system.name}: {note}" for note in result.notes)
                if result.stopped == "cancelled":
                    raise Cancelled("evaluation cancelled")
                if result.stopped == "out_of_memory":
                    state.status_message = result.message
                    raise EvalOutOfMemory(result.message, build_report(state, status="out_of_memory"))
                system.gen_done = True
                share()
        for system in general_systems:
            _general(state, system, model, tokenizer, device, cache, model_fp, steps, context)
            share()
        if progress is not None:
            progress(steps.total, steps.total, "done")
    except Cancelled:
        raise EvalStopped(build_report(state, status="cancelled")) from None
    except EvalOutOfMemory:
        raise
    except Exception as exc:  # noqa: BLE001 - out of memory in the loss pass is reported like generation's
        if not is_oom(exc):
            raise
        message = ("The device ran out of memory computing the loss: lower max_len (the run's max_seq_len) or "
                   "use a smaller model.")
        state.status_message = message
        raise EvalOutOfMemory(message, build_report(state, status="out_of_memory")) from None
    finally:
        model = None
        from .runner import _free_memory

        _free_memory()
    return build_report(state, status="complete")


def _context_length(model, max_len: int) -> int:
    """Tokens the model can attend to (prompt and answer together), at least ``max_len``."""
    config = getattr(model, "config", None)
    n = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    try:
        n = int(n)
    except (TypeError, ValueError):
        n = 0
    return max(max_len, min(n, 32768)) if n > 0 else max_len


def _is_project(path: str) -> bool:
    from .data import is_project_file

    return os.path.isfile(path) and is_project_file(path)


def _cut(gold: Golden, limit: int) -> None:
    for name in ("records", "indices", "sources", "leaked"):
        setattr(gold, name, getattr(gold, name)[:limit])


def _fewshot_prompts(tokenizer, pool, shots, records, prompts_msgs, max_len: int, max_new: int):
    """Few-shot conversations (dropping the least similar examples of a prompt that would not
    fit in ``max_len`` with room for the answer), the records for the loss, and the number of
    examples each prompt holds."""
    budget = max(16, max_len - max_new)
    out_msgs, out_recs, counts = [], [], []
    for rec, msgs, chosen in zip(records, prompts_msgs, shots):
        picked = [pool[i] for i in chosen]
        while True:
            conv = fewshot_messages(picked, msgs)
            text = format_chat(tokenizer, conv, rec.tools, add_generation_prompt=True)
            if not picked or len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= budget:
                break
            picked = picked[1:]
        out_msgs.append(conv)
        out_recs.append(fewshot_record(picked, rec))
        counts.append(len(picked))
    return out_msgs, out_recs, counts


def _general(state: "_State", system: _System, model, tokenizer, device, cache, model_fp, steps: _Progress,
             context: int) -> None:
    recs = state.general
    with _use(model, system):
        steps.label = f"general set, {system.name}: loss"
        state.general_losses[system.name] = example_losses(model, tokenizer, recs, state.max_len, device, steps.tick)
        steps.label = f"general set, {system.name}: answering"
        texts = [format_chat(tokenizer, prompt_and_reference(r)[0], r.tools, add_generation_prompt=True) for r in recs]
        keys = [cache_key(model_fp, folder_fingerprint(system.adapter), state.settings.decoding, t) for t in texts]
        base_done = steps.done

        def progress_gen(done: int, total: int, label: str) -> None:  # noqa: ARG001
            steps.done = base_done + done
            steps.tick(0)

        result = generate_texts(model, tokenizer, texts, state.settings.decoding, device, state.settings.batch_size,
                                progress=progress_gen, cancel=steps.cancel, cache=cache, keys=keys,
                                label=steps.label,
                                max_prompt_tokens=max(16, context - state.settings.decoding.max_new_tokens))
    state.general_outputs[system.name] = result.outputs
    if result.stopped == "cancelled":
        raise Cancelled("evaluation cancelled")
    if result.stopped == "out_of_memory":
        state.status_message = result.message
        raise EvalOutOfMemory(result.message, _report_now(state, "out_of_memory"))


def _report_now(state: "_State", status: str) -> dict:
    from .report import build_report

    return build_report(state, status=status)


@dataclass
class _State:
    """Everything :func:`ftcurate.train.report.build_report` turns into a report."""

    gold: Golden
    prompts_refs: list
    metrics: list
    scorer: Scorer
    options: MetricOptions
    systems: list
    settings: CompareSettings
    warnings: list
    model_dir: str
    golden_source: str
    pool_source: str
    pool_size: int
    max_len: int
    general: list
    general_systems: list
    general_metrics: list
    general_scorer: Optional[Scorer]
    general_outputs: dict = field(default_factory=dict)
    general_losses: dict = field(default_factory=dict)
    status_message: str = ""


def summarize_system(outputs: Sequence[Optional[str]], scores: Sequence[dict], losses: Sequence[Optional[float]],
                     tokens: Sequence[int], metrics: Sequence[str], keep: Optional[Sequence[bool]] = None,
                     n_boot: int = 2000, seed: int = 0) -> dict:
    """``{"n", "metrics": {METRIC: {"mean", "ci95", "n"}}, "empty"}`` over the examples kept."""
    idx = [i for i in range(len(outputs)) if keep is None or keep[i]]
    answered = [i for i in idx if outputs[i] is not None]
    out: dict = {"n": len(answered), "metrics": {},
                 "empty": sum(1 for i in answered if not (outputs[i] or "").strip())}
    for m in metrics:
        if m in LOSS_METRICS:
            continue
        out["metrics"][m] = summarize([scores[i].get(m) for i in answered], n_boot=n_boot, seed=seed)
    if any(m in LOSS_METRICS for m in metrics):
        both = summarize_loss([losses[i] for i in idx], [tokens[i] for i in idx], n_boot=n_boot, seed=seed)
        for m in LOSS_METRICS:
            if m in metrics:
                out["metrics"][m] = both[m]
    return out


__all__ = ["KINDS", "CompareSettings", "EvalInputError", "EvalStopped", "EvalOutOfMemory", "compare",
           "example_losses", "summarize_system", "system_names", "GENERATION_METRICS", "METRICS",
           "headline_metric", "paired_difference"]
