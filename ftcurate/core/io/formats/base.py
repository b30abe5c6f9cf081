"""Shared types for readers and writers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ...project.records import Record

FORMATS = ("openai-chat", "prompt-completion", "alpaca", "sharegpt", "csv", "parquet")
FORMAT_CHOICES = ("auto",) + FORMATS

# Stable error keys. The first group is OpenAI's fine-tuning data-prep checks, with their names.
ERROR_KEYS = {
    "data_type": "the record (or a message in it) is not a JSON object",
    "missing_messages_list": "no non-empty 'messages' (or 'conversations') list",
    "message_missing_key": "a message lacks 'role' or 'content'",
    "message_unrecognized_key": "a message has a key OpenAI does not accept",
    "unrecognized_role": "a message has a role that is not recognised",
    "missing_content": "a message has empty content (and no function/tool call), or content is not a string",
    "example_missing_assistant_message": "no assistant message to learn from",
    # Raw file problems, one per record.
    "invalid_json": "the line (or array element) is not valid JSON",
    "invalid_utf8": "the line contains bytes that are not valid UTF-8",
    "truncated_json": "a JSON array ends before its closing bracket (in this record, or before it)",
    "unexpected_text": "text in a JSON array that is not a record (between elements, or after the end)",
    "unterminated_field": "a CSV file ends inside a quoted field of this row",
    "invalid_csv": "a CSV row that cannot be read",
    "invalid_parquet": "a Parquet row that cannot be read (a damaged page)",
    "line_too_long": "the line is larger than the reader's limit",
    # Other formats' field checks.
    "missing_key": "a required field is missing",
    "wrong_type": "a field has the wrong type",
    "invalid_tools": "the tool definitions are not a list of objects (or a JSON string of one)",
    "invalid_function_call": "a function call is not a JSON object with a name",
    "invalid_weight": "a message weight is not 0 or 1",
}


class DatasetError(Exception):
    """The input cannot be read at all (missing, binary, empty, unknown format)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class NotRepresentable(ValueError):
    """A record cannot be written in the chosen format without losing content."""


@dataclass(slots=True)
class RecordError:
    index: int  # 0-based record index in the file
    line: Optional[int]  # 1-based physical line where the record starts (None: CSV/Parquet rows have none for Parquet)
    key: str
    message: str

    def to_dict(self) -> dict:
        return {"line": self.line, "index": self.index, "key": self.key, "message": self.message}

    def where(self) -> str:
        if self.line is None:
            return f"record {self.index}"
        return f"line {self.line}"


@dataclass(slots=True)
class RawItem:
    """One record as it sits in the file, before format checks."""

    index: int
    line: Optional[int]
    obj: Any = None
    error: Optional[tuple[str, str]] = None  # (key, message) when the raw record is unreadable


@dataclass(slots=True)
class Parsed:
    """A record after format checks: either ``record`` or a non-empty ``errors``."""

    index: int
    line: Optional[int]
    record: Optional[Record] = None
    errors: list[RecordError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.record is not None and not self.errors


# Field-check helpers shared by the non-OpenAI formats ---------------------------------
Problems = list  # list[tuple[str, str]]


def require_str(obj: dict, key: str, problems: Problems, *, allow_empty: bool = False,
                required: bool = True) -> Optional[str]:
    if key not in obj or obj[key] is None:
        if required:
            problems.append(("missing_key", f"missing required field '{key}'"))
        return None
    value = obj[key]
    if not isinstance(value, str):
        problems.append(("wrong_type", f"field '{key}' must be a string, got {type(value).__name__}"))
        return None
    if not allow_empty and value == "":
        problems.append(("missing_content", f"field '{key}' is empty"))
        return None
    return value
