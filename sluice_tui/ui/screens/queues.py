"""Broker queues: depth, consumers, rate of change and ten minutes of depth.

The queue poller (sluice_tui.celery_adapter.queues) fills the store's queue
board off the UI thread; this screen only reads it.  Enter shows one queue's
detail: where its name came from, and on Redis the split by priority.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.renderables.sparkline import Sparkline as SparklineRenderable
from textual.widgets import DataTable, Sparkline, Static

from sluice_tui.model.queues import QueueSnapshot, queues_of
from sluice_tui.ui.messages import Host
from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.screens.task_types import choose_columns, column_widths
from sluice_tui.ui.text import clock_time, inert, title_line
from sluice_tui.ui.widgets.fitting_footer import FittingFooter

SPARK_WIDTH = 16


class QueueColumn(NamedTuple):
    label: str
    rank: int


COLUMNS = (
    QueueColumn("QUEUE", 0),
    QueueColumn("MESSAGES", 1),
    QueueColumn("CONSUMERS", 4),
    QueueColumn("RATE", 3),
    QueueColumn("DEPTH 10M", 5),
    QueueColumn("NOTE", 2),
)


# Why a queue is polled (QueueBoard.watch's sources), in words.
_WHY = {
    "app": "the app declares it",
    "worker": "a worker consumes it",
    "event": "jobs were sent to it",
    "option": "--queue",
}


def rate_text(rate: float | None, messages: int | None = None) -> Text:
    """The depth's change over the last half minute, in words."""
    if rate is None:
        return Text("")
    if abs(rate) < 0.05:
        return Text("0/s steady", "grey62")
    if rate < 0 and messages == 0:  # "-37.9/s draining" read as still going
        return Text("drained", "green")
    if rate > 0:
        return Text(f"+{rate:.1f}/s filling", "bold yellow")
    return Text(f"{rate:.1f}/s draining", "green")


def note_text(queue: QueueSnapshot) -> Text:
    if queue.missing:
        return Text("missing (not created)", "bold red")
    if queue.error:
        return Text(f"unreadable: {inert(queue.error)}", "red")
    if queue.stuck:
        return Text("backlog, no consumer", "bold red")
    if queue.updated is None:
        return Text("not polled yet", "grey50")
    return Text("")


def queue_cells(queue: QueueSnapshot) -> tuple:
    history = queue.history[-SPARK_WIDTH * 4 :]
    return (
        Text(inert(queue.name)),
        "" if queue.messages is None else f"{queue.messages:,}",
        "?" if queue.consumers is None else str(queue.consumers),
        rate_text(queue.rate, queue.messages),
        SparklineRenderable(history, width=SPARK_WIDTH) if len(history) > 1 else "",
        note_text(queue),
    )


class QueuesScreen(LiveScreen):
    DEFAULT_CSS = """
    QueuesScreen #queues-title { height: 1; padding: 0 1; }
    QueuesScreen #queues-empty { padding: 1 2; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="queues.back"),
        Binding("enter", "open", "Detail", id="queues.open"),
    ]

    app: Host  # type: ignore[assignment]  # what this screen reads; it asks by Messages

    def __init__(self) -> None:
        super().__init__()
        self._columns: list[int] = []
        self._shown = -1

    def compose(self) -> ComposeResult:
        yield Static(id="queues-title")
        yield DataTable(id="queues", cursor_type="row", zebra_stripes=True)
        yield Static(id="queues-empty")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.refresh_from_store(changed=True)
        self.query_one(DataTable).focus()

    def on_resize(self) -> None:
        if self.live:
            self._shown = -1
            self.refresh_from_store(changed=True)

    def selected_name(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def refresh_from_store(self, changed: bool) -> None:
        board = queues_of(self.app.store)
        if board.version == self._shown:
            return
        self._shown = board.version
        queues = board.snapshot()
        rows = [queue_cells(q) for q in queues]
        labels = [c.label for c in COLUMNS]
        columns = choose_columns(
            (self.size.width or 80) - 2, column_widths(labels, rows), [c.rank for c in COLUMNS]
        )
        table = self.query_one(DataTable)
        selected = self.selected_name()
        if columns != self._columns:
            table.clear(columns=True)
            for i in columns:
                # A sparkline has no measure of its own: give its column one.
                width = SPARK_WIDTH if labels[i] == "DEPTH 10M" else None
                table.add_column(labels[i], key=labels[i], width=width)
            self._columns = columns
        else:
            table.clear()
        for queue, cells in zip(queues, rows, strict=True):
            table.add_row(*(cells[i] for i in columns), key=queue.name)
        names = [q.name for q in queues]
        if names:
            table.move_cursor(row=names.index(selected) if selected in names else 0)
        stuck = sum(q.stuck for q in queues)
        title: list[Any] = [("Queues", "bold"), f"  {len(queues)} watched"]
        if stuck:
            title.append((f"  {stuck} with a backlog and no consumer", "bold red"))
        line = title_line(
            Text.assemble(*title),
            "  depths polled every few seconds, read-only safe",
            self.size.width - 2,  # the title's padding
        )
        self.query_one("#queues-title", Static).update(line)
        empty = self.query_one("#queues-empty", Static)
        empty.display = not queues
        empty.update("No queue is known yet: the app's queues show once the broker answers.")

    @on(DataTable.RowSelected)
    def action_open(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.app.push_screen(QueueDetailScreen(name))  # type: ignore[attr-defined]

    def action_back(self) -> None:
        self.dismiss()


class QueueDetailScreen(LiveScreen):
    DEFAULT_CSS = """
    QueueDetailScreen #queue-spark { height: 4; margin: 0 1; }
    QueueDetailScreen #queue-figures { padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="queue.back"),
    ]

    app: Host  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.queue_name = name
        self._shown = -1

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="queue-figures")
            yield Sparkline([], id="queue-spark")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.refresh_from_store(changed=True)

    def refresh_from_store(self, changed: bool) -> None:
        board = queues_of(self.app.store)
        if board.version == self._shown:
            return
        self._shown = board.version
        queue = board.get(self.queue_name)
        figures = self.query_one("#queue-figures", Static)
        if queue is None:
            figures.update(Text(f"Queue {inert(self.queue_name)} is not watched.", "grey50"))
            return
        table = Table.grid(padding=(0, 2))
        table.add_column(style="grey62")
        table.add_column()
        table.add_row("queue", Text(inert(queue.name), "bold"))
        table.add_row("messages", "" if queue.messages is None else f"{queue.messages:,}")
        table.add_row(
            "consumers",
            "not said by this broker" if queue.consumers is None else str(queue.consumers),
        )
        table.add_row("rate", rate_text(queue.rate, queue.messages))
        table.add_row("state", note_text(queue) or "ok")
        table.add_row("watched as", "; ".join(_WHY.get(w, w) for w in queue.sources) or "")
        table.add_row("polled", clock_time(queue.updated))
        if queue.priorities:
            split = ", ".join(
                f"priority {step}: {count:,}" for step, count in sorted(queue.priorities.items())
            )
            table.add_row("by priority", split)
        table.add_row("depth, 10 minutes", "")
        figures.update(table)
        self.query_one("#queue-spark", Sparkline).data = list(queue.history)

    def action_back(self) -> None:
        self.dismiss()
