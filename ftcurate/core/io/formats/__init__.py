"""Reading and writing every supported dataset format.

``DatasetReader(path, fmt="auto")`` detects the container (JSON Lines, JSON array, CSV,
Parquet) and the record schema, then streams :class:`Parsed` items, one per record in
the file: loaded + rejected = records in the file, always.
``write_records(records, path, fmt)`` writes atomically.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

from ..fileio import atomic_path, atomic_text
from ...project.records import Record, Source
from . import alpaca, detect, openai_chat, prompt_completion, rawio, sharegpt, tabular
from .base import (ERROR_KEYS, FORMAT_CHOICES, FORMATS, DatasetError, NotRepresentable, Parsed,
                   RawItem, RecordError)

__all__ = ["DatasetReader", "DatasetError", "NotRepresentable", "Parsed", "RecordError", "FORMATS",
           "FORMAT_CHOICES", "ERROR_KEYS", "write_records", "WriteResult", "dump_record",
           "parse_mapping"]

SCHEMAS = {m.NAME: m for m in (openai_chat, prompt_completion, alpaca, sharegpt)}


# Kept under their old names for the modules that use them.
_container_for = detect.container_for
_schema_from_keys = detect.schema_from_keys


def _schema_from_mapping(mapping: Optional[dict]) -> Optional[str]:
    """The JSON schema a user-given mapping implies, if it implies one."""
    if not mapping:
        return None
    keys = {k for k, v in mapping.items() if v}
    if "messages" in keys:
        return "openai-chat"
    if "conversations" in keys:
        return "sharegpt"
    if keys & {"instruction", "input", "output"}:
        return "alpaca"
    if keys & {"prompt", "completion"}:
        return "prompt-completion"
    return None


def parse_mapping(pairs: Iterable[str]) -> dict:
    """Turn ``["prompt=question", "completion=answer"]`` into a mapping dict."""
    mapping = {}
    for pair in pairs:
        key, sep, col = pair.partition("=")
        key = key.strip()
        if not sep or key not in tabular.MAPPING_KEYS:
            raise DatasetError("bad_mapping", f"bad column mapping {pair!r}: use KEY=COLUMN with KEY one of "
                               + ", ".join(tabular.MAPPING_KEYS))
        mapping[key] = col.strip()
    return mapping


@dataclass
class DatasetReader:
    """Detects a file's format on construction; iterating yields one Parsed per record."""

    path: str
    fmt: str = "auto"
    mapping: Optional[dict] = None
    split: str = "train"
    container: str = field(init=False, default="")
    format: str = field(init=False, default="")
    columns: list = field(init=False, default_factory=list)
    # Records per schema among those detection read ({} when the format was given): more
    # than one entry means a file of mixed formats, read as the one most records have.
    format_votes: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.path = os.fspath(self.path)
        if self.fmt not in FORMAT_CHOICES:
            raise DatasetError("bad_format", f"unknown format {self.fmt!r}; use one of " + ", ".join(FORMAT_CHOICES))
        head = rawio.sniff(self.path)
        self.container = detect.container_for(self.path, head, self.fmt)
        if self.container in ("csv", "parquet"):
            self.format = self.container
            self.columns = (rawio.csv_columns(self.path) if self.container == "csv"
                            else rawio.parquet_columns(self.path))
            if self.mapping is None:
                self.mapping = tabular.default_mapping(self.columns)
                if self.mapping is None:
                    raise DatasetError("no_mapping", f"{self.path}: " + tabular.describe_mapping_problem(self.columns))
            missing = [c for c in self.mapping.values() if c and c not in self.columns]
            if missing:
                raise DatasetError("bad_mapping", f"{self.path}: mapped column(s) not in the file: "
                                   + ", ".join(map(repr, missing)))
            return
        if self.fmt in SCHEMAS:
            self.format = self.fmt
            return
        if self.fmt in ("csv", "parquet"):  # forced tabular handled above
            return
        by_mapping = _schema_from_mapping(self.mapping)
        if by_mapping is not None:  # --map names the keys: that decides the schema
            self.format = by_mapping
            return
        votes = detect.vote(self.path, self.container, self._raw())
        self.format_votes = dict(votes.votes)
        name, mapping = votes.winner()
        if name is None:
            if not votes.decoded:
                where = ""
                first_error = votes.first_error
                if first_error is not None:
                    pos = (f"line {first_error.line}" if first_error.line is not None
                           else f"record {first_error.index}")
                    where = f" ({pos}: {first_error.error[1]})"
                raise DatasetError("no_records", f"{self.path}: no record could be read{where}; "
                                   "is this JSON Lines, a JSON array, CSV or Parquet?")
            if not votes.objects:
                raise DatasetError("unknown_format", f"{self.path}: the records are not JSON objects; "
                                   "expected one object per line (or per array element)")
            keys = sorted(votes.keys, key=str)[:12]
            raise DatasetError("unknown_format", f"{self.path}: cannot tell the format from the keys "
                               + ", ".join(map(repr, keys)) + "; choose one with --format (and --map)")
        self.format = name
        if self.mapping is None:
            self.mapping = mapping

    # -- iteration ---------------------------------------------------------------------
    def _raw(self) -> Iterator[RawItem]:
        if self.container == "jsonl":
            return rawio.iter_jsonl(self.path)
        if self.container == "json":
            return rawio.iter_json_array(self.path)
        if self.container == "csv":
            return rawio.iter_csv(self.path)
        return rawio.iter_parquet(self.path)

    def _parse(self, obj: Any) -> tuple[Optional[Record], list]:
        if self.container in ("csv", "parquet"):
            return tabular.parse(obj, self.mapping)
        return SCHEMAS[self.format].parse(obj, self.mapping)

    def __iter__(self) -> Iterator[Parsed]:
        for item in self._raw():
            if item.error is not None:
                key, msg = item.error
                yield Parsed(item.index, item.line, errors=[RecordError(item.index, item.line, key, msg)])
                continue
            try:
                record, problems = self._parse(item.obj)
            except RecursionError:
                record, problems = None, [("data_type", "record is nested too deeply")]
            if problems:
                yield Parsed(item.index, item.line,
                             errors=[RecordError(item.index, item.line, k, m) for k, m in problems])
                continue
            record.source = Source(self.path, item.line, item.index)
            record.split = self.split
            yield Parsed(item.index, item.line, record=record)

    def preview(self, n: int = 20) -> list[Parsed]:
        out = []
        for p in self:
            out.append(p)
            if len(out) >= n:
                break
        return out

    def raw_text(self, index: int) -> str:
        """The raw text of record ``index`` (a JSONL line, or the decoded element), for display."""
        if self.container == "jsonl":
            i = 0
            with open(self.path, "rb") as f:
                for raw in f:
                    if raw.strip():
                        if i == index:
                            return raw.decode("utf-8", errors="replace").rstrip("\r\n")
                        i += 1
            return ""
        for item in self._raw():
            if item.index == index:
                return json.dumps(item.obj, ensure_ascii=False, indent=2) if item.error is None else item.error[1]
        return ""


# -- writing ----------------------------------------------------------------------------------

def dump_record(record: Record, fmt: str) -> Any:
    """The record as the object (or row) that format stores. Raises NotRepresentable."""
    if fmt in SCHEMAS:
        return SCHEMAS[fmt].dump(record)
    if fmt in ("csv", "parquet"):
        return tabular.dump_row(record)
    raise DatasetError("bad_format", f"cannot write format {fmt!r}; use one of " + ", ".join(FORMATS))


@dataclass
class WriteResult:
    path: str
    written: int = 0
    skipped: list = field(default_factory=list)  # (position, reason)


def write_records(records: Iterable[Record], path: str, fmt: str,
                  progress: Optional[Callable] = None, cancel: Optional[Callable] = None,
                  array: Optional[bool] = None) -> WriteResult:
    """Write records atomically (temp file in the same folder, then rename).

    JSON formats write JSON Lines, or a JSON array when ``array`` is true (default: when
    the path ends in ``.json``). Records the format can't hold are skipped and listed."""
    from ...progress import Reporter

    rep = Reporter(progress, cancel, every=2000)
    path = os.fspath(path)
    if array is None:
        array = path.lower().endswith(".json")
    result = WriteResult(path)
    if fmt == "parquet":
        with atomic_path(path) as tmp:
            _write_parquet(records, tmp, result, rep)
        return result
    with atomic_text(path) as f:
        if fmt == "csv":
            _write_csv(records, f, result, rep)
        else:
            _write_json(records, f, fmt, array, result, rep)
    return result


def _rows(records: Iterable[Record], fmt: str, result: WriteResult, rep) -> Iterator[Any]:
    for pos, rec in enumerate(records):
        rep.tick(pos, "writing")
        try:
            row = dump_record(rec, fmt)
        except NotRepresentable as exc:
            result.skipped.append((pos, str(exc)))
            continue
        result.written += 1
        yield row


def _write_json(records, f, fmt, array, result, rep) -> None:
    if array:
        f.write("[\n")
        first = True
        for obj in _rows(records, fmt, result, rep):
            f.write(("" if first else ",\n") + "  " + json.dumps(obj, ensure_ascii=False))
            first = False
        f.write("\n]\n")
    else:
        for obj in _rows(records, fmt, result, rep):
            f.write(json.dumps(obj, ensure_ascii=False))
            f.write("\n")


def _write_csv(records, f, result, rep) -> None:
    writer = csv.DictWriter(f, fieldnames=list(tabular.ROW_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in _rows(records, "csv", result, rep):
        writer.writerow(row)


def _write_parquet(records, tmp, result, rep, chunk: int = 10000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.string()) for c in tabular.ROW_COLUMNS])
    with pq.ParquetWriter(tmp, schema) as writer:
        buf: list[dict] = []
        for row in _rows(records, "parquet", result, rep):
            buf.append({k: (v if v != "" else None) for k, v in row.items()})
            if len(buf) >= chunk:
                writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                buf = []
        if buf or result.written == 0:
            writer.write_table(pa.Table.from_pylist(buf, schema=schema))


