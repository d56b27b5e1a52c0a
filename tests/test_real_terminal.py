"""The demo in a real pseudo-terminal at 80x24, read back through a terminal
emulator (pyte): left untouched while jobs keep arriving, it shows the newest."""

from __future__ import annotations

import re
import time

import pyte
import pytest

from tests.cluster import wait_for
from tests.test_demo import Terminal

SIZE = (80, 24)
UNTOUCHED = 15.0  # seconds the user looks away
DAY = 24 * 3600
ROW = re.compile(r"^([0-9a-f]{8}) +(\w+) .*?(\d\d:\d\d:\d\d)")


class Screen:
    """What a terminal of SIZE shows, fed from the demo's output."""

    def __init__(self, term: Terminal) -> None:
        self.term = term
        self.screen = pyte.Screen(*SIZE)
        self.stream = pyte.ByteStream(self.screen)
        self.fed = 0

    def update(self) -> None:
        data = bytes(self.term.output[self.fed :])
        self.fed += len(data)
        self.stream.feed(data)

    def lines(self) -> list[str]:
        self.update()
        return list(self.screen.display)

    def job_rows(self) -> list[tuple[int, str, str, int]]:
        """(line, id, state, seconds of the day it was seen) of each job row shown."""
        rows = []
        for y, line in enumerate(self.lines()):
            match = ROW.match(line)
            if match:
                h, m, s = map(int, match.group(3).split(":"))
                rows.append((y, match.group(1), match.group(2), h * 3600 + m * 60 + s))
        return rows

    def background(self, y: int) -> str:
        return self.screen.buffer[y][1].bg


@pytest.fixture
def small_terminal(tmp_path):
    term = Terminal(tmp_path, size=SIZE)
    yield Screen(term)
    term.close()


def test_an_untouched_demo_keeps_the_newest_jobs_on_screen(small_terminal):
    screen = small_terminal
    wait_for(lambda: len(screen.job_rows()) >= 3, 60, "jobs on the 80x24 screen")
    looked_away = time.monotonic()
    clock = time.localtime()  # the screen shows when jobs were seen in local time
    looked_away_at = clock.tm_hour * 3600 + clock.tm_min * 60 + clock.tm_sec

    def seen_after_looking_away(seconds_of_day: int) -> float:
        return (seconds_of_day - looked_away_at) % DAY  # past midnight too

    # A job seen well after the user looked away is on the top line.
    wait_for(
        lambda: UNTOUCHED <= seen_after_looking_away(screen.job_rows()[0][3]) < DAY / 2,
        UNTOUCHED + 30,
        f"a job seen {UNTOUCHED:.0f} s after looking away on the top line",
    )
    assert time.monotonic() - looked_away >= UNTOUCHED - 1  # the shown second is truncated
    rows = screen.job_rows()
    seen = [row[3] for row in rows]
    assert seen == sorted(seen, reverse=True), "newest first, in order"
    # The top row is the highlighted one: Enter would open what is seen.
    top, second = rows[0][0], rows[1][0]
    assert screen.background(top) != screen.background(second)
    text = "\n".join(screen.lines())
    assert "FOLLOW" in text
    footer = screen.lines()[-1]
    assert "? Help" in footer and "q Quit" in footer
