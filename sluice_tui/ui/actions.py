"""Retry, revoke and worker controls from the UI: off the UI thread, confirmed.

Planning may read the result backend and sending talks to the broker, so both
run in thread workers; their results come back as worker events on the UI
thread.  Asking workers for their figures (inspect) runs the same way.  Every
rule is the gate's: this module only asks and shows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.worker import Worker, WorkerState

from sluice_tui.actions import (
    ActionRefused,
    ActionsGate,
    RetryPlan,
    RevokePlan,
    WorkerAction,
    WorkerCommand,
)
from sluice_tui.model.states import Action, ActionNotAllowed
from sluice_tui.ui.screens.confirm import ConfirmRetryScreen, ConfirmRevokeScreen, RevokeChoice
from sluice_tui.ui.screens.worker_control import WorkerControlScreen

if TYPE_CHECKING:
    from sluice_tui.ui.app import SluiceApp

PLAN = "sluice-action-plan"
SEND = "sluice-action-send"
ASK = "sluice-ask-workers"  # inspect asked for by a key: its failure is said
ASK_QUIETLY = "sluice-ask-workers-quietly"  # asked on opening a screen: the board says
OK, REFUSED, FAILED = "ok", "refused", "failed"  # how a planned or sent action ended


class UIActions:
    def __init__(self, gate: ActionsGate) -> None:
        self.gate = gate

    def request(self, app: SluiceApp, action: Action, job_id: str) -> None:
        plan: Callable[[str], Any] = (
            self.gate.plan_retry if action is Action.RETRY else self.gate.plan_revoke
        )
        _in_thread(
            app,
            plan,
            job_id,
            group=PLAN,
            name=f"plan {action.value} {job_id}",
        )

    def on_worker_done(self, app: SluiceApp, event: Worker.StateChanged) -> bool:
        """Handle our workers' results; return whether the event was ours."""
        worker = event.worker
        # event.state, not worker.state: earlier state messages may be read late.
        if event.state is not WorkerState.SUCCESS:
            return False
        if worker.group in (ASK, ASK_QUIETLY):
            outcome, value = worker.result
            if outcome is not OK and worker.group == ASK:
                app.notify(
                    value, title="Workers not asked", severity="warning", timeout=8, markup=False
                )
            return True
        if worker.group not in (PLAN, SEND):
            return False
        outcome, value = worker.result
        if outcome is not OK:
            # A refusal sent nothing, even at send time (the job moved on
            # while the dialog was open); only a broker error is a failure.
            title = "Refused" if outcome is REFUSED else "Failed"
            app.notify(value, title=title, severity="error", timeout=10, markup=False)
        elif worker.group == SEND:
            app.notify(value, title="Sent", timeout=8, markup=False)
            app.tick()  # show the job's new note now, not at the next tick
        elif isinstance(value, RetryPlan):
            app.clear_notifications()  # earlier notices would cover the dialog
            app.push_screen(ConfirmRetryScreen(value), lambda chosen: self._send_retry(app, chosen))
        elif isinstance(value, RevokePlan):
            app.clear_notifications()
            app.push_screen(
                ConfirmRevokeScreen(value), lambda choice: self._send_revoke(app, value, choice)
            )
        return True

    def _send_retry(self, app: SluiceApp, plan: RetryPlan | None) -> None:
        # The dialog returns the plan to send: the queue may have been typed there.
        if plan is not None:
            _in_thread(
                app,
                lambda p: _retry_message(self.gate, p),
                plan,
                group=SEND,
                name=f"retry {plan.job.id}",
            )

    def _send_revoke(self, app: SluiceApp, plan: RevokePlan, choice: RevokeChoice | None) -> None:
        if choice is not None:
            _in_thread(
                app,
                lambda p: _revoke_message(self.gate, p, choice),
                plan,
                group=SEND,
                name=f"revoke {plan.job.id}",
            )

    # -- workers ---------------------------------------------------------------

    def ask_workers(
        self, app: SluiceApp, hostname: str | None = None, *, quietly: bool = False
    ) -> None:
        """Ask the workers (or one, with its held jobs) for their figures, off the UI thread."""

        def ask(_: object) -> str:
            self.gate.refresh_workers([hostname] if hostname else None)
            if hostname:
                self.gate.refresh_held(hostname)
            return "asked"

        _in_thread(
            app,
            ask,
            None,
            group=ASK_QUIETLY if quietly else ASK,
            name=f"ask {hostname or 'all workers'}",
        )

    def request_worker_control(
        self, app: SluiceApp, action: WorkerAction, hostname: str | None
    ) -> None:
        """Open the control's dialog; what it returns is sent off the UI thread."""
        if hostname is None:
            app.notify("No worker is selected.", severity="warning")
            return
        try:
            self.gate.check_worker_control(action)
        except ActionRefused as exc:
            app.notify(str(exc), title="Refused", severity="warning", timeout=8, markup=False)
            return
        figures = self.gate.workers.figures(hostname)
        app.clear_notifications()
        app.push_screen(
            WorkerControlScreen(action, hostname, figures),
            lambda command: self._send_control(app, command),
        )

    def _send_control(self, app: SluiceApp, command: WorkerCommand | None) -> None:
        if command is None:
            return

        def send(c: WorkerCommand) -> str:
            said = self.gate.control_worker(c)
            if c.action is not WorkerAction.SHUTDOWN:
                # Show the change (pool size, queues, limits); if asking
                # fails, the reply was still shown and the figures stay.
                with contextlib.suppress(Exception):
                    self.gate.refresh_workers([c.hostname])
            return said

        _in_thread(
            app,
            send,
            command,
            group=SEND,
            name=f"{command.action.value} {command.hostname}",
        )


def _retry_message(gate: ActionsGate, plan: RetryPlan) -> str:
    new_id = gate.retry(plan)
    return f"Job {plan.job.id[:8]} sent again, as new job {new_id}"  # no "." to wrap alone


def _revoke_message(gate: ActionsGate, plan: RevokePlan, choice: RevokeChoice) -> str:
    replies = gate.revoke(plan, terminate=choice.terminate, signal=choice.signal)
    how = f"Terminate ({choice.signal})" if choice.terminate else "Revoke"
    # Celery's replies quote the full id, which a toast breaks across lines.
    short = [reply.replace(plan.job.id, plan.job.id[:8]) for reply in replies]
    answered = "\n".join(short) if short else "No worker replied within a second."
    return f"{how} of {plan.job.id[:8]} sent.\n{answered}"


def _in_thread(
    app: SluiceApp, fn: Callable[[Any], Any], arg: Any, *, group: str, name: str
) -> None:
    """Run ``fn(arg)`` off the UI thread; its outcome comes back as a worker result."""
    app.run_worker(
        lambda: _outcome(fn, arg), thread=True, group=group, name=name, exit_on_error=False
    )


def _outcome(fn: Callable[[Any], Any], arg: Any) -> tuple[str, Any]:
    """Run ``fn`` in a worker thread; turn expected failures into a message."""
    try:
        return OK, fn(arg)
    except (ActionNotAllowed, ActionRefused) as exc:
        return REFUSED, str(exc)
    except Exception as exc:  # the broker or backend failed: say so, do not crash
        return FAILED, f"{type(exc).__name__}: {exc}"
