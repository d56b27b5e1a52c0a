"""A worker that dies mid-task: its running jobs must not stay `active` forever."""

from sluice_tui.model.job import WORKER_LOST
from sluice_tui.model.states import JobState
from tests import events as ev


def test_silent_worker_makes_its_running_jobs_unknown_after_two_heartbeat_intervals(
    feed, store, clock
):
    watched_since = clock.now
    feed(ev.heartbeat("w1@host", clock.now, freq=1.0))
    feed(ev.received("a", clock.now))
    feed(ev.started("a", clock.now + 0.1))
    feed(ev.received("b", clock.now))  # reserved, not running: the broker redelivers it
    feed(ev.received("c", clock.now, hostname="w2@host"))
    feed(ev.started("c", clock.now + 0.1, hostname="w2@host"))
    feed(ev.heartbeat("w2@host", clock.now, freq=60.0))
    last_heartbeat = clock.now

    clock.advance(1.99)
    assert store.sweep_workers(clock.now, watched_since) == {}
    assert store.get("a").state is JobState.ACTIVE

    clock.advance(0.02)  # 2.01 s: past twice the 1 s interval
    assert store.sweep_workers(clock.now, watched_since) == {"w1@host": 1}
    a = store.get("a")
    assert a.state is JobState.UNKNOWN  # may be lost, redelivered or still running
    assert a.extra[WORKER_LOST] == "w1@host"
    assert store.rows(["a"])["a"].note == "worker lost"
    lost = a.history[-1]
    assert lost.event == "worker lost" and lost.hostname == "w1@host"
    assert lost.timestamp == last_heartbeat + 2.0  # when it became overdue, not when we looked
    assert store.get("b").state is JobState.QUEUED
    assert store.get("c").state is JobState.ACTIVE  # another worker, still heartbeating
    # Marking happens once, and is not counted as an event.
    assert store.sweep_workers(clock.now + 130, watched_since) == {"w2@host": 1}
    assert store.stats().events == 7


def test_offline_event_with_nothing_running_needs_no_heartbeat_window(feed, store, clock):
    """A goodbye while jobs run is a warm shutdown: see tests/test_warm_shutdown.py."""
    feed(ev.heartbeat("w1@host", clock.now))
    feed(ev.received("a", clock.now))  # reserved, not running
    feed(ev.event("worker-offline", None, clock.now + 0.5, "w1@host"))
    assert store.sweep_workers(clock.now + 0.6, clock.now) == {"w1@host": 0}
    assert store.get("a").state is JobState.QUEUED


def test_heartbeats_missed_while_the_monitor_was_disconnected_prove_nothing(feed, store, clock):
    feed(ev.heartbeat("w1@host", clock.now, freq=2.0))
    feed(ev.received("a", clock.now))
    feed(ev.started("a", clock.now))
    clock.advance(60)  # the broker was away for a minute; we just reconnected
    reconnected = clock.now
    assert store.sweep_workers(clock.now, reconnected) == {}
    assert store.get("a").state is JobState.ACTIVE
    clock.advance(4.01)  # a full window after reconnecting, still silent
    assert store.sweep_workers(clock.now, reconnected) == {"w1@host": 1}


def run_a_job_then_lose_its_worker(feed, store, clock) -> None:
    feed(ev.heartbeat("w1@host", clock.now))
    feed(ev.received("a", clock.now))
    feed(ev.started("a", clock.now))
    clock.advance(5)
    assert store.sweep_workers(clock.now, clock.now - 5) == {"w1@host": 1}
    assert store.get("a").state is JobState.UNKNOWN


def test_a_worker_that_was_only_out_of_touch_can_still_complete_its_job(feed, store, clock):
    run_a_job_then_lose_its_worker(feed, store, clock)
    feed(ev.heartbeat("w1@host", clock.now))
    feed(ev.succeeded("a", clock.now))
    a = store.get("a")
    assert a.state is JobState.COMPLETED
    assert store.rows(["a"])["a"].note is None
    assert store.workers()[0].online


def test_a_wakeup_heartbeat_does_not_stretch_the_real_interval(feed, store, clock):
    """Workers answer Celery's `heartbeat` control request with freq=5 and no `active`."""
    feed(ev.heartbeat("w1@host", clock.now, freq=1.0))
    wakeup = ev.event("worker-heartbeat", None, clock.now, "w1@host", freq=5)
    wakeup["local_received"] = clock.now + 0.5
    feed(wakeup)
    assert store.workers()[0].freq == 1.0
    clock.advance(2.6)  # past twice the real 1 s interval after the wakeup reply
    assert not store.workers()[0].online


def test_a_follower_whose_collector_stopped_does_not_call_its_workers_offline(feed, store, clock):
    """Seen in a trial: the collector quit, and a TUI reading its journal said the
    worker that was fine had gone offline 10 s before (nobody listened to it)."""
    store.set_status("following collector pid 42", "redis://h")
    feed(ev.heartbeat("w1@host", clock.now, freq=2.0))
    clock.advance(3)
    store.set_status("writer stopped", "redis://h", hearing=False, deaf_since=clock.now - 2)
    clock.advance(600)
    assert store.worker_counts() == (1, 1)
    store.set_status("following collector pid 43", "redis://h")  # a collector writes again
    assert store.worker_counts() == (0, 1)


def test_a_lost_job_redelivered_by_the_broker_runs_again(feed, store, clock):
    """With acks_late the broker hands a dead worker's job to another worker."""
    run_a_job_then_lose_its_worker(feed, store, clock)
    feed(ev.received("a", clock.now, hostname="w2@host"))
    feed(ev.started("a", clock.now + 0.1, hostname="w2@host"))
    a = store.get("a")
    assert a.state is JobState.ACTIVE and a.worker == "w2@host"
    assert store.rows(["a"])["a"].note is None


def test_workers_stay_online_while_the_monitor_itself_is_cut_off(feed, store, clock):
    """Seen in a trial: 'workers 0/1 online' four seconds into the monitor's own outage."""
    store.set_status("connected", "redis://h")
    feed(ev.heartbeat("w1@host", clock.now, freq=2.0))
    clock.advance(1)
    store.set_status("reconnecting", "redis://h", "Connection refused")
    clock.advance(30)
    store.set_status("reconnecting", "redis://h", "Connection refused")  # a retry
    assert store.worker_counts() == (1, 1)
    assert store.workers()[0].online
    store.set_status("connected", "redis://h")  # back: now its silence counts again
    assert store.worker_counts() == (0, 1)
    feed(ev.heartbeat("w1@host", clock.now, freq=2.0))
    assert store.worker_counts() == (1, 1)
