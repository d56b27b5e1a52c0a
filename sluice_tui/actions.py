"""The actions gate: the one way retry and revoke reach a cluster.

Pure Python.  It asks the state model whether an action is allowed, plans it
(so a user can confirm exactly what will be sent), checks again when it is
sent, records the outcome in the job's history and in the action log, and
leaves the talking to a :class:`ClusterControl` (the Celery adapter's).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sluice_tui.model.job import ATTEMPT_NUMBER, RETRIED_AS, RETRY_OF, REVOKE_REQUESTED, JobSnapshot
from sluice_tui.model.states import ALL_STATES, Action, JobState, check_action
from sluice_tui.model.store import JobStore

SIGNALS = ("SIGTERM", "SIGKILL")


class ActionRefused(Exception):
    """An allowed action that still cannot be done; the text says why and what to do."""


@dataclass(frozen=True)
class RetryCall:
    """Exactly what a retry sends."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str | None
    routing_key: str | None
    exchange: str | None
    source: str  # where the arguments came from, in words


@dataclass(frozen=True)
class RetryPlan:
    job: JobSnapshot
    call: RetryCall
    attempt: int


@dataclass(frozen=True)
class RevokePlan:
    job: JobSnapshot

    @property
    def running(self) -> bool:
        return self.job.state is JobState.ACTIVE


@dataclass(frozen=True)
class ActionRecord:
    time: float
    action: Action
    job_id: str
    ok: bool
    outcome: str
    new_job_id: str | None = None


@dataclass(frozen=True)
class RevokeOutcome:
    replies: list[str] = field(default_factory=list)


class ClusterControl(Protocol):
    def backend_state(self, job_id: str) -> JobState | None:
        """The job's state from the result backend; None when there is no backend."""

    def retry_call(self, job: JobSnapshot) -> RetryCall:
        """The exact call to send again; raises ActionRefused when it cannot be known."""

    def send(self, call: RetryCall) -> str:
        """Send the call as a new job; return its id."""

    def revoke(self, job_id: str, *, terminate: bool, signal: str) -> list[str]:
        """Broadcast a revoke; return the workers' replies, one line each."""


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

    def plan_retry(self, job_id: str) -> RetryPlan:
        job = self.job(job_id)
        self._check(Action.RETRY, job)
        call = self.control.retry_call(job)
        attempt = int((job.extra or {}).get(ATTEMPT_NUMBER, 1)) + 1
        return RetryPlan(job, call, attempt)

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
            self._check(Action.RETRY, self.job(job_id))
            sent_at = self.clock()  # the story dates it when sent, not when recorded
            new_id = self.control.send(plan.call)
        except Exception as exc:
            self._record(Action.RETRY, job_id, False, _reason(exc))
            raise
        self.store.record_action(job_id, "retry sent", {RETRIED_AS: new_id}, at=sent_at)
        self.store.record_action(
            new_id,
            "sent as a retry",
            {RETRY_OF: job_id, ATTEMPT_NUMBER: plan.attempt},
            create=True,
            name=plan.call.name,
            at=sent_at,
            precedes=ALL_STATES,  # every event of the new job follows its sending
        )
        self._record(Action.RETRY, job_id, True, f"sent again as {new_id}", new_id)
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

    def _record(
        self, action: Action, job_id: str, ok: bool, outcome: str, new_id: str | None = None
    ) -> None:
        self.log.append(ActionRecord(self.clock(), action, job_id, ok, outcome, new_id))


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
