"""The project file's schema: migrations, and the check that a file holds exactly it.

A project file is an SQLite database with ``PRAGMA application_id`` "FTCU" and
``PRAGMA user_version`` = its schema version. ``MIGRATIONS[v]`` upgrades version ``v`` to
``v + 1``; to add a table, write the next migration and bump :data:`SCHEMA_VERSION` - the
check below needs no change, because the schema it expects for a version is the one the
migrations build (run in memory, once per version).

The check runs on every open, before anything reads the data: a project file from an
unknown source could carry triggers (run on every write - one wiped the decision history),
views or tables ftcurate did not create, or changed columns. Such a file is refused with a
message that names what does not belong. Connections also run with
``PRAGMA trusted_schema=OFF``, so no function with side effects can run from the schema.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from typing import Callable

from .errors import ProjectDamaged, ProjectError, ProjectSchemaError, explain, sqlite_code

SCHEMA_VERSION = 3

#: ``PRAGMA application_id`` of an ftcurate project ("FTCU").
APPLICATION_ID = 0x46544355


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements one by one (``executescript`` would COMMIT the
    migration's transaction). Statements must not contain ``;`` themselves."""
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    for stmt in "\n".join(lines).split(";"):
        if stmt.strip():
            conn.execute(stmt)


def _migrate_0_to_1(conn: sqlite3.Connection) -> None:
    run_script(
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


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Import state and capped import errors per source.

    ``state``: 'importing' until the last record and the error summary are stored, then
    'complete' (a killed import stays 'importing': shown as incomplete, finished by the next
    import of the same file). ``options``: the reader options the file was read with
    (``{"mapping": ...}``), to tell "the same import" from another. ``error_counts``: all
    errors per key (JSON; NULL: count the stored rows); ``errors_left_out``: errors beyond
    the details kept in ``import_errors``."""
    run_script(
        conn,
        """
        ALTER TABLE sources ADD COLUMN state TEXT NOT NULL DEFAULT 'complete';
        ALTER TABLE sources ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE sources ADD COLUMN error_counts TEXT;
        ALTER TABLE sources ADD COLUMN errors_left_out INTEGER NOT NULL DEFAULT 0;
        -- schema 1 set a source's total only when its import finished: a total of 0 is
        -- an import that was killed (a finished import of an empty file is refused earlier)
        UPDATE sources SET state = 'importing' WHERE total = 0
        """
    )


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Dismissed findings per record: the findings a reviewer judged wrong ("not a duplicate
    of ...", "not a leak of ...", "not an outlier"), part of the record's review state (so a
    dismissal is a decision: undone, redone and logged like one). JSON list of
    ``{"kind", "other", "reason"}`` where ``other`` is the content hash of the other record
    of a pair ("" for single-record findings): a rescan finds the same pair again and it
    stays dismissed."""
    run_script(conn, "ALTER TABLE reviews ADD COLUMN dismissed TEXT NOT NULL DEFAULT '[]'")


#: ``MIGRATIONS[v]`` upgrades a project from schema version ``v`` to ``v + 1``.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_0_to_1, _migrate_1_to_2, _migrate_2_to_3]
assert len(MIGRATIONS) == SCHEMA_VERSION


# -- the expected schema -------------------------------------------------------------------------

Shape = dict[tuple[str, str], tuple]


def schema_shape(conn: sqlite3.Connection) -> Shape:
    """``(type, name) -> structure`` of every schema object a user could have made: tables
    (columns with types, defaults, keys and hidden/generated flags; foreign keys; indexes),
    indexes (their table and columns), triggers and views (their table). SQLite's internal
    objects (``sqlite_*``) are left out."""
    out: Shape = {}
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    for kind, name, table, sql in rows:
        if str(name).startswith("sqlite_"):
            continue
        if kind == "table":
            if str(sql or "").lstrip()[:14].upper() == "CREATE VIRTUAL":
                out[(kind, name)] = ("virtual",)
                continue
            cols = tuple(tuple(r) for r in conn.execute("SELECT * FROM pragma_table_xinfo(?)", (name,)))
            fks = tuple(tuple(r) for r in conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (name,)))
            idx = tuple(sorted(tuple(r[1:]) for r in conn.execute("SELECT * FROM pragma_index_list(?)", (name,))))
            out[(kind, name)] = (cols, fks, idx)
        elif kind == "index":
            cols = tuple(tuple(r) for r in conn.execute("SELECT * FROM pragma_index_xinfo(?)", (name,)))
            out[(kind, name)] = (table, cols)
        else:  # trigger, view
            out[(kind, name)] = (table,)
    return out


@functools.lru_cache(maxsize=None)
def expected_schema(version: int) -> Shape:
    """The shape a project of schema ``version`` has: the migrations run on an empty
    in-memory database."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("BEGIN")
        for v in range(version):
            MIGRATIONS[v](conn)
        conn.execute("COMMIT")
        return schema_shape(conn)
    finally:
        conn.close()


def _describe(key: tuple[str, str], shape: tuple) -> str:
    kind, name = key
    if kind in ("trigger", "index") and shape and isinstance(shape[0], str):
        return f"{kind} {name!r} on {shape[0]}"
    return f"{kind} {name!r}"


def schema_problems(conn: sqlite3.Connection, version: int) -> list[str]:
    """What differs between the file's schema and the one ftcurate makes for ``version``
    (empty when they match)."""
    want = expected_schema(version)
    have = schema_shape(conn)
    problems = [f"{_describe(k, have[k])} (not created by ftcurate)" for k in have if k not in want]
    problems += [f"{_describe(k, have[k])} (changed: not as created by ftcurate)"
                 for k in have if k in want and have[k] != want[k]]
    problems += [f"missing {_describe(k, want[k])}" for k in want if k not in have]
    # foreign objects first: they are what can run code
    return sorted(problems, key=lambda p: (not p.startswith("trigger"), "not created" not in p, p))


def check_project(conn: sqlite3.Connection, path: str, allow_new: bool) -> int:
    """Schema version of an ftcurate project (0 for a brand-new empty database). Raises
    :class:`ProjectError` when the file is not a project, is newer than this ftcurate, or
    its schema holds objects ftcurate did not create."""
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        n_objects = int(conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        code = sqlite_code(exc)
        if code == "SQLITE_NOTADB":
            raise ProjectError(f"{path} is not an ftcurate project ({exc})") from exc
        if code.startswith("SQLITE_CORRUPT"):
            raise ProjectDamaged(f"{path} is damaged and cannot be opened ({exc}); restore a backup") from exc
        raise explain(exc, path, "open") from exc
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
    try:
        problems = schema_problems(conn, version)
    except sqlite3.DatabaseError as exc:
        raise ProjectSchemaError(f"Project {path} has a damaged schema ({exc}); ftcurate will not open it") from exc
    if problems:
        more = f" and {len(problems) - 4} more" if len(problems) > 4 else ""
        raise ProjectSchemaError(
            f"Project {path} was changed outside ftcurate and is refused: {'; '.join(problems[:4])}{more}. "
            "Schema objects not created by ftcurate could run code or lose data when the project is used; "
            "open only project files from a source you trust."
        )
    return version


def migrate(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for v in range(version, SCHEMA_VERSION):
            MIGRATIONS[v](conn)
            conn.execute(f"PRAGMA user_version = {v + 1}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
