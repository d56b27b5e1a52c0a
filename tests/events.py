"""Realistic Celery event dicts for tests, shaped like what a Receiver hands over."""

from __future__ import annotations

import itertools
from typing import Any

PRODUCER = "producer@app-host"
# Terminal escapes in task data: retitle the window, clear it, move the cursor.
TITLE_ESCAPE = "\x1b]0;pwned\x07"
CURSOR_ESCAPES = "\x1b[2J\x1b[H\x1b[5A"
_clock = itertools.count(1)


def event(
    kind: str, uuid: str | None, timestamp: float, hostname: str = "w1@host", **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind,
        "hostname": hostname,
        "utcoffset": 0,
        "pid": 4242,
        "clock": next(_clock),
        "timestamp": timestamp,
        "local_received": timestamp + 0.001,
    }
    if uuid is not None:
        body["uuid"] = uuid
    body.update(fields)
    return body


def sent(uuid: str, ts: float, name: str = "proj.add", args: str = "(1, 2)", **kw: Any):
    fields = {
        "name": name,
        "args": args,
        "kwargs": "{}",
        "retries": 0,
        "eta": None,
        "expires": None,
        "root_id": uuid,
        "parent_id": None,
        "queue": "celery",
        "exchange": "",
        "routing_key": "celery",
    }
    fields.update(kw)
    return event("task-sent", uuid, ts, PRODUCER, **fields)


def received(
    uuid: str,
    ts: float,
    name: str = "proj.add",
    args: str = "(1, 2)",
    hostname: str = "w1@host",
    **kw: Any,
):
    fields = {
        "name": name,
        "args": args,
        "kwargs": "{}",
        "retries": 0,
        "eta": None,
        "expires": None,
        "root_id": uuid,
        "parent_id": None,
    }
    fields.update(kw)
    return event("task-received", uuid, ts, hostname, **fields)


def started(uuid: str, ts: float, hostname: str = "w1@host"):
    return event("task-started", uuid, ts, hostname)


def succeeded(
    uuid: str, ts: float, result: str = "3", runtime: float = 0.01, hostname: str = "w1@host"
):
    return event("task-succeeded", uuid, ts, hostname, result=result, runtime=runtime)


def failed(uuid: str, ts: float, exception: str = "ValueError('boom')", hostname: str = "w1@host"):
    return event(
        "task-failed",
        uuid,
        ts,
        hostname,
        exception=exception,
        traceback="Traceback (most recent call last):\n  ...\nValueError: boom\n",
    )


def retried(
    uuid: str, ts: float, exception: str = "ConnectionError('try again')", hostname: str = "w1@host"
):
    return event(
        "task-retried",
        uuid,
        ts,
        hostname,
        exception=exception,
        traceback="Traceback (most recent call last):\nConnectionError\n",
    )


def revoked(uuid: str, ts: float, hostname: str = "w1@host", terminated: bool = False):
    return event(
        "task-revoked",
        uuid,
        ts,
        hostname,
        terminated=terminated,
        signum=15 if terminated else None,
        expired=False,
    )


def rejected(uuid: str, ts: float, hostname: str = "w1@host"):
    return event("task-rejected", uuid, ts, hostname, requeue=False)


def heartbeat(hostname: str, local_received: float, freq: float = 2.0, **kw: Any):
    body = event(
        "worker-heartbeat",
        None,
        local_received,
        hostname,
        freq=freq,
        sw_ident="py-celery",
        sw_ver="5.7.0",
        sw_sys="Linux",
        active=1,
        processed=10,
        loadavg=[0.5, 0.4, 0.3],
        **kw,
    )
    body["local_received"] = local_received
    return body
