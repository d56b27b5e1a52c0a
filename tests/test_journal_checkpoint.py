"""Checkpoints: a restart loads jobs whole instead of replaying every event, and gets the same.

The cut between a checkpoint and the records replayed after it is the risk:
the receiver hands a message to the journal before the store applies it, and
the monitor's own changes come from other threads.  These tests take
checkpoints (full and incremental) in small chunks in the middle of a flood of
interleaved jobs, with actions, resyncs and annotations from another thread
meanwhile, and compare three stores: the live one, one restored through the
checkpoints, and one restored by replaying every event.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from sluice_tui.celery_adapter import resync as resync_steps
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.journal import Journal, checkpointer, writer
from sluice_tui.model.job import NO_FIELDS
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests import events as ev
from tests.cluster import wait_for
from tests.test_journal_core import SCHEMA_V1, Monitor, fresh_restore, mixed_workload, same_job


@pytest.fixture
def small_checkpoints(monkeypatch):
    """Checkpoints every few hundred records, in chunks of a few jobs: many cuts."""
    monkeypatch.setattr(checkpointer, "CHECKPOINT_RECORDS", 400)
    monkeypatch.setattr(checkpointer, "CHUNK_JOBS", 7)
    monkeypatch.setattr(checkpointer, "CUT_SPACING", 3)
    monkeypatch.setattr(checkpointer, "MAX_CHAIN", 3)
    monkeypatch.setattr(writer, "BATCH_INTERVAL", 0.02)
    monkeypatch.setattr(writer, "POLL_INTERVAL", 0.01)


# Held while a message is handed to the journal and applied, and while the other
# thread changes a job.  A change from another thread applied after the
# journal got a message but before the store applied it is journaled after it
# yet applied before it: no restore, with checkpoints or without, can tell
# (the journal would need the receiver to say when it has applied a message).
# These tests are about the cut, so they keep that apart.
RECEIVING = threading.Lock()


def checkpoints_done(m: Monitor, count: int) -> bool:
    """Whether ``count`` checkpoints are complete (the writer process goes on cutting
    while no records come, as when the cluster is quiet)."""
    return m.journal.checkpoints_completed >= count


def flood_until_checkpoints(m: Monitor, count: int, first_seed: int = 7) -> None:
    """Floods of 300 jobs until ``count`` checkpoints are complete.

    How many a flood of a given size gets depends on how the writer process's
    reads and batches fall, which the machine's load decides: a checkpoint
    starts once 400 records are written after the last one.
    """
    deadline = time.monotonic() + 60
    seed = first_seed
    while not checkpoints_done(m, count):
        assert time.monotonic() < deadline, f"fewer than {count} checkpoints in 60 s"
        flood(m, 300, seed)
        seed += 1
        quiet = time.monotonic() + 1  # the last ones may complete once the flood is over
        while not checkpoints_done(m, count) and time.monotonic() < quiet:
            time.sleep(0.05)


def flood(m: Monitor, jobs: int, seed: int = 7) -> None:
    """Jobs whose events interleave: many in flight at every cut."""
    rng = random.Random(seed)
    t = time.time() - 3600
    in_flight: list[list[dict]] = []
    made = 0
    parents: list[str] = []
    while made < jobs or in_flight:
        if made < jobs and len(in_flight) < 40:
            job = f"flood-{seed}-{made:06d}"
            parent = rng.choice(parents) if parents and rng.random() < 0.2 else None
            t += 0.001
            steps = [
                ev.sent(job, t, name=f"proj.t{made % 5}", parent_id=parent, root_id=parent),
                ev.received(job, t + 0.01, name=f"proj.t{made % 5}"),
                ev.started(job, t + 0.02),
            ]
            if rng.random() < 0.15:
                steps += [
                    ev.retried(job, t + 0.03, exception="IOError()"),
                    ev.received(job, t + 0.04, retries=1),
                    ev.started(job, t + 0.05),
                ]
            if rng.random() < 0.1:
                steps.append(ev.event("task-progress", job, t + 0.055, done=1))
            steps.append(
                ev.succeeded(job, t + 0.06, result="'ok'", runtime=0.01)
                if rng.random() < 0.85
                else ev.failed(job, t + 0.06, exception="KeyError('k')")
            )
            if rng.random() < 0.3:
                steps.reverse()  # events out of order, as from several workers
            in_flight.append(steps)
            parents.append(job)
            made += 1
        steps = in_flight[rng.randrange(len(in_flight))]
        if rng.random() < 0.1 and len(steps) >= 2:
            with RECEIVING:
                m.receive([steps.pop(0), steps.pop(0)])  # a message holding two events
        else:
            with RECEIVING:
                m.receive(steps.pop(0))
        if not steps:
            in_flight.remove(steps)
        if made % 50 == 0:
            time.sleep(0.0005)  # as from a socket: the writer gets its turns


def meddle(store: JobStore, stop: threading.Event) -> None:
    """The monitor's own changes from another thread, as the UI and a resync make them."""
    rng = random.Random(3)
    while not stop.is_set():
        ids = store.ids_in([JobState.ACTIVE, JobState.QUEUED, JobState.FAILED])
        if ids:
            job = rng.choice(ids)
            kind = rng.randrange(3)
            with RECEIVING:
                if kind == 0:
                    store.record_action(job, "revoke sent", {"revoke_requested": True})
                elif kind == 1:
                    store.resync(job, resync_steps.REVOKED, time.time(), "w1@host", {}, NO_FIELDS)
                else:
                    store.annotate(job, "looked_at", rng.randrange(100))
        time.sleep(0.002)


def assert_same_jobs(restored: JobStore, live: JobStore, *, children_in_order: bool = True) -> None:
    before = {s.id: s for s in live.snapshots()}
    after = {s.id: s for s in restored.snapshots()}
    assert list(after) == list(before), "same jobs, in the order they came"
    for job_id, was in before.items():
        now = after[job_id]
        if not children_in_order:
            assert sorted(now.children) == sorted(was.children), job_id
            now, was = replace(now, children=()), replace(was, children=())
        assert same_job(now, was), job_id  # history, fields, links: all of it
    assert all(map(same_job, restored.rows(before).values(), live.rows(before).values()))
    assert restored.counts() == live.counts()


def without_checkpoints(path: Path, copy: Path) -> Path:
    """The same journal with its checkpoints deleted: a restore of it replays everything."""
    with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(copy)) as conn:
        source.backup(conn)  # the write-ahead log's commits included
        conn.execute("DELETE FROM checkpoint_chunks")
        conn.execute("DELETE FROM checkpoints")
        conn.commit()
    return copy


def completed_checkpoints(path: Path) -> list[tuple[int, int | None]]:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT id, base FROM checkpoints WHERE finished IS NOT NULL ORDER BY id"
        ).fetchall()


def test_checkpoints_taken_mid_flood_restore_the_jobs_a_full_replay_gives(
    tmp_path, small_checkpoints, monkeypatch
):
    monkeypatch.setattr(checkpointer, "MAX_CHAIN", 1_000)  # one chain: a full one, then more
    monkeypatch.setattr(checkpointer, "CHAIN_COPIES", 1_000)
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    mixed_workload(m)
    stop = threading.Event()
    other = threading.Thread(target=meddle, args=(m.store, stop))
    other.start()
    try:
        flood_until_checkpoints(m, 4)
        flood(m, 300, seed=99)  # and a tail after the last one
    finally:
        stop.set()
        other.join()
    assert m.journal.stop() and m.journal.problem is None
    chain = completed_checkpoints(path)
    assert any(base is None for _, base in chain), "a full checkpoint"
    assert chain[-1][1] is not None, "incremental ones on it"

    loaded, restored = fresh_restore(path)
    replayed, by_replay = fresh_restore(without_checkpoints(path, tmp_path / "copy.sqlite3"))
    assert restored.loaded > 0 and restored.events < by_replay.events / 2, "the checkpoint was used"
    assert by_replay.loaded == 0
    assert_same_jobs(loaded, m.store)
    assert_same_jobs(replayed, m.store)
    assert loaded.stats().bad_by_reason == m.store.stats().bad_by_reason
    assert {w.hostname for w in loaded.workers()} == {w.hostname for w in replayed.workers()}


def test_a_restore_chooses_from_checkpointed_jobs_as_from_replayed_ones(
    tmp_path, small_checkpoints
):
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    flood(m, 600)
    wait_for(lambda: checkpoints_done(m, 2), 20, "checkpoints during the flood")
    assert m.journal.stop()
    copy = without_checkpoints(path, tmp_path / "copy.sqlite3")
    for choose in ({"states": [JobState.FAILED]}, {"since": time.time() - 3600}):
        loaded, _ = fresh_restore(path, **choose)
        replayed, _ = fresh_restore(copy, **choose)
        assert_same_jobs(loaded, replayed)
    small = JobStore(max_jobs=50)
    journal = Journal.open(path, mode="read")
    journal.restore(small, EventAdapter(small))
    journal.stop()
    newest = {s.id for s in small.snapshots()}
    assert len(newest) == 50 and "flood-7-000599" in newest


def test_a_checkpoint_cut_short_by_a_crash_leaves_the_one_before_in_force(
    tmp_path, small_checkpoints, monkeypatch
):
    monkeypatch.setattr(checkpointer, "MAX_CHAIN", 1_000)  # the newest one is incremental
    monkeypatch.setattr(checkpointer, "CHAIN_COPIES", 1_000)
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    flood(m, 600)
    wait_for(lambda: checkpoints_done(m, 2), 20, "checkpoints during the flood")
    assert m.journal.stop()
    with sqlite3.connect(path) as conn:  # the newest, as a kill -9 mid-way would leave it
        newest, base = conn.execute("SELECT id, base FROM checkpoints ORDER BY id DESC").fetchone()
        assert base is not None
        conn.execute("UPDATE checkpoints SET finished = NULL WHERE id = ?", (newest,))
        conn.execute("DELETE FROM checkpoint_chunks WHERE checkpoint = ? AND chunk > 1", (newest,))
    loaded, restored = fresh_restore(path)
    assert restored.loaded > 0
    assert_same_jobs(loaded, m.store)


def test_a_damaged_checkpoint_is_replayed_around_not_trusted(tmp_path, small_checkpoints):
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    flood(m, 300)
    wait_for(lambda: checkpoints_done(m, 1), 20, "a checkpoint")
    assert m.journal.stop()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE checkpoint_chunks SET body = ?", (b"bit rot",))
    loaded, restored = fresh_restore(path)
    assert restored.loaded == 0
    assert_same_jobs(loaded, m.store)
    assert any("checkpoint was not used" in text for _, text in loaded.notices())


def test_a_first_schema_file_is_brought_to_the_second_and_then_checkpointed(
    tmp_path, small_checkpoints
):
    path = tmp_path / "v1.sqlite3"
    conn = sqlite3.connect(path)
    for statement in SCHEMA_V1:
        conn.execute(statement)
    conn.execute("INSERT INTO meta VALUES ('format', 'sluice-tui journal')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    m = Monitor(path)  # opening it for writing migrates it
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    flood(m, 300)
    wait_for(lambda: checkpoints_done(m, 1), 20, "a checkpoint")
    assert m.journal.stop()
    loaded, restored = fresh_restore(path)
    assert restored.loaded > 0
    assert_same_jobs(loaded, m.store)


def test_old_checkpoints_go_once_a_newer_full_one_is_complete(tmp_path, small_checkpoints):
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    flood_until_checkpoints(m, 6)
    assert m.journal.stop()
    chain = completed_checkpoints(path)
    assert chain[0][1] is None, "the oldest kept is the newest full one"
    assert all(base is not None for _, base in chain[1:])
    with sqlite3.connect(path) as conn:
        oldest = conn.execute("SELECT min(checkpoint) FROM checkpoint_chunks").fetchone()[0]
    assert oldest >= chain[0][0]


def test_a_job_the_checkpoint_never_held_is_replayed_whole(tmp_path, small_checkpoints):
    """Jobs evicted before their chunk was copied, but chosen by a restore with more room.

    Only the order of a job's children may differ from a full replay's then:
    the checkpoint knows the order of the children the writer held, and those
    it had evicted come after them.
    """
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path, max_jobs=200)
    t = time.time()
    m.receive(ev.received("early", t - 100))
    m.receive(ev.succeeded("early", t - 99))
    flood(m, 600)
    wait_for(lambda: checkpoints_done(m, 2), 20, "checkpoints")
    assert "early" not in m.store, "evicted from the live store"
    assert m.journal.stop()
    loaded, _ = fresh_restore(path)
    replayed, _ = fresh_restore(without_checkpoints(path, tmp_path / "copy.sqlite3"))
    assert loaded.get("early") == replayed.get("early")
    assert loaded.get("early").state is JobState.COMPLETED
    assert_same_jobs(loaded, replayed, children_in_order=False)


def test_diagnostics_say_how_checkpoints_stand(tmp_path, small_checkpoints):
    from rich.console import Console

    from sluice_tui.history import HistoryStatus
    from sluice_tui.ui.screens.diagnostics import render_diagnostics

    def shown(m: Monitor) -> str:
        status = HistoryStatus(path="j", mode="writing", checkpoints=m.journal.checkpoints)
        console = Console(width=120, record=True)
        console.print(render_diagnostics(m.store, status))
        return " ".join(console.export_text().split())

    m = Monitor(tmp_path / "journal.sqlite3")
    try:
        flood(m, 300)
        wait_for(lambda: checkpoints_done(m, 1), 20, "a checkpoint")
        assert "checkpoints" in shown(m) and "completed by this process" in shown(m)
        # Checkpoints that stop (a job that cannot be written) say so, not silently:
        # as the writer process tells it.
        m.journal._writer._heard(
            {"checkpoint_problem": "a job could not be written: TypeError: odd value"}
        )
        assert "checkpoints stopped: a job could not be written: TypeError: odd value" in shown(m)
    finally:
        assert m.journal.stop()
