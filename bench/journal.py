"""The history journal: what it costs ingest, how fast a restart restores, how big the file is.

    python -m bench.journal [--events N] [--jobs N] [--repeat R]

Ingest is the receive path from the message bytes: ``json.loads``, the
adapter and the store, as the receiver runs it; with the journal on, each
message also goes to ``Journal.raw`` and the writer process (a replica store,
batches, rows, checkpoints) commits them to a real file meanwhile.  Two
figures, since the writer runs beside the receiver: the receiver's own rate
(wall clock of the receive loop: what decides whether the monitor keeps up)
and the CPU per event of both processes (what it costs the machine).
Celery's State gets the same bytes.
The journal takes checkpoints as it would live (see
sluice_tui.journal.checkpointer); a third run without them shows their share.

A restart restores through the newest checkpoint plus the batches after its
start (the tail); the same file with its checkpoints deleted shows what a
replay of every event costs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from celery.events.state import State

from bench.common import best_cpu_seconds, machine, report, shipped_gc
from bench.events import iter_task_events, task_events
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.journal import Journal, checkpointer
from sluice_tui.model.store import JobStore

UNBOUNDED = 10**9


def message_bodies(events: int, *, retry_share: float = 0.10) -> list[bytes]:
    """The events as a broker delivers them: one JSON message each, no receive time yet."""
    bodies = []
    for event in task_events(events, retry_share=retry_share):
        del event["local_received"]
        bodies.append(json.dumps(event).encode())
    return bodies


def _receive(bodies: list[bytes], store: JobStore, journal: Journal | None) -> float:
    """The receive loop; its wall-clock seconds."""
    adapter = EventAdapter(store).handle
    loads = json.loads
    clock = time.time
    started = time.perf_counter()
    for body in bodies:
        received = clock()
        if journal is not None:  # as the receiver hands a message over (event_feed.py)
            inbox = journal.inbox
            inbox.append(body)
            inbox.append(received)
        event = loads(body)
        event["local_received"] = received
        adapter(event)
    return time.perf_counter() - started


@contextlib.contextmanager
def no_checkpoints() -> Iterator[None]:
    """A journal that never takes a checkpoint (as before they existed)."""
    every = checkpointer.CHECKPOINT_RECORDS
    checkpointer.CHECKPOINT_RECORDS = UNBOUNDED
    try:
        yield
    finally:
        checkpointer.CHECKPOINT_RECORDS = every


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (the journal's writer) so far."""
    times = os.times()
    return times.children_user + times.children_system


def measure_ingest(events: int, repeat: int, folder: Path) -> dict[str, float]:
    """The receive loop from message bytes, journal off and on, interleaved; best of ``repeat``.

    "bare": the journal on without checkpoints, for their share.
    """
    bodies = message_bodies(events)
    sides = ("off", "on", "bare")
    wall = dict.fromkeys(sides, float("inf"))
    cpu = dict.fromkeys(sides, float("inf"))
    for round_ in range(repeat):
        for side in sides:
            gc.collect()
            cpu_started = time.process_time() + _children_cpu()
            store = JobStore(max_jobs=UNBOUNDED)
            journal = None
            if side != "off":
                journal = Journal.open(folder / f"ingest-{side}-{round_}.sqlite3", mode="write")
                journal.restore(store, EventAdapter(store).handle)
                with no_checkpoints() if side == "bare" else contextlib.nullcontext():
                    journal.start_writing(store)
                    seconds = _receive(bodies, store, journal)
                    assert journal.stop(30.0) and journal.problem is None, journal.problem
            else:
                seconds = _receive(bodies, store, journal)
            wall[side] = min(wall[side], seconds)
            cpu[side] = min(cpu[side], time.process_time() + _children_cpu() - cpu_started)
            del store, journal
    return {
        "events": events,
        "off_eps": events / wall["off"],
        "on_eps": events / wall["on"],
        "on_ratio": wall["off"] / wall["on"],
        "bare_ratio": wall["off"] / wall["bare"],
        "off_cpu_us": cpu["off"] / events * 1e6,
        "on_cpu_us": cpu["on"] / events * 1e6,
        "bare_cpu_us": cpu["bare"] / events * 1e6,
        "cpu_ratio": cpu["off"] / cpu["on"],
    }


def measure_against_state(events: int, repeat: int, folder: Path) -> dict[str, float]:
    """bench.ingest's comparison (decoded events, CPU time) with the journal on.

    sluice-tui's side also hands each message's bytes to the journal.  Its CPU
    time is the monitor process's (the one the receiver runs in); "machine"
    adds the writer process's, flush and all.  Each side's garbage collection
    is its command's (bench.ingest says more).
    """
    stream = task_events(events)
    bodies = message_bodies(events)
    inputs: dict[str, list[list[dict]]] = {"celery": [], "sluice": []}
    rounds = iter(range(repeat))
    writer_cpu: list[float] = []

    def prepare() -> None:
        for side in inputs.values():
            side.clear()  # the last round's input goes here, untimed (see bench.ingest)
            side.append([dict(e) for e in stream])

    def celery_run() -> None:
        state = State(max_tasks_in_memory=UNBOUNDED)
        for event in inputs["celery"][0]:
            state.event(event)

    def sluice_run() -> None:
        store = JobStore(max_jobs=UNBOUNDED)
        adapter = EventAdapter(store).handle
        journal = Journal.open(folder / f"state-{next(rounds)}.sqlite3", mode="write")
        journal.restore(store, adapter)
        journal.start_writing(store)
        children = _children_cpu()
        for body, event in zip(bodies, inputs["sluice"][0], strict=True):
            inbox = journal.inbox
            inbox.append(body)
            inbox.append(event["local_received"])
            adapter(event)
        assert journal.stop(30.0) and journal.problem is None, journal.problem
        writer_cpu.append(_children_cpu() - children)

    celery_s, sluice_s = best_cpu_seconds(
        [celery_run, sluice_run], repeat, prepare, settings=[contextlib.nullcontext, shipped_gc]
    )
    machine_s = sluice_s + min(writer_cpu)
    return {
        "celery_eps": events / celery_s,
        "sluice_eps": events / sluice_s,
        "ratio": celery_s / sluice_s,
        "machine_eps": events / machine_s,
        "machine_ratio": celery_s / machine_s,
    }


def write_journal(path: Path, jobs: int, *, retry_share: float) -> tuple[int, int]:
    """A journal holding ``jobs`` jobs, fed as the receiver feeds it; (jobs, events)."""
    store = JobStore(max_jobs=UNBOUNDED)
    adapter = EventAdapter(store).handle
    journal = Journal.open(path, mode="write")
    journal.restore(store, adapter)
    journal.start_writing(store)
    events = 0
    for event in iter_task_events(UNBOUNDED, retry_share=retry_share):
        if event["type"] == "task-sent" and len(store) >= jobs:
            break
        del event["local_received"]
        body = json.dumps(event).encode()
        received = time.time()
        journal.raw(body, received)
        decoded = json.loads(body)
        decoded["local_received"] = received
        adapter(decoded)
        events += 1
        if events % 5_000 == 0:
            time.sleep(0.001)  # as from a socket: the feeding thread gets its turns
    assert journal.stop(60.0) and journal.problem is None, journal.problem
    return len(store), events


def measure_restore(path: Path, repeat: int) -> dict[str, float]:
    wall = cpu = float("inf")
    walls = []
    for _ in range(repeat):
        gc.collect()
        store = JobStore(max_jobs=UNBOUNDED)
        journal = Journal.open(path, mode="read")
        cpu_started = time.process_time()
        restored = journal.restore(store, EventAdapter(store).handle)
        cpu = min(cpu, time.process_time() - cpu_started)
        wall = min(wall, restored.seconds)
        walls.append(restored.seconds)
        journal.stop()
        del store
    return {
        "jobs": restored.jobs,
        "loaded": restored.loaded,
        "events": restored.events,
        "wall": wall,
        "worst": max(walls),
        "cpu": cpu,
    }


def without_checkpoints(path: Path, copy: Path) -> Path:
    """The journal with its checkpoints deleted: a restore of it replays every event."""
    with (
        contextlib.closing(sqlite3.connect(path)) as source,
        contextlib.closing(sqlite3.connect(copy)) as conn,
    ):
        source.backup(conn)  # the write-ahead log's commits included
        conn.execute("DELETE FROM checkpoint_chunks")
        conn.execute("DELETE FROM checkpoints")
        conn.commit()
    return copy


def checkpoint_bytes(path: Path) -> tuple[int, int]:
    """(bytes of checkpoint chunks, records after the newest complete checkpoint's start)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        chunks = conn.execute("SELECT coalesce(sum(length(body)), 0) FROM checkpoint_chunks")
        size = chunks.fetchone()[0]
        start = conn.execute(
            "SELECT max(start_batch) FROM checkpoints WHERE finished IS NOT NULL"
        ).fetchone()[0]
        tail = conn.execute(
            "SELECT coalesce(sum(count), 0) FROM batches WHERE id >= ?", (start or 0,)
        ).fetchone()[0]
    return size, tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000, help="ingest events")
    parser.add_argument("--jobs", type=int, default=100_000, help="jobs to restore")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    folder = Path(tempfile.mkdtemp(prefix="sluice-bench-journal-"))
    try:
        r = measure_ingest(args.events, args.repeat, folder)
        report(
            f"receive loop from message bytes, {args.events:,} events (best of {args.repeat})",
            [
                ("journal off: receiver", f"{r['off_eps']:>12,.0f} events/s"),
                ("journal on: receiver", f"{r['on_eps']:>12,.0f} events/s"),
                ("on / off (target >= 0.85)", f"{r['on_ratio']:>12.2f} x"),
                ("on without checkpoints / off", f"{r['bare_ratio']:>12.2f} x"),
                ("CPU per event, off", f"{r['off_cpu_us']:>12.2f} us"),
                ("CPU per event, on (writer process included)", f"{r['on_cpu_us']:>12.2f} us"),
                ("CPU per event, on without checkpoints", f"{r['bare_cpu_us']:>12.2f} us"),
                ("CPU, as a rate: on / off", f"{r['cpu_ratio']:>12.2f} x"),
            ],
        )
        c = measure_against_state(args.events, args.repeat, folder)
        report(
            f"as bench.ingest, journal on: {args.events:,} decoded events (CPU time)",
            [
                ("celery.events.state.State", f"{c['celery_eps']:>12,.0f} events/s"),
                ("adapter + store + journal: monitor", f"{c['sluice_eps']:>12,.0f} events/s"),
                ("ratio (target >= 4.0)", f"{c['ratio']:>12.2f} x"),
                ("monitor and writer process", f"{c['machine_eps']:>12,.0f} events/s"),
                ("ratio, both processes' CPU", f"{c['machine_ratio']:>12.2f} x"),
            ],
        )
        path = folder / "restore.sqlite3"
        jobs, events = write_journal(path, args.jobs, retry_share=0.10)
        size = _file_size(path)
        _, tail = checkpoint_bytes(path)
        rr = measure_restore(path, max(1, args.repeat - 1))
        full = measure_restore(without_checkpoints(path, folder / "replay.sqlite3"), 1)
        report(
            f"restore at start-up: {jobs:,} jobs, {events:,} events (10 % retried)",
            [
                ("jobs restored", f"{rr['jobs']:>12,}"),
                ("of them loaded from checkpoints", f"{rr['loaded']:>12,}"),
                ("records after the checkpoint (tail)", f"{tail:>12,}"),
                ("events replayed", f"{rr['events']:>12,}"),
                ("wall time (target < 2 s)", f"{rr['wall']:>12.2f} s"),
                ("wall time, worst run", f"{rr['worst']:>12.2f} s"),
                ("CPU time", f"{rr['cpu']:>12.2f} s"),
                ("wall time replaying every event", f"{full['wall']:>12.2f} s"),
                ("journal file", f"{size / 1e6:>12.1f} MB"),
            ],
        )
        four = folder / "four.sqlite3"
        four_jobs, four_events = write_journal(four, args.jobs // 2, retry_share=0.0)
        per_job = _file_size(four) / four_jobs
        in_checkpoints, _ = checkpoint_bytes(four)
        report(
            f"file size: {four_jobs:,} jobs with a 4-event history ({four_events:,} events)",
            [
                ("bytes per job (target <= 400)", f"{per_job:>12.0f} B"),
                ("of them checkpoint chunks", f"{in_checkpoints / four_jobs:>12.0f} B"),
            ],
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


if __name__ == "__main__":
    main()
