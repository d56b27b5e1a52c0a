"""Floods: the UI coalesces what it cannot show, and a stuck UI never holds up the receiver."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.celery_adapter.receiver import AMQP, KOMBU, REDIS, ReceiverThread
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.widgets.job_table import JobTable
from tests import events as ev
from tests.cluster import TRANSPORTS, Cluster, event_arrives, require_transport
from tests.ui_helpers import SIZE, screen_text, table_rows, wait_in_app

MAX_JOBS = 2_000
LONG_RUNNING = 50  # started and never finished: must survive every eviction


class Flood:
    """Feeds events from a thread as fast as it can, as a receiver draining a backlog does."""

    def __init__(self, store: JobStore) -> None:
        self.adapter = EventAdapter(store)
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        for n in range(LONG_RUNNING):
            self._send(ev.received(f"long-{n}", 1.0))
            self._send(ev.started(f"long-{n}", 1.1))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _send(self, event: dict) -> None:
        self.adapter(event)
        self.sent += 1

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            job, t = f"job-{n}", 10.0 + n
            self._send(ev.received(job, t))
            self._send(ev.started(job, t + 0.1))
            self._send(ev.succeeded(job, t + 0.2) if n % 10 else ev.failed(job, t + 0.2))
            n += 1


async def until(condition, what: str, timeout: float = 20.0) -> None:
    """Wait for the app to get somewhere, letting it run.

    Not Pilot.press: it waits for the whole process to go idle, which it never
    does while the flood runs.  Keys are posted as a terminal would send them.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


async def test_the_ui_coalesces_a_flood_and_answers_keys_while_it_lasts():
    store = JobStore(max_jobs=MAX_JOBS)
    app = SluiceApp(store, tick_seconds=0.05)
    ticks = refreshes = 0
    tick, rows_changed = app.tick, JobTable.rows_changed

    def counting_tick() -> None:
        nonlocal ticks
        ticks += 1
        tick()

    def counting_rows_changed(table: JobTable) -> None:
        nonlocal refreshes
        refreshes += 1
        rows_changed(table)

    app.tick = counting_tick
    flood = Flood(store)
    async with app.run_test(size=SIZE):
        JobTable.rows_changed = counting_rows_changed
        try:
            flood.start()
            await until(lambda: flood.sent > 20 * MAX_JOBS and ticks > 5, "the flood to build")
            # Keys still work mid-flood: filter to active, then search.
            app.simulate_key("4")
            await until(lambda: app.index.state_filter is JobState.ACTIVE, "the filter")
            await until(lambda: table_rows(app), "active rows")
            assert all(" active " in row for row in table_rows(app))
            app.simulate_key("slash")
            await until(lambda: getattr(app.focused, "id", None) == "search", "the search box")
            for key in "long-1":
                app.simulate_key(key)
            await until(lambda: app.index.search == "long-1", "the search")
            assert flood.running  # all of this happened while the flood went on
            assert len(table_rows(app)) == 11  # long-1 and long-10 .. long-19
            assert all("long-1" in row for row in table_rows(app))
        finally:
            flood.stop()
            JobTable.rows_changed = rows_changed
        app.simulate_key("escape")
        await until(lambda: app.index.search == "", "the search to clear")
        app.simulate_key("0")
        await until(lambda: app.index.state_filter is None, "all states")
        await until(lambda: len(table_rows(app)) == len(store), "every job listed")
        assert f"0 all {len(store):,}" in screen_text(app)

    # One table refresh per tick at most, however many events arrived between.
    assert refreshes <= ticks + 10  # + the refreshes that key presses make
    assert ticks < flood.sent / 1000
    # Memory stays bounded: finished jobs were evicted, unfinished ones kept.
    assert len(store) <= MAX_JOBS
    long_running = [s for s in store.snapshots([JobState.ACTIVE]) if s.id.startswith("long-")]
    assert len(long_running) == LONG_RUNNING


STUCK_EVENTS = 400  # published while the UI is stuck; more than one drain's worth
STUCK_LIMIT = 20.0  # how long the UI stays stuck at most, waiting for them


def publish_jobs(app, job_ids: list[str]) -> None:
    """Send a task-received per id over one connection, as a busy worker would."""
    with app.connection_for_write() as conn:
        dispatcher = app.events.Dispatcher(conn, hostname="w1@stuck", enabled=True)
        for job_id in job_ids:
            dispatcher.send(type="task-received", uuid=job_id, name="demo.add", args="(1, 2)")
        dispatcher.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_receiver_keeps_draining_while_the_ui_is_stuck_mid_tick(transport, tmp_path):
    """The UI's event loop stops dead inside a tick, right after reading the store.

    Events published meanwhile must all reach the store before the UI moves
    again: the receiver waits on nothing the UI does (no call_from_thread, no
    lock held across a tick).  If it did, the store would stay still, the UI
    would give up after STUCK_LIMIT and the test would fail.  On RabbitMQ a
    receiver held up for 5 s would also lose the events to the queue's TTL.
    """
    require_transport(transport)
    cluster = Cluster(transport, tmp_path)
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store, resync=False)
    assert receiver.path == {"filesystem": KOMBU, "redis": REDIS, "rabbitmq": AMQP}[transport]
    app = SluiceApp(store, source=receiver, tick_seconds=0.05)
    ids = [f"stuck-{n}" for n in range(STUCK_EVENTS)]
    stuck = {"ticks": 0, "taken": 0, "missing": len(ids)}
    sync = app.index.sync

    def sync_then_get_stuck() -> bool:
        changed = sync()  # the UI has just read the store's change feed
        if stuck["ticks"] == 0 and "ready" in store:
            stuck["ticks"] = 1
            publisher = threading.Thread(target=publish_jobs, args=(cluster.app, ids))
            publisher.start()
            # Stuck: the UI thread blocks here, its event loop with it.
            deadline = time.monotonic() + STUCK_LIMIT
            while any(job_id not in store for job_id in ids) and time.monotonic() < deadline:
                time.sleep(0.01)
            publisher.join(STUCK_LIMIT)
            stuck["missing"] = sum(job_id not in store for job_id in ids)
            stuck["taken"] = len(ids) - stuck["missing"]
        return changed

    app.index.sync = sync_then_get_stuck
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_in_app(
                pilot, lambda: event_arrives(cluster.app, store, "ready"), "a first event"
            )
            await wait_in_app(pilot, lambda: stuck["ticks"], "a tick to get stuck in")
            # Everything arrived while the UI could do nothing at all.
            assert stuck["missing"] == 0, stuck
            assert receiver.alive and store.status.state == "connected"
            # And once free, the UI shows it all on its next tick.
            await wait_in_app(pilot, lambda: app.index.total == len(store), "the list to catch up")
    finally:
        cluster.close()
