"""The lean Redis path: Celery's event pub/sub stream, read straight off the socket.

kombu publishes each event with PUBLISH on a channel named after the event
exchange, as a JSON envelope whose ``body`` is base64.  kombu's own receive
path runs every message through redis-py's generic reply parser, its retry
and health machinery, then a virtual-transport Message.  Here redis-py (with
the pool kombu builds from the app's URL and transport options: db, password,
TLS, timeouts) opens the connection and sends PSUBSCRIBE for exactly the
patterns kombu would subscribe to; the replies are then taken apart by a
small parser that knows the few shapes a subscribed connection receives.
"""

from __future__ import annotations

import time
from binascii import a2b_base64
from json import loads as json_loads
from typing import TYPE_CHECKING, Any

from celery.events.event import get_exchange
from kombu.transport.redis import Channel as RedisChannel

from sluice_tui.celery_adapter.event_feed import JSON, EventFeed

if TYPE_CHECKING:
    from sluice_tui.celery_adapter.receiver import ReceiverThread

READ_CHUNK = 256 * 1024
TICK_INTERVAL = 0.05
# How long the subscription may take to be confirmed.
SUBSCRIBE_TIMEOUT = 10.0
PING = b"*1\r\n$4\r\nPING\r\n"


class LeanPathUnavailable(Exception):
    """This connection cannot be read the lean way; kombu's path must take over."""


class RedisStreamError(ConnectionError):
    """The subscribed connection broke, said no, or went silent."""


def consume_redis(owner: ReceiverThread, feed: EventFeed, poll_interval: float) -> None:
    """Consume events until ``owner.stopping``; connection trouble raises."""
    with owner.app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=0)
        channel = conn.default_channel  # kombu's channel: its pool, prefixes and options
        exchange = get_exchange(conn, name=owner.app.conf.event_exchange)
        patterns = subscribe_patterns(channel, exchange.name)
        try:
            link = channel.pool.get_connection()
        except TypeError:  # redis-py before 5.3 wants a command name
            link = channel.pool.get_connection("PSUBSCRIBE")
        try:
            sock = getattr(link, "_sock", None)
            if sock is None or str(getattr(link, "protocol", None) or 2) not in ("2", "3"):
                raise LeanPathUnavailable("no plain RESP2/RESP3 socket to read")
            link.send_command("PSUBSCRIBE", *patterns, check_health=False)
            sock.settimeout(poll_interval)
            stream = _PushStream(sock)
            early = _await_subscription(stream, len(patterns), owner)
            owner.on_connected(channel)
            owner.wake_workers(channel)
            health = float(channel.health_check_interval or 0)
            _drain(owner, feed, stream, channel, health, early)
        finally:
            link.disconnect()


def subscribe_patterns(channel: Any, exchange: str) -> list[str]:
    """The PSUBSCRIBE patterns kombu uses for a queue bound to ``exchange`` with ``#``."""
    if type(channel) is not RedisChannel:
        raise LeanPathUnavailable(f"unfamiliar Redis channel {type(channel).__name__}")
    routing_key = "#".replace("#", "*")  # as kombu's fanout binding rewrites it
    topics = getattr(channel, "_get_publish_topics", None)
    if topics is not None:
        found = list(topics(exchange, routing_key))
    else:
        found = [channel._get_publish_topic(exchange, routing_key)]
    # Publishers prefix the PUBLISH channel with global_keyprefix; so do we.
    return [channel.global_keyprefix + topic for topic in found]


def _await_subscription(stream: _PushStream, patterns: int, owner: ReceiverThread) -> list:
    """Wait for every PSUBSCRIBE to be confirmed; return the frames read with them.

    Events can arrive in the same read as a confirmation: they are ours too.
    """
    deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
    confirmed = 0
    early: list = []
    while confirmed < patterns:
        if owner.stopping:
            return early
        if time.monotonic() > deadline:
            raise RedisStreamError("Redis did not confirm the event subscription")
        for frame in stream.read() or ():
            if frame and frame[0] == b"psubscribe":
                confirmed += 1
            else:
                early.append(frame)
    return early


def _drain(
    owner: ReceiverThread,
    feed: EventFeed,
    stream: _PushStream,
    channel: Any,
    health: float,
    early: list,
) -> None:
    on_message = _message_handler(feed)
    _deliver(early, on_message)
    read = stream.read
    next_tick = 0.0
    # A quiet link is asked for a PONG now and then; a silent one is dropped.
    next_ping = time.monotonic() + health if health else float("inf")
    last_heard = time.monotonic()
    while not owner.stopping:
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + TICK_INTERVAL
            owner.on_iteration(channel)
            if now >= next_ping:
                next_ping = now + health
                stream.send(PING)
                if now - last_heard > 2 * health:
                    raise RedisStreamError(f"no word from Redis for {now - last_heard:.0f} s")
        frames = read()
        if frames is None:
            continue  # nothing within the poll interval
        last_heard = time.monotonic()
        _deliver(frames, on_message)


def _deliver(frames: list, on_message: Any) -> None:
    for frame in frames:
        if not frame:
            continue  # an empty array: nothing of ours
        if frame[0] == b"pmessage" and len(frame) == 4:
            on_message(frame[3])
        elif frame[0] == b"message" and len(frame) == 3:
            on_message(frame[2])


def _message_handler(feed: EventFeed) -> Any:
    json_message, message, bad = feed.json_message, feed.message, feed.bad

    def on_message(data: bytes) -> None:
        try:
            envelope = json_loads(data)
            body = envelope["body"]
            encoding = envelope["properties"].get("body_encoding")
            if encoding == "base64":
                body = a2b_base64(body)
            elif encoding is not None:
                raise ValueError(f"unknown body encoding {encoding!r}")
            content_type = envelope.get("content-type")
            headers = envelope.get("headers")
        except Exception:
            bad("undecodable message", data)
            return
        if content_type == JSON and not (headers and "compression" in headers):
            json_message(body)
        else:
            compression = headers.get("compression") if type(headers) is dict else None
            message(body, content_type, envelope.get("content-encoding"), compression)

    return on_message


class _PushStream:
    """The replies on a subscribed connection, whole frames at a time.

    A subscribed connection receives arrays of bulk strings and integers
    (``*`` in RESP2, ``>`` pushes in RESP3), and simple strings or errors in
    answer to a PING or a refused command.  Anything else means we do not
    understand the stream, and the connection is dropped.
    """

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = b""
        self._pos = 0

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def read(self) -> list[list[Any]] | None:
        """The frames that arrived, or None when nothing did within the socket's timeout."""
        try:
            chunk = self._sock.recv(READ_CHUNK)
        except TimeoutError:
            return None
        except OSError as exc:
            raise RedisStreamError(f"Error while reading from Redis: {exc}") from None
        if not chunk:
            raise RedisStreamError("Redis closed the connection")
        buffer = self._buffer[self._pos :] + chunk if self._pos < len(self._buffer) else chunk
        frames, self._pos = _parse(buffer)
        self._buffer = buffer
        return frames


def _parse(buf: bytes) -> tuple[list[list[Any]], int]:
    """Whole frames from the start of ``buf``, and where the unfinished rest begins."""
    frames: list[list[Any]] = []
    size = len(buf)
    pos = 0
    find = buf.find
    while pos < size:
        start = pos
        line_end = find(b"\r\n", pos)
        if line_end < 0:
            break
        kind = buf[pos]
        if kind == 42 or kind == 62:  # '*' array, '>' push
            count = int(buf[pos + 1 : line_end])
            pos = line_end + 2
            items: list[Any] = []
            for _ in range(count):
                line_end = find(b"\r\n", pos)
                if line_end < 0:
                    break
                if buf[pos] == 36:  # '$' bulk string
                    length = int(buf[pos + 1 : line_end])
                    pos = line_end + 2
                    if length < 0:
                        items.append(None)
                        continue
                    if pos + length + 2 > size:
                        break
                    items.append(buf[pos : pos + length])
                    pos += length + 2
                else:
                    items.append(_scalar(buf, pos, line_end))
                    pos = line_end + 2
            else:
                frames.append(items)
                continue
            pos = start  # the frame is not all here yet
            break
        frames.append([_scalar(buf, pos, line_end)])
        pos = line_end + 2
    return frames, pos


def _scalar(buf: bytes, pos: int, line_end: int) -> Any:
    kind, text = buf[pos], buf[pos + 1 : line_end]
    if kind == 58:  # ':' integer
        return int(text)
    if kind == 43:  # '+' simple string
        return text
    if kind == 45:  # '-' error: a refused PSUBSCRIBE (ACL), a server shutting down
        raise RedisStreamError(f"Redis said: {text.decode(errors='replace')}")
    raise RedisStreamError(f"unexpected reply from Redis: {buf[pos:line_end]!r:.80}")
