"""The lean RabbitMQ path: a raw py-amqp consumer on Celery's own event queue.

Celery's EventReceiver wraps every event in a kombu Message and decodes it
through kombu's registry; here the py-amqp callback hands the body straight to
the shared feed.  The queue is the one EventReceiver would declare (built by
EventReceiver itself, so every ``event_*`` setting applies unchanged), and the
socket is read in large chunks instead of a few bytes per call, which is where
most of the time per event went.
"""

from __future__ import annotations

import time
from struct import unpack_from
from typing import TYPE_CHECKING, Any

from amqp.exceptions import UnexpectedFrame
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
        on_message = _message_handler(feed)
        channel.basic_consume(queue.name, no_ack=True, callback=on_message)
        raw = conn.connection
        _read_in_chunks(raw.transport)
        # Broadcasts get a channel of their own: a refused one closes only it.
        owner.on_connected(conn.default_channel)
        if not owner.read_only:
            spec.wakeup_workers(channel=conn.default_channel)
        drain = raw.drain_events
        next_tick = 0.0
        while not owner.stopping:
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + TICK_INTERVAL
                owner.on_iteration(conn.default_channel)
                conn.heartbeat_check()  # a pure consumer sends nothing else
            try:
                drain(timeout=poll_interval)
            except TimeoutError:
                continue
            except OSError:
                if owner.stopping:
                    break
                raise


def _message_handler(feed: EventFeed) -> Any:
    json_message, message = feed.json_message, feed.message

    def on_message(msg: Any) -> None:
        properties = msg.properties
        headers = properties.get("application_headers")
        if properties.get("content_type") == JSON and not (headers and "compression" in headers):
            json_message(msg.body)
        else:
            message(
                msg.body,
                properties.get("content_type"),
                properties.get("content_encoding"),
                headers.get("compression") if headers else None,
            )

    return on_message


def _read_in_chunks(transport: Any) -> None:
    """Give a plain TCP transport a frame reader that takes what the socket has.

    py-amqp asks the socket for exactly the bytes of the next frame part: two
    recv calls per frame, three frames per event.  This reader keeps the same
    contract (one whole frame, a timeout loses nothing) over a buffer filled
    in large chunks.  TLS and unusual transports keep their own.
    """
    if type(transport) is not TCPTransport:
        return
    transport.read_frame = _FrameReader(transport).read_frame


class _FrameReader:
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
