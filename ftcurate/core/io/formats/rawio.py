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
            return f"invalid JSON: the text ends early ({exc.msg}, column {exc.colno})"
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    return f"invalid JSON: {exc}"


# -- JSON arrays ----------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_SURROGATE = re.compile("[\udc80-\udcff]")


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
    # Keys of the first good record (else of the last element), to tell records from
    # nested objects when resynchronising after a broken element.
    known_keys: set = set()
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
            if not known_keys:
                known_keys = _last_element_keys(text, decoder) or {""}
            nxt, truncated = _skip_element(text, pos, decoder, known_keys)
            if truncated:
                yield RawItem(index, line, error=(
                    "truncated_json", "the file ends in the middle of this record (truncated JSON array)"))
                return
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
            if known_keys in (set(), {""}) and isinstance(obj, dict):
                known_keys = set(obj)
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
        elif text[pos] in "{[":
            # A missing comma between two elements: take this as the next element.
            continue
        else:
            # Junk after a complete element: skip it up to the next element.
            if not known_keys:
                known_keys = _last_element_keys(text, decoder) or {""}
            nxt, _ = _skip_element(text, pos, decoder, known_keys)
            if nxt is None:
                return
            line += text.count("\n", pos, nxt)
            pos = nxt


# Inside a string: anything but a quote, a backslash or a newline, or an escape. A raw
# newline cannot be in a JSON string, so a broken string is taken to end at the line end.
_STR_BODY = re.compile(r'[^"\\\n]*(?:\\.[^"\\\n]*)*')
_STRUCT = re.compile(r'["{}\[\],]')


def _scan_element(text: str, pos: int) -> tuple[Optional[int], bool]:
    """Walk one (possibly broken) element from ``pos``, tracking strings and bracket depth.

    Returns (position of the ``,`` or ``]`` that ends it at depth 0, or None when the text
    ends first; whether the text ended inside the element, i.e. it was cut off)."""
    depth = 0
    i = pos
    n = len(text)
    while True:
        m = _STRUCT.search(text, i)
        if m is None:
            return None, depth > 0
        j = m.start()
        c = text[j]
        if c == '"':
            k = _STR_BODY.match(text, j + 1).end()
            if k >= n:
                return None, True
            i = k + 1
        elif c in "{[":
            depth += 1
            i = j + 1
        elif c in "}]":
            if depth == 0:
                if c == "]":
                    return j, False
            else:
                depth -= 1
            i = j + 1
        else:  # ","
            if depth == 0:
                return j, False
            i = j + 1


def _indent_at(text: str, pos: int) -> Optional[str]:
    """The whitespace before ``pos`` on its line, when ``pos`` starts the line; else None."""
    k = pos
    while k > 0 and text[k - 1] in " \t":
        k -= 1
    if k == 0 or text[k - 1] == "\n":
        return text[k:pos]
    return None


def _skip_element(text: str, pos: int, decoder: json.JSONDecoder,
                  known_keys: set) -> tuple[Optional[int], bool]:
    """Find where the element after a broken one starts.

    Returns (start of the next element, or None when there is none; whether the broken
    element runs off the end of the file, i.e. the array was truncated). In a
    pretty-printed array the next element is the next line with the same indent that
    starts with ``{`` or ``[`` after a comma, which survives broken brackets and quotes.
    In a one-line array it is the next ``}, {`` boundary where an object that looks like a
    record (shares a key with ``known_keys``; ``{""}``: unknown, any object) decodes and is
    followed by ``,`` or ``]``; failing that, the element ends at the next comma at its own
    bracket depth."""
    end, cut = _scan_element(text, pos)
    indent = _indent_at(text, pos)
    if indent is not None:
        sibling = re.compile(r",[ \t\r\n]*\n" + re.escape(indent) + r"(?=[{\[])")
        m = sibling.search(text, pos + 1)
        if m is not None:
            return m.end(), False
    else:
        for m in _OBJECT_BOUNDARY.finditer(text, pos + 1):
            start = m.end()
            try:
                obj, stop = decoder.raw_decode(text, start)
            except json.JSONDecodeError:
                continue
            after = _WS.match(text, stop).end()
            if after < len(text) and text[after] not in ",]":
                continue
            if isinstance(obj, dict) and (known_keys == {""} or known_keys & set(obj)):
                return start, False
    if end is None:
        return None, cut
    if text[end] == ",":
        return end + 1, False
    return None, False


_OBJECT_BOUNDARY = re.compile(r"\}[ \t\r\n]*,[ \t\r\n]*(?=\{)")


def _last_element_keys(text: str, decoder: json.JSONDecoder, tries: int = 50) -> set:
    """Keys of the array's last element (the object that ends right before the closing
    bracket), to recognise records when no earlier record decoded."""
    starts = [m.end() for m in _OBJECT_BOUNDARY.finditer(text)][-tries:]
    for start in reversed(starts):
        try:
            obj, stop = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        after = _WS.match(text, stop).end()
        if after < len(text) and text[after] == "]" and not text[after + 1:].strip():
            return set(obj) if isinstance(obj, dict) else set()
    return set()


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
