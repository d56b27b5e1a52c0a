"""The header: connection, broker, rates, workers, and the per-state counts."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from sluice_tui.model.states import JobState
from sluice_tui.model.store import Gap
from sluice_tui.ui.text import STATE_STYLES, clock_time, inert

CONNECTION_STYLES = {
    "connected": "bold green",
    "connecting": "yellow",
    "reconnecting": "bold red",
    "stopped": "grey62",
}


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


def render_status(view: StatusView) -> Text:
    text = Text()
    text.append("\u25cf ", CONNECTION_STYLES.get(view.connection, ""))
    text.append(view.connection, CONNECTION_STYLES.get(view.connection, ""))
    if view.error and view.connection != "connected":
        text.append(f": {inert(view.error)}", "red")
    if view.broker:
        text.append("  ")
        text.append(inert(view.broker), "bold")
    text.append(f"   {_rate(view.events_per_second)} ev/s", "")
    text.append(f"   workers {view.workers_online}/{view.workers_known} online")
    if view.read_only:
        text.append("   READ-ONLY", "bold cyan")
    if view.paused:
        text.append("   PAUSED", "bold black on yellow")
    text.append("\n")
    total = sum(n for _, n in view.counts)
    _count(text, "0", "all", total, "bold", view.state_filter is None)
    for state, n in view.counts:
        _count(
            text, str(state.digit), state.value, n, STATE_STYLES[state], view.state_filter is state
        )
    arrow = "\u25bc" if view.reverse else "\u25b2"
    text.append(f" sort: {view.sort} {arrow}", "grey62")
    if view.search:
        text.append("  search: ", "grey62")
        text.append(inert(view.search), "bold")
    _warnings(text, view)
    return text


def _warnings(text: Text, view: StatusView) -> None:
    """A third line, only while there is something the user must not miss."""
    if view.last_gap is None and not view.bad_events:
        return
    text.append("\n")
    if view.last_gap is not None:
        gap = view.last_gap
        text.append(
            f"\u26a0 events may have been lost {clock_time(gap.start)}-{clock_time(gap.end)}",
            "bold yellow",
        )
        if view.gaps > 1:
            text.append(f" (and {view.gaps - 1} earlier)", "yellow")
        text.append("   ")
    if view.bad_events:
        noun = "event" if view.bad_events == 1 else "events"
        text.append(f"{view.bad_events:,} bad {noun} skipped   ", "yellow")
    text.append("d: diagnostics", "grey62")


def _count(text: Text, digit: str, label: str, n: int, style: str, selected: bool) -> None:
    chunk = Text()
    chunk.append(digit, "bold reverse" if selected else "bold")
    chunk.append(f" {label} ", style)
    chunk.append(f"{n:,}", "bold" if n else "grey50")
    if selected:
        chunk.stylize("underline")
    text.append_text(chunk)
    text.append("  ")


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

    def show(self, view: StatusView) -> None:
        if view != self._view:
            self._view = view
            self.update(render_status(view))
