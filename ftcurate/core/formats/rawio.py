"""Raw record streams: JSON Lines, JSON arrays, CSV and Parquet, with exact positions.

Each reader yields :class:`RawItem` objects (index, physical line, decoded object or an
error) and never holds more than one record's text at a time, except the JSON-array reader
which keeps the file's text (one copy) while it walks it.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import sys
from typing import Iterator, Optional

from .base import DatasetError, RawItem

try:  # orjson is optional: faster, stricter; json is the fallback and the judge of errors
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

BOM = codecs.BOM_UTF8
MAX_LINE_BYTES = 512 * 1024 * 1024  # a line larger than this is reported, not parsed
SNIFF_BYTES = 64 * 1024


def loads(text: str | bytes):
    """Parse JSON quickly when orjson is there; the standard library decides errors."""
    if _orjson is not None:
        try:
            return _orjson.loads(text)
        except _orjson.JSONDecodeError:
            pass
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.loads(text)


# -- file sniffing ------------------------------------------------------------------------

def sniff(path: str) -> bytes:
    """Check a path is a readable, non-empty text (or Parquet) file; return its head."""
    if not os.path.exists(path):
        raise DatasetError("not_found", f"{path}: no such file")
    if os.path.isdir(path):
        raise DatasetError("is_directory", f"{path}: is a directory, not a dataset file")
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        raise DatasetError("unreadable", f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if head.startswith(b"PAR1"):
        return head
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DatasetError("unsupported_encoding",
                           f"{path}: the file is UTF-16; save it as UTF-8 and open it again")
    body = head[len(BOM):] if head.startswith(BOM) else head
    if not body.strip():
        raise DatasetError("empty_file", f"{path}: the file is empty (no records)")
    if b"\x00" in body or _looks_binary(body):
        raise DatasetError("binary_file",
                           f"{path}: this looks like a binary file, not JSON Lines, JSON, CSV or Parquet")
    return head


def _looks_binary(body: bytes) -> bool:
    sample = body[:4096]
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return controls > max(8, len(sample) // 20)


def first_text(head: bytes) -> str:
    body = head[len(BOM):] if head.startswith(BOM) else head
    return body.decode("utf-8", errors="replace").lstrip()


# -- JSON Lines ---------------------------------------------------------------------------

def iter_jsonl(path: str) -> Iterator[RawItem]:
    """Yield one item per non-blank line. ``line`` is the 1-based physical line
    (LF-separated; a CRLF ending is one line ending, as in any editor)."""
    index = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if len(raw) > MAX_LINE_BYTES:
                yield RawItem(index, lineno, error=(
                    "line_too_long", f"line is {len(raw) / 1e6:.0f} MB, over the "
                    f"{MAX_LINE_BYTES // 1_000_000} MB limit"))
                index += 1
                continue
            stripped = raw.strip()
            if not stripped:
                continue
            yield _decode_line(stripped, index, lineno)
            index += 1


def _decode_line(raw: bytes, index: int, lineno: int) -> RawItem:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return RawItem(index, lineno, error=(
            "invalid_utf8", f"byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not valid UTF-8"))
    try:
        return RawItem(index, lineno, obj=loads(raw))
    except (ValueError, RecursionError) as exc:
        return RawItem(index, lineno, error=("invalid_json", _json_message(exc, text)))


def _json_message(exc: Exception, text: str) -> str:
    if isinstance(exc, json.JSONDecodeError):
        if exc.pos >= len(text.rstrip()):
            return f"invalid JSON: the text ends early ({exc.msg} at column {exc.colno})"
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    return f"invalid JSON: {exc}"


# -- JSON arrays ----------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_SURROGATE = re.compile("[\udc80-\udcff]")
_ELEMENT_START = re.compile(r"\n[ \t]*\{")


def iter_json_array(path: str) -> Iterator[RawItem]:
    """Yield one item per array element with its 0-based index and the physical line
    where it starts. A file cut off mid-array yields the complete elements and one
    ``truncated_json`` item; an element with broken JSON is reported and the reader
    resynchronises at the next element that starts a line."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(BOM):
        data = data[len(BOM):]
    text = data.decode("utf-8", errors="surrogateescape")
    del data
    decoder = json.JSONDecoder()
    pos = _WS.match(text, 0).end()
    if pos >= len(text) or text[pos] != "[":
        raise DatasetError("not_array", f"{path}: expected a JSON array of records or JSON Lines")
    pos += 1
    line = 1 + text.count("\n", 0, pos)
    index = 0
    while True:
        ws_end = _WS.match(text, pos).end()
        line += text.count("\n", pos, ws_end)
        pos = ws_end
        if pos >= len(text):
            # The closing bracket is missing but no element was cut: nothing is lost.
            return
        if text[pos] == "]":
            return
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            if _truncated_at(text, exc):
                yield RawItem(index, line, error=(
                    "truncated_json", "the file ends in the middle of this record (truncated JSON array)"))
                return
            nxt = _resync(text, decoder, pos)
            yield RawItem(index, line, error=("invalid_json", f"invalid JSON: {exc.msg} "
                                              f"(line {exc.lineno}, column {exc.colno})"))
            index += 1
            if nxt is None:
                return
            line += text.count("\n", pos, nxt)
            pos = nxt
            continue
        if _SURROGATE.search(text, pos, end):
            item = RawItem(index, line, error=("invalid_utf8", "the record contains bytes that are not valid UTF-8"))
        else:
            item = RawItem(index, line, obj=obj)
        yield item
        index += 1
        line += text.count("\n", pos, end)
        pos = end
        ws_end = _WS.match(text, pos).end()
        line += text.count("\n", pos, ws_end)
        pos = ws_end
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] == "]":
            return
        elif pos >= len(text):
            return
        else:
            nxt = _resync(text, decoder, pos)
            if nxt is None:
                return
            line += text.count("\n", pos, nxt)
            pos = nxt


def _truncated_at(text: str, exc: json.JSONDecodeError) -> bool:
    return exc.pos >= len(text.rstrip())


def _resync(text: str, decoder: json.JSONDecoder, pos: int) -> Optional[int]:
    """Position of the next element that starts a line and decodes, or None."""
    for m in _ELEMENT_START.finditer(text, pos + 1):
        start = m.end() - 1
        try:
            _, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        after = _WS.match(text, end).end()
        if after >= len(text) or text[after] in ",]":
            return m.start() + 1
    return None


# -- CSV --------------------------------------------------------------------------------------

def iter_csv(path: str, delimiter: Optional[str] = None) -> Iterator[RawItem]:
    """Yield one dict per data row; ``line`` is the physical line where the row starts
    (quoted fields may span lines). Rows with bytes that are not UTF-8 are reported."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith((".tsv", ".tab")) else ","
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError("empty_file", f"{path}: the CSV file has no header row") from None
        except csv.Error as exc:
            raise DatasetError("invalid_csv", f"{path}: cannot read the CSV header ({exc})") from None
        header = [h.strip() for h in header]
        if not any(header):
            raise DatasetError("invalid_csv", f"{path}: the first row (the header) is empty")
        index = 0
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RawItem(index, start, error=("invalid_csv", f"malformed CSV row: {exc}"))
                index += 1
                start = reader.line_num + 1
                continue
            if not row or all(not c.strip() for c in row):
                start = reader.line_num + 1
                continue
            if any(_SURROGATE.search(c) for c in row):
                yield RawItem(index, start, error=("invalid_utf8", "the row contains bytes that are not valid UTF-8"))
            elif len(row) != len(header):
                yield RawItem(index, start, error=(
                    "wrong_type", f"row has {len(row)} fields but the header has {len(header)}"))
            else:
                yield RawItem(index, start, obj=dict(zip(header, row)))
            index += 1
            start = reader.line_num + 1


def csv_columns(path: str, delimiter: Optional[str] = None) -> list[str]:
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith((".tsv", ".tab")) else ","
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        for row in csv.reader(f, delimiter=delimiter):
            return [h.strip() for h in row]
    return []


# -- Parquet ------------------------------------------------------------------------------------

def iter_parquet(path: str, batch_size: int = 8192) -> Iterator[RawItem]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for broken files
        raise DatasetError("invalid_parquet", f"{path}: not a readable Parquet file ({exc})") from None
    index = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for row in batch.to_pylist():
            yield RawItem(index, None, obj=row)
            index += 1


def parquet_columns(path: str) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except Exception as exc:
        raise DatasetError("invalid_parquet", f"{path}: not a readable Parquet file ({exc})") from None
