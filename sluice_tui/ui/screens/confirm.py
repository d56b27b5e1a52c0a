"""Confirmation dialogs: the user sees exactly what will be sent before it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from sluice_tui.actions import RetryPlan, RevokePlan, earlier_text, plan_lines
from sluice_tui.ui.text import inert


@dataclass(frozen=True)
class RevokeChoice:
    terminate: bool
    signal: str = "SIGTERM"


def _show(value: object) -> str:
    """Arguments as Python writes them, as the job list and detail show Celery's repr."""
    text = repr(value)
    return inert(text if len(text) <= 2000 else text[:2000] + "...")


class _Dialog(ModalScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel", id="dialog.cancel"),
    ]

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmRetryScreen(_Dialog):
    """Dismissed with the plan to send (maybe to a queue typed here), or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "send", "Send", id="retry.confirm"),
    ]

    def __init__(self, plan: RetryPlan) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        call = self.plan.call
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        grid.add_row("task", Text(inert(call.name)))
        grid.add_row("args", Text(_show(tuple(call.args))))
        grid.add_row("kwargs", Text(_show(call.kwargs)))
        for label, text in plan_lines(self.plan):
            style = "italic" if label == "from" else "yellow" if label == "not known" else ""
            if label == "queue" and not self.plan.queue:
                style = "bold yellow"
            grid.add_row(label, Text(inert(text), style))
        with Vertical(classes="dialog"):
            yield Static(
                Text.assemble(("Retry job ", "bold"), (inert(self.plan.job.id), "bold"), "?"),
                classes="dialog-title",
            )
            warning = earlier_text(self.plan)
            if warning:
                yield Static(Text(inert(warning), "bold yellow"), id="earlier")
            else:
                yield Static("It is sent again as a new job with a new id.")
            yield Static(grid, classes="dialog-body")
            if not self.plan.queue:
                yield Input(
                    placeholder="type a queue to send it there (empty: as said above)",
                    id="queue",
                    compact=True,
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Send (y)", variant="warning", id="send")
                yield Button("Cancel (n)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel").focus()

    @on(Button.Pressed, "#send")
    @on(Input.Submitted, "#queue")
    def action_send(self) -> None:
        typed = self.query("#queue").first(Input).value.strip() if not self.plan.queue else ""
        self.dismiss(self.plan.to_queue(typed) if typed else self.plan)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


class ConfirmRevokeScreen(_Dialog):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "revoke", "Revoke", id="revoke.confirm"),
        Binding("t", "terminate('SIGTERM')", "Terminate (SIGTERM)", id="revoke.term"),
        Binding("k", "terminate('SIGKILL')", "Kill (SIGKILL)", id="revoke.kill"),
    ]

    def __init__(self, plan: RevokePlan) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        job = self.plan.job
        title = Text.assemble(("Revoke job ", "bold"), (inert(job.id), "bold"), "?")
        with Vertical(classes="dialog"):
            yield Static(title, classes="dialog-title")
            name = inert(job.name) or "?"
            if self.plan.running:
                yield Static(
                    f"{name} is running on {inert(job.worker) or 'a worker'}. "
                    "Without terminate it keeps running to the end: a revoke only stops "
                    "jobs that have not started. Terminate sends a signal to the process "
                    "running it (prefork, eventlet and gevent pools; not threads or solo)."
                )
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Terminate, SIGTERM (t)", variant="error", id="term")
                    yield Button("Kill, SIGKILL (k)", variant="error", id="kill")
                    yield Button("Revoke only (y)", id="revoke")
                    yield Button("Cancel (n)", id="cancel")
            else:
                yield Static(
                    f"{name} is {job.state.value}. Workers will skip it when it reaches "
                    "them; the job shows cancelled once a worker reports it."
                )
                with Horizontal(classes="dialog-buttons"):
                    yield Button("Revoke (y)", variant="error", id="revoke")
                    yield Button("Cancel (n)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#cancel").focus()

    def action_revoke(self) -> None:
        self.dismiss(RevokeChoice(terminate=False))

    def action_terminate(self, signal: str) -> None:
        if self.plan.running:
            self.dismiss(RevokeChoice(terminate=True, signal=signal))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        choices = {
            "term": RevokeChoice(True, "SIGTERM"),
            "kill": RevokeChoice(True, "SIGKILL"),
            "revoke": RevokeChoice(False),
        }
        self.dismiss(choices.get(event.button.id or ""))
