"""UI speed with 100 000 jobs while 5 000 events/s arrive; and a plain DataTable.

    python -m bench.ui [--jobs N] [--rate R] [--skip-datatable]

Headless Textual (App.run_test) at 200x60.  A feeder thread writes events to
the store at the given rate the whole time, as the receiver would.  Figures:
- filter / sort switch: key press until the screen has been redrawn
  (main-thread CPU: the feeder thread's work is not counted, the UI's all is);
- refresh tick: main-thread CPU time of one tick (read the change feed, update
  the index, repaint the visible rows);
- cursor move: key press until redrawn.
The same filter switch on a plain DataTable (clear, then add the matching rows)
gives the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time

from textual import events
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from bench.common import machine, report
from bench.events import iter_task_events
from sluice_tui import gc_policy
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.job import JobRow
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.widgets.job_table import JobTable, cells

SIZE = (200, 60)
EVENTS_PER_JOB = 4.3


class Feeder(threading.Thread):
    """Writes events into the store at ``rate`` per second until stopped."""

    def __init__(self, store: JobStore, rate: int) -> None:
        super().__init__(daemon=True)
        self.adapter = EventAdapter(store).handle
        self.rate = rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        stream = iter_task_events(10**9, seed=99)
        batch = max(1, self.rate // 100)
        started = time.monotonic()
        while not self.stop.is_set():
            for _ in range(batch):
                self.adapter(next(stream))
            self.sent += batch
            ahead = self.sent / self.rate - (time.monotonic() - started)
            if ahead > 0:
                self.stop.wait(ahead)


def filled_store(jobs: int) -> JobStore:
    store = JobStore(max_jobs=jobs * 2)
    adapter = EventAdapter(store).handle
    for event in iter_task_events(int(jobs * EVENTS_PER_JOB)):
        adapter(event)
    return store


class KeyTimer:
    """Main-thread CPU from a key's arrival until the frame that shows its effect.

    Not ``Pilot.press`` and ``pause``: they wait for the whole process to go
    idle, which it never is while events arrive, so they would time up to a
    second of the app's unrelated housekeeping along with the key.  The key
    goes in as a terminal sends it, and the timing stops at the first frame
    sent after the key's action ran.  Ticks are off in this bench, so nothing
    else repaints meanwhile.
    """

    def __init__(self, app: SluiceApp) -> None:
        self.app = app
        self._acted = False
        self._shown = asyncio.Event()
        run_action, display = app.run_action, app._display

        async def acting(*args, **kwargs):
            result = await run_action(*args, **kwargs)
            self._acted = True
            return result

        def showing(screen, renderable) -> None:
            display(screen, renderable)
            if self._acted and renderable is not None:
                self._shown.set()

        app.run_action, app._display = acting, showing

    async def press(self, key: str) -> float:
        self._acted = False
        self._shown.clear()
        event = events.Key(key, key)
        event.set_sender(self.app)
        started = time.thread_time()
        self.app._driver.send_message(event)
        await asyncio.wait_for(self._shown.wait(), 30.0)
        return time.thread_time() - started


def render_visible(table: JobTable) -> None:
    for y in range(table.size.height):
        table.render_line(y)


async def sluice_figures(store: JobStore, rate: int, rounds: int) -> dict[str, float]:
    gc_policy.install()  # as the shipped command's run_app does
    app = SluiceApp(store, tick_seconds=None)
    feeder = Feeder(store, rate)
    figures: dict[str, list[float]] = {"filter": [], "sort": [], "tick": [], "cursor": []}
    async with app.run_test(size=SIZE):
        table = app.screen.query_one(JobTable)
        keys = KeyTimer(app)
        feeder.start()
        try:
            for _ in range(rounds):
                for key in ("6", "5", "0"):
                    figures["filter"].append(await keys.press(key))
                for _ in range(3):
                    figures["sort"].append(await keys.press("s"))
                for _ in range(5):
                    await asyncio.sleep(0.15)  # let a tick's worth of events arrive
                    started = time.thread_time()
                    app.tick()
                    render_visible(table)
                    figures["tick"].append(time.thread_time() - started)
                for key in ("down", "down", "up"):
                    figures["cursor"].append(await keys.press(key))
        finally:
            feeder.stop.set()
            feeder.join()
    return {name: statistics.median(values) * 1000 for name, values in figures.items()}


class PlainTable(App):
    def compose(self) -> ComposeResult:
        yield DataTable()


async def datatable_switch(store: JobStore) -> float:
    """Filter switch on a plain DataTable: clear, then add the failed jobs' rows."""
    _, rows = store.all_rows()
    now = time.time()

    def texts(row: JobRow) -> tuple[str, ...]:
        return tuple(cell.text for cell in cells(row, now, note_column=True))

    every = [texts(row) for row in rows]
    failed = [texts(row) for row in rows if row.state is JobState.FAILED]
    app = PlainTable()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        table.add_columns(*(f"c{i}" for i in range(len(every[0]))))
        table.add_rows(every)
        await pilot.pause()
        started = time.thread_time()
        table.clear()
        table.add_rows(failed)
        await pilot.pause()
        return (time.thread_time() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-datatable", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    store = filled_store(args.jobs)
    figures = asyncio.run(sluice_figures(store, args.rate, args.rounds))
    rows = [
        ("filter switch, key to redraw (< 100 ms)", f"{figures['filter']:8.1f} ms"),
        ("sort switch, key to redraw (< 100 ms)", f"{figures['sort']:8.1f} ms"),
        ("refresh tick, main-thread CPU (< 20 ms)", f"{figures['tick']:8.1f} ms"),
        ("cursor move, key to redraw (< 16.7 ms)", f"{figures['cursor']:8.1f} ms"),
    ]
    if not args.skip_datatable:
        plain = asyncio.run(datatable_switch(filled_store(args.jobs)))
        rows += [
            ("plain DataTable filter switch", f"{plain:8.1f} ms"),
            ("ratio, DataTable / sluice-tui", f"{plain / figures['filter']:8.1f} x"),
        ]
    report(
        f"UI with {len(store):,} jobs and {args.rate:,} events/s arriving "
        f"(medians, {SIZE[0]}x{SIZE[1]})",
        rows,
    )


if __name__ == "__main__":
    main()
