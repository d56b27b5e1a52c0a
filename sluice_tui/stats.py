"""``sluice-tui stats``: listen a while, then print queues, task types and workers.

For scripts and checks.  The same feeds as the TUI fill one store: the event
receiver, the queue poller (every half second here), and one round of asking
the workers (inspect), sent as soon as the broker answers so that it overlaps
the window.  After the window the queues are polled once more, so the depths
printed are the last ones and include the queues the workers consume and the
jobs went to.  Printed as one JSON object (``--json``) or as tables.

``--until-idle`` and ``-v`` work as for ``dump``, and so does the exit status:
1 when the broker could not be reached within the window (2, a bad URL or
app, is raised before anything here runs).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from sluice_tui.celery_adapter.queues import QueuePoller, queues_of
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.dump import IdleWatch, ProgressReporter, unreachable
from sluice_tui.model.queues import QueueBoard, QueueSnapshot
from sluice_tui.model.states import ALL_STATES, JobState
from sluice_tui.model.store import JobStore
from sluice_tui.model.task_types import TaskTypeSnapshot, held_counts, task_types_of
from sluice_tui.model.worker_info import board_of
from sluice_tui.terminal_text import inert

if TYPE_CHECKING:
    from celery import Celery

TICK = 0.1
# Faster than the TUI's poll: a window of a few seconds gets several depths,
# and the last one is fresh when the window ends.
POLL_SECONDS = 0.5
# Asking the workers is three broadcasts, each waiting this long for replies.
INSPECT_TIMEOUT = 1.0


@dataclass(frozen=True)
class WorkerLine:
    """One worker as stats reports it: heartbeats' figures joined with inspect's."""

    hostname: str
    online: bool
    active: int | None
    processed: int | None
    concurrency: int | None
    queues: tuple[str, ...] | None


@dataclass(frozen=True)
class Report:
    queues: list[QueueSnapshot]
    task_types: list[TaskTypeSnapshot]
    workers: list[WorkerLine]
    workers_asked: str  # how asking went, for the tables' caption


def stats_app(
    app: Celery,
    *,
    seconds: float,
    until_idle: float | None = None,
    as_json: bool = False,
    queues: Iterable[str] = (),
    verbose: bool = False,
    store_options: Mapping[str, Any] | None = None,
    enable_events: bool = True,
    read_only: bool = False,
    out: IO[str] | None = None,
) -> int:
    """Listen to ``app``'s cluster for ``seconds``, then print the figures; the exit status.

    In ``--read-only`` the workers are not asked (inspect publishes a
    request): their figures then come from heartbeats alone.
    """
    out = out or sys.stdout
    store = JobStore(**(store_options or {}))
    receiver = ReceiverThread(app, store, enable_events=enable_events, read_only=read_only)
    poller = QueuePoller(app, store, interval=POLL_SECONDS, extra_queues=queues)
    asker = _WorkerAsker(app, store, enabled=not read_only)
    reporter = ProgressReporter(store, verbose=verbose)
    idle = IdleWatch(store, until_idle)
    ever_connected = False
    last_error = None
    receiver.start()
    poller.start()
    asker.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not idle.done():
            time.sleep(min(TICK, max(0.0, deadline - time.monotonic())))
            status = store.status
            if status.state == "connected":
                ever_connected = True
                asker.connected.set()
            last_error = status.error or last_error
            reporter.report()
        if ever_connected:
            asker.join()
            _fresh_depths(poller.board)
    except KeyboardInterrupt:
        pass  # print what was seen, as dump does
    finally:
        asker.cancel()
        receiver.stop()
        poller.stop()
    if not ever_connected:
        return unreachable(receiver.broker, seconds, last_error)
    report = gather(store, asker.outcome)
    if as_json:
        json.dump(report_to_dict(report), out, indent=2)
        out.write("\n")
    else:
        print_tables(report, out)
    return 0


def _fresh_depths(board: QueueBoard) -> None:
    """Wait for a poll that knows every queue: those jobs went to, and the workers' own.

    The poller reads the workers' replies as a round begins, and a round that
    ends after this call may have begun before it: wait for the one after.
    """
    since = time.time()
    deadline = time.monotonic() + 3 * POLL_SECONDS + 2
    for _ in range(2):
        while time.monotonic() < deadline:
            times = [q.updated for q in board.snapshot()]
            if all(t is not None and t > since for t in times):
                since = max(times, default=since)
                break
            time.sleep(TICK)


class _WorkerAsker:
    """Asks the workers once, off the main thread, as soon as the broker answers.

    Waiting for the receiver's connection first means an unreachable broker
    never leaves inspect retrying past the window.
    """

    def __init__(self, app: Celery, store: JobStore, *, enabled: bool) -> None:
        self.app = app
        self.store = store
        self.enabled = enabled
        self.connected = threading.Event()
        self._cancelled = threading.Event()
        self.outcome = "not asked (--read-only)" if not enabled else "not asked"
        self._thread = threading.Thread(target=self._run, name="sluice-stats-ask", daemon=True)

    def start(self) -> None:
        if self.enabled:
            self._thread.start()

    def join(self) -> None:
        if self._thread.is_alive():
            # Three broadcasts of INSPECT_TIMEOUT each, and room to publish them.
            self._thread.join(4 * INSPECT_TIMEOUT + 2)

    def cancel(self) -> None:
        self._cancelled.set()
        self.connected.set()

    def _run(self) -> None:
        from sluice_tui.celery_adapter.inspect import ask_figures

        self.connected.wait()
        if self._cancelled.is_set():
            return
        board = board_of(self.store)
        try:
            figures = ask_figures(self.app, timeout=INSPECT_TIMEOUT)
        except Exception as exc:  # the broker went away: report without figures
            self.outcome = f"asking failed: {type(exc).__name__}: {exc}"
            board.record_failure(self.outcome)
            return
        board.record_figures(figures)
        self.outcome = f"{len(figures)} replied"


def gather(store: JobStore, workers_asked: str = "", now: float | None = None) -> Report:
    """What stats prints, read from ``store`` and its boards."""
    now = time.time() if now is None else now
    _, rows = store.all_rows()
    return Report(
        queues=queues_of(store).snapshot(),
        task_types=task_types_of(store).snapshot(now, held_counts(rows)),
        workers=_workers(store, now),
        workers_asked=workers_asked,
    )


def _workers(store: JobStore, now: float) -> list[WorkerLine]:
    beats = {w.hostname: w for w in store.workers(now)}
    figures = board_of(store).all_figures()
    lines = []
    for host in sorted(beats.keys() | figures.keys()):
        beat, figure = beats.get(host), figures.get(host)
        processed = beat.processed if beat else None
        if processed is None and figure is not None and figure.totals:
            processed = sum(figure.totals.values())
        lines.append(
            WorkerLine(
                hostname=host,
                # A worker that just answered inspect is up, heartbeat or not.
                online=bool(beat and beat.online) or figure is not None,
                active=beat.active if beat else None,
                processed=processed,
                concurrency=figure.concurrency if figure else None,
                queues=figure.queues if figure else None,
            )
        )
    return lines


# -- JSON -------------------------------------------------------------------


def report_to_dict(report: Report) -> dict[str, Any]:
    """The ``--json`` object: ``queues``, ``task_types`` and ``workers``."""
    return {
        "queues": [
            {
                "name": q.name,
                "messages": q.messages,
                "consumers": q.consumers,
                "missing": q.missing,
            }
            for q in report.queues
        ],
        "task_types": [
            {
                "name": t.name,
                "counts": {state.value: t.counts.get(state, 0) for state in ALL_STATES},
                "failure_rate": t.failure_rate,
                "retries": t.retries,
                "runtime": {"p50": t.p50, "p95": t.p95, "max": t.max},
                "per_minute": t.per_minute,
            }
            for t in report.task_types
        ],
        "workers": [
            {
                "hostname": w.hostname,
                "online": w.online,
                "active": w.active,
                "processed": w.processed,
                "concurrency": w.concurrency,
                "queues": list(w.queues) if w.queues is not None else None,
            }
            for w in report.workers
        ],
    }


# -- tables -----------------------------------------------------------------

# Every state, headed short so that task names keep their room at 80 columns.
_STATE_HEADERS = {
    JobState.UNKNOWN: "unknown",
    JobState.QUEUED: "queued",
    JobState.SCHEDULED: "sched",
    JobState.ACTIVE: "active",
    JobState.COMPLETED: "done",
    JobState.FAILED: "failed",
    JobState.RETRYING: "retry",
    JobState.CANCELLED: "cancel",
}
NAME_ROOM = 24  # a name column at least this wide (if names need it) before names fold
NOT_SAID = "-"


def print_tables(report: Report, out: IO[str], width: int | None = None) -> None:
    """The report as Rich tables; every text from the cluster shown inert.

    ``width`` None: the terminal's (or ``COLUMNS``, or 80); long names fold.
    An empty table is one line saying so.
    """
    from rich.console import Console

    console = Console(file=out, width=width, highlight=False, emoji=False, markup=False)
    for table, empty in (
        (_queue_table(report.queues), "Queues: none known"),
        (_held_table(report.task_types), "Task types: no job seen"),
        (_lifetime_table(report.task_types), None),
        (_worker_table(report.workers), "Workers: none seen or replied"),
    ):
        if table.row_count:
            console.print(table)
        elif empty:
            console.print(empty)
    console.print(f"workers asked: {inert(report.workers_asked)}")


def _table(title: str):
    from rich import box
    from rich.table import Table

    # No lines between columns and one space apart: room for names and figures.
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=0,
        pad_edge=False,
    )


def _name_column(table, header: str, names: Iterable[str]) -> None:
    """A column for names: as wide as the longest up to NAME_ROOM, folded past the room left."""
    longest = max((len(inert(name)) for name in names), default=len(header))
    table.add_column(header, overflow="fold", min_width=min(NAME_ROOM, longest), ratio=1)


def _text(value: object):
    """Cluster text as a Rich Text: never read as markup, control characters made visible."""
    from rich.text import Text

    return Text(inert(value))


def _number(value: int | float | None) -> str:
    if value is None:
        return NOT_SAID
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _seconds(value: float | None) -> str:
    if value is None:
        return NOT_SAID
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"


def _queue_table(queues: list[QueueSnapshot]):
    table = _table("Queues")
    _name_column(table, "queue", (q.name for q in queues))
    table.add_column("messages", justify="right")
    table.add_column("consumers", justify="right")
    table.add_column("note")
    for q in queues:
        if q.missing:
            note = "missing (not created)"
        elif q.error:
            note = f"not read: {q.error}"
        elif q.stuck:
            note = "backlog, no consumer"
        else:
            note = ""
        table.add_row(_text(q.name), _number(q.messages), _number(q.consumers), _text(note))
    return table


def _held_table(types: list[TaskTypeSnapshot]):
    table = _table("Task types: jobs held now, by state")
    _name_column(table, "task", (t.name for t in types))
    for header in _STATE_HEADERS.values():
        table.add_column(header, justify="right")
    for t in types:
        table.add_row(_text(t.name), *(str(t.counts.get(state, 0)) for state in _STATE_HEADERS))
    return table


def _lifetime_table(types: list[TaskTypeSnapshot]):
    table = _table("Task types: since listening began (runtimes of finished jobs)")
    _name_column(table, "task", (t.name for t in types))
    for header in ("done", "failed", "fail %", "retries", "p50", "p95", "max", "/min"):
        table.add_column(header, justify="right")
    for t in types:
        rate = None if t.failure_rate is None else t.failure_rate * 100
        table.add_row(
            _text(t.name),
            str(t.completed),
            str(t.failed),
            _number(rate),
            str(t.retries),
            _seconds(t.p50),
            _seconds(t.p95),
            _seconds(t.max),
            _number(t.per_minute),
        )
    return table


def _worker_table(workers: list[WorkerLine]):
    table = _table("Workers")
    _name_column(table, "worker", (w.hostname for w in workers))
    table.add_column("online")
    table.add_column("active", justify="right")
    table.add_column("processed", justify="right")
    table.add_column("concurrency", justify="right")
    table.add_column("queues", overflow="fold")
    for w in workers:
        table.add_row(
            _text(w.hostname),
            "yes" if w.online else "no",
            _number(w.active),
            _number(w.processed),
            _number(w.concurrency),
            _text(NOT_SAID if w.queues is None else ", ".join(w.queues)),
        )
    return table
