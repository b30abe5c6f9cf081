"""Helpers for formats that hold plain turns (prompt/completion, alpaca)."""

from __future__ import annotations

from typing import Optional

from ...project.records import Message, Record
from .base import NotRepresentable


def plain_turns(record: Record, fmt: str) -> tuple[Optional[str], list[tuple[str, str]], str, str]:
    """Split a record into (system, earlier (user, assistant) pairs, last user, last answer).

    Raises NotRepresentable when the record has tools, calls, names, weights, several
    system messages, or turns that do not alternate user/assistant ending on assistant."""
    msgs = list(record.messages)
    system = None
    if msgs and msgs[0].role == "system":
        system = msgs.pop(0).content or ""
    if record.tools:
        raise NotRepresentable(f"{fmt} cannot hold tool definitions")
    for m in msgs:
        if m.role not in ("user", "assistant"):
            raise NotRepresentable(f"{fmt} cannot hold a {m.role} message")
        if m.has_call or m.name is not None or m.weight is not None or m.content is None:
            raise NotRepresentable(f"{fmt} cannot hold names, weights or function calls")
    if len(msgs) < 2 or len(msgs) % 2:
        raise NotRepresentable(f"{fmt} needs user/assistant turns ending with an assistant answer")
    pairs = []
    for i in range(0, len(msgs), 2):
        u, a = msgs[i], msgs[i + 1]
        if u.role != "user" or a.role != "assistant":
            raise NotRepresentable(f"{fmt} needs alternating user/assistant turns")
        pairs.append((u.content, a.content))
    last_user, last_answer = pairs.pop()
    return system, pairs, last_user, last_answer


def build(system: Optional[str], history: list[tuple[str, str]], user: str, answer: str) -> list[Message]:
    msgs = []
    if system is not None and system != "":
        msgs.append(Message("system", system))
    for q, a in history:
        msgs.append(Message("user", q))
        msgs.append(Message("assistant", a))
    msgs.append(Message("user", user))
    msgs.append(Message("assistant", answer))
    return msgs
