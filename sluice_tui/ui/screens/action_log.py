"""Every retry and revoke sent from this session, with its outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.text import full_time, inert

if TYPE_CHECKING:
    from sluice_tui.ui.app import SluiceApp


class ActionLogScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="log.close"),
    ]

    app: SluiceApp

    def compose(self) -> ComposeResult:
        yield Static("Action log", id="log-title")
        with VerticalScroll():
            yield Static(id="log-body")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_from_store(changed=True)

    def refresh_from_store(self, changed: bool) -> None:
        records = self.app.action_log()
        if not records:
            self.query_one("#log-body", Static).update(
                Text("No action has been sent in this session.", "grey50")
            )
            return
        table = Table(box=None, padding=(0, 1), header_style="bold")
        for label in ("time", "action", "job", "result", "outcome"):
            table.add_column(label, no_wrap=label != "outcome")
        for record in reversed(records):
            table.add_row(
                full_time(record.time),
                record.action.value,
                record.job_id,
                Text("ok", "green") if record.ok else Text("failed", "red"),
                inert(record.outcome),
            )
        self.query_one("#log-body", Static).update(table)

    def action_close(self) -> None:
        self.app.pop_screen()
