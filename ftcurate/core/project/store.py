"""The project store: one SQLite file holding a curation project.

A project file holds the imported records, each record's review state
(unreviewed / approved / rejected / edited, with edited content kept beside the
original), labels and notes, the reviewer's name, a full decision history with
timestamps (every decision can be undone and redone), and cached scan results
keyed by scanner, settings hash and content hash.

Durability: the database runs in WAL mode with ``synchronous=FULL`` and every
decision is committed before the method returns, so killing the process loses
nothing a caller has already been told is saved.

Exclusivity: a writable :class:`Project` holds an exclusive lock on the sidecar
file ``<path>.lock`` (``fcntl.flock``; ``msvcrt.locking`` on Windows) for its
whole life, with its pid written inside. A second writable open - from another
process or another :class:`Project` object in this process - raises
:class:`ProjectInUse`. The OS drops the lock if the process dies.

Only the standard library is used here; nothing prints.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Optional, Sequence
from urllib.parse import quote

from ..progress import CancelCheck, ProgressCallback, Reporter
from .records import SPLITS, Record, Source, canonical_json

SCHEMA_VERSION = 1
STATUSES = ("unreviewed", "approved", "rejected", "edited")
SOURCE_ROLES = ("train", "test")

#: ``PRAGMA application_id`` of an ftcurate project ("FTCU").
APPLICATION_ID = 0x46544355

_SQLITE_HEADER = b"SQLite format 3\x00"
_CHUNK = 500  # ids per ``IN (...)`` query: well under any SQLite variable limit
_WIN_LOCK_OFFSET = 1 << 20  # Windows: lock a byte past the pid so others can read it


class ProjectError(Exception):
    """A project file cannot be used (missing, not a project, newer schema, read-only...)."""


class ProjectInUse(ProjectError):
    """Another ftcurate process (or Project object) already has the project open."""

    def __init__(self, message: str, path: str = "", pid: Optional[int] = None) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid


# -- records as stored -------------------------------------------------------------------


@dataclass
class StoredRecord:
    id: int  # store id (SQLite rowid, stable)
    source_id: int
    index: int  # 0-based record index in its source file
    line: Optional[int]  # 1-based physical line in the source file
    split: str  # train / validation / test
    original: Record  # as imported
    edited: Optional[Record]  # edited content, or None
    status: str
    labels: list[str] = field(default_factory=list)
    note: str = ""
    reviewer: Optional[str] = None
    updated_at: Optional[float] = None

    @property
    def record(self) -> Record:
        """The record with edits applied: the edited content if any, else the original."""
        return self.edited if self.edited is not None else self.original

    @property
    def is_edited(self) -> bool:
        return self.edited is not None


# -- schema and migrations ------------------------------------------------------------


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements one by one (``executescript`` would COMMIT the
    migration's transaction). Statements must not contain ``;`` themselves."""
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    for stmt in "\n".join(lines).split(";"):
        if stmt.strip():
            conn.execute(stmt)


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE sources (
            id          INTEGER PRIMARY KEY,
            path        TEXT NOT NULL,
            format      TEXT NOT NULL,
            role        TEXT NOT NULL DEFAULT 'train',
            sha256      TEXT,
            total       INTEGER NOT NULL DEFAULT 0,
            imported_at REAL NOT NULL
        );
        CREATE TABLE import_errors (
            id        INTEGER PRIMARY KEY,
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            line      INTEGER,
            idx       INTEGER,
            key       TEXT,
            message   TEXT NOT NULL
        );
        CREATE INDEX import_errors_source ON import_errors(source_id);
        CREATE TABLE records (
            id           INTEGER PRIMARY KEY,
            source_id    INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            idx          INTEGER NOT NULL,
            line         INTEGER,
            split        TEXT NOT NULL,
            content      TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            metadata     TEXT NOT NULL DEFAULT '{}',
            UNIQUE (source_id, idx)
        );
        CREATE INDEX records_split ON records(split);
        CREATE INDEX records_content_hash ON records(content_hash);
        CREATE TABLE reviews (
            record_id   INTEGER PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
            status      TEXT NOT NULL DEFAULT 'unreviewed',
            edited      TEXT,
            edited_hash TEXT,
            labels      TEXT NOT NULL DEFAULT '[]',
            note        TEXT NOT NULL DEFAULT '',
            reviewer    TEXT,
            updated_at  REAL
        );
        CREATE INDEX reviews_status ON reviews(status);
        -- one row per undo step; state: 'done', 'undone' (on the redo stack) or
        -- 'dropped' (undone, then a new decision cleared the redo stack)
        CREATE TABLE groups (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            action     TEXT NOT NULL,
            reviewer   TEXT,
            ts         REAL NOT NULL,
            n          INTEGER NOT NULL,
            state      TEXT NOT NULL DEFAULT 'done',
            changed_at REAL
        );
        CREATE INDEX groups_state ON groups(state, id);
        CREATE TABLE decisions (
            id        INTEGER PRIMARY KEY AUTOINCREMENT,
            grp       INTEGER NOT NULL REFERENCES groups(id),
            record_id INTEGER NOT NULL,
            action    TEXT NOT NULL,
            before    TEXT NOT NULL,
            after     TEXT NOT NULL,
            reviewer  TEXT,
            ts        REAL NOT NULL
        );
        CREATE INDEX decisions_grp ON decisions(grp);
        CREATE INDEX decisions_record ON decisions(record_id, id);
        CREATE TABLE scan_cache (
            scanner       TEXT NOT NULL,
            settings_hash TEXT NOT NULL,
            content_hash  TEXT NOT NULL,
            value         TEXT NOT NULL,
            PRIMARY KEY (scanner, settings_hash, content_hash)
        ) WITHOUT ROWID;
        CREATE TABLE scans (
            scanner  TEXT PRIMARY KEY,
            settings TEXT NOT NULL,
            result   TEXT NOT NULL,
            ts       REAL NOT NULL
        );
        """
    )
    conn.execute("INSERT INTO meta(key, value) VALUES ('created_at', ?)", (json.dumps(time.time()),))


#: ``_MIGRATIONS[v]`` upgrades a project from schema version ``v`` to ``v + 1``.
_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_0_to_1]
assert len(_MIGRATIONS) == SCHEMA_VERSION


# -- the lock --------------------------------------------------------------------------

_OPEN_IN_PROCESS: set[str] = set()  # lock paths held by Project objects of this process
_OPEN_GUARD = threading.Lock()


class _FileLock:
    """Exclusive, non-blocking lock on ``<project>.lock`` holding the owner's pid."""

    def __init__(self, project_path: str) -> None:
        self.project_path = project_path
        self.path = project_path + ".lock"
        self.key = os.path.normcase(os.path.realpath(self.path))
        self.fd: Optional[int] = None
        self.created = False

    def acquire(self) -> None:
        with _OPEN_GUARD:
            if self.key in _OPEN_IN_PROCESS:
                raise ProjectInUse(
                    f"Project {self.project_path} is in use: it is already open in this "
                    f"ftcurate process (pid {os.getpid()})",
                    self.project_path,
                    os.getpid(),
                )
            self.created = not os.path.exists(self.path)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ProjectError(f"Cannot create the lock file {self.path}: {exc.strerror or exc}") from exc
            try:
                _lock_fd(fd)
            except OSError:
                os.close(fd)
                pid = _read_pid(self.path)
                who = f"pid {pid}" if pid is not None else "pid unknown"
                if pid == os.getpid():
                    msg = f"Project {self.project_path} is in use: it is already open in this ftcurate process ({who})"
                else:
                    msg = f"Project {self.project_path} is in use by another ftcurate process ({who})"
                raise ProjectInUse(msg, self.project_path, pid) from None
            try:
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
                os.fsync(fd)
            except OSError:
                pass  # the pid is informative only; the lock itself is held
            self.fd = fd
            _OPEN_IN_PROCESS.add(self.key)

    def release(self, remove: bool = False) -> None:
        with _OPEN_GUARD:
            fd, self.fd = self.fd, None
            if fd is None:
                return
            _OPEN_IN_PROCESS.discard(self.key)
            if remove:
                # Only for lock files we created next to something that turned out
                # not to be a project: nobody else can be waiting on them.
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            else:
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            try:
                _unlock_fd(fd)
            except OSError:
                pass
            os.close(fd)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_fd(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        os.lseek(fd, 0, os.SEEK_SET)

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _read_pid(lock_path: str) -> Optional[int]:
    try:
        with open(lock_path, "rb") as fh:
            text = fh.read(64).decode("ascii", "replace").strip()
        return int(text.split()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None


# -- helpers ----------------------------------------------------------------------------


def _chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _unique_ids(ids: Iterable[int] | int) -> list[int]:
    if isinstance(ids, int):
        return [ids]
    seen: set[int] = set()
    out: list[int] = []
    for i in ids:
        i = int(i)
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def _norm_labels(labels: Iterable[str] | str) -> list[str]:
    if isinstance(labels, str):
        labels = [labels]
    out: list[str] = []
    for lab in labels:
        lab = str(lab).strip()
        if lab and lab not in out:
            out.append(lab)
    return out


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_jdump: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class _State(NamedTuple):
    """A record's full review state: what a decision's ``before``/``after`` hold.

    ``labels`` is kept as its JSON text so that states are hashable and cheap to compare."""

    status: str
    edited: Optional[str]  # edited content JSON, or None
    labels: str  # JSON list
    note: str
    split: str
    reviewer: Optional[str]
    updated_at: Optional[float]

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "edited": self.edited,
            "labels": json.loads(self.labels),
            "note": self.note,
            "split": self.split,
            "reviewer": self.reviewer,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_json(cls, blob: str) -> "_State":
        d = json.loads(blob)
        return cls(
            d["status"],
            d.get("edited"),
            _jdump(d.get("labels") or []),
            d.get("note") or "",
            d["split"],
            d.get("reviewer"),
            d.get("updated_at"),
        )


class _StateJson:
    """Serialises states for the decision log, once per distinct state."""

    def __init__(self) -> None:
        self.memo: dict[_State, str] = {}

    def __call__(self, st: _State) -> str:
        out = self.memo.get(st)
        if out is None:
            out = self.memo[st] = _jdump(st.to_dict())
        return out


_REVIEW_COLS = (
    "r.id, r.source_id, r.idx, r.line, r.split, r.content, r.metadata, s.path, "
    "v.status, v.edited, v.labels, v.note, v.reviewer, v.updated_at"
)
_REVIEW_FROM = "records r JOIN reviews v ON v.record_id = r.id JOIN sources s ON s.id = r.source_id"


def _row_to_stored(row: tuple) -> StoredRecord:
    (rid, source_id, idx, line, split, content, metadata, path, status, edited, labels, note, reviewer, updated_at) = row
    meta = json.loads(metadata) if metadata else {}
    original = Record.from_content(content, source=Source(path, line, idx), split=split, metadata=meta)
    edited_rec = None
    if edited is not None:
        edited_rec = Record.from_content(
            edited, source=Source(path, line, idx), split=split, metadata=json.loads(metadata) if metadata else {}
        )
    return StoredRecord(
        id=rid,
        source_id=source_id,
        index=idx,
        line=line,
        split=split,
        original=original,
        edited=edited_rec,
        status=status,
        labels=json.loads(labels) if labels else [],
        note=note or "",
        reviewer=reviewer,
        updated_at=updated_at,
    )


# -- the project -----------------------------------------------------------------------


class Project:
    """An open project file. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str, conn: sqlite3.Connection, lock: Optional[_FileLock], readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._conn: Optional[sqlite3.Connection] = conn
        self._lock = lock
        self._mutex = threading.RLock()

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
    def open(cls, path: str | os.PathLike, create: bool = False, readonly: bool = False) -> "Project":
        """Open a project (``create=True`` makes a new one if ``path`` does not exist).

        Raises :class:`ProjectInUse` when another process or Project object has it
        open for writing, and :class:`ProjectError` when the file is missing, is not
        an ftcurate project, or was written by a newer ftcurate.
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
                raise ProjectError(f"Cannot read {path}: {exc.strerror or exc}") from exc
            if header and header != _SQLITE_HEADER:
                raise ProjectError(f"{path} is not an ftcurate project (not an SQLite database)")
            if not header and not create:
                raise ProjectError(f"{path} is not an ftcurate project (empty file)")
        if readonly:
            return cls._open_readonly(path)

        lock = _FileLock(path)
        lock.acquire()
        conn: Optional[sqlite3.Connection] = None
        try:
            conn = _connect(path)
            version = _check_project(conn, path, allow_new=create)
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
                raise ProjectError(f"Cannot use write-ahead logging for {path}")
            conn.execute("PRAGMA synchronous=FULL")
            if version < SCHEMA_VERSION:
                _migrate(conn, version)
            return cls(path, conn, lock, readonly=False)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if not exists:  # a half-made new project goes again
                for suffix in ("", "-wal", "-shm", "-journal"):
                    try:
                        os.unlink(path + suffix)
                    except OSError:
                        pass
            # a lock file we created beside something we could not open goes again
            lock.release(remove=lock.created)
            if isinstance(exc, sqlite3.DatabaseError):
                raise ProjectError(f"Cannot open project {path}: {exc}") from exc
            raise

    @classmethod
    def _open_readonly(cls, path: str) -> "Project":
        uri = "file:" + quote(os.path.abspath(path).replace(os.sep, "/")) + "?mode=ro"
        try:
            conn = _connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise ProjectError(f"Cannot open project {path} read-only: {exc}") from exc
        try:
            version = _check_project(conn, path, allow_new=False)
            if version < SCHEMA_VERSION:
                raise ProjectError(
                    f"Project {path} uses an older schema (version {version}); open it once "
                    "for writing to upgrade it"
                )
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise ProjectError(f"Cannot open project {path}: {exc}") from exc
            raise
        return cls(path, conn, None, readonly=True)

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
        def __init__(self, project: "Project") -> None:
            self.project = project

        def __enter__(self) -> sqlite3.Connection:
            self.project._mutex.acquire()
            try:
                conn = self.project._writable()
                conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.project._mutex.release()
                raise
            self.conn = conn
            return conn

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            try:
                if exc_type is None:
                    try:
                        self.conn.execute("COMMIT")
                    except BaseException:
                        if self.conn.in_transaction:
                            self.conn.execute("ROLLBACK")
                        raise
                elif self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            finally:
                self.project._mutex.release()

    def _tx(self) -> "Project._Tx":
        """A write transaction, committed (durably) on normal exit, rolled back on error."""
        return Project._Tx(self)

    # -- meta ----------------------------------------------------------------------------

    def meta_get(self, key: str, default: Any = None) -> Any:
        with self._mutex:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def meta_set(self, key: str, value: Any) -> None:
        with self._tx() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, _jdump(value)))

    @property
    def reviewer(self) -> Optional[str]:
        return self.meta_get("reviewer")

    @reviewer.setter
    def reviewer(self, name: Optional[str]) -> None:
        name = name.strip() if isinstance(name, str) else None
        self.meta_set("reviewer", name or None)

    # -- sources and import --------------------------------------------------------------

    def add_source(
        self,
        path: str | os.PathLike,
        fmt: str,
        role: str = "train",
        errors: Iterable[dict] = (),
        total: int = 0,
        sha256: Optional[str] = None,
    ) -> int:
        """Register an imported file; ``errors`` are the bad records found while reading it
        (dicts with ``line``, ``index``, ``key``, ``message``). Returns the source id."""
        if role not in SOURCE_ROLES:
            raise ValueError(f"source role must be one of {SOURCE_ROLES}, not {role!r}")
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO sources(path, format, role, sha256, total, imported_at) VALUES (?, ?, ?, ?, ?, ?)",
                (os.fspath(path), fmt, role, sha256, int(total or 0), time.time()),
            )
            sid = int(cur.lastrowid)
            _insert_errors(conn, sid, errors)
        return sid

    def set_source_errors(self, source_id: int, errors: Iterable[dict], total: Optional[int] = None) -> None:
        """Replace a source's import errors (found while streaming it) and set its record total."""
        with self._tx() as conn:
            conn.execute("DELETE FROM import_errors WHERE source_id = ?", (source_id,))
            _insert_errors(conn, source_id, errors)
            if total is not None:
                conn.execute("UPDATE sources SET total = ? WHERE id = ?", (int(total), source_id))

    def sources(self) -> list[dict]:
        with self._mutex:
            rows = self._db.execute(
                """
                SELECT s.id, s.path, s.format, s.role, s.sha256, s.total, s.imported_at,
                       (SELECT COUNT(*) FROM records r WHERE r.source_id = s.id),
                       (SELECT COUNT(*) FROM import_errors e WHERE e.source_id = s.id)
                FROM sources s ORDER BY s.id
                """
            ).fetchall()
        keys = ("id", "path", "format", "role", "sha256", "total", "imported_at", "records", "errors")
        return [dict(zip(keys, row)) for row in rows]

    def import_errors(self, source_id: Optional[int] = None) -> list[dict]:
        sql = "SELECT source_id, line, idx, key, message FROM import_errors"
        args: tuple = ()
        if source_id is not None:
            sql += " WHERE source_id = ?"
            args = (source_id,)
        with self._mutex:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [dict(zip(("source_id", "line", "index", "key", "message"), row)) for row in rows]

    def add_records(
        self,
        source_id: int,
        records: Iterable[Record],
        progress: Optional[ProgressCallback] = None,
        cancel: Optional[CancelCheck] = None,
        batch: int = 5000,
    ) -> int:
        """Stream ``records`` into the project, ``batch`` at a time (one transaction each).

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

        def flush() -> None:
            nonlocal done
            with self._tx() as conn:
                last = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0])
                try:
                    conn.executemany(
                        "INSERT INTO records(source_id, idx, line, split, content, content_hash, metadata) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                except sqlite3.IntegrityError as exc:
                    raise ProjectError(
                        f"Cannot add records to source {source_id}: two records share a record index ({exc})"
                    ) from exc
                conn.execute(
                    "INSERT INTO reviews(record_id, status, labels, note) "
                    "SELECT id, 'unreviewed', '[]', '' FROM records WHERE id > ?",
                    (last,),
                )
            done += len(rows)
            rows.clear()
            rep.tick(done, "Importing records")

        try:
            rep.check()
            for rec in records:
                split = force_split or rec.split or "train"
                if split not in SPLITS:
                    raise ValueError(f"unknown split {split!r} (expected one of {SPLITS})")
                content = rec.content_json()
                rows.append(
                    (
                        source_id,
                        int(rec.source.index),
                        rec.source.line,
                        split,
                        content,
                        _sha256(content),
                        canonical_json(rec.metadata) if rec.metadata else "{}",
                    )
                )
                if len(rows) >= batch:
                    flush()
                    rep.check()
            if rows:
                flush()
        except BaseException:
            rows.clear()
            if done:
                with self._tx() as conn:
                    conn.execute("DELETE FROM records WHERE source_id = ? AND id > ?", (source_id, start_id))
            raise
        return done

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
                out[status] = int(n)
        return out

    def light_rows(self, ids: Optional[Sequence[int]] = None) -> Iterator[tuple]:
        """``(id, index, split, status, chars, messages, labels_json)`` per record, by id,
        without parsing records in Python (SQLite measures the content, edits applied):
        what the review table's columns need, cheap enough for a million rows."""
        content = "COALESCE(v.edited, r.content)"
        sql = (f"SELECT r.id, r.idx, r.split, v.status, length({content}), "
               f"json_array_length({content}, '$.messages'), v.labels "
               "FROM records r JOIN reviews v ON v.record_id = r.id")
        if ids is None:
            with self._mutex:
                rows = self._db.execute(sql + " ORDER BY r.id").fetchall()
            yield from rows
            return
        for chunk in _chunks(list(ids)):
            with self._mutex:
                rows = self._db.execute(sql + f" WHERE r.id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            yield from rows

    def ids_with_label(self, label: str) -> list[int]:
        """Ids (ascending) of the records that carry ``label``."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT v.record_id FROM reviews v, json_each(v.labels) j WHERE v.labels != '[]' AND j.value = ? "
                "ORDER BY v.record_id", (str(label).strip(),)).fetchall()
        return [int(r[0]) for r in rows]

    def all_labels(self) -> dict[str, int]:
        """Every label in use, with how many records carry it."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT j.value, COUNT(*) FROM reviews v, json_each(v.labels) j WHERE v.labels != '[]' "
                "GROUP BY j.value ORDER BY j.value").fetchall()
        return {str(k): int(n) for k, n in rows}

    def get(self, record_id: int) -> StoredRecord:
        with self._mutex:
            row = self._db.execute(f"SELECT {_REVIEW_COLS} FROM {_REVIEW_FROM} WHERE r.id = ?", (record_id,)).fetchone()
        if row is None:
            raise KeyError(f"no record with id {record_id} in project {self.path}")
        return _row_to_stored(row)

    def get_many(self, ids: Iterable[int]) -> list[StoredRecord]:
        """Records for ``ids``, in that order; KeyError if any is missing."""
        ids = [int(i) for i in ids]
        found: dict[int, StoredRecord] = {}
        with self._mutex:
            for chunk in _chunks(sorted(set(ids))):
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(f"SELECT {_REVIEW_COLS} FROM {_REVIEW_FROM} WHERE r.id IN ({marks})", chunk):
                    found[row[0]] = _row_to_stored(row)
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"no record with id {_few(missing)} in project {self.path}")
        return [found[i] for i in ids]

    def iter_records(
        self,
        status: Optional[str] = None,
        split: Optional[str] = None,
        source_id: Optional[int] = None,
        batch: int = 2000,
    ) -> Iterator[StoredRecord]:
        """Matching records ordered by id, fetched ``batch`` at a time."""
        cond, args = self._filters(status, split, source_id)
        sql = f"SELECT {_REVIEW_COLS} FROM {_REVIEW_FROM} WHERE r.id > ?"
        if cond:
            sql += " AND " + cond
        sql += " ORDER BY r.id LIMIT ?"
        last = 0
        batch = max(1, int(batch))
        while True:
            with self._mutex:
                rows = self._db.execute(sql, [last, *args, batch]).fetchall()
            for row in rows:
                yield _row_to_stored(row)
            if len(rows) < batch:
                return
            last = rows[-1][0]

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

    def _states(self, conn: sqlite3.Connection, ids: list[int]) -> dict[int, _State]:
        """Full review state of each record (raises KeyError for unknown ids)."""
        out: dict[int, _State] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                "SELECT v.record_id, v.status, v.edited, v.labels, v.note, r.split, v.reviewer, v.updated_at "
                f"FROM reviews v JOIN records r ON r.id = v.record_id WHERE v.record_id IN ({marks})",
                chunk,
            ):
                out[row[0]] = _State(row[1], row[2], row[3] or "[]", row[4] or "", row[5], row[6], row[7])
        if len(out) != len(ids):
            missing = [i for i in ids if i not in out]
            raise KeyError(f"no record with id {_few(missing)} in project {self.path}")
        return out

    @staticmethod
    def _write_states(
        conn: sqlite3.Connection, states: dict[int, _State], befores: Optional[dict[int, _State]] = None
    ) -> None:
        """Write review states (and splits that changed), one UPDATE per distinct state."""
        by_state: dict[_State, list[int]] = {}
        by_split: dict[str, list[int]] = {}
        for rid, st in states.items():
            by_state.setdefault(st, []).append(rid)
            if befores is None or befores[rid].split != st.split:
                by_split.setdefault(st.split, []).append(rid)
        for st, rids in by_state.items():
            edited_hash = _sha256(st.edited) if st.edited is not None else None
            head = (st.status, st.edited, edited_hash, st.labels, st.note, st.reviewer, st.updated_at)
            for chunk in _chunks(rids):
                conn.execute(
                    "UPDATE reviews SET status = ?, edited = ?, edited_hash = ?, labels = ?, note = ?, "
                    f"reviewer = ?, updated_at = ? WHERE record_id IN ({','.join('?' * len(chunk))})",
                    (*head, *chunk),
                )
        for split, rids in by_split.items():
            for chunk in _chunks(rids):
                conn.execute(
                    f"UPDATE records SET split = ? WHERE id IN ({','.join('?' * len(chunk))})", (split, *chunk)
                )

    def _decide(
        self,
        action: str,
        ids: Iterable[int] | int,
        change: Callable[[_State], _State],
        reviewer: Optional[str],
        per_record: Optional[Callable[[int, _State], _State]] = None,
    ) -> int:
        """Apply ``change`` to each record's review state as one undo group (one transaction).
        ``per_record(record_id, state)``, when given, replaces ``change`` for records whose
        new state depends on which record it is."""
        ids = _unique_ids(ids)
        if not ids:
            return 0
        who = reviewer if reviewer is not None else self.reviewer
        now = time.time()
        with self._tx() as conn:
            befores = self._states(conn, ids)
            changed: dict[_State, _State] = {}  # many records share a state: change each once
            afters: dict[int, _State] = {}
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
            dump = _StateJson()
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
        labels_json = _jdump(_norm_labels(labels))
        return self._decide("set_labels", ids, lambda st: st._replace(labels=labels_json), reviewer)

    def add_label(self, ids: Iterable[int] | int, label: str, reviewer: Optional[str] = None) -> int:
        new = _norm_labels([label])

        def change(st: _State) -> _State:
            return st._replace(labels=_jdump(_norm_labels(json.loads(st.labels) + new)))

        return self._decide("add_label", ids, change, reviewer)

    def remove_label(self, ids: Iterable[int] | int, label: str, reviewer: Optional[str] = None) -> int:
        label = str(label).strip()

        def change(st: _State) -> _State:
            return st._replace(labels=_jdump([lab for lab in json.loads(st.labels) if lab != label]))

        return self._decide("remove_label", ids, change, reviewer)

    def set_note(self, record_id: int, note: str, reviewer: Optional[str] = None) -> int:
        note = note or ""
        return self._decide("set_note", [record_id], lambda st: st._replace(note=note), reviewer)

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
            states: dict[int, _State] = {}
            parsed: dict[str, _State] = {}
            for rid, blob in conn.execute(f"SELECT record_id, {col} FROM decisions WHERE grp = ? ORDER BY id {order}", (grp,)):
                st = parsed.get(blob)
                if st is None:
                    st = parsed[blob] = _State.from_json(blob)
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
        effect; ``dropped`` when it can no longer be redone."""
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
        return [
            {
                "id": did,
                "group": grp,
                "record_id": rid,
                "action": action,
                "before": json.loads(before),
                "after": json.loads(after),
                "reviewer": reviewer,
                "ts": ts,
                "undone": state != "done",
                "dropped": state == "dropped",
            }
            for did, grp, rid, action, before, after, reviewer, ts, state in rows
        ]

    # -- scan cache and results -------------------------------------------------------------

    def cache_get_many(self, scanner: str, settings_hash: str, content_hashes: Iterable[str]) -> dict[str, Any]:
        """Cached values for those content hashes that have one."""
        hashes = list(dict.fromkeys(content_hashes))
        out: dict[str, Any] = {}
        with self._mutex:
            for chunk in _chunks(hashes):
                marks = ",".join("?" * len(chunk))
                for h, value in self._db.execute(
                    "SELECT content_hash, value FROM scan_cache WHERE scanner = ? AND settings_hash = ? "
                    f"AND content_hash IN ({marks})",
                    [scanner, settings_hash, *chunk],
                ):
                    out[h] = json.loads(value)
        return out

    def cache_put_many(self, scanner: str, settings_hash: str, items: dict[str, Any]) -> None:
        if not items:
            return
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO scan_cache(scanner, settings_hash, content_hash, value) VALUES (?, ?, ?, ?)",
                ((scanner, settings_hash, h, _jdump(v)) for h, v in items.items()),
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
                (scanner, _jdump(settings), _jdump(result), time.time()),
            )

    def list_scans(self) -> list[str]:
        with self._mutex:
            return [r[0] for r in self._db.execute("SELECT scanner FROM scans ORDER BY scanner").fetchall()]

    def load_scan(self, scanner: str) -> Optional[tuple[dict, Any]]:
        with self._mutex:
            row = self._db.execute("SELECT settings, result FROM scans WHERE scanner = ?", (scanner,)).fetchone()
        if row is None:
            return None
        return json.loads(row[0]), json.loads(row[1])


# -- module helpers ----------------------------------------------------------------------


def _insert_errors(conn: sqlite3.Connection, source_id: int, errors: Iterable[dict]) -> None:
    conn.executemany(
        "INSERT INTO import_errors(source_id, line, idx, key, message) VALUES (?, ?, ?, ?, ?)",
        ((source_id, e.get("line"), e.get("index"), e.get("key"), str(e.get("message", ""))) for e in errors),
    )


def _connect(target: str, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _check_project(conn: sqlite3.Connection, path: str, allow_new: bool) -> int:
    """Schema version of an ftcurate project (0 for a brand-new empty database)."""
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        n_objects = int(conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise ProjectError(f"{path} is not an ftcurate project ({exc})") from exc
    if app_id == 0 and version == 0 and n_objects == 0:
        if allow_new:
            return 0
        raise ProjectError(f"{path} is not an ftcurate project (empty database)")
    if app_id != APPLICATION_ID:
        raise ProjectError(f"{path} is not an ftcurate project (an SQLite database of another application)")
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"Project {path} was created by a newer ftcurate (schema version {version}; this "
            f"version reads up to {SCHEMA_VERSION}). Please update ftcurate to open it."
        )
    return version


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for v in range(version, SCHEMA_VERSION):
            _MIGRATIONS[v](conn)
            conn.execute(f"PRAGMA user_version = {v + 1}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _few(ids: list[int], n: int = 5) -> str:
    shown = ", ".join(str(i) for i in ids[:n])
    return shown + (f" (and {len(ids) - n} more)" if len(ids) > n else "")
