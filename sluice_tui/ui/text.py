"""Styles and formats for task data on screen (made safe by :func:`inert`)."""

from __future__ import annotations

import time

from sluice_tui.model.states import JobState
from sluice_tui.terminal_text import inert

__all__ = ["STATE_STYLES", "clock_time", "duration", "full_time", "inert", "short_id"]

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
