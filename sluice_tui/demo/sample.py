"""A fixed, deterministic cluster history: for screenshots and UI snapshot tests.

Every state appears, one job has a retry history and a traceback, one parent
has children, and one of two workers has gone quiet.
"""

from __future__ import annotations

from typing import Any

from sluice_tui.actions import ActionsGate, RetryCall
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
NOW = T0 + 120.0

TRACEBACK = """Traceback (most recent call last):
  File "/srv/shop/billing/tasks.py", line 42, in charge
    receipt = gateway.charge(order.card, order.total)
  File "/srv/shop/billing/gateway.py", line 118, in charge
    raise CardDeclined(response.reason)
billing.errors.CardDeclined: card declined (insufficient funds)
"""


def job_id(n: int) -> str:
    return f"{n:08x}-5eed-4a11-8b0b-{n:012x}"


def _event(kind: str, uuid: str | None, at: float, host: str, **fields: Any) -> dict:
    return {
        "type": kind,
        "uuid": uuid,
        "timestamp": T0 + at,
        "hostname": host,
        "local_received": T0 + at,
        **fields,
    }


def _story(
    n: int,
    name: str,
    args: str,
    steps: list[tuple[str, float, dict]],
    host: str = "worker-a@prod-1",
) -> list[dict]:
    uuid = job_id(n)
    out = [
        _event(
            "task-sent",
            uuid,
            steps[0][1] - 0.05,
            "web@prod-0",
            name=name,
            args=args,
            kwargs="{}",
            retries=0,
            queue="default",
            routing_key="default",
            root_id=uuid,
        )
    ]
    for kind, at, fields in steps:
        if kind == "task-received":
            fields = {"name": name, "args": args, "kwargs": "{}", "root_id": uuid, **fields}
        out.append(_event(kind, uuid, at, fields.pop("host", host), **fields))
    return out


def sample_events() -> list[dict]:
    events: list[dict] = []
    events += _story(
        1,
        "shop.orders.confirm",
        "(1041,)",
        [
            ("task-received", 1.0, {}),
            ("task-started", 1.1, {}),
            ("task-succeeded", 1.4, {"result": "'confirmed'", "runtime": 0.31}),
        ],
    )
    events += _story(
        2,
        "shop.billing.charge",
        "(1042, 'EUR')",
        [
            ("task-received", 2.0, {}),
            ("task-started", 2.1, {}),
            (
                "task-retried",
                2.6,
                {
                    "exception": "GatewayTimeout('no answer in 5s')",
                    "traceback": "Traceback ...\nGatewayTimeout",
                },
            ),
            ("task-received", 2.7, {"retries": 1, "host": "worker-b@prod-2"}),
            ("task-started", 7.7, {"host": "worker-b@prod-2"}),
            (
                "task-retried",
                8.0,
                {"exception": "GatewayTimeout('no answer in 5s')", "host": "worker-b@prod-2"},
            ),
            ("task-received", 8.1, {"retries": 2}),
            ("task-started", 18.1, {}),
            (
                "task-failed",
                18.9,
                {
                    "exception": "CardDeclined('card declined (insufficient funds)')",
                    "traceback": TRACEBACK,
                },
            ),
        ],
    )
    events += _story(
        3,
        "shop.mail.send_receipt",
        "('ada@example.com',)",
        [
            ("task-received", 3.0, {}),
            ("task-started", 3.2, {}),
            ("task-succeeded", 3.9, {"result": "None", "runtime": 0.7}),
        ],
    )
    events += _story(
        4,
        "media.video.transcode",
        "('clip-77.mov', '1080p')",
        [
            ("task-received", 30.0, {"host": "worker-b@prod-2"}),
            ("task-started", 30.1, {"host": "worker-b@prod-2"}),
        ],
    )
    events += _story(
        5, "reports.nightly", "()", [("task-received", 40.0, {"eta": "2023-11-15T02:00:00+00:00"})]
    )
    events += _story(
        6,
        "search.reindex",
        "('products',)",
        [
            ("task-received", 50.0, {}),
            ("task-started", 50.2, {}),
            ("task-retried", 51.0, {"exception": "ConnectionError('search node down')"}),
        ],
    )
    events += _story(
        7,
        "shop.orders.cancel_stale",
        "()",
        [("task-received", 60.0, {}), ("task-revoked", 61.0, {"terminated": False})],
    )
    events += _story(
        8,
        "shop.catalog.import",
        "('feed.csv',)",
        [
            ("task-received", 70.0, {}),
            ("task-started", 70.1, {}),
            ("task-succeeded", 75.2, {"result": "2", "runtime": 5.1}),
        ],
    )
    for child, at in ((9, 72.0), (10, 73.0)):
        events += _story(
            child,
            "shop.catalog.import_row",
            f"({child - 8},)",
            [
                ("task-received", at, {"parent_id": job_id(8), "root_id": job_id(8)}),
                ("task-started", at + 0.1, {}),
                ("task-succeeded", at + 0.4, {"result": "True", "runtime": 0.3}),
            ],
        )
    events.append(
        _event(
            "task-sent",
            job_id(11),
            90.0,
            "web@prod-0",
            name="shop.mail.digest",
            args="('weekly',)",
            kwargs="{}",
            queue="mail",
            routing_key="mail",
        )
    )
    for host, at in (("worker-a@prod-1", 119.0), ("worker-b@prod-2", 100.0)):
        events.append(
            _event(
                "worker-heartbeat",
                None,
                at,
                host,
                freq=2.0,
                active=1,
                processed=1200,
                loadavg=[0.42, 0.38, 0.30],
                sw_ident="py-celery",
                sw_ver="5.4.0",
                sw_sys="Linux",
            )
        )
    return events


class _NoCluster:
    """A stand-in cluster for the sample: it sends nothing anywhere."""

    def backend_state(self, job_id: str) -> JobState | None:
        return None

    def retry_call(self, job) -> RetryCall:
        return RetryCall(job.name, (1042, "EUR"), {}, job.queue, None, None, "the sample")

    def send(self, call: RetryCall) -> str:
        return job_id(12)

    def revoke(self, job_id: str, *, terminate: bool, signal: str) -> list[str]:
        return []


def sample_store(max_jobs: int = 1000) -> JobStore:
    clock = lambda: NOW  # noqa: E731 - a frozen clock
    store = JobStore(max_jobs=max_jobs, clock=clock)
    adapter = EventAdapter(store, clock=clock)
    for event in sample_events():
        adapter(event)
    # The failed charge was retried from sluice-tui: its retry is not seen yet.
    gate = ActionsGate(store, _NoCluster(), clock=clock)
    gate.retry(gate.plan_retry(job_id(2)))
    # The broker restarted once; a producer sent one message that is not an event.
    gap = store.record_gap(T0 + 61.2, T0 + 64.8, "Connection to broker lost")
    store.settle_gap(gap, "resync corrected 1 job; 2 workers answered")
    adapter({"type": "task-started", "uuid": 42, "hostname": "\x1b]0;pwned\x07"})
    return store
