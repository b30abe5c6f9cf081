"""The project store: one SQLite file holding a curation project.

A project file holds the imported records, each record's review state
(unreviewed / approved / rejected / edited, with edited content kept beside the
original), labels and notes, the reviewer's name, a full decision history with
timestamps (every decision can be undone and redone), and cached scan results
keyed by scanner, settings hash and content hash.

Durability: the database runs in WAL mode with ``synchronous=FULL`` and every
decision is committed before the method returns, so killing the process loses
nothing a caller has already been told is saved. Imports are marked incomplete until
their last record is stored (:mod:`.imports`).

Exclusivity: a writable :class:`Project` holds an exclusive lock on the sidecar
file ``<path>.lock`` for its whole life (:mod:`.lock`); a second writable open raises
:class:`ProjectInUse`, at once or after waiting ``wait`` seconds. Read-only opens take no
lock and work beside a writer.

Safety: every open checks the file's schema against the one ftcurate makes
(:mod:`.schema`) and runs with ``PRAGMA trusted_schema=OFF``; every value read is checked
(:mod:`.rows`): a damaged record is reported (:class:`DamagedRecord`, :meth:`Project.damaged_rows`)
and the rest of the project stays usable. SQLite and OS errors come out as
:class:`ProjectError` subclasses that say what happened: disk full, read-only, in use,
damaged (:mod:`.errors`).

Only the standard library is used here; nothing prints.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence
from urllib.parse import quote

from .errors import (DamagedRecord, ProjectDamaged, ProjectDiskFull, ProjectError, ProjectInUse,  # noqa: F401
                     ProjectReadOnly, ProjectSchemaError, ProjectWriteError, explain, write_problem)
from .imports import SOURCE_ROLES, SourcesMixin  # noqa: F401
from .lock import FileLock, writer_active
from .records import SPLITS, Record, sha256_text
from .rows import (REVIEW_COLS, REVIEW_FROM, STATUSES, BadValue, State, StateJson, StoredRecord,  # noqa: F401
                   chunks, damaged_history, dismissed_list, few, history_state, jdump, norm_labels, row_to_stored,
                   unique_ids)
from .schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, check_project, expected_schema, migrate  # noqa: F401

_SQLITE_HEADER = b"SQLite format 3\x00"
_LABELS = "CASE WHEN json_valid(v.labels) AND json_type(v.labels) = 'array' THEN v.labels ELSE '[]' END"
_MIGRATIONS = MIGRATIONS  # older name


class ProjectNeedsUpgrade(ProjectError):
    """A read-only open of a project with an older schema (open it once for writing)."""

    key = "old_schema"


def _connect(target: str, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False, timeout=10.0)
    try:
        # before anything reads the schema: no function with side effects may run from it
        conn.execute("PRAGMA trusted_schema=OFF")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _remove_files(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(path + suffix)
        except OSError:
            pass


def _immutable_ok(path: str) -> bool:
    """May ``path`` be read as an immutable file? Only when no writer holds it and its
    write-ahead log is empty or gone (nothing committed lives outside the main file)."""
    try:
        if os.path.getsize(path + "-wal") > 0:
            return False
    except OSError:
        pass
    return not writer_active(path)


# -- the project -----------------------------------------------------------------------


class Project(SourcesMixin):
    """An open project file. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str, conn: sqlite3.Connection, lock: Optional[FileLock], readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._conn: Optional[sqlite3.Connection] = conn
        self._lock = lock
        self._mutex = threading.RLock()
        self._damaged: dict[int, dict] = {}  # record id -> {"id","source_id","index","reason"} met so far

    # -- opening and closing -----------------------------------------------------------

    @classmethod
    def create(cls, path: str | os.PathLike, reviewer: Optional[str] = None) -> "Project":
        """Create a new project file; :class:`ProjectError` if ``path`` already exists."""
        path = os.fspath(path)
        if os.path.exists(path):
            raise ProjectError(f"Cannot create project {path}: the file already exists")
        project = cls.open(path, create=True)
        if reviewer is not None:
            try:
                project.reviewer = reviewer
            except BaseException:
                project.close()
                raise
        return project

    @classmethod
    def open(cls, path: str | os.PathLike, create: bool = False, readonly: bool = False, wait: float = 0.0,
             on_wait: Optional[Callable[[ProjectInUse], None]] = None) -> "Project":
        """Open a project (``create=True`` makes a new one if ``path`` does not exist).

        A read-only open of a project written by an older ftcurate upgrades its schema first
        (what a writable open does); the data is not changed.

        Raises :class:`ProjectInUse` when another process or Project object has it open for
        writing (after waiting up to ``wait`` seconds for it to let go; ``on_wait`` hears
        once that waiting started), :class:`ProjectReadOnly` / :class:`ProjectDiskFull`
        when it cannot be written, :class:`ProjectSchemaError` when its schema holds
        objects ftcurate did not create, and :class:`ProjectError` when the file is missing,
        is not an ftcurate project, or was written by a newer ftcurate.
        """
        path = os.fspath(path)
        exists = os.path.exists(path)
        if not exists and (not create or readonly):
            raise ProjectError(f"No project at {path}: the file does not exist")
        if exists:
            if os.path.isdir(path):
                raise ProjectError(f"{path} is a directory, not an ftcurate project")
            try:
                with open(path, "rb") as fh:
                    header = fh.read(len(_SQLITE_HEADER))
            except OSError as exc:
                raise ProjectError(f"Cannot read project {path}: {exc.strerror or exc}") from exc
            if header and header != _SQLITE_HEADER:
                raise ProjectError(f"{path} is not an ftcurate project (not an SQLite database)")
            if not header and not create:
                raise ProjectError(f"{path} is not an ftcurate project (empty file)")
        if readonly:
            return cls._open_readonly(path)
        folder = os.path.dirname(os.path.abspath(path))
        if not exists and not os.path.isdir(folder):
            raise ProjectError(f"Cannot create project {path}: the folder {folder} does not exist")
        problem = write_problem(path, exists)
        if problem is not None:
            raise problem

        lock = FileLock(path)
        lock.acquire(wait, on_wait)
        conn: Optional[sqlite3.Connection] = None
        try:
            conn = _connect(path)
            version = check_project(conn, path, allow_new=create)
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
                raise ProjectError(f"Cannot use write-ahead logging for {path}")
            conn.execute("PRAGMA synchronous=FULL")
            if version < SCHEMA_VERSION:
                migrate(conn, version)
            return cls(path, conn, lock, readonly=False)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if not exists:  # a half-made new project goes again
                _remove_files(path)
            # a lock file we created beside something we could not open goes again
            lock.release(remove=lock.created)
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise explain(exc, path, "open") from exc
            raise

    @classmethod
    def _open_readonly(cls, path: str) -> "Project":
        try:
            conn = cls._connect_readonly(path, immutable=False)
        except ProjectNeedsUpgrade as old:
            # A project of an older schema is upgraded once (as any writable open would),
            # then read as asked; a read-only or busy one says why it cannot be.
            try:
                cls.open(path).close()
            except ProjectError as exc:
                raise ProjectNeedsUpgrade(f"{old}; it cannot be upgraded now: {exc}") from None
            conn = cls._connect_readonly(path, immutable=False)
        except ProjectWriteError:
            # Reading a WAL-mode file needs its -shm beside it: a read-only folder or a full
            # disk cannot make one. A file nobody writes, with nothing in its log, can be
            # read as immutable instead.
            if not _immutable_ok(path):
                raise
            conn = cls._connect_readonly(path, immutable=True)
        return cls(path, conn, None, readonly=True)

    @staticmethod
    def _connect_readonly(path: str, immutable: bool) -> sqlite3.Connection:
        uri = "file:" + quote(os.path.abspath(path).replace(os.sep, "/")) + "?mode=ro"
        if immutable:
            uri += "&immutable=1"
        try:
            conn = _connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise explain(exc, path, "open") from exc
        try:
            version = check_project(conn, path, allow_new=False)
            if version < SCHEMA_VERSION:
                raise ProjectNeedsUpgrade(
                    f"Project {path} uses an older schema (version {version}); open it once "
                    "for writing to upgrade it"
                )
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise explain(exc, path, "open") from exc
            raise
        return conn

    def close(self) -> None:
        with self._mutex:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                finally:
                    if self._lock is not None:
                        self._lock.release()
                        self._lock = None

    def discard(self) -> None:
        """Close a project this process has just created and remove its files (a command
        that failed as a whole leaves no new project behind)."""
        lock = self._lock
        self._lock = None
        try:
            with self._mutex:
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.close()
            _remove_files(self.path)
        finally:
            if lock is not None:
                lock.release(remove=True)

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - safety net for forgotten close()
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("read-only" if self.readonly else "open")
        return f"<Project {self.path!r} {state}>"

    @property
    def schema_version(self) -> int:
        with self._mutex:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    # -- internals -----------------------------------------------------------------------

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ProjectError(f"Project {self.path} is closed")
        return self._conn

    def _writable(self) -> sqlite3.Connection:
        conn = self._db
        if self.readonly:
            raise ProjectError(f"Project {self.path} is open read-only")
        return conn

    class _Tx:
        """A write transaction; SQLite errors come out as ProjectErrors that say what happened."""

        def __init__(self, project: "Project") -> None:
            self.project = project

        def __enter__(self) -> sqlite3.Connection:
            self.project._mutex.acquire()
            try:
                conn = self.project._writable()
                conn.execute("BEGIN IMMEDIATE")
            except BaseException as exc:
                self.project._mutex.release()
                if isinstance(exc, sqlite3.Error):
                    raise explain(exc, self.project.path, "write to") from exc
                raise
            self.conn = conn
            return conn

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            try:
                if exc_type is None:
                    try:
                        self.conn.execute("COMMIT")
                    except BaseException as err:
                        self._rollback()
                        if isinstance(err, sqlite3.Error):
                            raise explain(err, self.project.path, "write to") from err
                        raise
                else:
                    self._rollback()
                    if isinstance(exc, sqlite3.Error):
                        raise explain(exc, self.project.path, "write to") from exc
            finally:
                self.project._mutex.release()

        def _rollback(self) -> None:
            try:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite rolls back by itself when it cannot (e.g. after an I/O error)

    def _tx(self) -> "Project._Tx":
        """A write transaction, committed (durably) on normal exit, rolled back on error."""
        return Project._Tx(self)

    # -- meta ----------------------------------------------------------------------------

    def meta_get(self, key: str, default: Any = None) -> Any:
        with self._mutex:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except (TypeError, ValueError):  # a damaged value reads as missing
            return default

    def meta_set(self, key: str, value: Any) -> None:
        with self._tx() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, jdump(value)))

    @property
    def reviewer(self) -> Optional[str]:
        name = self.meta_get("reviewer")
        return name if isinstance(name, str) else None

    @reviewer.setter
    def reviewer(self, name: Optional[str]) -> None:
        name = name.strip() if isinstance(name, str) else None
        self.meta_set("reviewer", name or None)

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def _filters(status: Optional[str], split: Optional[str], source_id: Optional[int]) -> tuple[str, list]:
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r} (expected one of {STATUSES})")
            where.append("v.status = ?")
            args.append(status)
        if split is not None:
            where.append("r.split = ?")
            args.append(split)
        if source_id is not None:
            where.append("r.source_id = ?")
            args.append(source_id)
        return (" AND ".join(where), args)

    def _select(self, what: str, status: Optional[str], split: Optional[str],
                source_id: Optional[int]) -> tuple[str, list]:
        """``SELECT what FROM records`` with the filters (joining reviews only when needed)."""
        cond, args = self._filters(status, split, source_id)
        sql = f"SELECT {what} FROM records r"
        if status is not None:
            sql += " JOIN reviews v ON v.record_id = r.id"
        if cond:
            sql += " WHERE " + cond
        return sql, args

    def count(self, status: Optional[str] = None, split: Optional[str] = None, source_id: Optional[int] = None) -> int:
        sql, args = self._select("COUNT(*)", status, split, source_id)
        with self._mutex:
            return int(self._db.execute(sql, args).fetchone()[0])

    def status_counts(self, split: Optional[str] = None) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        sql = "SELECT v.status, COUNT(*) FROM reviews v"
        args: tuple = ()
        if split is not None:
            sql += " JOIN records r ON r.id = v.record_id WHERE r.split = ?"
            args = (split,)
        with self._mutex:
            for status, n in self._db.execute(sql + " GROUP BY v.status", args):
                if status in out:  # any other value is a damaged row (see damaged_rows)
                    out[status] = int(n)
        return out

    def light_rows(self, ids: Optional[Sequence[int]] = None) -> Iterator[tuple]:
        """``(id, index, split, status, chars, messages, labels_json)`` per record, by id,
        without parsing records in Python (SQLite measures the content, edits applied):
        what the review table's columns need, cheap enough for a million rows. A damaged
        value reads as None (messages) rather than failing the whole query."""
        content = "COALESCE(v.edited, r.content)"
        sql = (f"SELECT r.id, r.idx, r.split, v.status, length({content}), "
               f"CASE WHEN json_valid({content}) THEN json_array_length({content}, '$.messages') END, v.labels "
               "FROM records r JOIN reviews v ON v.record_id = r.id")
        if ids is None:
            with self._mutex:
                rows = self._db.execute(sql + " ORDER BY r.id").fetchall()
            yield from rows
            return
        for chunk in chunks(list(ids)):
            with self._mutex:
                rows = self._db.execute(sql + f" WHERE r.id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            yield from rows

    def ids_with_label(self, label: str) -> list[int]:
        """Ids (ascending) of the records that carry ``label``."""
        with self._mutex:
            rows = self._db.execute(
                f"SELECT v.record_id FROM reviews v, json_each({_LABELS}) j WHERE v.labels != '[]' AND j.value = ? "
                "ORDER BY v.record_id", (str(label).strip(),)).fetchall()
        return [int(r[0]) for r in rows]

    def all_labels(self) -> dict[str, int]:
        """Every label in use, with how many records carry it."""
        with self._mutex:
            rows = self._db.execute(
                f"SELECT j.value, COUNT(*) FROM reviews v, json_each({_LABELS}) j WHERE v.labels != '[]' "
                "GROUP BY j.value ORDER BY j.value").fetchall()
        return {str(k): int(n) for k, n in rows}

    def _stored(self, row: tuple) -> StoredRecord:
        """``row_to_stored``, remembering a damaged record before raising DamagedRecord."""
        try:
            return row_to_stored(row)
        except DamagedRecord as exc:
            for info in exc.rows:
                self._damaged[info["id"]] = info
            raise

    def get(self, record_id: int) -> StoredRecord:
        """The record; KeyError if there is none, :class:`DamagedRecord` (a KeyError too)
        if its stored values cannot be read."""
        with self._mutex:
            row = self._db.execute(f"SELECT {REVIEW_COLS} FROM {REVIEW_FROM} WHERE r.id = ?", (record_id,)).fetchone()
        if row is None:
            raise KeyError(f"no record with id {record_id} in project {self.path}")
        return self._stored(row)

    def get_many(self, ids: Iterable[int]) -> list[StoredRecord]:
        """Records for ``ids``, in that order; KeyError if any is missing,
        :class:`DamagedRecord` (a KeyError) naming every damaged one."""
        ids = [int(i) for i in ids]
        found: dict[int, StoredRecord] = {}
        bad: list[dict] = []
        with self._mutex:
            for chunk in chunks(sorted(set(ids))):
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(f"SELECT {REVIEW_COLS} FROM {REVIEW_FROM} WHERE r.id IN ({marks})", chunk):
                    try:
                        found[row[0]] = self._stored(row)
                    except DamagedRecord as exc:
                        bad += exc.rows
        if bad:
            raise DamagedRecord(f"{len(bad)} record(s) are damaged in project {self.path}: "
                                + few([f"record {b['index']} ({b['reason']})" for b in bad], 3), bad)
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"no record with id {few(missing)} in project {self.path}")
        return [found[i] for i in ids]

    def iter_records(
        self,
        status: Optional[str] = None,
        split: Optional[str] = None,
        source_id: Optional[int] = None,
        batch: int = 2000,
        damaged: Optional[list] = None,
    ) -> Iterator[StoredRecord]:
        """Matching records ordered by id, fetched ``batch`` at a time. Damaged records are
        skipped: each goes into ``damaged`` (when given) and into :meth:`damaged_rows`."""
        cond, args = self._filters(status, split, source_id)
        sql = f"SELECT {REVIEW_COLS} FROM {REVIEW_FROM} WHERE r.id > ?"
        if cond:
            sql += " AND " + cond
        sql += " ORDER BY r.id LIMIT ?"
        last = 0
        batch = max(1, int(batch))
        while True:
            with self._mutex:
                rows = self._db.execute(sql, [last, *args, batch]).fetchall()
            for row in rows:
                try:
                    sr = self._stored(row)
                except DamagedRecord as exc:
                    if damaged is not None:
                        damaged.extend(exc.rows)
                    continue
                yield sr
            if len(rows) < batch:
                return
            last = rows[-1][0]

    @property
    def damaged_seen(self) -> list[dict]:
        """Damaged records met so far by this Project object (``{"id","source_id","index",
        "reason"}``), without looking for more."""
        return list(self._damaged.values())

    def damaged_rows(self, progress: Optional[Callable[[int, int, str], None]] = None) -> list[dict]:
        """Every record whose stored values cannot be read, by id: ``{"id", "source_id",
        "index", "reason"}``. Reads the whole project once."""
        out: list[dict] = []
        for n, _sr in enumerate(self.iter_records(damaged=out), 1):
            if progress is not None and n % 20000 == 0:
                progress(n, 0, "checking records")
        return sorted(out, key=lambda d: d["id"])

    def ids(self, status: Optional[str] = None, split: Optional[str] = None, source_id: Optional[int] = None) -> list[int]:
        sql, args = self._select("r.id", status, split, source_id)
        with self._mutex:
            return [row[0] for row in self._db.execute(sql + " ORDER BY r.id", args)]

    def search_ids(self, text: str, status: Optional[str] = None, split: Optional[str] = None,
                   source_id: Optional[int] = None) -> list[int]:
        """Ids (ascending) of records whose original or edited content contains ``text``
        (case-insensitive for ASCII letters), among those matching the filters."""
        cond, args = self._filters(status, split, source_id)
        as_json = json.dumps(text, ensure_ascii=False)[1:-1]  # content is stored as JSON text
        needle = "%" + as_json.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        match = "(r.content LIKE ? ESCAPE '\\' OR v.edited LIKE ? ESCAPE '\\')"
        sql = "SELECT r.id FROM records r JOIN reviews v ON v.record_id = r.id WHERE " + match
        if cond:
            sql += " AND " + cond
        with self._mutex:
            return [row[0] for row in self._db.execute(sql + " ORDER BY r.id", [needle, needle] + args)]

    def id_for_index(self, source_id: int, index: int) -> int:
        with self._mutex:
            row = self._db.execute("SELECT id FROM records WHERE source_id = ? AND idx = ?", (source_id, index)).fetchone()
        if row is None:
            raise KeyError(f"source {source_id} has no record with index {index} in project {self.path}")
        return int(row[0])

    # -- decisions -------------------------------------------------------------------------

    def _states(self, conn: sqlite3.Connection, ids: list[int]) -> dict[int, State]:
        """Full review state of each record (raises KeyError for unknown ids, and
        :class:`DamagedRecord` naming the records whose state cannot be read)."""
        out: dict[int, State] = {}
        bad: list[dict] = []
        for chunk in chunks(ids):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                "SELECT r.id, r.idx, r.source_id, v.status, v.edited, v.labels, v.note, r.split, v.reviewer, "
                "v.updated_at, v.record_id, v.dismissed "
                f"FROM records r LEFT JOIN reviews v ON v.record_id = r.id WHERE r.id IN ({marks})",
                chunk,
            ):
                try:
                    if row[10] is None:
                        raise DamagedRecord(f"record {row[1]} has no review row",
                                            [{"id": row[0], "source_id": row[2], "index": row[1],
                                              "reason": "its review row is missing"}])
                    out[row[0]] = State.from_row(*row[:10], row[11])
                except DamagedRecord as exc:
                    bad += exc.rows
        if bad:
            for info in bad:
                self._damaged[info["id"]] = info
            raise DamagedRecord(
                f"{'Record' if len(bad) == 1 else 'Records'} {few([str(b['index']) for b in bad])} "
                f"{'is' if len(bad) == 1 else 'are'} damaged in project {self.path} ({bad[0]['reason']}); "
                "nothing was changed. The other records can be reviewed as usual.", bad)
        if len(out) != len(ids):
            missing = [i for i in ids if i not in out]
            raise KeyError(f"no record with id {few(missing)} in project {self.path}")
        return out

    @staticmethod
    def _write_states(
        conn: sqlite3.Connection, states: dict[int, State], befores: Optional[dict[int, State]] = None
    ) -> None:
        """Write review states (and splits that changed), one UPDATE per distinct state."""
        by_state: dict[State, list[int]] = {}
        by_split: dict[str, list[int]] = {}
        for rid, st in states.items():
            by_state.setdefault(st, []).append(rid)
            if befores is None or befores[rid].split != st.split:
                by_split.setdefault(st.split, []).append(rid)
        for st, rids in by_state.items():
            edited_hash = sha256_text(st.edited) if st.edited is not None else None
            head = (st.status, st.edited, edited_hash, st.labels, st.note, st.reviewer, st.updated_at, st.dismissed)
            for chunk in chunks(rids):
                conn.execute(
                    "UPDATE reviews SET status = ?, edited = ?, edited_hash = ?, labels = ?, note = ?, "
                    f"reviewer = ?, updated_at = ?, dismissed = ? WHERE record_id IN ({','.join('?' * len(chunk))})",
                    (*head, *chunk),
                )
        for split, rids in by_split.items():
            for chunk in chunks(rids):
                conn.execute(
                    f"UPDATE records SET split = ? WHERE id IN ({','.join('?' * len(chunk))})", (split, *chunk)
                )

    def _decide(
        self,
        action: str,
        ids: Iterable[int] | int,
        change: Callable[[State], State],
        reviewer: Optional[str],
        per_record: Optional[Callable[[int, State], State]] = None,
    ) -> int:
        """Apply ``change`` to each record's review state as one undo group (one transaction).
        ``per_record(record_id, state)``, when given, replaces ``change`` for records whose
        new state depends on which record it is."""
        ids = unique_ids(ids)
        if not ids:
            return 0
        who = reviewer if reviewer is not None else self.reviewer
        now = time.time()
        with self._tx() as conn:
            befores = self._states(conn, ids)
            changed: dict[State, State] = {}  # many records share a state: change each once
            afters: dict[int, State] = {}
            for rid in ids:
                before = befores[rid]
                if per_record is not None:
                    afters[rid] = per_record(rid, before)._replace(reviewer=who, updated_at=now)
                    continue
                after = changed.get(before)
                if after is None:
                    after = changed[before] = change(before)._replace(reviewer=who, updated_at=now)
                afters[rid] = after
            # a new decision after undo drops the redo stack
            conn.execute("UPDATE groups SET state = 'dropped', changed_at = ? WHERE state = 'undone'", (now,))
            grp = int(
                conn.execute(
                    "INSERT INTO groups(action, reviewer, ts, n) VALUES (?, ?, ?, ?)", (action, who, now, len(ids))
                ).lastrowid
            )
            dump = StateJson()
            conn.executemany(
                "INSERT INTO decisions(grp, record_id, action, before, after, reviewer, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((grp, rid, action, dump(befores[rid]), dump(afters[rid]), who, now) for rid in ids),
            )
            self._write_states(conn, afters, befores)
        return grp

    def approve(self, ids: Iterable[int] | int, reviewer: Optional[str] = None) -> int:
        return self._decide("approve", ids, lambda st: st._replace(status="approved"), reviewer)

    def reject(self, ids: Iterable[int] | int, reviewer: Optional[str] = None) -> int:
        return self._decide("reject", ids, lambda st: st._replace(status="rejected"), reviewer)

    def reset(self, ids: Iterable[int] | int, reviewer: Optional[str] = None) -> int:
        """Back to unreviewed; an edit is kept."""
        return self._decide("reset", ids, lambda st: st._replace(status="unreviewed"), reviewer)

    def set_statuses(self, statuses: Mapping[int, str], action: str = "set_status",
                     reviewer: Optional[str] = None) -> int:
        """Give each record its own status (e.g. keep one of a duplicate pair, reject the
        other) as one decision group: one undo step. Edits are kept."""
        statuses = {int(k): v for k, v in statuses.items()}
        for st in set(statuses.values()):
            if st not in STATUSES:
                raise ValueError(f"unknown status {st!r} (expected one of {STATUSES})")
        return self._decide(action, list(statuses), lambda st: st, reviewer,
                            per_record=lambda rid, st: st._replace(status=statuses[rid]))

    def edit(self, record_id: int, new: Record, reviewer: Optional[str] = None) -> int:
        """Store ``new``'s content beside the original; status becomes "edited"."""
        content = new.content_json()
        return self._decide("edit", [record_id], lambda st: st._replace(status="edited", edited=content), reviewer)

    def restore_original(self, record_id: int, reviewer: Optional[str] = None) -> int:
        """Drop the edit; status becomes "unreviewed"."""
        return self._decide(
            "restore_original", [record_id], lambda st: st._replace(status="unreviewed", edited=None), reviewer
        )

    def set_labels(self, ids: Iterable[int] | int, labels: Iterable[str], reviewer: Optional[str] = None) -> int:
        labels_json = jdump(norm_labels(labels))
        return self._decide("set_labels", ids, lambda st: st._replace(labels=labels_json), reviewer)

    def add_label(self, ids: Iterable[int] | int, label: str, reviewer: Optional[str] = None) -> int:
        new = norm_labels([label])

        def change(st: State) -> State:
            return st._replace(labels=jdump(norm_labels(json.loads(st.labels) + new)))

        return self._decide("add_label", ids, change, reviewer)

    def remove_label(self, ids: Iterable[int] | int, label: str, reviewer: Optional[str] = None) -> int:
        label = str(label).strip()

        def change(st: State) -> State:
            return st._replace(labels=jdump([lab for lab in json.loads(st.labels) if lab != label]))

        return self._decide("remove_label", ids, change, reviewer)

    def set_note(self, record_id: int, note: str, reviewer: Optional[str] = None) -> int:
        note = note or ""
        return self._decide("set_note", [record_id], lambda st: st._replace(note=note), reviewer)

    def dismiss(self, findings: Iterable[tuple[int, str, str]], reason: str = "",
                reviewer: Optional[str] = None) -> int:
        """Dismiss findings as wrong, one decision (one undo step): ``(record_id, kind, other)``
        with ``other`` the content hash of the pair's other record ("" for a single-record
        finding such as an outlier). See :mod:`ftcurate.core.project.dismissals`."""
        reason = " ".join(str(reason or "").split())[:500]
        adds: dict[int, list[dict]] = {}
        for rid, kind, other in findings:
            adds.setdefault(int(rid), []).append({"kind": str(kind), "other": str(other or ""), "reason": reason})
        if not adds:
            return 0

        def per_record(rid: int, st: State) -> State:
            have = {(d["kind"], d["other"]): d for d in dismissed_list(st.dismissed)}
            for d in adds[rid]:
                have[(d["kind"], d["other"])] = d
            return st._replace(dismissed=jdump([have[k] for k in sorted(have)]))

        return self._decide("dismiss", list(adds), lambda st: st, reviewer, per_record=per_record)

    def dismissed(self) -> dict[int, list[dict]]:
        """Record id -> its dismissed findings, for the records that have any."""
        with self._mutex:
            rows = self._db.execute("SELECT record_id, dismissed FROM reviews WHERE dismissed != '[]'").fetchall()
        out: dict[int, list[dict]] = {}
        for rid, text in rows:
            try:
                out[int(rid)] = dismissed_list(text)
            except BadValue:
                continue  # a damaged value dismisses nothing
        return out

    def metadata_keys(self, sample: int = 20000) -> dict[str, int]:
        """The extra fields of the source records (``source``, ``category``...) and in how many
        of the first ``sample`` records each appears."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT j.key, COUNT(*) FROM (SELECT metadata FROM records WHERE metadata != '{}' "
                "AND json_valid(metadata) ORDER BY id LIMIT ?) r, json_each(r.metadata) j "
                "WHERE j.type NOT IN ('object', 'array') GROUP BY j.key ORDER BY COUNT(*) DESC, j.key",
                (int(sample),)).fetchall()
        return {str(k): int(n) for k, n in rows}

    def metadata_column(self, key: str) -> tuple[list[int], list[Any]]:
        """(ids ascending, the value of field ``key`` of each record's metadata or None)."""
        path = '$."' + str(key).replace('"', '\\"') + '"'
        with self._mutex:
            rows = self._db.execute(
                "SELECT id, CASE WHEN json_valid(metadata) THEN json_extract(metadata, ?) END FROM records "
                "ORDER BY id", (path,)).fetchall()
        return [int(r[0]) for r in rows], [r[1] for r in rows]

    def content_hashes(self, ids: Iterable[int]) -> dict[int, str]:
        """Record id -> the hash of its content as imported (what dismissals name)."""
        out: dict[int, str] = {}
        for chunk in chunks(sorted({int(i) for i in ids})):
            with self._mutex:
                rows = self._db.execute(f"SELECT id, content_hash FROM records WHERE id IN ({','.join('?' * len(chunk))})",
                                        chunk).fetchall()
            out.update({int(r): str(h) for r, h in rows})
        return out

    def set_split(self, ids: Iterable[int] | int, split: str, reviewer: Optional[str] = None) -> int:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} (expected one of {SPLITS})")
        return self._decide("set_split", ids, lambda st: st._replace(split=split), reviewer)

    # -- undo / redo ---------------------------------------------------------------------

    def _group_info(self, state: str, newest: bool) -> Optional[dict]:
        order = "DESC" if newest else "ASC"
        with self._mutex:
            row = self._db.execute(
                f"SELECT id, action, n, reviewer, ts FROM groups WHERE state = ? ORDER BY id {order} LIMIT 1", (state,)
            ).fetchone()
        if row is None:
            return None
        return dict(zip(("group", "action", "count", "reviewer", "ts"), row))

    def peek_undo(self) -> Optional[dict]:
        """What :meth:`undo` would revert: ``{"group","action","count","reviewer","ts"}`` or None."""
        return self._group_info("done", newest=True)

    def peek_redo(self) -> Optional[dict]:
        """What :meth:`redo` would re-apply, or None."""
        return self._group_info("undone", newest=False)

    def can_undo(self) -> bool:
        return self.peek_undo() is not None

    def can_redo(self) -> bool:
        return self.peek_redo() is not None

    def undo(self) -> Optional[list[int]]:
        """Revert the latest group still in effect; returns the affected record ids."""
        return self._undo_redo(undo=True)

    def redo(self) -> Optional[list[int]]:
        """Re-apply the most recently undone group; returns the affected record ids."""
        return self._undo_redo(undo=False)

    def _undo_redo(self, undo: bool) -> Optional[list[int]]:
        now = time.time()
        with self._tx() as conn:
            if undo:
                row = conn.execute("SELECT id FROM groups WHERE state = 'done' ORDER BY id DESC LIMIT 1").fetchone()
            else:
                row = conn.execute("SELECT id FROM groups WHERE state = 'undone' ORDER BY id ASC LIMIT 1").fetchone()
            if row is None:
                return None
            grp = int(row[0])
            # undo: apply "before" newest-first so the earliest wins; redo: "after" oldest-first
            col, order = ("before", "DESC") if undo else ("after", "ASC")
            states: dict[int, State] = {}
            parsed: dict[str, State] = {}
            for did, rid, blob in conn.execute(
                    f"SELECT id, record_id, {col} FROM decisions WHERE grp = ? ORDER BY id {order}", (grp,)):
                st = parsed.get(blob) if isinstance(blob, str) else None
                if st is None:
                    try:
                        st = State.from_json(blob)
                    except BadValue as exc:
                        raise damaged_history(self.path, did, str(exc)) from None
                    if isinstance(blob, str):
                        parsed[blob] = st
                states.pop(rid, None)
                states[rid] = st
            self._write_states(conn, states)
            conn.execute(
                "UPDATE groups SET state = ?, changed_at = ? WHERE id = ?", ("undone" if undo else "done", now, grp)
            )
        return sorted(states)

    def history(self, record_id: Optional[int] = None, limit: Optional[int] = None) -> list[dict]:
        """Decisions, newest first: ``{"id","group","record_id","action","before","after",
        "reviewer","ts","undone","dropped"}``. ``undone`` is True while a decision is not in
        effect; ``dropped`` when it can no longer be redone. A damaged entry has ``before`` /
        ``after`` None and ``damaged`` True."""
        sql = (
            "SELECT d.id, d.grp, d.record_id, d.action, d.before, d.after, d.reviewer, d.ts, g.state "
            "FROM decisions d JOIN groups g ON g.id = d.grp"
        )
        args: list[Any] = []
        if record_id is not None:
            sql += " WHERE d.record_id = ?"
            args.append(record_id)
        sql += " ORDER BY d.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._mutex:
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for did, grp, rid, action, before, after, reviewer, ts, state in rows:
            entry = {
                "id": did,
                "group": grp,
                "record_id": rid,
                "action": action,
                "before": history_state(before),
                "after": history_state(after),
                "reviewer": reviewer,
                "ts": ts,
                "undone": state != "done",
                "dropped": state == "dropped",
            }
            if entry["before"] is None or entry["after"] is None:
                entry["damaged"] = True
            out.append(entry)
        return out

    # -- scan cache and results -------------------------------------------------------------

    def cache_get_many(self, scanner: str, settings_hash: str, content_hashes: Iterable[str]) -> dict[str, Any]:
        """Cached values for those content hashes that have one."""
        hashes = list(dict.fromkeys(content_hashes))
        out: dict[str, Any] = {}
        with self._mutex:
            for chunk in chunks(hashes):
                marks = ",".join("?" * len(chunk))
                for h, value in self._db.execute(
                    "SELECT content_hash, value FROM scan_cache WHERE scanner = ? AND settings_hash = ? "
                    f"AND content_hash IN ({marks})",
                    [scanner, settings_hash, *chunk],
                ):
                    try:
                        out[h] = json.loads(value)
                    except (TypeError, ValueError):
                        pass  # a damaged cache entry is a cache miss
        return out

    def cache_put_many(self, scanner: str, settings_hash: str, items: dict[str, Any]) -> None:
        if not items:
            return
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO scan_cache(scanner, settings_hash, content_hash, value) VALUES (?, ?, ?, ?)",
                ((scanner, settings_hash, h, jdump(v)) for h, v in items.items()),
            )

    def cache_clear(self, scanner: Optional[str] = None) -> None:
        with self._tx() as conn:
            if scanner is None:
                conn.execute("DELETE FROM scan_cache")
            else:
                conn.execute("DELETE FROM scan_cache WHERE scanner = ?", (scanner,))

    def save_scan(self, scanner: str, settings: dict, result: Any) -> None:
        """Keep ``result`` as the latest result of ``scanner`` (replacing any earlier one)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO scans(scanner, settings, result, ts) VALUES (?, ?, ?, ?)",
                (scanner, jdump(settings), jdump(result), time.time()),
            )

    def list_scans(self) -> list[str]:
        with self._mutex:
            return [r[0] for r in self._db.execute("SELECT scanner FROM scans ORDER BY scanner").fetchall()]

    def load_scan(self, scanner: str) -> Optional[tuple[dict, Any]]:
        with self._mutex:
            row = self._db.execute("SELECT settings, result FROM scans WHERE scanner = ?", (scanner,)).fetchone()
        if row is None:
            return None
        try:
            settings, result = json.loads(row[0]), json.loads(row[1])
        except (TypeError, ValueError):
            return None  # a damaged stored scan reads as no scan
        return (settings, result) if isinstance(settings, dict) else None

