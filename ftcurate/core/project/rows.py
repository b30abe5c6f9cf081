"""Stored rows to Python objects, checked: a project file can hold anything (a bad disk, a
hand edit, a hostile file), so every value read is checked for its type and JSON shape. A
record whose row does not hold what ftcurate wrote raises :class:`DamagedRecord` naming the
record and why, and the rest of the project stays usable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sequence

from .errors import DamagedRecord, ProjectDamaged
from .records import SPLITS, Message, Record, Source

STATUSES = ("unreviewed", "approved", "rejected", "edited")
_CHUNK = 500  # ids per ``IN (...)`` query: well under any SQLite variable limit

_jdump: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def jdump(value: Any) -> str:
    return _jdump(value)


def chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def unique_ids(ids: Iterable[int] | int) -> list[int]:
    if isinstance(ids, int):
        return [ids]
    seen: set[int] = set()
    out: list[int] = []
    for i in ids:
        i = int(i)
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def norm_labels(labels: Iterable[str] | str) -> list[str]:
    if isinstance(labels, str):
        labels = [labels]
    out: list[str] = []
    for lab in labels:
        lab = str(lab).strip()
        if lab and lab not in out:
            out.append(lab)
    return out


def few(ids: list[Any], n: int = 5) -> str:
    shown = ", ".join(str(i) for i in ids[:n])
    return shown + (f" (and {len(ids) - n} more)" if len(ids) > n else "")


# -- checked parsing ------------------------------------------------------------------------


class BadValue(ValueError):
    """A stored value that is not what ftcurate writes (the message says which and why)."""


def _json(text: Any, what: str) -> Any:
    if not isinstance(text, str):
        raise BadValue(f"{what} is not text")
    try:
        return json.loads(text)
    except ValueError:
        raise BadValue(f"{what} is not valid JSON") from None


# (tool_call_id is kept as the file had it: the readers do not require text)
_OPTIONAL_TYPES = {"name": (str,), "tool_calls": (list,), "function_call": (dict,)}


def _message(m: Any, what: str) -> Message:
    if type(m) is not dict:
        raise BadValue(f"{what} has a message that is not an object")
    role, content = m.get("role"), m.get("content")
    if type(role) is not str:
        raise BadValue(f"{what} has a message whose role is not text")
    if content is not None and type(content) is not str:
        raise BadValue(f"{what} has a message whose content is a {type(content).__name__}, not text")
    if len(m) <= 2:  # the common case: role and content only
        return Message(role, content)
    for key, types in _OPTIONAL_TYPES.items():
        value = m.get(key)
        if value is not None and not isinstance(value, types):
            raise BadValue(f"{what} has a message whose {key} is a {type(value).__name__}")
    weight = m.get("weight")
    if weight is not None and (type(weight) is not int):
        raise BadValue(f"{what} has a message whose weight is not a whole number")
    return Message(role, content, m.get("name"), m.get("tool_calls"), m.get("function_call"), m.get("tool_call_id"),
                   weight)


def content_record(text: Any, what: str = "content", **kwargs: Any) -> Record:
    """A Record from stored content JSON, its shape checked."""
    obj = _json(text, what)
    if type(obj) is not dict or type(obj.get("messages")) is not list:
        raise BadValue(f"{what} has no list of messages")
    tools = obj.get("tools")
    if tools is not None and type(tools) is not list:
        raise BadValue(f"{what} has tools that are not a list")
    return Record(messages=[_message(m, what) for m in obj["messages"]], tools=tools, **kwargs)


def labels_list(text: Any) -> list[str]:
    if text == "[]" or text is None:
        return []
    labels = _json(text if text is not None else "[]", "labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise BadValue("labels is not a JSON list of text")
    return labels


def metadata_dict(text: Any) -> dict:
    if not text or text == "{}":
        return {}
    meta = _json(text, "metadata")
    if not isinstance(meta, dict):
        raise BadValue("metadata is not a JSON object")
    return meta


def check_status(status: Any) -> str:
    if status not in STATUSES:
        raise BadValue(f"status {status!r} is not one of {', '.join(STATUSES)}")
    return status


def check_split(split: Any) -> str:
    if split not in SPLITS:
        raise BadValue(f"split {split!r} is not one of {', '.join(SPLITS)}")
    return split


def check_text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadValue(f"{what} is not text")
    return value


def damaged(rid: Any, source_id: Any, idx: Any, reason: str) -> DamagedRecord:
    where = f"record {idx}" if isinstance(idx, int) else f"row {rid}"
    src = f" of source {source_id}" if source_id is not None else ""
    row = {"id": rid, "source_id": source_id, "index": idx, "reason": reason}
    return DamagedRecord(f"{where}{src} is damaged in the project ({reason}); it is left out", [row])


# -- records as stored --------------------------------------------------------------------


@dataclass
class StoredRecord:
    id: int  # store id (SQLite rowid, stable)
    source_id: int
    index: int  # 0-based record index in its source file
    line: Optional[int]  # 1-based physical line in the source file
    split: str  # train / validation / test
    original: Record  # as imported
    edited: Optional[Record]  # edited content, or None
    status: str
    labels: list[str] = field(default_factory=list)
    note: str = ""
    reviewer: Optional[str] = None
    updated_at: Optional[float] = None

    @property
    def record(self) -> Record:
        """The record with edits applied: the edited content if any, else the original."""
        return self.edited if self.edited is not None else self.original

    @property
    def is_edited(self) -> bool:
        return self.edited is not None


# ``v.record_id`` is NULL for a record whose review row is missing (a damaged project)
REVIEW_COLS = (
    "r.id, r.source_id, r.idx, r.line, r.split, r.content, r.metadata, s.path, "
    "v.status, v.edited, v.labels, v.note, v.reviewer, v.updated_at, v.record_id"
)
REVIEW_FROM = "records r LEFT JOIN reviews v ON v.record_id = r.id LEFT JOIN sources s ON s.id = r.source_id"


def row_to_stored(row: tuple) -> StoredRecord:
    """A StoredRecord from a ``REVIEW_COLS`` row; :class:`DamagedRecord` when a value is
    not what ftcurate stores."""
    (rid, source_id, idx, line, split, content, metadata, path, status, edited, labels, note, reviewer,
     updated_at, review_id) = row
    try:
        if review_id is None:
            raise BadValue("its review row is missing")
        if not isinstance(idx, int) or (line is not None and not isinstance(line, int)):
            raise BadValue("its index or line is not a whole number")
        check_split(split)
        check_status(status)
        meta = metadata_dict(metadata)
        src = Source(path if isinstance(path, str) else "", line, idx)
        original = content_record(content, "content", source=src, split=split, metadata=meta)
        edited_rec = None
        if edited is not None:
            edited_rec = content_record(edited, "edited content", source=Source(src.file, line, idx), split=split,
                                        metadata=dict(meta))
        stored = StoredRecord(
            id=rid, source_id=source_id, index=idx, line=line, split=split, original=original, edited=edited_rec,
            status=status, labels=labels_list(labels), note=check_text(note, "note"),
            reviewer=reviewer if isinstance(reviewer, str) else None,
            updated_at=updated_at if isinstance(updated_at, (int, float)) else None,
        )
    except BadValue as exc:
        raise damaged(rid, source_id, idx, str(exc)) from None
    return stored


class State(NamedTuple):
    """A record's full review state: what a decision's ``before``/``after`` hold.

    ``labels`` is kept as its JSON text so that states are hashable and cheap to compare."""

    status: str
    edited: Optional[str]  # edited content JSON, or None
    labels: str  # JSON list
    note: str
    split: str
    reviewer: Optional[str]
    updated_at: Optional[float]
    dismissed: str = "[]"  # JSON list of dismissed findings (see dismissed_list)

    def to_dict(self) -> dict:
        d = {
            "status": self.status,
            "edited": self.edited,
            "labels": json.loads(self.labels),
            "note": self.note,
            "split": self.split,
            "reviewer": self.reviewer,
            "updated_at": self.updated_at,
        }
        if self.dismissed != "[]":  # older log entries have none: kept that way when empty
            d["dismissed"] = json.loads(self.dismissed)
        return d

    @classmethod
    def from_json(cls, blob: Any) -> "State":
        """A state from the decision log; :class:`BadValue` when the entry is damaged."""
        d = _json(blob, "decision entry")
        if not isinstance(d, dict):
            raise BadValue("decision entry is not a JSON object")
        edited = d.get("edited")
        if edited is not None:
            content_record(edited, "edited content")
        reviewer = d.get("reviewer")
        ts = d.get("updated_at")
        return cls(
            check_status(d.get("status")),
            edited,
            _jdump(labels_list(_jdump(d.get("labels") or []))),
            check_text(d.get("note"), "note"),
            check_split(d.get("split")),
            reviewer if isinstance(reviewer, str) else None,
            ts if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None,
            _jdump(dismissed_list(_jdump(d.get("dismissed") or []))),
        )

    @classmethod
    def from_row(cls, rid: int, idx: Any, source_id: Any, status: Any, edited: Any, labels: Any, note: Any,
                 split: Any, reviewer: Any, updated_at: Any, dismissed: Any = "[]") -> "State":
        """The state of a stored record, checked (:class:`DamagedRecord` if it is not sound)."""
        try:
            check_status(status)
            check_split(split)
            if edited is not None:
                content_record(edited, "edited content")
            labels_text = labels if labels is not None else "[]"
            labels_list(labels_text)
            dismissed_text = dismissed if dismissed is not None else "[]"
            dismissed_list(dismissed_text)
            return cls(status, edited, labels_text, check_text(note, "note"), split,
                       reviewer if isinstance(reviewer, str) else None,
                       updated_at if isinstance(updated_at, (int, float)) else None, dismissed_text)
        except BadValue as exc:
            raise damaged(rid, source_id, idx, str(exc)) from None


def dismissed_list(text: Any) -> list[dict]:
    """A record's dismissed findings, checked: ``[{"kind": str, "other": str, "reason": str}]``
    (:class:`BadValue` when the stored value is not that)."""
    items = _json(text, "dismissed findings") if isinstance(text, str) else text
    if not isinstance(items, list):
        raise BadValue("dismissed findings are not a JSON list")
    out = []
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get("kind"), str) and item["kind"]
                and isinstance(item.get("other", ""), str) and isinstance(item.get("reason", ""), str)):
            raise BadValue("a dismissed finding is not {kind, other, reason}")
        out.append({"kind": item["kind"], "other": item.get("other", ""), "reason": item.get("reason", "")})
    return out


class StateJson:
    """Serialises states for the decision log, once per distinct state."""

    def __init__(self) -> None:
        self.memo: dict[State, str] = {}

    def __call__(self, st: State) -> str:
        out = self.memo.get(st)
        if out is None:
            out = self.memo[st] = _jdump(st.to_dict())
        return out


def history_state(blob: Any) -> Optional[dict]:
    """A decision's before/after as a dict, or None when the entry is damaged."""
    try:
        d = json.loads(blob) if isinstance(blob, str) else None
    except ValueError:
        return None
    return d if isinstance(d, dict) else None


def damaged_history(path: str, decision_id: Any, reason: str) -> ProjectDamaged:
    return ProjectDamaged(f"The decision history of project {path} is damaged (decision {decision_id}: {reason}); "
                          "this step cannot be undone or redone. The records themselves are unchanged.")
