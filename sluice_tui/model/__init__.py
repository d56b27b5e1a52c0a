"""The job model and store: pure Python, no Textual or Celery imports."""

from sluice_tui.model.job import JobSnapshot, Transition
from sluice_tui.model.states import (
    ALL_STATES,
    FINISHED_STATES,
    Action,
    ActionNotAllowed,
    JobState,
    check_action,
)
from sluice_tui.model.store import JobStore
from sluice_tui.model.workers import WorkerSnapshot

__all__ = [
    "ALL_STATES",
    "FINISHED_STATES",
    "Action",
    "ActionNotAllowed",
    "JobSnapshot",
    "JobState",
    "JobStore",
    "Transition",
    "WorkerSnapshot",
    "check_action",
]
