"""The Celery app both consumers of ``python -m bench.drain`` load (``dump -A bench.drain_app``).

Its event exchange comes from the environment, so each round's stream goes to
that round's consumer only; the event queue keeps a backlog for 10 minutes
instead of Celery's 5 s, as ``bench.end_to_end.bench_app`` does, because the
backlog waits while the consumer is paused.
"""

from __future__ import annotations

import os

from celery import Celery

EXCHANGE_VARIABLE = "SLUICE_DRAIN_EXCHANGE"
BACKLOG_TTL = 600.0


def make_app(broker: str, exchange: str) -> Celery:
    app = Celery("sluice-drain", broker=broker, set_as_current=False)
    app.conf.event_exchange = exchange
    app.conf.event_queue_ttl = BACKLOG_TTL
    app.conf.event_queue_expires = BACKLOG_TTL
    return app


# The broker is always given on the command line (--broker), which wins.
app = make_app("memory://", os.environ.get(EXCHANGE_VARIABLE, "sluice-drain.ev"))
