"""The canonical record: one conversation plus where it came from.

Every reader turns its format into :class:`Record` objects and every writer turns
them back. A record's *content* (messages and tool definitions) is what scanners
and training look at; its source, split and metadata travel with it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

ROLES = ("system", "user", "assistant", "tool", "function")
SPLITS = ("train", "validation", "test")


@dataclass(slots=True)
class Message:
    role: str
    content: Optional[str] = None
    name: Optional[str] = None
    tool_calls: Optional[list] = None  # OpenAI tool_calls list, kept as given
    function_call: Optional[dict] = None  # legacy {"name", "arguments"}
    tool_call_id: Optional[str] = None
    weight: Optional[int] = None  # OpenAI per-message weight (0 or 1) on assistant turns

    def to_dict(self) -> dict:
        """OpenAI-style dict with only the keys that are set (content always present)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name is not None:
            out["name"] = self.name
        if self.tool_calls is not None:
            out["tool_calls"] = self.tool_calls
        if self.function_call is not None:
            out["function_call"] = self.function_call
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.weight is not None:
            out["weight"] = self.weight
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Message":
        return cls(
            role=d["role"],
            content=d.get("content"),
            name=d.get("name"),
            tool_calls=d.get("tool_calls"),
            function_call=d.get("function_call"),
            tool_call_id=d.get("tool_call_id"),
            weight=d.get("weight"),
        )

    @property
    def has_call(self) -> bool:
        return bool(self.tool_calls) or bool(self.function_call)

    def calls(self) -> list[tuple[str, Any, Optional[str]]]:
        """``(name, arguments, id)`` of each tool call and of a legacy function call, as
        given ("?" for a missing name; malformed entries read as far as they go)."""
        entries = list(self.tool_calls or [])
        if self.function_call:
            entries.append({"function": self.function_call})
        out = []
        for call in entries:
            fn = call.get("function", {}) if isinstance(call, dict) else {}
            fn = fn if isinstance(fn, dict) else {}
            out.append((str(fn.get("name", "?")), fn.get("arguments", ""),
                        call.get("id") if isinstance(call, dict) else None))
        return out


def sha256_text(text: str) -> str:
    """Hex SHA-256 of ``text`` as UTF-8: of a record's content JSON, its ``content_hash``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class Source:
    """Where a record came from: file path, 1-based physical line (None for JSON
    arrays, CSV and Parquet rows where no line applies) and 0-based record index."""

    file: str = ""
    line: Optional[int] = None
    index: int = 0

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "index": self.index}


@dataclass(slots=True)
class Record:
    messages: list[Message]
    tools: Optional[list] = None
    source: Source = field(default_factory=Source)
    split: str = "train"
    metadata: dict = field(default_factory=dict)

    # -- content -----------------------------------------------------------------
    def content_dict(self) -> dict:
        """The content as an OpenAI chat object (``messages`` and optional ``tools``)."""
        out: dict[str, Any] = {"messages": [m.to_dict() for m in self.messages]}
        if self.tools is not None:
            out["tools"] = self.tools
        return out

    def content_json(self) -> str:
        """Canonical JSON of the content: stable key order, no whitespace."""
        return canonical_json(self.content_dict())

    @property
    def content_hash(self) -> str:
        return sha256_text(self.content_json())

    @classmethod
    def from_content(cls, content: dict | str, **kwargs: Any) -> "Record":
        if isinstance(content, str):
            content = json.loads(content)
        return cls(
            messages=[Message.from_dict(m) for m in content["messages"]],
            tools=content.get("tools"),
            **kwargs,
        )

    # -- convenient views ----------------------------------------------------------
    def by_role(self, role: str) -> list[Message]:
        return [m for m in self.messages if m.role == role]

    @property
    def system(self) -> str:
        return "\n".join(m.content or "" for m in self.by_role("system"))

    @property
    def first_user(self) -> str:
        users = self.by_role("user")
        return users[0].content or "" if users else ""

    @property
    def prompt_text(self) -> str:
        """Everything the model is given: system and user turns, joined."""
        return "\n".join(m.content or "" for m in self.messages if m.role in ("system", "user"))

    @property
    def answer_text(self) -> str:
        """Everything the model is trained to say: assistant turns, joined."""
        return "\n".join(m.content or "" for m in self.messages if m.role == "assistant")

    @property
    def text(self) -> str:
        """All message text, one turn a line (for search and similarity)."""
        return "\n".join(m.content or "" for m in self.messages)

    @property
    def uses_tools(self) -> bool:
        return bool(self.tools) or any(m.role == "tool" or m.tool_calls for m in self.messages)

    def to_dict(self) -> dict:
        """Full dict: content plus source, split and metadata (for the project store)."""
        out = self.content_dict()
        out["source"] = self.source.to_dict()
        out["split"] = self.split
        out["metadata"] = self.metadata
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Record":
        src = d.get("source") or {}
        return cls.from_content(
            d,
            source=Source(src.get("file", ""), src.get("line"), src.get("index", 0)),
            split=d.get("split", "train"),
            metadata=d.get("metadata") or {},
        )


try:  # orjson writes the same text for plain values, ~10x faster (tests/test_import_parallel.py)
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    _orjson = None

_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1  # what orjson writes


def _plain(obj: Any) -> bool:
    """Whether ``obj`` holds only text, whole numbers within 64 bits, booleans, null, lists
    and objects with text keys: values that orjson writes exactly as ``json.dumps`` does
    (floats, NaN, huge integers and other keys are left to ``json``)."""
    t = type(obj)
    if t is str or obj is None or t is bool:
        return True
    if t is dict:
        for k, v in obj.items():
            if type(k) is not str:
                return False
            tv = type(v)
            if tv is not str and v is not None and not _plain(v):
                return False
        return True
    if t is list or t is tuple:
        for v in obj:
            if type(v) is not str and not _plain(v):
                return False
        return True
    if t is int:
        return _INT_MIN <= obj <= _INT_MAX
    return False


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, non-ASCII as is: ``json.dumps(obj, ensure_ascii=False,
    sort_keys=True, separators=(",", ":"))``, written by orjson when the value is plain."""
    if _orjson is not None:
        try:
            if _plain(obj):
                return _orjson.dumps(obj, option=_orjson.OPT_SORT_KEYS).decode("utf-8")
        except (TypeError, RecursionError):  # lone surrogates, nesting deeper than orjson goes
            pass
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
