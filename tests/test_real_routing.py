"""Retry routing on a cluster far from the ideal one: producers without task-sent
events, no result_extended, and jobs on a custom queue that one worker alone
consumes.  A retry sent to the default queue would never run there."""

from __future__ import annotations

import contextlib
import time

import pytest

from sluice_tui.actions import ActionsGate, plan_lines
from sluice_tui.celery_adapter.control import CeleryControl
from sluice_tui.celery_adapter.events import SENT_EVENTS_HINT
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.actions import UIActions
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.screens.confirm import ConfirmRetryScreen
from tests.cluster import Cluster, require_transport, wait_for
from tests.ui_helpers import SIZE, capture_notifications, screen_text, settle, wait_in_app

FAR_FROM_IDEAL = {"task_send_sent_event": False, "result_extended": False}

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_transport("redis")
    cluster = Cluster("redis", tmp_path_factory.mktemp("routing"), conf=FAR_FROM_IDEAL)
    cluster.custom = f"{cluster.namespace}.custom"
    try:
        cluster.start_worker("only-custom", 2, "-Q", cluster.custom)
        yield cluster
    finally:
        cluster.close()


def on_custom(cluster: Cluster, name: str, *args, **options) -> str:
    return cluster.send(name, *args, queue=cluster.custom, **options).id


async def test_a_retry_with_no_known_queue_says_so_and_goes_to_the_queue_typed(cluster):
    store = JobStore()
    gate = ActionsGate(store, CeleryControl(cluster.app))
    app = SluiceApp(
        store, source=ReceiverThread(cluster.app, store), actions=UIActions(gate), tick_seconds=0.1
    )
    notes = capture_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await wait_in_app(pilot, lambda: store.worker_counts()[0] >= 1, "a heartbeat", 30)
        # The worker's events may be enabled a moment after its first heartbeat:
        # send until jobs show up; three without task-sent bring the notice.
        jobs: list[str] = []
        deadline = time.monotonic() + 30
        while sum(store.get(j).state is JobState.COMPLETED for j in jobs) < 3:
            if time.monotonic() > deadline:
                pytest.fail(f"jobs on the custom queue never completed: {jobs}")
            jobs.append(on_custom(cluster, "demo.add", 1, 1))
            with contextlib.suppress(pytest.fail.Exception):
                await wait_in_app(pilot, lambda: store.get(jobs[-1]).seen, "its events", 3)

        original = on_custom(cluster, "demo.fail_once", str(cluster.tmp_path / "marker"))
        await wait_in_app(pilot, lambda: store.get(original).state is JobState.FAILED, "fail", 30)
        await pilot.press("g", *original[:8], "enter", "r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmRetryScreen), notes
        assert app.screen.plan.queue is None  # no task-sent, no extended result, left its worker
        default = cluster.app.conf.task_default_queue
        assert dict(plan_lines(app.screen.plan))["queue"] == (
            f"not known: the app's default queue '{default}' will be used"
        )
        assert "not known: the app's default queue" in screen_text(app)
        await pilot.click("#queue")
        app.screen.query_one("#queue").value = cluster.custom  # typed, without 30 key presses
        await pilot.press("enter")
        await settle(pilot)
        new_id = store.get(original).extra.get("retried_as")
        assert new_id, notes
        await wait_in_app(
            pilot, lambda: store.get(new_id).state is JobState.COMPLETED, "the retry to run", 30
        )
        retry = store.get(new_id)
        assert retry.worker.startswith("only-custom@") and retry.result == "'succeeded on retry'"
        assert gate.log[-1].outcome.endswith(f"to {cluster.custom}")
        await wait_in_app(  # said by now: its grace period ran while the jobs did
            pilot, lambda: any(SENT_EVENTS_HINT in n for n in notes), "the task-sent notice", 30
        )


def test_a_worker_still_holding_a_revoked_job_gives_its_queue_and_arguments(cluster):
    """The one-shot command's case: no events seen at all, the backend's word only."""
    job = on_custom(cluster, "demo.add", 2, 3, countdown=60)
    asker = cluster.app.control.inspect(timeout=0.5)
    wait_for(lambda: any((asker.query_task(job) or {}).values()), 30, "the worker to hold it")
    cluster.app.control.revoke(job)  # the worker marks it revoked now, keeps it till its eta
    wait_for(lambda: cluster.app.AsyncResult(job).state == "REVOKED", 30, "the revoke")

    gate = ActionsGate(JobStore(), CeleryControl(cluster.app))
    plan = gate.plan_retry(job)
    assert plan.job.state is JobState.CANCELLED and not plan.job.seen
    assert plan.queue == cluster.custom and plan.call.queue_source.startswith(
        "from worker only-custom@"
    )
    assert (plan.call.name, plan.call.args) == ("demo.add", (2, 3))
    result = cluster.app.AsyncResult(gate.retry(plan))
    wait_for(lambda: result.state == "SUCCESS", 30, "the retry to run on the custom queue")
    assert result.result == 5
