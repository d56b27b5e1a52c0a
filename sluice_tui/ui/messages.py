"""What a screen asks of the app, as Textual Messages the app handles.

A screen posts one of these (``self.post_message(OpenJob(job_id))``); it
bubbles from the screen to the app, which owns navigation and the actions
gate.  Screens therefore never import the app, and the app is the only
module that imports screens.

``Host`` names what screens read from the app (the store, the job index and
the session's settings), so they can type ``self.app`` without importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message

from sluice_tui.model.states import Action

if TYPE_CHECKING:
    from sluice_tui.history import HistoryView
    from sluice_tui.model.store import JobStore
    from sluice_tui.ui.job_index import JobIndex


class Host(Protocol):
    """The app as screens see it: data and settings, no navigation."""

    store: JobStore
    index: JobIndex
    clock: Callable[[], float]
    read_only: bool
    paused: bool
    events_per_second: float
    actions: Any
    history: HistoryView | None  # the journal's status; None: the app keeps none

    def action_log(self) -> list[Any]:
        """Every action sent from this app, oldest first."""
        ...


class OpenJob(Message):
    """Open one job's detail (an unknown id shows 'not known')."""

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id


class ShowTaskJobs(Message):
    """Show the job table filtered to one task name (None clears that filter)."""

    def __init__(self, task_name: str | None) -> None:
        super().__init__()
        self.task_name = task_name


class RunAction(Message):
    """Retry or revoke a job: the app checks read-only and asks the gate."""

    def __init__(self, action: Action, job_id: str) -> None:
        super().__init__()
        self.action = action
        self.job_id = job_id


class OpenWorkers(Message):
    """Show the workers screen."""


class OpenQueues(Message):
    """Show the queues screen."""


class OpenTaskTypes(Message):
    """Show the task types screen."""


class AskGoto(Message):
    """Prompt for a job id and open it."""


class TogglePause(Message):
    """Freeze or resume live updates."""
