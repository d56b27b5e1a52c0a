"""The background thread that receives Celery events and feeds the store.

It never waits on the UI: it only writes to the store, which readers poll.
Connection trouble is reported through the store's status and retried with
backoff, so the app keeps running while the broker is away.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from celery import Celery
from celery.events.receiver import EventReceiver
from kombu.transport import pyamqp as kombu_pyamqp
from kombu.transport import redis as kombu_redis

from sluice_tui.celery_adapter.broadcasts import BroadcastListener
from sluice_tui.celery_adapter.connect import broker_label, describe_error
from sluice_tui.celery_adapter.event_feed import EventFeed, RawSink
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.celery_adapter.lean_amqp import consume_amqp
from sluice_tui.celery_adapter.lean_redis import LeanPathUnavailable, consume_redis
from sluice_tui.celery_adapter.resync import Resync
from sluice_tui.celery_adapter.wakeup import ENABLE_EVENTS, HEARTBEAT, broadcast_once
from sluice_tui.model.store import (
    RESTARTED,
    SHUTDOWN_OVERDUE,
    SHUTTING_DOWN,
    STOPPED,
    JobStore,
    WorkerNews,
)
from sluice_tui.model.workers import SHUTDOWN_GRACE

# Workers started without -E only send task events after someone asks; a
# worker that restarts forgets, so the request is repeated (Flower does too).
ENABLE_EVENTS_INTERVAL = 5.0
# How long one drain waits before checking the stop flag: bounds stop() latency.
POLL_INTERVAL = 0.25
BACKOFF_START = 0.5
BACKOFF_MAX = 15.0
# How often silent workers are checked for being gone, and stale jobs for ageing out.
SWEEP_INTERVAL = 0.5

# The receive paths: a raw py-amqp consumer, a raw Redis pub/sub reader, and
# Celery's own EventReceiver for every other transport.
AMQP, REDIS, KOMBU = "amqp", "redis", "kombu"
# Redis transport options the lean path honours (through kombu's own channel
# and pool) or that only matter to queues it does not use.  Any other option
# is something it may not understand: kombu's path then takes over.
_REDIS_OPTIONS = frozenset(kombu_redis.Channel.from_transport_options) | {
    "max_retries",
    "interval_start",
    "interval_step",
    "interval_max",
    "polling_interval",
    "brpop_timeout",
}


# What diagnostics say about each path.
RECEIVING = {
    AMQP: "lean AMQP consumer (frames read off the socket)",
    REDIS: "lean Redis pub/sub reader (replies read off the socket)",
    KOMBU: "Celery's EventReceiver (kombu)",
}


def choose_path(app: Celery) -> str:
    """Which receive path suits the app's broker: a lean one only when sure."""
    try:
        conn = app.connection_for_read()
        transport = type(conn.transport)
        options = conn.transport_options or {}
    except Exception:
        return KOMBU  # the kombu path reports the problem as it connects
    # Exact classes: a subclass (Sentinel, TLS AMQP, an app's own) may differ.
    if transport is kombu_pyamqp.Transport:
        return AMQP
    if transport is kombu_redis.Transport and set(options) <= _REDIS_OPTIONS:
        return REDIS
    return KOMBU


class _Receiver(EventReceiver):
    """Celery's receiver, tied to our thread's stop flag and hardened for bad input."""

    def __init__(self, owner: ReceiverThread, connection: Any) -> None:
        super().__init__(
            connection, handlers={"*": owner.adapter.handle}, app=owner.app, node_id=owner.node_id
        )
        self._owner = owner
        self._feed = owner.feed
        self.connect_max_retries = 0  # our loop owns reconnecting and its backoff

    @property
    def should_stop(self) -> bool:  # type: ignore[override]
        return self._owner.stopping

    @should_stop.setter
    def should_stop(self, value: bool) -> None:
        if value:
            self._owner.stopping = True

    def on_consume_ready(self, connection, channel, consumers, **kwargs) -> None:
        self._owner.on_connected(channel)
        # Not Celery's own wake-up: it retries forever on a broker that went away.
        self._owner.wake_workers(channel)

    def on_iteration(self) -> None:
        self._owner.on_iteration(self.channel)

    def get_consumers(self, Consumer, channel):
        # on_message instead of callbacks: the body is decoded by our feed, JSON
        # by the short path, anything else through kombu (which enforces `accept`).
        return [
            Consumer(
                queues=[self.queue], on_message=self._on_message, no_ack=True, accept=self.accept
            )
        ]

    @property
    def last_received(self) -> float | None:
        """When the last message arrived: the stream was good until then."""
        return self._feed.last_received

    def _on_message(self, message) -> None:
        if getattr(message, "errors", None):  # kombu could not decompress it
            self._feed.bad("undecodable message", message.body)
            return
        encoding = getattr(message, "content_encoding", None)
        self._feed.message(message.body, message.content_type, encoding)


class ReceiverThread:
    """Receives Celery's events in a daemon thread until :meth:`stop`.

    ``path`` names the receive path in use ("amqp", "redis" or "kombu"), for
    diagnostics.  ``raw_sink``, when given, gets every decoded message's body
    as JSON bytes, and its arrival time, before its events are applied (see
    event_feed.RawSink).
    """

    def __init__(
        self,
        app: Celery,
        store: JobStore,
        *,
        enable_events: bool = True,
        read_only: bool = False,
        enable_events_interval: float = ENABLE_EVENTS_INTERVAL,
        resync: bool = True,
        broadcasts: bool = True,
        raw_sink: RawSink | None = None,
        start_gap: int | None = None,
    ) -> None:
        self.app = app
        self.store = store
        # A gap recorded before the first connection (the time the monitor was
        # not running, from the journal): the first resync settles it.
        self._start_gap = start_gap
        self.adapter = EventAdapter(store)
        # What EventReceiver accepts: the event serializer, and JSON.
        accept = {app.conf.event_serializer, "json"}
        self.feed = EventFeed(self.adapter.handle, store, accept, raw_sink)
        self.path = choose_path(app)
        # Read-only publishes nothing at all: no enable_events, no heartbeat wakeup.
        self.read_only = read_only
        self.enable_events = enable_events and not read_only
        self.enable_events_interval = enable_events_interval
        self.broker = broker_label(app)
        # One event queue name for the thread's life: after a reconnect, a
        # broker that kept the queue (filesystem, a non-auto-delete queue)
        # hands over what arrived in between instead of a fresh, empty queue.
        self.node_id = f"sluice-tui-{uuid.uuid4()}"
        self.resync = resync
        self.stopping = False
        self._wake = threading.Event()
        self._last_enable = 0.0
        self._last_sweep = 0.0
        self._last_problem: str | None = None
        self._connection_failed = False  # whether any attempt to connect has failed
        self._connected_at: float | None = None  # None while not connected
        self._was_connected = False
        # Set when a connection that had been delivering events broke.
        self._lost: tuple[float, str] | None = None
        self._resync_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sluice-receiver", daemon=True)
        # Revokes sent from elsewhere: workers tell of them only when the job
        # reaches them (a scheduled job at its ETA).  Listening publishes nothing.
        self.broadcasts = BroadcastListener(app, store) if broadcasts else None

    def start(self) -> None:
        self._status("connecting")
        self._thread.start()
        if self.broadcasts is not None:
            self.broadcasts.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to stop; return whether it did within ``timeout`` seconds."""
        self.stopping = True
        self._wake.set()
        if self.broadcasts is not None:
            self.broadcasts.request_stop()  # both wind down at once
        deadline = time.monotonic() + timeout
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.broadcasts is not None:
            self.broadcasts.stop(max(0.0, deadline - time.monotonic()))
            return not self._thread.is_alive() and not self.broadcasts.alive
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        delay = BACKOFF_START
        while not self.stopping:
            try:
                self._consume_once()
                delay = BACKOFF_START
            except Exception as exc:  # every failure is a reason to reconnect, never to die
                if self.stopping:
                    break
                self._connection_failed = True
                self._note_loss(describe_error(exc))
                self._status("reconnecting", describe_error(exc))
                self._wake.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        self._status("stopped")

    def _status(self, state: str, error: str | None = None) -> None:
        self.store.set_status(state, self.broker, error, RECEIVING[self.path])

    def _consume_once(self) -> None:
        if self.path == AMQP:
            consume_amqp(self, self.feed, POLL_INTERVAL)
        elif self.path == REDIS:
            try:
                consume_redis(self, self.feed, POLL_INTERVAL)
            except LeanPathUnavailable:
                self.path = KOMBU  # retried at once, the kombu way
        else:
            self._consume_kombu()

    def _consume_kombu(self) -> None:
        with self.app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=0)
            receiver = _Receiver(self, conn)
            consuming = receiver.consume(limit=None, safety_interval=POLL_INTERVAL, wakeup=False)
            for _ in consuming:
                if self.stopping:
                    break

    # Called from the receive paths, on this thread.

    def _note_loss(self, reason: str) -> None:
        """Remember when the stream was last known good, for the gap it leaves."""
        if self._connected_at is None:
            return  # already lost, or never connected: nothing new went missing
        last_event = self.feed.last_received
        start = self._connected_at if last_event is None else max(last_event, self._connected_at)
        self._lost = (min(start, time.time()), reason)
        self._connected_at = None

    def on_connected(self, channel: Any) -> None:
        now = self._connected_at = time.time()
        self._status("connected")
        self._last_enable = 0.0
        gap = None
        if not self._was_connected and self._start_gap is not None:
            gap, self._start_gap = self._start_gap, None
            # Nothing was received before this moment either.
            why = "then the broker could not be reached" if self._connection_failed else None
            self.store.extend_gap(gap, now, why)
        if self._lost is not None:
            start, reason = self._lost
            self._lost = None
            gap = self.store.record_gap(start, now, reason)
        if self.resync and (gap is not None or not self._was_connected):
            threading.Thread(
                target=self._resync, args=(gap,), name="sluice-resync", daemon=True
            ).start()
        self._was_connected = True
        self.on_iteration(channel)

    def _resync(self, gap: int | None) -> None:
        """Correct what the gap (or the time before the first connection) hid."""
        if gap is None and self.read_only:
            return  # nothing to correct yet, and workers may not be asked
        with self._resync_lock:  # one at a time, in the order of the gaps
            if self.stopping:
                return
            result = Resync(self.app, self.store, ask_workers=not self.read_only).run()
            if gap is not None:
                self.store.settle_gap(gap, result.summary())

    def on_iteration(self, channel: Any) -> None:
        now = time.time()
        # The last few jobs may have come in a burst: the hint waits for no event.
        self.adapter.check_sent_events(now)
        if now - self._last_sweep >= SWEEP_INTERVAL and self._connected_at is not None:
            self._last_sweep = now
            self.store.age_out(now)  # it looks through the jobs about once a minute
            for news in self.store.sweep(now, self._connected_at):
                text = worker_notice(news)
                if text is not None:
                    self.store.add_notice(text)
        if not self.enable_events:
            return
        now = time.monotonic()
        if now - self._last_enable < self.enable_events_interval:
            return
        self._last_enable = now
        self._broadcast(ENABLE_EVENTS, channel)

    def wake_workers(self, channel: Any) -> None:
        """Ask every worker for a heartbeat now, so the worker list fills at once."""
        if not self.read_only:
            self._broadcast(HEARTBEAT, channel)

    def _broadcast(self, command: str, channel: Any) -> None:
        try:
            broadcast_once(self.app, command, channel)
        except channel.connection.client.connection_errors:
            raise  # the broker went away: the receive loop reconnects
        except Exception as exc:  # a broker that refuses broadcasts still delivers events
            problem = f"could not ask workers to send events: {describe_error(exc)}"
            if problem != self._last_problem:  # say it once, not every few seconds
                self._last_problem = problem
                self.store.add_notice(problem)


def worker_notice(news: WorkerNews) -> str | None:
    """The notice for what a sweep found about a worker; None when there is nothing to tell."""
    n, host = news.jobs, news.hostname
    jobs = f"{n} job{'s' if n != 1 else ''}"
    if news.what == SHUTTING_DOWN:
        return (
            f"worker {host} is shutting down (warm shutdown): {jobs} still running on it "
            "will finish first"
        )
    if not n:
        return None
    lost = "now unknown, noted 'worker lost'"
    if news.what == STOPPED:
        running = f"{n} running job{'s' if n != 1 else ''}"
        return f"worker {host} stopped (no heartbeat for twice its interval): {running} {lost}"
    if news.what == RESTARTED:
        return (
            f"worker {host} came back as a new process while {jobs} of the old one still "
            f"ran: {lost}"
        )
    if news.what == SHUTDOWN_OVERDUE:
        return (
            f"worker {host} shut down, and no event about {jobs} it was finishing came "
            f"for {SHUTDOWN_GRACE / 60:.0f} min: {lost}"
        )
    return None
