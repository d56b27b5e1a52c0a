import threading

import pytest

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.states import ALL_STATES, JobState
from sluice_tui.model.store import JobStore
from tests import events as ev

T = 1_700_000_000.0


def finish(feed, job_id, ts):
    feed(ev.received(job_id, ts))
    feed(ev.succeeded(job_id, ts + 0.5))


def recount(store):
    counts = dict.fromkeys(ALL_STATES, 0)
    for job in store.snapshots():
        counts[job.state] += 1
    return counts


def test_counts_track_every_transition(feed, store):
    feed(ev.sent("a", T))
    feed(ev.received("b", T))
    feed(ev.started("b", T + 1))
    feed(ev.received("c", T))
    feed(ev.failed("c", T + 1))
    counts = store.counts()
    assert counts[JobState.QUEUED] == 1
    assert counts[JobState.ACTIVE] == 1
    assert counts[JobState.FAILED] == 1
    assert counts == recount(store)
    assert sum(counts.values()) == len(store) == 3


def test_eviction_takes_finished_jobs_oldest_first_and_keeps_unfinished(clock):
    store = JobStore(max_jobs=3, clock=clock)
    feed = EventAdapter(store, clock=clock)
    feed(ev.started("running", T))  # unfinished, and the oldest
    finish(feed, "done-1", T + 1)
    finish(feed, "done-2", T + 2)
    feed(ev.received("queued", T + 3))  # 4th job: evicts the oldest finished
    assert "running" in store and "done-2" in store and "queued" in store
    assert "done-1" not in store
    assert store.get("done-1").seen is False
    assert store.stats().evicted == 1
    assert store.counts() == recount(store)


def test_running_jobs_are_never_evicted_and_do_not_push_out_a_fresh_result(clock):
    store = JobStore(max_jobs=2, clock=clock)
    feed = EventAdapter(store, clock=clock)
    for i in range(5):
        feed(ev.started(f"r{i}", T + i))
    assert len(store) == 5
    finish(feed, "done", T + 10)
    # Over budget with running jobs: they stay, and so does the job that just finished.
    assert "done" in store
    assert all(f"r{i}" in store for i in range(5))
    finish(feed, "done-2", T + 11)
    assert "done" not in store and "done-2" in store
    assert store.stats().evicted == 1


def test_eviction_order_is_by_finish_time_not_first_sight(clock):
    store = JobStore(max_jobs=2, clock=clock)
    feed = EventAdapter(store, clock=clock)
    feed(ev.started("old-but-slow", T))
    feed(ev.started("young-but-quick", T + 1))
    feed(ev.succeeded("young-but-quick", T + 2))
    feed(ev.succeeded("old-but-slow", T + 3))
    feed(ev.received("new", T + 4))
    assert "young-but-quick" not in store
    assert "old-but-slow" in store


def test_late_event_for_an_evicted_job_does_not_resurrect_it(clock):
    store = JobStore(max_jobs=1, clock=clock)
    feed = EventAdapter(store, clock=clock)
    finish(feed, "a", T)
    finish(feed, "b", T + 1)
    assert "a" not in store
    feed(ev.sent("a", T - 1))  # a producer's late task-sent
    assert "a" not in store
    assert store.stats().dropped_late == 1


def test_evicted_child_leaves_its_parent(clock):
    store = JobStore(max_jobs=2, clock=clock)
    feed = EventAdapter(store, clock=clock)
    feed(ev.started("parent", T))
    feed(ev.received("child", T + 1, parent_id="parent"))
    feed(ev.succeeded("child", T + 2))
    assert store.get("parent").children == ("child",)
    finish(feed, "other", T + 3)
    assert "child" not in store
    assert store.get("parent").children == ()


def test_change_feed_returns_only_what_changed(feed, store):
    feed(ev.received("a", T))
    feed(ev.received("b", T))
    version = store.version
    assert store.changes_since(version).job_ids == frozenset()
    feed(ev.started("b", T + 1))
    feed(ev.received("c", T + 1))
    changes = store.changes_since(version)
    assert changes.job_ids == {"b", "c"}
    assert changes.version == store.version
    assert store.changes_since(changes.version).job_ids == frozenset()


def test_change_feed_tells_a_reader_that_fell_behind_to_reload(clock):
    store = JobStore(clock=clock, feed_limit=10)
    feed = EventAdapter(store, clock=clock)
    for i in range(30):
        feed(ev.received(f"j{i}", T))
    assert store.changes_since(0).job_ids is None  # trimmed away: reload everything
    recent = store.version - 3
    assert store.changes_since(recent).job_ids == {"j27", "j28", "j29"}


def test_change_feed_reports_evictions(clock):
    store = JobStore(max_jobs=2, clock=clock)
    feed = EventAdapter(store, clock=clock)
    finish(feed, "a", T)
    finish(feed, "b0", T)
    version = store.version
    feed(ev.received("b", T + 1))
    assert "a" in store.changes_since(version).job_ids


def test_workers_go_offline_after_two_missed_heartbeats(feed, store, clock):
    version = store.worker_version
    feed(ev.heartbeat("w1@h", clock.now, freq=2.0))
    assert store.changes_since(store.version, version).workers_changed
    (worker,) = store.workers()
    assert worker.online and worker.active == 1 and worker.processed == 10
    assert worker.loadavg == (0.5, 0.4, 0.3) and worker.sw_ver == "5.7.0"
    clock.advance(3.9)
    assert store.workers()[0].online
    assert store.worker_counts() == (1, 1)
    clock.advance(0.2)  # 4.1 s > 2 x 2 s without a heartbeat
    assert not store.workers()[0].online
    assert store.workers()[0].seconds_since_heartbeat(clock.now) == pytest.approx(4.1)


def test_worker_offline_event_is_immediate(feed, store, clock):
    feed(ev.heartbeat("w1@h", clock.now))
    feed(ev.event("worker-offline", None, clock.now, "w1@h"))
    assert not store.workers()[0].online


def test_concurrent_writer_and_readers_stay_consistent():
    store = JobStore(max_jobs=100)
    feed = EventAdapter(store)
    errors = []
    stop = threading.Event()

    def read():
        version = 0
        try:
            while not stop.is_set():
                for job in store.snapshots():
                    timestamps = [t.timestamp for t in job.history]
                    assert timestamps == sorted(timestamps)
                    assert job.state is job.history[-1].state
                changes = store.changes_since(version)
                version = changes.version
                for job_id in changes.job_ids or ():
                    store.get(job_id)
        except Exception as exc:  # reported to the main thread below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for r in readers:
        r.start()
    for i in range(900):
        feed(ev.received(f"j{i}", T + i))
        feed(ev.started(f"j{i}", T + i + 0.1))
        if i % 3:
            feed(ev.succeeded(f"j{i}", T + i + 0.2))
    stop.set()
    for r in readers:
        r.join()
    assert errors == []
    assert store.counts() == recount(store)
    assert len(store) <= 300 + 100  # the unfinished third may exceed the budget
    assert store.counts()[JobState.ACTIVE] == 300


def test_notices_since_returns_only_new_ones(store):
    seen, fresh = store.notices_since(0)
    assert (seen, fresh) == (0, [])
    store.add_notice("one")
    store.add_notice("two")
    seen, fresh = store.notices_since(seen)
    assert (seen, fresh) == (2, ["one", "two"])
    for n in range(60):
        store.add_notice(f"n{n}")
    seen, fresh = store.notices_since(seen)
    assert seen == 62 and fresh[-1] == "n59" and len(fresh) == 50  # older ones were dropped
