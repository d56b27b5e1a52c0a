"""The store stays bounded and fresh: stale jobs age out, old workers are forgotten,
unfinished jobs cannot crowd out a job that just finished, and counters stay small."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.states import JobState
from sluice_tui.model.store import MAX_BAD_REASONS, OTHER_BAD_REASONS, JobStore
from sluice_tui.ui.screens.diagnostics import render_diagnostics
from tests import events as ev
from tests.cluster import Cluster, wait_for

HOUR = 3600.0
DAY = 24 * HOUR


def make_store(clock, **options) -> tuple[JobStore, EventAdapter]:
    store = JobStore(clock=clock, **options)
    return store, EventAdapter(store, clock=clock)


def later(clock, store, seconds: float) -> tuple[int, int]:
    """Let time pass, then run the receiver's periodic age_out."""
    clock.advance(seconds)
    return store.age_out(clock.now)


def test_sent_only_jobs_do_not_make_a_completed_job_vanish(clock):
    """The probe from the issue: three jobs sent to a queue nobody consumes, max_jobs=3."""
    store, feed = make_store(clock, max_jobs=3)
    for name in ("lost-1", "lost-2", "lost-3"):
        feed(ev.sent(name, clock.now))
    feed(ev.received("real", clock.now + 1))
    feed(ev.started("real", clock.now + 2))
    feed(ev.succeeded("real", clock.now + 3))
    assert store.get("real").state is JobState.COMPLETED
    # The job that waited longest made room instead.
    assert "lost-1" not in store and {"lost-2", "lost-3"} <= set(store.ids_in(JobState))
    stats = store.stats()
    assert (stats.crowded_out, stats.evicted, stats.jobs) == (1, 0, 3)
    # It is not remembered as gone for good: if a worker takes it after all, it shows.
    feed(ev.received("lost-1", clock.now + 4))
    assert store.get("lost-1").state is JobState.QUEUED
    assert store.stats().dropped_late == 0
    assert "real" in store


def test_finished_jobs_still_go_first_the_first_finished_first(clock):
    store, feed = make_store(clock, max_jobs=3)
    feed(ev.sent("waiting", clock.now))
    for i in range(3):
        feed(ev.received(f"done-{i}", clock.now + i))
        feed(ev.succeeded(f"done-{i}", clock.now + i + 0.5))
    assert "done-0" not in store
    assert {"waiting", "done-1", "done-2"} == set(store.ids_in(JobState))
    assert store.stats().evicted == 1


def test_a_queued_job_with_no_news_for_a_day_ages_out(clock):
    store, feed = make_store(clock, stale_after=DAY)
    feed(ev.sent("stuck", clock.now))
    feed(ev.sent("busy", clock.now))
    feed(ev.received("done", clock.now))
    feed(ev.succeeded("done", clock.now + 1))
    assert later(clock, store, 20 * HOUR) == (0, 0)
    feed(ev.received("busy", clock.now))  # news for one of them
    version = store.version
    assert later(clock, store, 5 * HOUR) == (1, 0)
    assert "stuck" not in store
    assert store.get("busy").state is JobState.QUEUED
    assert store.get("done").state is JobState.COMPLETED  # finished jobs never age
    assert "stuck" in store.changes_since(version).job_ids  # the table drops its row
    assert store.stats().aged_out == 1
    assert store.counts()[JobState.QUEUED] == 1


def test_a_countdown_of_three_days_stays_scheduled_until_a_day_past_its_eta(clock):
    store, feed = make_store(clock, stale_after=DAY)
    eta = datetime.fromtimestamp(clock.now + 3 * DAY, UTC).isoformat()
    feed(ev.received("countdown", clock.now, eta=eta))
    assert store.get("countdown").state is JobState.SCHEDULED
    for _ in range(3 * 24 + 23):  # every hour, up to 23 h past the eta
        later(clock, store, HOUR)
    assert store.get("countdown").state is JobState.SCHEDULED
    later(clock, store, 2 * HOUR)
    assert "countdown" not in store


def test_a_long_task_stays_while_its_worker_heartbeats(clock):
    store, feed = make_store(clock, stale_after=HOUR)
    feed(ev.heartbeat("w1@host", clock.now))
    feed(ev.received("long", clock.now))
    feed(ev.started("long", clock.now))
    feed(ev.received("orphan", clock.now, hostname="w2@host"))
    feed(ev.started("orphan", clock.now, hostname="w2@host"))  # w2 sends no heartbeats
    for _ in range(4):
        clock.advance(HOUR / 2)
        feed(ev.heartbeat("w1@host", clock.now))
        store.age_out(clock.now)
    assert store.get("long").state is JobState.ACTIVE
    assert "orphan" not in store


def test_workers_offline_for_long_are_forgotten_and_come_back_when_they_return(clock):
    store, feed = make_store(clock, forget_workers_after=DAY)
    feed(ev.heartbeat("pod-1@k8s", clock.now))
    feed(ev.heartbeat("pod-2@k8s", clock.now))
    feed(ev.event("worker-offline", None, clock.now, "pod-1@k8s"))
    for _ in range(25):
        clock.advance(HOUR)
        feed(ev.heartbeat("pod-2@k8s", clock.now))
        store.age_out(clock.now)
    assert [w.hostname for w in store.workers()] == ["pod-2@k8s"]
    assert store.stats().workers_forgotten == 1
    feed(ev.heartbeat("pod-1@k8s", clock.now))
    assert [w.hostname for w in store.workers()] == ["pod-1@k8s", "pod-2@k8s"]


def test_bad_event_counters_stay_small_whatever_reasons_arrive(store):
    for i in range(5_000):
        store.record_bad_event(f"unknown event type 'custom-{i}'", "sample")
    store.record_bad_event("x" * 10_000)
    stats = store.stats()
    assert stats.bad_events == 5_001
    assert len(stats.bad_by_reason) == MAX_BAD_REASONS + 1
    assert stats.bad_by_reason[OTHER_BAD_REASONS] == 5_001 - MAX_BAD_REASONS
    assert max(len(reason) for reason in stats.bad_by_reason) <= 200
    assert len(store.bad_event_samples()) <= 200


def test_diagnostics_show_what_was_aged_out_crowded_out_and_forgotten(clock):
    store, feed = make_store(clock, max_jobs=2, stale_after=HOUR, forget_workers_after=HOUR)
    feed(ev.heartbeat("w1@host", clock.now))
    feed(ev.sent("a", clock.now))
    feed(ev.sent("b", clock.now))
    feed(ev.sent("c", clock.now))  # crowds out a
    later(clock, store, 2 * HOUR)  # b and c age out, w1 is forgotten
    console = Console(width=100, record=True, color_system=None)
    console.print(render_diagnostics(store))
    text = console.export_text()
    assert "unfinished jobs aged out (no event for 1 h)" in text
    assert "unfinished jobs forgotten to make room" in text
    assert "workers forgotten (offline for 1 h)" in text
    lines = {line.split("  ")[0].strip(): line.split()[-1] for line in text.splitlines() if line}
    assert lines["unfinished jobs aged out (no event for 1 h)"] == "2"
    assert lines["unfinished jobs forgotten to make room"] == "1"
    assert lines["workers forgotten (offline for 1 h)"] == "1"


def test_a_live_monitor_ages_out_a_job_sent_where_no_worker_listens(tmp_path):
    cluster = Cluster("filesystem", tmp_path)  # no worker at all
    store = JobStore(stale_after=1.0)
    receiver = ReceiverThread(cluster.app, store, resync=False, broadcasts=False)
    receiver.start()
    try:
        wait_for(lambda: store.status.state == "connected", 10, "the connection")
        job = cluster.send("demo.add", 1, 2)
        wait_for(lambda: job.id in store, 10, "the task-sent event")
        assert store.get(job.id).state is JobState.QUEUED
        wait_for(lambda: job.id not in store, 10, "the job to age out")
        assert store.stats().aged_out == 1
    finally:
        receiver.stop()
        cluster.close()
