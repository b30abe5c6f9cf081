"""CSV and Parquet: one record per row, with a column mapping.

A mapping names the columns to use, with the same keys as the structured formats:
``messages`` (a JSON list, or a list in Parquet) or ``conversations`` (ShareGPT turns),
or ``prompt``/``completion`` (optional ``system``), or ``instruction``/``input``/``output``.
``tools`` and ``metadata`` columns are optional. Other columns go into metadata.
Without a mapping, :func:`default_mapping` picks one from the column names.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from ...project.records import Record
from . import alpaca, openai_chat, prompt_completion, sharegpt

MAPPING_KEYS = ("messages", "conversations", "prompt", "completion", "system",
                "instruction", "input", "output", "tools", "metadata")


def default_mapping(columns) -> Optional[dict]:
    cols = list(columns)
    lower = {c.lower(): c for c in cols}
    mapping: dict = {}
    for opt in ("tools", "metadata", "system"):
        if opt in lower:
            mapping[opt] = lower[opt]
    if "messages" in lower:
        mapping["messages"] = lower["messages"]
    elif "conversations" in lower:
        mapping["conversations"] = lower["conversations"]
    elif "instruction" in lower and "output" in lower:
        mapping.update(instruction=lower["instruction"], output=lower["output"])
        if "input" in lower:
            mapping["input"] = lower["input"]
    else:
        pc = prompt_completion.default_mapping(lower.keys())
        if pc is None:
            return None
        mapping.update(prompt=lower[pc["prompt"]], completion=lower[pc["completion"]])
    return mapping


def describe_mapping_problem(columns) -> str:
    return ("no column mapping fits the columns " + ", ".join(map(repr, columns)) +
            "; name a 'messages' column, or 'prompt' and 'completion' columns (e.g. "
            "--map prompt=question --map completion=answer)")


def _json_cell(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _drop_nulls(value: Any) -> Any:
    """Remove null-valued keys, recursively. Parquet stores a list of structs with every
    field of every struct, so a message without ``tool_calls`` comes back with
    ``"tool_calls": None``; those absent fields must not count as keys."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _native_messages(value: Any) -> Any:
    """Messages (or turns) from a native list cell, with absent struct fields removed
    (a null ``content`` stays: it is meaningful next to a tool call)."""
    if not isinstance(value, list):
        return value
    out = []
    for m in value:
        if isinstance(m, dict):
            cleaned = _drop_nulls(m)
            if "content" in m and m["content"] is None:
                cleaned["content"] = None
            m = cleaned
        out.append(m)
    return out


def parse(row: Any, mapping: dict) -> tuple[Optional[Record], list]:
    if not isinstance(row, dict):
        return None, [("data_type", "row is not a mapping")]
    used = {v for v in mapping.values() if v}
    for col in used:
        if col not in row:
            return None, [("missing_key", f"column {col!r} is missing")]
    extras = {k: v for k, v in row.items() if k not in used}
    meta_col = mapping.get("metadata")
    meta = _json_cell(row.get(meta_col)) if meta_col else None
    if meta_col and meta is not None and not isinstance(meta, dict):
        return None, [("wrong_type", f"column {meta_col!r} must hold a JSON object")]
    if mapping.get("messages") or mapping.get("conversations"):
        key = "messages" if mapping.get("messages") else "conversations"
        cell = row[mapping[key]]
        obj = {key: _json_cell(cell) if isinstance(cell, str) else _native_messages(cell)}
        if mapping.get("tools"):
            cell = row[mapping["tools"]]
            tools = _json_cell(cell) if isinstance(cell, str) else _drop_nulls(cell)
            if tools is not None:
                obj["tools"] = tools
        if key == "conversations" and mapping.get("system"):
            obj["system"] = row[mapping["system"]] or None
        rec, problems = (openai_chat if key == "messages" else sharegpt).parse(obj)
    elif mapping.get("instruction"):
        obj = {k: row[c] for k, c in mapping.items() if c and k in alpaca.KEYS}
        if isinstance(obj.get("system"), str) and not obj["system"]:
            obj.pop("system")
        rec, problems = alpaca.parse(obj)
    else:
        obj = {k: row[c] for k, c in mapping.items() if c and k in ("prompt", "completion", "system")}
        if not obj.get("system"):
            obj.pop("system", None)
        rec, problems = prompt_completion.parse(obj, {"prompt": "prompt", "completion": "completion",
                                                      "system": "system" if "system" in obj else None})
    if rec is not None:
        rec.metadata = {**extras, **(meta or {})}
    return rec, problems


def dump_row(record: Record) -> dict:
    """A row that reads back to the same record with the default mapping."""
    return {
        "messages": json.dumps([m.to_dict() for m in record.messages], ensure_ascii=False),
        "tools": json.dumps(record.tools, ensure_ascii=False) if record.tools is not None else "",
        "metadata": json.dumps(record.metadata, ensure_ascii=False) if record.metadata else "",
    }


ROW_COLUMNS = ("messages", "tools", "metadata")
