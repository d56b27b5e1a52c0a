"""The dialog for one worker control: what to send, shown in words before it is sent.

It returns a :class:`WorkerCommand` (built and checked by the gate's
``worker_command``) or None.  Shutdown is sent only once the worker's name
has been typed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from sluice_tui.actions import ActionRefused, WorkerAction, WorkerCommand, worker_command
from sluice_tui.model.worker_info import WorkerFigures
from sluice_tui.ui.text import inert

A = WorkerAction

# (field, label, placeholder) of each control's inputs.
FIELDS: dict[WorkerAction, tuple[tuple[str, str, str], ...]] = {
    A.POOL_GROW: (("n", "processes", "1"),),
    A.POOL_SHRINK: (("n", "processes", "1"),),
    A.AUTOSCALE: (("max", "max", "most processes"), ("min", "min", "fewest processes")),
    A.ADD_CONSUMER: (("queue", "queue", "queue to consume from"),),
    A.CANCEL_CONSUMER: (("queue", "queue", "queue to stop consuming"),),
    A.RATE_LIMIT: (("task", "task", "task name"), ("rate", "rate", "10/m, 2/s, 0 = none")),
    A.TIME_LIMIT: (
        ("task", "task", "task name"),
        ("soft", "soft (s)", "empty: none"),
        ("hard", "hard (s)", "empty: none"),
    ),
    A.SHUTDOWN: (("confirm", "name", "type the worker's name"),),
}


# The controls, on the workers screen and a worker's detail alike.
CONTROL_BINDINGS: list[BindingType] = [
    Binding("i", "ask", "Ask workers", id="workers.ask"),
    # Too many for a footer at 80 columns: CONTROL_KEYS lists them on screen.
    Binding("plus", "control('pool grow')", "Grow pool", id="workers.grow", show=False),
    Binding("minus", "control('pool shrink')", "Shrink pool", id="workers.shrink", show=False),
    Binding("a", "control('autoscale')", "Autoscale", id="workers.autoscale", show=False),
    Binding("c", "control('add consumer')", "Add consumer", id="workers.consume", show=False),
    Binding("x", "control('cancel consumer')", "Cancel consumer", id="workers.cancel", show=False),
    Binding("r", "control('rate limit')", "Rate limit", id="workers.rate", show=False),
    Binding("m", "control('time limit')", "Time limit", id="workers.time", show=False),
    Binding("S", "control('shutdown')", "Shutdown", id="workers.shutdown", show=False),
]
# One line naming every control key, under a workers screen's title.
CONTROL_KEYS = "+/- pool  a autoscale  c/x consume/stop  r rate  m time limit  S shutdown"


def what_it_is(action: WorkerAction, figures: WorkerFigures | None) -> str:
    """One line on the worker's current setting, when it is known."""
    if figures is None:
        return "Its current figures are not known (press i on the workers screen to ask)."
    if action in (A.POOL_GROW, A.POOL_SHRINK, A.AUTOSCALE):
        size = "?" if figures.pool_size is None else str(figures.pool_size)
        scale = (
            f"; autoscaling {figures.autoscale[1]}-{figures.autoscale[0]}"
            if figures.autoscale
            else "; not autoscaling (autoscale is refused)"
        )
        if figures.autoscale and action is not A.AUTOSCALE:
            scale += " (pool grow/shrink are refused: change the range)"
        processes = "process" if figures.pool_size == 1 else "processes"
        return f"Pool: {inert(figures.pool) or '?'}, {size} {processes} now{scale}."
    if action in (A.ADD_CONSUMER, A.CANCEL_CONSUMER):
        queues = ", ".join(inert(q) for q in figures.queues or ()) or "none known"
        return f"Consuming from: {queues}."
    if action is A.SHUTDOWN:
        return (
            "A warm shutdown: it takes no new jobs, lets running ones finish and exits. "
            "Nothing restarts it unless its supervisor does."
        )
    limited = [
        f"{inert(name)} {inert(str(limits.rate_limit or '-'))} / "
        f"{inert(str(limits.soft_time_limit or '-'))} / {inert(str(limits.time_limit or '-'))}"
        for name, limits in sorted(figures.limits.items())
    ]
    return (
        "Limits now (rate / soft / hard): " + "; ".join(limited)
        if limited
        else "No task has a rate or time limit now."
    )


class WorkerControlScreen(ModalScreen[WorkerCommand | None]):
    DEFAULT_CSS = """
    WorkerControlScreen { align: center middle; }
    WorkerControlScreen .dialog { width: 76; max-width: 100%; height: auto;
        border: thick $warning; background: $surface; padding: 0 1; }
    WorkerControlScreen .field { height: 1; margin-top: 1; }
    WorkerControlScreen .field Label { width: 10; }
    WorkerControlScreen .field Input { width: 1fr; }
    WorkerControlScreen #control-error { color: $error; }
    WorkerControlScreen #control-sends { margin-top: 1; }
    WorkerControlScreen .dialog-buttons { height: auto; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="control.cancel"),
    ]

    def __init__(
        self, action: WorkerAction, hostname: str, figures: WorkerFigures | None = None
    ) -> None:
        super().__init__()
        self.action = action
        self.hostname = hostname
        self.figures = figures

    def compose(self) -> ComposeResult:
        destructive = self.action is A.SHUTDOWN
        title = Text.assemble(
            (self.action.value.capitalize(), "bold"), " on worker ", (inert(self.hostname), "bold")
        )
        with Vertical(classes="dialog"):
            yield Static(title, classes="dialog-title")
            yield Static(Text(what_it_is(self.action, self.figures)))
            for key, label, placeholder in FIELDS[self.action]:
                with Horizontal(classes="field"):
                    yield Label(label)
                    yield Input(
                        value=self._prefill(key),
                        placeholder=placeholder,
                        id=f"field-{key}",
                        compact=True,
                    )
            yield Static(id="control-sends")
            yield Static(id="control-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    "Shut down" if destructive else "Send",
                    variant="error" if destructive else "warning",
                    id="send",
                )
                yield Button("Cancel (esc)", id="cancel")

    def _prefill(self, key: str) -> str:
        figures = self.figures
        if key == "n":
            return "1"
        if figures is not None and figures.autoscale and key in ("max", "min"):
            return str(figures.autoscale[0 if key == "max" else 1])
        return ""

    def on_mount(self) -> None:
        self.query(Input).first().focus()
        self._preview()

    def _typed(self) -> dict[str, str]:
        return {i.id.removeprefix("field-"): i.value for i in self.query(Input) if i.id}

    def _command(self) -> WorkerCommand:
        return worker_command(self.action, self.hostname, **self._typed())

    @on(Input.Changed)
    def _preview(self) -> None:
        sends = self.query_one("#control-sends", Static)
        try:
            command = self._command()
        except ActionRefused as exc:
            sends.update(Text(f"Not ready: {inert(str(exc))}", "italic"))
            self.query_one("#send", Button).disabled = True
            return
        sends.update(
            Text.assemble(
                ("Sends: ", "bold"), inert(command.describe()), f" to {inert(self.hostname)}"
            )
        )
        self.query_one("#send", Button).disabled = False
        self.query_one("#control-error", Static).update("")

    @on(Button.Pressed, "#send")
    @on(Input.Submitted)
    def action_send(self) -> None:
        try:
            command = self._command()
        except ActionRefused:
            # Why is said once, in the preview above ("Not ready: ..."), as it is typed.
            self._preview()
            self.query_one("#control-error", Static).update("Not sent: see above.")
            return
        self.dismiss(command)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def request_control(app: Any, action: WorkerAction, hostname: str | None) -> None:
    """Open a control's dialog for ``hostname`` through the app's actions."""
    if app.actions is None:
        app.notify(f"{action.value} is not available here.", severity="warning")
        return
    app.actions.request_worker_control(app, action, hostname)  # type: ignore[attr-defined]
