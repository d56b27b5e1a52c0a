"""Worker controls against real workers on Redis: each one really changes the worker.

One cluster for the module: w1 (prefork, 2 processes) and w2 (prefork,
autoscaling 3..1).  w2 is shut down by the last test.
"""

from __future__ import annotations

import pytest
from celery import Celery

from sluice_tui.actions import ActionRefused, ActionsGate, WorkerAction, worker_command
from sluice_tui.celery_adapter.control import CeleryControl
from sluice_tui.model.store import JobStore
from sluice_tui.model.worker_info import WorkerFigures
from tests.cluster import Cluster, require_transport, wait_for

pytestmark = pytest.mark.broker
A = WorkerAction


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_transport("redis")
    cluster = Cluster("redis", tmp_path_factory.mktemp("worker-control"))
    try:
        cluster.start_worker("w1", 2)
        cluster.start_worker("w2", 2, "--autoscale=3,1")
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def gate(cluster):
    return ActionsGate(JobStore(), CeleryControl(cluster.app))


def host(cluster: Cluster, name: str) -> str:
    return f"{name}@{cluster.namespace}"


def figures(gate: ActionsGate, hostname: str) -> WorkerFigures | None:
    gate.refresh_workers([hostname])
    return gate.workers.figures(hostname)


def test_figures_say_pool_prefetch_queues_and_tasks(cluster, gate):
    w1 = host(cluster, "w1")
    found = figures(gate, w1)
    assert found is not None
    assert (found.pool, found.concurrency, found.pool_size) == ("prefork", 2, 2)
    assert found.prefetch == 2 * cluster.app.conf.worker_prefetch_multiplier
    assert found.queues == (f"{cluster.namespace}.tasks",)
    assert "demo.add" in (found.registered or ())
    assert found.autoscale is None
    assert figures(gate, host(cluster, "w2")).autoscale == (3, 1)


def test_pool_grow_then_shrink_changes_the_pool_size(cluster, gate):
    w1 = host(cluster, "w1")
    said = gate.control_worker(worker_command(A.POOL_GROW, w1, n="1"))
    assert "pool will grow" in said
    wait_for(lambda: figures(gate, w1).pool_size == 3, 15, "a third process")
    gate.control_worker(worker_command(A.POOL_SHRINK, w1, n="1"))
    wait_for(lambda: figures(gate, w1).pool_size == 2, 15, "back to two processes")
    assert [r.ok for r in gate.log] == [True, True]
    assert gate.log[-1].worker == w1 and gate.log[-1].action is A.POOL_SHRINK


def test_autoscale_changes_the_range_and_pool_grow_is_refused_there(cluster, gate):
    w2 = host(cluster, "w2")
    said = gate.control_worker(worker_command(A.AUTOSCALE, w2, max="4", min="2"))
    assert "autoscale now max=4 min=2" in said
    assert figures(gate, w2).autoscale == (4, 2)
    with pytest.raises(ActionRefused, match=r"refused by the worker.*not supported with autoscale"):
        gate.control_worker(worker_command(A.POOL_GROW, w2, n="1"))
    assert not gate.log[-1].ok and "refused" in gate.log[-1].outcome


def test_add_then_cancel_consumer_shows_in_active_queues(cluster, gate):
    w1, extra = host(cluster, "w1"), f"{cluster.namespace}.extra"
    # The worker replies before its consumer loop has made the change (Celery
    # schedules it with call_soon): its next answers show it.
    gate.control_worker(worker_command(A.ADD_CONSUMER, w1, queue=extra))
    wait_for(lambda: extra in figures(gate, w1).queues, 15, "the new queue consumed")
    gate.control_worker(worker_command(A.CANCEL_CONSUMER, w1, queue=extra))
    wait_for(lambda: extra not in figures(gate, w1).queues, 15, "the queue no longer consumed")


def test_rate_and_time_limits_are_what_the_worker_then_reports(cluster, gate):
    w1 = host(cluster, "w1")
    gate.control_worker(worker_command(A.RATE_LIMIT, w1, task="demo.add", rate="7/m"))
    gate.control_worker(worker_command(A.TIME_LIMIT, w1, task="demo.add", soft="5", hard="9"))
    limits = figures(gate, w1).limits["demo.add"]
    assert limits.rate_limit == "7/m"
    assert (limits.soft_time_limit, limits.time_limit) == ("5.0", "9.0")
    with pytest.raises(ActionRefused, match="unknown task"):
        gate.control_worker(worker_command(A.RATE_LIMIT, w1, task="no.such.task", rate="1/s"))


def test_a_control_nobody_answers_says_it_timed_out(cluster, gate):
    with pytest.raises(ActionRefused, match="timed out, no reply from ghost@nowhere"):
        gate.control_worker(worker_command(A.POOL_GROW, "ghost@nowhere", n="1"))
    assert not gate.log[-1].ok


def test_read_only_refuses_every_control_and_the_worker_is_unchanged(cluster):
    w1 = host(cluster, "w1")
    gate = ActionsGate(JobStore(), CeleryControl(cluster.app), read_only=True)
    commands = [
        worker_command(A.POOL_GROW, w1, n="1"),
        worker_command(A.POOL_SHRINK, w1, n="1"),
        worker_command(A.AUTOSCALE, w1, max="5", min="1"),
        worker_command(A.ADD_CONSUMER, w1, queue="read-only-queue"),
        worker_command(A.CANCEL_CONSUMER, w1, queue=f"{cluster.namespace}.tasks"),
        worker_command(A.RATE_LIMIT, w1, task="demo.add", rate="1/h"),
        worker_command(A.TIME_LIMIT, w1, task="demo.add", soft="1", hard="2"),
        worker_command(A.SHUTDOWN, w1, confirm=w1),
    ]
    for command in commands:
        with pytest.raises(ActionRefused, match="read-only mode"):
            gate.control_worker(command)
    assert [r.ok for r in gate.log] == [False] * len(commands)
    with pytest.raises(ActionRefused, match="read-only"):
        gate.refresh_workers()
    after = figures(ActionsGate(JobStore(), CeleryControl(cluster.app)), w1)
    assert after.pool_size == 2 and after.queues == (f"{cluster.namespace}.tasks",)
    assert cluster.processes[0].poll() is None  # still running


def test_shutdown_stops_the_worker(cluster, gate):
    w2 = host(cluster, "w2")
    said = gate.control_worker(worker_command(A.SHUTDOWN, w2, confirm=w2))
    assert "no reply" in said
    worker = cluster.processes[1]
    wait_for(lambda: worker.poll() is not None, 20, "w2 to exit")
    assert gate.log[-1].ok and gate.log[-1].action is A.SHUTDOWN
    assert gate.refresh_workers([w2]) == []  # it no longer answers


def test_read_only_publishes_nothing(own_redis):
    """Every control and every question to the workers, in --read-only: not one message."""
    app = Celery("read-only-controls", broker=own_redis.url, set_as_current=False)
    gate = ActionsGate(JobStore(), CeleryControl(app), read_only=True)
    for action in A:
        fields = {"n": "1", "max": "2", "min": "1", "queue": "q", "task": "t", "rate": "1/s"}
        with pytest.raises(ActionRefused, match="read-only"):
            gate.control_worker(worker_command(action, "w@h", confirm="w@h", **fields))
    for ask in (gate.refresh_workers, lambda: gate.refresh_held("w@h")):
        with pytest.raises(ActionRefused, match="read-only"):
            ask()
    assert own_redis.calls("publish") + own_redis.calls("lpush") == 0
    # The same count sees a control that is sent (nobody answers it).
    writable = ActionsGate(JobStore(), CeleryControl(app))
    with pytest.raises(ActionRefused, match="timed out"):
        writable.control_worker(worker_command(A.POOL_GROW, "w@h", n="1"))
    assert own_redis.calls("publish") + own_redis.calls("lpush") > 0
