"""Store ingest: this project's adapter + store against Celery's State, same events.

    python -m bench.ingest [--events N] [--repeat R]

Both sides get fresh copies of the same realistic events (sent, received,
started, succeeded or failed; 10 % retried).  sluice-tui's side includes the
full history, the lock, eviction bookkeeping and the change feed.
"""

from __future__ import annotations

import argparse

from celery.events.state import State

from bench.common import best_cpu_seconds, machine, report
from bench.events import task_events
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.store import JobStore

UNBOUNDED = 10**9


def measure(events: int, repeat: int, max_jobs: int = UNBOUNDED) -> dict[str, float]:
    stream = task_events(events)
    batches: dict[str, list[list[dict]]] = {"celery": [], "sluice": []}

    def prepare() -> None:
        for side in batches.values():
            side.append([dict(e) for e in stream])

    def celery_run() -> None:
        state = State(max_tasks_in_memory=max_jobs)
        for event in batches["celery"].pop():
            state.event(event)

    def sluice_run() -> None:
        adapter = EventAdapter(JobStore(max_jobs=max_jobs)).handle
        for event in batches["sluice"].pop():
            adapter(event)

    celery_s, sluice_s = best_cpu_seconds([celery_run, sluice_run], repeat, prepare)
    return {
        "events": events,
        "celery_eps": events / celery_s,
        "sluice_eps": events / sluice_s,
        "ratio": celery_s / sluice_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for label, max_jobs in (("no eviction", UNBOUNDED), ("evicting, max 10 000 jobs", 10_000)):
        r = measure(args.events, args.repeat, max_jobs)
        report(
            f"store ingest, {args.events:,} events, {label} (best of {args.repeat}, CPU time)",
            [
                ("celery.events.state.State", f"{r['celery_eps']:>12,.0f} events/s"),
                ("sluice-tui adapter + store", f"{r['sluice_eps']:>12,.0f} events/s"),
                ("ratio (target >= 5.0)", f"{r['ratio']:>12.2f} x"),
            ],
        )


if __name__ == "__main__":
    main()
