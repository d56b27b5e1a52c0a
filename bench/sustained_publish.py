"""One publisher process for bench.sustained: task events at a fixed rate, then its counts.

    python -m bench.sustained_publish --broker URL --tag TAG --rate R --seconds S --seed K

It connects and declares the event exchange, prints ``ready``, waits for a
line on stdin, publishes R events a second for S seconds (finishing the job
under way, so every job it started ends in a final state), then prints one
JSON line: events and jobs published, the seconds it took, and how far it
fell behind its schedule.

Messages are built as Celery's EventDispatcher builds them (JSON body, one
routing key per event type) but written with as little client work as
possible, so the publishers leave the CPU to the monitors: RabbitMQ through
the py-amqp channel, Redis as pipelined PUBLISH commands of kombu's envelope.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from celery.events.event import get_exchange
from kombu import Connection

from bench.events import iter_task_events
from bench.sustained_app import event_exchange

FINAL = frozenset({"task-succeeded", "task-failed"})
# Publish in slices this long: a pacing check per slice, not per event.
SLICE = 0.005
# A publisher that fell behind catches up in batches no bigger than this.
MAX_BATCH = 500


def fresh_events(seed: int) -> Iterator[dict]:
    """bench.events' stream, stamped now (monitors age out old jobs) and as sent."""
    for event in iter_task_events(10**9, seed=seed):
        del event["local_received"]  # the receiver adds it, never the sender
        event["timestamp"] = time.time()
        yield event


def amqp_sender(conn: Connection, exchange: str) -> Callable[[list[dict]], None]:
    channel = conn.default_channel
    # py-amqp polls the socket before every publish when the server may send
    # connection.blocked, and writes each message with its own send call: a
    # publisher doing that tops out below the monitors' rates.  The frames of
    # a slice go out in one write instead, and nothing is read meanwhile.
    capabilities = channel.connection.client_properties.setdefault("capabilities", {})
    capabilities["connection.blocked"] = False
    transport = channel.connection.transport
    write = transport._write
    frames: list[bytes] = []

    def collect(data) -> None:
        frames.append(bytes(data))  # py-amqp reuses its buffer for the next frame

    def send(events: list[dict]) -> None:
        transport._write = collect
        try:
            for event in events:
                message = event_message(channel, event)
                channel.basic_publish(
                    message, exchange=exchange, routing_key=event["type"].replace("-", ".")
                )
        finally:
            transport._write = write
        write(b"".join(frames))
        frames.clear()

    return send


def event_message(channel: Any, event: dict) -> Any:
    """The message Celery's EventDispatcher would make of ``event``, on either transport."""
    return channel.prepare_message(
        json.dumps(event),
        content_type="application/json",
        content_encoding="utf-8",
        headers={"hostname": event["hostname"]},
        properties={"delivery_mode": 1},
    )


def redis_sender(conn: Connection, exchange: str) -> Callable[[list[dict]], None]:
    channel = conn.default_channel
    client = channel.client

    def send(events: list[dict]) -> None:
        pipe = client.pipeline(transaction=False)
        for event in events:
            routing_key = event["type"].replace("-", ".")
            message = event_message(channel, event)
            channel._inplace_augment_message(message, exchange, routing_key)
            payload = json.dumps(message)
            for topic in channel._get_publish_topics(exchange, routing_key):
                pipe.publish(topic, payload)
        pipe.execute()

    return send


def publish(conn: Connection, exchange: str, rate: int, seconds: float, seed: int) -> dict:
    make = redis_sender if conn.transport_cls in ("redis", "rediss") else amqp_sender
    send = make(conn, exchange)
    stream = fresh_events(seed)
    events = jobs = 0
    behind = 0.0
    started = time.monotonic()
    last_final = True
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= seconds and last_final:
            break
        due = min(int(rate * min(elapsed + SLICE, seconds)) - events, MAX_BATCH)
        if elapsed >= seconds:
            due = 1  # finish the job under way
        if due > 0:
            batch = [next(stream) for _ in range(due)]
            send(batch)
            events += len(batch)
            finished = sum(1 for event in batch if event["type"] in FINAL)
            jobs += finished
            last_final = batch[-1]["type"] in FINAL
            behind = max(behind, time.monotonic() - started - events / rate)
        else:
            time.sleep(SLICE)
    took = time.monotonic() - started
    return {"events": events, "jobs": jobs, "seconds": took, "behind": behind}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--rate", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    exchange = event_exchange(args.tag)
    with Connection(args.broker) as conn:
        get_exchange(conn, name=exchange)(conn.default_channel).declare()
        print("ready", flush=True)
        if not sys.stdin.readline():
            return  # the bench went away before the start
        result = publish(conn, exchange, args.rate, args.seconds, args.seed)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
