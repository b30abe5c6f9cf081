"""A byte-offset index of a JSON Lines file, to show a big file at once without loading it.

:meth:`LineIndex.build` finds every line ending with numpy over the file, mapped 64 MB at a
time (each window is unmapped before the next, so memory stays flat: ~16 bytes per record
plus one window), and keeps the start and end offset of each non-blank line. Any record can
then be read back with one ``pread`` and parsed on demand; :meth:`LineIndex.summary` gives
what a table row shows (first user turn, message count, answer length) for the four JSON
record shapes (openai-chat, sharegpt, prompt/completion, alpaca).

Record numbering follows :func:`ftcurate.core.io.formats.rawio.iter_jsonl`: record ``i`` is the
``i``-th non-blank line (0-based), ``line_number(i)`` its 1-based physical line (LF-separated;
a CRLF ending is one line ending, a UTF-8 BOM at the start of the file is skipped), so the
numbers match what an import of the same file stores.

Only JSON Lines can be indexed this way (:meth:`LineIndex.supports`); JSON arrays, CSV and
Parquet go through the full import.
"""

from __future__ import annotations

import mmap
import os
import threading
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .formats import SCHEMAS, DatasetError, DatasetReader, _container_for, _schema_from_keys
from .formats import prompt_completion, rawio, sharegpt
from ..progress import CancelCheck, Cancelled, ProgressCallback

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    _orjson = None

__all__ = ["LineIndex", "RowSummary", "FIRST_USER_CHARS"]

CHUNK_BYTES = 64 * 1024 * 1024  # a multiple of mmap.ALLOCATIONGRANULARITY on every platform
SCAN_BYTES = 8 * 1024 * 1024  # bytes compared at once inside a window
FIRST_USER_CHARS = 240
_WS_BYTES = np.array([9, 10, 11, 12, 13, 32], dtype=np.uint8)  # what bytes.strip() removes
_NOT_JSON = object()


@dataclass(slots=True)
class RowSummary:
    """What a table row shows for one record of the file (a few hundred bytes)."""

    line: int  # 1-based physical line
    first_user: str  # first user turn, whitespace collapsed, at most FIRST_USER_CHARS
    n_messages: int
    chars: int  # characters in the assistant turns (the "Answer chars" column)
    error: Optional[str] = None  # error key (see formats.ERROR_KEYS) when the record is not importable
    message: str = ""  # the error message, for a tooltip
    size: int = 0  # characters of the record as the store keeps it (canonical JSON); else of the line

    @property
    def ok(self) -> bool:
        return self.error is None


def _collapse(text: str, limit: int = FIRST_USER_CHARS) -> str:
    out = " ".join(text.split())
    if len(out) > limit:
        out = out[: limit - 1] + "…"
    return out


class LineIndex:
    """Offsets of the non-blank lines of a JSONL file. Build with :meth:`build`.

    Reading is thread-safe (``os.pread`` on a file kept open); :meth:`close` releases the
    file. The index assumes the file does not change; :meth:`is_stale` tells when it did.
    """

    def __init__(self, path: str, starts: np.ndarray, ends: np.ndarray, lines: Optional[np.ndarray],
                 size: int, mtime_ns: int, fmt: Optional[str] = None, mapping: Optional[dict] = None) -> None:
        self.path = path
        self.starts = starts  # int64 byte offset of each record's first byte
        self.ends = ends  # int64 offset just past its last byte (line ending excluded)
        self._lines = lines  # int64 1-based physical line numbers; None when no line was skipped
        self.size = size
        self.mtime_ns = mtime_ns
        self._fmt = fmt
        self._mapping = mapping
        self._detected = fmt is not None
        self._lock = threading.Lock()
        self._file = open(path, "rb") if len(starts) else None

    # -- building ----------------------------------------------------------------------------
    @staticmethod
    def supports(path: str | os.PathLike) -> bool:
        """True for a readable JSON Lines file (what :meth:`build` can index); False for JSON
        arrays, CSV, Parquet and files that cannot be read at all (the import reports why)."""
        path = os.fspath(path)
        try:
            head = rawio.sniff(path)
        except DatasetError:
            return False
        return _container_for(path, head, "auto") == "jsonl"

    @classmethod
    def build(cls, path: str | os.PathLike, progress: Optional[ProgressCallback] = None,
              cancel: Optional[CancelCheck] = None, fmt: Optional[str] = None,
              mapping: Optional[dict] = None, chunk_bytes: int = CHUNK_BYTES) -> "LineIndex":
        """Index ``path``. ``fmt`` / ``mapping``: the record schema when known (else it is
        detected from the first records when a summary is first asked for).
        ``progress(done_bytes, total_bytes, message)``; ``cancel()`` raises Cancelled."""
        path = os.fspath(path)
        gran = mmap.ALLOCATIONGRANULARITY
        chunk_bytes = max(gran, chunk_bytes // gran * gran)
        name = os.path.basename(path)
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            size = st.st_size
            newlines: list[np.ndarray] = []
            crs: list[np.ndarray] = []  # per newline: is the byte before it a CR?
            heads: list[np.ndarray] = []  # per newline: the byte after it (first byte of the next line)
            prev_last = -1  # last byte of the previous window
            mask = np.empty(min(size, SCAN_BYTES), dtype=bool)  # reused: memory stays flat
            pos = 0
            while pos < size:
                if cancel is not None and cancel():
                    raise Cancelled("cancelled")
                length = min(chunk_bytes, size - pos)
                mm = mmap.mmap(f.fileno(), length, access=mmap.ACCESS_READ, offset=pos)
                try:
                    if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                        mm.madvise(mmap.MADV_SEQUENTIAL)
                    buf = np.frombuffer(mm, dtype=np.uint8)
                    nl = _newlines(buf, mask)
                    before = np.zeros(len(nl), dtype=bool)
                    after = np.zeros(len(nl), dtype=np.uint8)
                    if len(nl):
                        before[1:] = buf[nl[1:] - 1] == 13
                        before[0] = (buf[nl[0] - 1] if nl[0] > 0 else prev_last) == 13
                        after[:-1] = buf[nl[:-1] + 1]
                        if nl[-1] + 1 < length:
                            after[-1] = buf[nl[-1] + 1]
                        # else: the next window's first byte, filled in below
                    if heads and len(heads[-1]) and newlines[-1][-1] == pos - 1:
                        heads[-1][-1] = buf[0]
                    prev_last = int(buf[-1])
                    del buf
                finally:
                    mm.close()
                newlines.append(nl + pos if pos else nl)
                crs.append(before)
                heads.append(after)
                pos += length
                if progress is not None:
                    progress(pos, size, f"Indexing {name}")
        last_byte = prev_last
        nl = np.concatenate(newlines).astype(np.int64, copy=False) if newlines else np.empty(0, np.int64)
        cr = np.concatenate(crs) if crs else np.empty(0, dtype=bool)
        head = np.concatenate(heads) if heads else np.empty(0, dtype=np.uint8)
        del newlines, crs, heads
        # Physical line k (0-based) runs from starts[k] to ends[k] (exclusive, ending removed).
        n_lines = len(nl) + (1 if size and last_byte != 10 else 0)  # the last line may lack a newline
        starts = np.empty(n_lines, dtype=np.int64)
        ends = np.empty(n_lines, dtype=np.int64)
        firsts = np.empty(n_lines, dtype=np.uint8)  # first byte of each line (line 0: checked below)
        if n_lines:
            starts[0] = 0
            starts[1:] = nl[: n_lines - 1] + 1
            ends[: len(nl)] = nl - cr
            if n_lines > len(nl):
                ends[-1] = size - (1 if last_byte == 13 else 0)
            firsts[0] = 32
            firsts[1:] = head[: n_lines - 1]
        del nl, cr, head
        keep = ends > starts
        # Blank lines are empty or whitespace only: only lines that start with whitespace (and
        # line 0, which may start with a BOM) need a look.
        suspects = np.flatnonzero(keep & np.isin(firsts, _WS_BYTES))
        del firsts
        if len(suspects):
            with open(path, "rb") as f:
                for k in suspects.tolist():
                    f.seek(int(starts[k]))
                    length = int(ends[k] - starts[k])
                    text = f.read(min(length, 4096))
                    if k == 0 and text.startswith(rawio.BOM):
                        starts[0] += len(rawio.BOM)
                        text = text[len(rawio.BOM):]
                    if not text.strip() and (length <= 4096 or not f.read(length - 4096).strip()):
                        keep[k] = False
        if keep.all():
            lines = None
        else:
            lines = np.flatnonzero(keep).astype(np.int64) + 1
            starts, ends = starts[keep], ends[keep]
        return cls(path, np.ascontiguousarray(starts), np.ascontiguousarray(ends), lines, size,
                   st.st_mtime_ns, fmt, mapping)

    # -- access --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.starts)

    def __enter__(self) -> "LineIndex":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            f.close()

    def __del__(self) -> None:  # pragma: no cover - safety net
        try:
            self.close()
        except Exception:
            pass

    @property
    def nbytes(self) -> int:
        """Memory held by the index arrays."""
        return self.starts.nbytes + self.ends.nbytes + (0 if self._lines is None else self._lines.nbytes)

    def is_stale(self) -> bool:
        """True when the file changed (size or modification time) since the index was built."""
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return st.st_size != self.size or st.st_mtime_ns != self.mtime_ns

    def _check(self, i: int) -> int:
        n = len(self.starts)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"record {i} out of range (0..{n - 1})")
        return i

    def line_number(self, i: int) -> int:
        """1-based physical line of record ``i``."""
        i = self._check(i)
        return int(self._lines[i]) if self._lines is not None else i + 1

    def line_length(self, i: int) -> int:
        i = self._check(i)
        return int(self.ends[i] - self.starts[i])

    def line_bytes(self, i: int) -> bytes:
        """The raw bytes of record ``i`` (without the line ending)."""
        i = self._check(i)
        start, n = int(self.starts[i]), int(self.ends[i] - self.starts[i])
        f = self._file
        if f is None:
            raise ValueError("the index is closed")
        if hasattr(os, "pread"):
            data = os.pread(f.fileno(), n, start)
        else:  # pragma: no cover - Windows
            with self._lock:
                f.seek(start)
                data = f.read(n)
        return data

    def _load(self, i: int) -> tuple[Any, Optional[tuple[str, str]]]:
        """(object, None) or (_NOT_JSON, (error key, message))."""
        n = self.line_length(i)
        if n > rawio.MAX_LINE_BYTES:
            return _NOT_JSON, ("line_too_long", f"line is {n / 1e6:.0f} MB, over the "
                               f"{rawio.MAX_LINE_BYTES // 1_000_000} MB limit")
        raw = self.line_bytes(i)
        if _orjson is not None:
            try:
                return _orjson.loads(raw), None
            except _orjson.JSONDecodeError:
                pass
        # The slow path decides the error exactly as an import would.
        item = rawio._decode_line(raw.strip(), i, self.line_number(i))
        if item.error is not None:
            return _NOT_JSON, item.error
        return item.obj, None

    def parse(self, i: int) -> Optional[Any]:
        """The JSON value of record ``i``, or None when the line is not valid JSON."""
        obj, err = self._load(i)
        return None if err is not None else obj

    # -- summaries ---------------------------------------------------------------------------------
    @property
    def format(self) -> Optional[str]:
        """The record schema (openai-chat, sharegpt, prompt-completion, alpaca), detected from
        the first records as an import would; None when it cannot be told (then each record's
        own keys decide its summary)."""
        if not self._detected:
            self._detected = True
            try:
                reader = DatasetReader(self.path)
            except DatasetError:
                reader = None
            if reader is not None and reader.container == "jsonl" and reader.format in SCHEMAS:
                self._fmt, self._mapping = reader.format, reader.mapping
        return self._fmt

    def summary(self, i: int) -> RowSummary:
        """Row summary of record ``i``; ``error`` holds the key of the first problem an import
        would report for it (the other fields are then filled as far as they can be read)."""
        i = self._check(i)
        line = self.line_number(i)
        obj, err = self._load(i)
        if err is not None:
            return RowSummary(line, "", 0, 0, err[0], err[1], size=self.line_length(i))
        out = summarize_object(obj, self.format, self._mapping, line)
        if not out.size:
            out.size = self.line_length(i)
        return out


def summarize_object(obj: Any, fmt: Optional[str] = None, mapping: Optional[dict] = None,
                     line: int = 0) -> RowSummary:
    """Row summary of one decoded record of schema ``fmt`` (None: told from its keys)."""
    if fmt not in SCHEMAS:
        fmt, guessed = _schema_from_keys([obj])
        mapping = mapping or guessed
        if fmt is None:
            if not isinstance(obj, dict):
                return RowSummary(line, "", 0, 0, "data_type", "record is not a JSON object")
            return RowSummary(line, "", 0, 0, "missing_key",
                              "no known record keys (messages, conversations, prompt/completion, "
                              "instruction/output)")
    try:
        record, problems = SCHEMAS[fmt].parse(obj, mapping)
    except RecursionError:
        record, problems = None, [("data_type", "record is nested too deeply")]
    if record is not None and not problems:
        return RowSummary(line, _collapse(record.first_user), len(record.messages), len(record.answer_text),
                          size=len(record.content_json()))
    key, message = problems[0] if problems else ("data_type", "record could not be read")
    first, n, chars = _loose(obj, fmt, mapping)
    return RowSummary(line, first, n, chars, key, message)


def _loose(obj: Any, fmt: str, mapping: Optional[dict]) -> tuple[str, int, int]:
    """(first user turn, messages, answer chars) read leniently from a record that failed
    its format checks, so the row still shows what it is."""
    if not isinstance(obj, dict):
        return "", 0, 0
    turns: list[tuple[Optional[str], Any]] = []
    if fmt == "openai-chat" or (fmt != "sharegpt" and isinstance(obj.get("messages"), list)):
        for m in obj.get("messages") if isinstance(obj.get("messages"), list) else ():
            if isinstance(m, dict):
                turns.append((m.get("role"), m.get("content")))
    elif fmt == "sharegpt":
        ck = (mapping or {}).get("conversations") or "conversations"
        conv = obj.get(ck)
        for m in conv if isinstance(conv, list) else ():
            if isinstance(m, dict):
                role = m.get("from")
                turns.append((sharegpt.ROLE_MAP.get(role) if isinstance(role, str) else None, m.get("value")))
    elif fmt == "alpaca":
        m = {"instruction": "instruction", "input": "input", "output": "output"}
        m.update({k: v for k, v in (mapping or {}).items() if v})
        user = obj.get(m["instruction"])
        inp = obj.get(m["input"])
        if isinstance(user, str) and isinstance(inp, str) and inp:
            user = user + "\n\n" + inp
        turns = [("user", user), ("assistant", obj.get(m["output"]))]
    else:
        m = mapping or prompt_completion.default_mapping(obj.keys()) or {"prompt": "prompt",
                                                                          "completion": "completion"}
        turns = [("user", obj.get(m.get("prompt") or "prompt")),
                 ("assistant", obj.get(m.get("completion") or "completion"))]
    first = next((c for r, c in turns if r == "user" and isinstance(c, str)), "")
    chars = sum(len(c) + 1 for r, c in turns if r == "assistant" and isinstance(c, str))
    n = sum(1 for r, c in turns if r is not None or c is not None)
    return _collapse(first), n, max(0, chars - 1)


def _newlines(buf: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Positions of the LF bytes in ``buf``, comparing ``len(mask)`` bytes at a time."""
    step = len(mask)
    if len(buf) <= step:
        return np.flatnonzero(np.equal(buf, 10, out=mask[: len(buf)]))
    parts = []
    for s in range(0, len(buf), step):
        part = buf[s: s + step]
        hits = np.flatnonzero(np.equal(part, 10, out=mask[: len(part)]))
        parts.append(hits + s if s else hits)
    return np.concatenate(parts)
