"""SVG snapshots of the workers screen, a worker's detail and a control dialog.

Over the fixed sample with worker figures and heartbeats laid on top (frozen
clock, UTC).  Regenerate after an intended UI change with:
pytest tests/test_worker_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from sluice_tui.demo.sample import NOW, sample_store
from sluice_tui.model.worker_info import HeldJob, HeldJobs, TaskLimits, WorkerFigures
from sluice_tui.ui.app import SluiceApp

A_HOST, B_HOST = "worker-a@prod-1", "worker-b@prod-2"


def workers_app() -> SluiceApp:
    """The sample app with what asking the workers would have brought, and throughput."""
    store = sample_store()
    # Heartbeats after the sample's last one (NOW - 1), at a varying pace, for
    # the sparklines (close together, so the clock can stay frozen at NOW).
    processed = 1200
    for n, done in enumerate((1, 2, 3, 3, 2, 1, 2, 3, 3, 2, 1, 1, 2)):
        processed += done
        data = {"active": 2, "processed": processed, "freq": 2.0}
        store.apply_worker(A_HOST, "heartbeat", data, NOW - 0.9 + 0.05 * n)
    board = store.worker_info
    board.record_figures(
        [
            WorkerFigures(
                A_HOST,
                NOW,
                pool="prefork",
                concurrency=4,
                pool_size=4,
                prefetch=16,
                queues=("celery", "reports"),
                registered=("reports.nightly", "shop.billing.charge", "shop.orders.confirm"),
                limits={"shop.billing.charge": TaskLimits(rate_limit="10/m", time_limit="60")},
                uptime=3600.0,
            ),
            WorkerFigures(
                B_HOST, NOW, pool="prefork", concurrency=8, pool_size=3, autoscale=(8, 2)
            ),
        ],
        at=NOW,
    )
    board.record_held(
        HeldJobs(A_HOST, NOW, (HeldJob("reserved", "0f0f0f0f-aaaa", "shop.mail.digest", "()"),))
    )
    # No actions: nothing asks the (absent) workers while the picture is taken.
    return SluiceApp(store, clock=lambda: NOW, tick_seconds=None)


@pytest.mark.parametrize(
    "size", [(120, 34), (80, 24), (200, 50)], ids=lambda size: f"{size[0]}x{size[1]}"
)
def test_workers_screen(snap_compare, size):
    assert snap_compare(workers_app(), terminal_size=size, press=["w"])


@pytest.mark.parametrize("size", [(120, 34), (80, 24)], ids=lambda size: f"{size[0]}x{size[1]}")
def test_worker_detail(snap_compare, size):
    assert snap_compare(workers_app(), terminal_size=size, press=["w", "enter"])


def test_time_limit_dialog_at_80x24(snap_compare):
    from sluice_tui.actions import WorkerAction
    from sluice_tui.ui.screens.worker_control import WorkerControlScreen

    async def open_dialog(pilot) -> None:
        app = pilot.app
        await pilot.press("w")
        figures = app.store.worker_info.figures(A_HOST)
        await app.push_screen(WorkerControlScreen(WorkerAction.TIME_LIMIT, A_HOST, figures))

    app = workers_app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_dialog)
