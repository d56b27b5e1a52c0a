"""A worker's warm shutdown: it says goodbye (worker-offline) and finishes its running jobs.

Seen in a trial: Ctrl-C on a worker running two slow tasks made the TUI call
both lost at once, and 20 s later they completed.  Every deploy restarts
workers this way, so every deploy raised a false alarm.
"""

import time

from sluice_tui.celery_adapter.receiver import worker_notice
from sluice_tui.model.job import WORKER_LOST
from sluice_tui.model.states import JobState
from sluice_tui.model.store import (
    RESTARTED,
    SHUTDOWN_OVERDUE,
    SHUTTING_DOWN,
    STOPPED,
    WorkerNews,
)
from sluice_tui.model.worker_info import TaskLimits, WorkerFigures
from sluice_tui.model.workers import SHUTDOWN_GRACE, TIME_LIMIT_SLACK
from sluice_tui.ui.screens.workers import worker_status
from tests import events as ev
from tests.test_journal_core import Monitor, fresh_restore, same_jobs

HOST = "w1@host"


def offline(ts: float, hostname: str = HOST) -> dict:
    return ev.event("worker-offline", None, ts, hostname)


def online(ts: float, hostname: str = HOST) -> dict:
    body = ev.event("worker-online", None, ts, hostname, freq=2.0, sw_ident="py-celery")
    body["local_received"] = ts
    return body


def start(feed, job_id: str, ts: float, name: str = "proj.slow", hostname: str = HOST) -> None:
    feed(ev.received(job_id, ts, name=name, hostname=hostname))
    feed(ev.started(job_id, ts + 0.1, hostname=hostname))


def never_lost(store, job_id: str) -> bool:
    job = store.get(job_id)
    return WORKER_LOST not in (job.extra or {}) and all(
        e.event != "worker lost" for e in job.history
    )


def shut_down_with_two_jobs_running(feed, store, clock) -> float:
    """Worker w1 runs a and b, then says goodbye; returns when the stream connected."""
    watched_since = clock.now
    feed(ev.heartbeat(HOST, clock.now))
    start(feed, "a", clock.now)
    start(feed, "b", clock.now)
    clock.advance(1)
    feed(offline(clock.now))
    clock.advance(0.5)
    return watched_since


def test_a_goodbye_while_jobs_run_is_shutting_down_and_the_jobs_stay_running(feed, store, clock):
    watched_since = shut_down_with_two_jobs_running(feed, store, clock)
    assert store.sweep(clock.now, watched_since) == [WorkerNews(HOST, SHUTTING_DOWN, 2)]
    for job_id in "ab":
        assert store.get(job_id).state is JobState.ACTIVE
        assert store.rows([job_id])[job_id].note is None
        assert never_lost(store, job_id)
    (worker,) = store.workers()
    assert not worker.online  # it is offline: it takes no more work
    # The workers screen says so while its jobs finish (seen in a trial: only a notice did).
    assert worker.finishing == 2 and worker_status(worker).plain == "stopping"
    # Told once, and nothing is lost while it finishes, well past heartbeat windows.
    for _ in range(5):
        clock.advance(60)
        assert store.sweep(clock.now, watched_since) == []
    assert store.sweep_workers(clock.now, watched_since) == {}
    assert store.get("a").state is JobState.ACTIVE
    assert store.stats().events == 6  # nothing of ours counted as an event


def test_the_jobs_of_a_worker_shutting_down_complete_with_their_own_events(feed, store, clock):
    watched_since = shut_down_with_two_jobs_running(feed, store, clock)
    store.sweep(clock.now, watched_since)
    clock.advance(20)
    feed(ev.succeeded("a", clock.now))
    assert store.sweep(clock.now, watched_since) == []
    clock.advance(5)
    feed(ev.failed("b", clock.now))
    assert store.sweep(clock.now, watched_since) == []
    assert store.get("a").state is JobState.COMPLETED
    assert store.get("b").state is JobState.FAILED
    assert never_lost(store, "a") and never_lost(store, "b")
    assert worker_status(store.workers()[0]).plain == "offline"  # done: just offline
    clock.advance(SHUTDOWN_GRACE * 2)  # long after: nothing left to call lost
    assert store.sweep(clock.now, watched_since) == []
    assert never_lost(store, "a")


def test_a_goodbye_with_nothing_running_is_just_offline(feed, store, clock):
    feed(ev.heartbeat(HOST, clock.now))
    feed(offline(clock.now + 1))
    assert store.sweep(clock.now + 1.5, clock.now) == [WorkerNews(HOST, STOPPED, 0)]
    assert worker_notice(WorkerNews(HOST, STOPPED, 0)) is None  # no notice for it


def test_a_new_process_under_the_same_name_makes_the_old_ones_jobs_lost(feed, store, clock):
    watched_since = shut_down_with_two_jobs_running(feed, store, clock)
    store.sweep(clock.now, watched_since)
    clock.advance(10)
    feed(ev.succeeded("a", clock.now))  # the old process finished one of them...
    clock.advance(30)
    feed(online(clock.now))  # ...and was killed; its successor comes up
    back = clock.now
    start(feed, "c", clock.now + 1)  # the new process's own job
    clock.advance(2)
    assert store.sweep(clock.now, watched_since) == [WorkerNews(HOST, RESTARTED, 1)]
    b = store.get("b")
    assert b.state is JobState.UNKNOWN and b.extra[WORKER_LOST] == HOST
    assert store.rows(["b"])["b"].note == "worker lost"
    assert b.history[-1].event == "worker lost" and b.history[-1].timestamp == back
    assert store.get("a").state is JobState.COMPLETED and never_lost(store, "a")
    assert store.get("c").state is JobState.ACTIVE and never_lost(store, "c")
    assert store.workers()[0].online
    assert store.sweep(clock.now + 1, watched_since) == []  # once


def test_a_quick_restart_between_two_sweeps_still_loses_the_old_jobs(feed, store, clock):
    watched_since = shut_down_with_two_jobs_running(feed, store, clock)
    feed(online(clock.now))  # no sweep saw the goodbye
    feed(ev.succeeded("a", clock.now + 0.1))  # news of a, from before the comeback
    start(feed, "c", clock.now + 1)
    assert store.sweep_workers(clock.now + 1.5, watched_since) == {HOST: 1}
    assert store.get("b").state is JobState.UNKNOWN
    assert store.get("a").state is JobState.COMPLETED
    assert store.get("c").state is JobState.ACTIVE


def test_a_job_the_new_process_takes_up_again_is_not_lost(feed, store, clock):
    """acks_late: the broker redelivers the old process's job to its successor."""
    watched_since = shut_down_with_two_jobs_running(feed, store, clock)
    store.sweep(clock.now, watched_since)
    feed(online(clock.now + 5))
    feed(ev.received("b", clock.now + 6))  # b runs again, in the new process
    assert store.sweep_workers(clock.now + 6.5, watched_since) == {HOST: 1}  # a only
    assert store.get("a").state is JobState.UNKNOWN
    assert never_lost(store, "b")


def test_no_news_for_the_grace_makes_the_jobs_lost(feed, store, clock):
    watched_since = shut_down_with_two_jobs_running(feed, store, clock)
    store.sweep(clock.now, watched_since)
    clock.advance(600)
    feed(ev.succeeded("a", clock.now))  # news from it: the quiet starts again
    news_at = clock.now
    assert store.sweep(clock.now, watched_since) == []
    clock.advance(SHUTDOWN_GRACE - 1)
    assert store.sweep(clock.now, watched_since) == []
    assert store.get("b").state is JobState.ACTIVE
    clock.advance(1)
    assert store.sweep(clock.now, watched_since) == [WorkerNews(HOST, SHUTDOWN_OVERDUE, 1)]
    b = store.get("b")
    assert b.state is JobState.UNKNOWN and b.extra[WORKER_LOST] == HOST
    assert b.history[-1].timestamp == news_at + SHUTDOWN_GRACE  # when it became overdue
    assert store.get("a").state is JobState.COMPLETED
    assert store.sweep(clock.now + 600, watched_since) == []  # once
    feed(ev.succeeded("b", clock.now + 700))  # it did finish after all: shown so
    assert store.get("b").state is JobState.COMPLETED


def test_a_known_time_limit_longer_than_the_grace_is_waited_for(feed, store, clock):
    limit = SHUTDOWN_GRACE * 2
    store.worker_info.record_figures(
        [WorkerFigures(HOST, clock.now, limits={"proj.long": TaskLimits(time_limit=str(limit))})]
    )
    watched_since = clock.now
    feed(ev.heartbeat(HOST, clock.now))
    start(feed, "long", clock.now, name="proj.long")
    start(feed, "short", clock.now)
    started = store.get("long").history[-1].timestamp
    feed(offline(clock.now + 1))
    assert store.sweep(clock.now + 1.5, watched_since) == [WorkerNews(HOST, SHUTTING_DOWN, 2)]
    clock.advance(SHUTDOWN_GRACE + 2)
    assert store.sweep_workers(clock.now, watched_since) == {HOST: 1}
    assert store.get("short").state is JobState.UNKNOWN
    assert store.get("long").state is JobState.ACTIVE  # it may run up to its limit
    clock.now = started + limit + TIME_LIMIT_SLACK
    assert store.sweep_workers(clock.now, watched_since) == {HOST: 1}
    assert store.get("long").state is JobState.UNKNOWN


def test_silence_without_a_goodbye_is_still_caught_in_two_heartbeat_intervals(feed, store, clock):
    """A worker killed with SIGKILL sends no goodbye: its jobs are lost at once, as before."""
    watched_since = clock.now
    feed(ev.heartbeat(HOST, clock.now, freq=1.0))
    start(feed, "a", clock.now)
    clock.advance(1.99)
    assert store.sweep(clock.now, watched_since) == []
    clock.advance(0.02)
    assert store.sweep(clock.now, watched_since) == [WorkerNews(HOST, STOPPED, 1)]
    assert store.get("a").state is JobState.UNKNOWN
    assert store.get("a").extra[WORKER_LOST] == HOST


def test_a_goodbye_after_silence_already_judged_changes_nothing(feed, store, clock):
    watched_since = clock.now
    feed(ev.heartbeat(HOST, clock.now, freq=1.0))
    start(feed, "a", clock.now)
    clock.advance(3)
    assert store.sweep_workers(clock.now, watched_since) == {HOST: 1}
    feed(offline(clock.now))  # it was only stalled, and now stops
    assert store.sweep(clock.now + 1, watched_since) == []
    assert store.get("a").state is JobState.UNKNOWN


def test_the_notices_say_what_happened_in_plain_words():
    shutting = worker_notice(WorkerNews(HOST, SHUTTING_DOWN, 2))
    assert shutting == (
        f"worker {HOST} is shutting down (warm shutdown): 2 jobs still running on it "
        "will finish first"
    )
    assert "lost" not in shutting and "unknown" not in shutting
    stopped = worker_notice(WorkerNews(HOST, STOPPED, 1))
    assert "no heartbeat" in stopped and "1 running job now unknown" in stopped
    restarted = worker_notice(WorkerNews(HOST, RESTARTED, 1))
    assert "new process" in restarted and "'worker lost'" in restarted
    overdue = worker_notice(WorkerNews(HOST, SHUTDOWN_OVERDUE, 3))
    assert "3 jobs" in overdue and f"{SHUTDOWN_GRACE / 60:.0f} min" in overdue
    assert "'worker lost'" in overdue


def test_the_journal_gives_back_a_warm_shutdown_as_the_user_saw_it(tmp_path):
    """The store's marks go through apply/annotate, so a restore replays them."""
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    t = time.time() - 60
    m.receive(ev.heartbeat(HOST, t), t)
    for job_id in ("done", "lost", "running"):
        host = "w2@host" if job_id == "running" else HOST
        m.receive(ev.received(job_id, t + 1, name="proj.slow", hostname=host), t + 1)
        m.receive(ev.started(job_id, t + 1.1, hostname=host), t + 1.1)
    m.receive(ev.heartbeat("w2@host", t + 2), t + 2)
    m.receive(offline(t + 2), t + 2)
    m.receive(offline(t + 2, "w2@host"), t + 2)
    assert m.store.sweep_workers(t + 3, t) == {}
    m.receive(ev.succeeded("done", t + 4), t + 4)
    m.receive(online(t + 5), t + 5)  # a new process: "lost" was the old one's
    assert m.store.sweep_workers(t + 6, t) == {HOST: 1}
    assert m.journal.stop() and m.journal.problem is None

    store, _ = fresh_restore(path)
    assert same_jobs(store, m.store)
    assert store.get("lost").extra[WORKER_LOST] == HOST
    assert store.get("done").state is JobState.COMPLETED and never_lost(store, "done")
    assert store.get("running").state is JobState.ACTIVE  # w2 is still shutting down
