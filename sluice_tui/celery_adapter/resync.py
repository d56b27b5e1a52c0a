"""Catch up after a gap in the event stream by asking the cluster what it holds.

Workers answer Celery's inspect API (``active``, ``reserved``, ``scheduled``,
``revoked``) with the jobs they hold right now; the result backend, if any,
knows how jobs that finished during the gap ended.  Each job whose state this
corrects gets a history entry naming the resync, not an event, as its source.
Replies are untrusted input like events: anything malformed is counted and
skipped.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.backends.base import BaseKeyValueStoreBackend, DisabledBackend
from celery.utils.saferepr import saferepr

from sluice_tui.celery_adapter.connect import describe_error
from sluice_tui.celery_adapter.control import REPR_LIMIT
from sluice_tui.celery_adapter.events import IDENTITY, MAX_ID_LENGTH
from sluice_tui.model.job import NO_FIELDS, Field, FieldPlan, Step
from sluice_tui.model.states import ALL_STATES, JobState
from sluice_tui.model.store import JobStore

INSPECT_TIMEOUT = 1.0
# Result backend lookups per resync, and the time they may take: a gap after a
# long outage must not keep the resync busy for minutes.  A key-value backend
# (Redis, memcached) answers LOOKUP_BATCH of them per round trip: a restart
# after a busy hour finds tens of thousands of jobs to look up.
MAX_BACKEND_LOOKUPS = 50_000
LOOKUP_BATCH = 1_000
BACKEND_BUDGET = 5.0

# A time_start this far before the workers were asked, or after, is not
# believed (see _started_at).
MAX_RUN_SECONDS = 30 * 24 * 3600.0
MAX_CLOCK_AHEAD = 3600.0

RUNNING = Step(JobState.ACTIVE, "resync: running on worker", 2)
RESERVED = Step(JobState.QUEUED, "resync: reserved by worker", 1)
SCHEDULED = Step(JobState.SCHEDULED, "resync: scheduled on worker", 1)
REVOKED = Step(JobState.CANCELLED, "resync: in workers' revoked list", 4)
FROM_BACKEND = {
    "SUCCESS": Step(JobState.COMPLETED, "resync: result backend", 6),
    "FAILURE": Step(JobState.FAILED, "resync: result backend", 5),
    "REVOKED": Step(JobState.CANCELLED, "resync: result backend", 4),
}

_REQUEST_FIELDS = FieldPlan.of(identity=IDENTITY, sets_worker=True)
_SCHEDULED_FIELDS = FieldPlan.of((Field("eta", "eta"),), identity=IDENTITY, sets_worker=True)
_OUTCOME_FIELDS = FieldPlan.of(
    (Field("result", "result"), Field("exception", "exception"), Field("traceback", "traceback"))
)
# Jobs that may have moved on without us hearing: worth asking the backend about.
_IN_FLIGHT = tuple(state for state in ALL_STATES if not state.finished)


@dataclass
class ResyncResult:
    workers: int = 0  # workers that answered
    corrected: int = 0  # jobs whose state the resync changed or added
    checked_in_backend: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"resync corrected {self.corrected} job{'s' if self.corrected != 1 else ''}"]
        if self.workers:
            parts.append(f"{self.workers} worker{'s' if self.workers != 1 else ''} answered")
        if self.checked_in_backend:
            parts.append(f"{self.checked_in_backend} checked in the result backend")
        parts.extend(self.problems)
        return "; ".join(parts)


class Resync:
    """One catch-up pass: call :meth:`run` from a thread of its own, never the UI's."""

    def __init__(
        self,
        app: Celery,
        store: JobStore,
        *,
        ask_workers: bool = True,
        timeout: float = INSPECT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.store = store
        # Off in read-only mode: an inspect request is a message published to
        # the cluster, and read-only publishes nothing.
        self.ask_workers = ask_workers
        self.timeout = timeout
        self._clock = clock
        # Jobs that changed since the pass began (see _dated); None: too many to tell.
        self._version = 0
        self._changed: set[str] | None = set()

    def run(self) -> ResyncResult:
        result = ResyncResult()
        self._version, self._changed = self.store.version, set()
        # Workers answer at some moment after this; any event stamped later
        # describes a newer state and so wins the fold.
        asked_at = self._clock()
        reported: set[str] = set()
        if self.ask_workers:
            try:
                self._ask_workers(asked_at, reported, result)
            except Exception as exc:  # the broker went away again, a refused broadcast...
                result.problems.append(f"workers not asked: {describe_error(exc)}")
        else:
            result.problems.append("workers not asked (read-only)")
        try:
            self._ask_backend(asked_at, reported, result)
        except Exception as exc:
            result.problems.append(f"result backend not read: {describe_error(exc)}")
        return result

    def _ask_workers(self, asked_at: float, reported: set[str], result: ResyncResult) -> None:
        # No reply limit: the worker count we know may be stale after a gap,
        # and stopping at a stale count would skip a worker's answer.
        inspect = self.app.control.inspect(timeout=self.timeout)
        answered: set[str] = set()
        running: set[str] = set()
        for worker, requests in self._replies(inspect.active(safe=True) or {}, answered):
            self._apply_requests(RUNNING, worker, requests, asked_at, running, result)
        reported |= running
        for worker, requests in self._replies(inspect.reserved(safe=True) or {}, answered):
            self._apply_requests(RESERVED, worker, requests, asked_at, reported, result)
        for worker, entries in self._replies(inspect.scheduled(safe=True) or {}, answered):
            requests = []
            for entry in entries:
                if isinstance(entry, Mapping) and isinstance(entry.get("request"), Mapping):
                    requests.append({**entry["request"], "eta": entry.get("eta")})
                else:
                    self._bad(entry)
            self._apply_requests(SCHEDULED, worker, requests, asked_at, reported, result)
        for worker, ids in self._replies(inspect.revoked() or {}, answered):
            for job_id in ids:
                # A running job revoked without terminate goes on running; a
                # forgotten or never-seen id is not worth a job of its own.
                if _valid_id(job_id) and job_id not in running and job_id in self.store:
                    when = self._dated(job_id, asked_at)
                    if self.store.resync(job_id, REVOKED, when, worker, {}, NO_FIELDS):
                        result.corrected += 1
                    reported.add(job_id)
        result.workers = len(answered)
        if not answered:
            result.problems.append("no worker answered")

    def _replies(self, replies: Any, answered: set[str]) -> Iterable[tuple[str, list[Any]]]:
        if not isinstance(replies, Mapping):
            self._bad(replies)
            return
        for worker, items in replies.items():
            if not isinstance(worker, str) or not isinstance(items, list):
                self._bad({worker: items})
                continue
            answered.add(worker)
            yield worker[:MAX_ID_LENGTH], items

    def _apply_requests(
        self,
        step: Step,
        worker: str,
        requests: Iterable[Any],
        asked_at: float,
        reported: set[str],
        result: ResyncResult,
    ) -> None:
        plan = _SCHEDULED_FIELDS if step is SCHEDULED else _REQUEST_FIELDS
        for request in requests:
            job_id = request.get("id") if isinstance(request, Mapping) else None
            if not _valid_id(job_id):
                self._bad(request)
                continue
            reported.add(job_id)
            when = _started_at(request, asked_at) if step is RUNNING else asked_at
            if when == asked_at:  # a worker's own time_start is kept as it said
                when = self._dated(job_id, when)
            fields = _as_events_show(request)
            if self.store.resync(job_id, step, when, worker, fields, plan):
                result.corrected += 1

    def _ask_backend(self, asked_at: float, reported: set[str], result: ResyncResult) -> None:
        backend = self.app.backend
        if isinstance(backend, DisabledBackend):
            return
        deadline = time.monotonic() + BACKEND_BUDGET
        candidates = [i for i in self.store.ids_in(_IN_FLIGHT) if i not in reported]
        # The newest matter most: looked up first.
        for job_id, meta in _looked_up(backend, reversed(candidates[-MAX_BACKEND_LOOKUPS:])):
            if time.monotonic() > deadline:
                result.problems.append("result backend lookups cut short by the time budget")
                break
            result.checked_in_backend += 1
            step = FROM_BACKEND.get(meta.get("status")) if isinstance(meta, Mapping) else None
            if step is None:
                continue  # PENDING, STARTED, RETRY: nothing the events would not tell
            when = self._dated(job_id, asked_at)
            if self.store.resync(job_id, step, when, None, _outcome(meta), _OUTCOME_FIELDS):
                result.corrected += 1

    def _dated(self, job_id: str, asked_at: float) -> float:
        """When to date what the cluster said of ``job_id``: when it was asked, unless
        the store holds a later entry of the job (its task was sent after the asking,
        a connect's resync): then just after that, as the answer came after it.
        The store files entries by time, so an earlier date would put the answer first.
        """
        changes = self.store.changes_since(self._version)
        self._version = changes.version
        if changes.job_ids is None:
            self._changed = None  # fell behind the change feed: look at every job
        elif self._changed is not None:
            self._changed.update(changes.job_ids)
        if self._changed is not None and job_id not in self._changed:
            return asked_at  # nothing came of it since the pass began (the cheap, usual case)
        latest = max((entry.timestamp for entry in self.store.get(job_id).history), default=None)
        if latest is None or latest < asked_at:
            return asked_at
        return math.nextafter(latest, math.inf)

    def _bad(self, item: Any) -> None:
        self.store.record_bad_event("malformed inspect reply", saferepr(item, 300))


def _looked_up(backend: Any, job_ids: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """Each job's result meta, as ``backend.get_task_meta`` gives it; from a key-value
    backend, LOOKUP_BATCH jobs a round trip (not cached, unlike get_task_meta)."""
    if not isinstance(backend, BaseKeyValueStoreBackend):
        for job_id in job_ids:
            yield job_id, backend.get_task_meta(job_id)
        return
    ids = iter(job_ids)
    while chunk := list(itertools.islice(ids, LOOKUP_BATCH)):
        keys = [backend.get_key_for_task(job_id) for job_id in chunk]
        try:
            values = backend.mget(keys)
        except NotImplementedError:  # a key-value backend without a multi-get
            values = [backend.get(key) for key in keys]
        if isinstance(values, Mapping):  # memcached's answer: found keys only
            values = [values.get(key) for key in keys]
        for job_id, value in zip(chunk, values, strict=True):
            try:
                meta = backend.decode_result(value) if value else {"status": "PENDING"}
            except Exception:
                meta = None  # one result that does not decode: not the others' fault
            yield job_id, meta


def _outcome(meta: Mapping[str, Any]) -> dict[str, str]:
    value = meta.get("result")
    if meta.get("status") == "SUCCESS":
        return {"result": saferepr(value, REPR_LIMIT)}
    fields = {"exception": saferepr(value, REPR_LIMIT)}
    if isinstance(meta.get("traceback"), str):
        fields["traceback"] = meta["traceback"]
    return fields


def _started_at(request: Mapping[str, Any], asked_at: float) -> float:
    """When the worker started the job, which an active reply carries as ``time_start``.

    Far from the time the workers were asked (a worker whose Celery sends
    monotonic time, or none), it is not used: the job is dated when asked.
    """
    started = request.get("time_start")
    believable = (
        isinstance(started, int | float)
        and not isinstance(started, bool)
        and asked_at - MAX_RUN_SECONDS < started <= asked_at + MAX_CLOCK_AHEAD
    )
    return float(started) if believable else asked_at


def _as_events_show(request: Mapping[str, Any]) -> Mapping[str, Any]:
    """The request with args and kwargs as the events' reprs show them.

    Events carry ``saferepr`` of the args tuple, ``(7, 7)``; a reply carries
    the values, and JSON turns the tuple into a list.  An active reply asked
    with ``safe`` already carries the reprs.
    """
    args, kwargs = request.get("args"), request.get("kwargs")
    if not isinstance(args, list) and not isinstance(kwargs, dict):
        return request
    shown = dict(request)
    if isinstance(args, list):
        shown["args"] = saferepr(tuple(args), REPR_LIMIT)
    if isinstance(kwargs, dict):
        shown["kwargs"] = saferepr(kwargs, REPR_LIMIT)
    return shown


def _valid_id(job_id: Any) -> bool:
    return isinstance(job_id, str) and 0 < len(job_id) <= MAX_ID_LENGTH
