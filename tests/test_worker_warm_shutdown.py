"""A worker stopped with SIGTERM (Celery's warm shutdown) mid-task, on a real Redis broker.

It says goodbye (worker-offline) at once and lets the running task finish: the
job must end completed and never be called lost on the way.
"""

from __future__ import annotations

import os
import signal

import pytest

from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.job import WORKER_LOST
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests.cluster import Cluster, require_transport, wait_for

HEARTBEAT = 1  # seconds: silence would be judged within 2 s, well inside the task
TASK_SECONDS = 3.0


@pytest.mark.broker
def test_a_warm_shutdown_lets_the_running_job_complete_without_calling_it_lost(tmp_path):
    require_transport("redis")
    cluster = Cluster("redis", tmp_path)
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store)
    try:
        worker, hostname = cluster.start_beating_worker(receiver, store, HEARTBEAT)
        job = cluster.send("demo.slow", TASK_SECONDS)
        wait_for(lambda: store.get(job.id).state is JobState.ACTIVE, 30, "the job to start")

        os.kill(worker.pid, signal.SIGTERM)  # the main process only: a warm shutdown
        notice = wait_for(
            lambda: [text for _, text in store.notices() if hostname in text],
            30,
            "a notice about the worker",
        )
        assert notice == [
            f"worker {hostname} is shutting down (warm shutdown): 1 job still running on it "
            "will finish first"
        ]
        (seen,) = store.workers()
        assert not seen.online  # offline: it said goodbye
        wait_for(lambda: store.get(job.id).state is JobState.COMPLETED, 30, "the job to complete")
        assert worker.wait(timeout=30) == 0  # it finished the job, then exited

        snapshot = store.get(job.id)
        assert WORKER_LOST not in (snapshot.extra or {})
        assert "worker lost" not in [entry.event for entry in snapshot.history]
        assert [entry.event for entry in snapshot.history][-1] == "task-succeeded"
        assert store.rows([job.id])[job.id].note is None
        assert [text for _, text in store.notices() if hostname in text] == notice
    finally:
        receiver.stop()
        cluster.close()
