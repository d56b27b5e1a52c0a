"""Defects found by reading the code: each checked where a user would meet it."""

from __future__ import annotations

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests import events as ev

T = 1_700_000_000.0


def test_an_absurd_runtime_still_reaches_the_job_list():
    """A malformed runtime must not stop the change feed from hearing of the job."""
    store = JobStore()
    adapter = EventAdapter(store)
    adapter(ev.started("a", T))
    version = store.version
    adapter(ev.succeeded("a", T + 1, runtime=1e305))
    assert store.get("a").state is JobState.COMPLETED
    assert "a" in store.changes_since(version).job_ids
    assert store.stats().bad_events == 0


def test_a_worker_gone_offline_no_longer_counts_as_a_consumer():
    from celery import Celery

    from sluice_tui.celery_adapter.queues import QueuePoller
    from sluice_tui.model.queues import QueueSample
    from sluice_tui.model.worker_info import WorkerFigures, board_of

    now = [T]
    store = JobStore(clock=lambda: now[0])
    adapter = EventAdapter(store)
    adapter(ev.heartbeat("w1@h", T))
    board_of(store).record_figures([WorkerFigures("w1@h", T, queues=("reports",))])
    poller = QueuePoller(Celery("t", set_as_current=False), store)
    poller._learn_worker_queues()  # what each poll does before asking the broker
    store.queues.record("reports", QueueSample(T, 500, None))
    assert not store.queues.get("reports").stuck  # consumed while its worker is online
    adapter(ev.event("worker-offline", None, T + 1, hostname="w1@h", local_received=T + 1))
    poller._learn_worker_queues()
    store.queues.record("reports", QueueSample(T + 2, 500, None))
    assert store.queues.get("reports").stuck  # a backlog and nobody left to read it


async def test_cluster_text_in_a_notice_is_shown_as_written_and_crashes_nothing():
    from sluice_tui.ui.app import SluiceApp

    store = JobStore()
    app = SluiceApp(store, tick_seconds=None)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        store.add_notice("worker said: queue jobs[/]eu and [bold]loud[/bold]")
        app.tick()
        await pilot.pause()
        await pilot.pause()
        assert app.is_running
        shown = [n.message for n in app._notifications]
    assert any("jobs[/]eu and [bold]loud[/bold]" in text for text in shown)


def test_diagnostics_show_bracketed_text_as_written():
    """Rich reads a bare str cell as markup: a bad event carrying `[/]` crashed the screen."""
    from rich.console import Console

    from sluice_tui.history import HistoryStatus
    from sluice_tui.ui.screens.diagnostics import render_diagnostics

    store = JobStore()
    store.record_bad_event("malformed event message", "[1, '[/]']")
    store.record_gap(1_700_000_000.0, 1_700_000_009.0, "lost [bold]link[/bold]")
    store.add_notice("worker said [/red] and left")
    status = HistoryStatus(path="/srv/jobs[prod].sqlite3", mode="writing", size_bytes=1)
    console = Console(width=160, record=True)
    console.print(render_diagnostics(store, status))
    text = console.export_text()
    for written in ("[1, '[/]']", "lost [bold]link[/bold]", "said [/red] and", "jobs[prod]"):
        assert written in text, written


def test_events_read_with_the_redis_subscription_confirmation_are_kept():
    """A publisher racing the subscription: events in the confirming read were dropped."""
    from types import SimpleNamespace

    from sluice_tui.celery_adapter import lean_redis

    confirm = [b"psubscribe", b"/0.celeryev/*", 1]
    event = [b"pmessage", b"/0.celeryev/*", b"/0.celeryev/task.sent", b'{"body": "e30="}']
    reads = [None, [confirm, event, []]]  # nothing yet, then both in one read
    stream = SimpleNamespace(read=lambda: reads.pop(0))
    early = lean_redis._await_subscription(stream, 1, SimpleNamespace(stopping=False))
    delivered: list[bytes] = []
    lean_redis._deliver(early, delivered.append)
    assert delivered == [event[3]]


def test_a_reader_asking_who_writes_does_not_turn_a_new_writer_away(tmp_path):
    """A writer that quit left its pid; a reader's probe at that moment refused the next writer."""
    import fcntl
    import os
    import threading

    from sluice_tui.journal.lock import WriterLock, lock_path

    path = tmp_path / "journal.sqlite3"
    first = WriterLock(path)
    first.acquire()
    first.release()
    fd = os.open(lock_path(path), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # what writer_pid() holds for an instant
    threading.Timer(0.1, os.close, (fd,)).start()
    second = WriterLock(path)
    second.acquire()  # waits the probe out instead of naming the old pid
    second.release()


def test_every_password_of_a_failover_broker_list_is_masked():
    from sluice_tui.celery_adapter.connect import mask_url

    label = mask_url("amqp://u:first-secret@h1//;amqp://u:second-secret@h2//")
    assert "first-secret" not in label and "second-secret" not in label
    assert "h1" in label and "h2" in label
    sentinel = mask_url("sentinel://:s3cret@h1:26379;sentinel://:s3cret@h2:26379")
    assert "s3cret" not in sentinel and sentinel.startswith("sentinel://")
