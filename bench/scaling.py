"""How ingest time and memory grow: 10k, 100k and 1M events, with and without eviction.

    python -m bench.scaling [--max-events N]

Linear growth shows as a flat time per event and a flat memory per job.  With
eviction (max 10 000 jobs) memory must stop growing and the time per event must
stay flat: evicting must not make ingest quadratic.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

from bench.common import machine, report
from bench.events import iter_task_events
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.store import JobStore

SIZES = (10_000, 100_000, 1_000_000)


def ingest(events: int, max_jobs: int) -> tuple[float, JobStore]:
    store = JobStore(max_jobs=max_jobs)
    adapter = EventAdapter(store).handle
    stream = list(iter_task_events(events))
    gc.collect()
    gc.freeze()  # the prepared input is not what is measured
    try:
        started = time.process_time()
        for event in stream:
            adapter(event)
        return time.process_time() - started, store
    finally:
        gc.unfreeze()


def retained(events: int, max_jobs: int) -> int:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = JobStore(max_jobs=max_jobs)
    adapter = EventAdapter(store).handle
    for event in iter_task_events(events):
        adapter(event)
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return size


def measure(sizes=SIZES, max_jobs: int | None = None) -> list[dict[str, float]]:
    rows = []
    for events in sizes:
        seconds, store = ingest(events, max_jobs or 10**9)
        rows.append(
            {
                "events": events,
                "jobs": len(store),
                "us_per_event": seconds / events * 1e6,
                "mb": retained(events, max_jobs or 10**9) / 1e6,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-events", type=int, default=SIZES[-1])
    args = parser.parse_args()
    sizes = tuple(n for n in SIZES if n <= args.max_events)
    print(f"machine: {machine()}")
    for label, max_jobs in (("no eviction", None), ("evicting, max 10 000 jobs", 10_000)):
        rows = measure(sizes, max_jobs)
        report(
            f"scaling, {label} (CPU time; memory by tracemalloc)",
            [
                (
                    f"{r['events']:>9,} events",
                    f"{r['jobs']:>7,} jobs  {r['us_per_event']:5.2f} us/event  {r['mb']:7.1f} MB",
                )
                for r in rows
            ],
        )
        growth = rows[-1]["us_per_event"] / rows[0]["us_per_event"]
        print(f"  time per event, largest / smallest: {growth:.2f} (1.0 is linear)")


if __name__ == "__main__":
    main()
