"""How a typed id is read, and which job it names: the rules behind retry/revoke JOB_ID."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from sluice_tui.celery_adapter.resolve import IdKind, Lookup, id_kind
from sluice_tui.model.states import JobState
from tests.cluster import WORKLOAD_APP, Cluster, LineReader, send_event

FULL = "7513d231-5b1e-4c43-9a4f-0d6c6f0e8a11"


def test_what_counts_as_a_full_id_a_prefix_or_a_custom_id():
    assert id_kind(FULL) is IdKind.FULL
    assert id_kind(FULL.upper()) is IdKind.FULL
    assert id_kind("7513d231") is IdKind.PREFIX
    assert id_kind("7513d231-5b1e") is IdKind.PREFIX
    # Not hex and dashes, or longer than a UUID: someone's own task_id, used as is.
    assert id_kind("invoice-42") is IdKind.CUSTOM
    assert id_kind(FULL + "0") is IdKind.CUSTOM
    assert id_kind("") is IdKind.CUSTOM


def lookup(query: str, *sightings: tuple[str, str]) -> Lookup:
    found = Lookup(query, id_kind(query))
    for job_id, where in sightings:
        found.saw(job_id, JobState.SCHEDULED, where)
    return found


def test_a_prefix_names_a_job_only_when_one_fits():
    other = "7513d231-0000-4000-8000-000000000000"
    assert lookup("7513d2", (FULL, "events")).resolved() == FULL
    both = lookup("7513d2", (FULL, "events"), (other, "result backend"))
    assert both.resolved() is None and both.matches() == [other, FULL]
    assert lookup("7513d2").resolved() is None
    # Longer ids fit one: that one.
    assert lookup("7513d231-5", (FULL, "events"), (other, "events")).resolved() == FULL


def test_a_short_custom_id_known_exactly_wins_but_not_from_a_revoked_list_alone():
    # `revoke 7513d231` under the old behaviour put the short id in the
    # workers' revoked lists: that must not hide the real job.
    leftover = lookup("7513d231", ("7513d231", "worker w1@h (in the revoked list)"), (FULL, "x"))
    assert leftover.resolved() is None
    real = lookup("7513d231", ("7513d231", "result backend"), (FULL, "events"))
    assert real.resolved() == "7513d231"


def test_full_and_custom_ids_are_themselves_known_or_not():
    assert lookup(FULL).resolved() == FULL and not lookup(FULL).known
    assert lookup(FULL, (FULL, "events")).known
    assert lookup("invoice-42").resolved() == "invoice-42"


def run_in(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sluice_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=cluster.env,
        stdin=subprocess.DEVNULL,
    )


def test_a_prefix_found_by_listing_the_file_result_backend(tmp_path):
    from celery.app.task import Context

    cluster = Cluster("filesystem", tmp_path)
    job_id = str(uuid.uuid4())
    request = Context(id=job_id, task="demo.add", args=[1, 2], kwargs={})
    cluster.app.backend.mark_as_failure(job_id, ValueError("x"), request=request)
    # --read-only: resolved and shown, then refused, and nothing is published.
    result = run_in(cluster, "retry", job_id[:8], "-A", WORKLOAD_APP, "--read-only")
    assert result.returncode == 2
    assert f"{job_id[:8]} -> {job_id} failed (result backend)" in result.stderr
    assert "workers not asked (--read-only" in result.stderr
    assert "read-only mode: retry is disabled" in result.stderr


def test_a_prefix_heard_only_in_the_events(tmp_path):
    cluster = Cluster("filesystem", tmp_path)
    job_id = str(uuid.uuid4())
    command = [sys.executable, "-m", "sluice_tui", "retry", job_id[:8], "-A", WORKLOAD_APP]
    proc = subprocess.Popen(
        [*command, "--read-only", "--listen", "20"],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    stderr = LineReader(proc.stderr)
    try:
        # It listens once backend and workers found nothing; it may not be
        # subscribed yet, so the job's events go out until it has heard them.
        while proc.poll() is None:
            send_event(cluster.app, type="task-failed", uuid=job_id, exception="E()")
            time.sleep(0.2)
        text = stderr.text(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 2
    assert f"{job_id[:8]} -> {job_id} failed (events)" in text
    assert "events (20 s): 1 match" in text


@pytest.mark.broker
def test_a_prefix_of_a_job_still_waiting_in_a_redis_queue_is_found(tmp_path):
    """No worker holds it and no event names it: only the queue knows it (priorities too)."""
    from celery import Celery

    from sluice_tui.celery_adapter.resolve import Resolver
    from sluice_tui.model.store import JobStore
    from tests.cluster import broker_url, require_transport

    require_transport("redis")
    queue = f"sluice-test-{uuid.uuid4().hex[:8]}"
    app = Celery("waiting", broker=broker_url("redis", tmp_path), set_as_current=False)
    app.conf.task_default_queue = queue
    plain = app.send_task("proj.add", (1, 2)).id
    urgent = app.send_task("proj.add", (3, 4), priority=9).id
    try:
        store = JobStore()
        resolver = Resolver(app, store, ask_workers=False, listen_seconds=0)
        for job_id in (plain, urgent):
            found = resolver.lookup(job_id[:8])
            assert found.resolved() == job_id, found.sources()
            assert found.describe(job_id) == f"queued (broker queue {queue})"
            assert store.get(job_id).state is JobState.QUEUED
        nothing = resolver.lookup("0" * 8 if not plain.startswith("0") else "f" * 8)
        assert nothing.resolved() is None and "broker queues: no match" in nothing.sources()
    finally:
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            for priority in channel.priority_steps:
                channel.client.delete(channel._q_for_pri(queue, priority))


@pytest.mark.broker
def test_rabbitmq_queues_are_not_read_and_the_lookup_says_so(tmp_path):
    from celery import Celery

    from sluice_tui.celery_adapter.resolve import Resolver
    from sluice_tui.model.store import JobStore
    from tests.cluster import broker_url, require_transport

    require_transport("rabbitmq")
    app = Celery("waiting", broker=broker_url("rabbitmq", tmp_path), set_as_current=False)
    found = Resolver(app, JobStore(), ask_workers=False, listen_seconds=0).lookup("abcdef12")
    assert "broker queues not read (amqp cannot be read without taking messages)" in (
        found.sources()
    )
