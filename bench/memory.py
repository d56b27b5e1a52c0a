"""Memory per job at 100 000 jobs, history included, measured with tracemalloc.

    python -m bench.memory [--jobs N]

Events are made one at a time and dropped after each side has taken them, so
what remains is what each side keeps: Celery's State keeps no history at all;
sluice-tui keeps every transition.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from collections.abc import Callable

from celery.events.state import State

from bench.common import machine, report
from bench.events import iter_task_events
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.store import JobStore

EVENTS_PER_JOB = 4.3  # sent, received, started, outcome, plus 10 % retries


def retained_bytes(feed: Callable[[dict], object], events: int) -> int:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for event in iter_task_events(events):
        feed(event)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before


def measure(jobs: int) -> dict[str, float]:
    events = int(jobs * EVENTS_PER_JOB)
    state = State(max_tasks_in_memory=10**9)
    celery_bytes = retained_bytes(state.event, events)
    celery_jobs = len(state.tasks)
    del state
    store = JobStore(max_jobs=10**9)
    sluice_bytes = retained_bytes(EventAdapter(store).handle, events)
    sluice_jobs = len(store)
    return {
        "jobs": sluice_jobs,
        "celery_per_job": celery_bytes / celery_jobs,
        "sluice_per_job": sluice_bytes / sluice_jobs,
        "ratio": (sluice_bytes / sluice_jobs) / (celery_bytes / celery_jobs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    r = measure(args.jobs)
    report(
        f"memory per job at {r['jobs']:,} jobs (tracemalloc)",
        [
            ("celery.events.state.State (no history)", f"{r['celery_per_job']:>8,.0f} bytes/job"),
            ("sluice-tui store (full history)", f"{r['sluice_per_job']:>8,.0f} bytes/job"),
            ("ratio (target <= 0.30)", f"{r['ratio']:>8.2f} x"),
        ],
    )


if __name__ == "__main__":
    main()
