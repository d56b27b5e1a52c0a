"""What workers say about themselves when asked (inspect), and their throughput.

Pure Python: the Celery adapter asks the workers (``stats``,
``active_queues``, ``registered``, and ``active``/``reserved``/``scheduled``
for one worker's detail) and records the plain replies here; screens and
``sluice-tui stats`` read snapshots.  Replies come from the network, so every
field is checked for its type and anything unexpected is left out, never
trusted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Heartbeats come every 2 s by default: 150 samples are about 5 minutes.
THROUGHPUT_SAMPLES = 150
# Per-task attributes asked with ``registered`` (Celery's task info items).
TASK_LIMIT_FIELDS = ("rate_limit", "time_limit", "soft_time_limit")
HELD_LIMIT = 500  # jobs kept per kind for one worker's detail


@dataclass(frozen=True)
class TaskLimits:
    """A task type's limits as the worker has them now (``registered`` info items)."""

    rate_limit: str | None = None
    time_limit: str | None = None
    soft_time_limit: str | None = None


@dataclass(frozen=True)
class WorkerFigures:
    """One worker's answer to ``stats``, ``active_queues`` and ``registered``.

    ``None`` means the worker did not say (no reply to that question, or a
    field it does not report), never zero.
    """

    hostname: str
    asked_at: float
    pool: str | None = None  # "prefork", "threads", "solo", ...
    concurrency: int | None = None  # the pool's configured limit (max-concurrency)
    pool_size: int | None = None  # processes running now (prefork), else the limit
    autoscale: tuple[int, int] | None = None  # (max, min) when autoscaling
    prefetch: int | None = None  # the consumer's prefetch count now
    queues: tuple[str, ...] | None = None
    registered: tuple[str, ...] | None = None
    limits: Mapping[str, TaskLimits] = field(default_factory=dict)
    totals: Mapping[str, int] = field(default_factory=dict)  # tasks run, by name
    uptime: float | None = None  # seconds


@dataclass(frozen=True)
class HeldJob:
    """A job a worker holds, as inspect ``active``/``reserved``/``scheduled`` shows it."""

    kind: str  # "active", "reserved" or "scheduled"
    id: str
    name: str | None = None
    args: str | None = None
    kwargs: str | None = None
    started: float | None = None  # epoch seconds (active)
    eta: str | None = None  # ISO text (scheduled)


@dataclass(frozen=True)
class HeldJobs:
    hostname: str
    asked_at: float
    jobs: tuple[HeldJob, ...] = ()
    replied: bool = True  # False: the worker did not answer in time


@dataclass(frozen=True)
class BoardStatus:
    """How the last round of asking went, in words for a header line."""

    asking: bool
    asked_at: float | None
    text: str


# -- reading inspect replies (plain dicts and lists off the wire) ---------------


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _pool_name(implementation: Any) -> str | None:
    """'celery.concurrency.prefork:TaskPool' -> 'prefork'."""
    if not isinstance(implementation, str) or not implementation:
        return None
    module = implementation.split(":", 1)[0]
    return module.rsplit(".", 1)[-1] or None


def _limits_of(entry: str) -> tuple[str, TaskLimits | None]:
    """'demo.add [rate_limit=10/m time_limit=5]' -> ('demo.add', TaskLimits(...))."""
    name, bracket, rest = entry.partition(" [")
    if not bracket or not rest.endswith("]"):
        return entry, None
    values: dict[str, str] = {}
    for item in rest[:-1].split(" "):
        key, equals, value = item.partition("=")
        if equals and key in TASK_LIMIT_FIELDS:
            values[key] = value
    return name, TaskLimits(**values) if values else None


def figures_from_replies(
    hostname: str,
    asked_at: float,
    stats: Any = None,
    active_queues: Any = None,
    registered: Any = None,
) -> WorkerFigures:
    """One worker's figures from its three replies (any may be missing)."""
    pool = concurrency = size = prefetch = None
    autoscale = None
    totals: dict[str, int] = {}
    uptime = None
    if isinstance(stats, dict):
        info = stats.get("pool") if isinstance(stats.get("pool"), dict) else {}
        pool = _pool_name(info.get("implementation"))
        concurrency = _int(info.get("max-concurrency"))
        processes = info.get("processes")
        size = len(processes) if isinstance(processes, list) else concurrency
        prefetch = _int(stats.get("prefetch_count"))
        scaler = stats.get("autoscaler")
        if isinstance(scaler, dict):
            high, low = _int(scaler.get("max")), _int(scaler.get("min"))
            if high is not None and low is not None:
                autoscale = (high, low)
        if isinstance(stats.get("total"), dict):
            totals = {str(k): v for k, v in stats["total"].items() if _int(v) is not None}
        if isinstance(stats.get("uptime"), int | float):
            uptime = float(stats["uptime"])
    queues = None
    if isinstance(active_queues, list):
        queues = tuple(
            sorted(str(q["name"]) for q in active_queues if isinstance(q, dict) and q.get("name"))
        )
    names = None
    limits: dict[str, TaskLimits] = {}
    if isinstance(registered, list):
        found = []
        for entry in registered:
            if isinstance(entry, str):
                name, task_limits = _limits_of(entry)
                found.append(name)
                if task_limits is not None:
                    limits[name] = task_limits
        names = tuple(sorted(found))
    return WorkerFigures(
        hostname=hostname,
        asked_at=asked_at,
        pool=pool,
        concurrency=concurrency,
        pool_size=size,
        autoscale=autoscale,
        prefetch=prefetch,
        queues=queues,
        registered=names,
        limits=limits,
        totals=totals,
        uptime=uptime,
    )


def _epoch(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def held_from_replies(
    hostname: str, asked_at: float, active: Any, reserved: Any, scheduled: Any
) -> HeldJobs:
    """A worker's jobs from its ``active``, ``reserved`` and ``scheduled`` replies.

    ``scheduled`` entries wrap the request: ``{"eta": ..., "request": {...}}``.
    A worker that answered none of the three did not reply.
    """
    jobs: list[HeldJob] = []
    for kind, reply in (("active", active), ("reserved", reserved), ("scheduled", scheduled)):
        if not isinstance(reply, list):
            continue
        for entry in reply[:HELD_LIMIT]:
            if not isinstance(entry, dict):
                continue
            request = entry.get("request") if kind == "scheduled" else entry
            if not isinstance(request, dict) or not isinstance(request.get("id"), str):
                continue
            jobs.append(
                HeldJob(
                    kind=kind,
                    id=request["id"],
                    name=_text(request.get("name")),
                    args=_text(request.get("argsrepr")) or _repr(request.get("args")),
                    kwargs=_text(request.get("kwargsrepr")) or _repr(request.get("kwargs")),
                    started=_epoch(request.get("time_start")),
                    eta=_text(entry.get("eta")) if kind == "scheduled" else None,
                )
            )
    replied = any(isinstance(r, list) for r in (active, reserved, scheduled))
    return HeldJobs(hostname, asked_at, tuple(jobs), replied)


def _repr(value: Any) -> str | None:
    return None if value is None else repr(value)


# -- throughput from heartbeats ------------------------------------------------


class Throughput:
    """A bounded series of a worker's ``processed`` count, read as tasks per second.

    Fed from heartbeats (the count is cumulative since the worker started); a
    count that goes down means the worker restarted, and that step is 0.
    """

    __slots__ = ("_samples",)

    def __init__(self, maxlen: int = THROUGHPUT_SAMPLES) -> None:
        self._samples: deque[tuple[float, int]] = deque(maxlen=maxlen)

    def add(self, at: float, processed: int) -> None:
        if self._samples and at <= self._samples[-1][0]:
            return  # a duplicate or out-of-order heartbeat says nothing new
        self._samples.append((at, processed))

    def rates(self) -> tuple[float, ...]:
        """Tasks per second between consecutive heartbeats, oldest first."""
        out = []
        previous = None
        for at, count in self._samples:
            if previous is not None:
                then, before = previous
                done = count - before
                out.append(done / (at - then) if done > 0 else 0.0)
            previous = (at, count)
        return tuple(out)


# -- the board the adapter writes and the screens read --------------------------

NOT_ASKED = "workers not asked yet"


class WorkerBoard:
    """Thread-safe: the adapter records replies, screens take snapshots.

    ``version`` moves on every change, so a screen redraws only when needed.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._figures: dict[str, WorkerFigures] = {}
        self._held: dict[str, HeldJobs] = {}
        self._status = BoardStatus(False, None, NOT_ASKED)
        self._version = 0

    @property
    def version(self) -> int:
        return self._version

    def asking(self, what: str = "asking the workers") -> None:
        with self._lock:
            self._status = BoardStatus(True, self._status.asked_at, what)
            self._version += 1

    def record_figures(self, figures: Iterable[WorkerFigures], at: float | None = None) -> None:
        """A finished round of asking: replace what each answering worker said."""
        at = self._clock() if at is None else at
        with self._lock:
            answered = 0
            for item in figures:
                self._figures[item.hostname] = item
                answered += 1
            text = f"{answered} worker{'s' if answered != 1 else ''} replied"
            self._status = BoardStatus(False, at, text)
            self._version += 1

    def record_failure(self, reason: str, at: float | None = None) -> None:
        """Asking failed or was not allowed; what is known stays."""
        with self._lock:
            asked_at = self._status.asked_at
            self._status = BoardStatus(False, asked_at, reason)
            self._version += 1

    def record_held(self, held: HeldJobs) -> None:
        with self._lock:
            self._held[held.hostname] = held
            self._version += 1

    def figures(self, hostname: str) -> WorkerFigures | None:
        with self._lock:
            return self._figures.get(hostname)

    def all_figures(self) -> dict[str, WorkerFigures]:
        with self._lock:
            return dict(self._figures)

    def held(self, hostname: str) -> HeldJobs | None:
        with self._lock:
            return self._held.get(hostname)

    @property
    def status(self) -> BoardStatus:
        return self._status


def board_of(store: Any) -> WorkerBoard:
    """The store's board of worker figures (``store.worker_info``).

    Kept for callers written before the store made its own board; a store
    without one (a stand-in in a test) gets one on first use.
    """
    board = getattr(store, "worker_info", None)
    if board is None:
        board = store.worker_info = WorkerBoard()
    return board
