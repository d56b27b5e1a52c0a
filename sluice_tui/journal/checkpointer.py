"""Taking checkpoints: when, where the cuts go, and writing them with the batches.

A checkpoint is taken in cuts: at each one a chunk of jobs is copied under the
store's lock and a mark (a note) goes into the record stream at that very
point, so a restore knows, for each job it loads, which records the copy
already holds (those before its chunk's mark) and which to replay (those
after).  For that the point must be exact.  The store copied is the writer
process's replica (process.py), which applies the records one by one in
the order they are written: a cut goes between two of them, and what the
copy holds is exactly what came before its mark.

A checkpoint holds the jobs that changed since the previous one completed
(its base), or every job (a full one: the first of a process, or when the
chain grew long).  Each cut's jobs and marks go into the same transaction as
the batch holding the mark, and the checkpoint counts once its last chunk is
committed: a writer killed before that leaves the previous chain in force.

When: after CHECKPOINT_RECORDS records, or CHECKPOINT_INTERVAL seconds if
anything was recorded.  A restore replays what came after the newest
checkpoint's start, so the record count bounds its replay (about 20 us a
record) while a chain of checkpoints, each the size of what changed, keeps
the cost of writing them a small share of the cost of the events.  The cuts
come every CUT_SPACING records, or one after another while no record comes,
CHUNK_JOBS jobs each.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sluice_tui.journal.checkpoint import Copies, CutNote, cut_note, pack_chunk
from sluice_tui.model.store import JobStore

CHECKPOINT_RECORDS = 25_000
CHECKPOINT_INTERVAL = 300.0
CHUNK_JOBS = 1_000
CUT_SPACING = 500
# A chain of incremental checkpoints is replaced by a full one once its copies
# outnumber the jobs held CHAIN_COPIES times over (a restore reads the whole
# chain: at most three copies a job; a full one copies every job again: half
# a copy more a job, in the long run), or past MAX_CHAIN links.
MAX_CHAIN = 1_000
CHAIN_COPIES = 2


@dataclass
class Plan:
    checkpoint: int
    base: int | None  # the checkpoint this one adds to; None: a full checkpoint
    since: int | None  # the store version the base was started at
    ids: list[str] = field(default_factory=list)
    version: int = 0  # the store version at this one's start
    chunk: int = 0  # the next cut: 0 is the start
    position: int = 0  # in ids
    copies: int = 0


@dataclass
class Chain:
    checkpoint: int  # the newest complete one
    version: int  # the store version at its start
    links: int
    copies: int


class Checkpointer:
    """Driven by the writer process: ``cut`` between records, the rest between batches."""

    def __init__(
        self,
        store: JobStore,
        record: Callable[[Any], None],
        next_id: int,
        *,
        notify: Callable[[str], None],
    ) -> None:
        self.store = store
        self.record = record  # appends to the journal's pending records
        self.notify = notify  # a notice for the user
        self.wanted = False  # read before every record: a cut is due
        self.plan: Plan | None = None
        self.chain: Chain | None = None
        self.problem: str | None = None  # why checkpoints stopped, if they did
        self.completed = 0
        self._next_id = next_id
        self._countdown = 0
        self._records = 0
        self._last_start = time.monotonic()

    # -- between batches -------------------------------------------------------------

    def poll(self, records: int, now: float) -> None:
        """The writer wrote ``records`` more records: start a checkpoint, or hurry the cuts."""
        self._records += records
        if self.problem is not None:
            return
        if self.plan is not None:
            self._countdown = 0  # a cut before the next record
            return
        due = self._records >= CHECKPOINT_RECORDS or (
            self._records and now - self._last_start >= CHECKPOINT_INTERVAL
        )
        if not due or len(self.store) == 0:
            return
        chain = self.chain
        full = (
            chain is None
            or chain.links >= MAX_CHAIN
            or chain.copies > CHAIN_COPIES * len(self.store)
        )
        self.plan = Plan(
            self._next_id,
            None if full else chain.checkpoint,
            None if full else chain.version,
        )
        self._next_id += 1
        self._records = 0
        self._last_start = now
        self._countdown = 0
        self.wanted = True

    def take_cuts(self, items: list[tuple[Any, float]]) -> list[tuple[CutNote, bytes | None]]:
        """The marks among ``items`` (a batch's records), each with its chunk packed."""
        found = []
        for record, _ in items:
            if record.__class__ is CutNote:
                body = None
                if record.copies is not None:
                    try:
                        body = pack_chunk(record.copies, record.gone, record.children)
                    except (TypeError, ValueError, OverflowError) as exc:
                        self.abandon(f"a job could not be written: {type(exc).__name__}: {exc}")
                    record.copies = None
                found.append((record, body))
        return found

    def write(
        self, conn: sqlite3.Connection, cuts: list[tuple[CutNote, bytes | None]], batch: int
    ) -> None:
        """Within the batch's transaction: the chunks whose marks it holds."""
        for note, body in cuts:
            plan = self.plan
            if plan is None or note.checkpoint != plan.checkpoint:
                continue  # of a checkpoint given up
            if note.chunk == 0:
                conn.execute(
                    "INSERT INTO checkpoints (id, base, start_batch, started, bad)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (plan.checkpoint, plan.base, batch, time.time(), json.dumps(note.bad)),
                )
            elif body is not None:
                conn.execute(
                    "INSERT INTO checkpoint_chunks (checkpoint, chunk, batch, jobs, body)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (plan.checkpoint, note.chunk, batch, note.jobs, body),
                )
            if note.last:
                self._complete(conn, plan)

    def _complete(self, conn: sqlite3.Connection, plan: Plan) -> None:
        conn.execute(
            "UPDATE checkpoints SET finished = ?, jobs = ? WHERE id = ?",
            (time.time(), plan.copies, plan.checkpoint),
        )
        if plan.base is None:
            # The chains before a full checkpoint are no longer needed by anyone.
            drop_before(conn, plan.checkpoint)
            self.chain = Chain(plan.checkpoint, plan.version, 1, plan.copies)
        else:
            chain = self.chain
            links = chain.links + 1 if chain else 1
            copies = (chain.copies if chain else 0) + plan.copies
            self.chain = Chain(plan.checkpoint, plan.version, links, copies)
        self.plan = None
        self.completed += 1

    def abandon(self, reason: str | None = None) -> None:
        """Give up the checkpoint under way (the next is full); with a reason, take no more."""
        self.wanted = False
        self.plan = None
        self.chain = None
        if reason is not None and self.problem is None:
            self.problem = reason
            self.notify(f"history checkpoints stopped: {reason}; a restart will replay every event")

    # -- between records -------------------------------------------------------------

    def cut(self, *, now: bool = False) -> None:
        """Called before each record while ``wanted``; ``now``: whatever the spacing."""
        self._countdown -= 1
        if self._countdown > 0 and not now:
            return
        self._countdown = CUT_SPACING
        plan = self.plan
        if plan is None:
            self.wanted = False
            return
        try:
            if plan.chunk == 0:
                self.store.begin_checkpoint(plan.since, lambda *seen: self._start(plan, *seen))
            else:
                ids = plan.ids[plan.position : plan.position + CHUNK_JOBS]
                plan.position += len(ids)
                last = plan.position >= len(plan.ids)
                copies = Copies()
                self.store.copy_jobs(
                    ids, copies.add, lambda *seen: self._copy(plan, copies, *seen), links=last
                )
        except Exception as exc:  # checkpoints stop, batches go on
            self.abandon(f"{type(exc).__name__}: {exc}")

    # Both under the store's lock: the mark goes in at the point the store is copied.

    def _start(
        self,
        plan: Plan,
        version: int,
        changed: list[str] | None,
        held: list[str],
        bad: dict[str, int],
    ) -> None:
        if changed is None:
            # Too far behind the store's change feed to know what changed: a full one.
            plan.base = plan.since = None
        plan.ids = held if plan.base is None else changed
        plan.version = version
        plan.chunk = 1
        note = cut_note(plan.checkpoint, 0)
        note.bad = bad
        self.record((note, time.time()))

    def _copy(
        self,
        plan: Plan,
        copies: Copies,
        gone: list[str],
        children: dict[str, list[str]] | None,
    ) -> None:
        # The last chunk (perhaps of no job: nothing changed) says how jobs are
        # linked, at its cut: see replay.Gates.
        note = cut_note(plan.checkpoint, plan.chunk)
        note.copies, note.gone, note.jobs, note.children = copies, gone, len(copies), children
        plan.chunk += 1
        plan.copies += len(copies)
        if children is not None:
            note.last = True
            self.wanted = False
        self.record((note, time.time()))


def drop_before(conn: sqlite3.Connection, checkpoint: int) -> None:
    """Delete the checkpoints older than ``checkpoint`` (a complete full one)."""
    conn.execute("DELETE FROM checkpoint_chunks WHERE checkpoint < ?", (checkpoint,))
    conn.execute("DELETE FROM checkpoints WHERE id < ?", (checkpoint,))
