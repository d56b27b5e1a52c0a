"""The header: connection, broker, rates, workers, and the per-state counts."""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from sluice_tui.history import NO_HISTORY
from sluice_tui.model.states import JobState
from sluice_tui.model.store import RESYNC_PENDING, Gap
from sluice_tui.ui.text import clock_time, inert, state_style

CONNECTION_STYLES = {
    "connected": "bold green",
    "connecting": "yellow",
    "reconnecting": "bold red",
    "stopped": "grey62",
    "writer stopped": "bold red",  # following a journal nobody writes (sluice_tui.history)
}
# The connection item of a monitor that reads a collector's journal (sluice_tui.history).
FOLLOWING_STYLE = "bold cyan"


@dataclass(frozen=True)
class StatusView:
    connection: str
    broker: str
    error: str | None
    events_per_second: float
    workers_online: int
    workers_known: int
    counts: tuple[tuple[JobState, int], ...]
    state_filter: JobState | None
    search: str
    sort: str
    reverse: bool
    paused: bool
    read_only: bool
    bad_events: int
    gaps: int = 0
    last_gap: Gap | None = None
    following: bool = True
    dark: bool = True  # the theme's, for the state colours
    found: int = 0  # jobs the search shows


def render_status(view: StatusView, width: int = 0) -> Text:
    """The header's lines; with a ``width``, lines wrap between items, never inside one."""
    lines = [_connection_items(view), _list_items(view), _warning_items(view)]
    text = Text()
    for items in lines:
        if items:
            if text:
                text.append("\n")
            text.append_text(_wrap(items, width))
    return text


def _connection_items(view: StatusView) -> list[Text]:
    style = CONNECTION_STYLES.get(view.connection, "")
    if view.connection.startswith("following"):  # a collector's journal, not the broker
        style = FOLLOWING_STYLE
    state = Text.assemble(("\u25cf ", style), (view.connection, style))
    if view.error and view.connection != "connected":
        state.append(f": {inert(view.error)}", "red")
    items = [state]
    if view.broker:
        items.append(Text(inert(view.broker), "bold"))
    items.append(Text(f"{_rate(view.events_per_second)} ev/s"))
    items.append(Text(f"workers {view.workers_online}/{view.workers_known} online"))
    if view.read_only:
        items.append(Text("READ-ONLY", "bold cyan"))
    if view.paused:
        items.append(Text("PAUSED", "bold black on yellow"))
    return items


def _list_items(view: StatusView) -> list[Text]:
    total = sum(n for _, n in view.counts)
    items = [_count("0", "all", total, "bold", view.state_filter is None)]
    for state, n in view.counts:
        selected = view.state_filter is state
        style = state_style(state, view.dark)
        items.append(_count(str(state.digit), state.value, n, style, selected))
    arrow = "\u25bc" if view.reverse else "\u25b2"
    items.append(Text(f"sort: {view.sort} {arrow}", "grey62"))
    if view.following:
        items.append(Text("FOLLOW", "bold green"))
    else:
        items.append(Text.assemble(("PINNED", "bold yellow"), (" f follows", "grey62")))
    if view.search:
        noun = "job" if view.found == 1 else "jobs"
        items.append(
            Text.assemble(
                ("search: ", "grey62"),
                (inert(view.search), "bold"),
                (f" {view.found:,} {noun}", "grey62"),
            )
        )
    return items


# How long the header keeps warning of a gap once its resync is done;
# diagnostics (d) keep every gap.  Long enough to be seen on coming back to
# the screen, short enough that a restart's gap does not take a line all day.
GAP_SHOWN = 600.0


def gap_to_show(gap: Gap | None, now: float) -> Gap | None:
    """The gap the header warns of: until its resync is done, and GAP_SHOWN after that."""
    if gap is None or gap.resync == RESYNC_PENDING:
        return gap
    settled = gap.end if gap.settled is None else max(gap.end, gap.settled)
    return gap if now - settled < GAP_SHOWN else None


def _warning_items(view: StatusView) -> list[Text]:
    """A third line, only while there is something the user must not miss."""
    if view.last_gap is None and not view.bad_events:
        return []
    items = []
    if view.last_gap is not None:
        gap = view.last_gap
        what = "events may have been lost"
        if gap.reason == NO_HISTORY:
            what = "no history kept"  # before a restart: not a fault
        lost = Text(f"\u26a0 {what} {clock_time(gap.start)}-{clock_time(gap.end)}", "bold yellow")
        if view.gaps > 1:
            lost.append(f" (and {view.gaps - 1} earlier)", "yellow")
        items.append(lost)
    if view.bad_events:
        noun = "event" if view.bad_events == 1 else "events"
        items.append(Text(f"{view.bad_events:,} bad {noun} skipped", "yellow"))
    items.append(Text("d: diagnostics", "grey62"))
    return items


def _wrap(items: list[Text], width: int, gap: str = "  ") -> Text:
    """Join items with ``gap``, starting a new line where the next item would not fit."""
    line = Text()
    used = 0
    for item in items:
        size = item.cell_len
        if used and width and used + len(gap) + size > width:
            line.append("\n")
            used = 0
        elif used:
            line.append(gap)
            used += len(gap)
        line.append_text(item)
        used += size
    return line


def _count(digit: str, label: str, n: int, style: str, selected: bool) -> Text:
    chunk = Text()
    chunk.append(digit, "bold reverse" if selected else "bold")
    chunk.append(f" {label} ", style)
    chunk.append(f"{n:,}", "bold" if n else "grey50")
    if selected:
        chunk.stylize("underline")
    return chunk


def _rate(per_second: float) -> str:
    if per_second >= 10_000:
        return f"{per_second / 1000:.0f}k"
    if per_second >= 1000:
        return f"{per_second / 1000:.1f}k"
    return f"{per_second:.0f}"


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        dock: top;
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view: StatusView | None = None
        self._lines = 0  # how many lines the header took when last laid out

    def show(self, view: StatusView) -> None:
        if view != self._view:
            self._view = view
            self._show_view(resized=False)

    def on_resize(self) -> None:
        if self._view is not None:
            self._show_view(resized=True)

    def _show_view(self, *, resized: bool) -> None:
        # Before the first layout the header has no width yet: wrapped to none,
        # Rich would break it anywhere ("5 completed" / "575"); the screen's is right.
        width = self.content_size.width or max(0, self.app.size.width - 2)
        text = render_status(self._view, width)
        lines = text.plain.split("\n")
        # New counts every tick: lay out the screen again only when the
        # header's height may change, not for every figure that moves.
        same = len(lines) == self._lines and all(cell_len(line) <= width for line in lines)
        self._lines = len(lines)
        self.update(text, layout=resized or not same)
        if resized or not same:
            # A height change asked for during a layout pass is not acted on,
            # and later ticks that change nothing would not ask again: the
            # header kept its first height, or hid a new warning line for good.
            self.call_after_refresh(self.refresh, layout=True)
