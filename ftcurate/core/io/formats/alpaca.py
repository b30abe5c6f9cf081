"""Alpaca: ``{"instruction", "input", "output"}`` with optional ``system`` and
``history`` (a list of ``[question, answer]`` pairs), as a JSON array or JSON Lines.

The user turn is the instruction, followed by a blank line and the input when the
input is not empty; writing puts the whole user turn in ``instruction``.
"""

from __future__ import annotations

from typing import Any, Optional

from ...project.records import Record
from .base import require_str
from .turns import build, plain_turns

NAME = "alpaca"
KEYS = ("instruction", "input", "output", "system", "history")


def parse(obj: Any, mapping: Optional[dict] = None) -> tuple[Optional[Record], list]:
    if not isinstance(obj, dict):
        return None, [("data_type", "record is not a JSON object")]
    m = {k: k for k in KEYS}
    m.update({k: v for k, v in (mapping or {}).items() if v})
    problems: list = []
    instruction = require_str(obj, m["instruction"], problems)
    inp = require_str(obj, m["input"], problems, allow_empty=True, required=False)
    output = require_str(obj, m["output"], problems)
    system = require_str(obj, m["system"], problems, allow_empty=True, required=False)
    history = obj.get(m["history"]) or []
    pairs = []
    if not isinstance(history, list):
        problems.append(("wrong_type", "'history' must be a list of [question, answer] pairs"))
    else:
        for i, h in enumerate(history, start=1):
            if (not isinstance(h, (list, tuple)) or len(h) != 2
                    or not all(isinstance(x, str) for x in h)):
                problems.append(("wrong_type", f"history item {i} is not a [question, answer] pair of strings"))
            elif not h[0] or not h[1]:
                problems.append(("missing_content", f"history item {i} has an empty question or answer"))
            else:
                pairs.append((h[0], h[1]))
    if problems:
        return None, problems
    user = instruction + ("\n\n" + inp if inp else "")
    meta = {k: v for k, v in obj.items() if k not in m.values()}
    return Record(messages=build(system, pairs, user, output), metadata=meta), []


def dump(record: Record) -> dict:
    system, history, user, answer = plain_turns(record, NAME)
    out = {k: v for k, v in record.metadata.items() if k not in KEYS}
    out.update({"instruction": user, "input": "", "output": answer})
    if system is not None:
        out["system"] = system
    if history:
        out["history"] = [[q, a] for q, a in history]
    return out
