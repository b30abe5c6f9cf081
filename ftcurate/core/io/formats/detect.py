"""Telling a file's container (JSON Lines, JSON array, CSV, Parquet) and record schema.

The schema is the one most records have (a vote by keys): every record of a file up to
:data:`FULL_VOTE_BYTES`, else the first :data:`DETECT_SAMPLE` records plus records read at
:data:`PROBES` places spread over the file, so a file that opens with a minority of
another format is still read as what most of it is.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable, Iterator, Optional

from . import prompt_completion, rawio
from .base import RawItem

DETECT_SAMPLE = 50  # records read from the start of a big file
FULL_VOTE_BYTES = 8 * 1024 * 1024  # files up to this size: every record votes
PROBES = 24  # places spread over a bigger file ...
PROBE_RECORDS = 50  # ... where up to this many records are read (as many as at the start)
PROBE_BYTES = 256 * 1024


def container_for(path: str, head: bytes, fmt: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if fmt == "parquet" or head.startswith(b"PAR1"):
        return "parquet"
    if fmt == "csv" or (fmt == "auto" and ext in (".csv", ".tsv", ".tab")):
        return "csv"
    text = rawio.first_text(head)
    if text.startswith("["):
        first_line = text.split("\n", 1)[0].strip()
        rest = text.split("\n", 1)[1].strip() if "\n" in text else ""
        try:
            json.loads(first_line)
            one_line_array = True
        except (ValueError, RecursionError):
            one_line_array = False
        # A first line that is a whole array followed by more lines is JSON Lines.
        return "jsonl" if (one_line_array and rest and not rest.startswith("]")) else "json"
    return "jsonl"


def schema_of(obj: Any) -> tuple[Optional[str], Optional[dict]]:
    """The schema one record's keys say (and a prompt/completion mapping), or (None, None)."""
    if not isinstance(obj, dict):
        return None, None
    keys = set(obj)
    if "messages" in keys:
        return "openai-chat", None
    if "conversations" in keys:
        return "sharegpt", None
    if "instruction" in keys and "output" in keys:
        return "alpaca", None
    m = prompt_completion.default_mapping(keys)
    if m is None:
        return None, None
    return "prompt-completion", m


class Votes:
    """Records per schema, tallied one record at a time (nothing is kept but counts, the
    first prompt/completion mapping and a few keys for messages)."""

    def __init__(self) -> None:
        self.votes: dict[str, int] = {}
        self.mapping: Optional[dict] = None
        self.decoded = 0  # records that decoded
        self.keys: set = set()  # keys seen (at most 64), for a message when no schema fits
        self.objects = 0  # decoded records that are JSON objects
        self.first_error: Optional[RawItem] = None

    def add(self, obj: Any) -> None:
        self.decoded += 1
        if isinstance(obj, dict):
            self.objects += 1
            if len(self.keys) < 64:
                self.keys.update(list(obj)[:64])
        name, m = schema_of(obj)
        if name is None:
            return
        self.votes[name] = self.votes.get(name, 0) + 1
        if m is not None and self.mapping is None:
            self.mapping = m

    def winner(self) -> tuple[Optional[str], Optional[dict]]:
        """The schema most records have (ties: the one seen first), with its mapping."""
        if not self.votes:
            return None, None
        best = max(self.votes, key=self.votes.get)
        return best, (self.mapping if best == "prompt-completion" else None)


def schema_from_keys(objs: Iterable) -> tuple[Optional[str], Optional[dict]]:
    """The schema most of ``objs`` have (ties: the one seen first), with its mapping."""
    v = Votes()
    for obj in objs:
        v.add(obj)
    return v.winner()


def vote(path: str, container: str, raw: Iterator[RawItem]) -> Votes:
    """Tally the schemas of a file's records (see the module help). ``raw`` is the file's
    record stream from the start."""
    v = Votes()
    small = os.path.getsize(path) <= FULL_VOTE_BYTES
    for item in raw:
        if item.error is None:
            v.add(item.obj)
        elif v.first_error is None:
            v.first_error = item
        if small:
            continue
        # Read on past broken records until at least one record decodes.
        if v.decoded >= DETECT_SAMPLE or (v.decoded and item.index > DETECT_SAMPLE * 4):
            break
    else:
        return v  # the whole file was read
    probed = _probe_jsonl(path) if container == "jsonl" else _probe_array(path) if container == "json" else ()
    for obj in probed:
        v.add(obj)
    return v


def _probes(path: str) -> Iterator[bytes]:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        for k in range(1, PROBES + 1):
            f.seek(size * k // (PROBES + 1))
            yield f.read(PROBE_BYTES)


def _probe_jsonl(path: str) -> Iterator[Any]:
    for chunk in _probes(path):
        lines = chunk.split(b"\n")[1:-1]  # whole lines only
        got = 0
        for line in lines:
            if not line.strip():
                continue
            try:
                obj = rawio.loads(line)
            except (ValueError, RecursionError):
                continue
            yield obj
            got += 1
            if got >= PROBE_RECORDS:
                break


_ONE_LINE_START = re.compile(r"\}[ \t\r\n]*,[ \t\r\n]*(?=\{)")


def _probe_array(path: str) -> Iterator[Any]:
    """Records that start after an element boundary (``,`` then a new line with the first
    element's indent and ``{``, or ``}, {`` in a one-line array) at each probe."""
    decoder = json.JSONDecoder()
    with open(path, "rb") as f:
        head = rawio.first_text(f.read(PROBE_BYTES))
    m = re.match(r"\[[ \t\r]*\n([ \t]*)\{", head)
    # A new line with the first element's indent, or "}, {" in a one-line array.
    starts = re.compile(r",[ \t\r]*\n" + re.escape(m.group(1)) + r"(?=\{)") if m else _ONE_LINE_START
    for chunk in _probes(path):
        text = chunk.decode("utf-8", errors="replace")
        got = 0
        for b in starts.finditer(text):
            try:
                obj, stop = decoder.raw_decode(text, b.end())
            except (ValueError, RecursionError):
                continue
            rest = text[stop:stop + 64].lstrip()
            if not rest or rest[0] not in ",]" or schema_of(obj)[0] is None:
                continue
            yield obj
            got += 1
            if got >= PROBE_RECORDS:
                break
