"""Queue depths from real brokers: a known backlog with no consumer, and a missing queue."""

from __future__ import annotations

import pytest
from kombu import Connection

from sluice_tui.celery_adapter.queues import QueuePoller
from sluice_tui.model.store import JobStore
from tests.cluster import TRANSPORTS, Cluster, require_transport, wait_for

BACKLOG = 7
PRIORITY = 3  # on Redis these go to the queue's priority lists


@pytest.fixture(params=TRANSPORTS)
def cluster(request, tmp_path):
    require_transport(request.param)
    cluster = Cluster(request.param, tmp_path)
    yield cluster
    cluster.close()
    if request.param != "filesystem":
        with Connection(cluster.broker_url, connect_timeout=3) as conn:
            conn.default_channel.queue_delete(f"{cluster.namespace}.orphans")


def test_a_backlog_without_consumer_reports_exactly_its_messages(cluster):
    orphans = f"{cluster.namespace}.orphans"
    for n in range(BACKLOG):
        cluster.send("demo.add", n, n, queue=orphans)
    for n in range(PRIORITY):
        cluster.send("demo.add", n, n, queue=orphans, priority=9)
    store = JobStore()
    poller = QueuePoller(cluster.app, store, extra_queues=[orphans])

    def depth():
        poller.poll_once()
        return store.queues.get(orphans)

    # A filesystem message is a file once the producer returns; Redis and
    # RabbitMQ count it once the broker has it, so poll until it settles.
    wait_for(lambda: depth().messages == BACKLOG + PRIORITY, 10, "the backlog to show")
    queue = store.queues.get(orphans)
    assert not queue.missing and queue.error is None
    if cluster.transport == "redis":
        assert sum(queue.priorities.values()) == BACKLOG + PRIORITY
        assert queue.priorities[0] == BACKLOG  # the plain list; the rest in a priority list
    if cluster.transport == "rabbitmq":
        assert queue.consumers == 0 and queue.stuck
    # The app's own queue is watched without being named.
    assert f"{cluster.namespace}.tasks" in store.queues.watched()


@pytest.mark.parametrize("cluster", [TRANSPORTS[2]], indirect=True)
def test_a_missing_rabbitmq_queue_is_shown_missing_and_never_created(cluster):
    missing = f"{cluster.namespace}.nobody-made-me"
    store = JobStore()
    poller = QueuePoller(cluster.app, store, extra_queues=[missing, "celery-absent-too"])
    poller.poll_once()
    poller.poll_once()  # a second round, after the first closed a channel on the 404
    gone = store.queues.get(missing)
    assert gone.missing and gone.messages is None and gone.error is None
    assert store.queues.get(f"{cluster.namespace}.tasks").error is None
    poller.stop()
    with (
        Connection(cluster.broker_url, connect_timeout=3) as conn,
        pytest.raises(conn.channel_errors),
    ):
        conn.channel().queue_declare(queue=missing, passive=True)
