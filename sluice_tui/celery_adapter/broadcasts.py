"""Hear the revokes sent from elsewhere (another monitor, ``celery control``, Flower).

Workers send ``task-revoked`` only when a revoked job reaches them, so a
scheduled job revoked elsewhere would stay ``scheduled`` here until its ETA.
This listener binds a queue of its own to Celery's broadcast (pidbox) fanout
exchange, as every worker does, and applies each ``revoke`` as the resync
applies an id in a worker's revoked list.  It only listens: it publishes
nothing, so it runs in ``--read-only`` too.  Control messages are untrusted
input: malformed ones are counted on the store and skipped.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from celery import Celery
from celery.utils.saferepr import saferepr
from kombu import Consumer, Queue

from sluice_tui.celery_adapter.background import BackgroundLoop
from sluice_tui.celery_adapter.connect import describe_error
from sluice_tui.celery_adapter.resync import REVOKED, _valid_id
from sluice_tui.model.job import NO_FIELDS, REVOKE_REQUESTED, Step
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore

# The resync's own step for a revoked id, named for where it came from: the
# same state and order, so the same rule decides what it moves.
BROADCAST_REVOKE = REVOKED._replace(event="revoke broadcast")
# A running job is not stopped by a revoke (nor surely by terminate, which
# threads and solo pools ignore): it is noted, and task-revoked will tell.
BROADCAST_REVOKE_RUNNING = Step(
    JobState.ACTIVE, "revoke broadcast (still running)", 7, passive=True
)
POLL_INTERVAL = 0.25  # bounds stop() latency
BACKOFF_START = 0.5
BACKOFF_MAX = 15.0
BAD_UNDECODABLE = "undecodable control message"
BAD_MALFORMED = "malformed control message"


class BroadcastListener(BackgroundLoop):
    """Listens to the control exchange on a daemon thread until :meth:`stop`."""

    def __init__(self, app: Celery, store: JobStore) -> None:
        super().__init__("sluice-broadcasts")
        self.app = app
        self.store = store
        self.mailbox = app.control.mailbox
        # One name for the listener's life, like the event queue's.
        self.queue_name = f"sluice-tui-broadcasts-{uuid.uuid4()}"
        self.connected = False
        self.last_error: str | None = None

    def _run(self) -> None:
        delay = BACKOFF_START
        while not self._stopping.is_set():
            try:
                self._listen_once()
                delay = BACKOFF_START
            except Exception as exc:  # every failure is a reason to reconnect, never to die
                self.connected = False
                self.last_error = describe_error(exc)
                self._stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        self.connected = False

    def _listen_once(self) -> None:
        with self.app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=0)
            channel = conn.channel()
            consumer = Consumer(
                channel,
                queues=[self._queue()],
                on_message=self.on_message,
                no_ack=True,
                accept=self.mailbox.accept,
            )
            with consumer:
                self.connected = True
                while not self._stopping.is_set():
                    # socket.timeout (TimeoutError): nothing came, look at the flag.
                    with contextlib.suppress(TimeoutError):
                        conn.drain_events(timeout=POLL_INTERVAL)

    def _queue(self) -> Queue:
        # Exclusive and auto-delete: gone with this connection, never left to fill.
        return Queue(
            self.queue_name,
            exchange=self.mailbox.exchange,
            durable=False,
            exclusive=True,
            auto_delete=True,
        )

    def on_message(self, message: Any) -> None:
        """Decode one control message and apply it; never raises."""
        try:
            body = message.decode()
        except Exception as exc:
            sample = f"{type(exc).__name__}: {saferepr(getattr(message, 'body', None), 300)}"
            self.store.record_bad_event(BAD_UNDECODABLE, sample)
            return
        if _expired(getattr(message, "headers", None)):
            return  # workers ignore it too
        try:
            revoke = parse_revoke(body)
        except ValueError as exc:
            self.store.record_bad_event(BAD_MALFORMED, f"{exc}: {saferepr(body, 300)}")
            return
        if revoke is not None:
            ids, terminate = revoke
            apply_revoke(self.store, ids, terminate=terminate, at=time.time())


def parse_revoke(body: Any) -> tuple[list[str], bool] | None:
    """The ids and terminate flag of a ``revoke``; None for other commands.

    Raises ValueError for a body no Celery sends.
    """
    if not isinstance(body, Mapping) or not isinstance(body.get("method"), str):
        raise ValueError("not a control command")
    if body["method"] != "revoke":
        return None  # enable_events, inspect requests, commands of newer Celerys
    arguments = body.get("arguments")
    if not isinstance(arguments, Mapping):
        raise ValueError("revoke without arguments")
    task_id = arguments.get("task_id")
    ids = [task_id] if isinstance(task_id, str) else task_id
    if not isinstance(ids, list | tuple) or not ids or not all(_valid_id(i) for i in ids):
        raise ValueError("revoke with no valid task_id")
    return list(ids), bool(arguments.get("terminate"))


def apply_revoke(store: JobStore, ids: Iterable[str], *, terminate: bool, at: float) -> None:
    """What the resync does for ids in a worker's revoked list, for a revoke just heard."""
    for job_id in ids:
        if job_id not in store:
            continue  # a forgotten or never-seen id is not worth a job of its own
        if store.get(job_id).state is JobState.ACTIVE:
            _note_running(store, job_id, terminate, at)
        else:
            store.resync(job_id, BROADCAST_REVOKE, at, None, {}, NO_FIELDS)


def _note_running(store: JobStore, job_id: str, terminate: bool, at: float) -> None:
    # A revoke this app sent has been noted by the actions gate already.
    if (store.get(job_id).extra or {}).get(REVOKE_REQUESTED):
        return
    store.apply(job_id, BROADCAST_REVOKE_RUNNING, at, None, {}, NO_FIELDS, from_event=False)
    store.annotate(job_id, "revoke_terminate", terminate)
    store.annotate(job_id, REVOKE_REQUESTED, True)


def _expired(headers: Any) -> bool:
    expires = headers.get("expires") if isinstance(headers, Mapping) else None
    return isinstance(expires, int | float) and 0 < expires < time.time()
