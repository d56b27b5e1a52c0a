"""A mixed workload on a real prefork worker, watched through `sluice-tui dump`.

The worker starts without -E: the monitor must switch task events on itself.
Filesystem always runs; Redis and RabbitMQ are mandatory when CI=true.
"""

from __future__ import annotations

import json
import signal
from datetime import datetime

import pytest

from tests.cluster import (
    TRANSPORTS,
    Cluster,
    LineReader,
    require_transport,
    wait_for,
)
from tests.events import CURSOR_ESCAPES, TITLE_ESCAPE


@pytest.fixture(scope="module", params=TRANSPORTS)
def run(request, tmp_path_factory):
    """Run the workload once per transport; every test below reads its dump."""
    transport = request.param
    require_transport(transport)
    cluster = Cluster(transport, tmp_path_factory.mktemp(transport))
    try:
        cluster.start_worker("w1")
        dump = cluster.sluice(
            "dump", "-A", "sluice_tui.demo.workload", "--seconds", "90", "--until-idle", "1.5", "-v"
        )
        stdout, stderr = LineReader(dump.stdout), LineReader(dump.stderr)
        stderr.wait_for("worker seen", 30)

        ids = {
            "add": cluster.send("demo.add", 2, 3).id,
            "fail": cluster.send("demo.fail", "boom").id,
            "flaky": cluster.send("demo.flaky", 2, 0.2).id,
            "reject": cluster.send("demo.reject").id,
            "eta": cluster.send("demo.add", 5, 5, countdown=2).id,
            "spawn": cluster.send("demo.spawn", 2).id,
            "slow": cluster.send("demo.slow", 60).id,
            "escapes": cluster.send("demo.add", TITLE_ESCAPE, CURSOR_ESCAPES).id,
        }
        slow = cluster.app.AsyncResult(ids["slow"])
        wait_for(lambda: slow.state == "STARTED", 30, "the slow job to start")
        cluster.app.control.revoke(ids["slow"], terminate=True, signal="SIGTERM")

        out = stdout.text(timeout=120)
        assert dump.wait(timeout=10) == 0, stderr.seen
        assert "\x1b" not in out and "\x07" not in out  # JSON escapes them
        jobs = {job["id"]: job for job in json.loads(out)}
        yield cluster, ids, jobs
    finally:
        cluster.close()


def events_of(job):
    return [(h["event"], h["state"]) for h in job["history"]]


def worker_events(job):
    """The history without task-sent.  Celery stamps task-sent after publishing
    the task, so a quick task can finish on the worker before that timestamp:
    by event time the producer's entry may come last (seen on RabbitMQ)."""
    return [entry for entry in events_of(job) if entry[0] != "task-sent"]


def test_success(run):
    _, ids, jobs = run
    job = jobs[ids["add"]]
    assert job["state"] == "completed"
    assert job["name"] == "demo.add" and job["args"] == "(2, 3)" and job["result"] == "5"
    assert worker_events(job) == [
        ("task-received", "queued"),
        ("task-started", "active"),
        ("task-succeeded", "completed"),
    ]
    assert events_of(job).count(("task-sent", "queued")) == 1
    assert job["worker"].startswith("w1@")
    assert job["runtime"] >= 0


def test_failure_keeps_exception_and_traceback(run):
    _, ids, jobs = run
    job = jobs[ids["fail"]]
    assert job["state"] == "failed"
    assert "ValueError" in job["exception"] and "boom" in job["exception"]
    assert "Traceback" in job["traceback"]
    assert worker_events(job)[-1] == ("task-failed", "failed")


def test_retries_then_success_keeps_every_attempt(run):
    _, ids, jobs = run
    job = jobs[ids["flaky"]]
    assert job["state"] == "completed"
    assert job["retries"] == 2
    events = [e for e, _ in worker_events(job)]
    assert events.count("task-retried") == 2
    assert events.count("task-started") == 3
    assert events[-1] == "task-succeeded"
    # Each retry comes back through task-received: scheduled while its countdown
    # runs, or queued if the worker only got it after the countdown (a loaded machine).
    received = [state for event, state in events_of(job) if event == "task-received"]
    assert len(received) == 3 and set(received[1:]) <= {"scheduled", "queued"}
    timestamps = [h["timestamp"] for h in job["history"]]
    assert timestamps == sorted(timestamps)
    assert job["children"] == []


def test_rejected_is_failed(run):
    _, ids, jobs = run
    job = jobs[ids["reject"]]
    assert job["state"] == "failed"
    assert "task-rejected" in [e for e, _ in events_of(job)]


def test_eta_job_is_scheduled_then_runs(run):
    _, ids, jobs = run
    job = jobs[ids["eta"]]
    assert job["state"] == "completed"
    eta = datetime.fromisoformat(job["eta"]).timestamp()
    (received,) = [h for h in job["history"] if h["event"] == "task-received"]
    # Scheduled while its countdown runs.  A loaded machine may hand the job to
    # the worker only after the countdown ended: then it is plainly queued.
    expected = "scheduled" if received["timestamp"] < eta else "queued"
    assert received["state"] == expected, (received, job["eta"])


def test_revoked_while_running_is_cancelled(run):
    _, ids, jobs = run
    job = jobs[ids["slow"]]
    assert job["state"] == "cancelled"
    assert job["details"].get("terminated") is True
    assert job["details"].get("signum") == signal.SIGTERM
    assert ("task-started", "active") in events_of(job)


def test_children_link_to_their_parent(run):
    _, ids, jobs = run
    parent = jobs[ids["spawn"]]
    assert parent["state"] == "completed"
    assert len(parent["children"]) == 2
    for child_id in parent["children"]:
        child = jobs[child_id]
        assert child["parent_id"] == parent["id"]
        assert child["root_id"] == parent["id"]
        assert child["state"] == "completed"


def test_every_job_has_finished(run):
    _, _, jobs = run
    assert len(jobs) == 10  # eight sent by the test, two by spawn
    assert {job["state"] for job in jobs.values()} <= {"completed", "failed", "cancelled"}


def test_escape_sequences_in_results_are_kept_as_data_not_sent_raw(run):
    _, ids, jobs = run
    job = jobs[ids["escapes"]]
    assert job["state"] == "completed"
    # The exact text survives (as JSON escapes); only a terminal must not see it raw.
    assert TITLE_ESCAPE + CURSOR_ESCAPES in job["result"]
