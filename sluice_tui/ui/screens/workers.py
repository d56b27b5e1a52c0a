"""Workers: who is online, how busy, and how long since each last spoke."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Static

from sluice_tui.model.workers import WorkerSnapshot
from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.text import duration, inert
from sluice_tui.ui.widgets.fitting_footer import FittingFooter

if TYPE_CHECKING:
    from sluice_tui.ui.app import SluiceApp

# Whether a worker is alive comes first: at 80 columns only VERSION is cut.
COLUMNS = ("HOSTNAME", "STATUS", "LAST HEARTBEAT", "ACTIVE", "PROCESSED", "LOAD", "VERSION")


def worker_cells(worker: WorkerSnapshot, now: float) -> tuple:
    status = Text("online", "bold green") if worker.online else Text("offline", "bold red")
    load = " ".join(f"{x:.2f}" for x in worker.loadavg) if worker.loadavg else ""
    version = " ".join(inert(part) for part in (worker.sw_ident, worker.sw_ver) if part)
    since = worker.seconds_since_heartbeat(now)
    return (
        inert(worker.hostname),
        status,
        "never" if since is None else f"{duration(since)} ago",
        "" if worker.active is None else str(worker.active),
        "" if worker.processed is None else f"{worker.processed:,}",
        load,
        version,
    )


class WorkersScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="workers.close"),
    ]

    app: SluiceApp

    def compose(self) -> ComposeResult:
        yield Static("Workers", id="workers-title")
        table: DataTable = DataTable(id="workers", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        yield Static(id="workers-empty")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.refresh_from_store(changed=True)
        self.query_one(DataTable).focus()

    def refresh_from_store(self, changed: bool) -> None:
        now = self.app.clock()
        workers = self.app.store.workers(now)
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        rows = [worker_cells(worker, now) for worker in workers]
        with self.app.batch_update():
            table.clear()
            for worker, cells in zip(workers, rows, strict=True):
                table.add_row(*cells, key=worker.hostname)
            if rows:
                table.move_cursor(row=min(cursor, len(rows) - 1))
        empty = self.query_one("#workers-empty", Static)
        empty.display = not workers
        empty.update(
            "No worker has been heard from yet. Workers send heartbeats every few seconds "
            "once they are connected to this broker."
        )

    def action_close(self) -> None:
        self.app.pop_screen()
