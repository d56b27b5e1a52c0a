"""Replaying journal batches into a store: the start-up restore, and following a collector.

A restore loads the jobs the newest chain of checkpoints holds (see
checkpointer.py) and replays the batches from the newest checkpoint's start:
each loaded job from the mark of the cut it was copied at (Gates), the jobs
no checkpoint holds (new since, or ones the writer no longer held) whole, as
without checkpoints.

Task events go through the caller's ``apply_event`` (the Celery adapter: this
package imports no Celery), exactly as the receiver would hand them over, with
``local_received`` set to when they were received.  Notes (sluice-tui's own
changes) go to the store methods that made them.
"""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Callable, Collection
from typing import Any

from sluice_tui.journal.checkpoint import (
    Unusable,
    first_seen_of,
    make_jobs,
    wanted_jobs,
)
from sluice_tui.journal.records import (
    BatchDamaged,
    plan_from_json,
    step_from_json,
    unpack,
    unpack_workers,
)
from sluice_tui.journal.schema import has_checkpoints
from sluice_tui.journal.writer import batch_at, storable
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore

BATCH_COLUMNS = "id, first, last, received, sizes, body, workers"
# The last batches are replayed for every job they hold that has no row yet:
# a writer killed after committing a batch may not have written the rows of
# its jobs (they may go with the next one).
TAIL_BATCHES = 2
# A restore replays worker events (heartbeats, mostly: most of an idle
# cluster's journal) of only this last stretch before the journal's last
# write: enough for every worker still alive, and for the throughput its
# heartbeats tell.  Workers gone before that are not brought back.
WORKER_WINDOW = 900.0


class Gates:
    """Where the jobs loaded from checkpoints join a replay: at the mark of their chunk.

    A job copied at a cut holds every record before the cut's mark and none
    after: its records are replayed from the mark on.  Jobs of the chain's
    older checkpoints join at the newest one's start mark (chunk 0): nothing
    about them came between their copy and that start, or the newest
    checkpoints would hold a newer copy.  A mark whose batch was pruned counts
    as passed.
    """

    def __init__(
        self,
        store: JobStore,
        checkpoint: int,
        marks: dict[int, tuple[int, set[str]]],
        links: dict[str, list[str]],
    ) -> None:
        self.store = store
        self.checkpoint = checkpoint
        self.pending = marks  # chunk -> (the batch holding its mark, its jobs)
        self.counting = False  # past the start mark: bad records count again
        # At the last mark every job is as it was at that cut: then the links
        # are set as they were (the order children were linked in is not in
        # the jobs), and the replay links the rest in order.
        self.links = links
        self.last = max(marks)

    @property
    def waiting(self) -> bool:
        return bool(self.pending)

    def reach(self, batch: int, chosen: set[str]) -> None:
        """Open the chunks whose marks were in batches before ``batch``."""
        for chunk in [c for c, (at, _) in self.pending.items() if at < batch]:
            self._open(chunk, chosen)

    def mark(self, note: dict, chosen: set[str]) -> None:
        chunk = note.get("chunk")
        if (
            note.get("checkpoint") == self.checkpoint
            and type(chunk) is int
            and chunk in self.pending
        ):
            self._open(chunk, chosen)

    def _open(self, chunk: int, chosen: set[str]) -> None:
        _, ids = self.pending.pop(chunk)
        chosen.update(ids)
        if chunk == 0:
            self.counting = True
        if chunk == self.last:
            self.store.relink(self.links)


class Replayer:
    """Applies batches, in order, for the jobs in ``chosen`` (None: every job)."""

    def __init__(
        self,
        store: JobStore,
        apply_event: Callable[[dict], None],
        chosen: Collection[str] | None = None,
        *,
        first_seen: dict[str, float] | None = None,
        workers_since: float | None = None,
        gates: Gates | None = None,
    ) -> None:
        self.store = store
        self.apply_event = apply_event
        self.chosen = chosen
        # After a checkpoint's load: ``chosen`` grows as the replay passes the
        # marks of the chunks the jobs were copied at (see checkpointer.py).
        self.gates = gates
        self.events = 0
        self.last_batch: int | None = None
        # Worker events of batches that end before this are skipped (None: none are).
        self.workers_since = workers_since
        self.workers_from = 0  # and those of batches before this one
        # When each job was first seen: the store dates a job by its own clock
        # when it creates it, the wrong one in a replay (see JobStore.backdate).
        # Given by the caller (a restore reads it from the rows), or else taken
        # from the receive time of each job's first record.
        self._given = first_seen is not None
        self.first_seen: dict[str, float] = {} if first_seen is None else first_seen

    def batch(self, row: tuple[int, float, float, bytes, bytes, bytes, bytes | None]) -> None:
        batch_id, first, last, received, sizes, body, workers = row
        if (
            workers is not None
            and (self.workers_since is None or last >= self.workers_since)
            and batch_id >= self.workers_from
        ):
            self._workers(batch_id, first, workers)
        self.last_batch = batch_id
        gates = self.gates
        if gates is not None:
            gates.reach(batch_id, self.chosen)
        try:
            unpacked = unpack(first, received, sizes, body)
        except BatchDamaged as exc:
            if gates is None or gates.counting:
                self.store.record_bad_event("damaged journal batch", f"batch {batch_id}: {exc}")
            return
        if gates is not None and (gates.waiting or not gates.counting):
            self._gated(unpacked, gates)
            return
        if unpacked.notes or not self._given:
            applied = 0
            notes = unpacked.notes
            for i, (record, t) in enumerate(zip(unpacked.records, unpacked.times, strict=True)):
                if i in notes:
                    self._note(record, t)
                else:
                    applied += self._message(record, t)
        else:
            # The usual batch, and a restore's hot loop: _message for a plain event, inlined.
            applied = 0
            chosen = self.chosen
            apply_event = self.apply_event
            message = self._message
            for record, t in zip(unpacked.records, unpacked.times, strict=True):
                if record.__class__ is dict:
                    job_id = record.get("uuid")
                    if job_id.__class__ is str and chosen is not None and job_id not in chosen:
                        continue
                    record["local_received"] = t
                    apply_event(record)
                    applied += 1
                else:
                    applied += message(record, t)
        for _, reason in unpacked.undecodable:
            self.store.record_bad_event("undecodable message", reason)
        self.events += applied

    def _gated(self, unpacked: Any, gates: Gates) -> None:
        """A batch while some loaded jobs still wait for their chunk's mark.

        Before the checkpoint's start mark only the jobs no checkpoint holds
        are replayed, and nothing is counted as bad (the checkpoint's counts
        hold it already).
        """
        applied = 0
        notes = unpacked.notes
        bad = dict(unpacked.undecodable)  # index: reason
        for i, (record, t) in enumerate(zip(unpacked.records, unpacked.times, strict=True)):
            if i in notes:
                if record.__class__ is dict and record.get("kind") == "cut":
                    gates.mark(record, self.chosen)
                else:
                    self._note(record, t)
            elif gates.counting:
                applied += self._message(record, t)
            elif i not in bad:
                applied += self._chosen_only(record, t)
            if gates.counting and i in bad:
                self.store.record_bad_event("undecodable message", bad[i])
        self.events += applied

    def _chosen_only(self, record: Any, t: float) -> int:
        """Apply the events of a message that are for chosen jobs; count nothing bad."""
        if record.__class__ is list:
            return sum(self._chosen_only(event, t) for event in record)
        if record.__class__ is dict:
            job_id = record.get("uuid")
            if job_id.__class__ is str and job_id in self.chosen:
                return self._message(record, t)
        return 0

    def _workers(self, batch_id: int, first: float, packed: bytes) -> None:
        """Worker events go apart from the jobs' (the store keeps them apart too)."""
        try:
            unpacked = unpack_workers(first, packed)
        except BatchDamaged as exc:
            self.store.record_bad_event("damaged journal batch", f"batch {batch_id}: {exc}")
            return
        for record, t in zip(unpacked.records, unpacked.times, strict=True):
            self.events += self._message(record, t)
        for _, reason in unpacked.undecodable:
            self.store.record_bad_event("undecodable message", reason)

    def _message(self, record: Any, t: float) -> int:
        """Apply one message (an event, or a list of them); the events applied."""
        if record.__class__ is list:  # Celery may batch events in one message
            return sum(self._message(event, t) for event in record if self._is_event(event))
        if record.__class__ is not dict:
            if record is not None:
                self._malformed(record)
            return 0
        job_id = record.get("uuid")
        if job_id.__class__ is str:
            if self.chosen is not None and job_id not in self.chosen:
                return 0
            if not self._given and job_id not in self.first_seen:
                self.first_seen[job_id] = t
        record["local_received"] = t
        self.apply_event(record)
        return 1

    def take(self, record: Any, t: float, *, note: bool) -> None:
        """One record as the writer process gets it from the monitor, decoded."""
        if note:
            self._note(record, t)
        else:
            self.events += self._message(record, t)

    def _is_event(self, item: Any) -> bool:
        if item.__class__ is dict:
            return True
        self._malformed(item)
        return False

    def _malformed(self, item: Any) -> None:
        # As the receiver counted it when it came.
        self.store.record_bad_event("malformed event message", f"{item!r:.300}")

    def _note(self, note: Any, t: float) -> None:
        store = self.store
        try:
            if note["kind"] == "cut":  # a checkpoint's mark: see _gated
                return
            job_id = note["id"]
            if self.chosen is not None and job_id not in self.chosen:
                return
            if not isinstance(job_id, str):
                raise TypeError("job id is not text")
            kind = note["kind"]
            if kind == "apply":
                store.apply(
                    job_id,
                    step_from_json(note["step"]),
                    float(note["timestamp"]),
                    note["hostname"],
                    note["data"],
                    plan_from_json(note["plan"]),
                    from_event=False,
                )
            elif kind == "annotate":
                store.annotate(job_id, str(note["key"]), note["value"])
            elif kind == "action":
                store.record_action(
                    job_id,
                    str(note["event"]),
                    dict(note["details"]),
                    create=bool(note["create"]),
                    name=note["name"],
                    at=float(note["at"]),
                    precedes=frozenset(JobState(s) for s in note["precedes"]),
                )
            else:
                raise ValueError(f"unknown kind {kind!r}")
            if not self._given:
                self.first_seen.setdefault(job_id, t)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            store.record_bad_event(
                "unreadable journal record", f"{type(exc).__name__}: {exc}; {note!r:.300}"
            )

    def finish(self) -> None:
        self.store.backdate(self.first_seen)
        if not self._given:
            self.first_seen.clear()


def restore(
    conn: sqlite3.Connection,
    store: JobStore,
    apply_event: Callable[[dict], None],
    *,
    since: float | None = None,
    states: Collection[JobState] | None = None,
    prefix: str | None = None,
) -> tuple[int, int, int | None, int]:
    """Replay the newest ``store.max_jobs`` jobs (of ``states``, seen since ``since``,
    their ids starting with ``prefix``).

    Returns (jobs chosen, events applied, last batch id replayed, jobs loaded
    from checkpoints).
    """
    conn.execute("BEGIN")  # one snapshot: a collector may be writing meanwhile
    try:
        return _restore(conn, store, apply_event, since, states, prefix)
    finally:
        conn.execute("COMMIT")


def _restore(
    conn: sqlite3.Connection,
    store: JobStore,
    apply_event: Callable[[dict], None],
    since: float | None,
    states: Collection[JobState] | None,
    prefix: str | None = None,
) -> tuple[int, int, int | None, int]:
    last_id = conn.execute("SELECT max(id) FROM batches").fetchone()[0]
    if last_id is None:
        return 0, 0, None, 0
    pruned = conn.execute("SELECT value FROM meta WHERE key = 'pruned_before'").fetchone()
    # A record's row may go with the batch before its own: from the batch after
    # the pruned ones on, a job with records but no row never had one.
    tail = max(last_id - TAIL_BATCHES + 1, (int(pruned[0]) + 1) if pruned else 0)
    chosen = _choose(conn, store.max_jobs, since, states, prefix)
    candidates = _jobs_in_batches(conn, tail) - chosen.keys()
    if prefix is not None:
        candidates = {job_id for job_id in candidates if job_id.startswith(prefix)}
    rowless = _rowless(conn, candidates, tail)
    if chosen:
        start = batch_at(conn, min(chosen.values())) - 1
    elif since is None and states is None and prefix is None:
        # No job at all: the last stretch, for its workers.
        last = conn.execute("SELECT last FROM batches WHERE id = ?", (last_id,)).fetchone()[0]
        start = batch_at(conn, last - WORKER_WINDOW)
    else:
        start = tail
    if rowless:
        start = min(start, tail)
    ids = chosen.keys() | rowless
    last_write = conn.execute("SELECT last FROM batches WHERE id = ?", (last_id,)).fetchone()[0]
    workers_since = last_write - WORKER_WINDOW
    allowed: Collection[str] = ids
    gates = None
    replay_from = start
    loaded_jobs = 0
    collecting = gc.isenabled()
    gc.disable()  # a restore makes millions of objects that all live on
    try:
        loaded = _load_checkpoints(conn, store, ids) if ids else None
        if loaded is not None:
            # The jobs no checkpoint holds are replayed whole, as before; the
            # others from their chunk's mark on.
            copied, gates, start_batch = loaded
            loaded_jobs = len(copied)
            allowed = set(ids - copied)
            replay_from = start_batch
            whole = [chosen[i] for i in allowed if i in chosen]
            if whole:
                replay_from = min(replay_from, batch_at(conn, min(whole)) - 1)
            if rowless & allowed:
                replay_from = min(replay_from, tail)
        replayer = Replayer(
            store,
            apply_event,
            allowed,
            # Jobs loaded whole have their first_seen already.
            first_seen=chosen if gates is None else {i: chosen[i] for i in allowed if i in chosen},
            workers_since=workers_since,
            gates=gates,
        )
        replayer.workers_from = start
        # The worker events a replay from `start` would have given.
        for batch_id, first, packed in conn.execute(
            "SELECT id, first, workers FROM batches WHERE id >= ? AND id < ? AND last >= ?"
            " AND workers IS NOT NULL ORDER BY id",
            (start, replay_from, workers_since),
        ):
            replayer._workers(batch_id, first, packed)
        cursor = conn.execute(
            f"SELECT {BATCH_COLUMNS} FROM batches WHERE id >= ? ORDER BY id", (replay_from,)
        )
        for row in cursor:
            replayer.batch(row)
        if gates is not None:  # marks in batches pruned since: as if passed
            gates.reach(last_id + 1, allowed)
        replayer.finish()
        if loaded_jobs:
            store.order_by_first_seen()
    finally:
        if collecting:
            gc.enable()
    return len(ids), replayer.events, last_id, loaded_jobs


def _load_checkpoints(
    conn: sqlite3.Connection, store: JobStore, ids: set[str]
) -> tuple[set[str], Gates, int] | None:
    """Load the jobs of ``ids`` the newest chain of checkpoints holds into ``store``.

    Returns the ids loaded, the gates of the replay after it, and the batch
    to replay from (the newest checkpoint's start); None when there is no
    complete checkpoint, or none this sluice-tui can read (then all is replayed).
    """
    chain = checkpoint_chain(conn)
    if not chain:
        return None
    newest, start_batch, bad = chain[-1]
    members = {checkpoint for checkpoint, _, _ in chain}
    rows = conn.execute(
        "SELECT checkpoint, chunk, body FROM checkpoint_chunks WHERE checkpoint >= ?"
        " ORDER BY checkpoint, chunk",
        (chain[0][0],),
    )
    try:
        found, links = wanted_jobs(((c, n, b) for c, n, b in rows if c in members), ids)
        ordered = sorted(found.values(), key=lambda copy: first_seen_of(copy[0]))
        jobs = make_jobs((row for row, _, _ in ordered), store.history_cap)
        counts = {str(k): int(v) for k, v in json.loads(bad).items()}
        marks: dict[int, tuple[int, set[str]]] = {0: (start_batch, set())}
        for chunk, batch in conn.execute(
            "SELECT chunk, batch FROM checkpoint_chunks WHERE checkpoint = ?", (newest,)
        ):
            marks[chunk] = (batch, set())
    except (Unusable, ValueError, TypeError, AttributeError) as exc:
        store.add_notice(f"the history journal's checkpoint was not used ({exc}); replaying it")
        return None
    # A job's order in the store is when it was first seen, as a replay makes it.
    store.load(jobs, counts)
    for job_id, (_, checkpoint, chunk) in found.items():
        marks[chunk if checkpoint == newest else 0][1].add(job_id)
    return set(found), Gates(store, newest, marks, links or {}), start_batch


def checkpoint_chain(conn: sqlite3.Connection) -> list[tuple[int, int, str]]:
    """(id, start batch, bad counts) of the newest complete full checkpoint and those
    completed on it since, oldest first."""
    chain: list[tuple[int, int, str]] = []
    if not has_checkpoints(conn):
        return chain
    for checkpoint, base, start_batch, bad in conn.execute(
        "SELECT id, base, start_batch, bad FROM checkpoints WHERE finished IS NOT NULL ORDER BY id"
    ):
        if base is None:
            chain = [(checkpoint, start_batch, bad)]
        elif chain and base == chain[-1][0]:
            chain.append((checkpoint, start_batch, bad))
    return chain


def _choose(
    conn: sqlite3.Connection,
    limit: int,
    since: float | None,
    states: Collection[JobState] | None,
    prefix: str | None = None,
) -> dict[str, float]:
    """The newest ``limit`` jobs by their latest row, with their first_seen."""
    sql = "SELECT batch, id, state, first_seen FROM job_changes"
    where: list[str] = []
    params: list = []
    if since is not None:
        first = conn.execute("SELECT min(id) FROM batches WHERE last >= ?", (since,)).fetchone()
        if first[0] is None:
            return {}
        where.append("batch >= ?")
        params.append(first[0])
    if prefix is not None:
        if not storable(prefix):
            return {}
        where.append("substr(id, 1, ?) = ?")
        params += [len(prefix), prefix]
    if where:
        sql += " WHERE " + " AND ".join(where)
    wanted = None if states is None else {JobState(s).value for s in states}
    listed: set[str] = set()
    chosen: dict[str, float] = {}
    for _, job_id, state, first_seen in conn.execute(f"{sql} ORDER BY batch DESC", params):
        if job_id in listed:
            continue  # an older row of a job already taken
        listed.add(job_id)
        if wanted is None or state in wanted:
            chosen[job_id] = first_seen
            if len(chosen) >= limit:
                break
    return chosen


def _rowless(conn: sqlite3.Connection, candidates: set[str], tail: int) -> set[str]:
    """Those of ``candidates`` (jobs with records from batch ``tail`` on) without a row.

    Their rows would be from the batch before ``tail`` on: a record's row may go
    with the batch before its own, or the one after (never written, if the
    writer was killed in between).
    """
    if not candidates:
        return candidates
    # An id SQLite cannot take (a lone surrogate) never got a row.
    pending = [job_id for job_id in candidates if storable(job_id)]
    found: set[str] = set()
    for start in range(0, len(pending), 500):
        chunk = pending[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        found.update(
            row[0]
            for row in conn.execute(
                f"SELECT DISTINCT id FROM job_changes WHERE batch >= ? AND id IN ({marks})",
                (tail - 1, *chunk),
            )
        )
    return candidates - found


def _jobs_in_batches(conn: sqlite3.Connection, start: int) -> set[str]:
    """The ids of the jobs that have records in the batches from ``start`` on."""
    found: set[str] = set()
    rows = conn.execute(f"SELECT {BATCH_COLUMNS} FROM batches WHERE id >= ? ORDER BY id", (start,))
    for _, first, _, received, sizes, body, _ in rows:
        try:
            unpacked = unpack(first, received, sizes, body)
        except BatchDamaged:
            continue  # the replay reports it
        for i, record in enumerate(unpacked.records):
            key = "id" if i in unpacked.notes else "uuid"
            for item in record if record.__class__ is list else (record,):
                job_id = item.get(key) if item.__class__ is dict else None
                if job_id.__class__ is str:
                    found.add(job_id)
    return found


def follow_once(conn: sqlite3.Connection, replayer: Replayer, after: int | None) -> int | None:
    """Replay the batches written after ``after``; the last batch id replayed."""
    rows = conn.execute(
        f"SELECT {BATCH_COLUMNS} FROM batches WHERE id > ? ORDER BY id LIMIT 200",
        (-1 if after is None else after,),
    ).fetchall()
    for row in rows:
        replayer.batch(row)
    replayer.finish()
    return replayer.last_batch if rows else after
