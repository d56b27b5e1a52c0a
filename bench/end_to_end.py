"""End to end: drain a real broker's event backlog; CPU time per event, side by side.

    python -m bench.end_to_end [--events N] [--redis-events N] [--repeat R] [--process]

With ``--process`` it measures whole processes instead (``bench.drain``: the
shipped ``sluice-tui dump`` against a process running Celery's receiver), the
figure users see; without, only the receive path, inside this process.

For each side a consumer subscribes, then stops reading while N events are
published (the backlog), then drains it.  Only the draining thread's CPU time
is counted.  Celery's side is its bare EventReceiver with a handler that only
counts; sluice-tui's side is its receiver feeding the full store.

sluice-tui's side here is the kombu receive path (Celery's EventReceiver,
hardened): the one every transport but RabbitMQ and Redis takes.  On those
two the shipped receiver takes its lean paths instead, which this in-process
harness does not drive; ``--process`` measures them as users run them.

RabbitMQ: Celery declares event queues with a 5 s message TTL
(event_queue_ttl), so a backlog older than that would silently vanish; this
benchmark sets the TTL to 10 minutes deliberately.  Redis: pub/sub drops a
subscriber whose unread output passes its buffer limit, so the Redis burst is
kept small enough to survive.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid
from collections.abc import Callable

from celery import Celery
from celery.events.event import get_exchange
from kombu import Connection, Producer

from bench.common import machine, report
from bench.events import iter_task_events
from sluice_tui.celery_adapter.receiver import ReceiverThread, _Receiver
from sluice_tui.model.store import JobStore

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
REDIS = "redis://127.0.0.1:6379/14"


def bench_app(broker: str) -> Celery:
    app = Celery("sluice-bench", broker=broker, set_as_current=False)
    app.conf.event_exchange = f"sluice-bench-{uuid.uuid4().hex[:8]}.ev"
    app.conf.event_queue_ttl = 600.0
    app.conf.event_queue_expires = 600.0
    return app


def fill(app: Celery, events: int) -> None:
    with Connection(app.conf.broker_url) as conn:
        # Celery's own choice of exchange: topic, or fanout on Redis.
        exchange = get_exchange(conn, name=app.conf.event_exchange)
        producer = Producer(conn, exchange=exchange, serializer="json")
        for event in iter_task_events(events, seed=7):
            producer.publish(event, routing_key=event["type"].replace("-", "."), delivery_mode=1)


def drain_seconds(app: Celery, receiver, events: int, seen: Callable[[], int]) -> float:
    """Subscribe, publish the backlog, then time the drain on this thread."""
    with receiver.consumer_context(wakeup=False) as (conn, _channel, _consumers):
        # Kombu subscribes to Redis pub/sub on the first poll: poll once first.
        with contextlib.suppress(TimeoutError):
            conn.drain_events(timeout=0.2)
        fill(app, events)
        started = time.thread_time()
        deadline = time.monotonic() + 120
        while seen() < events and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=1)
            except TimeoutError:
                continue
        elapsed = time.thread_time() - started
    if seen() < events:
        raise RuntimeError(f"only {seen()} of {events} events arrived")
    return elapsed


def celery_side(broker: str, events: int) -> float:
    app = bench_app(broker)
    count = [0]

    def noop(event: dict) -> None:
        count[0] += 1

    with app.connection_for_read() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": noop})
        return drain_seconds(app, receiver, events, lambda: count[0])


def sluice_side(broker: str, events: int) -> float:
    app = bench_app(broker)
    store = JobStore()
    owner = ReceiverThread(app, store, read_only=True)  # never started: we drive it here
    with app.connection_for_read() as conn:
        receiver = _Receiver(owner, conn)
        return drain_seconds(app, receiver, events, lambda: store.event_count)


def measure(broker: str, events: int, repeat: int) -> dict[str, float]:
    best = {"celery": float("inf"), "sluice": float("inf")}
    for _ in range(repeat):
        best["celery"] = min(best["celery"], celery_side(broker, events))
        best["sluice"] = min(best["sluice"], sluice_side(broker, events))
    return {
        "celery_ms": best["celery"] / events * 1000 * 1000,
        "sluice_ms": best["sluice"] / events * 1000 * 1000,
        "ratio": best["celery"] / best["sluice"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--redis-events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--process", action="store_true", help="whole processes (bench.drain)")
    args = parser.parse_args()
    if args.process:
        from bench import drain

        argv = ["--events", str(args.events), "--redis-events", str(args.redis_events)]
        drain.main([*argv, "--repeat", str(args.repeat)])
        return
    print(f"machine: {machine()}")
    for name, broker, events in (
        ("RabbitMQ", RABBITMQ, args.events),
        ("Redis", REDIS, args.redis_events),
    ):
        r = measure(broker, events, args.repeat)
        report(
            f"end to end, {name}: drain a {events:,}-event backlog "
            f"(CPU ms per 1 000 events, best of {args.repeat})",
            [
                ("Celery EventReceiver + no-op handler", f"{r['celery_ms']:7.1f} ms"),
                ("sluice-tui receiver + full store", f"{r['sluice_ms']:7.1f} ms"),
                ("ratio (target >= 1.0, aim 1.15)", f"{r['ratio']:7.2f} x"),
            ],
        )


if __name__ == "__main__":
    main()
