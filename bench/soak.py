"""Soak: hours of live events through a real broker; memory must stay flat.

    python -m bench.soak [--minutes 60] [--rate 1500] [--max-jobs 100000] [--broker URL] [--trace]

A publisher process sends a realistic event stream (plus worker heartbeats) at
a steady rate; this process runs sluice-tui's receiver thread into a store
with ``max_jobs``, and a reader thread polls the store's change feed ten times
a second as the UI does.  A fixed set of jobs starts and never finishes, as
long-running tasks do; they must be kept however much is evicted.

Every sample prints the process's resident memory, jobs held, events taken in
and evicted.  The verdict compares memory once ``max_jobs`` is reached (plus a
warm-up) with the end of the run, and checks that every published event
arrived: the receiver kept draining.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc

from kombu import Connection, Producer

from bench.common import machine, report
from bench.end_to_end import REDIS, bench_app
from bench.events import WORKERS, iter_task_events
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.states import JobState
from sluice_tui.model.store import DEFAULT_MAX_JOBS, JobStore

LONG_RUNNING = 500  # jobs that start and never finish
WARM_UP = 120.0  # seconds after max_jobs is reached before memory counts as settled


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def publish(broker: str, exchange_name: str, rate: float, seconds: float) -> None:
    """The publisher process: ``rate`` events a second for ``seconds``; prints the count."""
    from celery.events.event import get_exchange

    stream = iter_task_events(10**12, seed=11)
    sent = 0
    with Connection(broker) as conn:
        producer = Producer(conn, exchange=get_exchange(conn, name=exchange_name))

        def send(event: dict) -> None:
            nonlocal sent
            now = time.time()
            event["timestamp"] = now
            producer.publish(event, routing_key=event["type"].replace("-", "."), serializer="json")
            sent += 1

        for n in range(LONG_RUNNING):
            job = f"long-running-{n}"
            host = WORKERS[n % len(WORKERS)]
            for kind in ("task-received", "task-started"):
                send(_event(kind, host, uuid=job, name="etl.nightly", args="()", kwargs="{}"))
        started = time.monotonic()
        next_heartbeat = 0.0
        while (elapsed := time.monotonic() - started) < seconds:
            if elapsed >= next_heartbeat:
                next_heartbeat += 2.0
                for host in WORKERS:
                    send(_event("worker-heartbeat", host, freq=2.0, active=1, processed=sent))
            due = int(elapsed * rate) + LONG_RUNNING * 2
            while sent < due:
                send(next(stream))
            time.sleep(0.01)  # pacing: the next batch is due in 10 ms
    print(json.dumps({"sent": sent}), flush=True)


def _event(kind: str, host: str, **fields) -> dict:
    body = {"type": kind, "hostname": host, "utcoffset": 0, "pid": 1, "clock": 0}
    body.update(fields)
    return body


def poll_like_the_ui(store: JobStore, stop: threading.Event) -> None:
    version = 0
    while not stop.wait(0.1):
        changes = store.changes_since(version)
        version = changes.version
        if changes.job_ids:
            store.rows(list(changes.job_ids)[:5000])
        store.counts()
        store.worker_counts()


def soak(
    broker: str, minutes: float, rate: float, max_jobs: int, every: float, trace: bool
) -> None:
    if trace:
        tracemalloc.start()
    settled_snapshot = None
    app = bench_app(broker)
    store = JobStore(max_jobs=max_jobs)
    receiver = ReceiverThread(app, store, read_only=True)
    receiver.start()
    deadline = time.monotonic() + 30
    while store.status.state != "connected" and time.monotonic() < deadline:
        time.sleep(0.1)  # the receiver reports its own progress; nothing to wait on
    stop = threading.Event()
    reader = threading.Thread(target=poll_like_the_ui, args=(store, stop), daemon=True)
    reader.start()
    seconds = minutes * 60
    publisher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--publish",
            broker,
            app.conf.event_exchange,
            str(rate),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    samples: list[tuple[float, float, int, int, int]] = []
    full_at: float | None = None
    traced = f" {'traced MB':>9}" if trace else ""
    print(
        f"{'minute':>7} {'RSS MB':>8}{traced} {'jobs':>8} {'events':>11} {'evicted':>10}",
        flush=True,
    )
    while True:
        try:
            publisher.wait(timeout=every)
            break
        except subprocess.TimeoutExpired:
            pass
        stats = store.stats()
        t = time.monotonic() - started
        samples.append((t, rss_mb(), stats.jobs, stats.events, stats.evicted))
        if full_at is None and stats.evicted:
            full_at = t
        if trace:
            traced = f" {tracemalloc.get_traced_memory()[0] / 1e6:9.1f}"
            if settled_snapshot is None and full_at is not None and t >= full_at + WARM_UP:
                settled_snapshot = tracemalloc.take_snapshot()
        print(
            f"{t / 60:7.1f} {samples[-1][1]:8.1f}{traced} {stats.jobs:8,} {stats.events:11,} "
            f"{stats.evicted:10,}",
            flush=True,
        )
    sent = json.loads(publisher.stdout.read().strip().splitlines()[-1])["sent"]
    drain_deadline = time.monotonic() + 60
    while store.stats().events < sent and time.monotonic() < drain_deadline:
        time.sleep(0.2)  # the last events are still in flight
    # Stop at once: with the publisher gone, its workers' heartbeats stop too,
    # and a few seconds on the receiver would rightly mark them lost.
    stop.set()
    receiver.stop()
    stats = store.stats()
    long_running = sum(
        1 for s in store.snapshots([JobState.ACTIVE]) if s.id.startswith("long-running-")
    )
    settled = [s for s in samples if full_at is not None and s[0] >= full_at + WARM_UP]
    rows = [
        ("duration", f"{samples[-1][0] / 60:.1f} min at {rate:,.0f} events/s"),
        ("events published / taken in", f"{sent:,} / {stats.events:,}"),
        ("bad events", f"{stats.bad_events}"),
        ("jobs held at the end (max_jobs)", f"{stats.jobs:,} ({max_jobs:,})"),
        ("long-running jobs kept", f"{long_running} of {LONG_RUNNING}"),
        ("evicted", f"{stats.evicted:,}"),
        ("max_jobs reached at", f"{full_at / 60:.1f} min" if full_at else "never"),
    ]
    if len(settled) >= 2:
        first, last = settled[0][1], settled[-1][1]
        peak = max(s[1] for s in settled)
        hours = (settled[-1][0] - settled[0][0]) / 3600
        rows += [
            ("RSS once settled: first / last / peak", f"{first:.1f} / {last:.1f} / {peak:.1f} MB"),
            (
                "RSS drift once settled",
                f"{last - first:+.1f} MB ({(last - first) / hours:+.1f} MB/h)",
            ),
        ]
    report(f"soak on {broker.split('@')[-1]}", rows)
    if settled_snapshot is not None:
        print("\ntraced growth since memory settled, top sites:")
        growth = tracemalloc.take_snapshot().compare_to(settled_snapshot, "lineno")
        for stat in growth[:8]:
            print(f"  {stat}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=float, default=1500)
    parser.add_argument("--max-jobs", type=int, default=DEFAULT_MAX_JOBS)
    parser.add_argument("--broker", default=REDIS)
    parser.add_argument("--every", type=float, default=60, help="seconds between samples")
    parser.add_argument(
        "--trace", action="store_true", help="also track Python allocations (tracemalloc)"
    )
    parser.add_argument("--publish", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        broker, exchange, rate, seconds = args.publish
        publish(broker, exchange, float(rate), float(seconds))
        return
    print(f"machine: {machine()}")
    soak(args.broker, args.minutes, args.rate, args.max_jobs, args.every, args.trace)


if __name__ == "__main__":
    main()
