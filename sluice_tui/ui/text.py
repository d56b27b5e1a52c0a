"""Styles and formats for task data on screen (made safe by :func:`inert`)."""

from __future__ import annotations

import time

from rich.cells import cell_len
from rich.text import Text

from sluice_tui.model.states import JobState
from sluice_tui.terminal_text import inert

__all__ = [
    "STATE_STYLES",
    "clock_time",
    "duration",
    "full_time",
    "inert",
    "short_id",
    "span",
    "state_style",
]

# Eight colours that stay apart for colour-blind eyes (protanopia,
# deuteranopia, tritanopia) and readable on the theme's background: one set
# for dark themes, one for light.  tests/test_state_colours.py holds them to
# that.  Running and failed jobs are bold as well: they are what people look for.
STATE_COLOURS: dict[JobState, tuple[str, str]] = {
    JobState.UNKNOWN: ("#a0a0a0", "#666666"),
    JobState.QUEUED: ("#5585fc", "#1b73cd"),
    JobState.SCHEDULED: ("#7ddffe", "#0b4e64"),
    JobState.ACTIVE: ("#fee800", "#6c4d05"),
    JobState.COMPLETED: ("#adf799", "#1e863f"),
    JobState.FAILED: ("#f4555d", "#e02938"),
    JobState.RETRYING: ("#b56fcb", "#7b2697"),
    JobState.CANCELLED: ("#f97f29", "#3a1b00"),
}
BOLD_STATES = (JobState.ACTIVE, JobState.FAILED)


def state_style(state: JobState, dark: bool = True) -> str:
    """The Rich style of a state's name, for a dark or a light theme."""
    colour = STATE_COLOURS[state][0 if dark else 1]
    return f"bold {colour}" if state in BOLD_STATES else colour


STATE_STYLES: dict[JobState, str] = {state: state_style(state) for state in STATE_COLOURS}


def short_id(job_id: str) -> str:
    return job_id[:8]


def clock_time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def full_time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    fraction = f"{timestamp % 1:.3f}"[1:]
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) + fraction


def span(seconds: float) -> str:
    """A rough length of time for a countdown: 12s, 4m05s, 2h03m, 3d04h."""
    whole = round(abs(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0:
        shown = duration(-seconds)
        return shown if shown == "0ms" else "-" + shown  # never "-0ms"
    # Rounded first: 0.9996 s is "1.00s", not "1000ms".
    milliseconds = round(seconds * 1000)
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    if seconds < 60:
        return f"{min(seconds, 59.99):.2f}s"  # 59.996 would round to "60.00s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def title_line(title: Text, note: str, width: int) -> Text:
    """A screen's title line with ``note`` (grey) after it if all of it fits ``width``
    cells: at 80 columns a note cut mid-sentence read as broken."""
    if not width or title.cell_len + cell_len(note) <= width:
        title.append(note, "grey50")
    return title
