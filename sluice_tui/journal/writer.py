"""The journal's one writer thread: pending records become one transaction at a time.

The receiver only appends to a list; this thread takes what is there every
BATCH_INTERVAL (sooner past BATCH_RECORDS), compresses it (zlib lets go of
the GIL meanwhile) and, in one transaction, inserts the batch and updates the
rows of the jobs that changed since the last one.  A job's change may be
counted in the batch before or after the one holding its record (the store
applies a record a moment after it is appended), so readers start one batch
early (see replay.py) and pruning keeps one batch of slack.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice_tui.journal.errors import describe
from sluice_tui.journal.records import pack
from sluice_tui.model.store import JobStore

BATCH_INTERVAL = 0.5
BATCH_RECORDS = 5_000
POLL_INTERVAL = 0.05
PRUNE_INTERVAL = 300.0
PRUNE_CHUNK = 50_000  # rows deleted per prune transaction; the rest waits a cycle
ROWS_CHUNK = 2_000  # job rows read per store lock: the receiver never waits long

UPSERT_JOB = (
    "INSERT INTO jobs (id, first_batch, last_batch, state, name, seen) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET last_batch = excluded.last_batch, state = excluded.state,"
    " name = coalesce(excluded.name, jobs.name), seen = excluded.seen"
)


@dataclass(frozen=True)
class Retention:
    """How much history a journal keeps: jobs seen in the last ``max_age`` seconds, at most
    ``max_jobs`` of them (the most recently seen)."""

    max_age: float = 7 * 86400
    max_jobs: int = 1_000_000


class BatchWriter:
    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        store: JobStore,
        pending: list[tuple[Any, float]],
        retention: Retention,
        on_failure: Callable[[str], None],
    ) -> None:
        self.conn = conn
        self.path = path
        self.store = store
        self.pending = pending
        self.retention = retention
        self.on_failure = on_failure
        self.version = store.version  # what the journal already holds (a restore)
        self.last_batch: int | None = conn.execute("SELECT max(id) FROM batches").fetchone()[0]
        self.batches_written = 0
        self.last_commit: float | None = None  # epoch seconds
        self._next_prune = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-journal", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Write what is pending, then end; whether the thread ended within ``timeout``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        pending = self.pending
        last_write = time.monotonic()
        try:
            while True:
                stopping = self._stop.wait(POLL_INTERVAL)
                now = time.monotonic()
                if stopping or len(pending) >= BATCH_RECORDS or now - last_write >= BATCH_INTERVAL:
                    last_write = now
                    self.write_batch()
                if stopping:
                    return
                if now >= self._next_prune:
                    more = self.prune()
                    self._next_prune = now + (BATCH_INTERVAL if more else PRUNE_INTERVAL)
        except (sqlite3.Error, OSError, MemoryError) as exc:
            self.on_failure(describe(self.path, exc))
        except Exception as exc:  # a bug here must not take the monitor down
            self.on_failure(f"history journal {self.path}: {type(exc).__name__}: {exc}")

    def write_batch(self) -> None:
        pending = self.pending
        count = len(pending)
        items = pending[:count]
        del pending[:count]  # appends made meanwhile stay: slicing and del hold the GIL
        packed = pack(items) if items else None
        changes = self.store.changes_since(self.version)
        self.version = changes.version
        if packed is None and (not changes.job_ids or self.last_batch is None):
            return
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if packed is not None:
                cursor = conn.execute(
                    "INSERT INTO batches (first, last, count, received, sizes, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        packed.first,
                        packed.last,
                        packed.count,
                        packed.received,
                        packed.sizes,
                        packed.body,
                    ),
                )
                self.last_batch = cursor.lastrowid
            now = time.time()
            conn.executemany(UPSERT_JOB, self._job_rows(changes.job_ids, self.last_batch, now))
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_write', ?)", (now,)
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.batches_written += 1
        self.last_commit = now

    def _job_rows(self, job_ids, batch: int, now: float):
        store = self.store
        if job_ids is None:  # fell behind the change feed: every job
            _, rows = store.all_rows()
            for row in rows:
                yield row.id, batch, batch, row.state.value, row.name, now
            return
        ids = iter(job_ids)
        while chunk := list(itertools.islice(ids, ROWS_CHUNK)):
            for job_id, row in store.rows(chunk).items():
                if row is not None:  # an evicted job keeps the row it had
                    yield job_id, batch, batch, row.state.value, row.name, now

    def prune(self) -> bool:
        """Drop what retention no longer keeps; whether more is left to drop."""
        conn = self.conn
        cutoff = time.time() - self.retention.max_age
        conn.execute("BEGIN IMMEDIATE")
        try:
            dropped = conn.execute(
                "DELETE FROM jobs WHERE id IN"
                " (SELECT id FROM jobs WHERE seen < ? ORDER BY seen LIMIT ?)",
                (cutoff, PRUNE_CHUNK),
            ).rowcount
            excess = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
            excess -= self.retention.max_jobs
            if excess > 0:
                dropped += conn.execute(
                    "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs ORDER BY seen LIMIT ?)",
                    (min(excess, PRUNE_CHUNK),),
                ).rowcount
            oldest = conn.execute("SELECT min(first_batch) FROM jobs").fetchone()[0]
            if oldest is None:
                gone = conn.execute("DELETE FROM batches WHERE last < ?", (cutoff,)).rowcount
            else:
                # One batch of slack before the oldest kept job's first (see above).
                gone = conn.execute("DELETE FROM batches WHERE id < ?", (oldest - 1,)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if dropped or gone:
            conn.execute("PRAGMA incremental_vacuum")  # give the freed pages back to the disk
        return dropped >= PRUNE_CHUNK or excess > PRUNE_CHUNK
