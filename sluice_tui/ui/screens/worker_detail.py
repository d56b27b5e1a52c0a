"""One worker: its figures, its throughput, and the jobs it holds.

The jobs are those the store has on the worker (running, reserved, waiting
for an ETA) and, where the store lacks them, what the worker said when asked
(inspect ``active``/``reserved``/``scheduled``).  Enter opens a job's detail.
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Sparkline, Static

from sluice_tui.actions import WorkerAction
from sluice_tui.model.job import JobRow
from sluice_tui.model.states import JobState
from sluice_tui.model.worker_info import HeldJob, WorkerBoard, WorkerFigures
from sluice_tui.model.workers import WorkerSnapshot
from sluice_tui.ui.messages import Host, OpenJob
from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.screens.worker_control import CONTROL_BINDINGS, CONTROL_KEYS, request_control
from sluice_tui.ui.text import clock_time, duration, inert, short_id, state_style
from sluice_tui.ui.widgets.fitting_footer import FittingFooter

# What each state of a job on a worker means there, in Celery's words.
KIND_OF = {JobState.ACTIVE: "active", JobState.QUEUED: "reserved", JobState.SCHEDULED: "scheduled"}
KIND_ORDER = {"active": 0, "reserved": 1, "scheduled": 2}
JOB_COLUMNS = ("KIND", "ID", "NAME", "STATE", "SINCE", "ARGS")
SCAN_EVERY = 1.0  # seconds between looks through the store for this worker's jobs
SHOWN_TASKS = 12  # registered task names listed before "and N more"


def figures_table(
    worker: WorkerSnapshot | None, figures: WorkerFigures | None, now: float
) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()

    def row(label: str, value: str) -> None:
        grid.add_row(label, Text(value))

    if worker is not None:
        since = worker.seconds_since_heartbeat(now)
        status = "online" if worker.online else "offline"
        if worker.finishing:
            jobs = "job" if worker.finishing == 1 else "jobs"
            status = f"shutting down (warm): {worker.finishing} {jobs} finishing first"
        heard = "never heard" if since is None else f"last heartbeat {duration(since)} ago"
        row("status", f"{status}, {heard}")
        active = "?" if worker.active is None else str(worker.active)
        processed = "?" if worker.processed is None else f"{worker.processed:,}"
        row("jobs", f"{active} running, {processed} processed since it started")
        version = " ".join(inert(p) for p in (worker.sw_ident, worker.sw_ver, worker.sw_sys) if p)
        if version:
            row("version", version)
    if figures is None:
        row("figures", "not asked yet (i asks)")
        return grid
    size = "?" if figures.pool_size is None else str(figures.pool_size)
    limit = "?" if figures.concurrency is None else str(figures.concurrency)
    row("pool", f"{inert(figures.pool) or '?'}: {size} processes now, concurrency {limit}")
    if figures.autoscale:
        row("autoscale", f"min {figures.autoscale[1]}, max {figures.autoscale[0]}")
    if figures.prefetch is not None:
        row("prefetch", str(figures.prefetch))
    queues = ", ".join(inert(q) for q in figures.queues) if figures.queues is not None else "?"
    row("queues", queues or "none")
    names = figures.registered or ()
    listed = ", ".join(inert(n) for n in names[:SHOWN_TASKS])
    more = f" and {len(names) - SHOWN_TASKS} more" if len(names) > SHOWN_TASKS else ""
    row("tasks", f"{len(names)}: {listed}{more}" if figures.registered is not None else "?")
    for name, limits in sorted(figures.limits.items()):
        parts = [
            f"{label} {value}"
            for label, value in (
                ("rate", limits.rate_limit),
                ("soft", limits.soft_time_limit),
                ("hard", limits.time_limit),
            )
            if value
        ]
        row("limits", f"{inert(name)}: {', '.join(inert(p) for p in parts)}")
    row("asked", clock_time(figures.asked_at))
    return grid


def job_cells(kind: str, row: JobRow | None, held: HeldJob | None, now: float) -> tuple:
    """One held job's cells, from the store's row or else the worker's own word."""
    if row is not None:
        state = Text(row.state.value, state_style(row.state))
        if row.state is JobState.SCHEDULED and row.eta is not None:
            since = f"due in {duration(max(0.0, row.eta - now))}"
        elif row.started is not None:
            since = duration(max(0.0, now - row.started))
        else:
            since = ""
        return (kind, short_id(row.id), Text(inert(row.name)), state, since, Text(inert(row.args)))
    assert held is not None
    if held.eta:
        since = f"eta {inert(held.eta)}"
    elif held.started is not None:
        since = duration(max(0.0, now - held.started))
    else:
        since = ""
    said = Text("worker says", "italic grey70")
    return (kind, short_id(held.id), Text(inert(held.name)), said, since, Text(inert(held.args)))


def board_line(board: WorkerBoard, read_only: bool) -> Text:
    """Where the figures come from and how old they are, for a screen's title line."""
    status = board.status
    if status.asking:
        said = "asking the workers..."
    elif status.asked_at is None:
        said = status.text
    else:
        said = f"asked {clock_time(status.asked_at)}: {status.text}"
    hint = "" if read_only else " \u00b7 i asks again"
    return Text(f"{inert(said)}{hint}", "grey70")


class WorkerDetailScreen(LiveScreen):
    DEFAULT_CSS = """
    WorkerDetailScreen #worker-title { height: 1; }
    WorkerDetailScreen #worker-keys { height: 1; color: $text-muted; padding: 0 1; }
    WorkerDetailScreen #worker-figures { height: auto; max-height: 50%; padding: 0 1; }
    WorkerDetailScreen #worker-trend { height: 2; }
    WorkerDetailScreen #worker-rate { width: 16; padding: 0 1; }
    WorkerDetailScreen #worker-spark { width: 1fr; }
    WorkerDetailScreen #worker-jobs { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="worker.close"),
        *CONTROL_BINDINGS,
    ]

    app: Host  # type: ignore[assignment]  # what this screen reads; it asks by Messages

    def __init__(self, hostname: str) -> None:
        super().__init__()
        self.hostname = hostname
        self._scanned_at = float("-inf")
        self._store_jobs: list[tuple[str, JobRow]] = []
        self._shown_key: object = None

    def compose(self) -> ComposeResult:
        yield Static(id="worker-title")
        if not self.app.read_only:  # --read-only: no control would be sent
            yield Static(CONTROL_KEYS, id="worker-keys", markup=False)
        yield Static(id="worker-figures")
        with Horizontal(id="worker-trend"):
            yield Static(id="worker-rate")
            yield Sparkline([], id="worker-spark")
        table: DataTable = DataTable(id="worker-jobs", cursor_type="row", zebra_stripes=True)
        table.add_columns(*JOB_COLUMNS)
        yield table
        yield FittingFooter()

    def on_mount(self) -> None:
        self.refresh_from_store(changed=True)
        self.query_one("#worker-jobs", DataTable).focus()
        self._ask(quietly=True)

    def _worker(self, now: float) -> WorkerSnapshot | None:
        return next((w for w in self.app.store.workers(now) if w.hostname == self.hostname), None)

    def _scan_store(self, now: float) -> None:
        """This worker's jobs in the store: a pass over every job, so at most once a second."""
        if now - self._scanned_at < SCAN_EVERY and self._scanned_at <= now:
            return
        self._scanned_at = now
        store = self.app.store
        rows = store.rows(store.ids_in(KIND_OF))
        self._store_jobs = [
            (KIND_OF[row.state], row)
            for row in rows.values()
            if row is not None and row.worker == self.hostname
        ]

    def held_rows(self, now: float) -> list[tuple[str, str, JobRow | None, HeldJob | None]]:
        """(kind, id, store row, worker's word) for every job the worker holds."""
        self._scan_store(now)
        rows: dict[str, tuple[str, str, JobRow | None, HeldJob | None]] = {
            row.id: (kind, row.id, row, None) for kind, row in self._store_jobs
        }
        held = self.app.store.worker_info.held(self.hostname)
        for job in held.jobs if held else ():
            if job.id not in rows:  # the store lacks it (events off, or missed)
                rows[job.id] = (job.kind, job.id, None, job)
        return sorted(rows.values(), key=lambda r: (KIND_ORDER.get(r[0], 9), r[1]))

    def refresh_from_store(self, changed: bool) -> None:
        now = self.app.clock()
        board = self.app.store.worker_info
        worker = self._worker(now)
        figures = board.figures(self.hostname)
        title = Text.assemble(
            ("Worker ", "bold"),
            (inert(self.hostname), "bold"),
            "  ",
            board_line(board, self.app.read_only),
        )
        self.query_one("#worker-title", Static).update(title)
        self.query_one("#worker-figures", Static).update(figures_table(worker, figures, now))
        rates = worker.rates if worker else ()
        self.query_one("#worker-trend").display = len(rates) > 1
        if len(rates) > 1:
            self.query_one("#worker-rate", Static).update(f"{rates[-1]:.1f} tasks/s")
            self.query_one("#worker-spark", Sparkline).data = list(rates)
        jobs = self.held_rows(now)
        table = self.query_one("#worker-jobs", DataTable)
        cursor = table.cursor_row
        table.clear()
        for kind, job_id, row, held in jobs:
            table.add_row(*job_cells(kind, row, held, now), key=job_id)
        if jobs:
            table.move_cursor(row=min(cursor, len(jobs) - 1))

    @on(DataTable.RowSelected, "#worker-jobs")
    def _open_job(self, event: DataTable.RowSelected) -> None:
        job_id = event.row_key.value
        if job_id:
            self.post_message(OpenJob(job_id))

    def _ask(self, *, quietly: bool = False) -> None:
        actions = self.app.actions
        if actions is None:
            if not quietly:
                self.app.notify("Asking workers is not available here.", severity="warning")
            return
        actions.ask_workers(self.app, self.hostname, quietly=quietly)  # type: ignore[attr-defined]

    def action_ask(self) -> None:
        self._ask()

    def action_control(self, action: str) -> None:
        request_control(self.app, WorkerAction(action), self.hostname)

    def action_close(self) -> None:
        self.app.pop_screen()
