"""One job that retries without end: cost per event, memory and a late event's cost.

    python -m bench.long_retry [--events N]

A task with ``max_retries=None`` sends received, started, a re-send and
task-retried for every attempt, under one id, for as long as it runs.  This
feeds such a job through the real adapter and store (history capped, the
default) and prints, per stretch of the stream, the CPU cost per event and the
store's traced memory, beside the same figures for ordinary jobs and for
Celery's ``State`` fed the same stream.  The last rows show what one
out-of-order event for the long job costs, capped and with no cap.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable, Iterator

from celery.events.state import State

from bench.common import machine, report
from bench.events import task_events
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.store import JobStore

JOB = "forever-0001"
T0 = 1_700_000_000.0
UNCAPPED = 10**9


def retrying_events(count: int) -> Iterator[dict]:
    """``count`` events of one job that retries forever, in the order a worker sends them."""
    base = {"uuid": JOB, "hostname": "w1@bench", "utcoffset": 0, "pid": 1, "clock": 1}
    base["local_received"] = T0
    t = T0
    attempt = 0
    sent = 0
    while sent < count:
        for kind in ("task-received", "task-started", "task-sent", "task-retried"):
            if sent == count:
                return
            t += 0.001
            event = {**base, "type": kind, "timestamp": t}
            if kind == "task-received":
                event.update(name="proj.poll", args="('https://x',)", kwargs="{}")
                event["retries"] = attempt
            elif kind == "task-sent":
                event.update(name="proj.poll", args="('https://x',)", kwargs="{}")
                event.update(retries=attempt + 1, parent_id=JOB, queue="celery")
            elif kind == "task-retried":
                event.update(exception="Busy('not yet')", traceback="Traceback ...\nBusy")
                attempt += 1
            yield event
            sent += 1


def per_event_us(feed: Callable[[dict], object], events: list[dict]) -> float:
    started = time.process_time()
    for event in events:
        feed(event)
    return (time.process_time() - started) / len(events) * 1e6


def long_job(total: int, cap: int, checkpoints: list[int], chunk: int) -> list[dict]:
    """Per checkpoint: CPU per event over the ``chunk`` events before it."""
    store = JobStore(history_cap=cap)
    adapter = EventAdapter(store).handle
    stream = retrying_events(total)
    rows = []
    done = 0
    for point in checkpoints:
        while done < point - chunk:
            adapter(next(stream))
            done += 1
        batch = [next(stream) for _ in range(point - done)]  # made outside the timing
        rows.append({"events": point, "us": per_event_us(adapter, batch)})
        done = point
    rows[-1]["late_ms"] = late_event_ms(store, adapter)
    rows[-1]["history"] = len(store.get(JOB).history)
    return rows


def long_job_memory(total: int, cap: int, checkpoints: list[int]) -> list[float]:
    """The traced memory (MB) of store, adapter and job at each checkpoint, separately run."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        adapter = EventAdapter(JobStore(history_cap=cap)).handle
        figures = []
        for done, event in enumerate(retrying_events(total), 1):
            adapter(event)
            if done in checkpoints:
                gc.collect()
                figures.append((tracemalloc.get_traced_memory()[0] - base) / 1e6)
        return figures
    finally:
        tracemalloc.stop()


def late_event_ms(store: JobStore, adapter: Callable[[dict], None]) -> float:
    """CPU time of one event for the long job that arrives out of order (among its recent ones)."""
    history = store.get(JOB).history
    when = history[-8].timestamp - 0.0005
    late = {"type": "task-started", "uuid": JOB, "hostname": "w1@bench", "timestamp": when}
    late.update(utcoffset=0, pid=1, clock=1)
    started = time.process_time()
    adapter(late)
    return (time.process_time() - started) * 1e3


def ordinary_us(count: int) -> float:
    adapter = EventAdapter(JobStore(max_jobs=10_000)).handle
    return per_event_us(adapter, list(task_events(count)))


def celery_us(count: int) -> float:
    state = State()
    return per_event_us(state.event, list(retrying_events(count)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    total = args.events
    chunk = min(20_000, total // 10)
    checkpoints = sorted({max(chunk, total // 100), total // 10, total // 2, total})
    print(f"machine: {machine()}")
    ordinary = ordinary_us(min(total, 200_000))
    celery = celery_us(min(total, 200_000))
    capped = long_job(total, 300, checkpoints, chunk)
    memory = long_job_memory(total, 300, checkpoints)
    rows = [
        ("ordinary jobs (4-5 events each)", f"{ordinary:6.2f} us/event"),
        ("Celery State, the long job", f"{celery:6.2f} us/event (keeps no history)"),
    ]
    for row, mb in zip(capped, memory, strict=True):
        rows.append(
            (
                f"long job, events {row['events'] - chunk:,}-{row['events']:,}",
                f"{row['us']:6.2f} us/event  {row['us'] / ordinary:4.2f}x ordinary  "
                f"store memory {mb:6.3f} MB",
            )
        )
    last = capped[-1]
    rows.append(("history entries kept at the end", f"{last['history']}"))
    rows.append(("one out-of-order event, capped", f"{last['late_ms']:.3f} ms"))
    uncapped_total = min(total, 60_000)
    uncapped = long_job(uncapped_total, UNCAPPED, [uncapped_total], min(chunk, 10_000))[-1]
    uncapped_mb = long_job_memory(uncapped_total, UNCAPPED, [uncapped_total])[-1]
    rows.append(
        (
            f"no cap, events {uncapped_total - min(chunk, 10_000):,}-{uncapped_total:,}",
            f"{uncapped['us']:6.2f} us/event; out-of-order event {uncapped['late_ms']:.1f} ms; "
            f"{uncapped['history']:,} entries, {uncapped_mb:.1f} MB",
        )
    )
    report(f"one job retrying forever, {total:,} events (CPU time)", rows)


if __name__ == "__main__":
    main()
