"""The Celery app every monitor in bench.sustained uses, configured from the environment.

Flower and ``celery events --dump`` run as subprocesses (``celery -A
bench.sustained_app ...``), so the broker and the run's own exchange names
reach them here.  Every name is the run's own: the bench never shares an
event or control exchange with anything else on the broker.
"""

from __future__ import annotations

import os

from celery import Celery

BROKER = "SLUICE_SUSTAINED_BROKER"
TAG = "SLUICE_SUSTAINED_TAG"
# A monitor behind by a minute still gets every event: a dropped event must
# mean the broker gave up on a slow consumer, never an expired message.
EVENT_QUEUE_TTL = 600.0


def event_exchange(tag: str) -> str:
    return f"sluice-sustained-{tag}.ev"


def control_exchange(tag: str) -> str:
    return f"sluice-sustained-{tag}.ctl"


def make_app(broker: str, tag: str) -> Celery:
    app = Celery("sluice-sustained", broker=broker, set_as_current=False)
    app.conf.event_exchange = event_exchange(tag)
    # enable_events and inspect broadcasts from the monitors reach no one else's workers.
    app.conf.control_exchange = control_exchange(tag)
    app.conf.event_queue_ttl = EVENT_QUEUE_TTL
    app.conf.event_queue_expires = EVENT_QUEUE_TTL
    return app


app = make_app(os.environ[BROKER], os.environ[TAG]) if BROKER in os.environ else None
