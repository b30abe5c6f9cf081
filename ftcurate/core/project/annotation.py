"""How a project is annotated: its label set (name, colour, key), its guidelines (Markdown)
and its saved views (a named filter, sort and column set). Each is stored in the project's
meta table, so every reviewer of the project file sees the same ones.

Labels themselves are per-record review state (``Project.set_labels`` & co., with undo);
the label set only declares which labels the project uses, how they look and which key
toggles each. Free-text labels outside the set stay possible.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Optional

LABEL_SET_META = "label_set"
GUIDELINES_META = "guidelines"
SAVED_VIEWS_META = "saved_views"

#: Single keys the Records tab already uses (approve, reject, reset, next/previous,
#: next unreviewed, edit, label, find similar, the shortcut sheet): a label cannot take them.
RESERVED_KEYS = frozenset("ARUJKNELS?")
#: Keys a label may use: a digit or a letter that is not reserved.
LABEL_KEYS = tuple(k for k in "123456789" + "BCDFGHIMOPQSTVWXYZ" if k not in RESERVED_KEYS)
#: Colours given to new labels, in turn.
PALETTE = ("#1c7ed6", "#2f9e44", "#e8590c", "#ae3ec9", "#f59f00", "#0ca678", "#e64980", "#495057")
MAX_GUIDELINES = 200_000  # characters
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class AnnotationError(ValueError):
    """A label set, guideline text or saved view that cannot be stored (the message says why)."""


@dataclass(frozen=True)
class LabelDef:
    name: str
    color: str = PALETTE[0]
    key: str = ""  # one character of LABEL_KEYS, or "" for none

    def to_dict(self) -> dict:
        return asdict(self)


def parse_label_def(text: str, index: int = 0) -> LabelDef:
    """``name[:colour[:key]]`` as the command line writes a label (``math:#1c7ed6:1``)."""
    parts = [p.strip() for p in str(text).split(":")]
    name = parts[0]
    color = parts[1] if len(parts) > 1 and parts[1] else PALETTE[index % len(PALETTE)]
    key = parts[2] if len(parts) > 2 else ""
    if len(parts) > 3:
        raise AnnotationError(f"{text!r}: write a label as NAME[:COLOUR[:KEY]]")
    return check_label(LabelDef(name, color, key))


def check_label(d: LabelDef) -> LabelDef:
    name = " ".join(str(d.name).split())
    if not name:
        raise AnnotationError("a label needs a name")
    if "," in name:
        raise AnnotationError(f"label {name!r}: no commas in label names (commas separate labels)")
    if len(name) > 60:
        raise AnnotationError(f"label {name[:20]!r}…: at most 60 characters")
    color = str(d.color or "").strip()
    if not _COLOR.match(color):
        raise AnnotationError(f"label {name!r}: colour {color!r} is not #RRGGBB")
    key = str(d.key or "").strip().upper()
    if key and key not in LABEL_KEYS:
        why = "is taken by the review keys (A R U J K N E L S ?)" if key in RESERVED_KEYS else "is not one key"
        raise AnnotationError(f"label {name!r}: key {key!r} {why}; use one of {' '.join(LABEL_KEYS)}")
    return LabelDef(name, color.lower(), key)


def check_label_set(defs: Iterable[LabelDef]) -> list[LabelDef]:
    out: list[LabelDef] = []
    names: set[str] = set()
    keys: dict[str, str] = {}
    for d in defs:
        d = check_label(d)
        if d.name.casefold() in names:
            raise AnnotationError(f"label {d.name!r} is in the set twice")
        if d.key and d.key in keys:
            raise AnnotationError(f"key {d.key} is given to both {keys[d.key]!r} and {d.name!r}")
        names.add(d.name.casefold())
        if d.key:
            keys[d.key] = d.name
        out.append(d)
    return out


def label_set(project) -> list[LabelDef]:
    """The project's label set (damaged entries are left out)."""
    raw = project.meta_get(LABEL_SET_META) or []
    out = []
    for item in raw if isinstance(raw, list) else []:
        try:
            out.append(check_label(LabelDef(str(item.get("name", "")), str(item.get("color", PALETTE[0])),
                                            str(item.get("key", "")))))
        except (AnnotationError, AttributeError):
            continue
    return out


def set_label_set(project, defs: Iterable[LabelDef]) -> list[LabelDef]:
    defs = check_label_set(defs)
    project.meta_set(LABEL_SET_META, [d.to_dict() for d in defs])
    return defs


def define_labels(project, new: Iterable[LabelDef], remove: Iterable[str] = ()) -> list[LabelDef]:
    """Add or replace (by name) labels in the set, and drop the ones named in ``remove``."""
    current = {d.name.casefold(): d for d in label_set(project)}
    for name in remove:
        if current.pop(str(name).strip().casefold(), None) is None:
            raise AnnotationError(f"no label {name!r} in the label set")
    for d in new:
        current[check_label(d).name.casefold()] = d
    return set_label_set(project, current.values())


# -- guidelines ------------------------------------------------------------------------------


def guidelines(project) -> str:
    text = project.meta_get(GUIDELINES_META) or ""
    return text if isinstance(text, str) else ""


def set_guidelines(project, text: Optional[str]) -> None:
    text = (text or "").replace("\r\n", "\n")
    if len(text) > MAX_GUIDELINES:
        raise AnnotationError(f"guidelines of {len(text):,} characters: at most {MAX_GUIDELINES:,}")
    project.meta_set(GUIDELINES_META, text.strip() and text or None)


# -- saved views -------------------------------------------------------------------------------


def saved_views(project) -> dict[str, dict]:
    """Name -> view state ({"filter": {...}, "sort": [key, descending], "columns": {...}})."""
    raw = project.meta_get(SAVED_VIEWS_META) or {}
    return {str(k): v for k, v in raw.items() if isinstance(v, dict)} if isinstance(raw, dict) else {}


def save_view(project, name: str, state: dict[str, Any]) -> None:
    name = " ".join(str(name).split())
    if not name:
        raise AnnotationError("a saved view needs a name")
    if len(name) > 80:
        raise AnnotationError("a saved view's name has at most 80 characters")
    views = saved_views(project)
    views[name] = dict(state)
    project.meta_set(SAVED_VIEWS_META, views)


def delete_view(project, name: str) -> bool:
    views = saved_views(project)
    if views.pop(name, None) is None:
        return False
    project.meta_set(SAVED_VIEWS_META, views or None)
    return True
