"""One time base: workers in one zone, the monitor in another, and two clocks.

Celery stamps every event with ``time.time()``, true epoch seconds, and adds
the sender's ``utcoffset``.  What the monitor dates itself (a retry it sent, a
lost worker) uses its own clock.  Both must land on the same time line, or a
history sorts hours out of order.  These tests run the monitor in New York
while workers say they are in UTC or Tokyo, and give the workers a clock of
their own, a little behind the monitor's.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from celery import Celery

from sluice_tui.celery_adapter.receiver import ReceiverThread, _Receiver
from sluice_tui.celery_adapter.resync import Resync
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests import events as ev
from tests.conftest import FakeClock
from tests.test_resync import cluster_answering, request

# Celery's utcoffset is hours west of UTC (time.timezone / 3600).
UTC_WORKER = 0.0
TOKYO_WORKER = -9.0
WORKER_LAG = 0.25  # the worker's clock runs this far behind the monitor's


@pytest.fixture
def monitor_in_new_york():
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    os.environ["TZ"] = "UTC"  # as tests/conftest.py pins it
    time.tzset()


class Monitor:
    """A receiver fed message by message, as the broker would, into a store with its own clock."""

    def __init__(self) -> None:
        self.clock = FakeClock(time.time())
        self.store = JobStore(clock=self.clock)
        app = Celery("clock-test", broker="memory://", set_as_current=False)
        thread = ReceiverThread(app, self.store, broadcasts=False, resync=False)
        self._receiver = _Receiver(thread, None)

    def deliver(self, event: dict) -> float:
        """Hand over one event as a broker message; returns when it was received."""
        self._receiver._on_message(
            SimpleNamespace(content_type="application/json", body=json.dumps(event))
        )
        return self._receiver.last_received


def worker_event(make, *args, utcoffset: float, **kw) -> dict:
    body = make(*args, **kw)
    body["utcoffset"] = utcoffset
    del body["local_received"]  # the receiver sets it
    return body


@pytest.mark.usefixtures("monitor_in_new_york")
@pytest.mark.parametrize("zone", [UTC_WORKER, TOKYO_WORKER], ids=["utc", "tokyo"])
def test_a_lost_worker_is_noted_after_what_its_job_did(zone):
    monitor = Monitor()
    worker_now = time.time() - WORKER_LAG
    received_at = monitor.deliver(
        worker_event(ev.heartbeat, "w1@host", worker_now, freq=1.0, utcoffset=zone)
    )
    monitor.deliver(worker_event(ev.received, "a", worker_now, utcoffset=zone))
    monitor.deliver(worker_event(ev.started, "a", worker_now + 0.1, utcoffset=zone))

    lost = monitor.store.sweep_workers(received_at + 5, received_at)
    assert lost == {"w1@host": 1}
    job = monitor.store.get("a")
    assert [entry.event for entry in job.history] == [
        "task-received",
        "task-started",
        "worker lost",
    ]
    assert job.state is JobState.UNKNOWN
    # Every entry is epoch seconds: within moments of each other, not hours.
    times = [entry.timestamp for entry in job.history]
    assert max(times) - min(times) < 5


@pytest.mark.usefixtures("monitor_in_new_york")
@pytest.mark.parametrize("zone", [UTC_WORKER, TOKYO_WORKER], ids=["utc", "tokyo"])
def test_a_job_due_in_an_hour_is_scheduled(zone):
    monitor = Monitor()
    worker_now = time.time() - WORKER_LAG
    eta = datetime.fromtimestamp(worker_now + 3600, UTC).isoformat()
    monitor.deliver(worker_event(ev.received, "later", worker_now, eta=eta, utcoffset=zone))
    monitor.deliver(worker_event(ev.received, "overdue", worker_now, eta=None, utcoffset=zone))
    assert monitor.store.get("later").state is JobState.SCHEDULED
    assert monitor.store.get("overdue").state is JobState.QUEUED


@pytest.mark.usefixtures("monitor_in_new_york")
@pytest.mark.parametrize("zone", [UTC_WORKER, TOKYO_WORKER], ids=["utc", "tokyo"])
def test_a_retry_sent_after_a_failure_is_listed_after_it(zone):
    monitor = Monitor()
    worker_now = monitor.clock.now - WORKER_LAG
    monitor.deliver(worker_event(ev.received, "a", worker_now, utcoffset=zone))
    monitor.deliver(worker_event(ev.failed, "a", worker_now + 0.5, utcoffset=zone))
    monitor.clock.advance(10)  # the user reads the traceback, then presses r
    assert monitor.store.record_action("a", "retry sent", {})
    events = [entry.event for entry in monitor.store.get("a").history]
    assert events == ["task-received", "task-failed", "retry sent"]


@pytest.mark.usefixtures("monitor_in_new_york")
@pytest.mark.parametrize("zone", [UTC_WORKER, TOKYO_WORKER], ids=["utc", "tokyo"])
def test_a_resync_after_a_gap_is_listed_after_what_came_before_it(zone):
    monitor = Monitor()
    worker_now = monitor.clock.now - WORKER_LAG
    monitor.deliver(worker_event(ev.received, "a", worker_now, utcoffset=zone))
    # The stream broke; asked afterwards, the worker says the job started meanwhile.
    monitor.clock.advance(30)
    running = {**request("a"), "time_start": worker_now + 20}
    Resync(
        cluster_answering(active={"w1@host": [running]}), monitor.store, clock=monitor.clock
    ).run()
    job = monitor.store.get("a")
    assert [entry.event for entry in job.history] == ["task-received", "resync: running on worker"]
    assert job.state is JobState.ACTIVE
