"""ShareGPT: ``{"conversations": [{"from": ..., "value": ...}], "system"?, "tools"?}``.

Roles: human/user, gpt/assistant (also chatgpt, bard, bing, model), system,
function_call (an assistant tool call whose value is JSON ``{"name", "arguments"}``) and
observation (the tool's answer). ``tools`` may be a list or a JSON string of one, as in
LLaMA-Factory's data; plain function schemas are wrapped as OpenAI tools.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from ...project.records import Message, Record
from .base import NotRepresentable

NAME = "sharegpt"
ROLE_MAP = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
            "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "model": "assistant",
            "system": "system", "function_call": "function_call", "observation": "tool", "tool": "tool"}


def parse(obj: Any, mapping: Optional[dict] = None) -> tuple[Optional[Record], list]:
    if not isinstance(obj, dict):
        return None, [("data_type", "record is not a JSON object")]
    ck = (mapping or {}).get("conversations") or "conversations"
    conv = obj.get(ck)
    if not conv or not isinstance(conv, list):
        return None, [("missing_messages_list", f"'{ck}' is missing or not a non-empty list")]
    problems: list = []
    msgs: list[Message] = []
    sys_top = obj.get("system")
    if sys_top is not None and not isinstance(sys_top, str):
        problems.append(("wrong_type", "'system' must be a string"))
    elif sys_top:
        msgs.append(Message("system", sys_top))
    calls = 0
    pending: list[str] = []
    for i, turn in enumerate(conv, start=1):
        if not isinstance(turn, dict):
            problems.append(("data_type", f"turn {i} is not an object"))
            continue
        if "from" not in turn or "value" not in turn:
            problems.append(("message_missing_key", f"turn {i} has no '{'from' if 'from' not in turn else 'value'}'"))
            continue
        role = ROLE_MAP.get(turn["from"]) if isinstance(turn["from"], str) else None
        value = turn["value"]
        if role is None:
            problems.append(("unrecognized_role", f"turn {i} is from {turn['from']!r}; expected one of "
                             "human, gpt, system, function_call, observation"))
            continue
        if not isinstance(value, str) or value == "":
            problems.append(("missing_content", f"turn {i} ({turn['from']}) value is "
                             + ("empty" if value == "" else "not a string")))
            continue
        if role == "function_call":
            try:
                call = json.loads(value)
            except ValueError:
                call = None
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                problems.append(("invalid_function_call", f"turn {i} is not JSON with a 'name'"))
                continue
            args = call.get("arguments", {})
            call_id = f"call_{calls}"
            calls += 1
            pending.append(call_id)
            msgs.append(Message("assistant", None, tool_calls=[{
                "id": call_id, "type": "function",
                "function": {"name": call["name"],
                             "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)}}]))
        elif role == "tool":
            msgs.append(Message("tool", value, tool_call_id=pending.pop(0) if pending else None))
        else:
            msgs.append(Message(role, value))
    if not any(m.role == "assistant" for m in msgs) and not problems:
        problems.append(("example_missing_assistant_message", "the conversation has no gpt/assistant turn"))
    tools = obj.get("tools")
    if isinstance(tools, str):
        try:
            tools = json.loads(tools) if tools.strip() else None
        except ValueError:
            problems.append(("invalid_tools", "'tools' is a string that is not JSON"))
            tools = None
    if tools is not None:
        if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
            problems.append(("invalid_tools", "'tools' must be a list of objects"))
        else:
            tools = [t if "type" in t and "function" in t else {"type": "function", "function": t} for t in tools]
    if problems:
        return None, problems
    meta = {k: v for k, v in obj.items() if k not in (ck, "system", "tools")}
    return Record(messages=msgs, tools=tools or None, metadata=meta), []


def dump(record: Record) -> dict:
    out: dict[str, Any] = {k: v for k, v in record.metadata.items()
                           if k not in ("conversations", "system", "tools")}
    conv = []
    msgs = list(record.messages)
    if msgs and msgs[0].role == "system":
        out["system"] = msgs.pop(0).content or ""
    for m in msgs:
        if m.name is not None or m.weight is not None or m.function_call is not None:
            raise NotRepresentable("sharegpt cannot hold message names, weights or legacy function_call")
        if m.role == "user":
            conv.append({"from": "human", "value": m.content})
        elif m.role == "assistant":
            if m.tool_calls:
                if m.content:
                    raise NotRepresentable("sharegpt cannot hold assistant text and a tool call in one turn")
                for call in m.tool_calls:
                    fn = call.get("function") if isinstance(call, dict) else None
                    fn = fn if isinstance(fn, dict) else {}
                    args = fn.get("arguments", "{}")
                    try:
                        args = json.loads(args) if isinstance(args, str) else args
                    except ValueError:
                        pass
                    conv.append({"from": "function_call",
                                 "value": json.dumps({"name": fn.get("name"), "arguments": args}, ensure_ascii=False)})
            else:
                conv.append({"from": "gpt", "value": m.content})
        elif m.role == "tool":
            conv.append({"from": "observation", "value": m.content})
        else:
            raise NotRepresentable(f"sharegpt cannot hold a {m.role} message here")
    out["conversations"] = conv
    if record.tools:
        out["tools"] = json.dumps([t.get("function", t) if t.get("type") == "function" else t
                                   for t in record.tools], ensure_ascii=False)
    return out
