"""Batched generation for evaluation: left padding, greedy by default, stop at the end of the
turn, progress and cancel, out-of-memory back-off, and a cache of answers on disk.

``generate_texts(model, tokenizer, prompts, decoding)`` answers a list of chat prompts (texts
already formatted with the chat template, ending with the assistant header). Prompts are
sorted by length so that a batch holds prompts of similar length (little padding) and the
longest batch comes first (an out-of-memory error shows at once, not at the end). Each batch
is padded on the left, so that every row's next token follows its own prompt, and ends for a
row at the end-of-sequence or end-of-turn token.

When the device runs out of memory the batch is halved and tried again; at one prompt per
batch the generation stops with ``stopped="out_of_memory"`` and the answers so far are kept.
A cancel stops between batches, also keeping the answers so far (``stopped="cancelled"``).

:class:`GenerationCache` keeps answers in a JSON-lines file under a key made of the model,
the adapter, the decoding settings and the exact prompt text (:func:`cache_key`), so that an
evaluation run again with the same inputs generates nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence

from ..core.progress import CancelCheck, ProgressCallback

DEFAULT_MAX_NEW_TOKENS = 64
DEFAULT_BATCH_SIZE = 8
#: End-of-turn tokens of common chat formats (stop generating at any that the vocabulary has).
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|end_of_text|>")
#: Turn headers that mean the model went on to write the next turn itself (cut there).
TURN_HEADERS = ("<|im_start|>", "<|user|>", "<|system|>", "<start_of_turn>", "<|start_header_id|>")


@dataclass(frozen=True)
class Decoding:
    """How answers are generated. ``greedy`` (the default) always takes the likeliest token;
    otherwise tokens are sampled with ``temperature`` and ``top_p`` (seeded by ``seed``)."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    greedy: bool = True
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0

    def problems(self) -> list[str]:
        out = []
        if self.max_new_tokens < 1:
            out.append("max_new_tokens must be at least 1")
        if not self.greedy and not (self.temperature > 0 and 0 < self.top_p <= 1):
            out.append("sampling needs temperature > 0 and 0 < top_p <= 1")
        return out

    def to_dict(self) -> dict:
        """The settings that change an answer (the cache key part)."""
        d = asdict(self)
        if self.greedy:
            for k in ("temperature", "top_p", "seed"):
                d.pop(k)
        return d


@dataclass
class Generated:
    """Answers in the order of the prompts (None: not generated, see ``stopped``)."""

    outputs: list[Optional[str]]
    from_cache: int = 0
    batch_size: int = DEFAULT_BATCH_SIZE  # the batch size in use at the end (after any halving)
    stopped: Optional[str] = None  # None, "cancelled" or "out_of_memory"
    message: str = ""
    seconds: float = 0.0
    new_tokens: int = 0  # tokens generated (cache hits not counted)
    notes: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(o is not None for o in self.outputs)


# -- cache --------------------------------------------------------------------------------------------


def _file_stamp(path: str) -> list:
    try:
        st = os.stat(path)
    except OSError:
        return [os.path.basename(path), None]
    return [os.path.basename(path), st.st_size, st.st_mtime_ns]


def folder_fingerprint(folder: Optional[str]) -> str:
    """A short id of a model or adapter folder: its path and the size and modification time of
    its weights, config and tokenizer files (changes when the folder's model changes)."""
    if not folder:
        return ""
    folder = os.path.abspath(folder)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        names = []
    wanted = [n for n in names if n.endswith((".safetensors", ".json", ".model", ".txt"))
              and not n.startswith(("eval_report", "eval_cache", "metrics"))]
    stamp = [folder] + [_file_stamp(os.path.join(folder, n)) for n in wanted]
    return hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:20]


def cache_key(model_fp: str, adapter_fp: str, decoding: Decoding, prompt: str) -> str:
    """The key of one answer: model, adapter, decoding settings and the exact prompt text."""
    blob = json.dumps([model_fp, adapter_fp, decoding.to_dict(), prompt], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class GenerationCache:
    """Answers by :func:`cache_key`, in memory and (with ``path``) in a JSON-lines file that
    grows by one line per answer. A torn or foreign line is skipped when reading."""

    def __init__(self, path: Optional[str] = None) -> None:
        self.path = path
        self._items: dict[str, str] = {}
        self._write_failed = False
        if path and os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    for line in f:
                        try:
                            obj = json.loads(line)
                        except ValueError:
                            continue
                        if isinstance(obj, dict) and isinstance(obj.get("key"), str) \
                                and isinstance(obj.get("text"), str):
                            self._items[obj["key"]] = obj["text"]
            except (OSError, UnicodeDecodeError):
                self._items = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> Optional[str]:
        return self._items.get(key)

    def put_many(self, items: dict[str, str]) -> None:
        self._items.update(items)
        if not self.path or self._write_failed or not items:
            return
        try:
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                for k, v in items.items():
                    f.write(json.dumps({"key": k, "text": v}, ensure_ascii=False) + "\n")
        except OSError:
            self._write_failed = True  # a cache that cannot be written is only slower


# -- generation ----------------------------------------------------------------------------------------


def stop_token_ids(tokenizer, model=None) -> list[int]:
    """Token ids that end an answer: the end-of-sequence token, the end-of-turn tokens of
    common chat formats that this vocabulary has, and the model's own generation config's."""
    ids: list[int] = []

    def add(value) -> None:
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, int) and v >= 0 and v not in ids:
                ids.append(v)

    add(getattr(tokenizer, "eos_token_id", None))
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    for tok in END_OF_TURN:
        add(vocab.get(tok))
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        add(getattr(gen, "eos_token_id", None))
    return ids


def clean_answer(text: str) -> str:
    """A decoded answer cut where the model started the next turn itself, stripped."""
    cut = len(text)
    for header in TURN_HEADERS:
        pos = text.find(header)
        if 0 <= pos < cut:
            cut = pos
    return text[:cut].strip()


def is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass


def _run_batch(model, tokenizer, texts: list[str], decoding: Decoding, device: str, stops: list[int],
               max_prompt_tokens: Optional[int]) -> tuple[list[str], int]:
    import torch

    enc = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt",
                    truncation=bool(max_prompt_tokens), max_length=max_prompt_tokens)
    enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
    kwargs = dict(max_new_tokens=decoding.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=stops or None)
    if decoding.greedy:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        torch.manual_seed(decoding.seed)
        kwargs.update(do_sample=True, temperature=decoding.temperature, top_p=decoding.top_p)
    with torch.no_grad():
        out = model.generate(**enc, **kwargs)
    new = out[:, enc["input_ids"].shape[1]:]
    pad = tokenizer.pad_token_id
    n_new = int(sum(int((row != pad).sum()) for row in new)) if pad is not None else int(new.numel())
    return [clean_answer(t) for t in tokenizer.batch_decode(new, skip_special_tokens=True)], n_new


def generate_texts(model, tokenizer, prompts: Sequence[str], decoding: Decoding = Decoding(),
                   device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE,
                   progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
                   cache: Optional[GenerationCache] = None, keys: Optional[Sequence[str]] = None,
                   label: str = "generating", max_prompt_tokens: Optional[int] = None,
                   on_output: Optional[Callable[[int, str], None]] = None) -> Generated:
    """Answer each prompt (chat-formatted text ending with the assistant header).

    ``keys`` (one per prompt, :func:`cache_key`) look answers up in ``cache`` first and store
    new ones there. ``max_prompt_tokens`` cuts longer prompts from the left (their end, the
    question, stays). ``on_output(i, text)`` is called for each new answer. Never raises for
    out-of-memory or cancel: see :class:`Generated`. ``progress(done, total, label)``."""
    import time

    n = len(prompts)
    result = Generated(outputs=[None] * n, batch_size=max(1, int(batch_size)))
    if keys is not None and len(keys) != n:
        raise ValueError("keys must have one entry per prompt")
    todo = []
    for i in range(n):
        hit = cache.get(keys[i]) if cache is not None and keys is not None else None
        if hit is not None:
            result.outputs[i] = hit
            result.from_cache += 1
            if on_output is not None:
                on_output(i, hit)
        else:
            todo.append(i)
    done = n - len(todo)
    if progress is not None:
        progress(done, n, label)
    if not todo:
        return result
    saved_side = getattr(tokenizer, "padding_side", "right")
    saved_trunc = getattr(tokenizer, "truncation_side", "right")
    tokenizer.padding_side = "left"
    tokenizer.truncation_side = "left"
    stops = stop_token_ids(tokenizer, model)
    lengths = {i: len(prompts[i]) for i in todo}
    order = sorted(todo, key=lambda i: -lengths[i])
    bs = result.batch_size
    t0 = time.perf_counter()
    pos = 0
    try:
        while pos < len(order):
            if cancel is not None and cancel():
                result.stopped, result.message = "cancelled", "cancelled"
                break
            batch = order[pos:pos + bs]
            try:
                texts, n_new = _run_batch(model, tokenizer, [prompts[i] for i in batch], decoding, device, stops,
                                          max_prompt_tokens)
            except Exception as exc:  # noqa: BLE001 - out of memory is handled, the rest re-raised
                if not is_oom(exc):
                    raise
                exc = None  # noqa: F841 - drop the frames holding tensors
                _free()
                if bs == 1:
                    result.stopped = "out_of_memory"
                    result.message = ("The device ran out of memory generating even one answer at a time: lower "
                                      "max_new_tokens, shorten the prompts (fewer few-shot examples) or use a "
                                      "smaller model.")
                    break
                bs = max(1, bs // 2)
                result.notes.append(f"out of memory: batch size lowered to {bs}")
                continue
            result.new_tokens += n_new
            new = {}
            for i, text in zip(batch, texts):
                result.outputs[i] = text
                if keys is not None:
                    new[keys[i]] = text
                if on_output is not None:
                    on_output(i, text)
            if cache is not None and new:
                cache.put_many(new)
            pos += len(batch)
            done += len(batch)
            if progress is not None:
                progress(done, n, label)
    finally:
        tokenizer.padding_side = saved_side
        tokenizer.truncation_side = saved_trunc
        result.batch_size = bs
        result.seconds = time.perf_counter() - t0
    return result
