"""The live job table: Textual's line API over the sorted, filtered job index.

Only visible lines are rendered, so 100 000 jobs cost what 50 do.  The cursor
follows a job, not a position: rows arriving above it shift the viewport with
it, so the job under the cursor stays where the eye left it.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from sluice_tui.model.job import JobRow
from sluice_tui.ui.job_index import JobIndex, SortColumn
from sluice_tui.ui.text import STATE_STYLES, clock_time, duration, inert, short_id


class Column(NamedTuple):
    label: str
    width: int  # the least it is shown at
    priority: int  # columns with the highest numbers go first when space is short
    flex: int = 0  # share of the spare width
    sort: SortColumn | None = None
    align_right: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("ID", 8, 0),
    Column("STATE", 9, 0, sort=SortColumn.STATE),
    Column("NOTE", 17, 1),
    Column("NAME", 14, 0, flex=3, sort=SortColumn.NAME),
    Column("WORKER", 12, 2, flex=1, sort=SortColumn.WORKER),
    Column("RECEIVED", 8, 1, sort=SortColumn.SEEN),
    Column("STARTED", 8, 4),
    Column("RUNTIME", 7, 1, sort=SortColumn.RUNTIME, align_right=True),
    Column("RETRY", 5, 3, sort=SortColumn.RETRIES, align_right=True),
    Column("ARGS", 8, 5, flex=4),
)


NOTE = 2


def layout(width: int, *, notes: bool = True) -> list[tuple[int, int]]:
    """(column index, width) of the columns that fit in ``width`` cells.

    The NOTE column appears only while some job carries a note, so it costs
    no width in the usual case.
    """
    shown = [i for i in range(len(COLUMNS)) if notes or i != NOTE]

    def needed() -> int:
        return sum(COLUMNS[i].width for i in shown) + len(shown) - 1

    while len(shown) > 1 and needed() > width:
        shown.remove(max(shown, key=lambda i: (COLUMNS[i].priority, i)))
    spare = max(0, width - needed())
    flex_total = sum(COLUMNS[i].flex for i in shown)
    widths = {i: COLUMNS[i].width for i in shown}
    if flex_total:
        given = 0
        flexible = [i for i in shown if COLUMNS[i].flex]
        for i in flexible:
            share = spare * COLUMNS[i].flex // flex_total
            widths[i] += share
            given += share
        widths[flexible[-1]] += spare - given
    return [(i, widths[i]) for i in shown]


def cells(row: JobRow) -> tuple[str, ...]:
    """The text of each column for one job, made inert."""
    return (
        short_id(row.id),
        row.state.value,
        row.note or "",
        inert(row.name) or "?",
        inert(row.worker),
        clock_time(row.received),
        clock_time(row.started),
        duration(row.runtime),
        "" if not row.retries else str(row.retries),
        inert(row.args),
    )


class JobTable(ScrollView, can_focus=True):
    """Rows of jobs from a :class:`JobIndex`; posts :class:`JobTable.Chosen` on enter."""

    DEFAULT_CSS = """
    JobTable {
        height: 1fr;
        scrollbar-gutter: stable;
    }
    JobTable > .job-table--header {
        text-style: bold;
        background: $panel;
    }
    JobTable > .job-table--cursor {
        background: $accent 40%;
    }
    JobTable:focus > .job-table--cursor {
        background: $accent;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"job-table--header", "job-table--cursor"}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
        Binding("enter", "choose", "Detail", id="jobs.detail"),
    ]

    class Chosen(Message):
        """The user asked to open a job."""

        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    def __init__(self, index: JobIndex, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index = index
        self.cursor = 0
        self.cursor_id: str | None = None
        self._layout: list[tuple[int, int]] = []
        self._layout_shape: tuple[int, bool] = (-1, False)
        self._cache: dict[tuple, Strip] = {}

    # -- what other parts call -------------------------------------------

    @property
    def selected(self) -> JobRow | None:
        if not len(self.index):
            return None
        return self.index.row_at(self.cursor)

    def rows_changed(self) -> None:
        """The index changed: keep the cursor on its job and repaint."""
        count = len(self.index)
        screen_offset = self.cursor - int(self.scroll_y)
        position = self.index.position_of(self.cursor_id) if self.cursor_id else None
        if position is None:
            position = min(self.cursor, max(0, count - 1))
        self.virtual_size = Size(self.size.width, count + 1)
        self._cache.clear()
        self._set_cursor(position, keep_screen_offset=screen_offset)
        self.refresh()

    def view_changed(self) -> None:
        """Filter, search or sort changed: follow the job if still shown, else go to top."""
        position = self.index.position_of(self.cursor_id) if self.cursor_id else None
        self.virtual_size = Size(self.size.width, len(self.index) + 1)
        self._cache.clear()
        self._set_cursor(position or 0)
        self.scroll_to(y=max(0, self.cursor - self.size.height // 2), animate=False)
        self.refresh()

    def header_for(self, column: Column) -> str:
        label = column.label
        if column.sort is not None and column.sort is self.index.sort:
            label += " \u25bc" if self.index.reverse else " \u25b2"
        return label

    # -- cursor movement -------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self._set_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._set_cursor(self.cursor + direction * max(1, self.size.height - 2))

    def action_edge(self, end: int) -> None:
        self._set_cursor(len(self.index) - 1 if end else 0)

    def action_choose(self) -> None:
        row = self.selected
        if row is not None:
            self.post_message(self.Chosen(row.id))

    def _set_cursor(self, position: int, keep_screen_offset: int | None = None) -> None:
        count = len(self.index)
        position = max(0, min(position, count - 1)) if count else 0
        previous = self.cursor
        self.cursor = position
        self.cursor_id = self.index.row_at(position).id if count else None
        visible_rows = max(1, self.size.height - 1)
        if keep_screen_offset is not None and 0 <= keep_screen_offset < visible_rows:
            target = position - keep_screen_offset
        elif position < self.scroll_y:
            target = position
        elif position >= self.scroll_y + visible_rows:
            target = position - visible_rows + 1
        else:
            target = int(self.scroll_y)
        if target != self.scroll_y:
            self.scroll_to(y=max(0, target), animate=False, immediate=True)
            self.refresh()
        else:
            # Only the two rows whose cursor mark changed (line 0 is the header).
            self.refresh_line(previous + 1)
            self.refresh_line(position + 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        position = int(self.scroll_y) + offset.y - 1
        if position < len(self.index):
            self._set_cursor(position)
            if event.chain >= 2:
                self.action_choose()

    # -- rendering ---------------------------------------------------------

    def _columns(self, width: int) -> list[tuple[int, int]]:
        shape = (width, self.index.noted > 0)
        if shape != self._layout_shape:
            self._layout = layout(width, notes=shape[1])
            self._layout_shape = shape
            self._cache.clear()
        return self._layout

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        columns = self._columns(width)
        if y == 0:
            style = self.get_component_rich_style("job-table--header")
            texts = [self.header_for(column) for column in COLUMNS]
            return self._strip(texts, columns, width, style, None)
        position = int(self.scroll_y) + y - 1
        if position >= len(self.index):
            return Strip.blank(width, self.rich_style)
        row = self.index.row_at(position)
        is_cursor = position == self.cursor
        key = (row, is_cursor, width)
        strip = self._cache.get(key)
        if strip is None:
            base = self.rich_style
            if is_cursor:
                # The cursor's own colours win: a state colour on the cursor
                # background can be unreadable.
                base = base + self.get_component_rich_style("job-table--cursor")
                state_style = base + Style(bold=True)
            else:
                state_style = base + Style.parse(STATE_STYLES[row.state])
            strip = self._strip(cells(row), columns, width, base, state_style)
            if len(self._cache) > 2000:
                self._cache.clear()
            self._cache[key] = strip
        return strip

    def _strip(
        self,
        texts,
        columns: list[tuple[int, int]],
        width: int,
        style: Style,
        state_style: Style | None,
    ) -> Strip:
        segments = []
        for n, (i, col_width) in enumerate(columns):
            text = texts[i]
            if COLUMNS[i].align_right:
                text = text[-col_width:].rjust(col_width)
            else:
                text = set_cell_size(text, col_width)
            column_style = state_style if (state_style is not None and i == 1) else style
            segments.append(Segment(text, column_style))
            if n < len(columns) - 1:
                segments.append(Segment(" ", style))
        return Strip(segments).adjust_cell_length(width, style)
