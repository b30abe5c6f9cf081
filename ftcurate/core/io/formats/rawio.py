"""Raw record streams: JSON Lines, JSON arrays, CSV and Parquet, with exact positions.

Each reader yields :class:`RawItem` objects (index, physical line, decoded object or an
error) and holds about one record's text at a time (JSON arrays: a window of a few MB, see
:mod:`.jsonarray`).
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
from .jsonarray import iter_json_array, lone_surrogate, value_error_message

__all__ = ["sniff", "first_text", "loads", "iter_jsonl", "iter_json_array", "iter_csv", "csv_columns",
           "iter_parquet", "parquet_columns", "BOM", "MAX_LINE_BYTES"]

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
        obj = loads(raw)
    except (ValueError, RecursionError) as exc:
        return RawItem(index, lineno, error=("invalid_json", _json_message(exc, text)))
    half = lone_surrogate(obj, text)
    if half is not None:
        return RawItem(index, lineno, error=half)
    return RawItem(index, lineno, obj=obj)


def _json_message(exc: Exception, text: str) -> str:
    if isinstance(exc, json.JSONDecodeError):
        if exc.pos >= len(text.rstrip()):
            return f"invalid JSON: the text ends early ({exc.msg}, column {exc.colno})"
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    return value_error_message(exc)


# -- JSON arrays: streamed by jsonarray.iter_json_array (imported above) ----------------------

_SURROGATE = re.compile("[\udc80-\udcff]")


# -- CSV --------------------------------------------------------------------------------------

def iter_csv(path: str, delimiter: Optional[str] = None) -> Iterator[RawItem]:
    """Yield one dict per data row; ``line`` is the physical line where the row starts
    (quoted fields may span lines). Rows with bytes that are not UTF-8 are reported, and so
    is a last row whose quoted field the file ends inside (``unterminated_field``: a cut-off
    file, or a missing closing quote)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith((".tsv", ".tab")) else ","
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        lines = _Lines(f)
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError("empty_file", f"{path}: the CSV file has no header row") from None
        except csv.Error as exc:
            raise DatasetError("invalid_csv", f"{path}: cannot read the CSV header ({exc})") from None
        if lines.done and _ends_inside_quotes("".join(lines.taken), delimiter):
            raise DatasetError("invalid_csv", f"{path}: the header row has a quoted field that is never closed")
        header = [h.strip() for h in header]
        if not any(header):
            raise DatasetError("invalid_csv", f"{path}: the first row (the header) is empty")
        index = 0
        start = reader.line_num + 1
        while True:
            lines.taken = []
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
            if lines.done and _ends_inside_quotes("".join(lines.taken), delimiter):
                yield RawItem(index, start, error=(
                    "unterminated_field", "the file ends inside a quoted field of this row (no closing "
                    "quote): the file was cut off, or a quote is missing"))
            elif any(_SURROGATE.search(c) for c in row):
                yield RawItem(index, start, error=("invalid_utf8", "the row contains bytes that are not valid UTF-8"))
            elif len(row) != len(header):
                yield RawItem(index, start, error=(
                    "wrong_type", f"row has {len(row)} fields but the header has {len(header)}"))
            else:
                yield RawItem(index, start, obj=dict(zip(header, row)))
            index += 1
            start = reader.line_num + 1


class _Lines:
    """The lines of a text file, keeping those of the row being read (``taken``) and telling
    when the file has run out (``done``), to check the last row for an open quote."""

    __slots__ = ("_it", "taken", "done")

    def __init__(self, f) -> None:
        self._it = iter(f)
        self.taken: list[str] = []
        self.done = False

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        try:
            line = next(self._it)
        except StopIteration:
            self.done = True
            raise
        self.taken.append(line)
        return line


def _ends_inside_quotes(raw: str, delimiter: str) -> bool:
    """Whether the text of a CSV row ends inside a quoted field, read as Python's csv module
    reads it (a quote opens a quoted field only at the start of a field; ``""`` inside one is
    a quote; text after a closing quote is kept up to the next delimiter)."""
    i, n = 0, len(raw)
    field_end = re.compile("[" + re.escape(delimiter) + "\r\n]")
    field_start = True
    while i < n:
        if field_start and raw[i] == '"':
            j = i + 1
            while True:
                k = raw.find('"', j)
                if k < 0:
                    return True
                if k + 1 < n and raw[k + 1] == '"':
                    j = k + 2
                    continue
                i = k + 1
                break
            field_start = False
            continue
        m = field_end.search(raw, i)
        if m is None:
            return False
        i = m.end()
        field_start = True
    return False


def csv_columns(path: str, delimiter: Optional[str] = None) -> list[str]:
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith((".tsv", ".tab")) else ","
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        for row in csv.reader(f, delimiter=delimiter):
            return [h.strip() for h in row]
    return []


# -- Parquet ------------------------------------------------------------------------------------

def iter_parquet(path: str, batch_size: int = 8192) -> Iterator[RawItem]:
    """Yield one item per row (``line`` None). A file whose footer can't be read is an
    ``invalid_parquet`` DatasetError. A row group that can't be read (a damaged page) makes
    each of its rows not read so far an ``invalid_parquet`` item; a row whose text is not
    UTF-8 is an ``invalid_utf8`` item; the other rows load."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        groups = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
    except Exception as exc:  # pyarrow raises several types for broken files
        raise DatasetError("invalid_parquet", f"{path}: not a readable Parquet file ({_parquet_reason(exc)})") from None
    index = 0
    for g, n_rows in enumerate(groups):
        first = index
        try:
            for batch in pf.iter_batches(batch_size=batch_size, row_groups=[g]):
                try:
                    rows = batch.to_pylist()
                except Exception:  # e.g. a string that is not UTF-8: find the rows, one by one
                    rows = None
                if rows is not None:
                    for row in rows:
                        yield RawItem(index, None, obj=row)
                        index += 1
                    continue
                for i in range(batch.num_rows):
                    yield _parquet_row(batch, i, index)
                    index += 1
        except Exception as exc:  # a damaged page: OSError, ArrowInvalid...
            reason = _parquet_reason(exc)
            last = first + max(n_rows, index - first)
            for i in range(index, last):
                yield RawItem(i, None, error=("invalid_parquet", f"row group {g} (rows {first}-{last - 1}) "
                                              f"cannot be read: {reason}"))
            index = last


def _parquet_row(batch, i: int, index: int) -> RawItem:
    try:
        return RawItem(index, None, obj=batch.slice(i, 1).to_pylist()[0])
    except UnicodeDecodeError:
        return RawItem(index, None, error=("invalid_utf8", "the row contains text that is not valid UTF-8"))
    except Exception as exc:
        return RawItem(index, None, error=("invalid_parquet", f"the row cannot be read: {_parquet_reason(exc)}"))


def _parquet_reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def parquet_columns(path: str) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except Exception as exc:
        raise DatasetError("invalid_parquet", f"{path}: not a readable Parquet file ({_parquet_reason(exc)})") from None
