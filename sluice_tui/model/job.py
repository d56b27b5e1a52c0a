"""One job: its fields and its state history, merged from events in any order.

The history is kept sorted by event time, and the current state is the fold of
:func:`~sluice_tui.model.states.accepts` over it.  So the state depends on the
set of events a job has seen, not on the order they arrived in.

``Task.retry`` re-sends the same id, so one history can hold several attempts;
:meth:`Job.snapshot` tells which attempt each entry belongs to, and which
attempt each error came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from sluice_tui.model.states import ACCEPTS, ALL_STATES, FINISHED_STATES, JobState
from sluice_tui.model.times import iso_epoch

# Enum members as module globals for the hot paths: on CPython 3.11 reading
# ``JobState.X`` goes through the enum's class machinery and costs about twenty
# times a global read, and ingest and the list rows read these per event.
_UNKNOWN = JobState.UNKNOWN
_QUEUED = JobState.QUEUED
_SCHEDULED = JobState.SCHEDULED
_ACTIVE = JobState.ACTIVE
_RETRYING = JobState.RETRYING
_FAILED = JobState.FAILED
ERROR_NOTE_LENGTH = 120  # a list shows how an error starts; the job's detail has all of it
# One quoted argument, without its quote inside (else the repr is shown as it is).
_REPR = re.compile(r"(?P<kind>[A-Za-z_][\w.]*)\((?P<q>['\"])(?P<text>(?:(?!(?P=q)).)*)(?P=q)\)")


@dataclass(frozen=True, slots=True)
class Step:
    """What one kind of event does to a job.

    ``order`` breaks ties between events with the same timestamp, following the
    natural life of an attempt (sent, received, started, then an outcome).

    A slotted class, not a NamedTuple: ingest reads a step's attributes for
    every event, and a slot is read several times faster than a tuple field.
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
    # The attempt the event says it belongs to (its ``retries`` + 1) when it is
    # a re-run; 0 otherwise.  Set by :meth:`Job.apply` from the event.
    attempt: int = 0
    # For a passive step (an action): the states its effects enter.  An entry
    # into one of them, dated up to CAUSE_WINDOW earlier by a worker's clock,
    # is taken as caused by the action and kept after it in the history.
    precedes: frozenset[JobState] = frozenset()
    # Stands for a stretch of history that was not kept (see Job._trim).  It
    # folds as the task-retried that ended that stretch.
    marker: bool = False
    # A task's own event (``Task.send_event('task-progress', ...)``): passive,
    # but the worker's word, not an action of sluice-tui's.
    progress: bool = False
    # The states this step takes a job out of (see moves), worked out once.
    moves_from: frozenset[JobState] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        moves_from = frozenset(s for s in ALL_STATES if self._moves(s))
        object.__setattr__(self, "moves_from", moves_from)  # frozen: set once, here

    def moves(self, current: JobState) -> bool:
        """Whether this step takes a job in ``current`` to ``self.state``."""
        return current in self.moves_from

    def _moves(self, current: JobState) -> bool:
        if self.passive or (self.weak and current is not _UNKNOWN):
            return False
        if self.demotes is not None:
            return current is self.demotes
        return ACCEPTS[current][self.state]

    def _replace(self, **changes: Any) -> Step:
        """A copy with ``changes`` (the name NamedTuple gives it, which callers use)."""
        return replace(self, **changes)


# How far a worker's clock may lag the monitor's for an event to still count as
# caused by an action the monitor sent (see Step.precedes).
CAUSE_WINDOW = 60.0
# Events carry their attempt as ``retries``; beyond this it is not tracked.
MAX_NUMBERED = 1_000
# Entries one job's history keeps.  A task that retries without end would make
# each of its events dearer and its memory grow for as long as it runs; past
# the cap its middle attempts become one marker entry (see Job._trim).
HISTORY_CAP = 300
# The smallest cap that leaves room for a first attempt, a marker and recent ones.
MIN_HISTORY_CAP = 30
OMITTED_EVENT = "not kept"


# id(step) -> [step, its variant for attempt 1, for attempt 2, ...]: history
# entries share these, so knowing an entry's attempt costs no memory.
_NUMBERED: dict[int, list[Step]] = {}


def numbered(step: Step, attempt: int) -> Step:
    """``step`` as said by an event of attempt ``attempt``: one shared Step per pair."""
    variants = _NUMBERED.get(id(step))
    if variants is None or variants[0] is not step:
        variants = _NUMBERED[id(step)] = [step]
    while len(variants) <= attempt:
        variants.append(step._replace(attempt=len(variants)))
    return variants[attempt]


# Keys of Job.extra that sluice-tui's own actions set.
RETRIED_AS = "retried_as"
RETRY_OF = "retry_of"
RETRY_OF_NOTE = "retry of "  # how a retry's row names the job it retries (the list reorders it)
ATTEMPT_NUMBER = "attempt"
REVOKE_REQUESTED = "revoke_requested"
# Set when the worker running the job stopped heartbeating: its hostname.
WORKER_LOST = "worker_lost"
# How many of the task's own progress events were dropped from a full history.
PROGRESS_NOT_KEPT = "progress events not kept"
# Internal keys of extra (those starting with "_" are not shown as details).
# The errors of task-retried events, {timestamp: [exception, traceback]}, each
# readable under its attempt.  Kept in extra since few jobs retry: no slot on
# every job.
_RETRY_ERRORS = "_retry_errors"
# The Omitted record of a trimmed history, and the history length below which
# no new trim is tried after one found nothing to cut.
_OMITTED = "_omitted"
_NEXT_TRIM = "_next_trim"

# Which job attribute an event field feeds, and how conflicting values merge.
CONSTANT = 0  # the same in every event that carries it; the last one wins
ATTEMPT = 1  # differs per attempt (retries, eta); the latest event time wins
WORKER = 2  # the worker that last handled the job; the latest event time wins
ERROR = 3  # the last exception seen; the latest event time wins


_NEVER = float("-inf")  # the time of a field group no event has set yet

# Text longer than this is cut: Celery cuts reprs at 1024 characters, but a
# hand-made or hostile event must not make one job hold megabytes.
MAX_TEXT = 64 * 1024


class Field(NamedTuple):
    key: str  # the name in the incoming event
    attr: str  # the Job attribute it sets
    group: int = CONSTANT
    kind: type = str  # values of another type are coerced, or dropped


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """How one kind of event feeds a job: its fields, applied by one made-to-measure function.

    ``apply(job, step, timestamp, hostname, data)`` is :meth:`Job.apply` for
    this kind of event: it files the step in the job's history, reads the
    event's fields from ``data`` into the job's attributes and says whether
    the job's state changed.  It is generated from the plan (see
    :func:`_apply_source`): straight-line code with one plain attribute store
    per field, and no test of the plan at run time, costs far fewer
    instructions per event than a loop over the fields with ``setattr``, or a
    general apply calling a per-plan merge, did.
    """

    # Constant text fields that say what the job is (name, args, kwargs):
    # task-sent and task-received both carry them, so once a job has its args
    # they are not read again.
    identity: tuple[Field, ...]
    fields: tuple[Field, ...]  # every other field, merged in this order
    apply: Callable[[Job, Step, float, str | None, Mapping[str, Any]], bool]
    sets_worker: bool  # the event's hostname is the worker handling the job
    numbered: bool = False  # the event says its attempt, as ``retries``
    errors: bool = False  # the event carries an error (exception, traceback)

    @classmethod
    def of(
        cls,
        fields: Iterable[Field] = (),
        *,
        identity: Iterable[Field] = (),
        sets_worker: bool = False,
    ) -> FieldPlan:
        identity, fields = tuple(identity), tuple(fields)
        if any(f.group != CONSTANT or f.kind is not str for f in identity):
            raise ValueError("identity fields must be constant text")
        every = (*identity, *fields)
        # Text first, then the typed and per-attempt fields (the order the
        # fields have always been read in: only fields of one group affect each other).
        fields = (
            *(f for f in fields if f.group == CONSTANT and f.kind is str),
            *(f for f in fields if f.group != CONSTANT or f.kind is not str),
        )
        numbered = any(f.key == "retries" for f in every)
        errors = any(f.group == ERROR for f in every)
        source, names = _apply_source(identity, fields, sets_worker, numbered, errors)
        exec(compile(source, "<FieldPlan.apply>", "exec"), names)  # made above, from no input
        return cls(identity, fields, names["apply"], sets_worker, numbered, errors)


# What every plan's apply does to the history, before its fields.  The
# numbered step stands for the event's attempt (only a re-run says which it
# is: a first attempt is found as such without it, see number_attempts).
_FILE_STEP = """\
    hist = job._hist
    old = job.state
    kept = True
    # In order unless before the last entry (by time, then order): one look
    # at the last time when, as nearly always, the event is later.
    if hist and timestamp <= hist[-3] and (timestamp < hist[-3] or step.order < hist[-2].order):
        kept = job._insert(step, timestamp, hostname)  # arrived out of order: rare
        if kept:
            job.state = job._fold()
    else:
        hist += (timestamp, step, hostname)
        if old in step.moves_from:  # step.moves(old), inlined
            job.state = step.state
    if len(hist) > job._cap3:
        job._trim()
"""
_READ_ATTEMPT = """\
    retries = data.get("retries")
    if retries.__class__ is int and 0 < retries < MAX_NUMBERED:
        step = numbered(step, retries + 1)
"""
_KEEP_ERROR = """\
    if step.state is RETRYING and kept:
        job._keep_error(timestamp, data)
"""
_SET_WORKER = """\
    if hostname is not None and timestamp >= job._ts_worker:
        job._ts_worker = timestamp
        job.worker = hostname
"""


def _apply_source(
    identity: tuple[Field, ...],
    fields: tuple[Field, ...],
    sets_worker: bool,
    reads_attempt: bool,
    errors: bool,
) -> tuple[str, dict]:
    """The source of a plan's apply function, and the names it uses.

    Per field: a missing (None) value leaves the attribute alone; a value of
    another type, or text past MAX_TEXT, goes through :func:`coerce` and is
    dropped when that gives None; a per-attempt value older than the one held
    is dropped (see Job._newer, inlined here for ATTEMPT, the common group).
    """
    names: dict[str, Any] = {
        "coerce": coerce,
        "MAX_TEXT": MAX_TEXT,
        "MAX_NUMBERED": MAX_NUMBERED,
        "numbered": numbered,
        "RETRYING": _RETRYING,
    }
    lines = ["def apply(job, step, timestamp, hostname, data):"]

    def field_lines(f: Field, n: int, indent: str) -> None:
        if not (f.attr.isidentifier() and f.attr in Job.__slots__):
            raise ValueError(f"no Job attribute {f.attr!r}")
        kind = names[f"K{n}"] = f.kind
        odd = f"v.__class__ is not K{n}" + (" or len(v) > MAX_TEXT" if kind is str else "")
        # The attempt's number was read already, from the same event.
        read = "retries" if reads_attempt and f.key == "retries" else f"data.get({f.key!r})"
        add = [f"v = {read}", "if v is not None:", f"    if {odd}:"]
        add.append(f"        v = coerce(v, K{n})")
        if f.group == CONSTANT and kind is str:  # coerce never gives None for text
            add.append(f"    job.{f.attr} = v")
        elif f.group == CONSTANT:
            add += ["    if v is not None:", f"        job.{f.attr} = v"]
        elif f.group == ATTEMPT:
            add += ["    if v is not None and timestamp >= job._ts_attempt:"]
            add += ["        job._ts_attempt = timestamp", f"        job.{f.attr} = v"]
        else:
            add += [f"    if v is not None and job._newer({f.group}, timestamp):"]
            add += [f"        job.{f.attr} = v"]
        lines.extend(indent + line for line in add)

    if reads_attempt:
        lines.append(_READ_ATTEMPT)
    lines.append(_FILE_STEP)
    if identity:
        # args is the sign a job has its identity (a name alone may come from
        # sluice-tui itself, for a retry it just sent).
        lines.append("    if job.args is None:")
        for n, f in enumerate(identity):
            field_lines(f, n, "        ")
    for n, f in enumerate(fields, start=len(identity)):
        field_lines(f, n, "    ")
    if errors:
        lines.append(_KEEP_ERROR)
    if sets_worker:
        lines.append(_SET_WORKER)
    lines.append("    return job.state is not old")
    return "\n".join(line.rstrip("\n") for line in lines), names


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


NO_FIELDS = FieldPlan.of()


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
    note: str | None  # what sluice-tui did to the job, or else why it failed (or retries)
    eta: float | None = None  # when a scheduled job is due, in epoch seconds
    error: str | None = None  # why it failed (or retries), short: shown in the note, searched


class Transition(NamedTuple):
    """One entry of a job's history."""

    state: JobState  # for an action: the job's state when it was recorded
    timestamp: float
    hostname: str | None
    event: str
    attempt: int = 1  # the run of the job it belongs to (Task.retry re-runs the same id)
    action: bool = False  # something sluice-tui did, not an event: it moves no state
    sending: bool = False  # the producer's word that it sent the job (task-sent)
    marker: bool = False  # stands for a stretch not kept (see JobSnapshot.omitted)
    progress: bool = False  # a custom event the task sent itself; it moves no state


class AttemptError(NamedTuple):
    """The error that ended an earlier attempt."""

    attempt: int
    timestamp: float
    exception: str | None
    traceback: str | None


@dataclass(frozen=True, slots=True)
class Omitted:
    """What a capped history left out between its first attempt and its recent ones.

    The counts stay exact: the job's state and fields never depend on entries
    that were dropped, only its history does.
    """

    first_attempt: int
    last_attempt: int
    events: int  # event entries not kept
    actions: int  # entries of sluice-tui's own actions not kept
    start: float  # event time of the first entry not kept
    end: float  # event time of the last: the task-retried that ended the stretch
    late: int = 0  # events for the stretch that arrived after it was dropped
    by_state: Mapping[JobState, int] = field(default_factory=dict)

    @property
    def attempts(self) -> int:
        return self.last_attempt - self.first_attempt + 1


class Attempt(NamedTuple):
    """One run of a job, its entries in story order: task-sent first."""

    number: int
    entries: tuple[Transition, ...]


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
        "_cap3",
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

    def __init__(self, job_id: str, first_seen: float, history_cap: int = HISTORY_CAP) -> None:
        self.id = job_id
        self.first_seen = first_seen
        self.state = _UNKNOWN
        # Flat [timestamp, step, hostname, ...]: three pointers an entry, no tuple.
        self._hist: list[Any] = []
        self._cap3 = 3 * (history_cap if history_cap > MIN_HISTORY_CAP else MIN_HISTORY_CAP)
        self._ts_attempt = self._ts_error = self._ts_worker = _NEVER
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
        """Merge one event; return whether the state changed (see FieldPlan.apply)."""
        return plan.apply(self, step, timestamp, hostname, data)

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
            if timestamp > self._ts_error:
                # A newer error replaces the whole of the old one: its traceback
                # must not outlive it when the new event carries none.
                self.exception = self.traceback = None
                self._ts_error = timestamp
        return True

    def _keep_error(self, timestamp: float, data: Mapping[str, Any]) -> None:
        """Keep a retried attempt's error, which a later error replaces as the job's own."""
        if self.extra is None:
            self.extra = {}
        errors = self.extra.setdefault(_RETRY_ERRORS, {})
        errors[timestamp] = [_text(data.get("exception")), _text(data.get("traceback"))]

    def _insert(self, step: Step, timestamp: float, hostname: str | None) -> bool:
        """Put a late event in its place; False when its place was not kept."""
        # The hot path: the search from the end is inlined (record() has its twin).
        hist = self._hist
        key = (timestamp, step.order)
        pos = len(hist)
        while pos and (hist[pos - 3], hist[pos - 2].order) > key:
            pos -= 3
        if pos < len(hist) and hist[pos + 1].marker:
            # It belongs to the stretch that was dropped, which ended in a
            # task-retried: it could not change what followed, so it is counted.
            omitted = self.extra[_OMITTED]
            self.extra[_OMITTED] = replace(omitted, late=omitted.late + 1)
            return False
        hist[pos:pos] = (timestamp, step, hostname)
        if pos < len(hist) - 3:  # only an entry put before others can precede an action
            self._keep_causes_first(pos)
        return True

    def record(self, step: Step, timestamp: float, hostname: str | None) -> None:
        """Put an action (a passive step) into the history, before what it caused.

        It goes at its own time, unless an entry it caused is already there,
        dated earlier by a worker clock behind the monitor's: then just before it.
        """
        hist = self._hist
        key = (timestamp, step.order)
        pos = len(hist)
        while pos and (hist[pos - 3], hist[pos - 2].order) > key:
            pos -= 3
        caused = step.precedes
        i = pos - 3
        while caused and i >= 0 and hist[i] >= timestamp - CAUSE_WINDOW:
            if hist[i + 1].state in caused and not hist[i + 1].passive:
                pos = i
            i -= 3
        hist[pos:pos] = (timestamp, step, hostname)
        if len(hist) > self._cap3:
            self._trim()

    def _keep_causes_first(self, pos: int) -> None:
        """Move actions that caused the entry just put at ``pos`` to before it."""
        hist = self._hist
        state, timestamp = hist[pos + 1].state, hist[pos]
        if hist[pos + 1].passive:
            return
        moved: list[Any] = []
        for i in range(len(hist) - 3, pos, -3):
            step = hist[i + 1]
            if step.passive and state in step.precedes and timestamp >= hist[i] - CAUSE_WINDOW:
                moved[:0] = hist[i : i + 3]
                del hist[i : i + 3]
        hist[pos:pos] = moved

    def _trim(self) -> None:
        """Replace the middle attempts with one marker entry, keeping the first and the latest.

        The cut ends at a task-retried (or at the task-started just before a
        re-send stamped early), and the history up to it folds to that step's
        state, which it reaches from any unfinished state: so whatever the
        stretch held, the marker (folding as that step) leaves the state and
        every later step exactly as the whole history would.  Trimming to two
        thirds of the cap makes its cost a small constant per event.
        """
        hist = self._hist
        extra = self.extra
        if extra and extra.get(_NEXT_TRIM, 0) > len(hist):
            return
        cut = self._find_cut()
        if cut is None:
            if not self._drop_progress():
                # Nothing to cut yet (a first attempt that fills the cap, or no
                # retried attempt to end a stretch): look again a third of a cap on.
                self.annotate(_NEXT_TRIM, len(hist) + self._cap3 // 3)
            return
        start, last = cut
        old: Omitted | None = extra.get(_OMITTED) if extra else None
        steps = [hist[i] for i in range(1, last + 3, 3)]
        numbers, _ = number_attempts(steps, old.last_attempt if old else 0)
        events = actions = 0
        by_state = dict(old.by_state) if old else {}
        for i in range(start, last + 3, 3):
            step = hist[i + 1]
            if step.marker:
                continue
            if step.passive:
                actions += 1
            else:
                events += 1
                by_state[step.state] = by_state.get(step.state, 0) + 1
        begin, end = (old.start if old else hist[start]), hist[last]
        omitted = Omitted(
            first_attempt=old.first_attempt if old else numbers[start // 3],
            last_attempt=numbers[last // 3],
            events=events + (old.events if old else 0),
            actions=actions + (old.actions if old else 0),
            start=begin,
            end=end,
            late=old.late if old else 0,
            by_state=by_state,
        )
        ends = hist[last + 1]  # a task-retried, or a task-started whose attempt goes on
        marker = Step(ends.state, OMITTED_EVENT, ends.order, marker=True)
        hist[start : last + 3] = (end, marker, None)
        extra = self.extra = self.extra or {}
        extra[_OMITTED] = omitted
        extra.pop(_NEXT_TRIM, None)
        errors = extra.get(_RETRY_ERRORS)
        if errors:
            extra[_RETRY_ERRORS] = {t: e for t, e in errors.items() if not begin <= t <= end}

    def _drop_progress(self) -> bool:
        """Drop the oldest progress entries down to two thirds of the cap; whether any went.

        They move no state and number no attempt, so any of them can go; the
        newest say most about where a long-running task is.
        """
        hist = self._hist
        excess = (len(hist) - 2 * self._cap3 // 3) // 3
        drop = [i for i in range(0, len(hist), 3) if hist[i + 1].progress][:excess]
        if not drop:
            return False
        for i in reversed(drop):
            del hist[i : i + 3]
        extra = self.extra = self.extra or {}
        extra[PROGRESS_NOT_KEPT] = extra.get(PROGRESS_NOT_KEPT, 0) + len(drop)
        return True

    def _find_cut(self) -> tuple[int, int] | None:
        """(first, last) history index of the stretch to drop, or None.

        It starts after the first attempt's task-retried (or at an earlier
        marker, which it absorbs) and ends at the task-retried that leaves
        the most recent attempts within two thirds of the cap, or at the
        task-started before it when the next attempt began first.
        """
        hist = self._hist
        retried = _RETRYING
        start = next((i - 1 for i in range(1, len(hist), 3) if hist[i].marker), None)
        if start is None:
            start = next(
                (
                    i + 2
                    for i in range(1, len(hist), 3)
                    if hist[i].state is retried and not hist[i].passive
                ),
                None,
            )
            if start is None:
                return None
        keep = 2 * self._cap3 // 3 - start - 3  # room for the tail, after head and marker
        if keep < 3 * (MIN_HISTORY_CAP // 3):
            return None
        state = _UNKNOWN
        last = None
        for i in range(0, len(hist) - 3, 3):
            step = hist[i + 1]
            if step.moves(state):
                state = step.state
            if (
                i >= start
                and i >= len(hist) - keep - 3
                and step.state is retried
                and not step.passive
                and not step.marker
            ):
                last = i
                break
        if last is None or state is not retried:
            return None
        # A worker often receives the re-sent job before its own task-retried
        # is stamped: then end at the attempt's task-started instead, so the
        # first attempt kept starts with its task-sent and task-received.
        early = last - 3
        while early > start and _opens_attempt(hist[early + 1]):
            early -= 3
        if early < last - 3 and early >= start:
            step = hist[early + 1]
            if step.state is _ACTIVE and not (step.passive or step.marker):
                state = _UNKNOWN
                for i in range(1, early + 3, 3):
                    if hist[i].moves(state):
                        state = hist[i].state
                if state is _ACTIVE:
                    return start, early
        return start, last

    def _fold(self) -> JobState:
        state = _UNKNOWN
        hist = self._hist
        for i in range(1, len(hist), 3):
            step = hist[i]
            if step.moves(state):
                state = step.state
        return state

    def transitions(self) -> tuple[Transition, ...]:
        return self._story()[0]

    def _story(self) -> tuple[tuple[Transition, ...], list[int], int]:
        """The history with each entry's attempt, the attempts, and the current attempt."""
        hist = self._hist
        omitted = self._omitted()
        attempts, current = number_attempts(
            (hist[i] for i in range(1, len(hist), 3)), omitted.last_attempt if omitted else 0
        )
        transitions = []
        for i, n in zip(range(0, len(hist), 3), attempts, strict=True):
            step = hist[i + 1]
            transitions.append(
                Transition(
                    step.state,
                    hist[i],
                    hist[i + 2],
                    step.event,
                    n,
                    step.passive and not step.progress,
                    step.weak,
                    step.marker,
                    step.progress,
                )
            )
        return tuple(transitions), attempts, current

    def _omitted(self) -> Omitted | None:
        return self.extra.get(_OMITTED) if self.extra else None

    def row(self) -> JobRow:
        hist = self._hist
        # An action is no event: it starts or receives nothing.  Both scans stop
        # early, so a long history costs a row no more than a short one.
        received = next((hist[i - 1] for i in range(1, len(hist), 3) if not hist[i].passive), None)
        started, runtime = self._last_run()
        return JobRow(
            self.id,
            self.first_seen,
            self.state,
            self.name,
            self.worker,
            received,
            started,
            runtime,
            self.retries,
            self.args,
            self.kwargs,
            self._note(error := self._error()),
            iso_epoch(self.eta) if self.state is _SCHEDULED else None,
            error,
        )

    def _last_run(self) -> tuple[float | None, float | None]:
        """When the latest attempt started, and its runtime.

        Celery's task-succeeded carries the runtime the worker measured; a
        failure carries none, so a failed attempt's is told by its events'
        times (the same worker's clock), started to failed.
        """
        hist = self._hist
        started = failed = None
        # An action is no event: it starts nothing.  The scan stops at the
        # latest start, so a long history costs no more than a short one.
        for i in range(len(hist) - 2, 0, -3):
            step = hist[i]
            if step.passive:
                continue
            if step.state is _ACTIVE:
                started = hist[i - 1]
                break
            if failed is None and step.state is _FAILED:
                failed = hist[i - 1]
        runtime = self.runtime
        if runtime is None and self.state is _FAILED and started is not None and failed is not None:
            runtime = failed - started  # the history is in time order: never negative
        return started, runtime

    def _error(self) -> str | None:
        """Why a failed or retrying job is so, in a line: ``ValueError: payment declined``."""
        if not (self.state is _FAILED or self.state is _RETRYING) or not self.exception:
            return None
        line = self.exception.partition("\n")[0]
        # Celery sends the exception's repr: ValueError('payment declined').
        found = _REPR.fullmatch(line)
        if found is not None:
            line = f"{found['kind']}: {found['text']}"
        return line[:ERROR_NOTE_LENGTH]

    def _note(self, error: str | None) -> str | None:
        extra = self.extra
        if extra:
            if extra.get(REVOKE_REQUESTED) and self.state not in FINISHED_STATES:
                return "revoke requested"
            if WORKER_LOST in extra and self.state is _UNKNOWN:
                return "worker lost"
            if RETRIED_AS in extra:
                return f"retried as {str(extra[RETRIED_AS])[:8]}"
            if RETRY_OF in extra:
                return f"{RETRY_OF_NOTE}{str(extra[RETRY_OF])[:8]}"
        return error  # why it failed is what a list of failed jobs is read for

    def snapshot(self, children: tuple[str, ...] = ()) -> JobSnapshot:
        history, _, current = self._story()
        errors = self._attempt_errors(history, current)
        return JobSnapshot(
            id=self.id,
            state=self.state,
            seen=True,
            history=history,
            children=children,
            first_seen=self.first_seen,
            extra=_details(self.extra),
            attempt=current,
            attempt_errors=errors,
            omitted=self._omitted(),
            # The latest error may have ended an earlier attempt: then the
            # current one has none.
            error_is_current=not errors or errors[-1].timestamp != self._ts_error,
            **{attr: getattr(self, attr) for attr in JOB_FIELDS if attr != "runtime"},
            runtime=self._last_run()[1],
        )

    def _attempt_errors(
        self, history: tuple[Transition, ...], current: int
    ) -> tuple[AttemptError, ...]:
        """Every error but the current attempt's latest, oldest first, with its attempt."""
        found: dict[float, list[str | None]] = dict((self.extra or {}).get(_RETRY_ERRORS, {}))
        if self._ts_error not in found and self.exception is not None:
            found[self._ts_error] = [self.exception, self.traceback]
        if not found:
            return ()
        ended_by = {
            t.timestamp: t.attempt
            for t in history
            if t.state in _ERROR_STATES and not t.action and t.timestamp in found
        }
        return tuple(
            AttemptError(ended_by[ts], ts, *found[ts])
            for ts in sorted(found)
            if ts in ended_by and not (ts == self._ts_error and ended_by[ts] == current)
        )


def _details(extra: dict[str, Any] | None) -> dict[str, Any]:
    if not extra:
        return {}
    return {key: value for key, value in extra.items() if not key.startswith("_")}


def _text(value: Any) -> str | None:
    return None if value is None else coerce(value, str)


# States of the entries whose events carry an error.
_ERROR_STATES = frozenset({JobState.RETRYING, JobState.FAILED})
# What an entry does to the attempt it is in.
_SENT, _RECEIPT, _START, _RETRY, _OTHER = 1, 2, 4, 8, 16


def number_attempts(steps: Iterable[Step], after_marker: int = 0) -> tuple[list[int], int]:
    """Which attempt each history entry belongs to (1, 2, ...), and the current one.

    An attempt is one run of the job: task-sent, task-received, task-started and
    an outcome; ``task-retried`` ends it and the next one begins.  Events that
    say their attempt (``retries``) go to it.  The others go to the earliest
    attempt still open that lacks what they bring: a worker may receive the
    re-sent job before its own task-retried is stamped.  The current attempt
    is the one holding the entry that decided the job's state.  A marker
    entry closes every attempt before it; ``after_marker`` is the last attempt
    it stands for, and numbering goes on from there.
    """
    numbers: list[int] = []
    has: list[int] = []  # per attempt: which of _SENT, _RECEIPT, _START, _RETRY it holds
    first_open = 0  # attempts before this one have ended
    # Per kind, where to look for an attempt lacking it: attempts only gain
    # entries, so the search never goes back (a long history stays linear).
    lacking = {_SENT: 0, _RECEIPT: 0, _START: 0}
    state = _UNKNOWN
    current = 1
    base = 0  # attempts closed by a marker
    for step in steps:
        if step.marker:
            # A marker ending at a task-started leaves that attempt open: its
            # task-retried is kept after the marker.
            if step.state is _ACTIVE:
                base, has = after_marker - 1, [_SENT | _RECEIPT | _START]
            else:
                base, has = after_marker, []
            first_open = 0
            lacking = {_SENT: 0, _RECEIPT: 0, _START: 0}
            numbers.append(after_marker)
            if step.moves(state):
                state, current = step.state, after_marker
            continue
        kind = _kind(step)
        n = step.attempt - 1 - base
        if n >= 0 and (kind == _SENT or (kind == _RECEIPT and not _ended(has, n))):
            while len(has) <= n:
                has.append(0)
        elif kind & (_SENT | _RECEIPT | _START):
            n = lacking[kind] = _open_lacking(has, max(lacking[kind], first_open), kind)
        elif first_open < len(has):
            n = first_open
        else:
            # Every attempt has ended: an event is of the next one (whose first
            # events were missed); an action goes with the last.
            if not (step.passive and has):
                has.append(0)
            n = len(has) - 1
        has[n] |= kind
        while first_open < len(has) and has[first_open] & _RETRY:
            first_open += 1
        numbers.append(base + n + 1)
        if step.moves(state):
            state = step.state
            current = base + n + 1
    return numbers, current


def _opens_attempt(step: Step) -> bool:
    """Whether a history step is one of an attempt's first (task-sent, task-received)."""
    if step.passive or step.marker:
        return False
    return step.weak or step.state is _QUEUED or step.state is _SCHEDULED


def _kind(step: Step) -> int:
    if step.passive:
        return _OTHER
    if step.weak:
        return _SENT
    state = step.state
    if state is _RETRYING:
        return _RETRY
    if state is _ACTIVE:
        return _START
    if state is _QUEUED or state is _SCHEDULED:
        return _RECEIPT
    return _OTHER


def _ended(has: list[int], n: int) -> bool:
    return n < len(has) and bool(has[n] & _RETRY)


def _open_lacking(has: list[int], start: int, kind: int) -> int:
    """The earliest attempt from ``start`` not ended and without ``kind``; a new one if none."""
    for n in range(start, len(has)):
        if not has[n] & (kind | _RETRY):
            return n
    has.append(0)
    return len(has) - 1


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
    attempt: int = 1  # the attempt the job's state comes from
    # Errors to show under their attempts, oldest first: all but the current
    # attempt's own, which is ``exception`` and ``traceback``.
    attempt_errors: tuple[AttemptError, ...] = ()
    # Whether ``exception`` and ``traceback`` (the latest error by event time)
    # belong to the current attempt; see current_error.
    error_is_current: bool = True
    # The stretch of a long history that was not kept; its marker entry is in
    # ``history`` where the stretch was.
    omitted: Omitted | None = None

    @classmethod
    def unseen(cls, job_id: str) -> JobSnapshot:
        return cls(id=job_id, state=_UNKNOWN, seen=False, explanation=UNSEEN_EXPLANATION)

    def last_time(self, state: JobState) -> float | None:
        """When the job last entered ``state``, by event time (actions are no events)."""
        return next(
            (
                t.timestamp
                for t in reversed(self.history)
                if t.state is state and not (t.action or t.marker or t.progress)
            ),
            None,
        )

    @property
    def current_error(self) -> tuple[str | None, str | None]:
        """(exception, traceback) of the current attempt: nothing once a retry ran again."""
        if not self.error_is_current:
            return None, None
        return self.exception, self.traceback

    @property
    def first_time(self) -> float | None:
        """The time of the job's first event."""
        return next((t.timestamp for t in self.history if not (t.action or t.progress)), None)

    def attempts(self) -> list[Attempt]:
        """The history by attempt, each with its task-sent first.

        Celery stamps task-sent after publishing, so a quick worker's events can
        carry earlier times; the story still starts with the sending.
        """
        grouped: dict[int, list[Transition]] = {}
        for t in self.history:
            grouped.setdefault(t.attempt, []).append(t)
        return [
            Attempt(n, tuple(sorted(entries, key=_sent_first)))
            for n, entries in sorted(grouped.items())
        ]


def _sent_first(t: Transition) -> bool:
    # sorted() is stable: entries keep their time order apart from this.
    return not t.sending
