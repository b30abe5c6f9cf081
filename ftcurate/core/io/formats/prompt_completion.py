"""Prompt/completion JSONL: ``{"prompt": ..., "completion": ...}`` (optional ``system``).

A mapping renames other key pairs onto prompt/completion, e.g. GSM8K's
``{"question", "answer"}``: ``{"prompt": "question", "completion": "answer"}``.
"""

from __future__ import annotations

from typing import Any, Optional

from ...project.records import Record
from .base import NotRepresentable, require_str
from .turns import build, plain_turns

NAME = "prompt-completion"
# Key pairs recognised without a mapping, in order of preference.
KNOWN_PAIRS = (("prompt", "completion"), ("question", "answer"), ("prompt", "response"),
               ("query", "response"), ("input", "output"), ("instruction", "response"))


def default_mapping(keys) -> Optional[dict]:
    keys = set(keys)
    for p, c in KNOWN_PAIRS:
        if p in keys and c in keys:
            return {"prompt": p, "completion": c, "system": "system" if "system" in keys else None}
    return None


def parse(obj: Any, mapping: Optional[dict] = None) -> tuple[Optional[Record], list]:
    if not isinstance(obj, dict):
        return None, [("data_type", "record is not a JSON object")]
    mapping = mapping or default_mapping(obj.keys()) or {"prompt": "prompt", "completion": "completion"}
    pk, ck, sk = mapping.get("prompt", "prompt"), mapping.get("completion", "completion"), mapping.get("system")
    problems: list = []
    prompt = require_str(obj, pk, problems)
    completion = require_str(obj, ck, problems)
    system = require_str(obj, sk, problems, allow_empty=True, required=False) if sk else None
    if problems:
        return None, problems
    meta = {k: v for k, v in obj.items() if k not in (pk, ck, sk)}
    return Record(messages=build(system, [], prompt, completion), metadata=meta), []


def dump(record: Record) -> dict:
    system, history, user, answer = plain_turns(record, NAME)
    if history:
        raise NotRepresentable(f"{NAME} holds one prompt and one completion, not {len(history) + 1} turns")
    out = {k: v for k, v in record.metadata.items() if k not in ("prompt", "completion", "system")}
    if system is not None:
        out["system"] = system
    out["prompt"] = user
    out["completion"] = answer
    return out
