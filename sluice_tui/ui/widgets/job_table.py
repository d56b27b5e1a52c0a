"""The live job table: Textual's line API over the sorted, filtered job index.

Only visible lines are rendered, so 100 000 jobs cost what 50 do.

The table either *follows* the end of the list where new jobs appear (the
top, newest first, by default), like ``tail -f``, or is *pinned* to the job
the user moved to: the cursor then stays on that job, by id, while rows move
around it.  Either way the cursor's row is always on screen, after any tick,
filter, sort, search, scroll or resize, so enter, r and x act on what is seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import ClassVar, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from sluice_tui.model.job import JobRow
from sluice_tui.model.states import JobState
from sluice_tui.ui.job_index import MEASURED, NOTE_JOIN, JobIndex, SortColumn, note_text
from sluice_tui.ui.text import clock_time, duration, inert, short_id, span, state_style

ELLIPSIS = "\u2026"
SORT_MARK = 2  # " ▲" after a sortable column's label
LIVE_STATES = (JobState.ACTIVE, JobState.SCHEDULED)  # their time cell counts every second
NOTE_CLAUSES = f" {NOTE_JOIN} "
CLAUSE_LEAST = 8  # characters of a note's second clause worth showing


class Column(NamedTuple):
    label: str
    width: int  # the least it is shown at
    sort: SortColumn | None = None
    align_right: bool = False
    measured: str | None = None  # the JobIndex field whose longest text sizes it
    wanted: int = 0  # a measured column joins at up to this width...
    most: int = 0  # ...and grows up to this width (also ARGS) when there is room
    # Where an ellipsis replaces what does not fit: end, start, middle, or
    # clause (end, but a second clause too short to read is left out whole).
    cut: str = "end"


ID, STATE, NAME, WORKER, SEEN, STARTED, TIME, RETRY, NOTE, ARGS = range(10)
COLUMNS: tuple[Column, ...] = (
    Column("ID", 8),
    Column("STATE", 9, sort=SortColumn.STATE),
    # Dotted task names differ at the end; pod-style hostnames at both ends.
    Column("NAME", 10, SortColumn.NAME, measured="name", wanted=16, most=40, cut="start"),
    Column("WORKER", 10, SortColumn.WORKER, measured="worker", wanted=14, most=36, cut="middle"),
    Column("SEEN", 8, sort=SortColumn.SEEN),
    Column("STARTED", 8),
    Column("RUNTIME", 7, SortColumn.RUNTIME, align_right=True),
    Column("RETRY", 5, SortColumn.RETRIES, align_right=True),
    # An error (up to 120 characters) and what sluice-tui did to the job.
    Column("NOTE", 12, measured="note", wanted=24, most=160, cut="clause"),
    # Grows to 30 at most before other columns join: its cells' text is long.
    Column("ARGS", 10, measured="args", most=30),
)

# How columns claim width, most important first: a column joins if it fits at
# the width it wants (its content, at most ``cap``, else its ``wanted``); a
# growth step widens one towards its content (at most ``cap``, else its
# ``most``) as far as room allows.  ARGS takes whatever is left at the end.
JOIN, GROW = "join", "grow"


class Step(NamedTuple):
    step: str
    column: int
    cap: int = 0  # 0: the column's own wanted (join) or most (grow)


PLAN: tuple[Step, ...] = (
    Step(JOIN, ID),
    Step(JOIN, STATE),
    Step(JOIN, NAME),
    Step(JOIN, TIME),
    Step(JOIN, SEEN),
    Step(JOIN, WORKER),
    Step(JOIN, ARGS),
    Step(GROW, NAME),
    Step(GROW, WORKER),
    Step(JOIN, NOTE),
    Step(GROW, ARGS),
    Step(JOIN, RETRY),
    Step(JOIN, STARTED),
    # A wide terminal gives notes (errors) their whole length before the
    # arguments take the rest, instead of leaving the room blank.
    Step(GROW, NOTE),
)
# Listing failed (or retrying) jobs, their errors are what the list is read
# for: NOTE joins right after the job's identity and when it came, at whatever
# width is left, and grows to a readable length before WORKER may join, then
# to most errors' length before ARGS and RUNTIME (empty for most failures)
# may; past those it grows to its full length.
ERROR_NOTE_READABLE = 48
ERROR_NOTE_WIDE = 80
ERRORS_FIRST_PLAN: tuple[Step, ...] = (
    Step(JOIN, ID),
    Step(JOIN, STATE),
    Step(JOIN, NAME),
    Step(JOIN, SEEN),
    Step(JOIN, NOTE, cap=1),  # at its least: it grows next
    Step(GROW, NOTE, cap=ERROR_NOTE_READABLE),
    Step(JOIN, WORKER),
    Step(GROW, NOTE, cap=ERROR_NOTE_WIDE),
    Step(JOIN, ARGS),
    Step(JOIN, TIME),
    Step(GROW, NAME),
    Step(GROW, WORKER),
    Step(GROW, NOTE),
    Step(GROW, ARGS),
    Step(JOIN, RETRY),
    Step(JOIN, STARTED),
)
ALWAYS = (ID, STATE, NAME)
ERROR_STATES = (JobState.FAILED, JobState.RETRYING)


def least_width(column: Column) -> int:
    """A column is never narrower than its label, sort mark included."""
    label = len(column.label) + (SORT_MARK if column.sort is not None else 0)
    return max(column.width, label)


def layout(
    width: int, natural: dict[str, int], *, notes: bool, errors_first: bool = False
) -> list[tuple[int, int]]:
    """(column index, width) of the columns shown in ``width`` cells, left to right.

    ``natural`` is the longest text of each measured column.  NOTE takes no
    width while no job carries a note; with ``errors_first`` it comes before
    WORKER and ARGS.
    """

    def longest(column: Column) -> int:
        return natural.get(column.measured, 0) if column.measured else column.most

    widths: dict[int, int] = {}
    for step, i, cap in ERRORS_FIRST_PLAN if errors_first else PLAN:
        column = COLUMNS[i]
        used = sum(widths.values()) + len(widths)  # one space before each column
        if step is JOIN:
            if i in widths or (i == NOTE and not notes):
                continue
            want = least_width(column)
            if column.measured:
                want = max(want, min(longest(column), cap or column.wanted))
            if i in ALWAYS or used + want <= width:
                widths[i] = want
        elif i in widths:
            room = width - used + 1
            most = cap or column.most
            widths[i] += max(0, min(room, min(longest(column), most) - widths[i]))
    spare = width - sum(widths.values()) - (len(widths) - 1)
    if spare < 0:  # the first three alone overflow a very narrow terminal
        cut = min(-spare, widths[NAME] - least_width(COLUMNS[NAME]))
        widths[NAME] -= cut
    elif spare:
        # To the last text column shown, not to a figure's.
        widths[next((i for i in (ARGS, NOTE) if i in widths), max(widths))] += spare
    return sorted(widths.items())


parse_style = lru_cache(maxsize=64)(Style.parse)


class Cell(NamedTuple):
    text: str
    style: str = ""  # a Rich style on top of the row's, unless the row has the cursor


def time_cell(row: JobRow, now: float) -> Cell:
    """Runtime once finished; live elapsed time while running; countdown while scheduled."""
    if row.state is JobState.ACTIVE and row.started is not None:
        return Cell(duration(max(0.0, now - row.started)), "italic")
    if row.state is JobState.SCHEDULED and row.eta is not None:
        left = row.eta - now
        return Cell("in " + span(left) if left >= 1 else "due", "italic")  # as the detail says
    return Cell(duration(row.runtime))


def cells(row: JobRow, now: float, *, note_column: bool, dark: bool = True) -> tuple[Cell, ...]:
    """Each column's text for one job, made inert; with no NOTE column the note leads ARGS."""
    args = inert(row.args)
    note = inert(note_text(row))  # a failed job's note is its error: task data
    if note and not note_column:
        args = f"[{note}] {args}"
    return (
        Cell(short_id(row.id)),
        Cell(row.state.value, state_style(row.state, dark)),
        Cell(inert(row.name) or "?"),
        Cell(inert(row.worker)),
        Cell(clock_time(row.received)),
        Cell(clock_time(row.started)),
        time_cell(row, now),
        Cell("" if not row.retries else str(row.retries)),
        Cell(note, "italic"),
        Cell(args),
    )


def fit(text: str, width: int, *, right: bool = False, cut: str = "end") -> str:
    """``text`` in exactly ``width`` cells; a cut is marked with an ellipsis."""
    if cut == "clause":
        # "retried as 1f0c… · CardDeclined: …": a second clause that would
        # show only a few characters is left out whole, not cut to "· C…".
        head, sep, _ = text.partition(NOTE_CLAUSES)
        if sep and cell_len(head) <= width < cell_len(head) + len(sep) + CLAUSE_LEAST:
            text = head
        cut = "end"
    if cell_len(text) > width:
        if width <= 1:
            text = ELLIPSIS[:width]
        elif cut == "start":
            text = ELLIPSIS + _tail(text, width - 1)
        elif cut == "middle" and width >= 7:
            tail = (width - 1) // 2
            text = set_cell_size(text, width - 1 - tail) + ELLIPSIS + _tail(text, tail)
        else:
            text = set_cell_size(text, width - 1) + ELLIPSIS
    if right:
        return " " * (width - cell_len(text)) + text
    return set_cell_size(text, width)


def _tail(text: str, cells: int) -> str:
    """The end of ``text`` that fills at most ``cells`` cells."""
    end = len(text)
    start = end
    while start > 0 and cell_len(text[start - 1 : end]) <= cells:
        start -= 1
    return text[start:end]


def empty_message(index: JobIndex, waiting_on: str | None = None) -> str:
    """What an empty list says instead of showing nothing; ``waiting_on``: why no
    job can come yet (the broker cannot be reached), said before anything else."""
    what = f"{index.state_filter.value} jobs" if index.state_filter else "jobs"
    if not index.total and waiting_on:
        return f"No jobs yet: {waiting_on}"
    if index.search:
        return f"No {what} match {inert(index.search)!r}. Escape clears the search."
    if index.state_filter is not None:
        return f"No {what}. 0 shows every state."
    if index.total:
        return "No jobs."
    return "No jobs yet: waiting for task events from the workers."


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
    JobTable > .job-table--empty {
        color: $text-muted;
        text-style: italic;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "job-table--header",
        "job-table--cursor",
        "job-table--empty",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", id="jobs.up", show=False),
        Binding("down,j", "cursor(1)", "Down", id="jobs.down", show=False),
        Binding("pageup", "page(-1)", "Page up", id="jobs.page_up", show=False),
        Binding("pagedown", "page(1)", "Page down", id="jobs.page_down", show=False),
        Binding("home", "edge(0)", "First", id="jobs.first", show=False),
        Binding("end", "edge(1)", "Last", id="jobs.last", show=False),
        Binding("f", "follow", "Follow new jobs", id="jobs.follow", show=False),
        Binding("enter", "choose", "Detail", id="jobs.detail"),
    ]

    class Chosen(Message):
        """The user asked to open a job."""

        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    class FollowChanged(Message):
        """The table started or stopped following new jobs."""

    def __init__(
        self,
        index: JobIndex,
        *,
        clock: Callable[[], float] = time.time,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.index = index
        self.clock = clock
        self.cursor = 0
        self.cursor_id: str | None = None
        self.following = True
        self._layout: list[tuple[int, int]] = []
        self._layout_shape: tuple = ()
        self._cache: dict[tuple, Strip] = {}
        self._live_second = 0
        self._drawn_cursor_id: str | None = None
        self._waiting_on: str | None = None

    @property
    def waiting_on(self) -> str | None:
        """Why no job can come yet, for the empty list (the screen sets it each tick)."""
        return self._waiting_on

    @waiting_on.setter
    def waiting_on(self, reason: str | None) -> None:
        if reason != self._waiting_on:
            self._waiting_on = reason
            if not len(self.index):
                self.refresh()

    # -- what other parts call -------------------------------------------

    @property
    def selected(self) -> JobRow | None:
        """The job the user sees highlighted: what enter, r and x act on.

        A tick can move the cursor (when following) a moment before a key
        arrives, and the key must not land on a row not yet drawn: until the
        next repaint, the highlighted row drawn last wins.
        """
        index = self.index
        if not len(index):
            return None
        drawn = self._drawn_cursor_id
        if drawn is not None and drawn != self.cursor_id:
            row = index.row(drawn)
            if row is not None and index.position_of(drawn) is not None:
                return row
        return index.row_at(self.cursor)

    def hold(self) -> JobRow | None:
        """The user acts on the selected job: stop following, so it stays put."""
        row = self.selected
        if row is not None:
            self._set_following(False)
            position = self.index.position_of(row.id)
            self._place(self.cursor if position is None else position)
        return row

    @property
    def visible_rows(self) -> int:
        """How many job rows fit under the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def rows_changed(self) -> None:
        """The index changed: follow the newest job, or keep the cursor on its job."""
        self._cache.clear()
        self._resize_virtual()
        self.refresh()
        if self.following:
            self._to_anchor()
            return
        screen_offset = self.cursor - int(self.scroll_y)
        position = self.index.position_of(self.cursor_id) if self.cursor_id else None
        if position is None:  # the job left the list: stay where it was
            position = self.cursor
        self._place(position, keep_screen_offset=screen_offset)

    def view_changed(self) -> None:
        """Filter, search or sort changed: keep the pinned job if still shown, else follow."""
        self._cache.clear()
        self._resize_virtual()
        self.refresh()
        position = self.index.position_of(self.cursor_id) if self.cursor_id else None
        if self.following or position is None:
            self._set_following(True)
            self._to_anchor()
        else:
            self._place(position, keep_screen_offset=self.visible_rows // 2)

    def tick(self) -> None:
        """Once a UI tick: running and scheduled jobs' times move every second."""
        second = int(self.clock())
        if second == self._live_second:
            return
        self._live_second = second
        top = int(self.scroll_y)
        end = min(len(self.index), top + self.visible_rows)
        if any(self.index.row_at(p).state in LIVE_STATES for p in range(top, end)):
            self.refresh()

    def header_for(self, column: Column) -> str:
        label = column.label
        if column.sort is not None and column.sort is self.index.sort:
            label += " \u25bc" if self.index.reverse else " \u25b2"
        return label

    # -- cursor movement -------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor + direction * max(1, self.visible_rows - 1))

    def action_edge(self, end: int) -> None:
        """Home and End; the end where new jobs appear also resumes following."""
        if bool(end) == self._anchor_is_bottom():
            self.action_follow()
        else:
            self._move_to(len(self.index) - 1 if end else 0)

    def action_follow(self) -> None:
        self._set_following(True)
        self._to_anchor()

    def action_choose(self) -> None:
        row = self.hold()
        if row is not None:
            self.post_message(self.Chosen(row.id))

    def _move_to(self, position: int) -> None:
        """A move by the user pins the cursor to the job it lands on."""
        self._set_following(False)
        self._place(position)

    def _set_following(self, following: bool) -> None:
        if following != self.following:
            self.following = following
            self.post_message(self.FollowChanged())

    def _anchor_is_bottom(self) -> bool:
        # Oldest first puts new jobs at the bottom, as `tail -f` does.
        return self.index.sort is SortColumn.SEEN and not self.index.reverse

    def _to_anchor(self) -> None:
        self._place(len(self.index) - 1 if self._anchor_is_bottom() else 0)

    def _place(self, position: int, keep_screen_offset: int | None = None) -> None:
        """Put the cursor on ``position`` and scroll so that its row is on screen."""
        count = len(self.index)
        position = max(0, min(position, count - 1)) if count else 0
        previous, previous_top = self.cursor, int(self.scroll_y)
        self.cursor = position
        self.cursor_id = self.index.row_at(position).id if count else None
        rows = self.visible_rows
        if keep_screen_offset is not None and 0 <= keep_screen_offset < rows:
            top = position - keep_screen_offset
        elif position < previous_top:
            top = position
        elif position >= previous_top + rows:
            top = position - rows + 1
        else:
            top = previous_top
        top = max(0, min(top, count - rows))
        if top != previous_top:
            # set_scroll skips watch_scroll_y, which is for scrolls the user makes.
            self.set_scroll(None, top)
            if self.show_vertical_scrollbar:
                self.vertical_scrollbar.position = top
            self.refresh()
        else:
            # Only the two rows whose cursor mark changed (line 0 is the header).
            self.refresh_line(previous + 1)
            self.refresh_line(position + 1)

    def _resize_virtual(self) -> None:
        # No width: lines always fit the view, so there is never a horizontal
        # scrollbar to take a row from the list.
        size = Size(0, len(self.index) + 1)
        old, height = self.virtual_size, self.size.height
        if (
            size != old
            and self.show_vertical_scrollbar
            and min(size.height, old.height) > height
            and self.scroll_y <= size.height - height
        ):
            # The scrollbar stays and the view need not move: only the bar's
            # thumb changes.  Assigning virtual_size would lay out the whole
            # screen again, on every tick that brings new jobs.
            self.set_reactive(JobTable.virtual_size, size)
            self.vertical_scrollbar.window_virtual_size = size.height
            return
        self.virtual_size = size

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """A wheel or scrollbar scroll carries the cursor along if it would leave the view."""
        super().watch_scroll_y(old_value, new_value)
        top = round(new_value)
        if not len(self.index):
            return
        if self.cursor < top:
            self._move_to(top)
        elif self.cursor >= top + self.visible_rows:
            self._move_to(top + self.visible_rows - 1)

    def on_resize(self, event: events.Resize) -> None:
        self._resize_virtual()
        if self.following:
            self._to_anchor()
        else:
            self._place(self.cursor)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        position = int(self.scroll_y) + offset.y - 1
        if position < len(self.index):
            self._move_to(position)
            if event.chain >= 2:
                self.action_choose()

    # -- rendering ---------------------------------------------------------

    def _columns(self, width: int) -> list[tuple[int, int]]:
        index = self.index
        shape = (width, index.version, index.state_filter)
        if shape != self._layout_shape:
            # Content widths move only when the index syncs: measure once per sync.
            natural = {field: index.widest(field) for field in MEASURED}
            errors_first = index.state_filter in ERROR_STATES
            columns = layout(width, natural, notes=index.noted > 0, errors_first=errors_first)
            if columns != self._layout:
                self._layout = columns
                self._cache.clear()
            self._layout_shape = shape
        return self._layout

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        columns = self._columns(width)
        if y == 0:
            style = self.get_component_rich_style("job-table--header")
            texts = [Cell(self.header_for(column)) for column in COLUMNS]
            return self._strip(texts, columns, width, style, plain=True)
        count = len(self.index)
        if not count:
            if y == 2:
                style = self.get_component_rich_style("job-table--empty")
                text = fit("  " + empty_message(self.index, self._waiting_on), width)
                return Strip([Segment(text, style)]).adjust_cell_length(width, style)
            return Strip.blank(width, self.rich_style)
        position = int(self.scroll_y) + y - 1
        if position >= count:
            return Strip.blank(width, self.rich_style)
        row = self.index.row_at(position)
        is_cursor = position == self.cursor
        if is_cursor:
            self._drawn_cursor_id = row.id
        live = self._live_second if row.state in LIVE_STATES else 0
        dark = self.app.current_theme.dark
        key = (row, is_cursor, width, live, dark)
        strip = self._cache.get(key)
        if strip is None:
            now = self.clock()
            notes = any(i == NOTE for i, _ in columns)
            base = self.rich_style
            if is_cursor:
                # The cursor's own colours win: a state colour on the cursor
                # background can be unreadable.
                base = base + self.get_component_rich_style("job-table--cursor")
            strip = self._strip(
                cells(row, now, note_column=notes, dark=dark),
                columns,
                width,
                base,
                plain=is_cursor,
            )
            if len(self._cache) > 2000:
                self._cache.clear()
            self._cache[key] = strip
        return strip

    def _strip(
        self,
        texts: tuple[Cell, ...] | list[Cell],
        columns: list[tuple[int, int]],
        width: int,
        style: Style,
        *,
        plain: bool,
    ) -> Strip:
        segments = []
        for n, (i, col_width) in enumerate(columns):
            column = COLUMNS[i]
            text, extra = texts[i]
            text = fit(text, col_width, right=column.align_right, cut=column.cut)
            if plain or not extra:
                cell_style = style + Style(bold=True) if plain and i == STATE else style
            else:
                cell_style = style + parse_style(extra)
            segments.append(Segment(text, cell_style))
            if n < len(columns) - 1:
                segments.append(Segment(" ", style))
        return Strip(segments).adjust_cell_length(width, style)
