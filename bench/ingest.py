"""Store ingest: this project's adapter + store against Celery's State, same events.

    python -m bench.ingest [--events N] [--repeat R]

Both sides get fresh copies of the same realistic events (sent, received,
started, succeeded or failed; 10 % retried), made and dropped outside the
timing: decoding and freeing messages is the receive loop's work, the same on
both sides.  sluice-tui's side includes the full history, the lock, eviction
bookkeeping and the change feed.  It runs
twice: with the garbage collection its commands install (``gc_policy``: the
target's figure), and with CPython's default, which Celery's side keeps as
``celery events`` does.
"""

from __future__ import annotations

import argparse
import contextlib

from celery.events.state import State

from bench.common import best_cpu_seconds, machine, report, shipped_gc
from bench.events import task_events
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.store import JobStore

UNBOUNDED = 10**9


def measure(events: int, repeat: int, max_jobs: int = UNBOUNDED) -> dict[str, float]:
    stream = task_events(events)
    batches: dict[str, list[list[dict]]] = {"celery": [], "sluice": [], "default_gc": []}

    def prepare() -> None:
        for side in batches.values():
            side.clear()  # the last round's input goes here, untimed
            side.append([dict(e) for e in stream])

    def celery_run() -> None:
        state = State(max_tasks_in_memory=max_jobs)
        for event in batches["celery"][0]:
            state.event(event)

    def sluice_run(side: str) -> None:
        handle = EventAdapter(JobStore(max_jobs=max_jobs)).handle  # as the receiver calls it
        for event in batches[side][0]:
            handle(event)

    celery_s, sluice_s, default_gc_s = best_cpu_seconds(
        [celery_run, lambda: sluice_run("sluice"), lambda: sluice_run("default_gc")],
        repeat,
        prepare,
        settings=[contextlib.nullcontext, shipped_gc],
    )
    return {
        "events": events,
        "celery_eps": events / celery_s,
        "sluice_eps": events / sluice_s,
        "ratio": celery_s / sluice_s,
        "default_gc_eps": events / default_gc_s,
        "default_gc_ratio": celery_s / default_gc_s,
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
                ("sluice-tui, CPython's default GC", f"{r['default_gc_eps']:>12,.0f} events/s"),
                ("ratio, both with the default GC", f"{r['default_gc_ratio']:>12.2f} x"),
            ],
        )


if __name__ == "__main__":
    main()
