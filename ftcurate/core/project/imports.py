"""Sources of a project and the storing of their records (a mixin of :class:`Project`).

An import stores its records in batches, each committed, so that a huge file need not sit
in one transaction; the source is marked ``importing`` until its last batch and its error
summary are committed together with the mark ``complete``. The first batch holds ``batch``
records (5,000), each later one as many as are stored already (up to :data:`TX_ROWS`): the
index of content hashes takes random keys, and each commit rewrites the pages it touched,
so fewer, growing commits keep a 1M-record import's writes near linear. Batches are
committed without waiting for the disk (``synchronous=NORMAL``) and the end of the import
with it (see :class:`_BulkWrites`). So:

* a killed import leaves a source marked incomplete (``sources()[i]["complete"]`` False),
  which ``stats`` shows and ``decide`` does not pick by default; importing the same file
  again resumes it (records already stored are skipped, decisions on them kept);
* an import that fails cleanly (cancelled, unreadable file, full disk) removes what it
  added; if even that cannot be written (a full disk), the source stays marked incomplete;
* a file that fits in one batch is one transaction: all or nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Any, Callable, Iterable, Iterator, Optional

from ..progress import CancelCheck, ProgressCallback, Reporter
from .errors import ProjectError, explain
from .records import SPLITS, Record, canonical_json, sha256_text
from .rows import jdump

SOURCE_ROLES = ("train", "test")
SOURCE_STATES = ("importing", "complete")

_SOURCE_COLS = ("id", "path", "format", "role", "sha256", "total", "imported_at", "state", "options",
                "error_counts", "errors_left_out", "records", "errors_kept")


def _json_or(text: Any, default: Any, kind: type) -> Any:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return default
    return value if isinstance(value, kind) else default


def _insert_errors(conn: sqlite3.Connection, source_id: int, errors: Iterable[dict]) -> None:
    conn.executemany(
        "INSERT INTO import_errors(source_id, line, idx, key, message) VALUES (?, ?, ?, ?, ?)",
        ((source_id, e.get("line"), e.get("index"), e.get("key"), str(e.get("message", ""))) for e in errors),
    )


def row_values(rec: Record) -> tuple[str, str, str]:
    """What the store keeps of a record's content: ``(content JSON, its sha256, metadata JSON)``."""
    content = rec.content_json()
    return content, sha256_text(content), canonical_json(rec.metadata) if rec.metadata else "{}"


#: rows stored before the first commit of an import (the next ones hold as many as are stored, up to TX_ROWS)
BATCH_ROWS = 5000
#: rows handed to SQLite at a time (one ``executemany``): what an import holds in memory
FLUSH_ROWS = 10_000
#: most rows in one transaction of an import
TX_ROWS = 500_000


class _BulkWrites:
    """Connection settings while an import stores its rows: a commit is not flushed to disk
    (``synchronous=NORMAL``: a killed process loses nothing; a power cut may lose the last
    commits, which leaves the import incomplete, as a kill does) and a larger page cache for
    the indexes. :meth:`end` restores them; given the source, it first commits a small write
    with the project's own setting (``FULL``), whose flush of the log makes every commit
    before it durable too."""

    CACHE_KIB = 64 * 1024

    def __init__(self, project: Any) -> None:
        self.project = project
        self.saved: Optional[tuple] = None

    def _set(self, sync: int, cache: int) -> None:
        with self.project._mutex:
            db = self.project._db
            db.execute(f"PRAGMA synchronous={int(sync)}")
            db.execute(f"PRAGMA cache_size={int(cache)}")

    def start(self) -> None:
        with self.project._mutex:
            db = self.project._db
            self.saved = (int(db.execute("PRAGMA synchronous").fetchone()[0]),
                          int(db.execute("PRAGMA cache_size").fetchone()[0]))
        self._set(min(self.saved[0], 1), -self.CACHE_KIB)  # 1: NORMAL (0, OFF, stays OFF)

    def end(self, source_id: Optional[int] = None) -> None:
        if self.saved is None:
            return
        sync, cache = self.saved
        self.saved = None
        try:
            self._set(sync, cache)
        except (sqlite3.Error, ProjectError):
            return
        if source_id is None or sync < 2:
            return
        try:
            with self.project._tx() as conn:
                conn.execute("UPDATE sources SET imported_at = ? WHERE id = ?", (time.time(), source_id))
        except (sqlite3.Error, OSError, ProjectError):
            # (a full disk): the commits are written, if not flushed; flush the log directly
            try:
                fd = os.open(self.project.path + "-wal", os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                pass


class SourcesMixin:
    """Sources and import; needs ``path``, ``_mutex``, ``_db`` and ``_tx()`` from Project."""

    path: str

    # -- sources -------------------------------------------------------------------------------

    def add_source(
        self,
        path: str | os.PathLike,
        fmt: str,
        role: str = "train",
        errors: Iterable[dict] = (),
        total: int = 0,
        sha256: Optional[str] = None,
        complete: bool = True,
        options: Optional[dict] = None,
    ) -> int:
        """Register an imported file; ``errors`` are the bad records found while reading it
        (dicts with ``line``, ``index``, ``key``, ``message``). Returns the source id.
        ``complete=False`` marks it as an import still running (see :meth:`import_source`)."""
        if role not in SOURCE_ROLES:
            raise ValueError(f"source role must be one of {SOURCE_ROLES}, not {role!r}")
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO sources(path, format, role, sha256, total, imported_at, state, options) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (os.fspath(path), fmt, role, sha256, int(total or 0), time.time(),
                 "complete" if complete else "importing", canonical_json(options or {})),
            )
            sid = int(cur.lastrowid)
            _insert_errors(conn, sid, errors)
        return sid

    def set_source_errors(self, source_id: int, errors: Iterable[dict], total: Optional[int] = None,
                          error_counts: Optional[dict] = None, errors_left_out: int = 0) -> None:
        """Replace a source's import errors (the details kept; ``error_counts`` counts all of
        them by key, ``errors_left_out`` those not kept) and set its record total."""
        with self._tx() as conn:
            self._write_summary(conn, source_id, list(errors), total, error_counts, errors_left_out, None)

    @staticmethod
    def _write_summary(conn: sqlite3.Connection, source_id: int, errors: list, total: Optional[int],
                       error_counts: Optional[dict], errors_left_out: int, state: Optional[str]) -> None:
        conn.execute("DELETE FROM import_errors WHERE source_id = ?", (source_id,))
        _insert_errors(conn, source_id, errors)
        sets = ["error_counts = ?", "errors_left_out = ?"]
        args: list[Any] = [canonical_json(error_counts) if error_counts is not None else None,
                           max(0, int(errors_left_out or 0))]
        if total is not None:
            sets.append("total = ?")
            args.append(int(total))
        if state is not None:
            sets += ["state = ?", "imported_at = ?"]
            args += [state, time.time()]
        conn.execute(f"UPDATE sources SET {', '.join(sets)} WHERE id = ?", (*args, source_id))

    def sources(self) -> list[dict]:
        """Every source, oldest first: ``id, path, format, role, sha256, total`` (records in the
        file), ``records`` (stored), ``complete`` (False: an import that did not finish),
        ``mapping``, ``errors`` (all import errors), ``errors_kept`` (with details),
        ``errors_left_out``, ``error_counts`` (by key), ``imported_at``."""
        with self._mutex:
            rows = self._db.execute(
                """
                SELECT s.id, s.path, s.format, s.role, s.sha256, s.total, s.imported_at, s.state, s.options,
                       s.error_counts, s.errors_left_out,
                       (SELECT COUNT(*) FROM records r WHERE r.source_id = s.id),
                       (SELECT COUNT(*) FROM import_errors e WHERE e.source_id = s.id)
                FROM sources s ORDER BY s.id
                """
            ).fetchall()
            counted: dict[int, dict] = {}
            for sid, key, n in self._db.execute(
                "SELECT source_id, key, COUNT(*) FROM import_errors GROUP BY source_id, key"
            ):
                counted.setdefault(sid, {})[str(key)] = int(n)
        out = []
        for row in rows:
            d = dict(zip(_SOURCE_COLS, row))
            options = _json_or(d.pop("options"), {}, dict)
            counts = _json_or(d["error_counts"], None, dict)
            if counts is None or not all(isinstance(v, int) for v in counts.values()):
                counts = counted.get(d["id"], {})
            left_out = d["errors_left_out"] if isinstance(d["errors_left_out"], int) else 0
            d.update(
                complete=d.pop("state") == "complete",
                mapping=options.get("mapping"),
                options=options,
                error_counts=counts,
                errors_left_out=left_out,
                errors=max(sum(counts.values()), d["errors_kept"] + left_out),
            )
            out.append(d)
        return out

    def import_errors(self, source_id: Optional[int] = None) -> list[dict]:
        """The error details kept (see ``sources()`` for the counts of all errors)."""
        sql = "SELECT source_id, line, idx, key, message FROM import_errors"
        args: tuple = ()
        if source_id is not None:
            sql += " WHERE source_id = ?"
            args = (source_id,)
        with self._mutex:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [dict(zip(("source_id", "line", "index", "key", "message"), row)) for row in rows]

    def remove_source(self, source_id: int) -> bool:
        """Remove an incomplete source and its records, unless a decision was made on one of
        them (then nothing is removed and False is returned)."""
        with self._tx() as conn:
            row = conn.execute("SELECT state FROM sources WHERE id = ?", (source_id,)).fetchone()
            if row is None:
                return True
            if row[0] == "complete":
                raise ProjectError(f"source {source_id} of project {self.path} is a complete import; not removed")
            used = conn.execute(
                "SELECT 1 FROM decisions WHERE record_id IN (SELECT id FROM records WHERE source_id = ?) LIMIT 1",
                (source_id,)).fetchone()
            if used:
                return False
            conn.execute("DELETE FROM sources WHERE id = ?", (source_id,))
        return True

    # -- storing records -----------------------------------------------------------------------

    @staticmethod
    def _record_row(rec: Record, force_split: Optional[str]) -> tuple:
        split = force_split or rec.split or "train"
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} (expected one of {SPLITS})")
        return (int(rec.source.index), rec.source.line, split, *row_values(rec))

    def _insert_rows(self, conn: sqlite3.Connection, source_id: int, rows: list[tuple]) -> None:
        if not rows:
            return
        last = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0])
        try:
            conn.executemany(  # the source id is a number from the store: written in, not bound per row
                "INSERT INTO records(source_id, idx, line, split, content, content_hash, metadata) "
                f"VALUES ({int(source_id)}, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        except sqlite3.IntegrityError as exc:
            raise ProjectError(
                f"Cannot add records to source {source_id}: two records share a record index ({exc})"
            ) from exc
        conn.execute(
            "INSERT INTO reviews(record_id, status, labels, note) SELECT id, 'unreviewed', '[]', '' FROM records "
            "WHERE id > ?",
            (last,),
        )

    def add_records(
        self,
        source_id: int,
        records: Iterable[Record],
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelCheck] = None,
        batch: int = 5000,
    ) -> int:
        """Stream ``records`` into an existing source, ``batch`` at a time (one transaction each).

        The iterable is consumed lazily. Each record keeps its ``source.index`` and
        ``source.line``, ``split`` and ``metadata``; records of a ``"test"`` source get
        split ``"test"``. Returns the number of records added. On cancel (or any
        error) the records added by this call are removed again and :class:`Cancelled`
        (or the error) propagates.
        """
        batch = max(1, int(batch))
        with self._mutex:
            row = self._db.execute("SELECT role, total FROM sources WHERE id = ?", (source_id,)).fetchone()
            if row is None:
                raise KeyError(f"no source with id {source_id} in project {self.path}")
            role, total = row
            start_id = int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0])
        force_split = "test" if role == "test" else None
        rep = Reporter(progress, cancel, total=int(total or 0), every=1)
        done = 0
        rows: list[tuple] = []
        try:
            rep.check()
            for rec in records:
                rows.append(self._record_row(rec, force_split))
                if len(rows) >= batch:
                    with self._tx() as conn:
                        self._insert_rows(conn, source_id, rows)
                    done += len(rows)
                    rows.clear()
                    rep.tick(done, "Importing records")
                    rep.check()
            if rows:
                with self._tx() as conn:
                    self._insert_rows(conn, source_id, rows)
                done += len(rows)
                rows.clear()
                rep.tick(done, "Importing records")
        except BaseException:
            rows.clear()
            if done:
                with self._tx() as conn:
                    conn.execute("DELETE FROM records WHERE source_id = ? AND id > ?", (source_id, start_id))
            raise
        return done

    def import_source(
        self,
        path: str | os.PathLike,
        fmt: str,
        records: Iterable[Record],
        role: str = "train",
        sha256: Optional[str] = None,
        options: Optional[dict] = None,
        resume: Optional[int] = None,
        finish: Optional[Callable[[], dict]] = None,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelCheck] = None,
        batch: int = BATCH_ROWS,
    ) -> tuple[int, int]:
        """Store a file's records as a new source (or, with ``resume=source_id``, finish an
        incomplete one: records whose index is already stored are skipped). Returns
        ``(source_id, records added)``.

        The source is created with the first batch of ``batch`` records (a file of one batch
        is one transaction; later batches grow, see the module help) and marked complete with
        the last one, together with ``finish()``'s
        summary: ``{"errors": [...details kept], "error_counts": {...}, "errors_left_out": n,
        "total": n}``, asked for once ``records`` is exhausted. On any error or cancel what
        this call added is removed again; if that cannot be written either (a full disk), the
        source stays marked incomplete and the error says so.
        """
        batch = max(1, int(batch))

        def parts(force_split: Optional[str], skip_upto: int) -> Iterator[list[tuple]]:
            rows: list[tuple] = []
            for rec in records:
                if int(rec.source.index) <= skip_upto:
                    continue
                rows.append(self._record_row(rec, force_split))
                if len(rows) >= batch:
                    yield rows
                    rows = []
            if rows:
                yield rows

        return self._import(path, fmt, parts, role, sha256, options, resume, finish, progress, cancel, batch)

    def import_rows(
        self,
        path: str | os.PathLike,
        fmt: str,
        parts: Iterable[list[tuple]],
        role: str = "train",
        sha256: Optional[str] = None,
        options: Optional[dict] = None,
        resume: Optional[int] = None,
        finish: Optional[Callable[[], dict]] = None,
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelCheck] = None,
        batch: int = BATCH_ROWS,
    ) -> tuple[int, int]:
        """:meth:`import_source` for records already turned into rows: ``parts`` yields lists
        of ``(index, line, split, content, content_hash, metadata)`` (see :func:`row_values`),
        in record order, the split ``"test"`` for a test source; stored in batches as
        :meth:`import_source` stores records, with the same guarantees."""
        batch = max(1, int(batch))

        def kept(force_split: Optional[str], skip_upto: int) -> Iterator[list[tuple]]:
            for part in parts:
                if skip_upto >= 0 and part and part[0][0] <= skip_upto:
                    part = [r for r in part if r[0] > skip_upto]
                if force_split is not None and part and part[0][2] != force_split:
                    part = [(r[0], r[1], force_split, *r[3:]) for r in part]
                yield part
                part = None

        return self._import(path, fmt, kept, role, sha256, options, resume, finish, progress, cancel, batch)

    def _import(self, path: str | os.PathLike, fmt: str, parts: Callable[[Optional[str], int], Iterable[list]],
                role: str, sha256: Optional[str], options: Optional[dict], resume: Optional[int],
                finish: Optional[Callable[[], dict]], progress: Optional[ProgressCallback],
                cancel: Optional[CancelCheck], batch: int) -> tuple[int, int]:
        if role not in SOURCE_ROLES:
            raise ValueError(f"source role must be one of {SOURCE_ROLES}, not {role!r}")
        force_split = "test" if role == "test" else None
        skip_upto = -1
        with self._mutex:
            start_id = int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0])
            if resume is not None:
                row = self._db.execute("SELECT state, role FROM sources WHERE id = ?", (resume,)).fetchone()
                if row is None or row[0] == "complete":
                    raise ProjectError(f"source {resume} of project {self.path} is not an incomplete import")
                force_split = "test" if row[1] == "test" else None
                top = self._db.execute("SELECT MAX(idx) FROM records WHERE source_id = ?", (resume,)).fetchone()[0]
                skip_upto = int(top) if isinstance(top, int) else -1
        sid: Optional[int] = resume
        created = False
        added = 0
        rows: list[tuple] = []
        rep = Reporter(progress, cancel, every=1)

        def source_id(conn: sqlite3.Connection) -> int:
            nonlocal sid, created
            if sid is None:
                sid = int(conn.execute(
                    "INSERT INTO sources(path, format, role, sha256, total, imported_at, state, options) "
                    "VALUES (?, ?, ?, ?, 0, ?, 'importing', ?)",
                    (os.fspath(path), fmt, role, sha256, time.time(), canonical_json(options or {})),
                ).lastrowid)
                created = True
            return sid

        bulk = _BulkWrites(self)
        flush = min(batch, FLUSH_ROWS)
        try:
            rep.check()
            bulk.start()
            rest = iter(parts(force_split, skip_upto))
            done = False
            while not done:
                # a transaction of at least ``batch`` rows, as many as are stored already (up to
                # TX_ROWS): an index of random keys (content_hash) is rewritten once per commit
                goal = min(TX_ROWS, max(batch, added))
                in_tx = 0
                with self._tx() as conn:
                    sid_now = source_id(conn)
                    for part in rest:
                        if rows:
                            rows.extend(part)
                        else:
                            rows = part if isinstance(part, list) else list(part)
                        part = None  # freed once stored, not held until the next one is made
                        if len(rows) >= flush:
                            self._insert_rows(conn, sid_now, rows)
                            in_tx += len(rows)
                            rows = []
                            if in_tx >= goal:
                                break
                    else:
                        done = True
                        summary = finish() if finish is not None else {}
                        self._insert_rows(conn, sid_now, rows)
                        in_tx += len(rows)
                        rows = []
                        self._write_summary(conn, sid_now, list(summary.get("errors") or []), summary.get("total"),
                                            summary.get("error_counts"), summary.get("errors_left_out", 0),
                                            "complete")
                added += in_tx
                if not done:
                    rep.tick(added, "Importing records")
                    rep.check()
        except BaseException as exc:
            rows = []
            bulk.end()
            kept = self._drop_import(sid, created, start_id)
            if isinstance(exc, (sqlite3.Error, OSError, ProjectError)):
                err = explain(exc, self.path, "write to")
                if kept:
                    err = type(err)(f"{err} The {kept} records stored before it are kept, marked as an "
                                    "incomplete import; import the file again to finish it.")
                raise err from exc
            raise
        bulk.end(int(sid))  # the import's commits reach the disk before it is reported done
        return int(sid), added

    def _drop_import(self, sid: Optional[int], created: bool, start_id: int) -> int:
        """Remove what a failed import added; returns how many records had to be kept (0: all
        removed, or nothing was added)."""
        if sid is None:
            return 0
        try:
            with self._tx() as conn:
                if created:
                    conn.execute("DELETE FROM sources WHERE id = ?", (sid,))
                else:
                    conn.execute("DELETE FROM records WHERE source_id = ? AND id > ?", (sid, start_id))
            return 0
        except (sqlite3.Error, OSError, ProjectError):
            try:
                with self._mutex:
                    return int(self._db.execute("SELECT COUNT(*) FROM records WHERE source_id = ?",
                                                (sid,)).fetchone()[0]) or 1
            except sqlite3.Error:
                return 1


__all__ = ["SOURCE_ROLES", "SOURCE_STATES", "SourcesMixin", "jdump", "row_values"]
