"""Few-shot prompting: the base model shown k training examples as earlier turns of the chat.

If a handful of examples in the prompt make the base model as good as the fine-tuned one,
the fine-tune is not worth its cost. :func:`select_shots` picks the examples for each
question from a pool (the adapter's own training data, or a file), either the ``k`` most
similar questions (cosine similarity of sentence embeddings, the scan's fast built-in model)
or ``k`` at random with a seed; a pool example whose question is the question being asked
is never used. :func:`fewshot_messages` builds the conversation: the question's system
message, then each example as a user turn and an assistant turn, then the question. The chat
template formats it like any other conversation (:func:`ftcurate.train.data.format_chat`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional, Sequence

from ..core.progress import CancelCheck, ProgressCallback
from ..core.project.records import Message, Record
from .data import conversation, prompt_and_reference
from .metrics import normalize_text

METHODS = ("similar", "random")
DEFAULT_K = 5


@dataclass(frozen=True)
class FewShotSettings:
    k: int = DEFAULT_K
    method: str = "similar"  # "similar" or "random"
    seed: int = 0

    def problems(self) -> list[str]:
        out = []
        if self.k < 1:
            out.append("the number of few-shot examples must be at least 1")
        if self.method not in METHODS:
            out.append(f"few-shot selection must be one of {', '.join(METHODS)}")
        return out

    def to_dict(self) -> dict:
        return {"k": self.k, "method": self.method, "seed": self.seed}


def question_text(record: Record) -> str:
    """The text a record asks: its user turns before the last assistant reply."""
    messages, _ = prompt_and_reference(record)
    return "\n".join(m["content"] for m in messages if m["role"] == "user" and m.get("content"))


def usable_shots(pool: Sequence[Record]) -> list[Record]:
    """Pool records that can be shown as an example: a question and a text reply."""
    return [rec for rec in pool if prompt_and_reference(rec)[1].strip() and question_text(rec).strip()]


def select_shots(pool: Sequence[Record], queries: Sequence[Record], settings: FewShotSettings = FewShotSettings(),
                 progress: Optional[ProgressCallback] = None, cancel: Optional[CancelCheck] = None,
                 embedding_model: Optional[str] = None) -> list[list[int]]:
    """For each query, the indices (into ``pool``) of its examples, least similar first (the
    most similar example sits next to the question). Fewer than ``k`` when the pool is small."""
    k = max(0, int(settings.k))
    pool_q = [normalize_text(question_text(r)) for r in pool]
    query_q = [normalize_text(question_text(r)) for r in queries]
    if not pool or not k:
        return [[] for _ in queries]
    if settings.method == "random":
        order = list(range(len(pool)))
        random.Random(settings.seed).shuffle(order)
        return [[i for i in order if pool_q[i] != q][:k] for q in query_q]
    if settings.method != "similar":
        raise ValueError(f"unknown few-shot selection {settings.method!r}")
    from ..core.quality.embeddings import FAST, embed

    texts = [question_text(r) for r in pool] + [question_text(r) for r in queries]
    vectors = embed(texts, model=embedding_model or FAST, progress=progress, cancel=cancel)
    p, q = vectors[: len(pool)], vectors[len(pool):]
    sims = q @ p.T
    out = []
    for row, text in zip(sims, query_q):
        ranked = sorted(range(len(pool)), key=lambda i: (-float(row[i]), i))
        chosen = [i for i in ranked if pool_q[i] != text][:k]
        out.append(list(reversed(chosen)))
    return out


def shot_turns(record: Record) -> list[dict]:
    """An example as chat turns: its conversation up to its last reply, system turns left out."""
    messages, reference = prompt_and_reference(record)
    return [m for m in messages if m["role"] != "system"] + [{"role": "assistant", "content": reference}]


def fewshot_messages(shots: Sequence[Record], query_messages: list[dict]) -> list[dict]:
    """The query's leading system message, the examples' turns, then the query's own turns."""
    system = query_messages[:1] if query_messages and query_messages[0]["role"] == "system" else []
    rest = query_messages[len(system):]
    turns: list[dict] = []
    for shot in shots:
        turns += shot_turns(shot)
    return system + turns + rest


def fewshot_record(shots: Sequence[Record], record: Record) -> Record:
    """``record`` with the examples as earlier turns; the examples' replies are not scored
    (``weight=0``), so the loss of this record is the loss of the record's own reply with the
    examples in context."""
    query = record.messages
    system = list(query[:1]) if query and query[0].role == "system" else []
    turns: list[Message] = []
    for shot in shots:
        for m in shot_turns(shot):
            turns.append(Message(m["role"], m["content"], weight=0 if m["role"] == "assistant" else None))
    return Record(system + turns + list(query[len(system):]), tools=record.tools)


__all__ = ["METHODS", "DEFAULT_K", "FewShotSettings", "question_text", "usable_shots", "select_shots",
           "shot_turns", "fewshot_messages", "fewshot_record", "conversation"]
