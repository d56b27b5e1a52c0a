"""The receiver thread against real brokers: status, stop, reconnect, bad messages."""

from __future__ import annotations

import time

from celery import Celery
from kombu import Exchange, Producer

from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests.cluster import Cluster, wait_for
from tests.own_servers import free_port


def send_event(app: Celery, **fields) -> None:
    with app.connection_for_write() as conn:
        dispatcher = app.events.Dispatcher(conn, hostname="w@h", enabled=True)
        dispatcher.send(**fields)
        dispatcher.close()


def test_stop_returns_quickly_while_connected(tmp_path):
    cluster = Cluster("filesystem", tmp_path)
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store)
    receiver.start()
    wait_for(lambda: store.status.state == "connected", 10, "connection")
    started = time.monotonic()
    assert receiver.stop(timeout=2.0)
    assert time.monotonic() - started < 2.0
    assert store.status.state == "stopped"


def test_unreachable_broker_reports_the_error_and_still_stops_fast():
    app = Celery("t", broker=f"redis://:hunter2@127.0.0.1:{free_port()}/0", set_as_current=False)
    store = JobStore()
    receiver = ReceiverThread(app, store)
    receiver.start()
    wait_for(lambda: store.status.state == "reconnecting", 10, "the reconnecting status")
    status = store.status
    assert "refused" in status.error.lower() or "111" in status.error
    assert "hunter2" not in status.broker and "**" in status.broker
    started = time.monotonic()
    assert receiver.stop(timeout=2.0)
    assert time.monotonic() - started < 2.0


def test_reconnects_after_the_broker_restarts(own_redis):
    app = Celery("t", broker=own_redis.url, set_as_current=False)
    store = JobStore()
    receiver = ReceiverThread(app, store)
    receiver.start()
    try:
        wait_for(lambda: store.status.state == "connected", 10, "first connection")
        send_event(app, type="task-received", uuid="before", name="t.a")
        wait_for(lambda: "before" in store, 10, "an event before the outage")

        own_redis.stop()
        wait_for(lambda: store.status.state == "reconnecting", 10, "the outage to be noticed")
        assert store.status.error

        own_redis.start()
        wait_for(lambda: store.status.state == "connected", 30, "reconnection")
        # Events published after reconnecting reach the store again.
        wait_for(lambda: _sent_and_seen(app, store, "after"), 15, "an event after the outage")
        assert receiver.alive
    finally:
        assert receiver.stop()


def _sent_and_seen(app: Celery, store: JobStore, job_id: str) -> bool:
    send_event(app, type="task-started", uuid=job_id)
    return job_id in store


def test_garbage_on_the_event_exchange_is_counted_and_ignored(tmp_path):
    cluster = Cluster("filesystem", tmp_path)
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store)
    receiver.start()
    try:
        wait_for(lambda: store.status.state == "connected", 10, "connection")
        exchange = Exchange(cluster.app.conf.event_exchange, type="topic")
        with cluster.app.connection_for_write() as conn:
            producer = Producer(conn, exchange=exchange)
            producer.publish(
                b"\xff\xfe not json",
                routing_key="task.x",
                content_type="application/json",
                content_encoding="utf-8",
            )
            producer.publish("just a string", routing_key="task.x", serializer="json")
            producer.publish({"type": "task-started"}, routing_key="task.x", serializer="json")
        send_event(cluster.app, type="task-started", uuid="good")
        wait_for(lambda: "good" in store, 10, "the good event after the garbage")
        assert store.get("good").state is JobState.ACTIVE
        # The filesystem transport does not promise delivery order: wait for all three.
        wait_for(lambda: store.stats().bad_events >= 3, 10, "the three bad messages")
        assert store.status.state == "connected"
    finally:
        receiver.stop()
