"""A Celery app whose tasks reach every job state: for the demo and the tests.

Configured from the environment so that a worker subprocess, the producer and
the monitor share one broker without sharing anything else:

- ``SLUICE_BROKER``: a broker URL, or a directory for Celery's filesystem://
  transport (nothing to install, works across processes); unset, Celery's
  default broker, so that importing this module never writes anything;
- ``SLUICE_BACKEND``: a result backend URL (default: files beside the broker
  directory, or none);
- ``SLUICE_NAMESPACE``: a prefix for queue and exchange names, so runs on a
  shared broker never see each other's tasks or events.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from celery import Celery
from celery.exceptions import Reject


def demo_queues(namespace: str) -> dict[str, str]:
    """The demo's queues by role: one its workers keep up with, one they cannot, one unread.

    Only the demo routes jobs to the last two; other users of the workload
    (the tests' clusters) see the default queue alone.
    """
    return {
        "tasks": f"{namespace}.tasks",  # the default queue; two workers keep up with it
        "reports": f"{namespace}.reports",  # one slow consumer: fills faster than it drains
        "archive": f"{namespace}.archive",  # no worker consumes it: a backlog that only grows
    }


def config_from_env(env: Mapping[str, str] = os.environ) -> dict:
    """Celery settings for the workload, from SLUICE_* variables in ``env``."""
    broker = env.get("SLUICE_BROKER", "")
    namespace = env.get("SLUICE_NAMESPACE", "sluice")
    backend = env.get("SLUICE_BACKEND") or None
    conf: dict = {
        "task_send_sent_event": True,
        "task_track_started": True,
        "result_extended": True,
        "task_default_queue": demo_queues(namespace)["tasks"],
        "event_exchange": f"{namespace}.ev",
        "control_exchange": f"{namespace}.ctl",
        "broker_connection_retry_on_startup": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
    }
    if "://" in broker:
        conf["broker_url"] = broker
    elif broker:
        root = Path(broker)
        for sub in ("queue", "control", "results"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        conf["broker_url"] = "filesystem://"
        conf["broker_transport"] = "sluice_tui.demo.filesystem_transport:Transport"
        # Without an event loop (filesystem has none) a prefork worker hands an
        # ETA task to a full pool from its timer thread and waits there, and
        # the heartbeats that thread also sends stop until a slot frees up: a
        # monitor rightly reports the worker as gone.  Don't block the timer.
        conf["worker_pool_putlocks"] = False
        conf["broker_transport_options"] = {
            "data_folder_in": str(root / "queue"),
            "data_folder_out": str(root / "queue"),
            "control_folder": str(root / "control"),
            "polling_interval": 0.05,
        }
        backend = backend or f"file://{root / 'results'}"
    if backend:
        conf["result_backend"] = backend
    return conf


app = Celery("sluice_demo")
app.conf.update(config_from_env())


@app.task(name="demo.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="demo.fail")
def fail(message: str) -> None:
    raise ValueError(message)


@app.task(name="demo.flaky", bind=True, max_retries=5)
def flaky(self, succeed_after: int, backoff: float = 0.2) -> str:
    """Retries (same id, new attempt) until its ``succeed_after``-th retry."""
    if self.request.retries < succeed_after:
        raise self.retry(
            exc=ConnectionError(f"attempt {self.request.retries + 1} failed"),
            countdown=backoff * (2**self.request.retries),
        )
    return f"succeeded after {self.request.retries} retries"


@app.task(name="demo.poll", bind=True, max_retries=None)
def poll(self, ready_after: int) -> str:
    """Retries at once, with no limit, until its ``ready_after``-th retry: a poller."""
    if self.request.retries < ready_after:
        raise self.retry(countdown=0)
    return f"ready after {self.request.retries} retries"


@app.task(name="demo.progress", bind=True)
def progress(self, steps: int) -> int:
    """Reports each step as a custom task event, as long-running tasks do."""
    for step in range(1, steps + 1):
        self.send_event("task-progress", current=step, total=steps)
    return steps


def _work_for(seconds: float) -> None:
    """Stand in for real work, in short sleeps so that a terminate lands at once."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)


@app.task(name="demo.slow")
def slow(seconds: float) -> float:
    _work_for(seconds)
    return seconds


class PaymentDeclined(Exception):
    pass


@app.task(name="demo.charge")
def charge(order: int, seconds: float, declined: bool = False) -> str:
    """A card payment: quick, and declined when the sender says so (about one in five)."""
    _work_for(seconds)
    if declined:
        raise PaymentDeclined(f"card for order {order} declined (insufficient funds)")
    return f"order {order} charged"


@app.task(name="demo.resize")
def resize(image: str, seconds: float, corrupt: bool = False) -> str:
    """An image job: slower than a payment, and seldom failing."""
    _work_for(seconds)
    if corrupt:
        raise OSError(f"cannot identify image file {image!r}")
    return f"{image} resized"


@app.task(name="demo.report")
def report(title: str, seconds: float) -> str:
    """A long job on the demo's reports queue, sent faster than its one slot can run them."""
    _work_for(seconds)
    return f"report {title!r} written"


@app.task(name="demo.archive")
def archive(batch: int) -> int:
    """Sent to the demo's archive queue, which no worker consumes: it never runs there."""
    return batch


@app.task(name="demo.reject", acks_late=True)
def reject() -> None:
    raise Reject("this job is refused by the demo", requeue=False)


@app.task(name="demo.fail_once")
def fail_once(marker: str) -> str:
    """Fails until ``marker`` exists (it creates it): a retry then succeeds."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once\n")
        raise RuntimeError("the first attempt fails; a retry will succeed")
    return "succeeded on retry"


@app.task(name="demo.spawn")
def spawn(count: int) -> int:
    for i in range(count):
        add.delay(i, i)
    return count


@app.task(name="demo.measure")
def measure(payload: str) -> int:
    return len(payload)
