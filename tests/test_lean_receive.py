"""The lean receive paths (raw py-amqp, raw Redis pub/sub) against Celery's EventReceiver path.

Both paths listen to one real stream at once; what they make of it must be
the same, down to every job's history.  Bad messages are counted on the lean
paths as on kombu's, and the raw sink sees every message on every path.
"""

from __future__ import annotations

import json
import random
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from amqp.exceptions import UnexpectedFrame
from celery import Celery
from celery.events.event import get_exchange
from kombu import Producer
from kombu.serialization import dumps as kombu_dumps

from sluice_tui.celery_adapter.lean_amqp import _FrameReader
from sluice_tui.celery_adapter.lean_redis import RedisStreamError, _PushStream
from sluice_tui.celery_adapter.receiver import AMQP, KOMBU, REDIS, ReceiverThread, choose_path
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests import events as ev
from tests.cluster import (
    REDIS_URL,
    TRANSPORTS,
    Cluster,
    event_arrives,
    require_transport,
    wait_for,
)

LEAN = {"redis": REDIS, "rabbitmq": AMQP, "filesystem": KOMBU}
BROKERS = [pytest.param(t, marks=pytest.mark.broker) for t in ("redis", "rabbitmq")]


@pytest.mark.parametrize(
    ("url", "options", "path"),
    [
        ("amqp://guest:guest@localhost//", {}, AMQP),
        ("pyamqp://guest:guest@localhost//", {}, AMQP),
        ("redis://localhost:6379/3", {}, REDIS),
        ("rediss://localhost:6380/3", {}, REDIS),
        ("redis+socket:///run/redis.sock", {}, REDIS),
        ("redis://localhost/3", {"global_keyprefix": "app:", "fanout_patterns": False}, REDIS),
        # What the lean paths are not sure of stays with Celery's EventReceiver.
        ("redis://localhost/3", {"master_name": "mymaster"}, KOMBU),
        ("sentinel://localhost:26379", {"master_name": "mymaster"}, KOMBU),
        ("amqps://guest:guest@localhost//", {}, KOMBU),
        ("filesystem://", {}, KOMBU),
        ("memory://", {}, KOMBU),
    ],
)
def test_each_broker_gets_the_path_that_suits_it(url, options, path):
    app = Celery("t", broker=url, set_as_current=False)
    app.conf.broker_transport_options = options
    assert choose_path(app) == path


def test_a_transport_class_set_by_the_app_keeps_celerys_receiver():
    from kombu.transport.redis import Transport

    class OwnTransport(Transport):
        pass

    app = Celery("t", broker="redis://localhost/3", set_as_current=False)
    app.conf.broker_transport = OwnTransport
    assert choose_path(app) == KOMBU


@contextmanager
def receiving(app: Celery, *, path: str | None = None, **options) -> Iterator[ReceiverThread]:
    """A started receiver (on ``path`` when given) that has taken in a first event."""
    store = JobStore()
    receiver = ReceiverThread(app, store, read_only=True, resync=False, broadcasts=False, **options)
    if path is not None:
        receiver.path = path
    receiver.start()
    try:
        wait_for(lambda: event_arrives(app, store, "ready"), 20, f"a first event on {path}")
        yield receiver
    finally:
        assert receiver.stop(timeout=10)


def publish(app: Celery, *messages, **options) -> None:
    """Publish each message on the app's event exchange, as Celery's Dispatcher does."""
    with app.connection_for_write() as conn:
        producer = Producer(conn, exchange=get_exchange(conn, name=app.conf.event_exchange))
        for message in messages:
            first = message[0] if isinstance(message, list) else message
            kind = first.get("type") if isinstance(first, dict) else None
            routing_key = str(kind or "task.x").replace("-", ".")
            producer.publish(message, routing_key=routing_key, **options)


def mixed_workload(now: float) -> list:
    """Every kind of event a cluster sends, a retry, a batch, and a few the adapter refuses."""
    t = now - 60
    workload: list = [
        # A long heartbeat interval: no sweep finds the worker gone mid-test.
        ev.event("worker-online", None, t, "w1@lean", freq=60.0, sw_ident="py-celery"),
        ev.heartbeat("w1@lean", t + 0.5, freq=60.0),
    ]
    for n in range(12):
        job, at = f"mix-{n}", t + n
        workload += [ev.sent(job, at, name=f"proj.task{n % 3}", args=f"({n},)")]
        workload += [ev.received(job, at + 0.1, hostname="w1@lean")]
        if n % 4 == 3:
            workload += [ev.revoked(job, at + 0.2, hostname="w1@lean")]
            continue
        workload += [ev.started(job, at + 0.2, hostname="w1@lean")]
        if n % 4 == 1:
            workload += [ev.retried(job, at + 0.3, hostname="w1@lean")]
            workload += [ev.received(job, at + 0.4, hostname="w1@lean", retries=1)]
            workload += [ev.started(job, at + 0.5, hostname="w1@lean")]
        if n % 4 == 2:
            workload += [ev.failed(job, at + 0.6, hostname="w1@lean")]
        else:
            workload += [ev.succeeded(job, at + 0.6, result=f"{n}", hostname="w1@lean")]
    # Celery may batch events in one message.
    workload.append([ev.received("batch-1", t + 20), ev.started("batch-1", t + 20.1)])
    # Bigger than RabbitMQ's frame size: its body comes in several frames.
    workload.append(ev.received("big", t + 20.5, args="x" * 300_000))
    workload += [ev.rejected("mix-rejected", t + 21), ev.event("job-exploded", "x", t + 22)]
    workload += [ev.event("task-started", None, t + 23), "just a string"]
    workload.append(ev.succeeded("last", t + 24, result="done"))
    return workload


def comparable(store: JobStore, job_id: str):
    """Everything about a job that does not depend on when this monitor heard of it."""
    job = store.get(job_id)
    row = store.rows([job_id])[job_id]
    return job.state, job.history, job.result, job.exception, row._replace(first_seen=0.0)


@pytest.mark.parametrize("transport", BROKERS)
def test_the_lean_path_makes_the_same_jobs_as_celerys_receiver(transport, tmp_path):
    require_transport(transport)
    cluster = Cluster(transport, tmp_path)
    try:
        with (
            receiving(cluster.app) as lean,
            receiving(cluster.app, path=KOMBU) as kombu,
        ):
            assert lean.path == LEAN[transport]
            workload = mixed_workload(time.time())
            publish(cluster.app, *workload, serializer="json")
            for receiver in (lean, kombu):
                wait_for(
                    lambda r=receiver: "last" in r.store, 20, f"the workload on {receiver.path}"
                )
            job_ids = [f"mix-{n}" for n in range(12)] + ["batch-1", "big", "mix-rejected", "last"]
            assert "x" not in lean.store and "x" not in kombu.store  # job-exploded: refused
            for job_id in job_ids:
                assert comparable(lean.store, job_id) == comparable(kombu.store, job_id), job_id
            assert lean.store.get("mix-1").attempt == 2
            assert lean.store.get("mix-2").state is JobState.FAILED
            assert lean.store.get("mix-3").state is JobState.CANCELLED
            assert lean.store.get("batch-1").state is JobState.ACTIVE
            assert lean.store.counts() == kombu.store.counts()
            assert lean.store.stats().bad_by_reason == kombu.store.stats().bad_by_reason
            assert lean.store.stats().bad_events == 3  # the unknown type, no uuid, the string
            assert [w.hostname for w in lean.store.workers()] == ["w1@lean"]
    finally:
        cluster.close()


@pytest.mark.parametrize("transport", BROKERS)
def test_the_lean_path_counts_what_it_cannot_decode_and_carries_on(transport, tmp_path):
    require_transport(transport)
    cluster = Cluster(transport, tmp_path)
    try:
        with receiving(cluster.app) as receiver:
            store = receiver.store
            assert receiver.path == LEAN[transport]
            publish(cluster.app, ev.received("pickled", time.time()), serializer="pickle")
            publish(
                cluster.app,
                b"\xff\xfe not json",
                content_type="application/json",
                content_encoding="utf-8",
            )
            publish(cluster.app, ev.received("zipped", time.time()), compression="zlib")
            if transport == "redis":  # a broken envelope, straight onto the channel
                with cluster.app.connection_for_write() as conn:
                    channel = conn.default_channel
                    db = urlsplit(cluster.broker_url).path.strip("/")
                    topic = f"/{db}.{cluster.app.conf.event_exchange}/task.x"
                    channel.client.publish(topic, b"{not an envelope")
            expected = 3 if transport == "redis" else 2
            wait_for(lambda: store.stats().bad_events >= expected, 20, "the bad messages")
            wait_for(lambda: event_arrives(cluster.app, store, "after"), 20, "an event after")
            # Pickle is not in `accept`; a compressed JSON body is fine.
            assert store.stats().bad_by_reason == {"undecodable message": expected}
            assert "ContentDisallowed" in " ".join(s for _, _, s in store.bad_event_samples())
            assert "pickled" not in store and store.get("zipped").state is JobState.QUEUED
            assert receiver.alive and store.status.state == "connected"
    finally:
        cluster.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_raw_sink_sees_every_message_before_its_events(transport, tmp_path):
    """JSON bodies as received; other accepted types as JSON once decoded; garbage not at all."""
    require_transport(transport)
    # The app accepts pickle for its events, so a pickled one is decoded and kept.
    cluster = Cluster(transport, tmp_path, conf={"event_serializer": "pickle"})
    seen: list[tuple[bytes, float, bool]] = []
    store_of: list[JobStore] = []

    class Inbox(list):
        """The journal's inbox, looking at each body as it is appended (its time follows)."""

        def append(self, item):
            super().append(item)
            if isinstance(item, float):
                body = self[-2]
                job_id = first_uuid(json.loads(body))
                if job_id != "ready":  # the probes that show the receiver is listening
                    seen.append((body, item, job_id in store_of[0]))

    sink = SimpleNamespace(inbox=Inbox())

    try:
        store = JobStore()
        store_of.append(store)
        receiver = ReceiverThread(
            cluster.app, store, read_only=True, resync=False, broadcasts=False, raw_sink=sink
        )
        receiver.start()
        try:
            assert receiver.path == LEAN[transport]
            wait_for(lambda: event_arrives(cluster.app, store, "ready"), 20, "a first event")
            started = time.time()
            single = ev.received("single", started)
            batch = [ev.received("batch", started), ev.started("batch", started + 0.1)]
            pickled = ev.received("pickled", started)
            publish(cluster.app, single, batch, serializer="json")
            publish(cluster.app, b"\xff garbage", content_type="application/json")
            publish(cluster.app, pickled, serializer="pickle")
            wait_for(lambda: len(seen) >= 3 and "pickled" in store, 20, "three messages")
            wait_for(lambda: store.stats().bad_events == 1, 20, "the garbage counted")
        finally:
            assert receiver.stop(timeout=10)
        by_id = {first_uuid(json.loads(body)): body for body, _, _ in seen}
        assert len(seen) == 3 and set(by_id) == {"single", "batch", "pickled"}
        for message in (single, batch):  # JSON: the very bytes Celery's publisher sent
            expected = kombu_dumps(message, serializer="json")[2].encode()
            assert by_id[first_uuid(message)] == expected
        assert json.loads(by_id["pickled"]) == pickled
        # Each body reached the sink before its events reached the store.
        assert not any(applied for _, _, applied in seen)
        assert all(started - 1 <= received <= time.time() for _, received, _ in seen)
    finally:
        cluster.close()


def first_uuid(body):
    return (body[0] if isinstance(body, list) else body).get("uuid")


@pytest.mark.broker
@pytest.mark.parametrize(
    "options",
    [{"global_keyprefix": "sluice-prefix:"}, {"fanout_patterns": False}, {"fanout_prefix": False}],
    ids=["global_keyprefix", "no-fanout_patterns", "no-fanout_prefix"],
)
def test_the_lean_redis_path_hears_what_kombu_publishes_under_the_apps_options(options):
    """The channel names follow the transport options, as kombu's publisher names them."""
    require_transport("redis")
    app = Celery("t", broker=f"{REDIS_URL}/{random.randint(1, 15)}", set_as_current=False)
    app.conf.event_exchange = f"sluice-test-{random.getrandbits(40):x}.ev"
    app.conf.broker_transport_options = options
    with receiving(app) as receiver:
        assert receiver.path == REDIS
        publish(app, ev.received("named", time.time()), serializer="json")
        wait_for(lambda: "named" in receiver.store, 10, "an event under these options")


@pytest.mark.parametrize("transport", BROKERS)
def test_the_lean_path_stops_while_waiting_for_events(transport, tmp_path):
    require_transport(transport)
    cluster = Cluster(transport, tmp_path)
    try:
        with receiving(cluster.app) as receiver:
            assert receiver.path == LEAN[transport]
        assert receiver.store.status.state == "stopped" and not receiver.alive
    finally:
        cluster.close()


class ChoppedSocket:
    """Hands a byte stream out in uneven pieces, with a read timeout before each."""

    def __init__(self, data: bytes, seed: int) -> None:
        rng = random.Random(seed)
        self.pieces: list[bytes] = []
        while data:
            cut = rng.randint(1, 40)
            self.pieces.append(data[:cut])
            data = data[cut:]
        self._timeout_next = True

    def recv(self, size: int) -> bytes:
        if self._timeout_next or not self.pieces:
            self._timeout_next = False
            raise TimeoutError
        self._timeout_next = True
        return self.pieces.pop(0)


def amqp_frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce"


@pytest.mark.parametrize("seed", range(5))
def test_amqp_frames_split_anywhere_and_read_timeouts_lose_nothing(seed):
    frames = [(1 + n % 3, n % 2, bytes([n % 256]) * (n * 7 % 90)) for n in range(60)]
    transport = SimpleNamespace(
        sock=ChoppedSocket(b"".join(amqp_frame(*f) for f in frames), seed), _read_buffer=b""
    )
    reader = _FrameReader(transport)
    got = []
    while len(got) < len(frames):
        try:
            got.append(reader.read_frame())
        except TimeoutError:
            continue
    assert got == frames


def test_a_broken_amqp_frame_or_a_closed_link_raises():
    transport = SimpleNamespace(
        sock=SimpleNamespace(recv=lambda n: b"\x01\x00\x01\x00\x00\x00\x01x\xff")
    )
    transport._read_buffer = b""
    with pytest.raises(UnexpectedFrame):
        _FrameReader(transport).read_frame()
    transport = SimpleNamespace(sock=SimpleNamespace(recv=lambda n: b""), _read_buffer=b"")
    with pytest.raises(OSError, match="closed"):
        _FrameReader(transport).read_frame()
    assert transport.connected is False


def resp(*items: bytes | int, push: bool = False) -> bytes:
    head = b">" if push else b"*"
    out = head + str(len(items)).encode() + b"\r\n"
    for item in items:
        if isinstance(item, int):
            out += b":" + str(item).encode() + b"\r\n"
        else:
            out += b"$" + str(len(item)).encode() + b"\r\n" + item + b"\r\n"
    return out


@pytest.mark.parametrize("seed", range(5))
def test_redis_replies_split_anywhere_and_read_timeouts_lose_nothing(seed):
    expected = [[b"psubscribe", b"/1.ev/*", 1]]
    stream = resp(b"psubscribe", b"/1.ev/*", 1)
    for n in range(30):
        data = json.dumps({"body": "e30=", "n": n, "text": "line\r\nbreak"}).encode()
        frame = [b"pmessage", b"/1.ev/*", b"/1.ev/task.started", data]
        expected.append(frame)
        stream += resp(*frame, push=n % 2 == 1)  # RESP2 arrays and RESP3 pushes alike
    expected += [[b"pong", b""], [b"PONG"]]
    stream += resp(b"pong", b"") + b"+PONG\r\n"
    reader = _PushStream(ChoppedSocket(stream, seed))
    got: list = []
    while len(got) < len(expected):
        frames = reader.read()
        got += frames or []
    assert got == expected


def test_a_redis_error_reply_or_a_closed_link_raises():
    refused = b"-NOPERM this user has no permissions to access the channel\r\n"
    with pytest.raises(RedisStreamError, match="NOPERM"):
        _PushStream(SimpleNamespace(recv=lambda n: refused)).read()
    with pytest.raises(RedisStreamError, match="closed"):
        _PushStream(SimpleNamespace(recv=lambda n: b"")).read()
