"""Helpers for driving the app with a Pilot and reading what it shows."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from textual.pilot import Pilot

from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.widgets.job_table import JobTable

SIZE = (120, 34)


def screen_text(app: SluiceApp) -> str:
    """What the terminal would show, as plain text, one line per row."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


def table_rows(app: SluiceApp) -> list[str]:
    """The job table's rows as rendered, without the header."""
    table = app.screen.query_one(JobTable)
    return [table.render_line(y).text for y in range(1, len(app.index) + 1)]


def shown_ids(app: SluiceApp) -> list[str]:
    return [app.index.row_at(i).id for i in range(len(app.index))]


async def settle(pilot: Pilot) -> None:
    """Let thread workers finish and their results reach the screen."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def capture_notifications(app: SluiceApp) -> list[str]:
    """Record every notification the app shows, still showing it."""
    seen: list[str] = []
    show = app.notify

    def notify(message, **kwargs):
        seen.append(str(message))
        return show(message, **kwargs)

    app.notify = notify
    return seen


async def wait_in_app(
    pilot: Pilot,
    condition: Callable[[], object],
    what: str,
    timeout: float = 20.0,
    *,
    explain: Callable[[], str] | None = None,
) -> None:
    """Like wait_for, but lets the app run while waiting; ``explain`` adds context on failure."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = f"; {explain()}" if explain is not None else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}{detail}")
        await pilot.pause(0.05)
