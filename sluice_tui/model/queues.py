"""Broker queue depths over time.  Pure Python, thread-safe.

The queue poller (sluice_tui.celery_adapter.queues) records one sample per
queue per poll; screens and ``stats`` read snapshots with the rate of change
and the last ten minutes of depth.  The board also collects the queue names
the poller should ask about, from every source that knows some.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

HISTORY_SECONDS = 600.0  # the sparkline's span
RATE_WINDOW = 30.0  # the rate is the depth change over about this long
MAX_SAMPLES = 2_000  # per queue: 10 minutes at a 0.3 s poll; a bound, not a target


@dataclass(frozen=True, slots=True)
class QueueSample:
    at: float  # epoch seconds
    messages: int | None  # None: missing, or the broker did not say
    consumers: int | None  # None where the broker does not say (Redis, filesystem)
    missing: bool = False
    priorities: Mapping[int, int] = field(default_factory=dict)  # Redis: step -> messages
    error: str | None = None


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    name: str
    messages: int | None
    consumers: int | None
    missing: bool
    rate: float | None  # messages per second: + filling, - draining; None until two samples
    history: tuple[float, ...]  # depth over the last 10 minutes, oldest first
    priorities: Mapping[int, int]
    sources: tuple[str, ...]  # why the queue is watched: app, worker, event, command line
    error: str | None
    updated: float | None

    @property
    def stuck(self) -> bool:
        """A backlog and, by the broker's word or the workers', no consumer."""
        return bool(self.messages) and self.consumers == 0


class QueueBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: dict[str, deque[QueueSample]] = {}
        self._sources: dict[str, set[str]] = {}
        self._consumers_known: dict[str, int] = {}
        self.seen: set[str | None] = set()  # queues named by events; the store reads it
        self.version = 0

    # -- which queues ---------------------------------------------------

    def watch(self, names: Iterable[str | None], source: str) -> None:
        """Ask the poller to track these queues (source: 'app', 'worker', 'event', 'option')."""
        with self._lock:
            for name in names:
                if name:
                    sources = self._sources.setdefault(name, set())
                    if source not in sources:
                        sources.add(source)
                        self.version += 1

    def saw(self, name: str) -> None:
        """A job's queue, from an event: called by the store on ingest, so cheap when known."""
        if not name or name in self.seen:  # a set read needs no lock; adding takes it
            return
        with self._lock:
            self.seen.add(name)
            self._sources.setdefault(name, set()).add("event")
            self.version += 1

    def watched(self) -> list[str]:
        with self._lock:
            return sorted(self._sources)

    def set_worker_consumers(self, counts: Mapping[str, int]) -> None:
        """Consumers per queue as the workers' active_queues say (Redis, filesystem)."""
        with self._lock:
            self._consumers_known = dict(counts)
            self.version += 1

    # -- samples ----------------------------------------------------------

    def record(self, name: str, sample: QueueSample) -> None:
        with self._lock:
            samples = self._samples.get(name)
            if samples is None:
                samples = self._samples[name] = deque(maxlen=MAX_SAMPLES)
                self._sources.setdefault(name, set())
            samples.append(sample)
            oldest = sample.at - HISTORY_SECONDS
            while samples and samples[0].at < oldest:
                samples.popleft()
            self.version += 1

    def snapshot(self) -> list[QueueSnapshot]:
        with self._lock:
            return [self._one(name) for name in sorted(self._sources)]

    def get(self, name: str) -> QueueSnapshot | None:
        with self._lock:
            return self._one(name) if name in self._sources else None

    def _one(self, name: str) -> QueueSnapshot:
        samples = self._samples.get(name) or ()
        last = samples[-1] if samples else None
        consumers = None if last is None else last.consumers
        if consumers is None and name in self._consumers_known:
            consumers = self._consumers_known[name]
        elif consumers is None and self._consumers_known and last is not None:
            consumers = 0  # workers answered, and none consumes this queue
        return QueueSnapshot(
            name=name,
            messages=None if last is None else last.messages,
            consumers=consumers,
            missing=bool(last and last.missing),
            rate=_rate(samples),
            history=tuple(float(s.messages or 0) for s in samples),
            priorities=dict(last.priorities) if last else {},
            sources=tuple(sorted(self._sources.get(name, ()))),
            error=None if last is None else last.error,
            updated=None if last is None else last.at,
        )


def _rate(samples: Iterable[QueueSample]) -> float | None:
    """Depth change per second over the last RATE_WINDOW seconds of readable samples."""
    readable = [s for s in samples if s.messages is not None]
    if len(readable) < 2:
        return None
    last = readable[-1]
    first = next((s for s in readable if s.at >= last.at - RATE_WINDOW), readable[0])
    if first is last:
        first = readable[-2]
    elapsed = last.at - first.at
    if elapsed <= 0:
        return None
    return (last.messages - first.messages) / elapsed  # type: ignore[operator]


def queues_of(store: Any) -> QueueBoard:
    """The store's queue board (``store.queues``), made on first use for a bare store."""
    board = getattr(store, "queues", None)
    if board is None:
        board = store.queues = QueueBoard()
    return board
