"""Asking workers about themselves: inspect ``stats``, ``active_queues``, ``registered``.

Each question is a broadcast that waits up to ``timeout`` for replies, so
call these off the UI thread.  An inspect request is a published message:
never call them in ``--read-only`` (the actions gate refuses it first).
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery

from sluice_tui.model.worker_info import (
    TASK_LIMIT_FIELDS,
    HeldJobs,
    WorkerFigures,
    figures_from_replies,
    held_from_replies,
)

INSPECT_TIMEOUT = 1.0


def _ask(inspector: Any, method: str, *args: Any) -> dict[str, Any]:
    replies = getattr(inspector, method)(*args)
    return replies if isinstance(replies, dict) else {}


def ask_figures(
    app: Celery, *, destination: list[str] | None = None, timeout: float = INSPECT_TIMEOUT
) -> list[WorkerFigures]:
    """Every replying worker's figures (or only ``destination``'s).

    Raises what the broker raises when it cannot be reached.
    """
    asked_at = time.time()
    inspector = app.control.inspect(destination=destination, timeout=timeout)
    stats = _ask(inspector, "stats")
    queues = _ask(inspector, "active_queues")
    registered = _ask(inspector, "registered", *TASK_LIMIT_FIELDS)
    hostnames = sorted(set(stats) | set(queues) | set(registered))
    return [
        figures_from_replies(
            str(host), asked_at, stats.get(host), queues.get(host), registered.get(host)
        )
        for host in hostnames
    ]


def ask_held(app: Celery, hostname: str, *, timeout: float = INSPECT_TIMEOUT) -> HeldJobs:
    """The jobs one worker holds: running, reserved (prefetched) and waiting for an ETA."""
    asked_at = time.time()
    inspector = app.control.inspect(destination=[hostname], timeout=timeout)
    active = _ask(inspector, "active").get(hostname)
    reserved = _ask(inspector, "reserved").get(hostname)
    scheduled = _ask(inspector, "scheduled").get(hostname)
    return held_from_replies(hostname, asked_at, active, reserved, scheduled)
