"""Task types screen speed: 100 000 jobs over 200 task types while events arrive.

    python -m bench.cluster_views [--jobs N] [--types T] [--rate R]

Headless Textual (App.run_test) at 200x60, the task types screen open, a
feeder thread writing events at ``rate`` per second as the receiver would.
Figures (main-thread CPU, medians, as in bench.ui):
- refresh tick: one app tick with the figures moving (snapshot of every type,
  sort, column widths) and the drawing of the table's visible lines, which the
  table builds only when the frame asks for them;
- sort switch: key press until the screen has been redrawn.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator

from bench.common import machine, report
from bench.events import iter_task_events
from bench.ui import EVENTS_PER_JOB, SIZE, Feeder, KeyTimer
from sluice_tui import gc_policy
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.store import JobStore
from sluice_tui.model.task_types import task_types_of
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.screens.task_types import TaskTypesScreen
from sluice_tui.ui.widgets.line_table import LineTable


def renamed(events: Iterator[dict], types: int) -> Iterator[dict]:
    """The bench stream with each job's name spread over ``types`` task names."""
    for event in events:
        if event.get("name"):
            event["name"] = f"bench.task_{uuid.UUID(event['uuid']).int % types:03d}"
        yield event


def filled_store(jobs: int, types: int) -> JobStore:
    store = JobStore(max_jobs=jobs * 2)
    adapter = EventAdapter(store).handle
    for event in renamed(iter_task_events(int(jobs * EVENTS_PER_JOB)), types):
        adapter(event)
    return store


async def figures(store: JobStore, rate: int, rounds: int) -> dict[str, float]:
    gc_policy.install()  # as the shipped command's run_app does
    app = SluiceApp(store, tick_seconds=None)
    feeder = Feeder(store, rate)
    taken: dict[str, list[float]] = {"tick": [], "sort": []}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")
        assert isinstance(app.screen, TaskTypesScreen)
        table = app.screen.query_one(LineTable)
        keys = KeyTimer(app)
        feeder.start()
        try:
            for _ in range(rounds):
                for _ in range(5):
                    await asyncio.sleep(0.15)  # a tick's worth of events
                    started = time.thread_time()
                    app.tick()
                    for y in range(table.size.height):
                        table.render_line(y)
                    taken["tick"].append(time.thread_time() - started)
                for _ in range(4):
                    taken["sort"].append(await keys.press("s"))
        finally:
            feeder.stop.set()
            feeder.join()
    return {name: statistics.median(values) * 1000 for name, values in taken.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--types", type=int, default=200)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    store = filled_store(args.jobs, args.types)
    shown = len(task_types_of(store).names())
    result = asyncio.run(figures(store, args.rate, args.rounds))
    report(
        f"Task types screen: {len(store):,} jobs over {shown} task types, "
        f"{args.rate:,} events/s arriving (medians, {SIZE[0]}x{SIZE[1]})",
        [
            ("refresh tick, main-thread CPU (< 20 ms)", f"{result['tick']:8.1f} ms"),
            ("sort switch, key to redraw (< 100 ms)", f"{result['sort']:8.1f} ms"),
        ],
    )


if __name__ == "__main__":
    main()
