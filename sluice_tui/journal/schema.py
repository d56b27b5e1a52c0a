"""The journal's tables, opening a file for writing or reading, and migrations.

``PRAGMA user_version`` holds the schema version.  ``MIGRATIONS[n]`` takes a
file from version n - 1 to n; a released step is never edited, a change is a
new step.  A file from a newer sluice-tui is refused, not guessed at.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sluice_tui.journal.errors import JournalError, describe

SCHEMA_VERSION = 2
# A reader takes a file of an older schema as it is: what a step added (the
# checkpoints of step 2) is only missing, and then not used.
READABLE_FROM = 1
FORMAT = "sluice-tui journal"

MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
        # One row per writer transaction: the raw event messages as received,
        # joined by commas and compressed (see records.py).  received: the
        # receive times, microseconds after `first`; sizes: each record's length;
        # workers: the worker events, packed apart the same way (or NULL).
        "CREATE TABLE batches (id INTEGER PRIMARY KEY, first REAL NOT NULL, last REAL NOT NULL,"
        " count INTEGER NOT NULL, received BLOB NOT NULL, sizes BLOB NOT NULL,"
        " body BLOB NOT NULL, workers BLOB)",
        "CREATE INDEX batches_by_last ON batches (last)",
        # A job changed around batch `batch` (the one before or after may hold
        # the record): its state and name then, and when it was first seen.  A
        # job's latest row is what counts.  Rows only ever go in at the end,
        # which keeps writing cheap however many jobs the journal holds (an
        # upsert by random id touches pages all over the table).
        "CREATE TABLE job_changes (batch INTEGER NOT NULL, id TEXT NOT NULL,"
        " state TEXT NOT NULL, name TEXT, first_seen REAL NOT NULL,"
        " PRIMARY KEY (batch, id)) WITHOUT ROWID",
    ),
    2: (
        # Checkpoints: every job's whole state, so a restart loads jobs instead
        # of replaying all their events (see checkpoint.py).  A checkpoint holds
        # the jobs that changed since its base (NULL: every job the store held);
        # it counts once `finished` is set.  start_batch: the batch holding its
        # start mark; bad: the store's bad-event counts then (JSON).
        "CREATE TABLE checkpoints (id INTEGER PRIMARY KEY, base INTEGER, start_batch INTEGER"
        " NOT NULL, started REAL NOT NULL, finished REAL, jobs INTEGER NOT NULL DEFAULT 0,"
        " bad TEXT NOT NULL DEFAULT '{}')",
        # One row per chunk of jobs copied at one cut of the record stream: the
        # chunk's mark is a note in batch `batch`; body: compressed JSON.
        "CREATE TABLE checkpoint_chunks (checkpoint INTEGER NOT NULL, chunk INTEGER NOT NULL,"
        " batch INTEGER NOT NULL, jobs INTEGER NOT NULL, body BLOB NOT NULL,"
        " PRIMARY KEY (checkpoint, chunk))",
    ),
}

# Tests set this to simulate a full disk honestly: SQLite then fails with
# SQLITE_FULL exactly as on a full file system.
MAX_PAGE_COUNT: int | None = None
WRITER_CACHE_KB = 32 * 1024
WAL_BYTES = 1024 * 1024
WAL_PAGES = 256  # of 4 KB


@contextmanager
def _closed_on_failure(conn: sqlite3.Connection, path: Path) -> Iterator[None]:
    """Close ``conn`` if setting it up fails, and say why in one line."""
    try:
        yield
    except JournalError:
        conn.close()
        raise
    except (OSError, sqlite3.Error) as exc:
        conn.close()
        raise JournalError(describe(path, exc)) from None


def open_for_writing(path: Path, broker: str) -> sqlite3.Connection:
    """Open (creating if need be) and bring up to date; raises JournalError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            # Created private: the journal holds task arguments and results.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    except (OSError, sqlite3.Error) as exc:
        raise JournalError(describe(path, exc)) from None
    with _closed_on_failure(conn, path):
        _configure(conn)
        version = _version(conn)
        if version > SCHEMA_VERSION:
            raise JournalError(_newer(path, version))
        if version == 0:
            if _has_tables(conn):
                raise JournalError(
                    f"{path} is an SQLite file, but not a sluice-tui history journal"
                )
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes before the first table
        if version < SCHEMA_VERSION:
            _migrate(conn, version, broker)
        _check_format(conn, path)
    return conn


def open_for_reading(path: Path) -> sqlite3.Connection:
    """Open an existing journal read-only; raises JournalError."""
    if not path.is_file():
        raise JournalError(f"no history journal at {path}")
    if path.stat().st_size == 0:
        raise JournalError(f"{path} is empty: it holds no sluice-tui history")
    try:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
    except (OSError, sqlite3.Error) as exc:
        raise JournalError(describe(path, exc)) from None
    with _closed_on_failure(conn, path):
        conn.execute("PRAGMA query_only = ON")
        version = _version(conn)
        if version > SCHEMA_VERSION:
            raise JournalError(_newer(path, version))
        if version == 0:
            raise JournalError(f"{path} holds no sluice-tui history")
        if version < READABLE_FROM:
            raise JournalError(
                f"{path} was written by an older sluice-tui (schema {version}); open it once "
                "for writing (sluice-tui or collect with --history) to bring it up to date"
            )
        _check_format(conn, path)
    return conn


def has_checkpoints(conn: sqlite3.Connection) -> bool:
    """Whether the file has schema step 2 (a reader may open an older one)."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'"
    ).fetchone()
    return found is not None


def _configure(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise JournalError(f"SQLite could not use write-ahead logging here (got {mode})")
    # NORMAL in WAL mode: a power cut may lose the last commits, never consistency.
    conn.execute("PRAGMA synchronous = NORMAL")
    # A bigger page cache than the 2 MB default: pruning and restoring read
    # across a large journal's job rows.
    conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KB}")
    # The write-ahead log is copied back into the file every ~1 MB (SQLite's
    # default is ~4 MB) and cut back to 1 MB after: its size is shown with the
    # file's, and a log four times the file's size alarmed a trial user.
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_BYTES}")
    if MAX_PAGE_COUNT is not None:
        conn.execute(f"PRAGMA max_page_count = {int(MAX_PAGE_COUNT)}")


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0


def _newer(path: Path, version: int) -> str:
    return (
        f"{path} was written by a newer sluice-tui (schema {version}; this one reads up to "
        f"{SCHEMA_VERSION}): upgrade sluice-tui, or pass --history with another path"
    )


def _migrate(conn: sqlite3.Connection, version: int, broker: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
        if version == 0:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("format", FORMAT), ("broker", broker), ("created", time.time())],
            )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _check_format(conn: sqlite3.Connection, path: Path) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    if row is None or row[0] != FORMAT:
        raise JournalError(f"{path} is an SQLite file, but not a sluice-tui history journal")
