"""The detail screen tells a job's story in order, driven through the real app."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from sluice_tui.actions import ActionsGate
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.celery_adapter.resync import Resync
from sluice_tui.model.store import JobStore
from sluice_tui.ui.actions import UIActions
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.screens.job_detail import JobDetailScreen, render_history
from tests import events as ev
from tests.conftest import FakeClock
from tests.test_history_story import SlowCluster, flaky_events
from tests.test_resync import cluster_answering, request
from tests.ui_helpers import screen_text, settle, wait_in_app

T = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
TALL = (120, 70)


class Cluster:
    """A store, the app over it and a clock the test moves."""

    def __init__(self) -> None:
        self.clock = FakeClock(T + 30)
        self.store = JobStore(clock=self.clock)
        self.feed = EventAdapter(self.store, clock=self.clock)
        self.gate = ActionsGate(self.store, SlowCluster(self.feed, self.clock), clock=self.clock)
        self.app = SluiceApp(
            self.store, actions=UIActions(self.gate), clock=self.clock, tick_seconds=None
        )


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


async def open_job(pilot, job_id: str) -> str:
    await pilot.press("g", *job_id, "enter")
    assert isinstance(pilot.app.screen, JobDetailScreen)
    return screen_text(pilot.app)


def line_of(text: str, *words: str) -> int:
    """The number of the first line holding every one of ``words``."""
    return next(n for n, line in enumerate(text.splitlines()) if all(w in line for w in words))


async def test_revoke_reads_request_then_task_revoked_and_moves_no_start(cluster):
    cluster.feed(ev.received("job-r", T + 10))
    cluster.feed(ev.started("job-r", T + 11))
    async with cluster.app.run_test(size=TALL) as pilot:
        await open_job(pilot, "job-r")
        await pilot.press("x", "t")  # revoke, terminating it
        await wait_in_app(pilot, lambda: cluster.store.get("job-r").state.finished, "revoked")
        await settle(pilot)
        cluster.app.tick()
        await pilot.pause()
        text = screen_text(cluster.app)
        # The worker stamps task-revoked before the broadcast's replies come back.
        assert line_of(text, "revoke requested") < line_of(text, "task-revoked")
        assert line_of(text, "22:13:50.000", "revoke requested")  # dated when it was sent
        assert line_of(text, "started", "2023-11-14 22:13:31.000")  # not the request's time
        assert line_of(text, "revoke terminate", "yes")  # a boolean, in words


async def test_a_retried_job_reads_attempt_by_attempt(cluster):
    for event in flaky_events("job-f"):
        cluster.feed(event)
    async with cluster.app.run_test(size=TALL) as pilot:
        text = await open_job(pilot, "job-f")
        lines = text.splitlines()
        heads = [line_of(text, f"attempt {n}") for n in (1, 2, 3)]
        assert heads == sorted(heads)
        for head in heads:  # each attempt opens with the producer's task-sent
            assert "task-sent" in lines[head + 1]
        attempt_2 = "\n".join(lines[heads[1] : heads[2]])
        assert [w for w in ("task-received", "task-started", "task-retried") if w in attempt_2]
        assert "ConnectionError('attempt 2 failed')" in attempt_2
        assert "Retry in 4.0s" in attempt_2  # the earlier traceback, under its attempt
        assert "ConnectionError('attempt 1 failed')" in "\n".join(lines[heads[0] : heads[1]])


async def test_a_completed_job_shows_no_earlier_error_as_its_own(cluster):
    for event in flaky_events("job-f"):
        cluster.feed(event)
    async with cluster.app.run_test(size=TALL) as pilot:
        text = await open_job(pilot, "job-f")
        history = line_of(text, "History")
        above = "\n".join(text.splitlines()[:history])
        assert "'succeeded after 2 retries'" in above
        assert "ConnectionError" not in above and "Retry in 4.0s" not in above
        assert "no traceback in this attempt" in above


async def test_related_jobs_update_live_and_enter_opens_them(cluster):
    cluster.feed(ev.received("job-a", T))
    cluster.feed(ev.failed("job-a", T + 1))
    async with cluster.app.run_test(size=TALL) as pilot:
        await open_job(pilot, "job-a")
        await pilot.press("r", "y")  # retry: SlowCluster names the new job "new"
        await wait_in_app(pilot, lambda: "new" in cluster.store, "the retry sent")
        await settle(pilot)
        cluster.app.tick()
        await pilot.pause()
        assert line_of(screen_text(cluster.app), "retried as", "new", "queued")
        cluster.feed(ev.started("new", cluster.clock.now))
        cluster.feed(ev.succeeded("new", cluster.clock.now + 1))
        cluster.app.tick()
        await pilot.pause()
        text = screen_text(cluster.app)
        assert line_of(text, "retried as", "new", "completed")
        assert "enter opens it" in text
        await pilot.press("enter")  # no tab first
        assert isinstance(cluster.app.screen, JobDetailScreen)
        assert cluster.app.screen.job_id == "new"


async def test_a_job_found_by_resync_shows_the_replys_start_and_args(cluster):
    started = T - 105.0  # 22:11:35, before the monitor started
    reply = {**request("job-s"), "args": [7, 7], "time_start": started}
    Resync(cluster_answering(active={"w1@h": [reply]}), cluster.store, clock=cluster.clock).run()
    async with cluster.app.run_test(size=TALL) as pilot:
        text = await open_job(pilot, "job-s")
        assert line_of(text, "first event", "2023-11-14 22:11:35.000")
        assert line_of(text, "args", "(7, 7)")
        assert "[7, 7]" not in text


async def test_times_in_one_local_format_with_a_live_countdown(cluster):
    eta = "2023-11-14T22:14:02+00:00"  # 12 s after the clock
    cluster.feed(ev.received("job-e", T + 29, eta=eta, expires="2023-11-14T22:13:47+00:00"))
    async with cluster.app.run_test(size=TALL) as pilot:
        text = await open_job(pilot, "job-e")
        assert line_of(text, "eta", "2023-11-14 22:14:02.000  (in 12s)")
        assert line_of(text, "expires", "2023-11-14 22:13:47.000  (3s ago)")
        assert line_of(text, "first event", "2023-11-14 22:13:49.000")
        assert "T22:14:02" not in text
        cluster.clock.advance(5)
        cluster.app.tick()  # nothing about the job changed; the countdown still moves
        await pilot.pause()
        assert line_of(screen_text(cluster.app), "eta", "(in 7s)")


async def test_long_args_can_be_read_in_full(cluster):
    blob = "".join(f"{n:04d}" for n in range(250))  # one long word: a token, base64...
    args = f"('{blob}', 'the-end')"
    cluster.feed(ev.received("job-l", T, args=args))
    async with cluster.app.run_test(size=TALL) as pilot:
        text = await open_job(pilot, "job-l")
        shown = "".join(line.strip() for line in text.splitlines())
        assert blob in shown  # folded over lines, every character there
        assert "'the-end')" in text


async def test_a_huge_history_shows_its_ends_and_says_what_it_leaves_out(cluster):
    for n in range(1000):  # a job redelivered again and again
        cluster.feed(ev.started("job-h", T + n))
    async with cluster.app.run_test(size=TALL) as pilot:
        await open_job(pilot, "job-h")
        history = cluster.app.screen.query_one("#detail-history")
        assert history.virtual_size.height < 500  # not 1 000 entries, one or two lines each
        await pilot.press("end")
        await pilot.pause()
        assert line_of(screen_text(cluster.app), "1000", "22:29:59.000")  # the latest entry
        # The middle is left out, and says so.
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(render_history(cluster.store.get("job-h")))
        assert "... 800 entries not shown ..." in console.export_text()
