"""Revokes broadcast from elsewhere reach the store before the workers say so."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from celery import Celery
from kombu import Producer

from sluice_tui.celery_adapter.broadcasts import (
    BAD_MALFORMED,
    BAD_UNDECODABLE,
    BroadcastListener,
    apply_revoke,
    parse_revoke,
)
from sluice_tui.celery_adapter.events import RECEIVED_WITH_ETA, STARTED, SUCCEEDED
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.demo.workload import config_from_env
from sluice_tui.model.job import NO_FIELDS
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests.cluster import TRANSPORTS, Cluster, require_transport, wait_for

# -- decoding -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        None,
        "revoke",
        b"\xff",
        [],
        {},
        {"method": 5},
        {"method": "revoke"},
        {"method": "revoke", "arguments": "x"},
        {"method": "revoke", "arguments": {}},
        {"method": "revoke", "arguments": {"task_id": 7}},
        {"method": "revoke", "arguments": {"task_id": ""}},
        {"method": "revoke", "arguments": {"task_id": []}},
        {"method": "revoke", "arguments": {"task_id": ["a", None]}},
        {"method": "revoke", "arguments": {"task_id": "x" * 256}},
        {"method": "revoke", "arguments": {"task_id": {"a": 1}}},
    ],
)
def test_malformed_control_bodies_are_refused(body):
    with pytest.raises(ValueError):
        parse_revoke(body)


def test_revoke_bodies_as_celery_sends_them():
    one = {"method": "revoke", "arguments": {"task_id": "a", "terminate": False}}
    many = {"method": "revoke", "arguments": {"task_id": ["a", "b"], "terminate": True}}
    assert parse_revoke(one) == (["a"], False)
    assert parse_revoke(many) == (["a", "b"], True)
    assert parse_revoke({"method": "enable_events", "arguments": {}}) is None


class _Message:
    def __init__(self, body=None, error: Exception | None = None, headers=None) -> None:
        self.body = body
        self.headers = headers or {}
        self._error = error

    def decode(self):
        if self._error is not None:
            raise self._error
        return self.body


def _listener(store: JobStore) -> BroadcastListener:
    app = Celery("sluice-test-broadcasts", set_as_current=False, broker="memory://")
    return BroadcastListener(app, store)


def test_bad_messages_are_counted_and_never_raise():
    store = JobStore()
    listener = _listener(store)
    listener.on_message(_Message(b"\x00{", error=ValueError("bad json")))
    listener.on_message(_Message({"method": "revoke", "arguments": {"task_id": 3}}))
    listener.on_message(_Message(["x"] * 10))
    listener.on_message(SimpleNamespace())  # not even a message: no decode()
    listener.on_message(_Message({"method": "ping", "arguments": {}}))  # fine, not ours
    bad = store.stats().bad_by_reason
    assert bad == {BAD_UNDECODABLE: 2, BAD_MALFORMED: 2}


def test_expired_revokes_are_ignored_as_workers_do():
    store = JobStore()
    store.apply("j", RECEIVED_WITH_ETA, time.time(), "w", {}, NO_FIELDS)
    body = {"method": "revoke", "arguments": {"task_id": "j"}}
    _listener(store).on_message(_Message(body, headers={"expires": time.time() - 5}))
    assert store.get("j").state is JobState.SCHEDULED


# -- the rule -------------------------------------------------------------


def test_revoke_applies_the_resync_rule():
    store = JobStore()
    now = time.time()
    store.apply("sched", RECEIVED_WITH_ETA, now, "w", {}, NO_FIELDS)
    store.apply("run", STARTED, now, "w", {}, NO_FIELDS)
    store.apply("done", SUCCEEDED, now, "w", {}, NO_FIELDS)
    apply_revoke(store, ["sched", "run", "done", "never-seen"], terminate=False, at=now + 1)
    sched = store.get("sched")
    assert sched.state is JobState.CANCELLED
    assert sched.history[-1].event == "revoke broadcast"
    run = store.get("run")
    assert run.state is JobState.ACTIVE
    assert run.extra["revoke_requested"] is True
    assert run.history[-1].event.startswith("revoke broadcast")
    assert store.get("done").state is JobState.COMPLETED
    assert "never-seen" not in store
    # Heard twice (or sent by this app's gate, which noted it): one entry.
    apply_revoke(store, ["run", "sched"], terminate=False, at=now + 2)
    assert len(store.get("run").history) == len(run.history)
    assert len(store.get("sched").history) == len(sched.history)


# -- real brokers ---------------------------------------------------------


@pytest.fixture(scope="module", params=TRANSPORTS)
def cluster(request, tmp_path_factory):
    require_transport(request.param)
    cluster = Cluster(request.param, tmp_path_factory.mktemp(f"broadcasts-{request.param}"))
    try:
        cluster.start_worker("w1", concurrency=2)
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def monitored(cluster):
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store)
    receiver.start()
    try:
        wait_for(lambda: receiver.broadcasts.connected, 15, "the broadcast listener")
        yield store
    finally:
        started = time.monotonic()
        assert receiver.stop()
        assert time.monotonic() - started < 2.0
        assert not receiver.broadcasts.alive


def _elsewhere(cluster: Cluster) -> Celery:
    """Another Celery app on the same cluster, as `celery control revoke` would be."""
    app = Celery("sluice-test-elsewhere", set_as_current=False)
    app.conf.update(config_from_env(cluster.env))
    return app


def _scheduled_job(cluster: Cluster, store: JobStore) -> str:
    job = cluster.send("demo.add", 1, 2, countdown=60).id
    wait_for(lambda: store.get(job).state is JobState.SCHEDULED, 30, "the job to be scheduled")
    return job


def test_scheduled_job_revoked_elsewhere_is_cancelled_long_before_its_eta(cluster, monitored):
    store = monitored
    job = _scheduled_job(cluster, store)
    with _elsewhere(cluster) as other:
        other.control.revoke(job)
    wait_for(lambda: store.get(job).state is JobState.CANCELLED, 15, "the revoke broadcast")
    events = [entry.event for entry in store.get(job).history]
    assert "revoke broadcast" in events
    assert "task-revoked" not in events  # the worker has not said so: its ETA is far


def test_running_job_revoked_without_terminate_stays_active_with_the_note(cluster, monitored):
    store = monitored
    job = cluster.send("demo.slow", 6).id
    wait_for(lambda: store.get(job).state is JobState.ACTIVE, 30, "the job to start")
    with _elsewhere(cluster) as other:
        other.control.revoke(job)
    wait_for(lambda: store.get(job).extra.get("revoke_requested"), 15, "the revoke broadcast")
    snapshot = store.get(job)
    assert snapshot.state is JobState.ACTIVE
    assert snapshot.extra["revoke_terminate"] is False


def test_garbage_on_the_control_exchange_is_counted_and_listening_goes_on(cluster, monitored):
    store = monitored
    exchange = cluster.app.control.mailbox.exchange
    with cluster.app.connection_for_write() as conn:
        producer = Producer(conn.default_channel, exchange=exchange)
        producer.publish(b"{not json", content_type="application/json", content_encoding="utf-8")
        producer.publish({"method": "revoke", "arguments": {"task_id": 42}}, serializer="json")
    wait_for(
        lambda: store.stats().bad_by_reason == {BAD_UNDECODABLE: 1, BAD_MALFORMED: 1},
        15,
        f"both counted as bad (now {store.stats().bad_by_reason})",
    )
    job = _scheduled_job(cluster, store)
    with _elsewhere(cluster) as other:
        other.control.revoke(job)
    wait_for(lambda: store.get(job).state is JobState.CANCELLED, 15, "the revoke broadcast")
