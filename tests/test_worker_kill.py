"""A worker killed with SIGKILL, mid-task, on a real broker.

The worker runs in Tokyo while the monitor (this process) runs in UTC: every
time must still land on one time line.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.job import WORKER_LOST
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests.cluster import Cluster, require_transport, wait_for

HEARTBEAT = 1  # seconds (an integer for the worker CLI); Celery defaults to 2
# East of the monitor's UTC (tests/conftest.py): a worker here dated its events
# nine hours ahead before the monitor stopped shifting them by zone.
WORKER_ZONE = "Asia/Tokyo"


@pytest.mark.parametrize(
    "transport", ["filesystem", pytest.param("redis", marks=pytest.mark.broker)]
)
def test_a_killed_worker_goes_offline_and_its_running_job_is_marked_lost(transport, tmp_path):
    require_transport(transport)
    cluster = Cluster(transport, tmp_path)
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store)
    cluster.env["TZ"] = WORKER_ZONE
    try:
        worker, hostname = cluster.start_beating_worker(receiver, store, HEARTBEAT)
        later = cluster.send("demo.slow", 1, countdown=3600)
        job = cluster.send("demo.slow", 60)
        wait_for(lambda: store.get(job.id).state is JobState.ACTIVE, 30, "the job to start")
        wait_for(
            lambda: any(e.event == "task-received" for e in store.get(later.id).history),
            30,
            "the worker to receive the job due in an hour",
        )
        assert store.get(later.id).state is JobState.SCHEDULED

        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool, no goodbye
        killed_at = time.time()
        wait_for(lambda: store.get(job.id).state is not JobState.ACTIVE, 30, "the job to move")

        (seen,) = store.workers()
        assert seen.hostname == hostname and not seen.online and seen.freq == HEARTBEAT
        snapshot = store.get(job.id)
        assert snapshot.state is JobState.UNKNOWN
        assert snapshot.extra[WORKER_LOST] == hostname
        # In story order: Celery stamps task-sent after publishing, so on a busy
        # machine the worker's task-received can carry the earlier time.
        (attempt,) = snapshot.attempts()
        assert [e.event for e in attempt.entries] == [
            "task-sent",
            "task-received",
            "task-started",
            "worker lost",
        ]
        lost = snapshot.history[-1]
        # Judged at twice the heartbeat interval after the last heartbeat, which
        # came before the kill (give or take one in flight).
        assert lost.timestamp == pytest.approx(seen.last_heartbeat + 2 * HEARTBEAT)
        assert lost.timestamp <= killed_at + 2 * HEARTBEAT + 0.5
        assert any(hostname in text and "1 running job" in text for _, text in store.notices())
        assert store.get(later.id).state is JobState.SCHEDULED  # not running: not lost
    finally:
        receiver.stop()
        cluster.close()
