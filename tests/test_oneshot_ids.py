"""`sluice-tui retry|revoke JOB_ID` with the ids users really type, on real clusters.

Issue 11: the 8-character id the table shows was "revoked" with success while
the real job stayed scheduled.  Here a real worker holds real jobs on Redis
and RabbitMQ (results in Redis), and the commands are run as a user runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import redis

from tests.cluster import REDIS_URL, WORKLOAD_APP, Cluster, require_transport, wait_for
from tests.own_servers import free_port

BROKERS = [
    pytest.param("redis", marks=pytest.mark.broker),
    pytest.param("rabbitmq", marks=pytest.mark.broker),
]


@pytest.fixture(scope="module", params=BROKERS)
def cluster(request, tmp_path_factory):
    require_transport(request.param)
    cluster = Cluster(request.param, tmp_path_factory.mktemp(request.param))
    # Results in Redis, so prefixes are found by SCANning its keys.
    backend = f"{REDIS_URL}/{1 + uuid.uuid4().int % 15}"
    cluster.env["SLUICE_BACKEND"] = backend
    cluster.app.conf.result_backend = backend
    cluster.ids = []  # every id this module makes, to remove its results after
    try:
        cluster.start_worker("w1", concurrency=1)
        yield cluster
    finally:
        cluster.close()
        client = redis.Redis.from_url(backend)
        for job_id in cluster.ids:
            client.delete(f"celery-task-meta-{job_id}")


def run(cluster: Cluster, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "sluice_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or cluster.env,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in result.stderr
    return result


def new_id(cluster: Cluster, prefix: str = "") -> str:
    job_id = prefix + str(uuid.uuid4())[len(prefix) :]
    cluster.ids.append(job_id)
    return job_id


def worker_list(cluster: Cluster, name: str) -> list:
    """One worker's ``inspect <name>`` reply; returns as soon as it answers."""
    replies = getattr(cluster.app.control.inspect(timeout=2, limit=1), name)() or {}
    return [item for items in replies.values() for item in items]


def scheduled_ids(cluster: Cluster) -> set[str]:
    return {entry["request"]["id"] for entry in worker_list(cluster, "scheduled")}


def schedule(cluster: Cluster, job_id: str) -> None:
    """A job the worker holds until its ETA, five minutes away, like the issue's."""
    cluster.send("demo.add", 1, 2, task_id=job_id, countdown=300)
    wait_for(lambda: job_id in scheduled_ids(cluster), 30, f"the worker to schedule {job_id}")


def fail(cluster: Cluster, job_id: str) -> None:
    result = cluster.send("demo.fail", "card declined", task_id=job_id)
    wait_for(lambda: result.state == "FAILURE", 30, f"{job_id} to fail")


def test_a_short_id_with_app_and_broker_revokes_the_real_job(cluster):
    job_id = new_id(cluster)
    schedule(cluster, job_id)
    # -A brings the app's config (namespaced exchanges, result backend) and
    # --broker wins over the broker it names, which here is not running.
    dead = {**cluster.env, "SLUICE_BROKER": f"redis://127.0.0.1:{free_port()}/0"}
    result = run(
        cluster, "revoke", job_id[:8], "-A", WORKLOAD_APP, "--broker", cluster.broker_url,
        "--yes", env=dead,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{job_id[:8]} -> {job_id} scheduled (worker w1@" in result.stderr
    assert f"tasks {{'{job_id}'}} flagged as revoked" in result.stdout
    assert job_id in worker_list(cluster, "revoked")


def test_an_ambiguous_prefix_lists_the_jobs_and_a_longer_one_retries(cluster):
    shared = new_id(cluster)[:9]  # "7513d231-": both ids start with it
    scheduled, failed = cluster.ids[-1], new_id(cluster, shared)
    schedule(cluster, scheduled)
    fail(cluster, failed)

    result = run(cluster, "retry", shared[:8], "-A", WORKLOAD_APP, "--yes")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""  # nothing sent
    assert f"2 job ids start with {shared[:8]}" in result.stderr
    assert f"{failed}  failed (result backend)" in result.stderr
    assert f"{scheduled}  scheduled (worker w1@" in result.stderr

    # Enough of the id to tell them apart: found by listing the result backend.
    result = run(cluster, "retry", failed[:13], "-A", WORKLOAD_APP, "--yes")
    assert result.returncode == 0, result.stderr
    assert f"{failed[:13]} -> {failed} failed (result backend)" in result.stderr
    again = result.stdout.strip()
    cluster.ids.append(again)
    assert again != failed
    assert cluster.app.AsyncResult(again).get(timeout=30, propagate=False).args == (
        "card declined",
    )


def test_a_prefix_no_job_has_is_refused_and_nothing_is_revoked(cluster):
    nobody = uuid.uuid4().hex[:8]
    result = run(cluster, "revoke", nobody, "-A", WORKLOAD_APP, "--yes", "--listen", "0.5")
    assert result.returncode == 2
    assert f"no job id starts with {nobody}" in result.stderr
    assert "result backend: no match" in result.stderr
    assert "workers (1 answered): no match" in result.stderr
    assert "events (0.5 s): no match" in result.stderr
    assert nobody not in worker_list(cluster, "revoked")


def test_a_full_id_no_one_knows_is_revoked_but_not_reported_as_success(cluster):
    # Celery allows it (a job not sent yet, or queued without events): the
    # workers are told, and the status says no known job was touched.
    unknown = str(uuid.uuid4())
    result = run(cluster, "revoke", unknown, "-A", WORKLOAD_APP, "--yes", "--listen", "0.5")
    assert result.returncode == 3, result.stderr
    assert f"no job {unknown} is known anywhere" in result.stderr
    assert f"tasks {{'{unknown}'}} flagged as revoked" in result.stdout
    assert unknown in worker_list(cluster, "revoked")


def test_retry_without_a_result_backend_says_one_is_needed():
    # A bare app on an in-process broker: no worker, no backend, no server.
    job_id = str(uuid.uuid4())
    result = subprocess.run(
        [sys.executable, "-m", "sluice_tui", "retry", job_id, "--broker", "memory://", "--yes"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("CELERY_")},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "no result backend" in result.stderr
    assert "set result_backend (with result_extended = True)" in result.stderr
