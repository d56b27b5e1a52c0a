"""The detail screen tells a job's story in order, driven through the real app."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from sluice_tui.actions import ActionsGate
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.celery_adapter.resync import Resync
from sluice_tui.model import job as job_model
from sluice_tui.model.job import JobSnapshot, Transition
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.actions import UIActions
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.screens.job_detail import JobDetailScreen
from sluice_tui.ui.widgets.history_view import HistoryView
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


async def test_a_cancelled_scheduled_job_shows_its_eta_without_a_countdown(cluster):
    """A trial: a revoked job's detail still read `eta ... (in 3m27s)`, as if due."""
    eta = "2023-11-14T22:14:02+00:00"  # 12 s after the clock
    cluster.feed(ev.received("job-c", T + 29, eta=eta))
    cluster.feed(ev.revoked("job-c", T + 29.5))
    async with cluster.app.run_test(size=TALL) as pilot:
        text = await open_job(pilot, "job-c")
        line = text.splitlines()[line_of(text, "eta", "2023-11-14 22:14:02.000")]
        assert "(in " not in line and "ago)" not in line, line


async def test_long_args_can_be_read_in_full(cluster):
    blob = "".join(f"{n:04d}" for n in range(250))  # one long word: a token, base64...
    args = f"('{blob}', 'the-end')"
    cluster.feed(ev.received("job-l", T, args=args))
    async with cluster.app.run_test(size=TALL) as pilot:
        text = await open_job(pilot, "job-l")
        shown = "".join(line.strip() for line in text.splitlines())
        assert blob in shown  # folded over lines, every character there
        assert "'the-end')" in text


async def history_text(pilot) -> str:
    """The screen after scrolling to the end, where the history is."""
    pilot.app.animation_level = "none"  # one jump: no frames drawn on the way
    await pilot.press("end")
    await pilot.pause()
    return screen_text(pilot.app)


def redelivered(job_id: str, times: int) -> list[dict]:
    """A job taken again and again by workers that die: one attempt, no cap trims it."""
    return [ev.started(job_id, T + n, hostname=f"w{n % 3}@host") for n in range(times)]


async def test_a_huge_history_opens_whole_and_scrolls_to_its_last_entry(cluster):
    for event in redelivered("job-h", 3000):
        cluster.feed(event)
    async with cluster.app.run_test(size=TALL) as pilot:
        await open_job(pilot, "job-h")
        view = cluster.app.screen.query_one(HistoryView)
        # Each redelivery opens an attempt: a heading and a row each, nothing left out.
        assert view.line_count == 1 + 2 * 3000
        text = await history_text(pilot)
        assert line_of(text, "3000", "23:03:19.000", "w2@host")  # the latest entry
        assert "not shown" not in text
        # Only what was on screen was drawn (the top, then the end, each at the
        # widths before and after the scrollbar came): not 6 001 lines.
        assert view.lines_rendered < 5 * TALL[1]
        await pilot.press("home", *["pagedown"] * 3)
        await pilot.pause()
        assert view.lines_rendered < 9 * TALL[1]


async def test_a_change_to_a_long_history_draws_only_the_new_lines(cluster):
    for event in redelivered("job-h", 3000):
        cluster.feed(event)
    async with cluster.app.run_test(size=TALL) as pilot:
        await open_job(pilot, "job-h")
        view = cluster.app.screen.query_one(HistoryView)
        await history_text(pilot)
        drawn = view.lines_rendered
        cluster.feed(ev.started("job-h", T + 3000, hostname="w0@host"))
        cluster.app.tick()
        await pilot.pause()
        text = await history_text(pilot)
        assert line_of(text, "3001", "23:03:20.000", "w0@host")
        # The new entry, and the one line it pushed out of view at the bottom.
        assert view.lines_rendered - drawn <= 2


async def test_a_story_told_event_by_event_reads_as_when_opened_at_the_end(cluster):
    """Each tick lays out only what changed: the end result is the same as from scratch."""
    events = flaky_events("job-f")
    cluster.feed(events[0])
    async with cluster.app.run_test(size=TALL) as pilot:
        await open_job(pilot, "job-f")
        for event in events[1:]:  # late task-sents, errors ending attempts, new attempts
            cluster.feed(event)
            cluster.app.tick()
            await pilot.pause()
        told = await history_text(pilot)
        await pilot.press("escape")
        await open_job(pilot, "job-f")
        opened = await history_text(pilot)
        assert told == opened
        assert line_of(told, "attempt 3") and line_of(told, "task-succeeded")


async def test_at_80_columns_errors_wrap_at_spaces_and_times_keep_their_seconds(cluster):
    reason = "ConnectionError('the payment gateway did not answer within five seconds, twice')"
    cluster.feed(ev.received("job-w", T, hostname="worker-long-name@prod-host-1"))
    cluster.feed(ev.retried("job-w", T + 1, exception=reason))
    cluster.feed(ev.received("job-w", T + 2, retries=1))
    async with cluster.app.run_test(size=(80, 24)) as pilot:
        await open_job(pilot, "job-w")
        text = await history_text(pilot)
        lines = [line.strip() for line in text.splitlines()]
        assert line_of(text, "22:13:21.000", "task-retried")  # the date goes, not the ms
        shown = next(n for n, line in enumerate(lines) if line.startswith("ConnectionError("))
        words = " ".join(lines[shown : shown + 3]).split()
        assert words[: len(reason.split())] == reason.split()  # no word cut in two


async def test_a_tasks_own_events_read_in_full_without_pushing_other_columns_away(cluster):
    stage = "upload the invoices to s3://billing-archive/2023/11 then mail the customer"
    cluster.feed(ev.received("job-p", T))
    cluster.feed(ev.started("job-p", T + 1))
    cluster.feed(ev.event("task-progress", "job-p", T + 2, done=3, total=10, stage=stage))
    cluster.feed(ev.succeeded("job-p", T + 3))
    async with cluster.app.run_test(size=(80, 24)) as pilot:
        await open_job(pilot, "job-p")
        text = await history_text(pilot)
        assert line_of(text, "task-succeeded", "w1@host")  # the host column is still there
        first = line_of(text, "progress", "task-progress done=3 total=10")
        lines = [line.strip() for line in text.splitlines()[first + 1 : first + 4]]
        assert " ".join(lines).startswith(f"stage={stage}")  # wrapped at spaces, all there


def marker_job() -> JobSnapshot:
    """A job that retried thousands of times, its middle attempts not kept."""
    omitted_type = getattr(job_model, "Omitted", None)
    if omitted_type is None or "marker" not in Transition._fields:
        pytest.skip("capped histories are not in the model yet")
    history = (
        Transition(JobState.QUEUED, T, "w1@host", "task-received"),
        Transition(JobState.RETRYING, T + 1, "w1@host", "task-retried"),
        Transition(JobState.RETRYING, T + 4089, None, "not kept", 3998, marker=True),
        Transition(JobState.QUEUED, T + 4090, "w2@host", "task-received", 3999),
        Transition(JobState.ACTIVE, T + 4091, "w2@host", "task-started", 3999),
    )
    omitted = omitted_type(
        first_attempt=2,
        last_attempt=3998,
        events=11991,
        actions=0,
        start=T + 2,
        end=T + 4089,
        late=0,
        by_state={JobState.RETRYING: 3997, JobState.ACTIVE: 3997, JobState.QUEUED: 3997},
    )
    return JobSnapshot("job-m", JobState.ACTIVE, True, history=history, omitted=omitted)


class HistoryOnly(App):
    def __init__(self, job: JobSnapshot) -> None:
        super().__init__()
        self.job = job

    def compose(self) -> ComposeResult:
        yield HistoryView()

    def on_mount(self) -> None:
        self.query_one(HistoryView).show(self.job)


async def test_a_stretch_not_kept_reads_as_one_row_between_the_kept_attempts():
    app = HistoryOnly(marker_job())
    async with app.run_test(size=(120, 12)) as pilot:
        await pilot.pause()
        lines = screen_text(app).splitlines()
        marker = line_of(
            "\n".join(lines),
            "\u2026 11,991 events of attempts 2-3,998 not kept, 22:13:22 to 23:21:29",
            "(retrying 3,997, active 3,997, queued 3,997)",
        )
        assert line_of("\n".join(lines), "attempt 1") < marker
        assert marker < line_of("\n".join(lines), "attempt 3999")
        assert "attempt 3998" not in "\n".join(lines)  # the marker is no attempt of its own


def test_durations_read_one_way_at_their_edges():
    """A trial saw `+1000ms` beside `+3.00s`, and `-0ms`, in one history."""
    from sluice_tui.ui.text import duration

    assert duration(0.9996) == "1.00s" and duration(0.9994) == "999ms"
    assert duration(-0.0004) == "0ms" and duration(0.0004) == "0ms"
    assert duration(-0.25) == "-250ms"
    assert duration(59.996) == "59.99s" and duration(60.0) == "1m00s"
