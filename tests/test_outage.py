"""Outages between the monitor and a real broker: reconnect, resync, report the gap.

The monitor reaches the broker through a TCP proxy of the test's own, so the
outage is the monitor's alone: the shared broker and the workers carry on,
and jobs move on while the monitor hears nothing.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from celery import Celery

from sluice_tui.celery_adapter.receiver import AMQP, REDIS, ReceiverThread
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp
from tests.cluster import (
    RABBITMQ_URL,
    REDIS_URL,
    Cluster,
    event_arrives,
    require_transport,
    wait_for,
)
from tests.own_servers import OwnRedis, TcpProxy
from tests.ui_helpers import SIZE, screen_text, wait_in_app


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture(params=[pytest.param(t, marks=pytest.mark.broker) for t in ("redis", "rabbitmq")])
def cut_off(request, tmp_path):
    """A cluster on a shared broker, and a monitor app that reaches it through a proxy."""
    require_transport(request.param)
    cluster = Cluster(request.param, tmp_path)
    target = urlsplit(cluster.broker_url)
    proxy = TcpProxy(target.hostname, target.port or (6379 if target.scheme == "redis" else 5672))
    monitor = Celery("sluice-monitor", set_as_current=False)
    monitor.conf.update(cluster.app.conf.changes)
    monitor.conf.broker_url = through(proxy, cluster.broker_url)
    try:
        yield cluster, proxy, monitor
    finally:
        proxy.close()
        cluster.close()


def history(store: JobStore, job_id: str) -> list[str]:
    return [t.event for t in store.get(job_id).history]


def test_after_an_outage_jobs_are_resynced_and_the_gap_is_reported(cut_off):
    cluster, proxy, monitor = cut_off
    cluster.start_worker("w1")
    store = JobStore()
    receiver = ReceiverThread(monitor, store)
    assert receiver.path == {"redis": REDIS, "rabbitmq": AMQP}[cluster.transport]
    receiver.start()
    try:
        wait_for(lambda: store.workers(), 30, "the worker's first heartbeat")
        before = cluster.send("demo.add", 1, 2)
        wait_for(lambda: store.get(before.id).state is JobState.COMPLETED, 30, "a job before")
        ending = cluster.send("demo.slow", 5)  # long enough to still run when the cut lands
        wait_for(lambda: store.get(ending.id).state is JobState.ACTIVE, 30, "a running job")

        proxy.cut()
        wait_for(lambda: store.status.state == "reconnecting", 15, "the outage to be noticed")
        # While the monitor is cut off, one job ends and another starts.
        assert ending.get(timeout=30) == 5
        slow = cluster.send("demo.slow", 60)
        wait_for(lambda: slow.state == "STARTED", 30, "the slow job to start")
        assert slow.id not in store

        proxy.restore()
        wait_for(lambda: store.status.state == "connected", 30, "reconnection")
        wait_for(lambda: store.gaps() and store.gaps()[-1].resync != "resync pending", 30, "resync")
        (gap,) = store.gaps()
        assert gap.start <= gap.end and gap.reason
        assert "1 worker answered" in gap.resync, gap.resync

        assert store.get(slow.id).state is JobState.ACTIVE
        assert "resync: running on worker" in history(store, slow.id)
        assert store.get(slow.id).name == "demo.slow"
        assert store.get(ending.id).state is JobState.COMPLETED
        assert history(store, ending.id)[-1] == "resync: result backend"
        assert store.get(ending.id).result == "5"
        # Jobs the events told about are left as they were.
        assert "resync" not in " ".join(history(store, before.id))
    finally:
        assert receiver.stop()


def test_a_monitor_that_falls_behind_is_cut_off_by_redis_and_recovers(tmp_path):
    """Redis drops a pub/sub client whose unread output passes its buffer limit."""
    redis = OwnRedis("--client-output-buffer-limit", "pubsub 256kb 64kb 1")
    redis.start()
    proxy = TcpProxy("127.0.0.1", redis.port)
    workers = Celery("flood", broker=redis.url, set_as_current=False)
    monitor = Celery("sluice-monitor", broker=through(proxy, redis.url), set_as_current=False)
    store = JobStore()
    receiver = ReceiverThread(monitor, store)
    assert receiver.path == REDIS  # the lean path's own reader meets the cut-off
    receiver.start()
    try:
        wait_for(lambda: store.status.state == "connected", 15, "the first connection")
        wait_for(lambda: event_arrives(workers, store, "before"), 15, "an event before")

        proxy.stall()  # the monitor stops reading, as a busy one would
        flood = 20_000
        with workers.connection_for_write() as conn:
            dispatcher = workers.events.Dispatcher(conn, hostname="w1@flood", enabled=True)
            for n in range(flood):
                dispatcher.send("task-received", uuid=f"flood-{n}", name="t.flood", args="()")
            dispatcher.close()
        wait_for(lambda: "output buffer limits" in redis.log(), 15, "Redis to drop the monitor")
        proxy.resume()

        wait_for(lambda: store.gaps(), 30, "the gap to be recorded")
        wait_for(lambda: store.status.state == "connected", 30, "reconnection")
        wait_for(lambda: store.gaps()[-1].resync != "resync pending", 30, "the resync")
        wait_for(lambda: event_arrives(workers, store, "after"), 15, "an event after")
        received = sum(1 for n in range(flood) if f"flood-{n}" in store)
        assert received < flood  # what Redis threw away is gone, and the gap says so
        assert store.gaps()[-1].end >= store.gaps()[-1].start
        assert receiver.alive
    finally:
        receiver.stop()
        proxy.close()
        redis.remove()


@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "read-write"])
def test_read_only_publishes_nothing_even_across_a_reconnect(own_redis, read_only):
    """No enable_events, no wakeup heartbeat, no inspect for a resync: nothing at all."""
    app = Celery("watcher", broker=own_redis.url, set_as_current=False)
    store = JobStore()
    receiver = ReceiverThread(app, store, read_only=read_only)
    assert receiver.path == REDIS
    receiver.start()
    try:
        wait_for(lambda: store.status.state == "connected", 15, "the first connection")
        own_redis.stop()
        wait_for(lambda: store.status.state == "reconnecting", 15, "the outage")
        own_redis.start()  # a fresh server: its command counts start at zero
        wait_for(lambda: store.status.state == "connected", 30, "reconnection")
        wait_for(lambda: store.gaps() and store.gaps()[-1].resync != "resync pending", 30, "resync")
        published = own_redis.calls("publish") + own_redis.calls("lpush")
        if read_only:
            assert published == 0
            assert "workers not asked (read-only)" in store.gaps()[-1].resync
        else:
            assert published > 0  # the same check would catch a publishing read-only mode
    finally:
        receiver.stop()


@pytest.mark.broker
@pytest.mark.parametrize("transport", ["redis", "rabbitmq"])
def test_asking_workers_for_events_on_a_lost_link_fails_at_once(transport):
    """Celery's broadcast would retry forever and hold the receiver: no reconnecting, no gap."""
    require_transport(transport)
    url = REDIS_URL if transport == "redis" else RABBITMQ_URL
    target = urlsplit(url)
    proxy = TcpProxy(target.hostname, target.port)
    app = Celery("watcher", broker=through(proxy, url), set_as_current=False)
    receiver = ReceiverThread(app, JobStore(), enable_events_interval=0.0)
    outcome: list[str] = []

    def ask_workers(channel) -> None:
        try:
            receiver.on_iteration(channel)
            outcome.append("sent")
        except channel.connection.client.connection_errors:
            outcome.append("connection lost")

    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            ask_workers(channel)
            assert outcome == ["sent"]
            proxy.cut()
            receiver._last_enable = 0.0
            threading.Thread(target=ask_workers, args=(channel,), daemon=True).start()
            wait_for(lambda: len(outcome) == 2, 10, "the broadcast to give up")
            assert outcome[1] == "connection lost"  # raised, so the receive loop reconnects
    finally:
        proxy.close()


def test_a_monitor_started_while_its_broker_is_down_counts_the_wait_in_its_start_gap(own_redis):
    """The journal's gap (the time not running) lasts until events can flow, not until start."""
    own_redis.stop()
    app = Celery("watcher", broker=own_redis.url, set_as_current=False)
    store = JobStore()
    started = time.time()
    gap = store.record_gap(started - 60, started, "sluice-tui was not running")
    receiver = ReceiverThread(app, store, start_gap=gap)
    receiver.start()
    try:
        wait_for(lambda: store.status.state == "reconnecting", 15, "the first failed connection")
        back = time.time()
        own_redis.start()
        wait_for(lambda: store.status.state == "connected", 30, "the first connection")
        first = store.gaps()[-1]
        assert len(store.gaps()) == 1
        assert first.start == started - 60 and first.end >= back
        assert first.reason == ("sluice-tui was not running, then the broker could not be reached")
        wait_for(lambda: store.gaps()[-1].resync != "resync pending", 30, "the resync")
    finally:
        receiver.stop()


async def test_the_header_follows_an_outage_and_keeps_the_gap(own_redis):
    app = Celery("watched", broker=own_redis.url, set_as_current=False)
    store = JobStore()
    tui = SluiceApp(store, source=ReceiverThread(app, store))
    async with tui.run_test(size=SIZE) as pilot:
        await wait_in_app(pilot, lambda: "connected" in header(tui), "connected")
        await wait_in_app(pilot, lambda: event_arrives(app, store, "before"), "a first event")
        own_redis.stop()
        await wait_in_app(pilot, lambda: "reconnecting:" in header(tui), "reconnecting")
        assert "events may have been lost" not in header(tui)  # not until it is over
        own_redis.start()
        await wait_in_app(pilot, lambda: "events may have been lost" in header(tui), "the gap")
        assert "\u25cf connected" in header(tui)
        await wait_in_app(pilot, lambda: event_arrives(app, store, "after"), "events again")
        assert tui.is_running


def header(tui: SluiceApp) -> str:
    return "\n".join(screen_text(tui).splitlines()[:4])
