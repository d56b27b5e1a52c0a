"""The actions gate: the one way retry, revoke and worker controls reach a cluster.

Pure Python.  It asks the state model whether an action is allowed, plans it
(so a user can confirm exactly what will be sent), checks again when it is
sent, records the outcome in the job's history and in the action log, and
leaves the talking to a :class:`ClusterControl` (the Celery adapter's).
Asking workers about themselves (inspect) goes through here too: it
publishes a message, so ``--read-only`` refuses it like any action.
"""

from __future__ import annotations

import enum
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sluice_tui.model.job import ATTEMPT_NUMBER, RETRIED_AS, RETRY_OF, REVOKE_REQUESTED, JobSnapshot
from sluice_tui.model.states import ALL_STATES, Action, JobState, check_action
from sluice_tui.model.store import JobStore
from sluice_tui.model.worker_info import HeldJobs, WorkerBoard, WorkerFigures

SIGNALS = ("SIGTERM", "SIGKILL")
# Retries sent before the newest one (``retried_as``), oldest first, as one
# readable line of ids: every screen that lists a job's details can show it.
EARLIER_RETRIES = "earlier_retries"
# How many linked retries are followed when numbering attempts.
MAX_FAMILY = 1000


class ActionRefused(Exception):
    """An allowed action that still cannot be done; the text says why and what to do."""


# Options of a Celery call that no event, result backend or worker reply keeps:
# a retry cannot carry them, and the confirmation says so.
NEVER_KNOWN = (
    "custom headers",
    "link/link_error callbacks",
    "per-call time limits (the task's own limits apply)",
)
# RetryCall.queue_source of a queue the user chose.
QUEUE_GIVEN = "given for this retry"


@dataclass(frozen=True)
class RetryCall:
    """Exactly what a retry sends.

    The routing (``queue``, or ``routing_key`` with ``exchange``) is empty when
    no source knew it: Celery then routes the task as the monitor's app would,
    which ``fallback`` describes.  ``parent_id`` and ``root_id`` are the
    original job's: a re-run stands in for it in its workflow (as Celery's own
    ``Task.retry`` keeps them), while ``retry_of`` records where it came from.
    """

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str | None
    routing_key: str | None
    exchange: str | None
    source: str  # where the arguments came from, in words
    queue_source: str | None = None  # where the routing came from: "from the ..."
    priority: int | None = None
    parent_id: str | None = None
    root_id: str | None = None
    fallback: str | None = None  # where Celery sends it when the routing is empty
    not_carried: tuple[str, ...] = ()  # options the original may have had, in words

    @property
    def destination(self) -> str | None:
        """The queue (or routing key) it goes to; None when not known."""
        return self.queue or self.routing_key


@dataclass(frozen=True)
class EarlierRetry:
    """A retry already sent for the job, and where it is now."""

    job_id: str
    state: JobState


@dataclass(frozen=True)
class RetryPlan:
    job: JobSnapshot
    call: RetryCall
    attempt: int
    # Retries sent before for this very job, oldest first: a new one asks again.
    earlier: tuple[EarlierRetry, ...] = ()
    # Jobs of the same task with the same arguments first seen after this one
    # ended, the latest first: retries sent elsewhere (the retry command,
    # another monitor, the app) look so, and this monitor has no other way to know.
    lookalikes: tuple[EarlierRetry, ...] = ()

    @property
    def queue(self) -> str | None:
        """The original queue, or the one given; None when not known."""
        return self.call.destination

    def to_queue(self, queue: str) -> RetryPlan:
        """The same plan sent to ``queue``, which the user chose."""
        call = replace(
            self.call, queue=queue, routing_key=None, exchange=None, queue_source=QUEUE_GIVEN
        )
        return replace(self, call=call)

    @property
    def not_known(self) -> tuple[str, ...]:
        """What the original call may have had and this one will not, in words."""
        missing = () if self.queue else ("queue",)
        if self.call.priority is None:
            missing += ("priority",)
        return missing + self.call.not_carried


def plan_lines(plan: RetryPlan) -> list[tuple[str, str]]:
    """The plan in words, label and text, for a dialog or a terminal."""
    call = plan.call
    if plan.queue:
        queue = f"{plan.queue} ({call.queue_source or 'from the job'})"
    else:
        fallback = call.fallback or "the app's default queue"
        queue = f"not known: {fallback} will be used"
    lines = [("queue", queue)]
    if call.priority is not None:
        lines.append(("priority", str(call.priority)))
    if call.parent_id:
        lines.append(("parent", call.parent_id))
    if call.root_id:
        lines.append(("root", call.root_id))
    lines.append(("attempt", str(plan.attempt)))
    lines.append(("from", call.source))
    unsaid = [what for what in plan.not_known if what != "queue"]  # said on its line
    if unsaid:
        lines.append(("not known", ", ".join(unsaid)))
    return lines


def earlier_text(plan: RetryPlan) -> str | None:
    """The warning for a job that was retried before, or looks so; None otherwise."""
    said = []
    if plan.earlier:
        sent = ", ".join(f"{e.job_id} (now {e.state.value})" for e in plan.earlier)
        said.append(f"Already retried as {sent}. Another retry sends one more job, with a new id.")
    if plan.lookalikes:
        seen = ", ".join(f"{e.job_id} (now {e.state.value})" for e in plan.lookalikes)
        said.append(
            f"Sent since it ended, same task and arguments: {seen}. It may be a retry of it "
            "sent elsewhere (the retry command, another monitor, the app itself)."
        )
    return " ".join(said) or None


@dataclass(frozen=True)
class RevokePlan:
    job: JobSnapshot

    @property
    def running(self) -> bool:
        return self.job.state is JobState.ACTIVE


class WorkerAction(enum.StrEnum):
    """Controls sent to one worker (Celery's broadcast control commands)."""

    POOL_GROW = "pool grow"
    POOL_SHRINK = "pool shrink"
    AUTOSCALE = "autoscale"
    ADD_CONSUMER = "add consumer"
    CANCEL_CONSUMER = "cancel consumer"
    RATE_LIMIT = "rate limit"
    TIME_LIMIT = "time limit"
    SHUTDOWN = "shutdown"


# Celery's rate limit: a number of tasks per second, or per s/m/h; 0 lifts it.
RATE_LIMIT = re.compile(r"^\d+(\.\d+)?(/[smh])?$")


@dataclass(frozen=True)
class WorkerCommand:
    """Exactly what a worker control sends, to one worker."""

    action: WorkerAction
    hostname: str
    n: int | None = None  # pool grow / shrink
    max: int | None = None  # autoscale
    min: int | None = None
    queue: str | None = None  # add / cancel consumer
    task: str | None = None  # rate limit, time limit
    rate: str | None = None
    soft: float | None = None  # time limit, seconds
    hard: float | None = None

    def describe(self) -> str:
        """What it does, in words, for the dialog and the action log."""
        a = WorkerAction
        match self.action:
            case a.POOL_GROW:
                return f"grow the pool by {self.n} process{'es' if self.n != 1 else ''}"
            case a.POOL_SHRINK:
                return f"shrink the pool by {self.n} process{'es' if self.n != 1 else ''}"
            case a.AUTOSCALE:
                return f"autoscale between min {self.min} and max {self.max} processes"
            case a.ADD_CONSUMER:
                return f"start consuming from queue {self.queue}"
            case a.CANCEL_CONSUMER:
                return f"stop consuming from queue {self.queue}"
            case a.RATE_LIMIT:
                lifted = " (no limit)" if _no_rate(self.rate) else ""
                return f"rate limit {self.task} to {self.rate}{lifted}"
            case a.TIME_LIMIT:
                return (
                    f"time limits of {self.task}: soft {_seconds(self.soft)}, "
                    f"hard {_seconds(self.hard)}"
                )
            case _:
                return "shut the worker down (warm: running jobs finish first)"


def _no_rate(rate: str | None) -> bool:
    return rate is not None and float(rate.split("/")[0]) == 0


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:g} s"


def worker_command(action: WorkerAction, hostname: str, **fields: str) -> WorkerCommand:
    """A command from what the user typed; ActionRefused says what is wrong.

    Empty fields take the defaults (1 process; no soft or hard limit).
    """
    a = WorkerAction
    typed = {key: value.strip() for key, value in fields.items()}

    def count(key: str, default: int | None = None, least: int = 1) -> int:
        text = typed.get(key, "")
        if not text and default is not None:
            return default
        if not text.isdigit() or int(text) < least:
            raise ActionRefused(f"{key} must be a whole number of at least {least}")
        return int(text)

    def seconds(key: str) -> float | None:
        text = typed.get(key, "")
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not value >= 0 or value == float("inf"):
            raise ActionRefused(f"{key} must be a number of seconds (or empty for none)")
        return value

    def name(key: str, what: str) -> str:
        text = typed.get(key, "")
        if not text or any(c.isspace() for c in text):
            raise ActionRefused(f"type the {what} (one word, no spaces)")
        return text

    if action in (a.POOL_GROW, a.POOL_SHRINK):
        return WorkerCommand(action, hostname, n=count("n", 1))
    if action is a.AUTOSCALE:
        high, low = count("max"), count("min", least=0)
        if low > high:
            raise ActionRefused("min must not be more than max")
        return WorkerCommand(action, hostname, max=high, min=low)
    if action in (a.ADD_CONSUMER, a.CANCEL_CONSUMER):
        return WorkerCommand(action, hostname, queue=name("queue", "queue's name"))
    if action is a.RATE_LIMIT:
        task, rate = name("task", "task's name"), typed.get("rate", "")
        if not RATE_LIMIT.match(rate):
            raise ActionRefused("rate must read like 10/m, 2/s, 100/h or 5 (0 lifts the limit)")
        return WorkerCommand(action, hostname, task=task, rate=rate)
    if action is a.TIME_LIMIT:
        task, soft, hard = name("task", "task's name"), seconds("soft"), seconds("hard")
        if soft is not None and hard is not None and soft > hard:
            raise ActionRefused("the soft limit must not be longer than the hard one")
        return WorkerCommand(action, hostname, task=task, soft=soft, hard=hard)
    if typed.get("confirm", "") != hostname:
        raise ActionRefused(f"type the worker's name, {hostname}, to shut it down")
    return WorkerCommand(action, hostname)


@dataclass(frozen=True)
class WorkerReply:
    """One worker's answer to a control: ``ok`` False when it refused."""

    worker: str
    ok: bool
    text: str


@dataclass(frozen=True)
class ActionRecord:
    time: float
    action: Action | WorkerAction
    job_id: str  # empty for a worker control
    ok: bool
    outcome: str
    new_job_id: str | None = None
    worker: str | None = None  # the worker a control was sent to

    @property
    def target(self) -> str:
        """What the action was sent about: a job's id, or a worker."""
        return f"worker {self.worker}" if self.worker else self.job_id


@dataclass(frozen=True)
class RevokeOutcome:
    replies: list[str] = field(default_factory=list)


class ClusterControl(Protocol):
    def backend_state(self, job_id: str) -> JobState | None:
        """The job's state from the result backend; None when there is no backend."""

    def retry_call(self, job: JobSnapshot) -> RetryCall:
        """The exact call to send again, with every option any source knows.

        Raises ActionRefused when the task or its arguments cannot be known.
        May ask the workers (a broadcast with a short timeout): call it off
        the UI thread.
        """

    def send(self, call: RetryCall) -> str:
        """Send the call as a new job; return its id."""

    def revoke(self, job_id: str, *, terminate: bool, signal: str) -> list[str]:
        """Broadcast a revoke; return the workers' replies, one line each."""

    def worker_control(self, command: WorkerCommand) -> list[WorkerReply]:
        """Send a control to its one worker; return its reply (none: it timed out).

        Shutdown gets no reply: the worker stops instead of answering.
        """

    def worker_figures(self, destination: list[str] | None = None) -> list[WorkerFigures]:
        """Ask workers (all, or ``destination``) for their figures; call off the UI thread."""

    def held_jobs(self, hostname: str) -> HeldJobs:
        """Ask one worker which jobs it holds; call off the UI thread."""


class ActionsGate:
    def __init__(
        self,
        store: JobStore,
        control: ClusterControl,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.control = control
        self.read_only = read_only
        self.clock = clock
        self.log: deque[ActionRecord] = deque(maxlen=1000)

    # -- planning: nothing is sent --------------------------------------

    def job(self, job_id: str) -> JobSnapshot:
        """What the store knows, or else what the result backend says."""
        job = self.store.get(job_id)
        if job.seen:
            return job
        state = self.control.backend_state(job_id)
        if state is None or state is JobState.UNKNOWN:
            return job
        return JobSnapshot(
            id=job_id,
            state=state,
            seen=False,
            explanation=f"state {state.value} from the result backend; no event seen",
        )

    def plan_retry(self, job_id: str, *, queue: str | None = None) -> RetryPlan:
        """What a retry would send; nothing is sent.

        ``queue`` overrides the original routing (the user chose it).  Without
        it, ``plan.queue`` is None when no source knew the original queue and
        the app's own routing would decide.  A job retried before carries its
        earlier retries in ``plan.earlier``: the caller must ask again.
        """
        job = self.job(job_id)
        self._check(Action.RETRY, job)
        call = self.control.retry_call(job)
        earlier = tuple(EarlierRetry(i, self.job(i).state) for i in retries_sent(job.extra))
        lookalikes = self._lookalikes(job, earlier)
        plan = RetryPlan(job, call, self._next_attempt(job), earlier, lookalikes)
        return plan.to_queue(queue) if queue else plan

    def _lookalikes(
        self, job: JobSnapshot, earlier: tuple[EarlierRetry, ...]
    ) -> tuple[EarlierRetry, ...]:
        """Jobs sent since ``job`` ended with its task and arguments (see RetryPlan)."""
        if job.name is None or job.args is None or not job.history:
            return ()
        ended = max(entry.timestamp for entry in job.history)
        known = {job.id, *(e.job_id for e in earlier)}
        same = self.store.same_call(job.name, job.args, job.kwargs, ended)
        return tuple(EarlierRetry(i, self.job(i).state) for i in same if i not in known)

    def _next_attempt(self, job: JobSnapshot) -> int:
        """One more than any attempt of the job's family of retries this store knows.

        Retrying a job twice, or retrying an earlier attempt of a chain, must
        not give two jobs the same attempt number.
        """
        origin, seen = job, {job.id}
        for _ in range(MAX_FAMILY):  # back along retry_of to the first attempt
            before = (origin.extra or {}).get(RETRY_OF)
            if not isinstance(before, str) or before in seen or before not in self.store:
                break
            seen.add(before)
            origin = self.store.get(before)
        highest, todo, visited = 1, [origin], {origin.id}
        while todo and len(visited) <= MAX_FAMILY:
            member = todo.pop()
            highest = max(highest, _attempt_of(member))
            for later in retries_sent(member.extra):
                if later not in visited:
                    visited.add(later)
                    todo.append(self.store.get(later))
        return max(highest, _attempt_of(job)) + 1

    def plan_revoke(self, job_id: str) -> RevokePlan:
        job = self.job(job_id)
        self._check(Action.REVOKE, job)
        return RevokePlan(job)

    def _check(self, action: Action, job: JobSnapshot) -> None:
        if self.read_only:
            raise ActionRefused(
                f"read-only mode: {action.value} is disabled "
                "(start sluice-tui without --read-only to change the cluster)"
            )
        check_action(action, job.id, job.state)

    # -- doing: each re-checks the rules, since the job may have moved on ------

    def retry(self, plan: RetryPlan) -> str:
        job_id = plan.job.id
        try:
            job = self.job(job_id)
            self._check(Action.RETRY, job)
            known = {e.job_id for e in plan.earlier}
            since = [i for i in retries_sent(job.extra) if i not in known]
            if since:  # another retry went out while this one was being confirmed
                raise ActionRefused(
                    f"job {job_id} was retried as {since[-1]} meanwhile; nothing was sent "
                    "(retry it again to send one more)"
                )
            sent_at = self.clock()  # the story dates it when sent, not when recorded
            new_id = self.control.send(plan.call)
        except Exception as exc:
            self._record(Action.RETRY, job_id, False, _reason(exc))
            raise
        links: dict[str, Any] = {RETRIED_AS: new_id}
        if plan.earlier:  # keep every retry: the newest stays the row's and detail's link
            links[EARLIER_RETRIES] = ", ".join(e.job_id for e in plan.earlier)
        self.store.record_action(job_id, "retry sent", links, at=sent_at)
        self.store.record_action(
            new_id,
            "sent as a retry",
            {RETRY_OF: job_id, ATTEMPT_NUMBER: plan.attempt},
            create=True,
            name=plan.call.name,
            at=sent_at,
            precedes=ALL_STATES,  # every event of the new job follows its sending
        )
        where = plan.queue or f"{plan.call.fallback or 'the default queue'} (queue not known)"
        self._record(Action.RETRY, job_id, True, f"sent again as {new_id} to {where}", new_id)
        return new_id

    def revoke(
        self, plan: RevokePlan, *, terminate: bool = False, signal: str = "SIGTERM"
    ) -> list[str]:
        job_id = plan.job.id
        if signal not in SIGNALS:
            raise ActionRefused(f"signal must be one of {', '.join(SIGNALS)}, not {signal!r}")
        try:
            self._check(Action.REVOKE, self.job(job_id))
            # Replies take up to the broadcast's timeout to come, and the job's
            # task-revoked may come first: date the request when it was sent.
            sent_at = self.clock()
            replies = self.control.revoke(job_id, terminate=terminate, signal=signal)
        except Exception as exc:
            self._record(Action.REVOKE, job_id, False, _reason(exc))
            raise
        how = f"terminate with {signal}" if terminate else "revoke"
        self.store.record_action(
            job_id,
            "revoke requested",
            {REVOKE_REQUESTED: True, "revoke_terminate": terminate},
            at=sent_at,
            precedes=(JobState.CANCELLED,),
        )
        answered = "; ".join(replies) if replies else "no worker replied"
        self._record(Action.REVOKE, job_id, True, f"{how} sent: {answered}")
        return replies

    # -- workers: asking them, and controlling them ---------------------------

    @property
    def workers(self) -> WorkerBoard:
        """Where the workers' figures and held jobs are kept (the store's board)."""
        return self.store.worker_info

    def check_worker_control(self, action: WorkerAction) -> None:
        """Refuse what ``--read-only`` forbids before any dialog is opened."""
        if self.read_only:
            raise ActionRefused(
                f"read-only mode: {action.value} is disabled "
                "(start sluice-tui without --read-only to change the cluster)"
            )

    def control_worker(self, command: WorkerCommand) -> str:
        """Send a confirmed control; return the worker's reply in words.

        A worker that refuses, or does not reply in time, raises ActionRefused
        with what it said (or that it said nothing); every outcome is logged.
        """
        what = command.describe()
        try:
            self.check_worker_control(command.action)
            replies = self.control.worker_control(command)
        except Exception as exc:
            self._record_worker(command, False, f"{what}: {_reason(exc)}")
            raise
        if command.action is WorkerAction.SHUTDOWN:
            outcome = (
                f"{what}: sent (a worker shutting down sends no reply; "
                "it shows offline once it has stopped)"
            )
            self._record_worker(command, True, outcome)
            return outcome
        if not replies:
            outcome = (
                f"{what}: timed out, no reply from {command.hostname}; "
                "it may be busy, gone, or not have done it"
            )
            self._record_worker(command, False, outcome)
            raise ActionRefused(outcome)
        said = "; ".join(f"{reply.worker}: {reply.text}" for reply in replies)
        if not all(reply.ok for reply in replies):
            outcome = f"{what}: refused by the worker ({said})"
            self._record_worker(command, False, outcome)
            raise ActionRefused(outcome)
        outcome = f"{what}: {said}"
        self._record_worker(command, True, outcome)
        return outcome

    def refresh_workers(self, destination: list[str] | None = None) -> list[WorkerFigures]:
        """Ask the workers for their figures and keep the replies on the board."""
        if self.read_only:
            self.workers.record_failure("workers not asked (--read-only)")  # a title line
            raise ActionRefused(
                "workers not asked (--read-only: an inspect request is a published message)"
            )
        self.workers.asking()
        try:
            figures = self.control.worker_figures(destination)
        except Exception as exc:
            self.workers.record_failure(f"asking the workers failed: {_reason(exc)}")
            raise
        self.workers.record_figures(figures, at=self.clock())
        return figures

    def refresh_held(self, hostname: str) -> HeldJobs:
        """Ask one worker which jobs it holds and keep the reply on the board."""
        if self.read_only:
            raise ActionRefused(
                "workers not asked (--read-only: an inspect request is a published message)"
            )
        held = self.control.held_jobs(hostname)
        self.workers.record_held(held)
        return held

    def _record_worker(self, command: WorkerCommand, ok: bool, outcome: str) -> None:
        record = ActionRecord(
            self.clock(), command.action, "", ok, outcome, worker=command.hostname
        )
        self.log.append(record)

    def _record(
        self, action: Action, job_id: str, ok: bool, outcome: str, new_id: str | None = None
    ) -> None:
        self.log.append(ActionRecord(self.clock(), action, job_id, ok, outcome, new_id))


def retries_sent(extra: dict[str, Any] | None) -> list[str]:
    """Ids of the retries sent for a job, oldest first (from its extra)."""
    if not extra:
        return []
    earlier = extra.get(EARLIER_RETRIES)
    ids = [i for i in earlier.split(", ") if i] if isinstance(earlier, str) else []
    latest = extra.get(RETRIED_AS)
    if isinstance(latest, str) and latest not in ids:
        ids.append(latest)
    return ids


def _attempt_of(job: JobSnapshot) -> int:
    try:
        return int((job.extra or {}).get(ATTEMPT_NUMBER, 1))
    except (TypeError, ValueError):
        return 1


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
