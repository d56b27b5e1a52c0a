"""The receiver's own broadcasts: ``enable_events`` and the wake-up ``heartbeat``.

Celery's ``control.broadcast`` publishes with kombu's retry on and no retry
limit, so a broker that goes away at that moment holds the calling thread in
kombu's reconnect loop until the broker is back.  On the receiver thread that
means no "reconnecting" status, no gap and no backoff for the whole outage.
These broadcasts are sent once on the receiver's own channel instead: a dead
broker raises at once, and the receiver's loop reconnects as for any error.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Producer

ENABLE_EVENTS = "enable_events"
HEARTBEAT = "heartbeat"  # asks every worker for a worker-heartbeat now


class _OneShotProducer(Producer):
    """A producer that never retries: the caller owns reconnecting."""

    def publish(self, body: Any, **kwargs: Any) -> Any:
        kwargs["retry"] = False
        return super().publish(body, **kwargs)


def broadcast_once(app: Celery, command: str, channel: Any) -> None:
    """Send control ``command`` to every worker on ``channel``; raise if the broker is gone."""
    mailbox = app.control.mailbox(channel.connection.client)
    # kombu's own message shape (clock, expiry, serializer), with our producer.
    mailbox._publish(command, {}, channel=channel, producer=_OneShotProducer(channel))
