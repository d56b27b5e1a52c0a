"""Figures per task name: lifetime totals, runtimes and throughput; held counts by state.

Pure Python.  Two halves, so that ingest stays cheap:

- lifetime figures (completed, failed, retries since the monitor started, the
  runtime histogram, per-minute completions and failures): the store calls
  :meth:`TaskTypes.record` when a job finishes or retries, about once a job;
- jobs held now by state: counted by the reader from the jobs it holds (the
  job table's index keeps them per name as it syncs; ``stats`` counts the
  store's rows with :func:`held_counts`), so they agree with the job table by
  construction, evictions included.

Runtimes go into a fixed log-scale histogram per type (buckets a factor
``GROWTH`` wide), so a percentile costs a walk over a few dozen buckets, not a
sort of all runtimes.  A percentile is reported as its bucket's geometric
middle, within ``RELATIVE_ERROR`` of the true runtime of that rank; max is exact.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sluice_tui.model.states import ALL_STATES, JobState

GROWTH = 1.02  # each histogram bucket is 2 % wider than the last
RELATIVE_ERROR = (GROWTH - 1) / (GROWTH + 1)  # about 1 %: middle to either edge
SMALLEST = 1e-6  # runtimes below a microsecond share the first bucket
MINUTES = 10  # the sparkline's span, in one-minute buckets
MIN_SPAN = 5.0  # seconds: a rate over less is mostly noise
_LOG_GROWTH = math.log(GROWTH)
_PER_LOG = 1 / _LOG_GROWTH
_PER_SMALLEST = 1 / SMALLEST
_log = math.log
_COMPLETED, _FAILED, _RETRYING = JobState.COMPLETED, JobState.FAILED, JobState.RETRYING
_STATE_INDEX = {state: i for i, state in enumerate(ALL_STATES)}


MAX_RUNTIME = 366 * 24 * 3600.0  # seconds


def bucket_of(seconds: float) -> int:
    if seconds <= SMALLEST:
        return 0
    return 1 + int(_log(seconds * _PER_SMALLEST) * _PER_LOG)


def bucket_value(bucket: int) -> float:
    """The geometric middle of a bucket: within RELATIVE_ERROR of anything in it."""
    if bucket == 0:
        return SMALLEST
    low = SMALLEST * GROWTH ** (bucket - 1)
    return low * math.sqrt(GROWTH)


@dataclass(frozen=True, slots=True)
class TaskTypeSnapshot:
    name: str
    counts: dict[JobState, int]  # jobs held now, by state (agrees with the job table)
    held: int
    completed: int  # lifetime: completed since the monitor started
    failed: int  # lifetime: failed since the monitor started
    retries: int  # lifetime: retries seen
    p50: float | None  # seconds, over finished jobs since start
    p95: float | None
    max: float | None
    per_minute: float  # finished jobs per minute over the last 10 minutes (or since watched)
    completions: tuple[int, ...]  # per minute, oldest first, the last one is this minute
    failures: tuple[int, ...]

    @property
    def finished(self) -> int:
        return self.completed + self.failed

    @property
    def failure_rate(self) -> float | None:
        """Failed over finished (lifetime); None when nothing has finished."""
        return self.failed / self.finished if self.finished else None


class _Type:
    __slots__ = (
        "cached",
        "completed",
        "failed",
        "first_finish",
        "histogram",
        "max",
        "minute",
        "minutes",
        "retries",
        "runtimes",
        "slot",
    )

    def __init__(self) -> None:
        self.completed = self.failed = self.retries = self.runtimes = 0
        self.histogram: dict[int, int] = {}
        self.max: float | None = None
        # minute number -> [completed, failed]; only the last MINUTES kept
        self.minutes: dict[int, list[int]] = {}
        self.minute = -1  # the minute of the latest finish, and its [completed, failed]
        self.slot = [0, 0]
        self.first_finish: float | None = None
        self.cached: tuple[float | None, float | None] | None = None  # (p50, p95)

    def percentiles(self) -> tuple[float | None, float | None]:
        if self.cached is None:
            # A bucket's middle can lie above the exact max: never show more.
            self.cached = tuple(  # type: ignore[assignment]
                None if value is None else min(value, self.max)
                for value in (self.quantile(0.5), self.quantile(0.95))
            )
        return self.cached

    def quantile(self, q: float) -> float | None:
        if not self.runtimes:
            return None
        # The nearest-rank runtime: the ceil(q * n)-th smallest.
        rank = max(1, math.ceil(q * self.runtimes))
        seen = 0
        for bucket in sorted(self.histogram):
            seen += self.histogram[bucket]
            if seen >= rank:
                return bucket_value(bucket)
        return None  # not reached: the buckets add up to runtimes


def held_counts(rows: Iterable[Any]) -> dict[str, list[int]]:
    """Jobs per task name and state (in ALL_STATES order), from rows with .name and .state."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        if row.name is not None:
            per = counts.get(row.name)
            if per is None:
                per = counts[row.name] = [0] * len(ALL_STATES)
            per[_STATE_INDEX[row.state]] += 1
    return counts


_NOBODY = _Type()  # the figures of a type with nothing finished yet (never written)


class TaskTypes:
    """Thread-safe lifetime figures per task name; written by the store, read by screens."""

    def __init__(self, lock: threading.Lock | None = None, since: float | None = None) -> None:
        # The store passes its own lock: it calls record() holding it, so the
        # hot path takes no second lock, and readers take that one.
        self._lock = lock or threading.Lock()
        self.since = since  # when watching began (epoch): the rate's window starts there
        self._types: dict[str, _Type] = {}
        self.version = 0  # moves with every change: readers skip work when still

    # -- writer side ------------------------------------------------------------

    def record(
        self, name: str | None, state: JobState, timestamp: float, runtime: float | None
    ) -> None:
        """A job moved into completed, failed or retrying.  The caller holds ``lock``.

        Called once or twice a job on the store's ingest path, so kept lean.
        """
        if name is None:
            return
        self.version += 1
        kind = self._types.get(name)
        if kind is None:
            kind = self._types[name] = _Type()
        if state is _RETRYING:
            kind.retries += 1
            return
        failed = state is _FAILED
        if not failed and state is not _COMPLETED:
            return
        if failed:
            kind.failed += 1
        else:
            kind.completed += 1
        minute = int(timestamp // 60)
        if minute != kind.minute:
            self._new_minute(kind, minute, timestamp)
        kind.slot[failed] += 1
        # A runtime past a year is a malformed event, not a measurement (and
        # would overflow the bucket arithmetic).
        if runtime is not None and 0 <= runtime < MAX_RUNTIME:
            bucket = 1 + int(_log(runtime * _PER_SMALLEST) * _PER_LOG) if runtime > SMALLEST else 0
            histogram = kind.histogram
            histogram[bucket] = histogram.get(bucket, 0) + 1
            kind.runtimes += 1
            if kind.max is None or runtime > kind.max:
                kind.max = runtime
            kind.cached = None

    def _new_minute(self, kind: _Type, minute: int, timestamp: float) -> None:
        if kind.first_finish is None:
            kind.first_finish = timestamp
        minutes = kind.minutes
        slot = minutes.get(minute)
        if slot is None:
            slot = minutes[minute] = [0, 0]
            if len(minutes) > MINUTES + 1:
                for old in sorted(minutes)[: len(minutes) - MINUTES - 1]:
                    del minutes[old]
        kind.minute = minute
        kind.slot = slot

    # -- reader side --------------------------------------------------------

    def names(self) -> list[str]:
        with self._lock:
            return list(self._types)

    def snapshot(
        self, now: float, held: Mapping[str, Sequence[int]] | None = None
    ) -> list[TaskTypeSnapshot]:
        """Every task type seen: those with lifetime figures, then any only held now."""
        this_minute = int(now // 60)
        minutes = range(this_minute - MINUTES + 1, this_minute + 1)
        held = held or {}
        nothing = (0,) * len(ALL_STATES)
        empty = (0, 0)
        result = []
        with self._lock:
            types = self._types
            names = list(types)
            names += [name for name in held if name not in types]
            for name in names:
                kind = types.get(name) or _NOBODY
                p50, p95 = kind.percentiles()
                per = [kind.minutes.get(m, empty) for m in minutes]
                done = tuple(p[0] for p in per)
                bad = tuple(p[1] for p in per)
                counts = held.get(name, nothing)
                result.append(
                    TaskTypeSnapshot(
                        name=name,
                        counts=dict(zip(ALL_STATES, counts, strict=True)),
                        held=sum(counts),
                        completed=kind.completed,
                        failed=kind.failed,
                        retries=kind.retries,
                        p50=p50,
                        p95=p95,
                        max=kind.max,
                        per_minute=_per_minute(
                            sum(done) + sum(bad), kind.first_finish, now, self.since
                        ),
                        completions=done,
                        failures=bad,
                    )
                )
        return result


def _per_minute(finished: int, first: float | None, now: float, since: float | None) -> float:
    """Finished jobs per minute over the last 10 minutes, or since watching began.

    The window starts when watching did (or at an earlier finish, restored
    from a journal): 23 jobs in `stats --seconds 8` are some 170 a minute,
    not 23.
    """
    if first is None or not finished:
        return 0.0
    start = first if since is None else min(first, since)
    span = min(MINUTES * 60.0, max(MIN_SPAN, now - start))
    return finished * 60.0 / span


def task_types_of(store: Any) -> TaskTypes:
    """The store's task types (``store.task_types``), made on first use for a bare store."""
    types = getattr(store, "task_types", None)
    if types is None:
        types = store.task_types = TaskTypes()
    return types
