"""Polls broker queue depths on its own thread and connection, into the store's QueueBoard.

Nothing here publishes or creates anything, so it runs in ``--read-only`` too:

- Redis: ``LLEN`` of the queue's list and of its priority lists (kombu keeps
  priority ``N`` of queue ``q`` in ``q\\x06\\x16N``, for the transport's
  ``priority_steps``), summed, with the split kept for the queue's detail.
- RabbitMQ: a passive ``queue_declare`` (messages and consumers).  A passive
  declare of a missing queue closes the channel (404), so each missing queue
  costs a fresh channel, and the queue stays missing: passive never creates.
- filesystem, and other virtual transports: the transport's own count
  (for filesystem, the queue's message files).

Which queues: the app's ``task_queues`` (or its default queue), ``--queue``
names, the queues of jobs seen in events, and the workers' ``active_queues``
as the worker board last heard them.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from celery import Celery

from sluice_tui.celery_adapter.background import BackgroundLoop
from sluice_tui.model.queues import QueueSample, queues_of
from sluice_tui.model.worker_info import board_of

POLL_SECONDS = 2.0


def app_queue_names(app: Celery) -> list[str]:
    """The queues the app declares, or its default queue."""
    configured = app.conf.task_queues
    names = [getattr(q, "name", None) or str(q) for q in (configured or ())]
    return names or [app.conf.task_default_queue or "celery"]


class QueuePoller(BackgroundLoop):
    def __init__(
        self,
        app: Celery,
        store: Any,
        *,
        interval: float = POLL_SECONDS,
        extra_queues: Iterable[str] = (),
        clock: Any = time.time,
    ) -> None:
        super().__init__("sluice-queues")
        self.app = app
        self.store = store
        self.board = queues_of(store)
        self.interval = interval
        self.clock = clock
        self.board.watch(app_queue_names(app), "app")
        self.board.watch(extra_queues, "option")
        self._conn: Any = None
        self._channel: Any = None

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.poll_once()
                self._stopping.wait(self.interval)
        finally:
            self._close()

    # -- one round ----------------------------------------------------------

    def poll_once(self) -> None:
        """Ask the broker about every watched queue; failures become samples too."""
        self._learn_worker_queues()
        names = self.board.watched()
        try:
            conn = self._connection()
            kind = conn.transport.driver_type
            if kind == "redis":
                samples = self._redis(conn, names)
            elif kind == "amqp":
                samples = {name: self._amqp(conn, name) for name in names}
            else:
                samples = {name: self._virtual(conn, name) for name in names}
        except Exception as exc:  # the broker went away: say so, reconnect next round
            self._close()
            now = self.clock()
            reason = f"{type(exc).__name__}: {exc}"[:200]
            samples = {name: QueueSample(now, None, None, error=reason) for name in names}
        for name, sample in samples.items():
            self.board.record(name, sample)

    def _learn_worker_queues(self) -> None:
        figures = board_of(self.store).all_figures()
        if not figures:
            return
        # A worker gone offline (or shut down) consumes nothing, whatever it
        # said when it was last asked; its queues stay watched.
        online = {w.hostname for w in self.store.workers() if w.online}
        named: set[str] = set()
        consumers: Counter[str] = Counter()
        for hostname, item in figures.items():
            named.update(item.queues or ())
            if hostname in online:
                consumers.update(item.queues or ())
        for name in named:
            consumers[name] += 0  # known: nobody online reads it
        self.board.watch(sorted(named), "worker")
        self.board.set_worker_consumers(consumers)

    def _connection(self) -> Any:
        if self._conn is None:
            conn = self.app.connection_for_read()
            conn.ensure_connection(max_retries=0)
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                conn.release()

    # -- per broker ---------------------------------------------------------

    def _redis(self, conn: Any, names: list[str]) -> dict[str, QueueSample]:
        channel = conn.default_channel
        steps = list(channel.priority_steps)
        pipe = channel.client.pipeline()
        for name in names:
            for step in steps:
                pipe.llen(channel._q_for_pri(name, step))
        lengths = iter(pipe.execute())
        now = self.clock()
        samples = {}
        for name in names:
            split = {step: int(next(lengths)) for step in steps}
            samples[name] = QueueSample(now, sum(split.values()), None, priorities=split)
        return samples

    def _amqp(self, conn: Any, name: str) -> QueueSample:
        if self._channel is None:
            self._channel = conn.channel()
        try:
            _, messages, consumers = self._channel.queue_declare(queue=name, passive=True)
        except conn.channel_errors as exc:
            # 404 NOT_FOUND closes the channel; the next queue gets a new one.
            self._channel = None
            if getattr(exc, "code", None) == 404 or "NOT_FOUND" in str(exc):
                return QueueSample(self.clock(), None, None, missing=True)
            raise
        return QueueSample(self.clock(), int(messages), int(consumers))

    def _virtual(self, conn: Any, name: str) -> QueueSample:
        return QueueSample(self.clock(), int(conn.default_channel._size(name)), None)
