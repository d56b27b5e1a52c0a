"""The eight normalized job states, their precedence and the action rules.

Pure Python: no Textual or Celery imports. Every other layer asks this module
whether a transition or an action is allowed, so the rules live in one place.
"""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    # Declaration order is the order of the filter digits 1-8 in the UI.
    UNKNOWN = "unknown"
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    RETRYING = "retrying"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES

    @property
    def digit(self) -> int:
        return ALL_STATES.index(self) + 1


ALL_STATES: tuple[JobState, ...] = tuple(JobState)

FINISHED_STATES: frozenset[JobState] = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}
)

# Celery's own precedence (celery.states): SUCCESS > FAILURE > REVOKED > STARTED
# > RECEIVED > REJECTED > RETRY > PENDING.  REJECTED maps to failed here, which
# is finished, so it takes failed's rank.
RANK: dict[JobState, int] = {
    JobState.UNKNOWN: 0,
    JobState.RETRYING: 1,
    JobState.QUEUED: 2,
    JobState.SCHEDULED: 2,
    JobState.ACTIVE: 3,
    JobState.CANCELLED: 4,
    JobState.FAILED: 5,
    JobState.COMPLETED: 6,
}


def accepts(current: JobState, new: JobState) -> bool:
    """Whether an event that maps to ``new`` moves a job out of ``current``.

    Events are folded in event-time order, so this is the whole merge rule.
    ``Task.retry`` re-sends the same id: after ``retrying`` any event starts the
    next attempt, and ``retrying`` itself ends an attempt unless the job has
    already finished.  Otherwise a lower-ranked event never moves a job back.
    """
    if current is JobState.RETRYING:
        return True
    if new is JobState.RETRYING:
        return current not in FINISHED_STATES
    return RANK[new] >= RANK[current]


# accepts() as a table, for the ingest hot path: ACCEPTS[current][new].
ACCEPTS: dict[JobState, dict[JobState, bool]] = {
    current: {new: accepts(current, new) for new in ALL_STATES} for current in ALL_STATES
}


class Action(enum.StrEnum):
    RETRY = "retry"
    REVOKE = "revoke"


ACTION_RULES: dict[Action, frozenset[JobState]] = {
    Action.RETRY: frozenset({JobState.FAILED, JobState.CANCELLED}),
    Action.REVOKE: frozenset(
        {
            JobState.ACTIVE,
            JobState.QUEUED,
            JobState.SCHEDULED,
            JobState.RETRYING,
            JobState.UNKNOWN,
        }
    ),
}


class ActionNotAllowed(Exception):
    """An action was asked for in a state whose rules refuse it."""

    def __init__(self, action: Action, job_id: str, state: JobState) -> None:
        self.action = action
        self.job_id = job_id
        self.state = state
        allowed = ", ".join(s.value for s in ALL_STATES if s in ACTION_RULES[action])
        super().__init__(
            # The state before the colon: a wrapped toast never starts a line with ":".
            f"cannot {action.value} job {job_id} (it is {state.value}): "
            f"{action.value} is allowed only when a job is {allowed}"
        )


def allowed(action: Action, state: JobState) -> bool:
    return state in ACTION_RULES[action]


def check_action(action: Action, job_id: str, state: JobState) -> None:
    """Raise :class:`ActionNotAllowed` unless ``action`` is allowed in ``state``."""
    if state not in ACTION_RULES[action]:
        raise ActionNotAllowed(action, job_id, state)
