"""Workers: who is online, how busy, their pools and queues, and the worker controls.

Heartbeats give liveness, activity and throughput; the figures (pool, prefetch,
queues) come from asking the workers (inspect), off the UI thread, when the
screen first opens and on ``i``.  Every control acts on the selected worker
through the actions gate, after its dialog.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.renderables.sparkline import Sparkline
from textual.widgets import DataTable, Static

from sluice_tui.actions import WorkerAction
from sluice_tui.model.worker_info import WorkerFigures
from sluice_tui.model.workers import WorkerSnapshot
from sluice_tui.ui.messages import Host
from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.screens.worker_control import CONTROL_BINDINGS, CONTROL_KEYS, request_control
from sluice_tui.ui.screens.worker_detail import (
    RATE_WINDOW,
    WorkerDetailScreen,
    board_line,
    steady_rate,
)
from sluice_tui.ui.text import duration, inert
from sluice_tui.ui.widgets.fitting_footer import FittingFooter

# Heartbeats shown in a row's sparkline (about 24 s at 2 s): TASKS/S is their mean.
TREND_WIDTH = RATE_WINDOW


class WorkerColumn(NamedTuple):
    label: str
    rank: int  # lower joins first when the screen is narrow


# Left to right as shown; at 80 columns the lowest ranks are what remain.
COLUMNS: tuple[WorkerColumn, ...] = (
    WorkerColumn("HOSTNAME", 0),
    WorkerColumn("STATUS", 1),
    WorkerColumn("HEARTBEAT", 3),
    WorkerColumn("ACTIVE", 2),
    WorkerColumn("TASKS/S", 4),
    WorkerColumn("TREND", 7),
    WorkerColumn("POOL", 5),
    WorkerColumn("PREFETCH", 8),
    WorkerColumn("QUEUES", 6),
    WorkerColumn("PROCESSED", 9),
    WorkerColumn("LOAD", 10),
    WorkerColumn("VERSION", 11),
)
CELL_PADDING = 2  # DataTable pads each cell by one on either side


def cell_width(cell: object) -> int:
    if isinstance(cell, Sparkline):
        return TREND_WIDTH
    return cell_len(cell.plain if isinstance(cell, Text) else str(cell))


def choose_columns(width: int, rows: list[tuple]) -> list[int]:
    """Indexes of the columns with something to show that fit ``width`` cells, in order."""
    chosen: list[int] = []
    used = 0
    for i in sorted(range(len(COLUMNS)), key=lambda i: COLUMNS[i].rank):
        widest = max((cell_width(row[i]) for row in rows), default=0)
        if widest == 0 and i > 1:
            continue  # nothing to show there (figures not asked yet): no room taken
        need = max(len(COLUMNS[i].label), widest) + CELL_PADDING
        if i == 0 or used + need <= width:
            chosen.append(i)
            used += need
    return sorted(chosen)


def pool_text(figures: WorkerFigures | None) -> str:
    if figures is None:
        return ""
    size = "" if figures.pool_size is None else str(figures.pool_size)
    text = f"{inert(figures.pool) or '?'} {size}".strip()
    if figures.autoscale:
        text += f" ({figures.autoscale[1]}-{figures.autoscale[0]})"
    return text


def worker_status(worker: WorkerSnapshot) -> Text:
    if worker.online:
        return Text("online", "bold green")
    if worker.finishing:  # a warm shutdown: its running jobs finish first
        return Text("stopping", "bold yellow")
    return Text("offline", "bold red")


def worker_cells(worker: WorkerSnapshot, figures: WorkerFigures | None, now: float) -> tuple:
    status = worker_status(worker)
    load = " ".join(f"{x:.2f}" for x in worker.loadavg) if worker.loadavg else ""
    version = " ".join(inert(part) for part in (worker.sw_ident, worker.sw_ver) if part)
    since = worker.seconds_since_heartbeat(now)
    rates = worker.rates
    rate = steady_rate(rates)
    active = "" if worker.active is None else str(worker.active)
    if not worker.online:
        # What it said while up is not what it does now: its last heartbeat's
        # running count and rate, and its inspect answers (the detail shows
        # them as last known), are left out.  A warm shutdown's jobs still
        # finishing are the store's own count.
        active = str(worker.finishing) if worker.finishing else ""
        rate = None
        figures = None
    queues = ", ".join(inert(q) for q in figures.queues or ()) if figures else ""
    return (
        Text(inert(worker.hostname)),
        status,
        "never" if since is None else f"{duration(since)} ago",
        active,
        "" if rate is None else f"{rate:.1f}",
        Sparkline(rates[-TREND_WIDTH:], width=TREND_WIDTH) if len(rates) > 1 else "",
        Text(pool_text(figures)),
        "" if figures is None or figures.prefetch is None else str(figures.prefetch),
        Text(queues),
        "" if worker.processed is None else f"{worker.processed:,}",
        load,
        Text(version),
    )


class WorkersScreen(LiveScreen):
    DEFAULT_CSS = """
    WorkersScreen #workers-title { height: 1; }
    WorkersScreen #workers-keys { height: 1; color: $text-muted; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="workers.close"),
        Binding("enter", "open", "Detail", id="workers.open"),
        *CONTROL_BINDINGS,
    ]

    app: Host  # type: ignore[assignment]  # what this screen reads; it asks by Messages

    def __init__(self) -> None:
        super().__init__()
        self._columns: list[int] = []

    def compose(self) -> ComposeResult:
        yield Static(id="workers-title")
        if not self.app.read_only:  # --read-only: no control would be sent
            yield Static(CONTROL_KEYS, id="workers-keys", markup=False)
        yield DataTable(id="workers", cursor_type="row", zebra_stripes=True)
        yield Static(id="workers-empty")
        yield FittingFooter()

    def on_mount(self) -> None:
        board = self.app.store.worker_info
        if board.status.asked_at is None and not board.status.asking:
            self._ask(quietly=True)
        self.refresh_from_store(changed=True)
        self.query_one(DataTable).focus()

    def on_resize(self) -> None:
        if self.live:
            self.refresh_from_store(changed=True)

    def selected_hostname(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return key.value

    def refresh_from_store(self, changed: bool) -> None:
        now = self.app.clock()
        store = self.app.store
        board = store.worker_info
        workers = store.workers(now)
        figures = board.all_figures()
        title = Text.assemble(("Workers", "bold"), "  ", board_line(board, self.app.read_only))
        self.query_one("#workers-title", Static).update(title)
        table = self.query_one(DataTable)
        rows = [worker_cells(w, figures.get(w.hostname), now) for w in workers]
        # The scrollbar may take two columns; leave them, so nothing is cut.
        columns = choose_columns((self.size.width or 80) - 2, rows)
        cursor = table.cursor_row
        with self.app.batch_update():
            if columns != self._columns:
                table.clear(columns=True)
                for i in columns:
                    label = COLUMNS[i].label
                    # A sparkline does not say how wide it is: give it its width.
                    width = TREND_WIDTH if label == "TREND" else None
                    table.add_column(label, key=label, width=width)
                self._columns = columns
            else:
                table.clear()
            for worker, cells in zip(workers, rows, strict=True):
                table.add_row(*(cells[i] for i in columns), key=worker.hostname)
            if rows:
                table.move_cursor(row=min(cursor, len(rows) - 1))
        empty = self.query_one("#workers-empty", Static)
        empty.display = not workers
        empty.update(
            "No worker has been heard from yet. Workers send heartbeats every few seconds "
            "once they are connected to this broker."
        )

    @on(DataTable.RowSelected)
    def action_open(self) -> None:
        hostname = self.selected_hostname()
        if hostname is not None:
            self.app.push_screen(WorkerDetailScreen(hostname))

    def _ask(self, *, quietly: bool = False, hostname: str | None = None) -> None:
        actions = self.app.actions
        if actions is None:
            if not quietly:
                self.app.notify("Asking workers is not available here.", severity="warning")
            return
        actions.ask_workers(self.app, hostname, quietly=quietly)  # type: ignore[attr-defined]

    def action_ask(self) -> None:
        self._ask()

    def action_control(self, action: str) -> None:
        request_control(self.app, WorkerAction(action), self.selected_hostname())

    def action_close(self) -> None:
        self.app.pop_screen()
