"""The receiver thread against real brokers: status, stop, reconnect, bad messages."""

from __future__ import annotations

import pytest
from celery import Celery
from celery.events.event import get_exchange
from kombu import Producer

from sluice_tui.celery_adapter import receiver as receiver_module
from sluice_tui.celery_adapter.receiver import AMQP, KOMBU, REDIS, ReceiverThread
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp
from tests.cluster import (
    TRANSPORTS,
    Cluster,
    event_arrives,
    require_transport,
    wait_for,
)
from tests.own_servers import free_port
from tests.ui_helpers import SIZE, screen_text, wait_in_app

# Generous, for a loaded machine: what is tested is that stop() ends the
# thread at all while it waits, not how fast a busy machine schedules it.
STOP_TIMEOUT = 10.0


def test_stop_ends_the_thread_while_connected(tmp_path):
    cluster = Cluster("filesystem", tmp_path)
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store)
    receiver.start()
    wait_for(lambda: store.status.state == "connected", 10, "connection")
    assert receiver.stop(timeout=STOP_TIMEOUT)
    assert store.status.state == "stopped"


def test_unreachable_broker_reports_the_error_and_stop_cuts_the_backoff_short(monkeypatch):
    # A backoff longer than the stop timeout: only a stop that wakes the
    # waiting thread can pass.
    monkeypatch.setattr(receiver_module, "BACKOFF_START", 10 * STOP_TIMEOUT)
    app = Celery("t", broker=f"redis://:hunter2@127.0.0.1:{free_port()}/0", set_as_current=False)
    store = JobStore()
    receiver = ReceiverThread(app, store)
    receiver.start()
    wait_for(lambda: store.status.state == "reconnecting", 10, "the reconnecting status")
    status = store.status
    assert "refused" in status.error.lower() or "111" in status.error
    assert "hunter2" not in status.broker and "**" in status.broker
    assert receiver.stop(timeout=STOP_TIMEOUT)
    assert store.status.state == "stopped"


@pytest.mark.parametrize("path", [REDIS, KOMBU])
def test_reconnects_after_the_broker_restarts(own_redis, path):
    app = Celery("t", broker=own_redis.url, set_as_current=False)
    store = JobStore()
    receiver = ReceiverThread(app, store)
    receiver.path = path
    receiver.start()
    try:
        wait_for(lambda: store.status.state == "connected", 10, "first connection")
        # kombu's path subscribes on its first poll, after "connected": resend until heard.
        wait_for(lambda: event_arrives(app, store, "before"), 10, "an event before the outage")

        own_redis.stop()
        wait_for(lambda: store.status.state == "reconnecting", 10, "the outage to be noticed")
        assert store.status.error

        own_redis.start()
        wait_for(lambda: store.status.state == "connected", 30, "reconnection")
        # Events published after reconnecting reach the store again.
        wait_for(lambda: event_arrives(app, store, "after"), 15, "an event after the outage")
        assert receiver.alive
    finally:
        assert receiver.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_garbage_on_the_event_exchange_is_counted_while_the_app_runs(transport, tmp_path):
    require_transport(transport)
    cluster = Cluster(transport, tmp_path)
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store)
    assert receiver.path == {"filesystem": KOMBU, "redis": REDIS, "rabbitmq": AMQP}[transport]
    app = SluiceApp(store, source=receiver)
    try:
        async with app.run_test(size=SIZE) as pilot:
            # Subscribed for sure once an event gets through (kombu subscribes
            # to Redis pub/sub on its first poll, after "connected").
            await wait_in_app(
                pilot, lambda: event_arrives(cluster.app, store, "ready"), "a first event"
            )
            with cluster.app.connection_for_write() as conn:
                exchange = get_exchange(conn, name=cluster.app.conf.event_exchange)
                producer = Producer(conn, exchange=exchange)
                producer.publish(
                    b"\xff\xfe not json, not UTF-8",
                    routing_key="task.x",
                    content_type="application/json",
                    content_encoding="utf-8",
                )
                producer.publish("just a string", routing_key="task.x", serializer="json")
                producer.publish({"type": "task-started"}, routing_key="task.x", serializer="json")
            # Redis pub/sub and the filesystem transport do not promise order.
            await wait_in_app(pilot, lambda: store.stats().bad_events >= 3, "three bad messages")
            await wait_in_app(
                pilot, lambda: event_arrives(cluster.app, store, "good"), "a good event after"
            )
            # The screen follows the store on its next tick.
            await wait_in_app(
                pilot,
                lambda: "3 bad events skipped" in (text := screen_text(app)) and "good" in text,
                "the header's bad-event count and the good job on screen",
                explain=lambda: screen_text(app),
            )
            await pilot.press("d")
            text = screen_text(app)
            assert "undecodable message" in text and "malformed event message" in text
            assert "task event without a valid uuid" in text
            assert {
                "filesystem": "receiving: Celery's EventReceiver (kombu)",
                "redis": "receiving: lean Redis pub/sub reader",
                "rabbitmq": "receiving: lean AMQP consumer",
            }[transport] in " ".join(text.split())
            assert store.status.state == "connected" and receiver.alive
    finally:
        cluster.close()
