"""Every retry, revoke and worker control sent from this session, with its outcome."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from sluice_tui.ui.screens.report import ReportScreen
from sluice_tui.ui.text import full_time, inert


class ActionLogScreen(ReportScreen):
    TITLE = "Action log"

    def report_key(self) -> object:
        log = self.app.action_log()
        return len(log), log[-1] if log else None

    def render_report(self) -> RenderableType:
        records = self.app.action_log()
        if not records:
            return Text("No action has been sent in this session.", "grey50")
        table = Table(box=None, padding=(0, 1), header_style="bold")
        for label in ("time", "action", "target", "result", "outcome"):
            table.add_column(label, no_wrap=label != "outcome")
        for record in reversed(records):
            table.add_row(
                full_time(record.time),
                record.action.value,
                Text(inert(record.target)),
                Text("ok", "green") if record.ok else Text("failed", "red"),
                inert(record.outcome),
            )
        return table
