"""Worker figures from inspect replies, throughput from heartbeats, and control commands."""

from __future__ import annotations

import pytest

from sluice_tui.actions import ActionRefused, ActionsGate, WorkerAction, worker_command
from sluice_tui.model.store import JobStore
from sluice_tui.model.worker_info import (
    THROUGHPUT_SAMPLES,
    TaskLimits,
    Throughput,
    figures_from_replies,
    held_from_replies,
)

A = WorkerAction

# Shaped as a Celery 5 prefork worker answers (trimmed).
STATS = {
    "pool": {
        "implementation": "celery.concurrency.prefork:TaskPool",
        "max-concurrency": 4,
        "processes": [101, 102, 103],
        "max-tasks-per-child": "N/A",
    },
    "prefetch_count": 12,
    "autoscaler": {"max": 6, "min": 2, "current": 3, "qty": 0},
    "total": {"demo.add": 40, "demo.fail": 3},
    "uptime": 61,
}
QUEUES = [{"name": "celery", "exchange": {"name": "celery"}}, {"name": "bulk"}]
REGISTERED = [
    "demo.add [rate_limit=10/m]",
    "demo.fail",
    "demo.slow [time_limit=9 soft_time_limit=5]",
]


def test_figures_read_pool_autoscale_prefetch_queues_tasks_and_limits():
    f = figures_from_replies("w1@h", 5.0, STATS, QUEUES, REGISTERED)
    assert (f.pool, f.concurrency, f.pool_size, f.prefetch) == ("prefork", 4, 3, 12)
    assert f.autoscale == (6, 2)
    assert f.queues == ("bulk", "celery")
    assert f.registered == ("demo.add", "demo.fail", "demo.slow")
    assert f.limits == {
        "demo.add": TaskLimits(rate_limit="10/m"),
        "demo.slow": TaskLimits(time_limit="9", soft_time_limit="5"),
    }
    assert f.totals == {"demo.add": 40, "demo.fail": 3} and f.uptime == 61.0


def test_a_missing_or_malformed_reply_is_unknown_not_zero():
    f = figures_from_replies("w1@h", 5.0, {"pool": "nonsense", "prefetch_count": True}, None, 7)
    assert (f.pool, f.concurrency, f.pool_size, f.prefetch) == (None, None, None, None)
    assert f.queues is None and f.registered is None and f.autoscale is None
    threads = figures_from_replies(
        "w2@h",
        5.0,
        {"pool": {"implementation": "celery.concurrency.thread:TaskPool", "max-concurrency": 8}},
    )
    assert (threads.pool, threads.pool_size) == ("thread", 8)  # no processes list: the limit


def test_held_jobs_read_active_reserved_and_scheduled():
    active = [{"id": "a1", "name": "demo.slow", "argsrepr": "(3,)", "time_start": 100.5}]
    reserved = [{"id": "r1", "name": "demo.add", "args": [1, 2]}, "junk", {"no": "id"}]
    scheduled = [{"eta": "2030-01-01T00:00:00+00:00", "request": {"id": "s1", "name": "x"}}]
    held = held_from_replies("w1@h", 1.0, active, reserved, scheduled)
    assert [(j.kind, j.id) for j in held.jobs] == [
        ("active", "a1"),
        ("reserved", "r1"),
        ("scheduled", "s1"),
    ]
    assert held.jobs[0].started == 100.5 and held.jobs[1].args == "[1, 2]"
    assert held.jobs[2].eta.startswith("2030") and held.replied
    assert not held_from_replies("w1@h", 1.0, None, None, None).replied


def test_throughput_is_tasks_per_second_between_heartbeats():
    series = Throughput()
    for at, processed in ((0.0, 10), (2.0, 20), (4.0, 20), (4.0, 99), (3.0, 5), (6.0, 2)):
        series.add(at, processed)
    # 10 tasks in 2 s, none, then a restart (the count fell): 0, not negative.
    assert series.rates() == (5.0, 0.0, 0.0)
    for n in range(THROUGHPUT_SAMPLES * 2):
        series.add(10.0 + n, n)
    assert len(series.rates()) == THROUGHPUT_SAMPLES - 1  # bounded


@pytest.mark.parametrize(
    ("action", "fields", "error"),
    [
        (A.POOL_GROW, {"n": "0"}, "at least 1"),
        (A.POOL_SHRINK, {"n": "two"}, "whole number"),
        (A.AUTOSCALE, {"max": "2", "min": "3"}, "min must not be more than max"),
        (A.ADD_CONSUMER, {"queue": "two words"}, "no spaces"),
        (A.RATE_LIMIT, {"task": "demo.add", "rate": "fast"}, "10/m"),
        (A.TIME_LIMIT, {"task": "demo.add", "soft": "9", "hard": "5"}, "soft limit"),
        (A.TIME_LIMIT, {"task": "demo.add", "soft": "nan"}, "seconds"),
        (A.SHUTDOWN, {"confirm": "w1"}, "type the worker's name, w1@h"),
    ],
)
def test_what_was_typed_is_checked_before_anything_is_sent(action, fields, error):
    with pytest.raises(ActionRefused, match=error):
        worker_command(action, "w1@h", **fields)


def test_commands_read_as_what_they_do():
    assert worker_command(A.POOL_GROW, "w@h", n="").n == 1  # empty: one process
    limit = worker_command(A.TIME_LIMIT, "w@h", task="demo.add", soft="", hard="30")
    assert limit.describe() == "time limits of demo.add: soft none, hard 30 s"
    off = worker_command(A.RATE_LIMIT, "w@h", task="demo.add", rate="0")
    assert off.describe() == "rate limit demo.add to 0 (no limit)"


class NoCluster:
    """Fails the test if the gate lets anything through."""

    def __getattr__(self, name):
        pytest.fail(f"read-only gate called the cluster: {name}")


def test_read_only_gate_never_reaches_the_cluster():
    gate = ActionsGate(JobStore(), NoCluster(), read_only=True)
    for action in A:
        with pytest.raises(ActionRefused, match="read-only mode"):
            gate.check_worker_control(action)
    with pytest.raises(ActionRefused, match="read-only"):
        gate.control_worker(worker_command(A.SHUTDOWN, "w@h", confirm="w@h"))
    with pytest.raises(ActionRefused, match="read-only"):
        gate.refresh_workers()
    with pytest.raises(ActionRefused, match="read-only"):
        gate.refresh_held("w@h")
    assert "read-only" in gate.workers.status.text
    assert [(r.action, r.ok, r.worker) for r in gate.log] == [(A.SHUTDOWN, False, "w@h")]


def test_heartbeats_give_each_worker_a_throughput_series(store, clock):
    for at, processed in ((0.0, 100), (2.0, 104), (4.0, 104), (6.0, 110)):
        store.apply_worker("w1@h", "heartbeat", {"active": 1, "processed": processed}, at)
    store.apply_worker("w2@h", "heartbeat", {"active": 0}, 6.0)  # says no count
    rates = {w.hostname: w.rates for w in store.workers(6.0)}
    assert rates == {"w1@h": (2.0, 0.0, 3.0), "w2@h": ()}
