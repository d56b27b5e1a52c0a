"""kill -9 of a journal writer in the middle of a flood: the file stays sound and complete.

A real process feeds about 20 000 events/s through the adapter, the store and
the journal, as the receiver does, and is killed without warning once several
batches are committed.  What was committed must all be there, and a restore
through the checkpoints (one is likely cut short by the kill) must give what a
replay of every event gives.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.journal import Journal
from sluice_tui.journal.lock import writer_pid
from sluice_tui.journal.records import unpack
from sluice_tui.model.store import JobStore
from tests.cluster import wait_for

FLOOD = """
import json, sys, time
from pathlib import Path
from bench.events import iter_task_events
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.journal import Journal
from sluice_tui.model.store import JobStore

store = JobStore()
adapter = EventAdapter(store)
from sluice_tui.journal import checkpointer

checkpointer.CHECKPOINT_RECORDS = int(sys.argv[2])
journal = Journal.open(Path(sys.argv[1]), mode="write")
journal.restore(store, adapter)
journal.start_writing(store)
print("flooding", flush=True)
rate, fed, started = 20_000, 0, time.monotonic()
for event in iter_task_events(10**9):
    del event["local_received"]
    body = json.dumps(event).encode()
    received = time.time()
    journal.raw(body, received)
    decoded = json.loads(body)
    decoded["local_received"] = received
    adapter(decoded)
    fed += 1
    if fed % 200 == 0:
        ahead = fed / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
"""


def _batches(path: Path) -> int:
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM batches").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def _checkpoints(path: Path) -> int:
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
            return conn.execute(
                "SELECT count(*) FROM checkpoints WHERE finished IS NOT NULL"
            ).fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def kill_9_mid_flood(path: Path, checkpoint_every: int, until, what: str) -> None:
    """Flood a journal from a process of its own until ``until()``, then kill -9 it."""
    flood = subprocess.Popen(
        [sys.executable, "-c", FLOOD, str(path), str(checkpoint_every)],
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert flood.stdout.readline().strip() == "flooding", flood.stderr.read()
        wait_for(until, 60, what)
    finally:
        os.kill(flood.pid, signal.SIGKILL)
        flood.wait(10)
    assert flood.returncode == -signal.SIGKILL
    # The writer process commits what it was handed, then lets go of the lock.
    wait_for(lambda: writer_pid(path) is None, 30, "the writer process to finish")


def test_kill_9_mid_flood_leaves_a_sound_journal_with_every_committed_job(tmp_path):
    path = tmp_path / "journal.sqlite3"
    kill_9_mid_flood(path, 10**9, lambda: _batches(path) >= 4, "four committed batches")

    with sqlite3.connect(path) as conn:  # recovers the write-ahead log, as any opener would
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        batches = conn.execute("SELECT first, received, sizes, body FROM batches").fetchall()
        latest = {
            job_id: (batch, state)
            for batch, job_id, state in conn.execute(
                "SELECT batch, id, state FROM job_changes ORDER BY batch"
            )
        }
        settled = conn.execute("SELECT max(id) - 1 FROM batches").fetchone()[0]
    # Each job's latest row, where the writer had long settled it.
    rows = {job_id: state for job_id, (batch, state) in latest.items() if batch < settled}
    committed: set[str] = set()
    events = 0
    for batch in batches:
        for record in unpack(*batch).records:
            committed.add(record["uuid"])
            events += 1
    assert events >= 5_000, "the flood was on when it was killed"

    # The lock went with the writer: a new one may open it, and gets everything.
    journal = Journal.open(path, mode="write")
    store = JobStore(max_jobs=10**6)
    restored = journal.restore(store, EventAdapter(store))
    assert journal.stop()
    assert restored.events == events
    assert {s.id for s in store.snapshots()} == committed
    # Rows the writer had settled agree with the histories replayed.
    assert rows, "some rows were settled before the kill"
    assert all(store.get(job_id).state.value == state for job_id, state in rows.items())


def test_kill_9_mid_checkpoint_restores_what_a_full_replay_gives(tmp_path):
    path = tmp_path / "journal.sqlite3"
    # A checkpoint every 3 000 records.
    kill_9_mid_flood(path, 3000, lambda: _checkpoints(path) >= 3, "three complete checkpoints")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    copy = tmp_path / "replayed.sqlite3"  # the same journal without its checkpoints
    with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(copy)) as conn:
        source.backup(conn)  # the write-ahead log's commits included
        conn.execute("DELETE FROM checkpoint_chunks")
        conn.execute("DELETE FROM checkpoints")
        conn.commit()

    stores = []
    for journal_path in (path, copy):
        journal = Journal.open(journal_path, mode="read")
        store = JobStore(max_jobs=10**6)
        restored = journal.restore(store, EventAdapter(store))
        assert journal.stop()
        stores.append((store, restored))
    (loaded, by_checkpoint), (replayed, by_replay) = stores
    assert by_checkpoint.loaded > 0 and by_replay.loaded == 0
    assert by_checkpoint.events < by_replay.events
    before = {s.id: s for s in replayed.snapshots()}
    after = {s.id: s for s in loaded.snapshots()}
    assert list(after) == list(before)
    assert all(after[job_id] == snapshot for job_id, snapshot in before.items())


def test_kill_9_of_the_writer_process_stops_history_not_the_monitor(tmp_path):
    """The journal's writer is a process of its own: if it dies (the OOM killer, a
    stray kill), the monitor says so once and goes on in memory; the file stays sound."""
    from bench.journal import message_bodies
    from sluice_tui.history import History
    from sluice_tui.journal import Restored
    from tests.test_journal_core import receive, writing_journal

    path = tmp_path / "journal.sqlite3"
    journal, adapter = writing_journal(path)
    bodies = message_bodies(6_000)
    try:
        receive(journal, adapter, bodies[:3_000])
        wait_for(lambda: _batches(path) >= 1, 30, "a committed batch")
        pid = journal._writer.pid
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: journal.problem is not None, 30, "the monitor to notice")
        assert "writer process ended (killed by SIGKILL)" in journal.problem
        notices = [text for _, text in adapter.store.notices()]
        assert any("history is no longer being saved" in text for text in notices)
        history = History(journal, Restored(0, 0, 0.0, None), "redis://", adapter)
        assert history.status().mode.startswith("stopped writing"), "not 'writing' in diagnostics"
        receive(journal, adapter, bodies[3_000:])  # the monitor goes on in memory
        assert len(adapter.store) >= 1_000
    finally:
        assert journal.stop()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    store = JobStore(max_jobs=10**6)
    reader = Journal.open(path, mode="read")
    restored = reader.restore(store, EventAdapter(store))
    assert reader.stop() and restored.jobs > 0


ORPHAN = """
import os, subprocess, sys
from pathlib import Path
from sluice_tui.journal.lock import WriterLock

lock = WriterLock(Path(sys.argv[1]))
lock.acquire()
# As a monitor's writer process: it inherits the lock and outlives the monitor.
writer = subprocess.Popen(
    ["sleep", sys.argv[2]],
    pass_fds=(lock.fileno,),
    start_new_session=True,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
print(writer.pid, flush=True)
os._exit(0)  # gone without letting go, as by kill -9
"""


def test_a_new_writer_waits_for_the_writer_process_a_dead_monitor_left(tmp_path):
    """Not "busy": the lock names a pid that is gone, and its writer process is
    finishing the last batch; a restart waits for it, then writes."""
    from sluice_tui.journal.lock import WriterLock, alive

    path = tmp_path / "journal.sqlite3"
    done = subprocess.run(
        [sys.executable, "-c", ORPHAN, str(path), "1.5"],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=30,
    )
    orphan = int(done.stdout)
    assert writer_pid(path) is not None, "the writer process still holds the lock"
    lock = WriterLock(path)
    lock.acquire()  # JournalBusy before the wait was added
    try:
        assert not alive(orphan), "it had ended first"
    finally:
        lock.release()


def test_a_writer_process_that_falls_behind_is_waited_for_and_what_it_lost_is_told(tmp_path):
    """A hung disk (here: the writer process stopped) at quit: the monitor says it is
    saving, waits while the writer makes progress, and says what it could not save."""
    from rich.console import Console

    from bench.journal import message_bodies
    from sluice_tui.history import HistoryStatus
    from sluice_tui.ui.screens.diagnostics import render_diagnostics
    from tests.test_journal_core import receive, writing_journal

    bodies = message_bodies(30_000)
    said: list[str] = []
    for resumes in (True, False):
        path = tmp_path / f"journal-{resumes}.sqlite3"
        journal, adapter = writing_journal(path)
        wait_for(lambda j=journal: j.writer_process is not None, 10, "the writer process")
        pid = journal.writer_process
        os.kill(pid, signal.SIGSTOP)
        try:
            receive(journal, adapter, bodies)  # more than the pipe holds
            assert not journal.stop(0.5), "the writer cannot finish while stopped"
            assert journal.unsaved > 0
            # Diagnostics show the backlog, in red once no commit came for a while.
            status = HistoryStatus(
                path=str(path), mode="writing", last_write=time.time() - 60, unsaved=journal.unsaved
            )
            console = Console(width=100, record=True)
            console.print(render_diagnostics(adapter.store, status))
            (line,) = [x for x in console.export_text().splitlines() if "not yet saved" in x]
            assert f"{journal.unsaved:,} messages" in line
            if resumes:
                resume = threading.Timer(1.0, os.kill, (pid, signal.SIGCONT))
                resume.start()
                assert journal.finish(said.append, patience=10.0)
                resume.join()
                assert journal.unsaved == 0
            else:
                assert not journal.finish(said.append, patience=1.0)
        finally:
            with contextlib.suppress(ProcessLookupError):  # gone once it saved all
                os.kill(pid, signal.SIGCONT)
            assert journal.stop(30.0)
    assert "saving the last" in said[0] and "messages to the history journal" in said[0]
    assert "were not saved to the history journal" in said[-1] and f"pid {pid}" in said[-1]


def test_a_writer_process_too_far_behind_stops_history_and_the_backlog(tmp_path, monkeypatch):
    """A hung disk (the writer process stopped) while events keep coming: past
    MAX_UNSAVED messages the journal stops, says why, and holds nothing more; the
    monitor takes every event in; what was committed stays sound."""
    from bench.journal import message_bodies
    from sluice_tui.journal import feed
    from tests.test_journal_core import receive, writing_journal

    monkeypatch.setattr(feed, "MAX_UNSAVED", 5_000)
    bodies = message_bodies(30_000)
    path = tmp_path / "journal.sqlite3"
    journal, adapter = writing_journal(path)
    receive(journal, adapter, bodies[:1_000])
    wait_for(lambda: _batches(path) >= 1, 30, "a committed batch")
    pid = journal.writer_process
    os.kill(pid, signal.SIGSTOP)
    try:
        receive(journal, adapter, bodies[1_000:20_000])  # more than the pipe holds
        wait_for(lambda: journal.problem is not None, 30, "the journal to give up")
        assert "fell" in journal.problem and "messages behind" in journal.problem
        notices = [text for _, text in adapter.store.notices()]
        assert any("history is no longer being saved" in text for text in notices), notices
        receive(journal, adapter, bodies[20_000:])
        assert len(journal.inbox) == 0, "the monitor keeps no backlog once the journal stopped"
        jobs = {json.loads(body)["uuid"] for body in bodies}
        assert len(adapter.store) == len(jobs), "every event was still taken in"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert journal.stop(30.0)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    store = JobStore(max_jobs=10**6)
    reader = Journal.open(path, mode="read")
    restored = reader.restore(store, EventAdapter(store))
    assert reader.stop() and 0 < restored.jobs < len(jobs)


def test_a_writer_process_that_cannot_run_stops_history_not_the_monitor(tmp_path, monkeypatch):
    """An interpreter that exits at once (or dies before it reads its orders): the monitor
    says history is off and quits cleanly, with no thread left to join."""
    from bench.journal import message_bodies
    from tests.test_journal_core import receive, writing_journal

    monkeypatch.setattr(sys, "executable", "/bin/false")
    journal, adapter = writing_journal(tmp_path / "journal.sqlite3")
    wait_for(lambda: journal.problem is not None, 10, "the monitor to notice")
    assert "history writer process" in journal.problem
    receive(journal, adapter, message_bodies(100))  # the monitor goes on in memory
    assert len(adapter.store) > 0
    assert journal.stop()
