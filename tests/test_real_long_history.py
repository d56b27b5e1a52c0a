"""Real tasks with long histories: one retried thousands of times, one reporting progress."""

from __future__ import annotations

import json

import pytest

from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.job import HISTORY_CAP
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp
from tests.cluster import Cluster, LineReader, require_transport, wait_for
from tests.ui_helpers import SIZE, screen_text

RETRIES = 2_000
STEPS = 5

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A poller that retries at once, without limit, and a task sending progress events,
    watched by a receiver in this process and by `sluice-tui dump`."""
    require_transport("redis")
    cluster = Cluster("redis", tmp_path_factory.mktemp("long-history"))
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store)
    try:
        cluster.start_worker("w1", 1)
        receiver.start()
        dump = cluster.sluice(
            "dump", "-A", "sluice_tui.demo.workload", "--seconds", "120", "--until-idle", "2", "-v"
        )
        stdout, stderr = LineReader(dump.stdout), LineReader(dump.stderr)
        stderr.wait_for("worker seen", 30)
        ids = {
            "poll": cluster.send("demo.poll", RETRIES).id,
            "progress": cluster.send("demo.progress", STEPS).id,
        }
        wait_for(
            lambda: all(store.get(i).state is JobState.COMPLETED for i in ids.values()),
            90,
            "both jobs to finish",
        )
        out = stdout.text(timeout=60)
        assert dump.wait(timeout=10) == 0, stderr.seen
    finally:
        receiver.stop()
        cluster.close()
    yield store, ids, {job["id"]: job for job in json.loads(out)}


def test_a_task_retried_thousands_of_times_keeps_a_capped_history(run):
    store, ids, _ = run
    job = store.get(ids["poll"])
    assert job.retries == RETRIES and job.attempt == RETRIES + 1
    assert len(job.history) <= HISTORY_CAP
    omitted = job.omitted
    assert omitted is not None and omitted.first_attempt == 2
    retried = omitted.by_state[JobState.RETRYING]
    assert retried in (omitted.attempts, omitted.attempts - 1)  # the last may go on after it
    # The first attempt after the marker is whole: its task-sent and task-received are kept.
    after = next(a for a in job.attempts() if a.number == omitted.last_attempt + 1)
    assert [t.event for t in after.entries][:3] == ["task-sent", "task-received", "task-started"]


def test_dump_shows_the_marker_with_its_counts(run):
    _, ids, dumped = run
    job = dumped[ids["poll"]]
    assert job["state"] == "completed" and job["retries"] == RETRIES
    markers = [entry["not_kept"] for entry in job["history"] if "not_kept" in entry]
    assert len(markers) == 1 and markers[0]["attempts"] > RETRIES // 2


async def test_the_detail_screen_shows_the_marker(run):
    store, ids, _ = run
    app = SluiceApp(store, tick_seconds=None)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *ids["poll"][:8], "enter")
        await pilot.pause()
        shown = screen_text(app)
        for _ in range(3):
            await pilot.press("pagedown")
            shown += screen_text(app)
    assert "not kept" in shown


def test_progress_events_show_in_the_history(run):
    store, ids, dumped = run
    job = store.get(ids["progress"])
    progress = [t.event for t in job.history if t.progress]
    assert progress == [f"task-progress current={n} total={STEPS}" for n in range(1, STEPS + 1)]
    assert store.stats().bad_events == 0
    events = [entry["event"] for entry in dumped[ids["progress"]]["history"]]
    assert f"task-progress current={STEPS} total={STEPS}" in events
