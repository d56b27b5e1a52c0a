"""One job: its fields and its state history, merged from events in any order.

The history is kept sorted by event time, and the current state is the fold of
:func:`~sluice_tui.model.states.accepts` over it.  So the state depends on the
set of events a job has seen, not on the order they arrived in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from sluice_tui.model.states import ACCEPTS, FINISHED_STATES, JobState


class Step(NamedTuple):
    """What one kind of event does to a job.

    ``order`` breaks ties between events with the same timestamp, following the
    natural life of an attempt (sent, received, started, then an outcome).
    """

    state: JobState
    event: str
    order: int
    # A passive step records something done to the job (a retry sent, a revoke
    # asked for) in its history without taking part in the state fold.
    passive: bool = False
    # A weak step only tells that a job exists: it moves a job out of unknown
    # and nothing else.  task-sent is weak: Celery stamps it after publishing
    # the task, so a worker's task-received can carry an earlier time, and the
    # producer's word must not turn a scheduled job back into a queued one.
    weak: bool = False
    # A step that takes back what an earlier event said: it moves a job only
    # out of ``demotes`` (an active job whose worker died is no longer known
    # to be running), against the precedence.
    demotes: JobState | None = None

    def moves(self, current: JobState) -> bool:
        """Whether this step takes a job in ``current`` to ``self.state``."""
        if self.passive or (self.weak and current is not JobState.UNKNOWN):
            return False
        if self.demotes is not None:
            return current is self.demotes
        return ACCEPTS[current][self.state]


# Keys of Job.extra that sluice-tui's own actions set.
RETRIED_AS = "retried_as"
RETRY_OF = "retry_of"
ATTEMPT_NUMBER = "attempt"
REVOKE_REQUESTED = "revoke_requested"
# Set when the worker running the job stopped heartbeating: its hostname.
WORKER_LOST = "worker_lost"

# Which job attribute an event field feeds, and how conflicting values merge.
CONSTANT = 0  # the same in every event that carries it; the last one wins
ATTEMPT = 1  # differs per attempt (retries, eta); the latest event time wins
WORKER = 2  # the worker that last handled the job; the latest event time wins
ERROR = 3  # the last exception seen; the latest event time wins


# Text longer than this is cut: Celery cuts reprs at 1024 characters, but a
# hand-made or hostile event must not make one job hold megabytes.
MAX_TEXT = 64 * 1024


class Field(NamedTuple):
    key: str  # the name in the incoming event
    attr: str  # the Job attribute it sets
    group: int = CONSTANT
    kind: type = str  # values of another type are coerced, or dropped


class FieldPlan(NamedTuple):
    """How one kind of event feeds a job, split up for the ingest hot path."""

    # (key, attr) of constant text fields that say what the job is (name, args,
    # kwargs): task-sent and task-received both carry them, so once a job has
    # its args they are not read again.
    identity: tuple[tuple[str, str], ...]
    texts: tuple[tuple[str, str], ...]  # (key, attr) of other constant text fields
    others: tuple[Field, ...]  # typed or per-attempt fields
    sets_worker: bool  # the event's hostname is the worker handling the job

    @classmethod
    def of(
        cls,
        fields: Iterable[Field] = (),
        *,
        identity: Iterable[Field] = (),
        sets_worker: bool = False,
    ) -> FieldPlan:
        fields = (*identity, *fields)
        texts = [(f.key, f.attr) for f in fields if f.group == CONSTANT and f.kind is str]
        others = tuple(f for f in fields if f.group != CONSTANT or f.kind is not str)
        split = sum(1 for f in identity if f.group == CONSTANT and f.kind is str)
        return cls(tuple(texts[:split]), tuple(texts[split:]), others, sets_worker)


NO_FIELDS = FieldPlan.of()


def coerce(value: Any, kind: type) -> Any:
    """Make an event value safe to store as ``kind``; None when it cannot be."""
    if kind is str:
        if type(value) is not str:
            value = repr(value)
        if len(value) > MAX_TEXT:
            return value[:MAX_TEXT] + f"... [cut at {MAX_TEXT} of {len(value)} characters]"
        return value
    if isinstance(value, bool):
        return None
    if kind is int:
        return value if isinstance(value, int) else None
    if kind is float and isinstance(value, int | float):
        value = float(value)
        return value if value == value and abs(value) != float("inf") else None
    return None


class JobRow(NamedTuple):
    """The few fields a job list shows and sorts by: cheap to copy for every job."""

    id: str
    first_seen: float  # local clock: when this monitor first heard of the job
    state: JobState
    name: str | None
    worker: str | None
    received: float | None  # event time of the earliest event
    started: float | None  # event time the latest attempt started
    runtime: float | None
    retries: int | None
    args: str | None
    kwargs: str | None
    note: str | None  # what sluice-tui itself did to the job, if anything


class Transition(NamedTuple):
    """One entry of a job's history."""

    state: JobState
    timestamp: float
    hostname: str | None
    event: str


# Attributes a snapshot copies from a Job, in display order.
JOB_FIELDS: tuple[str, ...] = (
    "name",
    "args",
    "kwargs",
    "result",
    "exception",
    "traceback",
    "retries",
    "eta",
    "expires",
    "worker",
    "runtime",
    "queue",
    "exchange",
    "routing_key",
    "parent_id",
    "root_id",
)


class Job:
    """A mutable job record owned by the store; readers get a :class:`JobSnapshot`."""

    __slots__ = (
        "_hist",
        "_ts_attempt",
        "_ts_error",
        "_ts_worker",
        "args",
        "eta",
        "exception",
        "exchange",
        "expires",
        "extra",
        "first_seen",
        "id",
        "kwargs",
        "name",
        "parent_id",
        "queue",
        "result",
        "retries",
        "root_id",
        "routing_key",
        "runtime",
        "state",
        "traceback",
        "worker",
    )

    def __init__(self, job_id: str, first_seen: float) -> None:
        self.id = job_id
        self.first_seen = first_seen
        self.state = JobState.UNKNOWN
        # Flat [timestamp, step, hostname, ...]: three pointers an entry, no tuple.
        self._hist: list[Any] = []
        self._ts_attempt = self._ts_error = self._ts_worker = float("-inf")
        self.name = self.args = self.kwargs = self.result = None
        self.exception = self.traceback = self.eta = self.expires = None
        self.worker = self.queue = self.exchange = self.routing_key = None
        self.parent_id = self.root_id = self.runtime = self.retries = None
        self.extra: dict[str, Any] | None = None

    def apply(
        self,
        step: Step,
        timestamp: float,
        hostname: str | None,
        data: Mapping[str, Any],
        plan: FieldPlan,
    ) -> bool:
        """Merge one event; return whether the state changed."""
        hist = self._hist
        old = self.state
        if hist and (
            timestamp < hist[-3] or (timestamp == hist[-3] and step.order < hist[-2].order)
        ):
            self._insert(step, timestamp, hostname)  # arrived out of order: rare
            self.state = self._fold()
        else:
            hist += (timestamp, step, hostname)
            if step.moves(old):
                self.state = step.state
        get = data.get
        # Identity fields come once per job; args is the sign they have (a name
        # alone may come from sluice-tui itself, for a retry it just sent).
        texts = plan.texts if self.args is not None else plan.identity + plan.texts
        for key, attr in texts:
            value = get(key)
            if value is not None:
                if value.__class__ is not str or len(value) > MAX_TEXT:
                    value = coerce(value, str)
                setattr(self, attr, value)
        for key, attr, group, kind in plan.others:
            value = get(key)
            if value is None:
                continue
            if value.__class__ is not kind or (kind is str and len(value) > MAX_TEXT):
                value = coerce(value, kind)
                if value is None:
                    continue
            if group and not self._newer(group, timestamp):
                continue
            setattr(self, attr, value)
        if plan.sets_worker and hostname is not None and timestamp >= self._ts_worker:
            self._ts_worker = timestamp
            self.worker = hostname
        return self.state is not old

    def annotate(self, key: str, value: Any) -> None:
        """Keep a rare, event-specific detail (revoke signal, requeue flag, ...)."""
        if self.extra is None:
            self.extra = {}
        self.extra[key] = value

    def _newer(self, group: int, timestamp: float) -> bool:
        # Field groups that differ between attempts keep the value from the
        # latest event time, so a late event from an earlier attempt is harmless.
        if group == ATTEMPT:
            if timestamp < self._ts_attempt:
                return False
            self._ts_attempt = timestamp
        elif group == WORKER:
            if timestamp < self._ts_worker:
                return False
            self._ts_worker = timestamp
        else:
            if timestamp < self._ts_error:
                return False
            self._ts_error = timestamp
        return True

    def _insert(self, step: Step, timestamp: float, hostname: str | None) -> None:
        hist = self._hist
        key = (timestamp, step.order)
        pos = len(hist)
        while pos and (hist[pos - 3], hist[pos - 2].order) > key:
            pos -= 3
        hist[pos:pos] = (timestamp, step, hostname)

    def _fold(self) -> JobState:
        state = JobState.UNKNOWN
        hist = self._hist
        for i in range(1, len(hist), 3):
            step = hist[i]
            if step.moves(state):
                state = step.state
        return state

    def transitions(self) -> tuple[Transition, ...]:
        hist = self._hist
        return tuple(
            Transition(hist[i + 1].state, hist[i], hist[i + 2], hist[i + 1].event)
            for i in range(0, len(hist), 3)
        )

    def row(self) -> JobRow:
        hist = self._hist
        started = None
        for i in range(len(hist) - 2, 0, -3):
            if hist[i].state is JobState.ACTIVE:
                started = hist[i - 1]
                break
        return JobRow(
            self.id,
            self.first_seen,
            self.state,
            self.name,
            self.worker,
            hist[0] if hist else None,
            started,
            self.runtime,
            self.retries,
            self.args,
            self.kwargs,
            self._note(),
        )

    def _note(self) -> str | None:
        extra = self.extra
        if not extra:
            return None
        if extra.get(REVOKE_REQUESTED) and self.state not in FINISHED_STATES:
            return "revoke requested"
        if WORKER_LOST in extra and self.state is JobState.UNKNOWN:
            return "worker lost"
        if RETRIED_AS in extra:
            return f"retried as {str(extra[RETRIED_AS])[:8]}"
        if RETRY_OF in extra:
            return f"retry of {str(extra[RETRY_OF])[:8]}"
        return None

    def snapshot(self, children: tuple[str, ...] = ()) -> JobSnapshot:
        return JobSnapshot(
            id=self.id,
            state=self.state,
            seen=True,
            history=self.transitions(),
            children=children,
            first_seen=self.first_seen,
            extra=dict(self.extra) if self.extra else {},
            **{attr: getattr(self, attr) for attr in JOB_FIELDS},
        )


UNSEEN_EXPLANATION = (
    "No event for this id has been seen. The job may never have existed (a typo?), "
    "may not have been sent yet, may have run before the monitor started, or may "
    "have been forgotten after it finished. Celery reports all of these as PENDING."
)


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """An immutable copy of a job, safe to read from any thread."""

    id: str
    state: JobState
    seen: bool
    history: tuple[Transition, ...] = ()
    children: tuple[str, ...] = ()
    first_seen: float | None = None
    extra: dict[str, Any] | None = None
    explanation: str | None = None
    name: str | None = None
    args: str | None = None
    kwargs: str | None = None
    result: str | None = None
    exception: str | None = None
    traceback: str | None = None
    retries: int | None = None
    eta: str | None = None
    expires: str | None = None
    worker: str | None = None
    runtime: float | None = None
    queue: str | None = None
    exchange: str | None = None
    routing_key: str | None = None
    parent_id: str | None = None
    root_id: str | None = None

    @classmethod
    def unseen(cls, job_id: str) -> JobSnapshot:
        return cls(id=job_id, state=JobState.UNKNOWN, seen=False, explanation=UNSEEN_EXPLANATION)

    def last_time(self, state: JobState) -> float | None:
        """When the job last entered ``state``, by event time."""
        return next((t.timestamp for t in reversed(self.history) if t.state is state), None)
