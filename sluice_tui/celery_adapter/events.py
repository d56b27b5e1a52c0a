"""Celery event -> job change.  The one place that knows Celery's event names.

Events are untrusted input: anything a broker delivers ends up here.  A bad
event is counted on the store and skipped; it never raises into the receiver.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from sluice_tui.model.job import ATTEMPT, ERROR, NO_FIELDS, Field, FieldPlan, Step
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.model.times import iso_epoch

MAX_ID_LENGTH = 255
MAX_INTERNED = 10_000  # distinct task names and hostnames shared between jobs
# Jobs received with no task-sent at all, for this long: producers evidently
# run with task_send_sent_event off.  Say so, once.  A few jobs are enough (a
# trial sends a handful); the grace covers a task-sent that lands just after
# its job's task-received (Celery publishes it after the task itself).
SENT_EVENTS_HINT_AFTER = 3
SENT_EVENTS_GRACE = 2.0
SENT_EVENTS_HINT = (
    "No task-sent events so far: the code that sends tasks runs with "
    "task_send_sent_event off, so a job only shows once a worker receives it, and jobs "
    "waiting in the broker are invisible. Set task_send_sent_event = True in the "
    "producers' Celery config to see them as queued."
)

# What the job is: sent and received (and inspect replies) carry these, identically.
IDENTITY = (Field("name", "name"), Field("args", "args"), Field("kwargs", "kwargs"))
_REQUEST = (
    Field("retries", "retries", ATTEMPT, int),
    Field("eta", "eta", ATTEMPT),
    Field("expires", "expires"),
    Field("root_id", "root_id"),
    Field("parent_id", "parent_id"),
)
_ERROR = (Field("exception", "exception", ERROR), Field("traceback", "traceback", ERROR))
_ROUTING = (
    Field("queue", "queue"),
    Field("exchange", "exchange"),
    Field("routing_key", "routing_key"),
)

SENT = Step(JobState.QUEUED, "task-sent", 0, weak=True)
# A countdown or eta on the producer's side: the job waits for it even before a
# worker says so (and a worker that had events off when it took the job never will).
SENT_WITH_ETA = Step(JobState.SCHEDULED, "task-sent", 0, weak=True)
RECEIVED = Step(JobState.QUEUED, "task-received", 1)
RECEIVED_WITH_ETA = Step(JobState.SCHEDULED, "task-received", 1)
STARTED = Step(JobState.ACTIVE, "task-started", 2)
RETRIED = Step(JobState.RETRYING, "task-retried", 3)
# task-cancelled is undocumented: a worker sends it when it kills a running
# task because its broker connection dropped, marks the task RETRY in the
# backend and lets the broker redeliver it under the same id.  So the job is
# waiting to run again, which is what `retrying` means; `cancelled` is kept for
# revocation, which is final.
CANCELLED_BY_WORKER = Step(JobState.RETRYING, "task-cancelled", 3)
REVOKED = Step(JobState.CANCELLED, "task-revoked", 4)
REJECTED = Step(JobState.FAILED, "task-rejected", 4)
FAILED = Step(JobState.FAILED, "task-failed", 5)
SUCCEEDED = Step(JobState.COMPLETED, "task-succeeded", 6)


def _on_worker(*fields: Field, identity: tuple[Field, ...] = ()) -> FieldPlan:
    """Fields of an event a worker sends: its hostname is the job's worker."""
    return FieldPlan.of(fields, identity=identity, sets_worker=True)


# event type -> (step, fields it carries, details kept in Job.extra or None,
# the step instead when the event's eta lies ahead).  task-sent comes from the
# producer, so its hostname is not a worker.  Only task-sent and task-received
# carry an eta, which marks them out for what else they need (see __call__).
TASK_EVENTS: dict[str, tuple[Step, FieldPlan, tuple[str, ...] | None, Step | None]] = {
    "task-sent": (
        SENT,
        FieldPlan.of((*_REQUEST, *_ROUTING), identity=IDENTITY),
        None,
        SENT_WITH_ETA,
    ),
    "task-received": (RECEIVED, _on_worker(*_REQUEST, identity=IDENTITY), None, RECEIVED_WITH_ETA),
    "task-started": (STARTED, _on_worker(), None, None),
    "task-succeeded": (
        SUCCEEDED,
        _on_worker(Field("result", "result"), Field("runtime", "runtime", kind=float)),
        None,
        None,
    ),
    "task-failed": (FAILED, _on_worker(*_ERROR), None, None),
    "task-retried": (RETRIED, _on_worker(*_ERROR), None, None),
    "task-rejected": (REJECTED, _on_worker(), ("requeue",), None),
    "task-revoked": (REVOKED, _on_worker(), ("terminated", "signum", "expired"), None),
    "task-cancelled": (CANCELLED_BY_WORKER, _on_worker(), None, None),
}

# A task's own events (``Task.send_event``) become history entries that tell
# their type and fields, cut to this length.
PROGRESS_TEXT = 160
# What every event carries: not worth repeating in a progress entry.
_ENVELOPE = frozenset(
    {"type", "uuid", "hostname", "timestamp", "utcoffset", "pid", "clock", "local_received"}
)

WORKER_EVENTS = {
    "worker-online": "online",
    "worker-heartbeat": "heartbeat",
    "worker-offline": "offline",
}


def eta_is_future(eta: Any, timestamp: float) -> bool:
    """Whether an ISO 8601 eta lies after the event that carried it."""
    when = iso_epoch(eta)
    return when is not None and when > timestamp


class EventAdapter:
    """Turns Celery event dicts into store changes: :meth:`handle` one at a time.

    Hot loops pass ``adapter.handle`` on: calling the instance itself goes
    through ``__call__`` as a slot, 110 ns more an event (CPython 3.11 does
    not specialize it), about 3 % of ingest.
    """

    def __init__(self, store: JobStore, *, clock=time.time) -> None:
        self.store = store
        self._ingest = store.ingest  # bound once: one attribute lookup less an event
        self._clock = clock
        # Hostnames and task names repeat in every event: keep one copy of each.
        self._names: dict[str, str] = {}
        self._received_without_sent = 0  # -1 once sent events flow, or the hint is given
        self._first_without_sent = 0.0  # local time the first such job arrived

    def handle(self, event: Any) -> None:
        """Merge one event into the store; a bad one is counted and skipped."""
        # The hot path: one call per event.  Checks are inlined and exact-type,
        # and the common case makes no call of its own but the store's: on
        # CPython 3.11 a Python call costs as much as a dozen dict lookups.
        try:
            if event.__class__ is dict:
                try:
                    # Every event off the wire has these: a subscript costs about
                    # half a get() call.  (Only for a plain dict: what another
                    # mapping does with a missing key is its own affair.)
                    kind = event["type"]
                    job_id = event["uuid"]
                    timestamp = event["timestamp"]
                    hostname = event["hostname"]
                except KeyError:  # a worker event has no uuid
                    kind, job_id, timestamp, hostname = _envelope(event)
            elif isinstance(event, Mapping):
                kind, job_id, timestamp, hostname = _envelope(event)
            else:
                self.store.record_bad_event("not a mapping", _sample(event))
                return
            try:  # a subscript: a third of get()'s cost, and a miss is rare (worker events)
                spec = TASK_EVENTS[kind]
            except (KeyError, TypeError):  # TypeError: a kind that is not even hashable
                spec = None
            if spec is None:
                self._handle_other(kind, event)
                return
            if job_id.__class__ is not str or not job_id or len(job_id) > MAX_ID_LENGTH:
                self.store.record_bad_event("task event without a valid uuid", _sample(event))
                return
            if timestamp.__class__ is not float or timestamp - timestamp != 0.0:  # inf or nan
                timestamp = self._timestamp(event)
            step, fields, details, eta_step = spec
            if eta_step is not None:
                # What task-sent and task-received need beyond the table.
                eta = event.get("eta")
                if eta is not None and eta_is_future(eta, timestamp):
                    step = eta_step
                if eta_step is SENT_WITH_ETA:
                    self._received_without_sent = -1
                elif self._received_without_sent >= 0:
                    self._count_received_without_sent(event)
                name = event.get("name")
                if name.__class__ is str:
                    event["name"] = self._names.get(name) or self._intern(name)
                parent_id = event.get("parent_id")
                # None first: None == text is a comparison CPython cannot specialize.
                if parent_id is not None and parent_id == job_id:
                    # Task.retry re-sends the job naming itself as parent; its
                    # real parent, if any, came with the first attempt.
                    event["parent_id"] = None
            # self._hostname(event), inlined: a name seen before is a valid one.
            if hostname.__class__ is str:
                hostname = self._names.get(hostname) or (
                    self._intern(hostname[:MAX_ID_LENGTH]) if hostname else None
                )
            else:
                hostname = None
            self._ingest(job_id, step, timestamp, hostname, event, fields)
            if details is not None:  # no truth test of a tuple on every event
                for key in details:
                    value = event.get(key)
                    if value is not None and type(value) in (bool, int, str):
                        self.store.annotate(job_id, key, value)
        except Exception as exc:  # an adapter bug must not kill the receiver
            self.store.record_bad_event(f"internal error: {type(exc).__name__}", _sample(event))

    __call__ = handle  # for one-off calls (tests, the demo)

    def _count_received_without_sent(self, event: Any) -> None:
        received = event.get("local_received")
        if received.__class__ is not float:
            received = self._clock()
        if self._received_without_sent == 0:
            self._first_without_sent = received
        self._received_without_sent += 1
        self.check_sent_events(received)

    def check_sent_events(self, now: float) -> None:
        """Give the task-sent hint if it is due; the receiver also calls this when idle."""
        if (
            self._received_without_sent >= SENT_EVENTS_HINT_AFTER
            and now - self._first_without_sent >= SENT_EVENTS_GRACE
        ):
            self.store.add_notice(SENT_EVENTS_HINT)
            self._received_without_sent = -1

    def _handle_other(self, kind: Any, event: Mapping[str, Any]) -> None:
        worker_kind = WORKER_EVENTS.get(kind) if type(kind) is str else None
        if worker_kind is None:
            if type(kind) is str and kind.startswith("task-"):
                self._progress(kind, event)
            else:
                # The type is in the sample: in the reason it would make one
                # counter per distinct type.
                self.store.record_bad_event("unknown event type", _sample(event))
            return
        hostname = self._hostname(event)
        if hostname is None:
            self.store.record_bad_event("worker event without a hostname", _sample(event))
            return
        received = event.get("local_received")
        if type(received) is not float:
            received = self._clock()
        self.store.apply_worker(hostname, worker_kind, event, received)

    def _progress(self, kind: str, event: Mapping[str, Any]) -> None:
        """Keep a custom task event as a history entry: it moves no state."""
        job_id = event.get("uuid")
        if job_id.__class__ is not str or not job_id or len(job_id) > MAX_ID_LENGTH:
            self.store.record_bad_event("task event without a valid uuid", _sample(event))
            return
        timestamp = event.get("timestamp")
        if timestamp.__class__ is not float or timestamp - timestamp != 0.0:
            timestamp = self._timestamp(event)
        fields = " ".join(
            f"{key}={value if type(value) is str else _short(value)}"
            for key, value in event.items()
            if key not in _ENVELOPE
        )
        text = f"{self._intern(kind[:60])} {fields}".rstrip()
        if len(text) > PROGRESS_TEXT:
            text = text[: PROGRESS_TEXT - 1] + "…"
        step = Step(JobState.ACTIVE, text, 2, passive=True, progress=True)
        self.store.apply(job_id, step, timestamp, self._hostname(event), event, NO_FIELDS)

    def _timestamp(self, event: Mapping[str, Any]) -> float:
        timestamp = event.get("timestamp")
        if type(timestamp) is int:
            return float(timestamp)
        # Keep the event: its state and fields are still worth having, placed at
        # the time it arrived.
        self.store.record_bad_event("missing or invalid timestamp", _sample(event))
        received = event.get("local_received")
        if type(received) is float and math.isfinite(received):
            return received
        return self._clock()

    def _hostname(self, event: Mapping[str, Any]) -> str | None:
        hostname = event.get("hostname")
        if hostname.__class__ is not str or not hostname:
            return None
        return self._intern(hostname[:MAX_ID_LENGTH])

    def _intern(self, text: str) -> str:
        names = self._names
        known = names.get(text)
        if known is not None:
            return known
        if len(names) >= MAX_INTERNED:
            return text
        names[text] = text
        return text


def _envelope(event: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
    """An event's type, uuid, timestamp and hostname, each None when missing."""
    get = event.get
    return get("type"), get("uuid"), get("timestamp"), get("hostname")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _sample(event: Any) -> str:
    try:
        text = repr(event)
    except Exception:  # a hostile __repr__ is not our problem to debug
        text = f"<unprintable {type(event).__name__}>"
    return text[:500]
