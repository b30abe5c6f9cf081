"""Reading a large JSON Lines file for an import on every core (issue 14).

The file is cut into byte ranges that end on a line ending (:func:`chunk_bounds`); worker
processes (``spawn``: no fork of a process that runs Qt threads) read each range and turn its
lines into the rows the project stores - decoding, the format's checks, canonical content
JSON, its sha256, token statistics - while this process writes the rows of the ranges before
it into the project. Each worker returns plain values (:class:`Chunk`): the rows and the bad
records of its range numbered from the range's start, and their statistics; the ranges are
taken in file order, so record indices, line numbers, the errors kept and the statistics are
exactly those of :class:`~ftcurate.core.io.formats.DatasetReader` read in one process
(``tests/test_import_parallel.py`` checks it).

Only JSON Lines files of the JSON formats (openai-chat, prompt-completion, alpaca, ShareGPT),
:data:`MIN_BYTES` or larger, without a tokenizer, go this way (:func:`workers_for`); the rest
is read in this process. Common OpenAI chat records (role and content only) skip building
record objects (:func:`~ftcurate.core.io.formats.openai_chat.simple_messages`); every other
record goes through the format's ``parse`` as in one process.

Cancelling stops at the next range: the workers are ended and nothing they read is kept.
"""

from __future__ import annotations

import gc
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from .formats import SCHEMAS, DatasetReader, rawio
from .formats.openai_chat import simple_messages
from .validate import StatsAccumulator, TokenCounter
from ..progress import Reporter
from ..workerpool import result, spawn_pool
from ..project.imports import row_values
from ..project.records import canonical_json

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    _orjson = None

MIN_BYTES = 16 * 1024 * 1024  # smaller files are read in this process (starting workers costs ~0.5 s)
CHUNK_BYTES = 4 * 1024 * 1024  # bytes a worker reads at a time (~10,000 short chat records)
IN_FLIGHT = 2  # ranges handed to each worker ahead: bounded memory, a cancel close at hand


@dataclass
class Chunk:
    """What a worker made of one byte range (indices and lines counted from the range's start)."""

    lines: int = 0  # physical lines in the range
    records: int = 0  # records (non-blank lines)
    rows: list = field(default_factory=list)  # (index, line, content, content_hash, metadata) of good records
    rejected: list = field(default_factory=list)  # (index, line, [(key, message), ...]) of bad ones
    acc: Optional[StatsAccumulator] = None  # statistics of the good records


def workers_for(reader: DatasetReader, tokenizer: Optional[str]) -> int:
    """Processes to read ``reader``'s file with for an import (1: in this process)."""
    if reader.container != "jsonl" or reader.format not in SCHEMAS or tokenizer:
        return 1
    try:
        size = os.path.getsize(reader.path)
    except OSError:
        return 1
    if size < MIN_BYTES:
        return 1
    from ..quality.recordpass import workers  # FTCURATE_WORKERS, cores, a main module spawn can import

    return workers(1 << 30)


def chunk_bounds(path: str, chunk_bytes: Optional[int] = None) -> Iterator[tuple[int, int]]:
    """``(start, end)`` byte ranges of about ``chunk_bytes`` (:data:`CHUNK_BYTES`) covering the
    file, each ending just after a line ending (the last one at the end of the file)."""
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    size = os.path.getsize(path)
    start = 0
    with open(path, "rb") as f:
        while start < size:
            end = min(size, start + max(1, chunk_bytes))
            f.seek(end)
            while end < size:  # on to the end of the line
                block = f.read(1 << 16)
                if not block:
                    end = size
                    break
                nl = block.find(b"\n")
                if nl >= 0:
                    end += nl + 1
                    break
                end += len(block)
            yield start, end
            start = end


def read_chunk(path: str, start: int, end: int, fmt: str, mapping: Optional[dict], split: str,
               max_tokens: int) -> Chunk:
    """Worker: the rows, bad records and statistics of the lines in ``[start, end)``, read as
    :func:`~ftcurate.core.io.formats.rawio.iter_jsonl` and ``DatasetReader`` read them."""
    enabled = gc.isenabled()
    gc.disable()  # the rows are new objects that live on: collections would only cost time
    try:
        return _read_chunk(path, start, end, fmt, mapping, split, max_tokens)
    finally:
        if enabled:
            gc.enable()


def _read_chunk(path: str, start: int, end: int, fmt: str, mapping: Optional[dict], split: str,
                max_tokens: int) -> Chunk:
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" after a final line ending; else the file's last line, without one
    ended = len(lines)  # lines[:ended] had a line ending (it counts in a line's length)
    if tail:
        lines.append(tail)
    out = Chunk(lines=len(lines), acc=StatsAccumulator(TokenCounter(), max_tokens))
    acc = out.acc
    count = acc.counter.count
    role_tokens = {r: count(r) for r in ("system", "user", "assistant", "function")}
    rows, rejected = out.rows, out.rejected
    parse = SCHEMAS[fmt].parse
    chat = fmt == "openai-chat"
    loads = _orjson.loads if _orjson is not None else None
    dumps = _orjson.dumps if _orjson is not None else None
    sort = _orjson.OPT_SORT_KEYS if _orjson is not None else 0
    sha = hashlib.sha256
    index = 0
    for k, raw in enumerate(lines):
        line = k + 1
        if k == 0 and start == 0 and raw.startswith(rawio.BOM):
            raw = raw[len(rawio.BOM):]
        if len(raw) + (k < ended) > rawio.MAX_LINE_BYTES:
            n = len(raw) + (k < ended)
            rejected.append((index, line, [("line_too_long", f"line is {n / 1e6:.0f} MB, over the "
                                            f"{rawio.MAX_LINE_BYTES // 1_000_000} MB limit")]))
            index += 1
            continue
        stripped = raw.strip()
        if not stripped:
            continue
        obj: Any = None
        try:
            if loads is None:
                raise ValueError
            obj = loads(stripped)
        except ValueError:  # not JSON to orjson: the reader's own decoding judges it
            item = rawio._decode_line(stripped, index, line)
            if item.error is not None:
                rejected.append((index, line, [item.error]))
                index += 1
                continue
            obj = item.obj
        messages = simple_messages(obj) if chat and dumps is not None else None
        if messages is not None:
            try:
                content_bytes = dumps({"messages": messages}, option=sort)
            except TypeError:  # text orjson will not write (lone surrogates): the general way
                messages = None
        if messages is not None:
            meta = {key: v for key, v in obj.items() if key != "messages"}
            rows.append((index, line, content_bytes.decode("utf-8"), sha(content_bytes).hexdigest(),
                         canonical_json(meta) if meta else "{}"))
            total, answer, system, user = 3, 0, False, False
            for m in messages:
                role = m["role"]
                n = count(m["content"])
                total += 3 + role_tokens[role] + n
                if role == "assistant":
                    answer += n
                elif role == "system":
                    system = True
                elif role == "user":
                    user = True
            acc.add_counts(index, len(messages), total, answer, system, user)
            index += 1
            continue
        try:
            record, problems = parse(obj, mapping)
        except RecursionError:
            record, problems = None, [("data_type", "record is nested too deeply")]
        if problems:
            rejected.append((index, line, problems))
        else:
            record.split = split
            rows.append((index, line, *row_values(record)))
            acc.add(record, index)
        index += 1
    out.records = index
    return out


def read_parallel(reader: DatasetReader, split: str, max_tokens: int, nproc: int, rep: Reporter,
                  chunk_bytes: Optional[int] = None) -> Iterator[tuple[int, int, Chunk]]:
    """The chunks of ``reader``'s file in file order, read by ``nproc`` worker processes, as
    ``(index of its first record, line before its first line, chunk)``. ``rep.check()`` runs
    while waiting; a cancel (or any error) ends the workers."""
    bounds = chunk_bounds(reader.path, chunk_bytes)
    with spawn_pool(nproc) as ex:
        pending: list = []
        more = True
        index = line = 0
        while True:
            while more and len(pending) < IN_FLIGHT * nproc:
                nxt = next(bounds, None)
                if nxt is None:
                    more = False
                    break
                pending.append(ex.submit(read_chunk, reader.path, nxt[0], nxt[1], reader.format, reader.mapping,
                                         split, max_tokens))
            if not pending:
                break
            chunk = result(pending.pop(0), rep)
            yield index, line, chunk
            index += chunk.records
            line += chunk.lines
