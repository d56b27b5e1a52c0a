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
from sluice_tui.model.states import FINISHED_STATES, JobState
from sluice_tui.model.worker_info import HeldJob, HeldJobs, WorkerBoard, WorkerFigures
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
STALE = "grey62"  # what a worker said that is no longer current
FRESH_HELD = 10.0  # seconds an answer about held jobs reads as "worker says"
RATE_WINDOW = 12  # heartbeat intervals a rate is averaged over (about 24 s at 2 s)


def steady_rate(rates: tuple[float, ...]) -> float | None:
    """Tasks per second over the last RATE_WINDOW heartbeat intervals: their mean.

    One interval between two heartbeats holds too few tasks to read (0.0, 0.5,
    1.5, 0.0 at a steady 1/s); the workers list's sparkline draws this window.
    """
    window = rates[-RATE_WINDOW:]
    return sum(window) / len(window) if window else None


def figures_table(
    worker: WorkerSnapshot | None,
    figures: WorkerFigures | None,
    now: float,
    held: HeldJobs | None = None,
) -> Table:
    """The worker's figures; what it said while up is marked as last known once it is not."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()

    def row(label: str, value: str, style: str = "") -> None:
        grid.add_row(label, Text(value, style))

    online = worker is not None and worker.online
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
        jobs_line = f"{active} running, {processed} processed since it started"
        if not online:
            # The last heartbeat's count: not what runs now.
            at = clock_time(worker.last_heartbeat)
            jobs_line = f"last known at {at}, worker offline: {jobs_line}"
            row("jobs", jobs_line, STALE)
        else:
            row("jobs", jobs_line)
        version = " ".join(inert(p) for p in (worker.sw_ident, worker.sw_ver, worker.sw_sys) if p)
        if version:
            row("version", version)
    if figures is None:
        row("figures", "not asked yet (i asks)")
        return grid
    stale = figures_staleness(online, figures, held)
    style = STALE if stale else ""
    if stale:
        row("figures", f"last known at {clock_time(figures.asked_at)}, {stale}", STALE)
    size = "?" if figures.pool_size is None else str(figures.pool_size)
    limit = "?" if figures.concurrency is None else str(figures.concurrency)
    processes = f"{size} processes" + ("" if stale else " now")
    row("pool", f"{inert(figures.pool) or '?'}: {processes}, concurrency {limit}", style)
    if figures.autoscale:
        row("autoscale", f"min {figures.autoscale[1]}, max {figures.autoscale[0]}", style)
    if figures.prefetch is not None:
        row("prefetch", str(figures.prefetch), style)
    queues = ", ".join(inert(q) for q in figures.queues) if figures.queues is not None else "?"
    row("queues", queues or "none", style)
    names = figures.registered or ()
    listed = ", ".join(inert(n) for n in names[:SHOWN_TASKS])
    more = f" and {len(names) - SHOWN_TASKS} more" if len(names) > SHOWN_TASKS else ""
    tasks = f"{len(names)}: {listed}{more}" if figures.registered is not None else "?"
    row("tasks", tasks, style)
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
        row("limits", f"{inert(name)}: {', '.join(inert(p) for p in parts)}", style)
    age = now - figures.asked_at
    ago = "just now" if age < 1 else f"{duration(age)} ago"
    row("asked", f"{clock_time(figures.asked_at)}, {ago}")
    return grid


def figures_staleness(online: bool, figures: WorkerFigures, held: HeldJobs | None) -> str:
    """Why the worker's figures are not current (empty when they are)."""
    if not online:
        return "worker offline"
    if held is not None and not held.replied and held.asked_at >= figures.asked_at:
        # Asked again (this detail asks for figures and jobs together), no answer.
        return f"no answer when asked at {clock_time(held.asked_at)}"
    return ""


def job_cells(
    kind: str, row: JobRow | None, held: HeldJob | None, now: float, said_at: float | None = None
) -> tuple:
    """One held job's cells, from the store's row or else the worker's own word.

    ``said_at`` is when the worker said so: an answer older than a few seconds
    says when it was given, not that it is so now.
    """
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
    if said_at is None or now - said_at < FRESH_HELD:
        said = Text("worker says", "italic grey70")
    else:
        said = Text(f"worker said {clock_time(said_at)}", "italic grey70")
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
        self._finished: set[str] = set()
        self._finished_in: HeldJobs | None = None
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
        self._finished_in = None  # look again at what the worker said, too

    def _finished_since(self, held: HeldJobs) -> set[str]:
        """Jobs the worker said it held that the events have seen finish since.

        Looked up once per answer, and again at each scan.
        """
        if self._finished_in is not held:
            said = self.app.store.rows([job.id for job in held.jobs])
            self._finished = {
                job_id for job_id, row in said.items() if row and row.state in FINISHED_STATES
            }
            self._finished_in = held
        return self._finished

    def held_rows(self, now: float) -> list[tuple[str, str, JobRow | None, HeldJob | None]]:
        """(kind, id, store row, worker's word) for every job the worker holds.

        The worker's word counts only while it is online and answered the last
        ask: an offline worker holds nothing, whatever it said before.
        """
        self._scan_store(now)
        rows: dict[str, tuple[str, str, JobRow | None, HeldJob | None]] = {
            row.id: (kind, row.id, row, None) for kind, row in self._store_jobs
        }
        held = self.app.store.worker_info.held(self.hostname)
        worker = self._worker(now)
        if held is not None and held.replied and worker is not None and worker.online:
            finished = self._finished_since(held)
            for job in held.jobs:
                # Only what the store lacks (events off, or missed) or has not
                # seen finish.
                if job.id not in rows and job.id not in finished:
                    rows[job.id] = (job.kind, job.id, None, job)
        return sorted(rows.values(), key=lambda r: (KIND_ORDER.get(r[0], 9), r[1]))

    def refresh_from_store(self, changed: bool) -> None:
        now = self.app.clock()
        board = self.app.store.worker_info
        worker = self._worker(now)
        figures = board.figures(self.hostname)
        held = board.held(self.hostname)
        title = Text.assemble(
            ("Worker ", "bold"),
            (inert(self.hostname), "bold"),
            "  ",
            board_line(board, self.app.read_only),
        )
        self.query_one("#worker-title", Static).update(title)
        self.query_one("#worker-figures", Static).update(figures_table(worker, figures, now, held))
        rates = worker.rates if worker else ()
        online = worker is not None and worker.online
        self.query_one("#worker-trend").display = len(rates) > 1
        if len(rates) > 1:
            rate = steady_rate(rates) if online else None
            # Offline, the trend is history and no rate is current.
            label = f"{rate:.1f} tasks/s" if rate is not None else "offline"
            self.query_one("#worker-rate", Static).update(label)
            self.query_one("#worker-spark", Sparkline).data = list(rates)
        jobs = self.held_rows(now)
        said_at = held.asked_at if held is not None else None
        table = self.query_one("#worker-jobs", DataTable)
        cursor = table.cursor_row
        table.clear()
        for kind, job_id, row, held_job in jobs:
            if not online and kind != "active":
                # A stopped worker holds no prefetched or ETA job any more
                # (a warm shutdown hands them back); its running ones finish.
                kind = f"was {kind}"
            table.add_row(*job_cells(kind, row, held_job, now, said_at), key=job_id)
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
