"""OpenAI chat fine-tuning format: ``{"messages": [...], "tools": [...]}`` per line.

The checks and their keys follow OpenAI's fine-tuning data-preparation recipe, counted
per offending message as it counts them. Deviations, all to accept valid tool data:
``tool_calls`` / ``tool_call_id`` keys and the ``tool`` role are accepted when the
record uses tools, and a message with a function/tool call may have no content.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from ...project.records import Message, Record

NAME = "openai-chat"
BASE_KEYS = ("role", "content", "name", "function_call", "weight")
TOOL_KEYS = ("tool_calls", "tool_call_id")
BASE_ROLES = ("system", "user", "assistant", "function")


def record_uses_tools(obj: dict, messages: list) -> bool:
    """A record uses tools when it defines them or an assistant message calls one; a ``tool``
    message alone (answering no call) does not make it a tool record."""
    if obj.get("tools") or obj.get("functions"):
        return True
    return any(isinstance(m, dict) and m.get("tool_calls") for m in messages)


def tool_call_problems(calls: list) -> list[str]:
    """What is wrong with a ``tool_calls`` list: each call must be an object whose
    ``function`` is an object with a string ``name`` (``arguments``, when given, a string
    or an object)."""
    out = []
    for k, call in enumerate(calls):
        if not isinstance(call, dict):
            out.append(f"tool_calls[{k}] is a JSON {_kind(call)}, not an object")
            continue
        fn = call.get("function")
        if not isinstance(fn, dict):
            what = "missing" if "function" not in call else f"a JSON {_kind(fn)}"
            out.append(f"tool_calls[{k}].function is {what}; expected an object with a 'name'")
        elif not isinstance(fn.get("name"), str):
            out.append(f"tool_calls[{k}].function has no 'name' string")
        elif "arguments" in fn and not isinstance(fn["arguments"], (str, dict)):
            out.append(f"tool_calls[{k}].function.arguments is a JSON {_kind(fn['arguments'])}; "
                       "expected a string (JSON text) or an object")
    return out


def parse(obj: Any, mapping: Optional[dict] = None) -> tuple[Optional[Record], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    if not isinstance(obj, dict):
        return None, [("data_type", f"record is a JSON {_kind(obj)}, not an object")]
    messages = obj.get("messages")
    if not messages or not isinstance(messages, list):
        what = "missing" if "messages" not in obj else ("empty" if not messages else f"a {_kind(messages)}")
        return None, [("missing_messages_list", f"'messages' is {what}; expected a non-empty list")]
    tools_used = record_uses_tools(obj, messages)
    keys = BASE_KEYS + (TOOL_KEYS if tools_used else ())
    roles = BASE_ROLES + (("tool",) if tools_used else ())
    out: list[Message] = []
    for i, m in enumerate(messages, start=1):
        if not isinstance(m, dict):
            problems.append(("data_type", f"message {i} is a JSON {_kind(m)}, not an object"))
            continue
        has_call = bool(m.get("function_call")) or bool(m.get("tool_calls"))
        if "role" not in m or ("content" not in m and not has_call):
            missing = "role" if "role" not in m else "content"
            problems.append(("message_missing_key", f"message {i} has no '{missing}'"))
        extra = [k for k in m if k not in keys]
        if extra:
            problems.append(("message_unrecognized_key",
                             f"message {i} has unrecognised key(s): {', '.join(map(str, extra))}"))
        role = m.get("role")
        if role not in roles:
            problems.append(("unrecognized_role", f"message {i} has role {role!r}; expected one of "
                             + ", ".join(roles)))
        content = m.get("content")
        if (not content and not has_call) or (content is not None and not isinstance(content, str)):
            why = "is not a string" if content is not None and not isinstance(content, str) else "is empty"
            problems.append(("missing_content", f"message {i} ({role}) content {why}"))
        weight = m.get("weight")
        if weight is not None and (isinstance(weight, bool) or weight not in (0, 1)):
            problems.append(("invalid_weight", f"message {i} weight is {weight!r}; expected 0 or 1"))
        fc = m.get("function_call")
        if fc is not None and not (isinstance(fc, dict) and isinstance(fc.get("name"), str)):
            problems.append(("invalid_function_call", f"message {i} function_call needs a 'name'"))
        tc = m.get("tool_calls")
        if tc is not None and not isinstance(tc, list):
            problems.append(("invalid_function_call", f"message {i} tool_calls must be a list"))
        elif tc:
            problems.extend(("invalid_function_call", f"message {i} {p}") for p in tool_call_problems(tc))
        name = m.get("name")
        if name is not None and not isinstance(name, str):
            problems.append(("wrong_type", f"message {i} name must be a string"))
        if not problems:
            out.append(Message(role=role, content=content, name=name, tool_calls=tc, function_call=fc,
                               tool_call_id=m.get("tool_call_id"),
                               weight=weight))
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        problems.append(("example_missing_assistant_message", "the example has no assistant message"))
    tools = obj.get("tools")
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except ValueError:
            problems.append(("invalid_tools", "'tools' is a string that is not JSON"))
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        problems.append(("invalid_tools", "'tools' must be a list of objects"))
    if problems:
        return None, problems
    meta = {k: v for k, v in obj.items() if k not in ("messages", "tools")}
    return Record(messages=out, tools=tools, metadata=meta), []


SIMPLE_ROLES = frozenset(BASE_ROLES)


def simple_messages(obj: Any) -> Optional[list]:
    """The messages of a record in the common shape - a ``messages`` list of ``{"role",
    "content"}`` objects with a known role and non-empty text, an assistant turn among them,
    no tools - or None for anything else. Such a record is valid, and :func:`parse` of it
    gives ``Message(role, content)`` for each and the other keys as metadata: a bulk import
    takes the content from these dicts as they are (``{"messages": ...}``) and leaves every
    other record to :func:`parse`."""
    if type(obj) is not dict:
        return None
    messages = obj.get("messages")
    if type(messages) is not list or not messages or "tools" in obj or "functions" in obj:
        return None
    answer = False
    for m in messages:
        if type(m) is not dict or len(m) != 2:
            return None
        content = m.get("content")
        if type(content) is not str or not content:
            return None
        role = m.get("role")
        if type(role) is not str or role not in SIMPLE_ROLES:
            return None
        answer = answer or role == "assistant"
    return messages if answer else None


def dump(record: Record) -> dict:
    out: dict[str, Any] = dict(record.metadata)
    out.pop("messages", None)
    out.pop("tools", None)
    out["messages"] = [m.to_dict() for m in record.messages]
    if record.tools is not None:
        out["tools"] = record.tools
    return out


def _kind(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null", dict: "object"}.get(type(value), type(value).__name__)
