"""Every key, from the bindings themselves, so the list cannot drift from them."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from sluice_tui.model.states import ACTION_RULES, ALL_STATES, Action, JobState
from sluice_tui.ui.text import state_style

SIDE_BY_SIDE = 100  # screen width from which the sections sit side by side


def keys_table(title: str, bindings: list[tuple[str, str]]) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=None,
        show_header=False,
        padding=(0, 2),
    )
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(ratio=1)
    for key, description in bindings:
        table.add_row(key, description)
    return table


# What each state means and where it comes from in Celery (README, "The state
# model"; celery_adapter/events.py and control.py hold the mapping itself).
STATE_LEGEND: dict[JobState, tuple[str, str]] = {
    JobState.UNKNOWN: ("never seen: it may or may not exist", "PENDING"),
    JobState.QUEUED: ("sent or received, not yet started", "RECEIVED"),
    JobState.SCHEDULED: ("waiting for its ETA or countdown", "RECEIVED + eta"),
    JobState.ACTIVE: ("running on a worker", "STARTED"),
    JobState.COMPLETED: ("finished successfully", "SUCCESS"),
    JobState.FAILED: ("raised an exception, or was rejected", "FAILURE, REJECTED"),
    JobState.RETRYING: ("failed or cut off; it will run again", "RETRY"),
    JobState.CANCELLED: ("revoked: workers skip or stop it", "REVOKED"),
}
PENDING_NOTE = (
    "Celery says PENDING for any id it never heard of, typos included; "
    "sluice-tui calls that unknown, never queued."
)


def states_table(dark: bool = True) -> RenderableType:
    """The eight states: what each means and Celery's name for it."""
    table = Table(
        title="States",
        title_justify="left",
        title_style="bold",
        box=None,
        padding=(0, 2),
        header_style="dim",
    )
    table.add_column("state", no_wrap=True)
    table.add_column("meaning", ratio=1)
    table.add_column("Celery", no_wrap=True)
    for state in ALL_STATES:
        meaning, celery = STATE_LEGEND[state]
        table.add_row(Text(state.value, state_style(state, dark)), meaning, celery)
    return Group(table, Text(PENDING_NOTE, style="dim"))


def rules_text() -> str:
    lines = []
    for action in Action:
        states = ", ".join(s.value for s in ALL_STATES if s in ACTION_RULES[action])
        lines.append(f"{action.value}: allowed when a job is {states}")
    return "\n".join(lines)


class HelpScreen(ModalScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(
                "sluice-tui keys and states   (\u2191 \u2193 scroll; escape or ? closes)",
                id="help-title",
            )
            yield Static(id="help-keys")
            yield Static(rules_text(), id="help-rules")
            yield Static(
                "ctrl+p opens the command palette with the same actions.", id="help-palette"
            )

    def on_mount(self) -> None:
        # The legend's state colours have a dark and a light set: follow the theme.
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._lay_out())

    def on_resize(self, event: events.Resize) -> None:
        self._lay_out(event.size.width)

    def _lay_out(self, width: int | None = None) -> None:
        width = self.size.width if width is None else width
        self.query_one("#help-keys", Static).update(self.keys_layout(width))

    def keys_layout(self, width: int) -> RenderableType:
        """Sections side by side where there is room, else one under another."""
        tables = [keys_table(title, bindings) for title, bindings in self.sections]
        # The legend sits under the first section (the job list, with its 1-8
        # state filters), where a new user reads first.
        first, *others = tables
        left = Group(first, Text(), states_table(self.app.current_theme.dark))
        if width < SIDE_BY_SIDE:
            return Group(left, Text(), *others)
        grid = Table.grid(padding=(0, 4))
        grid.add_row(left, Group(*others))
        return grid
