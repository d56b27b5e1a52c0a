"""Retry and revoke from the TUI against real workers on real brokers."""

from __future__ import annotations

import time
from functools import partial

import pytest
from celery import Celery

from sluice_tui.actions import ActionsGate
from sluice_tui.celery_adapter.control import CeleryControl
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.actions import UIActions
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.screens.confirm import ConfirmRetryScreen, ConfirmRevokeScreen
from tests.cluster import TRANSPORTS, Cluster, require_transport
from tests.ui_helpers import SIZE, capture_notifications, settle, wait_in_app


@pytest.fixture(scope="module", params=TRANSPORTS)
def cluster(request, tmp_path_factory):
    require_transport(request.param)
    cluster = Cluster(request.param, tmp_path_factory.mktemp(request.param))
    try:
        cluster.start_worker("w1", concurrency=2)
        yield cluster
    finally:
        cluster.close()


def monitor(cluster: Cluster, control_app: Celery | None = None):
    store = JobStore()
    gate = ActionsGate(store, CeleryControl(control_app or cluster.app))
    app = SluiceApp(
        store, source=ReceiverThread(cluster.app, store), actions=UIActions(gate), tick_seconds=0.1
    )
    return app, capture_notifications(app)


async def open_job(pilot, job_id: str, *, whole_id: bool = False) -> None:
    # A unique prefix finds a job the monitor has seen; others need the whole id.
    await pilot.press("g", *(job_id if whole_id else job_id[:8]), "enter")


async def until_connected(pilot, app, cluster: Cluster) -> None:
    """Until the worker sends task events: it was started without -E, and the
    monitor's enable_events broadcast may still be on its way."""
    await wait_in_app(
        pilot,
        lambda: app.store.worker_counts()[0] >= 1,
        "a worker heartbeat",
        30,
        explain=lambda: (
            f"status {app.store.status}, workers {app.store.workers()}, "
            f"stats {app.store.stats()}; worker log:\n"
            + (cluster.tmp_path / "w1.log").read_text()[-3000:]
        ),
    )
    deadline = time.monotonic() + 30
    while True:
        probe = cluster.send("demo.add", 0, 0).id
        try:
            await wait_in_app(pilot, partial(_has_started, app, probe), "task events", 3)
            return
        except pytest.fail.Exception:
            if time.monotonic() > deadline:
                raise


def _has_started(app, job_id: str) -> bool:
    return any(t.event == "task-started" for t in app.store.get(job_id).history)


async def test_failed_job_retried_from_the_ui_runs_again_and_completes(cluster):
    app, notes = monitor(cluster)
    marker = cluster.tmp_path / f"marker-{time.monotonic_ns()}"
    async with app.run_test(size=SIZE) as pilot:
        await until_connected(pilot, app, cluster)
        original = cluster.send("demo.fail_once", str(marker)).id
        store = app.store
        await wait_in_app(
            pilot,
            lambda: store.get(original).state is JobState.FAILED,
            "the first attempt to fail",
            30,
        )
        await open_job(pilot, original)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmRetryScreen), notes
        await pilot.press("y")
        await settle(pilot)
        new_id = store.get(original).extra.get("retried_as")
        assert new_id and new_id != original, notes
        await wait_in_app(
            pilot,
            lambda: store.get(new_id).state is JobState.COMPLETED,
            "the retry to complete",
            30,
        )
        retry = store.get(new_id)
        assert retry.result == "'succeeded on retry'"
        assert retry.extra["retry_of"] == original and retry.extra["attempt"] == 2
        assert retry.args == store.get(original).args
        assert "retry sent" in [t.event for t in store.get(original).history]


async def test_cut_arguments_are_refused_without_extended_results_and_exact_with(cluster):
    payload = "p" * 3000
    no_backend = Celery("no-backend", set_as_current=False)
    no_backend.conf.update(
        {
            k: v
            for k, v in cluster.app.conf.items()
            if k not in ("result_backend", "CELERY_RESULT_BACKEND")
        }
    )
    no_backend.conf.result_backend = None
    app, notes = monitor(cluster, control_app=no_backend)
    async with app.run_test(size=SIZE) as pilot:
        await until_connected(pilot, app, cluster)
        original = cluster.send("demo.fail", payload).id
        await wait_in_app(
            pilot, lambda: app.store.get(original).state is JobState.FAILED, "the job to fail", 30
        )
        assert len(app.store.get(original).args) < len(payload)  # cut by Celery
        await open_job(pilot, original)
        await pilot.press("r")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmRetryScreen)
        assert any(
            "cut at Celery's 1024-character limit" in n and "result_extended" in n for n in notes
        ), notes

    app, notes = monitor(cluster)  # the app's own config: result_extended=True
    async with app.run_test(size=SIZE) as pilot:
        await open_job(pilot, original, whole_id=True)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmRetryScreen), notes
        assert app.screen.plan.call.args == (payload,)
        await pilot.press("y")
        await settle(pilot)
        # This monitor never saw the job's events: its state came from the backend.
        (record,) = app.actions.gate.log
        new_id = record.new_job_id
        assert record.ok and new_id
        assert app.store.get(new_id).extra["retry_of"] == original
    result = cluster.app.AsyncResult(new_id)
    deadline = time.monotonic() + 30
    while result.state != "FAILURE" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert result.state == "FAILURE"
    assert tuple(result.args) == (payload,)


async def test_active_job_is_terminated_and_cancelled(cluster):
    app, notes = monitor(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await until_connected(pilot, app, cluster)
        job = cluster.send("demo.slow", 60).id
        store = app.store
        await wait_in_app(pilot, lambda: store.get(job).state is JobState.ACTIVE, "start", 30)
        await open_job(pilot, job)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmRevokeScreen)
        await pilot.press("t")
        await settle(pilot)
        assert any("Terminate (SIGTERM)" in n and "w1@" in n for n in notes), notes
        await wait_in_app(
            pilot, lambda: store.get(job).state is JobState.CANCELLED, "task-revoked", 30
        )
        assert store.get(job).extra["terminated"] is True


async def test_scheduled_job_is_revoked_and_never_runs(cluster):
    app, notes = monitor(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await until_connected(pilot, app, cluster)
        # Long enough that a loaded machine still shows it scheduled for a while.
        job = cluster.send("demo.add", 1, 2, countdown=12).id
        store = app.store
        await wait_in_app(
            pilot, lambda: store.get(job).state is JobState.SCHEDULED, "the job to be scheduled", 30
        )
        await open_job(pilot, job)
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert store.get(job).extra.get("revoke_requested") is True, notes
        await wait_in_app(
            pilot,
            lambda: store.get(job).state is JobState.CANCELLED,
            "the revoke to take effect at the ETA",
            30,
        )
        assert "task-started" not in [t.event for t in store.get(job).history]
    assert cluster.app.AsyncResult(job).state == "REVOKED"
