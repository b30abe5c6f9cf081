"""Validation report: errors by line, OpenAI-style warnings and token statistics,
and dataset-size advice from good fine-tuning practice."""

from __future__ import annotations

import math
import os
from array import array
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional

from .formats import DatasetReader, RecordError
from ..progress import CancelCheck, ProgressCallback, Reporter
from ..project.records import Record

DEFAULT_MAX_TOKENS = 4096
# Errors kept with their details (line, index, key, message); every error is counted.
DEFAULT_MAX_ERRORS = 1000
# OpenAI's defaults for choosing the number of epochs.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
SMALL_SET = 100
OVERFIT_SET = 1000


class TokenCounter:
    """Counts tokens with a local Hugging Face tokenizer folder, or estimates them.

    The estimate (about four characters per token for Latin text, one per character
    for other scripts) is close to BPE tokenizers on English and needs no download."""

    def __init__(self, tokenizer: Optional[str] = None) -> None:
        self._tok = None
        self.name = "estimate (~4 characters per token)"
        if tokenizer:
            if not os.path.isdir(tokenizer):
                raise ValueError(f"tokenizer folder {tokenizer!r} does not exist")
            from transformers import AutoTokenizer  # heavy; only when asked for

            try:
                self._tok = AutoTokenizer.from_pretrained(tokenizer, trust_remote_code=False,
                                                          local_files_only=True)
            except Exception as exc:  # transformers raises many kinds here
                raise ValueError(f"cannot load a tokenizer from {tokenizer!r}: {exc}") from None
            self.name = os.path.basename(os.path.normpath(tokenizer))

    def count(self, text: Optional[str]) -> int:
        if not text:
            return 0
        if self._tok is not None:
            return len(self._tok.encode(text, add_special_tokens=False))
        n_ascii = len(text.encode("ascii", "ignore"))
        return math.ceil(n_ascii / 4) + (len(text) - n_ascii)

    def messages(self, record: Record) -> tuple[int, int]:
        """(tokens of the whole example, tokens of assistant turns), counted as OpenAI's recipe does:
        3 tokens per message, 1 per name, 3 to prime the reply."""
        total = 3
        assistant = 0
        for m in record.messages:
            total += 3 + self.count(m.role) + self.count(m.content)
            if m.name:
                total += 1 + self.count(m.name)
            for call in (m.tool_calls if isinstance(m.tool_calls, list) else ()):
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    total += self.count(str(fn.get("name", ""))) + self.count(str(fn.get("arguments", "")))
            if isinstance(m.function_call, dict):
                total += self.count(str(m.function_call.get("name", ""))) + self.count(
                    str(m.function_call.get("arguments", "")))
            if m.role == "assistant":
                assistant += self.count(m.content)
        return total, assistant


def distribution(values) -> dict:
    import numpy as np

    if len(values) == 0:
        return {"min": 0, "max": 0, "mean": 0.0, "median": 0.0, "p5": 0.0, "p95": 0.0}
    a = np.frombuffer(values, dtype=np.int64) if isinstance(values, array) else np.asarray(values)
    return {"min": int(a.min()), "max": int(a.max()), "mean": round(float(a.mean()), 2),
            "median": float(np.median(a)), "p5": float(np.quantile(a, 0.05)),
            "p95": float(np.quantile(a, 0.95))}


def default_epochs(n_examples: int) -> int:
    n_epochs = TARGET_EPOCHS
    if n_examples == 0:
        return n_epochs
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        n_epochs = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    elif n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        n_epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return n_epochs


def size_advice(n_examples: int, heldout: Optional[int] = None) -> list[str]:
    advice = []
    if n_examples < SMALL_SET:
        advice.append(f"Only {n_examples} usable examples: under {SMALL_SET}, a fine-tune learns little. "
                      "Aim for 500-1,000 clean examples.")
    elif n_examples < OVERFIT_SET:
        advice.append(f"{n_examples} examples: under {OVERFIT_SET:,}, overfitting is likely; keep epochs low, "
                      "watch validation loss and stop early.")
    if heldout is None:
        advice.append("No held-out set: keep a golden test set apart to compare the tuned model with the base model.")
    else:
        advice.append(f"Held-out set: {heldout} examples.")
    return advice


class StatsAccumulator:
    """Warnings and token statistics over a stream of records (memory: 3 ints a record)."""

    def __init__(self, counter: Optional[TokenCounter] = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                 keep_examples: int = 50) -> None:
        self.counter = counter or TokenCounter()
        self.max_tokens = max_tokens
        self.n_messages = array("q")
        self.n_tokens = array("q")
        self.n_assistant = array("q")
        self.warnings = {"missing_system": 0, "missing_user": 0, "too_long": 0}
        self.warning_examples: dict[str, list[int]] = {k: [] for k in self.warnings}
        self.keep = keep_examples
        self.with_system = 0  # examples that have a system turn

    def _warn(self, key: str, index: int) -> None:
        self.warnings[key] += 1
        if len(self.warning_examples[key]) < self.keep:
            self.warning_examples[key].append(index)

    def add(self, record: Record, index: int) -> None:
        roles = {m.role for m in record.messages}
        total, assistant = self.counter.messages(record)
        self.add_counts(index, len(record.messages), total, assistant, "system" in roles, "user" in roles)

    def add_counts(self, index: int, n_messages: int, total: int, assistant: int, has_system: bool,
                   has_user: bool) -> None:
        """:meth:`add` for a record already counted: its messages, tokens (whole example and
        assistant turns, as :meth:`TokenCounter.messages` counts them) and which turns it has."""
        if not has_system:
            self._warn("missing_system", index)
        else:
            self.with_system += 1
        if not has_user:
            self._warn("missing_user", index)
        if total > self.max_tokens:
            self._warn("too_long", index)
        self.n_messages.append(n_messages)
        self.n_tokens.append(total)
        self.n_assistant.append(assistant)

    def merge(self, other: "StatsAccumulator", offset: int = 0) -> None:
        """Append what ``other`` counted over the records that follow (its record indices
        shifted by ``offset``): the same as adding its records here one by one."""
        for key, n in other.warnings.items():
            self.warnings[key] += n
            room = self.keep - len(self.warning_examples[key])
            if room > 0:
                self.warning_examples[key] += [i + offset for i in other.warning_examples[key][:room]]
        self.with_system += other.with_system
        self.n_messages.extend(other.n_messages)
        self.n_tokens.extend(other.n_tokens)
        self.n_assistant.extend(other.n_assistant)

    def stats(self) -> dict:
        n = len(self.n_tokens)
        epochs = default_epochs(n)
        billing = sum(min(self.max_tokens, t) for t in self.n_tokens)
        return {
            "examples": n,
            "tokenizer": self.counter.name,
            "max_tokens": self.max_tokens,
            "messages_per_example": distribution(self.n_messages),
            "tokens_per_example": distribution(self.n_tokens),
            "assistant_tokens_per_example": distribution(self.n_assistant),
            "total_tokens": int(sum(self.n_tokens)),
            "default_epochs": epochs,
            "billing_tokens_per_epoch": int(billing),
            "billed_tokens": int(billing * epochs),
        }


@dataclass
class ValidationReport:
    """What reading a file found. Every error is counted (``error_counts``, per key, as
    OpenAI's recipe counts them: per offending message; ``rejected_by_key``: records with
    that key), but only the first ``max_errors`` are kept with their details (``errors``);
    ``errors_left_out`` says how many more there were."""

    path: str
    format: str
    container: str
    mapping: Optional[dict]
    records: int = 0
    loaded: int = 0
    rejected: int = 0
    errors: list[RecordError] = field(default_factory=list)
    error_counts: dict = field(default_factory=dict)
    rejected_by_key: dict = field(default_factory=dict)
    errors_left_out: int = 0
    max_errors: int = DEFAULT_MAX_ERRORS
    format_votes: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)
    warning_examples: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    advice: list[str] = field(default_factory=list)

    def add_rejected(self, errors: list[RecordError]) -> None:
        """Count one rejected record with its errors (details kept up to ``max_errors``)."""
        self.rejected += 1
        for key in {e.key for e in errors}:
            self.rejected_by_key[key] = self.rejected_by_key.get(key, 0) + 1
        for e in errors:
            self.error_counts[e.key] = self.error_counts.get(e.key, 0) + 1
            if len(self.errors) < self.max_errors:
                self.errors.append(e)
            else:
                self.errors_left_out += 1

    @property
    def mixed_formats(self) -> bool:
        """Detection found records of more than one format (the file is read as the most common)."""
        return len(self.format_votes) > 1

    def to_dict(self) -> dict:
        return {
            "path": self.path, "format": self.format, "container": self.container, "mapping": self.mapping,
            "records": self.records, "loaded": self.loaded, "rejected": self.rejected,
            "error_counts": self.error_counts, "rejected_by_key": self.rejected_by_key,
            "errors": [e.to_dict() for e in self.errors], "errors_left_out": self.errors_left_out,
            "max_errors": self.max_errors, "format_votes": self.format_votes,
            "warnings": self.warnings, "warning_examples": self.warning_examples,
            "stats": self.stats, "advice": self.advice,
        }

    def summary(self, max_errors: int = 20) -> str:
        lines = [f"{self.path}: {self.format} ({self.container})",
                 f"  records: {self.records}   loaded: {self.loaded}   rejected: {self.rejected}"]
        if self.mixed_formats:
            lines.append("  mixed formats: " + ", ".join(f"{k} {v:,}" for k, v in sorted(
                self.format_votes.items(), key=lambda kv: -kv[1])) + f" (records seen); read as {self.format}")
        if self.error_counts:
            lines.append("  errors: " + ", ".join(f"{k} {v}" for k, v in sorted(self.error_counts.items())))
            for e in self.errors[:max_errors]:
                lines.append(f"    {e.where()} (record {e.index}): {e.key}: {e.message}")
            if len(self.errors) > max_errors:
                lines.append(f"    ... {len(self.errors) - max_errors:,} more (use --json to list them)")
            if self.errors_left_out:
                lines.append(f"    ... and {self.errors_left_out:,} more not listed: only the first "
                             f"{self.max_errors:,} errors are kept (--max-errors); the counts include all")
        else:
            lines.append("  no errors")
        warn = ", ".join(f"{k} {v}" for k, v in self.warnings.items() if v)
        lines.append("  warnings: " + (warn or "none"))
        s = self.stats
        if s.get("examples"):
            t = s["tokens_per_example"]
            lines.append(f"  tokens per example ({s['tokenizer']}): min {t['min']}, median {t['median']:.0f}, "
                         f"p95 {t['p95']:.0f}, max {t['max']}")
            lines.append(f"  messages per example: median {s['messages_per_example']['median']:.0f}; "
                         f"assistant tokens median {s['assistant_tokens_per_example']['median']:.0f}")
            lines.append(f"  at {s['default_epochs']} epochs: ~{s['billed_tokens']:,} tokens trained")
        for a in self.advice:
            lines.append("  advice: " + a)
        return "\n".join(lines)


def checked_records(parsed: Iterable, report: ValidationReport, acc: StatsAccumulator,
                    rep: Reporter, message: str = "validating") -> Iterator[Record]:
    """Count Parsed items into ``report`` and ``acc`` and yield the good records (streaming)."""
    for p in parsed:
        report.records += 1
        rep.tick(report.records, message)
        if p.errors:
            report.add_rejected(p.errors)
            continue
        report.loaded += 1
        acc.add(p.record, p.index)
        yield p.record


def new_report(reader: DatasetReader, max_errors: int = DEFAULT_MAX_ERRORS) -> ValidationReport:
    """An empty report for what ``reader`` reads (validation and import fill it)."""
    return ValidationReport(reader.path, reader.format, reader.container, reader.mapping,
                            max_errors=max(0, int(max_errors)), format_votes=dict(reader.format_votes))


def validate_path(path: str, fmt: str = "auto", mapping: Optional[dict] = None,
                  max_tokens: int = DEFAULT_MAX_TOKENS, tokenizer: Optional[str] = None,
                  heldout: Optional[int] = None, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[CancelCheck] = None,
                  on_record: Optional[Callable[[Record], None]] = None,
                  max_errors: int = DEFAULT_MAX_ERRORS) -> ValidationReport:
    """Read a dataset file and report on every record. Raises DatasetError when the
    file can't be read at all. ``on_record`` receives each good record (streaming).
    ``max_errors``: how many errors are kept with their details (all are counted)."""
    reader = DatasetReader(path, fmt, mapping)
    report = new_report(reader, max_errors)
    acc = StatsAccumulator(TokenCounter(tokenizer), max_tokens)
    for record in checked_records(reader, report, acc, Reporter(progress, cancel, every=5000)):
        if on_record is not None:
            on_record(record)
    finish(report, acc, heldout)
    return report


def heldout_reading(dataset: str, heldout: str, fmt: str = "auto",
                    mapping: Optional[dict] = None) -> tuple[str, Optional[dict]]:
    """How a held-out file is read beside ``dataset`` read with ``fmt`` / ``mapping``: the
    same way when it has the same extension (a CSV test file with the same columns), else
    its format is detected. Returns (format, mapping)."""
    same_kind = os.path.splitext(heldout)[1].lower() == os.path.splitext(dataset)[1].lower()
    return (fmt, mapping) if same_kind else ("auto", None)


def system_turn_expected(fmt: str, container: str, mapping: Optional[dict]) -> bool:
    """Whether a record of this format is expected to have a system message: OpenAI chat
    (its recipe warns about a missing one), also as a messages column of a table."""
    return fmt == "openai-chat" or (container in ("csv", "parquet") and bool((mapping or {}).get("messages")))


def finish(report: ValidationReport, acc: StatsAccumulator, heldout: Optional[int]) -> None:
    """Fill in warnings, statistics and advice. ``missing_system`` is left out for formats
    that don't expect a system message (prompt/completion, alpaca, ShareGPT) unless some
    records of the file have one: then the ones without it are counted."""
    report.warnings = dict(acc.warnings)
    if not acc.with_system and not system_turn_expected(report.format, report.container, report.mapping):
        report.warnings.pop("missing_system", None)
    report.warning_examples = {k: v for k, v in acc.warning_examples.items() if v and k in report.warnings}
    report.stats = acc.stats()
    report.advice = size_advice(report.loaded, heldout)
