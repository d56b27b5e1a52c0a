"""Every key, from the bindings themselves, so the list cannot drift from them."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from sluice_tui.model.states import ACTION_RULES, ALL_STATES, Action

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
            yield Static("sluice-tui keys   (escape or ? closes)", id="help-title")
            yield Static(id="help-keys")
            yield Static(rules_text(), id="help-rules")
            yield Static(
                "ctrl+p opens the command palette with the same actions.", id="help-palette"
            )

    def on_resize(self, event: events.Resize) -> None:
        self.query_one("#help-keys", Static).update(self.keys_layout(event.size.width))

    def keys_layout(self, width: int) -> RenderableType:
        """Sections side by side where there is room, else one under another."""
        tables = [keys_table(title, bindings) for title, bindings in self.sections]
        if width < SIDE_BY_SIDE:
            return Group(*tables)
        first, *others = tables
        grid = Table.grid(padding=(0, 4))
        grid.add_row(first, Group(*others))
        return grid
