"""Loose ends a new user found around the journal: the lock file, what diagnostics say,
who the header names as the writer, and the races between writers coming and going.

Real journals under tmp_path, written by real writer processes.
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
from pathlib import Path

import pytest
from rich.console import Console

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.history import (
    History,
    HistoryOptions,
    HistoryStatus,
    JournalFeeds,
    file_size,
    monitor_history,
    open_history,
    writer_kind,
)
from sluice_tui.journal import Journal, JournalBusy, JournalError, Restored, lock
from sluice_tui.journal.lock import alive, lock_path, writer_pid
from sluice_tui.model.store import JobStore
from sluice_tui.ui.screens.diagnostics import render_diagnostics
from tests import events as ev
from tests.cluster import wait_for
from tests.test_journal_core import receive
from tests.test_journal_crash import ORPHAN

ROOT = Path(__file__).parent.parent


def shown(store: JobStore, status: HistoryStatus) -> str:
    console = Console(width=200, record=True)
    console.print(render_diagnostics(store, status))
    return console.export_text()


def received(journal: Journal, adapter: EventAdapter, *events: dict) -> None:
    """As the receiver hands messages on: the bytes to the journal, then the store."""
    receive(journal, adapter, [json.dumps(event).encode() for event in events])


def writer(path: Path) -> tuple[Journal, JobStore, EventAdapter]:
    store = JobStore()
    adapter = EventAdapter(store)
    journal = Journal.open(path, mode="write")
    journal.restore(store, adapter)
    journal.start_writing(store)
    return journal, store, adapter


def committed(path: Path, job_id: str) -> bool:
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
        row = conn.execute("SELECT 1 FROM job_changes WHERE id = ?", (job_id,)).fetchone()
    return row is not None


def open_lock_fds(path: Path) -> int:
    """Descriptors of this process open on ``path``'s lock file."""
    target = str(lock_path(path))
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}") == target
    return count


# -- 1. the PATH.lock file ------------------------------------------------------


@pytest.mark.parametrize("kind", ["text", "other-sqlite"])
def test_a_file_that_is_not_a_journal_gets_no_lock_file_beside_it(tmp_path, kind):
    path = tmp_path / "notes.db"
    if kind == "text":
        path.write_text("a shopping list, not a journal\n" * 100)
    else:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE TABLE accounts (id INTEGER)")
    store = JobStore()
    history = monitor_history(store, "redis://h:6379/0", HistoryOptions(path=path))
    assert history.status().mode == "off"
    assert "not a sluice-tui history journal" in history.status().problem
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"], "no PATH.lock litter"
    with pytest.raises(JournalError):
        Journal.open(path, mode="write")
    assert not lock_path(path).exists()


def test_a_clean_quit_removes_the_lock_file_and_the_next_start_writes(tmp_path):
    path = tmp_path / "journal.sqlite3"
    journal, _, adapter = writer(path)
    assert lock_path(path).exists() and writer_pid(path) == os.getpid()
    received(journal, adapter, ev.received("kept", time.time()))
    assert journal.stop(10.0)
    assert not lock_path(path).exists()
    assert writer_pid(path) is None
    journal, store, _ = writer(path)  # the next start: writes, with what the first kept
    try:
        assert "kept" in store
    finally:
        assert journal.stop(10.0)


def test_a_writer_waiting_on_the_lock_file_that_the_last_writer_removed_locks_the_new_one(
    tmp_path, monkeypatch
):
    """The flock race of removing a lock file: a second writer opened the file before the
    first removed it, and would hold a lock on a file nobody else sees."""
    path = tmp_path / "journal.sqlite3"
    first = lock.WriterLock(path)
    first.acquire()
    monkeypatch.setattr(lock, "ACQUIRE_PATIENCE", 20.0)  # the second waits for the first
    second = lock.WriterLock(path)
    failed: list[BaseException] = []

    def take() -> None:
        try:
            second.acquire()
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=take)
    thread.start()
    wait_for(lambda: open_lock_fds(path) == 2, 10, "the second writer to open the lock file")
    first.release(remove=True)
    thread.join(20)
    assert not thread.is_alive() and not failed
    try:
        assert writer_pid(path) == os.getpid(), "the file the path names is the one locked"
        monkeypatch.setattr(lock, "ACQUIRE_PATIENCE", 0.1)
        with pytest.raises(JournalBusy, match=f"being written by pid {os.getpid()}"):
            lock.WriterLock(path).acquire()  # one writer, not two
    finally:
        second.release(remove=True)
    assert not lock_path(path).exists()


# -- 2. and 4. what diagnostics say of the file -----------------------------------


def test_diagnostics_show_the_write_ahead_log_apart_from_the_file():
    status = HistoryStatus(path="/j.sqlite3", mode="writing", size_bytes=16_300_000)
    assert "16.3 MB" in shown(JobStore(), status)
    status = HistoryStatus(
        path="/j.sqlite3", mode="writing", size_bytes=16_300_000, wal_bytes=4_000_000
    )
    assert "12.3 MB (+ 4.0 MB write-ahead log)" in shown(JobStore(), status)


def test_a_live_journal_shows_its_file_and_its_write_ahead_log_as_they_are_on_disk(tmp_path):
    path = tmp_path / "journal.sqlite3"
    journal, store, adapter = writer(path)
    history = History(journal, Restored(0, 0, 0.0, None), "b", adapter)
    try:
        received(journal, adapter, *(ev.received(f"job-{n}", time.time()) for n in range(50)))
        wait_for(lambda: committed(path, "job-49"), 10, "the batch to be committed")
        main = os.stat(path).st_size
        wal = os.stat(f"{path}-wal").st_size
        assert wal > 0, "SQLite keeps a write-ahead log while the journal is open"
        text = shown(store, history.status())
        assert f"{file_size(main)} (+ {file_size(wal)} write-ahead log)" in text
    finally:
        assert journal.stop(10.0)


def test_changes_that_could_not_be_journaled_are_told_in_diagnostics(tmp_path):
    path = tmp_path / "journal.sqlite3"
    journal, store, adapter = writer(path)
    history = History(journal, Restored(0, 0, 0.0, None), "b", adapter)
    try:
        received(journal, adapter, ev.received("job", time.time()))
        assert "not recorded" not in shown(store, history.status())
        looped: list = []
        looped.append(looped)  # no JSON can hold it
        store.annotate("job", "detail", looped)
        assert history.status().dropped_notes == 1
        text = " ".join(shown(store, history.status()).split())
        assert "not recorded 1 change that sluice-tui made to a job itself" in text
        assert "could not be saved to the journal: after a restart that job will not" in text
        store.annotate("job", "detail", looped)
        text = " ".join(shown(store, history.status()).split())
        assert "2 changes that sluice-tui made to jobs itself" in text
    finally:
        assert journal.stop(10.0)


# -- 3. and 6. an orphaned writer process ----------------------------------------


def start_orphan(path: Path, seconds: float) -> int:
    """A monitor kill -9'd: its writer process, holding the lock, outlives it."""
    done = subprocess.run(
        [sys.executable, "-c", ORPHAN, str(path), str(seconds)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return int(done.stdout)


def test_an_orphaned_writer_that_outlasts_the_wait_is_refused_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "ORPHAN_PATIENCE", 0.5)
    path = tmp_path / "journal.sqlite3"
    Journal.open(path, mode="write").stop()  # a journal to follow
    orphan = start_orphan(path, 120)
    try:
        monitor = writer_pid(path)
        assert monitor is not None and monitor != orphan and not alive(monitor)
        started = time.monotonic()
        with pytest.raises(JournalBusy) as refused:
            Journal.open(path, mode="write")
        assert time.monotonic() - started < 5, "no hang past the patience"
        message = str(refused.value)
        assert "\n" not in message
        assert f"the writer process that pid {monitor} (now gone) left" in message
        assert "after waiting 0.5 s" in message and "--history" in message
        assert "being written by" not in message, "not a live writer's message"

        # A TUI follows it meanwhile, and does not call the dead TUI a collector.
        store = JobStore()
        history = open_history(store, "b", HistoryOptions(path=path), EventAdapter(store).handle)
        try:
            assert not history.writing
            assert history.following == (
                f"following the writer process that pid {monitor} left (pid {monitor} has exited)"
            )
            assert "collector" not in history.status().mode
        finally:
            history.journal.stop()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)
        wait_for(lambda: not alive(orphan), 10, "the orphan to end")


def test_the_writer_is_named_by_what_it_runs():
    assert writer_kind(os.getpid()) == "sluice-tui"  # a process with no `collect` argument
    collector = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "collect"], stdin=subprocess.PIPE
    )
    try:
        cmdline = Path(f"/proc/{collector.pid}/cmdline")
        wait_for(lambda: b"\0collect\0" in cmdline.read_bytes(), 10, "the child to exec")
        assert writer_kind(collector.pid) == "collector"
        assert History.following_pid(collector.pid) == f"following collector pid {collector.pid}"
    finally:
        collector.communicate(b"", timeout=10)
    assert writer_kind(collector.pid) is None  # exited: neither, and not guessed


# -- 6. take-over and quit at once -------------------------------------------------


def test_a_follower_taking_over_as_the_writer_quits_becomes_the_only_writer(tmp_path, monkeypatch):
    path = tmp_path / "journal.sqlite3"
    first, _, first_adapter = writer(path)
    now = time.time()
    received(first, first_adapter, ev.received("before", now), ev.started("before", now + 0.1))
    wait_for(lambda: committed(path, "before"), 10, "the first writer's batch")

    store = JobStore()
    adapter = EventAdapter(store).handle
    follower = Journal.open(path, mode="read")
    follower.restore(store, adapter)
    follower.follow(store, adapter)
    # The follower starts taking over while the first writer still quits: it waits for
    # the lock, on the lock file the first writer removes as it lets go.
    monkeypatch.setattr(lock, "ACQUIRE_PATIENCE", 20.0)
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(_become(follower, store, adapter)))
    thread.start()
    wait_for(lambda: open_lock_fds(path) == 2, 10, "the follower to open the lock file")
    received(first, first_adapter, ev.succeeded("before", now + 0.2), ev.received("last", now))
    assert first.stop(10.0)
    thread.join(30)
    assert not thread.is_alive()
    (taken,) = result
    assert isinstance(taken, Journal), taken
    try:
        assert taken.mode == "write"
        assert writer_pid(path) == os.getpid()
        monkeypatch.setattr(lock, "ACQUIRE_PATIENCE", 0.1)
        with pytest.raises(JournalBusy):
            Journal.open(path, mode="write")  # one writer: the follower
        # Everything the first writer saved, once: nothing lost, nothing replayed twice.
        assert "last" in store
        assert [t.event for t in store.get("before").history] == [
            "task-received",
            "task-started",
            "task-succeeded",
        ]
        taken.start_writing(store)
        received(taken, EventAdapter(store), ev.received("after", time.time()))
    finally:
        assert taken.stop(10.0)
    assert not lock_path(path).exists()
    restored = JobStore()
    reader = Journal.open(path, mode="read")
    reader.restore(restored, EventAdapter(restored))
    reader.stop()
    assert {"before", "last", "after"} <= {job.id for job in restored.snapshots()}


def _become(follower: Journal, store: JobStore, adapter) -> Journal | BaseException:
    try:
        return follower.become_writer(store, adapter)
    except BaseException as exc:
        return exc


class Receiver:
    """Stands for the receiver a take-over starts."""

    def __init__(self) -> None:
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self, timeout: float = 2.0) -> bool:
        self.stopped = True
        return True


def test_quitting_while_the_monitor_takes_over_stops_what_the_take_over_started(tmp_path):
    """The writer went; this follower's watch takes over just as the user quits."""
    path = tmp_path / "journal.sqlite3"
    first, _, first_adapter = writer(path)
    received(first, first_adapter, ev.received("seen", time.time()))
    wait_for(lambda: committed(path, "seen"), 10, "the writer's batch")
    store = JobStore()
    history = open_history(store, "b", HistoryOptions(path=path), EventAdapter(store).handle)
    assert not history.writing
    listening, quitting = threading.Event(), threading.Event()
    receiver = Receiver()

    def listen(gap: int | None) -> Receiver:
        listening.set()
        quitting.wait(10)  # the quit comes while the take-over is under way
        return receiver

    feeds = JournalFeeds(history, store, listen=listen)
    assert first.stop(10.0)  # the writer quits
    took: list[bool] = []
    taking = threading.Thread(target=lambda: took.append(feeds.take_over()))
    taking.start()
    assert listening.wait(10), "the take-over began"
    stopped: list[bool] = []
    quitter = threading.Thread(target=lambda: stopped.append(feeds.stop(10.0)))
    quitter.start()
    quitting.set()
    taking.join(20)
    quitter.join(20)
    assert took == [True] and stopped == [True]
    assert receiver.started and receiver.stopped, "the receiver it started was stopped too"
    process = history.journal.writer_process
    assert process is not None and not alive(process), "no writer process left behind"
    assert writer_pid(path) is None and not lock_path(path).exists()
    assert feeds.take_over() is False, "no take-over once quitting"
    assert writer_pid(path) is None
    Journal.open(path, mode="write").stop()  # the next start writes


# -- 5. a resync right after the connect, with the journal on ----------------------


def test_a_resync_entry_for_a_job_sent_after_the_connect_stays_after_it_across_a_restart(
    tmp_path,
):
    from types import SimpleNamespace

    from celery import Celery
    from celery.backends.base import DisabledBackend

    from sluice_tui.celery_adapter.resync import Resync
    from tests.test_resync import SentWhileAsking, request

    path = tmp_path / "journal.sqlite3"
    journal, store, adapter = writer(path)
    try:
        now = time.time()
        scheduled = {"eta": "2099-01-01T00:00:00", "request": request("sent-after-connect")}
        clock = SimpleNamespace(now=now, advance=lambda s: setattr(clock, "now", clock.now + s))
        replies = SentWhileAsking(
            lambda event: received(journal, adapter, event),
            clock,
            scheduled={"w1@h": [scheduled]},
        )
        app = SimpleNamespace(
            control=SimpleNamespace(inspect=lambda timeout: replies),
            backend=DisabledBackend(app=Celery(set_as_current=False)),
        )
        Resync(app, store, clock=lambda: now).run()
        live = [t.event for t in store.get("sent-after-connect").history]
        assert live == ["task-sent", "resync: scheduled on worker"]
    finally:
        assert journal.stop(10.0)
    restored = JobStore()
    reader = Journal.open(path, mode="read")
    reader.restore(restored, EventAdapter(restored))
    reader.stop()
    assert [t.event for t in restored.get("sent-after-connect").history] == live


def test_asking_who_writes_as_one_writer_hands_over_to_the_next_names_the_next(
    tmp_path, monkeypatch
):
    """The probe opened the lock file the quitting writer then removed; the next
    writer made a new one. "Nobody writes" would make a follower try to take over."""
    path = tmp_path / "journal.sqlite3"
    first, second = lock.WriterLock(path), lock.WriterLock(path)
    first.acquire()
    flock = lock.fcntl.flock
    handed_over: list[bool] = []

    def flock_after_the_hand_over(fd: int, operation: int) -> None:
        if operation & lock.fcntl.LOCK_SH and not handed_over:
            handed_over.append(True)  # between the probe's open and its flock
            first.release(remove=True)
            second.acquire()
        flock(fd, operation)

    monkeypatch.setattr(lock.fcntl, "flock", flock_after_the_hand_over)
    try:
        assert writer_pid(path) == os.getpid()
        assert handed_over
    finally:
        monkeypatch.undo()
        second.release(remove=True)


LIVE_MONITOR = """
import subprocess, sys
from pathlib import Path
from sluice_tui.journal.lock import WriterLock

lock = WriterLock(Path(sys.argv[1]))
lock.acquire()
writer = subprocess.Popen(["sleep", "120"], pass_fds=(lock.fileno,), start_new_session=True)
print(writer.pid, flush=True)
sys.stdin.read()  # a monitor at work, until it is killed
"""


def test_the_header_stops_naming_a_monitor_once_it_is_killed(tmp_path):
    from sluice_tui.history import WRITER_GONE, WriterWatch

    path = tmp_path / "journal.sqlite3"
    Journal.open(path, mode="write").stop()
    monitor = subprocess.Popen(
        [sys.executable, "-c", LIVE_MONITOR, str(path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    orphan = None
    try:
        assert monitor.stdout is not None
        orphan = int(monitor.stdout.readline())
        wait_for(lambda: writer_pid(path) == monitor.pid, 10, "the monitor's pid in the lock")
        store = JobStore()
        history = open_history(store, "b", HistoryOptions(path=path), EventAdapter(store).handle)
        watch = WriterWatch(history, store, take_over=lambda: False, interval=0.05)
        watch.start()
        try:
            assert history.following == f"following sluice-tui pid {monitor.pid}"
            monitor.kill()
            monitor.wait(10)
            wait_for(
                lambda: (
                    store.status.state
                    == f"following the writer process that pid {monitor.pid} left "
                    f"(pid {monitor.pid} has exited)"
                ),
                10,
                "the header to say the monitor is gone and its writer process writes",
            )
            os.kill(orphan, signal.SIGKILL)
            wait_for(lambda: store.status.state == WRITER_GONE, 10, "the writer to be gone")
        finally:
            watch.stop()
            history.journal.stop()
    finally:
        monitor.kill()
        monitor.communicate(timeout=10)
        if orphan is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(orphan, signal.SIGKILL)
            wait_for(lambda: not alive(orphan), 10, "the orphan to end")
