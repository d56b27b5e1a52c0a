"""Task types: one row per task name, with counts, failure rate, runtimes and throughput.

Counts by state are of the jobs the store holds, so they agree with the job
table; the lifetime totals (since sluice-tui started) are labelled apart.
The screen redraws only when the figures moved (or the minute turned, for the
sparklines), so a busy cluster costs one snapshot of the types per tick.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple

from rich.cells import cell_len
from rich.color import Color
from rich.console import Console
from rich.text import Span, Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.renderables.sparkline import Sparkline
from textual.widgets import Input, Static

from sluice_tui.model.states import JobState
from sluice_tui.model.task_types import MINUTES, RELATIVE_ERROR, TaskTypeSnapshot, task_types_of
from sluice_tui.ui.messages import Host, ShowTaskJobs
from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.text import duration, inert, title_line
from sluice_tui.ui.widgets.fitting_footer import FittingFooter
from sluice_tui.ui.widgets.line_table import LineTable

SPARK_WIDTH = MINUTES
DONE_COLOURS = (Color.parse("#005f00"), Color.parse("#5fff5f"))
FAIL_COLOURS = (Color.parse("#5f0000"), Color.parse("#ff5f5f"))
CELL_PADDING = 2  # the table pads its line by one on either side


class Column(NamedTuple):
    label: str
    rank: int  # lower joins first when the screen is narrow
    key: Callable[[TaskTypeSnapshot], Any] | None  # how the column sorts; None: not sortable
    text: Callable[[TaskTypeSnapshot], str]  # the cell's plain text (inert)
    style: Callable[[TaskTypeSnapshot], str] | None = None  # a Rich style for the cell
    spark: Callable[[TaskTypeSnapshot], tuple[int, ...]] | None = None  # a sparkline cell
    fail: bool = False  # the sparkline's colours: failures, else completions
    grows: bool = False  # the text never gets shorter as the key grows: the widest is the max's


def _count(state: JobState) -> Callable[[TaskTypeSnapshot], int]:
    return lambda t: t.counts[state]


def _number(value: int) -> str:
    return f"{value:,}" if value else ""


def _rate(t: TaskTypeSnapshot) -> str:
    rate = t.failure_rate
    return "" if rate is None else f"{rate * 100:.1f}%"


def _rate_style(t: TaskTypeSnapshot) -> str:
    rate = t.failure_rate
    if rate is None:
        return ""
    return "bold red" if rate >= 0.2 else "red" if rate > 0 else "green"


def _missing_last(value: float | None) -> float:
    return -1.0 if value is None else value


def _no_text(t: TaskTypeSnapshot) -> str:
    return ""  # a sparkline has no text: its width is SPARK_WIDTH when it shows


def _state_column(state: JobState, rank: int) -> Column:
    count = _count(state)
    return Column(state.value.upper(), rank, count, lambda t: _number(count(t)), grows=True)


# Names repeat every tick: make each inert once.
_inert_name = lru_cache(maxsize=8192)(inert)

# Left to right as shown; at 80 columns the lowest ranks are what remain.
COLUMNS: tuple[Column, ...] = (
    Column("TASK", 0, lambda t: t.name, lambda t: _inert_name(t.name)),
    _state_column(JobState.UNKNOWN, 16),
    _state_column(JobState.QUEUED, 5),
    _state_column(JobState.SCHEDULED, 14),
    _state_column(JobState.ACTIVE, 4),
    _state_column(JobState.COMPLETED, 10),
    _state_column(JobState.FAILED, 6),
    _state_column(JobState.RETRYING, 13),
    _state_column(JobState.CANCELLED, 15),
    Column("FAIL%", 1, lambda t: _missing_last(t.failure_rate), _rate, _rate_style, grows=True),
    Column("RETRIES", 11, lambda t: t.retries, lambda t: _number(t.retries), grows=True),
    Column("P50", 8, lambda t: _missing_last(t.p50), lambda t: duration(t.p50)),
    Column("P95", 2, lambda t: _missing_last(t.p95), lambda t: duration(t.p95)),
    Column("MAX", 9, lambda t: _missing_last(t.max), lambda t: duration(t.max)),
    Column("/MIN", 3, lambda t: t.per_minute, lambda t: f"{t.per_minute:.1f}", grows=True),
    Column("DONE 10M", 7, None, _no_text, spark=lambda t: t.completions),
    Column("FAILS 10M", 12, None, _no_text, spark=lambda t: t.failures, fail=True),
    Column("OK TOTAL", 17, lambda t: t.completed, lambda t: _number(t.completed), grows=True),
    Column("FAILED TOTAL", 18, lambda t: t.failed, lambda t: _number(t.failed), grows=True),
)
SORTABLE = tuple(i for i, column in enumerate(COLUMNS) if column.key is not None)
RANKS = [column.rank for column in COLUMNS]


def text_width(texts: list[str]) -> int:
    """The widest of ``texts`` in cells: plain ``len`` unless some are not ASCII."""
    if not texts:
        return 0
    if "".join(texts).isascii():
        return max(map(len, texts))
    return max(map(cell_len, texts))


def text_widths(labels: list[str], texts: list[list[str] | None], sparks: list[bool]) -> list[int]:
    """Each column's width: its widest cell or its label, whichever is wider.

    ``texts`` holds each column's cells (column by column); a column with a
    sparkline in any row is SPARK_WIDTH wide.  Plain strings only: this runs
    over every row on every tick.
    """
    return [
        max(len(label), SPARK_WIDTH if spark else text_width(cells or []))
        for label, cells, spark in zip(labels, texts, sparks, strict=True)
    ]


def cell_width(cell: object) -> int:
    """A cell's width, whatever it is (the queues screen's cells are mixed)."""
    if not isinstance(cell, str | Text):
        return getattr(cell, "width", 0) or 0  # a renderable sized by its own width
    plain = cell.plain if isinstance(cell, Text) else str(cell)
    return len(plain) if plain.isascii() else cell_len(plain)


def column_widths(labels: list[str], rows: list[tuple]) -> list[int]:
    """Each column's width over rows of mixed cells: its widest cell or its label."""
    return [
        max(len(label), max((cell_width(row[i]) for row in rows), default=0))
        for i, label in enumerate(labels)
    ]


def choose_columns(width: int, widths: list[int], ranks: list[int]) -> list[int]:
    """Indexes of the columns that fit ``width`` cells, by rank, shown in order."""
    chosen: list[int] = []
    used = 0
    for i in sorted(range(len(widths)), key=ranks.__getitem__):
        need = widths[i] + CELL_PADDING
        if i == 0 or used + need <= width:
            chosen.append(i)
            used += need
    return sorted(chosen)


def _line(cells: list[str | Text], widths: list[int]) -> Text:
    """One row as a single Text: each cell padded to its column, two spaces apart.

    Built from plain strings and spans in one go, which is cheaper than
    Text.append for each cell.
    """
    parts: list[str] = []
    spans: list[Span] = []
    at = 0
    for n, (cell, width) in enumerate(zip(cells, widths, strict=True)):
        if n:
            parts.append("  ")
            at += 2
        if isinstance(cell, Text):
            plain = cell.plain
            if cell.style:
                spans.append(Span(at, at + len(plain), cell.style))
            spans.extend(Span(at + span.start, at + span.end, span.style) for span in cell.spans)
        else:
            plain = cell
        parts.append(plain)
        at += len(plain)
        pad = width - (len(plain) if plain.isascii() else cell_len(plain))
        if pad > 0:
            parts.append(" " * pad)
            at += pad
    return Text("".join(parts), spans=spans, no_wrap=True, overflow="ellipsis")


@lru_cache(maxsize=4096)
def _spark_segments(data: tuple[int, ...], low: Color, high: Color) -> Text:
    return Text.assemble(*((seg.text, seg.style) for seg in _render_spark(data, low, high)))


_CONSOLE: list[Console] = []


def _render_spark(data: tuple[int, ...], low: Color, high: Color) -> list:
    spark = Sparkline(data, width=SPARK_WIDTH, min_color=low, max_color=high)
    console = _CONSOLE[0]
    return list(console.render(spark, console.options.update_width(SPARK_WIDTH)))


def _spark_text(values: tuple[int, ...], fail: bool, console: Console) -> Text | str:
    """Textual's Sparkline renderable's own bars, as Text (cached: most rows repeat each tick)."""
    if not any(values):
        return ""
    if not _CONSOLE:
        _CONSOLE.append(console)
    low, high = FAIL_COLOURS if fail else DONE_COLOURS
    return _spark_segments(values, low, high)


class TaskTypesScreen(LiveScreen):
    DEFAULT_CSS = """
    TaskTypesScreen #types-title { height: 1; padding: 0 1; }
    TaskTypesScreen #types-empty { padding: 1 2; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="types.back"),
        Binding("enter", "open", "Its jobs", id="types.open"),
        Binding("slash", "search", "Filter", id="types.search"),
        Binding("s", "sort", "Sort", id="types.sort"),
        Binding("S", "reverse", "Reverse sort", id="types.reverse", show=False),
    ]

    app: Host  # type: ignore[assignment]  # what this screen reads; it asks by Messages

    def __init__(self) -> None:
        super().__init__()
        self.sort = COLUMNS.index(next(c for c in COLUMNS if c.label == "/MIN"))
        self.reverse = True  # busiest first
        self.filter = ""
        self._columns: list[int] = []
        self._shown: tuple | None = None  # what the table last drew from
        self._seen = self._total = 0

    def compose(self) -> ComposeResult:
        yield Static(id="types-title")
        yield LineTable(id="types")
        yield Input(placeholder="filter task names", id="types-search")
        yield Static(id="types-empty")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one("#types-search").display = False
        self.refresh_from_store(changed=True)
        self.query_one(LineTable).focus()

    def on_resize(self) -> None:
        if self.live:
            self._shown = None
            self.refresh_from_store(changed=True)

    def selected_name(self) -> str | None:
        return self.query_one(LineTable).selected_key

    # -- drawing --------------------------------------------------------------

    def rows(self, now: float) -> list[TaskTypeSnapshot]:
        """The task types shown: filtered, then sorted by the chosen column."""
        types = task_types_of(self.app.store).snapshot(now, self.app.index.type_counts)
        if self.filter:
            types = [t for t in types if self.filter in t.name.lower()]
        self._seen = len(types)
        key = COLUMNS[self.sort].key
        assert key is not None
        types.sort(key=key, reverse=self.reverse)
        return types

    def refresh_from_store(self, changed: bool) -> None:
        now = self.app.clock()
        types = task_types_of(self.app.store)
        state = (
            types.version,
            self.app.index.version,
            int(now // 60),
            self.sort,
            self.reverse,
            self.filter,
        )
        if state == self._shown:
            return  # nothing moved: no snapshot, no redraw
        self._shown = state
        rows = self.rows(now)
        self._total = self._seen
        # Each column's width, from as little text as will tell it: counts and
        # rates are widest at their largest value; the lines themselves are
        # built only for the rows the table draws.
        texts: list[list[str] | None] = [None] * len(COLUMNS)
        sparks = [False] * len(COLUMNS)
        for i, column in enumerate(COLUMNS):
            if column.spark is not None:
                sparks[i] = any(any(column.spark(t)) for t in rows)
            elif column.grows and column.key is not None:
                texts[i] = [column.text(max(rows, key=column.key))] if rows else []
            else:
                texts[i] = [column.text(t) for t in rows]
        labels = [self._label(i) for i in range(len(COLUMNS))]
        every_width = text_widths(labels, texts, sparks)
        columns = choose_columns((self.size.width or 80) - 2, every_width, RANKS)
        self._columns = columns
        widths = [every_width[i] for i in columns]
        header = _line([labels[i] for i in columns], widths)
        console = self.app.console
        built: dict[int, Text] = {}  # this tick's lines, by row

        def line_of(n: int) -> Text:
            line = built.get(n)
            if line is None:
                t = rows[n]
                cells: list[str | Text] = []
                for i in columns:
                    column = COLUMNS[i]
                    if column.spark is not None:
                        cells.append(_spark_text(column.spark(t), column.fail, console))
                    else:
                        known = texts[i]
                        text = known[n] if known is not None and not column.grows else None
                        if text is None:
                            text = column.text(t)
                        style = column.style(t) if column.style is not None else ""
                        cells.append(Text(text, style) if style else text)
                line = built[n] = _line(cells, widths)
            return line

        self.query_one(LineTable).set_rows(header, [t.name for t in rows], line_of)
        self._show_title(len(rows), self._total)
        empty = self.query_one("#types-empty", Static)
        empty.display = not rows
        empty.update(
            "No task matches the filter."
            if self.filter
            else "No task has been seen yet: task types appear as their jobs' events arrive."
        )

    def _label(self, i: int) -> str:
        if i != self.sort:
            return COLUMNS[i].label
        return COLUMNS[i].label + (" \u25bc" if self.reverse else " \u25b2")

    def _show_title(self, shown: int, total: int) -> None:
        parts: list[Any] = [("Task types", "bold"), f"  {shown} of {total}"]
        if self.filter:
            parts += ["  filter: ", (inert(self.filter), "bold")]
        line = title_line(
            Text.assemble(*parts),
            "  state counts: jobs held; the rest: since start"
            f" (runtimes \u00b1{RELATIVE_ERROR:.0%})",
            self.size.width - 2,  # the title's padding
        )
        self.query_one("#types-title", Static).update(line)

    # -- keys ------------------------------------------------------------------

    def action_sort(self) -> None:
        self.sort = SORTABLE[(SORTABLE.index(self.sort) + 1) % len(SORTABLE)]
        self.refresh_from_store(changed=True)

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self.refresh_from_store(changed=True)

    def action_search(self) -> None:
        search = self.query_one("#types-search", Input)
        search.display = True
        search.focus()

    def action_back(self) -> None:
        search = self.query_one("#types-search", Input)
        if search.display or search.value:
            search.value = ""
            search.display = False
            self.query_one(LineTable).focus()
            return
        self.dismiss()

    def action_open(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.post_message(ShowTaskJobs(name))

    @on(LineTable.Chosen)
    def _chosen(self, event: LineTable.Chosen) -> None:
        event.stop()
        self.post_message(ShowTaskJobs(event.key))

    @on(Input.Changed, "#types-search")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter = event.value.strip().lower()
        self.refresh_from_store(changed=True)

    @on(Input.Submitted, "#types-search")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.action_back()
        else:
            self.query_one(LineTable).focus()
