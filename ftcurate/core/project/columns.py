"""Records as a column store: each record's canonical content JSON in one UTF-8 buffer.

A million short chat records take about 0.8 GB as :class:`~.records.Record` objects (a record,
its message list, two messages, their strings, a source, a metadata dict) and about 150 MB
here: one ``bytearray`` of content JSON and an ``array`` of end offsets, plus the key each
record has in a report (a file position or a project record id).

The scan (:func:`~ftcurate.core.quality.scan.scan_records`) reads what it needs a pass at a
time: :meth:`RecordColumns.contents` hands the content JSON itself to the heuristics (it is
their cache key and what their worker processes get), :meth:`RecordColumns.columns` parses each
record once per pass and gives one list per field asked for (e.g. all texts and all answers for
the near-duplicate stage). Indexing and iterating give :class:`Record` objects made on the fly
(content only: source, split and metadata are not kept; the scan does not read them).
"""

from __future__ import annotations

from array import array
from typing import Callable, Iterable, Iterator, Sequence

from .records import Record

try:
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency
    import json

    def _loads(data):
        return json.loads(bytes(data))


class RecordColumns(Sequence[Record]):
    """Records (content only) and their report keys, appended one at a time."""

    def __init__(self, items: Iterable[tuple[int, Record]] = ()) -> None:
        self._buf = bytearray()
        self._ends = array("q")
        self.keys = array("q")
        for key, record in items:
            self.append(key, record)

    @classmethod
    def of(cls, records: Iterable[Record]) -> "RecordColumns":
        """Records keyed by their position (0, 1, ...)."""
        return cls(enumerate(records))

    def append(self, key: int, record: Record) -> None:
        self._buf += record.content_json().encode("utf-8")
        self._ends.append(len(self._buf))
        self.keys.append(int(key))

    def __len__(self) -> int:
        return len(self._ends)

    def _span(self, i: int) -> memoryview:
        start = self._ends[i - 1] if i > 0 else 0
        return memoryview(self._buf)[start:self._ends[i]]

    def content_json(self, i: int) -> str:
        """Record ``i``'s canonical content JSON (:meth:`Record.content_json`)."""
        return str(self._span(self._index(i)), "utf-8")

    def contents(self) -> Sequence[str]:
        """The content JSON of every record as a sequence (slices give lists of strings)."""
        return contents_of(self)

    def _index(self, i: int) -> int:
        n = len(self._ends)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("record index out of range")
        return i

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._record(k) for k in range(*i.indices(len(self)))]
        return self._record(self._index(i))

    def _record(self, i: int) -> Record:
        return Record.from_content(_loads(self._span(i)))

    def __iter__(self) -> Iterator[Record]:
        for i in range(len(self)):
            yield self._record(i)

    def columns(self, *fields: Callable[[Record], object]) -> tuple[list, ...]:
        """One list per function in ``fields``: ``[f(record) for record in self]``, with every
        record parsed once for all of them."""
        out: tuple[list, ...] = tuple([] for _ in fields)
        for record in self:
            for col, f in zip(out, fields):
                col.append(f(record))
        return out

    def nbytes(self) -> int:
        """Bytes held (buffer, offsets, keys)."""
        return len(self._buf) + self._ends.itemsize * len(self._ends) + self.keys.itemsize * len(self.keys)


class _Contents(Sequence[str]):
    """The records' canonical content JSON, made when it is asked for: read from a column
    store, or serialised from :class:`Record` objects."""

    def __init__(self, recs: Sequence[Record]) -> None:
        self._n = len(recs)
        self._one = recs.content_json if isinstance(recs, RecordColumns) else (lambda k: recs[k].content_json())

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._one(k) for k in range(*i.indices(self._n))]
        return self._one(i)


def contents_of(recs: Sequence[Record]) -> Sequence[str]:
    """The canonical content JSON of ``recs`` (a :class:`RecordColumns` or a sequence of
    records) as a lazy sequence: a slice makes only its strings (a million held at once would
    be 200 MB)."""
    return _Contents(recs)


def columns_of(recs: Sequence[Record], *fields: Callable[[Record], object]) -> tuple[list, ...]:
    """:meth:`RecordColumns.columns` for any sequence of records (one pass)."""
    if isinstance(recs, RecordColumns):
        return recs.columns(*fields)
    return tuple([f(r) for r in recs] for f in fields)


__all__ = ["RecordColumns", "columns_of", "contents_of"]
