"""Detail screen speed for one job with a long history.

    python -m bench.detail [--rows 3000 30000] [--changes N]

Headless Textual (App.run_test) at 120x40.  One job is redelivered again and
again (a worker takes it, starts it, is lost; the broker hands it to the
next: task-received and task-started, two history rows each time, all in one
attempt, which no history cap trims) until it has the given number of history
rows; its detail screen is open.  Figures, main-thread CPU:
- open: pressing enter on the job until the screen is drawn;
- change: one new event for the job, then one refresh tick until redrawn
  (median over the changes);
- of which snapshot: the store copying the job out (``JobStore.get``), which
  every tick pays before the screen draws anything.
CPU, not wall time: the machine is shared, and the Pilot's idle waits are no
work the app does.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from bench.common import report
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.screens.job_detail import JobDetailScreen

SIZE = (120, 40)
JOB = "7d1c3c2e-bench-detail-0000-000000000001"
T = 1_700_000_000.0


def _event(kind: str, at: float, host: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "uuid": JOB, "hostname": host, "timestamp": at, **fields}


def delivery_events(n: int) -> list[dict[str, Any]]:
    """Delivery ``n`` (0-based) of a job that keeps losing its worker."""
    at = T + n * 30.0
    worker = f"worker-{n % 7}@prod-{n % 7}"
    first = {"name": "shop.billing.charge", "args": "(1042, 'EUR')", "kwargs": "{}"}
    return [
        _event("task-received", at, worker, **first),
        _event("task-started", at + 0.1, worker),
    ]


def filled_store(rows: int) -> tuple[JobStore, EventAdapter, int]:
    """A store holding the job with ``rows`` history rows; the next delivery's number."""
    store = JobStore()
    adapter = EventAdapter(store).handle
    deliveries = rows // 2
    for n in range(deliveries):
        for event in delivery_events(n):
            adapter(event)
    return store, adapter, deliveries


async def figures(rows: int, changes: int) -> dict[str, float]:
    store, adapter, delivery = filled_store(rows)
    app = SluiceApp(store, tick_seconds=None)
    result: dict[str, list[float]] = {"open": [], "change": [], "snapshot": []}
    async with app.run_test(size=SIZE) as pilot:
        started = time.thread_time()
        app.push_screen(JobDetailScreen(JOB))
        await pilot.pause()
        result["open"].append(time.thread_time() - started)
        assert isinstance(app.screen, JobDetailScreen)
        pending: list[dict[str, Any]] = []
        for _ in range(changes):
            if not pending:
                pending = delivery_events(delivery)
                delivery += 1
            adapter(pending.pop(0))
            started = time.thread_time()
            app.tick()
            await pilot.pause()
            result["change"].append(time.thread_time() - started)
            started = time.thread_time()
            store.get(JOB)
            result["snapshot"].append(time.thread_time() - started)
    return {name: statistics.median(values) * 1000 for name, values in result.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[3_000, 30_000])
    parser.add_argument("--changes", type=int, default=9)
    args = parser.parse_args()
    rows = []
    for count in args.rows:
        found = asyncio.run(figures(count, args.changes))
        rows += [
            (f"{count:>7,} rows: open, enter to drawn", f"{found['open']:9.1f} ms"),
            (f"{count:>7,} rows: one change, tick to redrawn", f"{found['change']:9.1f} ms"),
            (f"{count:>7,} rows: the store's snapshot alone", f"{found['snapshot']:9.1f} ms"),
        ]
    report(f"Detail screen, main-thread CPU (medians, {SIZE[0]}x{SIZE[1]})", rows)


if __name__ == "__main__":
    main()
