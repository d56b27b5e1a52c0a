"""The journal's batches: pending records become one transaction at a time.

The writer process (process.py) appends each record it gets to a list and
applies it to its replica store; every BATCH_INTERVAL (sooner past
BATCH_RECORDS) what is there is compressed and, in one transaction, the
batch goes in with a row for each job its records changed, and the chunks
of a checkpoint whose marks it holds (checkpointer.py).  Journals written
before there was a writer process may hold a job's row one batch before or
after its record's (a thread of the monitor wrote them while the store
applied the records), so readers start one batch early (see replay.py) and
pruning keeps one batch of slack.

Pruning keeps the batches as before, by the retention of jobs, not only those
after the newest checkpoint: ``dump --history --since`` and a reader with
room for more jobs than the writer held replay jobs no checkpoint holds, and
a follower reads batches anyway.  Checkpoints older than the newest complete
full one go as soon as it completes; ones left unfinished go at the next prune.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sluice_tui.journal.checkpointer import Checkpointer
from sluice_tui.journal.records import pack
from sluice_tui.model.store import JobStore

BATCH_INTERVAL = 0.5
BATCH_RECORDS = 5_000
POLL_INTERVAL = 0.05  # how often an idle writer process looks whether a batch is due
PRUNE_INTERVAL = 300.0

INSERT_CHANGE = (
    "INSERT OR REPLACE INTO job_changes (batch, id, state, name, first_seen) VALUES (?, ?, ?, ?, ?)"
)
# Every row of a batch in one statement, from a JSON list of [id, state, name,
# first_seen]: executemany lets go of the GIL around each row's step, and when
# the writer was a thread beside a busy receiver, each taking back cost a
# switch interval (5 ms): 10 000 rows took a minute.
# (A float's repr reads back exactly: the restart test in test_journal_core
# compares every job's first_seen.)
INSERT_CHANGES = (
    "INSERT OR REPLACE INTO job_changes (batch, id, state, name, first_seen)"
    " SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'),"
    " json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?)"
)
# A job's first batch is found by its first_seen time (see replay.py), which
# the store takes a moment after the receive time of the job's first record
# (microseconds; more on a busy machine), and receive times from several
# threads may straddle a batch boundary: this much before first_seen is searched.
STRADDLE = 0.25


@dataclass(frozen=True)
class Retention:
    """How much history a journal keeps: jobs seen in the last ``max_age`` seconds, at most
    ``max_jobs`` of them (the most recently seen)."""

    max_age: float = 7 * 86400
    max_jobs: int = 1_000_000


class BatchWriter:
    """Commits the pending records as batches, with a row for each job they changed.

    Driven by the writer process's one thread (process.py) between the
    records it applies to its replica store: :meth:`tick` when it may be
    time, :meth:`write_batch` to flush.  Raises what SQLite or the disk
    raise; the caller says why and stops.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        store: JobStore,
        pending: list[tuple[Any, float]],
        retention: Retention,
        checkpoints: Checkpointer,
        *,
        report_bad: Callable[[str, str], None],
        json_rows: bool,
    ) -> None:
        self.conn = conn
        self.report_bad = report_bad  # the monitor's count of bad events
        self.checkpoints = checkpoints
        self.store = store
        self.pending = pending
        self.retention = retention
        self.version = store.version  # what the journal already holds (a restore)
        self.last_batch: int | None = conn.execute("SELECT max(id) FROM batches").fetchone()[0]
        self._json_rows = json_rows  # the monitor looked: writer.has_json
        # A job made and forgotten (evicted) between two batches would get no
        # row, and no restore would find it: a batch is due before the store
        # could have filled up with newer jobs since the last one.
        self.batch_records = max(1, min(BATCH_RECORDS, store.max_jobs // 2))
        self.batches_written = 0
        self.last_commit: float | None = None  # epoch seconds
        self._last_write = time.monotonic()
        self._next_prune = time.monotonic()

    def due(self, now: float) -> bool:
        """Whether a batch is due (``now``: monotonic seconds)."""
        return len(self.pending) >= self.batch_records or now - self._last_write >= BATCH_INTERVAL

    def tick(self, now: float) -> None:
        """Commit a batch if one is due, start or hurry a checkpoint, prune when it is time."""
        if self.due(now):
            self._last_write = now
            self.checkpoints.poll(self.write_batch(), now)
        if now >= self._next_prune:
            self.prune()
            self._next_prune = now + PRUNE_INTERVAL

    def write_batch(self) -> int:
        """Commit what is pending; the number of records written."""
        pending = self.pending
        count = len(pending)
        items = pending[:count]
        del pending[:count]  # appends made meanwhile stay: slicing and del hold the GIL
        checkpoints = self.checkpoints
        cuts = checkpoints.take_cuts(items) if checkpoints.plan is not None else None
        packed = pack(items) if items else None
        changes = self.store.changes_since(self.version)
        self.version = changes.version
        unchanged = changes.job_ids is not None and not changes.job_ids  # None: re-read all
        if packed is None and (unchanged or self.last_batch is None):
            return count
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if packed is not None:
                cursor = conn.execute(
                    "INSERT INTO batches (first, last, count, received, sizes, body, workers)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    packed.row(),
                )
                self.last_batch = cursor.lastrowid
                if cuts:
                    checkpoints.write(conn, cuts, self.last_batch)
            now = time.time()
            self._insert_changes(self._job_rows(changes.job_ids), self.last_batch)
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
        return count

    def _job_rows(self, job_ids: Iterable[str] | None) -> list[tuple[str, str, str | None, float]]:
        """(id, state, name, first_seen) of the jobs that changed; None: of every job."""
        store = self.store
        if job_ids is None:  # fell behind the change feed: every job
            _, rows = store.all_rows()
            return [(row.id, row.state.value, row.name, row.first_seen) for row in rows]
        # An evicted job is not among them: its last row stands.
        return [
            (job_id, state.value, name, first_seen)
            for job_id, (state, name, first_seen) in store.summaries(job_ids).items()
        ]

    def _insert_changes(self, rows: list[tuple[str, str, str | None, float]], batch: int) -> None:
        text = json.dumps(rows, ensure_ascii=False)
        try:
            text.encode()
        except UnicodeEncodeError:
            # An id or name with a lone surrogate (valid JSON: "\ud800") would
            # go into the file as invalid UTF-8, and no restore could read it.
            rows = self._drop_unwritable(rows)
            text = json.dumps(rows, ensure_ascii=False)
        if not rows:
            return
        if self._json_rows:
            self.conn.execute(INSERT_CHANGES, (batch, text))
        else:
            self.conn.executemany(INSERT_CHANGE, [(batch, *row) for row in rows])

    def _drop_unwritable(
        self, rows: list[tuple[str, str, str | None, float]]
    ) -> list[tuple[str, str, str | None, float]]:
        kept = []
        for row in rows:
            job_id, _, name, _ = row
            if storable(job_id) and (name is None or storable(name)):
                kept.append(row)
            else:
                self.report_bad(
                    "job id or name is not valid text: not kept in the journal", repr(job_id)
                )
        return kept

    def prune(self) -> None:
        """Drop what retention no longer keeps.

        Rows older than the age limit go, and past the count limit the rows
        before the batch where the newest ``max_jobs`` jobs begin: a job's
        latest row is all that counts, so a job kept loses only its older
        rows.  Then the batches no job kept needs (before the batch of the
        earliest first_seen left, one batch of slack), or, with no job left,
        those older than the age limit.
        """
        conn = self.conn
        cutoff = time.time() - self.retention.max_age
        horizon = conn.execute("SELECT min(id) FROM batches WHERE last >= ?", (cutoff,)).fetchone()[
            0
        ]
        if horizon is None:
            horizon = (self.last_batch or 0) + 1  # every batch is older than the limit
        horizon = max(horizon, self._count_horizon())
        conn.execute("BEGIN IMMEDIATE")
        try:
            dropped = conn.execute("DELETE FROM job_changes WHERE batch < ?", (horizon,)).rowcount
            if dropped:
                # Restore must not take the jobs of older batches for rowless ones.
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('pruned_before', ?)",
                    (horizon,),
                )
            # Checkpoints given up (a writer that stopped or failed mid-way): not
            # the one under way.
            plan = self.checkpoints.plan
            current = plan.checkpoint if plan is not None else -1
            conn.execute(
                "DELETE FROM checkpoint_chunks WHERE checkpoint IN (SELECT id FROM checkpoints"
                " WHERE finished IS NULL AND id != ?)",
                (current,),
            )
            conn.execute("DELETE FROM checkpoints WHERE finished IS NULL AND id != ?", (current,))
            earliest = conn.execute("SELECT min(first_seen) FROM job_changes").fetchone()[0]
            needed = horizon if earliest is None else batch_at(conn, earliest) - 1
            gone = conn.execute("DELETE FROM batches WHERE id < ?", (needed,)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if dropped or gone:
            conn.execute("PRAGMA incremental_vacuum")  # give the freed pages back to the disk

    def _count_horizon(self) -> int:
        """The first batch to keep for the newest ``max_jobs`` jobs; 0 when all fit."""
        limit = self.retention.max_jobs
        conn = self.conn
        # Rows outnumber jobs (a job changing across batches has several):
        # only look closer when they outnumber the limit by a tenth.
        if conn.execute("SELECT count(*) FROM job_changes").fetchone()[0] <= limit * 1.1:
            return 0
        # The first job past the limit, by each job's latest row, newest first.
        # In one step: reading the rows here would take the GIL back once a
        # row (see INSERT_CHANGES), a million times.
        found = conn.execute(
            "SELECT max(batch) AS latest FROM job_changes GROUP BY id"
            " ORDER BY latest DESC LIMIT 1 OFFSET ?",
            (limit,),
        ).fetchone()
        return 0 if found is None else found[0] + 1


def storable(text: str) -> bool:
    """Whether SQLite can take ``text`` (as UTF-8): not with a lone surrogate."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def has_json(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has its JSON functions (built in since 3.38, an option before)."""
    try:
        conn.execute("SELECT json_extract(value, '$[0]') FROM json_each('[[1]]')").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


def batch_at(conn: sqlite3.Connection, when: float) -> int:
    """The first batch that may hold a record received at ``when`` (epoch seconds)."""
    found = conn.execute(
        "SELECT min(id) FROM batches WHERE last >= ?", (when - STRADDLE,)
    ).fetchone()[0]
    if found is None:
        found = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM batches").fetchone()[0]
    return found
