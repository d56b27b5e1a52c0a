"""Turning task data into text that is safe and short enough for a terminal.

Task names, args, results and tracebacks come from workers and producers we do
not control.  A control character written to the terminal can retitle the
window, move the cursor or worse, so every one is shown as a visible escape.
"""

from __future__ import annotations

import time

from sluice_tui.model.states import JobState

# C0 controls, DEL and C1 controls, shown as \xNN.  Newline and tab are kept
# only where a block of text is wanted (tracebacks).
_INERT = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_INERT_BLOCK = {k: v for k, v in _INERT.items() if k not in (0x09, 0x0A)}
_INERT_LINE = {**_INERT, 0x0A: "\u21b5", 0x09: " "}

STATE_STYLES: dict[JobState, str] = {
    JobState.UNKNOWN: "grey62",
    JobState.QUEUED: "bright_blue",
    JobState.SCHEDULED: "cyan",
    JobState.ACTIVE: "bold yellow",
    JobState.COMPLETED: "green",
    JobState.FAILED: "bold red",
    JobState.RETRYING: "magenta",
    JobState.CANCELLED: "dark_orange",
}


def inert(text: object, *, multiline: bool = False) -> str:
    """``text`` with every control character made visible and harmless."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    return text.translate(_INERT_BLOCK if multiline else _INERT_LINE)


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


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
