"""Editing a record in place: check the new content before it is stored.

:func:`validated_edit` runs the same OpenAI-chat checks as loading a file (so an edit
can't store what an import would have rejected), keeps the original's source, split
and metadata, and returns either the new :class:`Record` or the problems found.
:meth:`ftcurate.core.project.store.Project.edit` keeps the original beside the edit, and
:meth:`~ftcurate.core.project.store.Project.restore_original` brings it back.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Optional

from ..io.formats import openai_chat
from .records import Message, Record


def validated_edit(original: Record, content: dict | str) -> tuple[Optional[Record], list[tuple[str, str]]]:
    """``(record, [])`` for valid new content, else ``(None, [(error key, message), ...])``.

    ``content`` is an OpenAI chat object (``{"messages": [...], "tools": ...}``) or its
    JSON text."""
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError as exc:
            return None, [("invalid_json", f"not valid JSON: {exc}")]
    if not isinstance(content, dict):
        return None, [("data_type", "the content must be a JSON object with 'messages'")]
    extra = [k for k in content if k not in ("messages", "tools")]
    if extra:
        return None, [("unrecognized_key", "only 'messages' and 'tools' can be edited here, not "
                       + ", ".join(map(str, extra)))]
    parsed, problems = openai_chat.parse(content)
    if parsed is None:
        return None, problems
    return replace(original, messages=parsed.messages, tools=parsed.tools), []


def edited_messages(original: Record, turns: list[tuple[str, str]]) -> dict[str, Any]:
    """The content with each message's role and text replaced by ``turns`` (in order),
    other message fields (tool calls, names, weights) kept where the message stays."""
    messages = []
    for i, (role, text) in enumerate(turns):
        base = original.messages[i] if i < len(original.messages) else Message(role=role)
        messages.append(replace(base, role=role, content=text).to_dict())
    out: dict[str, Any] = {"messages": messages}
    if original.tools is not None:
        out["tools"] = original.tools
    return out
