"""A flood of events far beyond what a screen can show: the UI coalesces, the feed keeps up."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.widgets.job_table import JobTable
from tests import events as ev
from tests.ui_helpers import SIZE, screen_text, table_rows

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
        # Everything sent was taken in: the feeding thread never waited on the UI.
        assert store.stats().events == flood.sent

    # One table refresh per tick at most, however many events arrived between.
    assert refreshes <= ticks + 10  # + the refreshes that key presses make
    assert ticks < flood.sent / 1000
    # Memory stays bounded: finished jobs were evicted, unfinished ones kept.
    assert len(store) <= MAX_JOBS
    long_running = [s for s in store.snapshots([JobState.ACTIVE]) if s.id.startswith("long-")]
    assert len(long_running) == LONG_RUNNING
