"""Realistic Celery event streams for the benchmarks, shaped as a Receiver delivers them."""

from __future__ import annotations

import random
import uuid as uuidlib
from collections.abc import Iterator

T0 = 1_700_000_000.0
WORKERS = [f"celery@worker-{n}" for n in range(8)]
TASKS = [
    "shop.orders.confirm",
    "shop.billing.charge",
    "shop.mail.send",
    "media.transcode",
    "reports.build",
    "search.reindex",
]


def _base(kind: str, host: str, clock: int, ts: float) -> dict:
    return {
        "hostname": host,
        "utcoffset": 0,
        "pid": 4242,
        "clock": clock,
        "timestamp": ts,
        "type": kind,
        "local_received": ts + 0.0005,
    }


def task_events(count: int, *, seed: int = 1, retry_share: float = 0.10) -> list[dict]:
    """``count`` events: sent, received, started, succeeded or failed; 10 % retry."""
    return list(iter_task_events(count, seed=seed, retry_share=retry_share))


def iter_task_events(count: int, *, seed: int = 1, retry_share: float = 0.10) -> Iterator[dict]:
    """The same stream, made one job at a time, so nothing holds the whole input."""
    rng = random.Random(seed)
    made = 0
    clock = 0
    t = T0
    while made < count:
        out: list[dict] = []
        job = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        name = rng.choice(TASKS)
        args = repr((rng.randint(1, 10_000), f"order-{rng.randint(1, 99_999)}"))
        host = rng.choice(WORKERS)
        t += 0.001
        clock += 1
        out.append(
            {
                **_base("task-sent", "web@front-1", clock, t),
                "uuid": job,
                "root_id": job,
                "parent_id": None,
                "name": name,
                "args": args,
                "kwargs": "{}",
                "retries": 0,
                "eta": None,
                "expires": None,
                "queue": "celery",
                "exchange": "",
                "routing_key": "celery",
            }
        )
        attempts = 2 if rng.random() < retry_share else 1
        for attempt in range(attempts):
            clock += 1
            out.append(
                {
                    **_base("task-received", host, clock, t + 0.002),
                    "uuid": job,
                    "name": name,
                    "args": args,
                    "kwargs": "{}",
                    "root_id": job,
                    "parent_id": None,
                    "retries": attempt,
                    "eta": None,
                    "expires": None,
                }
            )
            clock += 1
            out.append({**_base("task-started", host, clock, t + 0.003), "uuid": job})
            t += 0.004
            if attempt < attempts - 1:
                clock += 1
                out.append(
                    {
                        **_base("task-retried", host, clock, t),
                        "uuid": job,
                        "exception": "ConnectionError('upstream timeout')",
                        "traceback": "Traceback (most recent call last):\n  ...\n",
                    }
                )
        clock += 1
        if rng.random() < 0.9:
            out.append(
                {
                    **_base("task-succeeded", host, clock, t + 0.005),
                    "uuid": job,
                    "result": "'ok'",
                    "runtime": 0.0021,
                }
            )
        else:
            out.append(
                {
                    **_base("task-failed", host, clock, t + 0.005),
                    "uuid": job,
                    "exception": "ValueError('card declined')",
                    "traceback": "Traceback (most recent call last):\n  ...\nValueError\n",
                }
            )
        yield from out[: count - made]
        made += len(out)
