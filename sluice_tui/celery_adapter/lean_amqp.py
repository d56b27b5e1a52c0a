"""The lean RabbitMQ path: a raw py-amqp consumer on Celery's own event queue.

Celery's EventReceiver wraps every event in a kombu Message and decodes it
through kombu's registry.  Here the queue is the one EventReceiver would
declare (built by EventReceiver itself, so every ``event_*`` setting applies
unchanged) and py-amqp consumes it without acks; then, on a plain TCP link,
the socket is read in large chunks (py-amqp asks it for each frame part
separately) and the three frames of each delivery on our channel are taken
apart here, the body going straight to the shared feed.  Every other frame
(heartbeats, the broadcast channel, a close) goes to py-amqp as usual.
"""

from __future__ import annotations

import time
from struct import unpack_from
from typing import TYPE_CHECKING, Any

from amqp.exceptions import UnexpectedFrame
from amqp.serialization import decode_properties_basic
from amqp.transport import TCPTransport
from celery.events.receiver import EventReceiver

from sluice_tui.celery_adapter.event_feed import JSON, EventFeed

if TYPE_CHECKING:
    from sluice_tui.celery_adapter.receiver import ReceiverThread

# How much one recv may take: many small event frames at once.
READ_CHUNK = 256 * 1024
# How often the thread's housekeeping runs while events keep coming.
TICK_INTERVAL = 0.05
FRAME_END = 0xCE
METHOD, HEADER, BODY = 1, 2, 3  # AMQP frame types
BASIC_DELIVER = b"\x00\x3c\x00\x3c"  # class 60 (basic), method 60 (deliver)


def consume_amqp(owner: ReceiverThread, feed: EventFeed, poll_interval: float) -> None:
    """Consume events until ``owner.stopping``; connection trouble raises."""
    with owner.app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=0)
        channel = conn.channel()
        # EventReceiver builds the queue (name, exchange, TTL, expiry,
        # durability) exactly as Celery would; we only borrow it.
        spec = EventReceiver(channel, app=owner.app, node_id=owner.node_id)
        queue = spec.queue(channel)
        queue.declare()
        deliver = _delivery_handler(feed)
        channel.basic_consume(
            queue.name, no_ack=True, callback=lambda msg: deliver(msg.body, msg.properties)
        )
        # Broadcasts get a channel of their own: a refused one closes only it.
        # Taken once: kombu's default_channel property would quietly reconnect.
        broadcasts = conn.default_channel
        owner.on_connected(broadcasts)
        owner.wake_workers(broadcasts)

        def housekeeping() -> None:
            owner.on_iteration(broadcasts)
            conn.heartbeat_check()  # a pure consumer sends nothing else

        raw = conn.connection
        if type(raw.transport) is TCPTransport:
            _consume_frames(owner, raw, channel.channel_id, deliver, housekeeping, poll_interval)
        else:  # TLS and the like: py-amqp's own reading
            _consume_drain(owner, raw, housekeeping, poll_interval)


def _delivery_handler(feed: EventFeed) -> Any:
    json_message, message = feed.json_message, feed.message

    def deliver(body: bytes, properties: dict) -> None:
        headers = properties.get("application_headers")
        if properties.get("content_type") == JSON and not (headers and "compression" in headers):
            json_message(body)
        else:
            message(
                body,
                properties.get("content_type"),
                properties.get("content_encoding"),
                headers.get("compression") if headers else None,
            )

    return deliver


def _consume_drain(owner: ReceiverThread, raw: Any, housekeeping: Any, poll: float) -> None:
    next_tick = 0.0
    while not owner.stopping:
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + TICK_INTERVAL
            housekeeping()
        try:
            raw.drain_events(timeout=poll)
        except TimeoutError:
            continue
        except OSError:
            if owner.stopping:
                break
            raise


def _consume_frames(
    owner: ReceiverThread,
    raw: Any,
    channel_id: int,
    deliver: Any,
    housekeeping: Any,
    poll: float,
) -> None:
    """Read frames ourselves: deliveries on ``channel_id`` here, the rest through py-amqp."""
    transport = raw.transport
    reader = _FrameReader(transport)
    transport.read_frame = reader.read_frame  # py-amqp's own reads share the buffer
    read_frame, to_amqp = reader.read_frame, raw.on_inbound_frame
    sock = transport.sock
    # Reads wait at most `poll`, set once rather than around every read;
    # writes (heartbeats, broadcasts) happen in housekeeping, with no timeout.
    writing_timeout = sock.gettimeout()
    expecting = METHOD
    body_size = received = 0
    properties: dict = {}
    chunks: list[bytes] = []
    next_tick = 0.0
    while not owner.stopping:
        now = time.monotonic()
        # Only between deliveries: a broadcast may wait for a reply, and py-amqp
        # reads (and dispatches) whatever frames come first meanwhile.
        if now >= next_tick and expecting == METHOD:
            next_tick = now + TICK_INTERVAL
            sock.settimeout(writing_timeout)
            housekeeping()
            sock.settimeout(poll)
        try:
            frame = read_frame()
        except TimeoutError:
            continue
        except OSError:
            if owner.stopping:
                break
            raise
        frame_type, channel, payload = frame
        if channel != channel_id:
            to_amqp(frame)
        elif expecting == METHOD:
            if frame_type == METHOD and payload[:4] == BASIC_DELIVER:
                expecting = HEADER  # its arguments (tags, routing key) are not needed
            else:
                to_amqp(frame)  # a cancel, a close: py-amqp handles them
        elif expecting == HEADER:
            if frame_type != HEADER:
                raise UnexpectedFrame(f"frame type {frame_type} where a content header belongs")
            (body_size,) = unpack_from(">Q", payload, 4)
            properties = decode_properties_basic(payload, 12)[0]
            raw.bytes_recv += 1  # the heartbeat check's sign of life
            if body_size:
                expecting, received, chunks = BODY, 0, []
            else:
                expecting = METHOD
                deliver(b"", properties)
        else:
            if frame_type != BODY:
                raise UnexpectedFrame(f"frame type {frame_type} where a content body belongs")
            if not chunks and len(payload) >= body_size:
                expecting = METHOD
                deliver(payload, properties)
                continue
            chunks.append(payload)
            received += len(payload)
            if received >= body_size:
                expecting = METHOD
                deliver(b"".join(chunks), properties)


class _FrameReader:
    """Whole AMQP frames from a buffer filled in large chunks; a timeout loses nothing."""

    def __init__(self, transport: TCPTransport) -> None:
        self._transport = transport
        self._recv = transport.sock.recv
        # What the handshake left unread belongs at the front.
        self._buffer = bytes(transport._read_buffer)
        transport._read_buffer = bytearray()
        self._pos = 0

    def read_frame(self, unpack_from: Any = unpack_from) -> tuple[int, int, bytes]:
        buffer, pos = self._buffer, self._pos
        if len(buffer) - pos < 7:
            buffer, pos = self._fill(7)
        frame_type, channel, size = unpack_from(">BHI", buffer, pos)
        end = pos + size + 8  # header, payload, frame-end octet
        if len(buffer) < end:
            buffer, pos = self._fill(size + 8)
            end = size + 8
        if buffer[end - 1] != FRAME_END:
            raise UnexpectedFrame(f"Received frame_end {buffer[end - 1]:#04x} while expecting 0xce")
        self._pos = end
        return frame_type, channel, buffer[pos + 7 : end - 1]

    def _fill(self, wanted: int) -> tuple[bytes, int]:
        """Read until ``wanted`` bytes are buffered; a timeout keeps what was read."""
        rest = self._buffer[self._pos :]
        self._buffer, self._pos = rest, 0
        try:
            while len(rest) < wanted:
                chunk = self._recv(READ_CHUNK)
                if not chunk:
                    raise OSError("Server unexpectedly closed connection")
                rest += chunk
                self._buffer = rest
        except TimeoutError:
            raise
        except OSError:
            self._transport.connected = False
            raise
        return rest, 0
