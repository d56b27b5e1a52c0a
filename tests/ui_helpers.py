"""Helpers for driving the app with a Pilot and reading what it shows."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable

import pytest
from rich.cells import cell_len
from textual.pilot import Pilot

from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.widgets.job_table import JobTable

SIZE = (120, 34)


# One run of text in Rich's SVG export: its x position and the row it is clipped to.
_SVG_TEXT = re.compile(
    r'<text [^>]*?x="([0-9.]+)"[^>]*?clip-path="url\(#[^)]*-line-(\d+)\)">(.*?)</text>'
)
# Rich's export lays cells out at 0.61 of its 20 px font size.
_SVG_CELL_WIDTH = 20 * 0.61


def screen_text(app: SluiceApp) -> str:
    """What the terminal would show, as plain text, one line per row.

    Read from Textual's public screenshot export (what the snapshot tests
    compare too): the SVG places each run of text at its cell, so the rows are
    rebuilt cell by cell.  Blank cells are spaces, so every row has the
    screen's full width and row n of the screen is line n.
    """
    width, height = app.size
    rows = [""] * height
    svg = app.export_screenshot(simplify=True)
    for x, row, text in _SVG_TEXT.findall(svg):
        line = rows[int(row)]
        column = round(float(x) / _SVG_CELL_WIDTH)
        rows[int(row)] = line + " " * (column - cell_len(line)) + _svg_unescape(text)
    return "\n".join(line + " " * (width - cell_len(line)) for line in rows)


def _svg_unescape(text: str) -> str:
    # Rich writes each space as &#160;; a real no-break space stays a raw character.
    return html.unescape(text.replace("&#160;", " "))


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
