"""Gaps in the event stream, and the resync steps that correct jobs after one."""

from sluice_tui.celery_adapter import resync
from sluice_tui.model.job import NO_FIELDS
from sluice_tui.model.states import JobState
from tests import events as ev


def test_resync_corrects_a_job_and_says_so_in_its_history(feed, store, clock):
    feed(ev.received("a", clock.now))
    version = store.version
    events = store.stats().events
    assert store.resync("a", resync.RUNNING, clock.now + 5, "w1@host", {}, NO_FIELDS)
    a = store.get("a")
    assert a.state is JobState.ACTIVE
    assert a.history[-1].event == "resync: running on worker"
    assert "a" in store.changes_since(version).job_ids
    assert store.stats().events == events  # a resync is not an event


def test_resync_leaves_a_job_that_already_agrees_alone(feed, store, clock):
    feed(ev.received("a", clock.now))
    feed(ev.started("a", clock.now))
    assert not store.resync("a", resync.RUNNING, clock.now + 5, "w1@host", {}, NO_FIELDS)
    assert [t.event for t in store.get("a").history] == ["task-received", "task-started"]


def test_resync_never_moves_a_finished_job_back(feed, store, clock):
    feed(ev.received("a", clock.now))
    feed(ev.succeeded("a", clock.now + 1))
    assert not store.resync("a", resync.RESERVED, clock.now + 5, "w1@host", {}, NO_FIELDS)
    assert store.get("a").state is JobState.COMPLETED


def test_resync_adds_jobs_that_ran_entirely_inside_the_gap(store, clock):
    request = {"id": "new", "name": "proj.add", "args": "(1, 2)", "kwargs": "{}"}
    plan = resync._REQUEST_FIELDS
    assert store.resync("new", resync.RUNNING, clock.now, "w1@host", request, plan)
    job = store.get("new")
    assert job.state is JobState.ACTIVE
    assert (job.name, job.args, job.worker) == ("proj.add", "(1, 2)", "w1@host")


def test_later_events_win_over_an_earlier_resync(feed, store, clock):
    feed(ev.received("a", clock.now))
    store.resync("a", resync.RUNNING, clock.now + 1, "w1@host", {}, NO_FIELDS)
    feed(ev.succeeded("a", clock.now + 2))
    assert store.get("a").state is JobState.COMPLETED


def test_gaps_are_numbered_and_settled(store, clock):
    first = store.record_gap(clock.now - 10, clock.now - 5, "Connection refused")
    second = store.record_gap(clock.now - 3, clock.now, "Connection reset")
    store.settle_gap(first, "resync corrected 2 jobs")
    gaps = store.gaps()
    assert [g.reason for g in gaps] == ["Connection refused", "Connection reset"]
    assert gaps[0].resync == "resync corrected 2 jobs"
    assert gaps[1].resync == "resync pending"
    assert store.gap_count == 2 and second == 2
