"""`sluice-tui stats`: a known workload on a real cluster, read back as figures."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from sluice_tui.cli import main
from sluice_tui.model.queues import QueueBoard, QueueSample
from sluice_tui.model.states import ALL_STATES, JobState
from sluice_tui.model.task_types import TaskTypes
from sluice_tui.stats import Report, WorkerLine, print_tables
from tests.cluster import WORKLOAD_APP, Cluster, LineReader, require_transport
from tests.events import CURSOR_ESCAPES, TITLE_ESCAPE
from tests.own_servers import free_port

ADDS, FAILS, BACKLOG = 4, 3, 5
# Sent where a worker looks, under a name no worker knows: a terminal escape
# in a task name, which the worker fails as unregistered.
HOSTILE = f"demo.{TITLE_ESCAPE}name"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(
    scope="module",
    params=["filesystem", pytest.param("redis", marks=pytest.mark.broker)],
)
def run(request, tmp_path_factory):
    """One stats run per broker over a known workload: (cluster, raw stdout, parsed JSON)."""
    require_transport(request.param)
    cluster = Cluster(request.param, tmp_path_factory.mktemp(request.param))
    try:
        cluster.start_worker("w1", 2)
        backlog = f"{cluster.namespace}.backlog"
        # Before stats listens: no event names these jobs, only the broker counts them.
        for n in range(BACKLOG):
            cluster.send("demo.add", n, n, queue=backlog)
        options = [
            *("--json", "-v", "--queue", backlog),
            # Ends a second after the last job finishes; 60 s is a bound, not a wait.
            *("--seconds", "60", "--until-idle", "1"),
        ]
        if request.param == "filesystem":  # both entry points, one run each
            stats = celery_sluice(cluster, "stats", *options)
        else:
            stats = cluster.sluice("stats", "-A", WORKLOAD_APP, *options)
        out, err = LineReader(stats.stdout), LineReader(stats.stderr)
        # A heartbeat heard: stats listens, and the worker (started without -E)
        # sends events, so every job below is seen from its start.
        err.wait_for("worker seen", 30)
        results = [cluster.send("demo.add", 1, 1) for _ in range(ADDS)]
        results += [cluster.send("demo.fail", "boom") for _ in range(FAILS)]
        cluster.send(HOSTILE)
        for result in results:
            result.get(timeout=30, propagate=False)
        text = out.text(timeout=60)
        assert stats.wait(timeout=30) == 0, err.text(timeout=1)
        yield cluster, text, json.loads(text)
    finally:
        for process in cluster.processes:  # quicker than the worker's warm shutdown
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        cluster.close()  # on Redis this also deletes the namespace's keys: the backlog too


def celery_sluice(cluster: Cluster, *args: str) -> subprocess.Popen:
    """``celery -A <workload> sluice ...``, stopped with the cluster."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", WORKLOAD_APP, "sluice", *args],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    cluster.processes.append(proc)
    return proc


def by_name(items, key="name"):
    return {item[key]: item for item in items}


def test_task_type_counts_match_the_workload(run):
    _, _, report = run
    types = by_name(report["task_types"])
    assert set(types) == {"demo.add", "demo.fail", HOSTILE}
    counts = {name: {s: n for s, n in t["counts"].items() if n} for name, t in types.items()}
    assert counts == {
        "demo.add": {"completed": ADDS},
        "demo.fail": {"failed": FAILS},
        HOSTILE: {"failed": 1},
    }
    assert set(types["demo.add"]["counts"]) == {s.value for s in ALL_STATES}


def test_failure_rates_runtimes_and_throughput_match_the_workload(run):
    _, _, report = run
    types = by_name(report["task_types"])
    assert types["demo.add"]["failure_rate"] == 0.0
    assert types["demo.fail"]["failure_rate"] == 1.0
    runtime = types["demo.add"]["runtime"]
    assert 0 < runtime["p50"] <= runtime["p95"] and runtime["max"] < 30
    assert types["demo.add"]["per_minute"] > 0 and types["demo.add"]["retries"] == 0


def test_a_queue_with_a_known_backlog_and_no_consumer_shows_its_count(run):
    cluster, _, report = run
    queues = by_name(report["queues"])
    backlog = queues[f"{cluster.namespace}.backlog"]
    assert backlog == {
        "name": f"{cluster.namespace}.backlog",
        "messages": BACKLOG,
        "consumers": 0,
        "missing": False,
    }
    tasks = queues[f"{cluster.namespace}.tasks"]
    assert tasks["messages"] == 0 and tasks["consumers"] == 1


def test_workers_show_what_they_said_when_asked(run):
    cluster, _, report = run
    (worker,) = report["workers"]
    assert worker["hostname"] == f"w1@{cluster.namespace}"
    assert worker["online"] is True and worker["concurrency"] == 2
    assert worker["queues"] == [f"{cluster.namespace}.tasks"]
    assert worker["processed"] >= ADDS + FAILS and worker["active"] == 0


def test_json_output_carries_no_raw_control_character(run):
    _, text, report = run
    assert CONTROL.search(text) is None
    assert HOSTILE in by_name(report["task_types"])  # the name itself survives, escaped


def test_tables_show_every_figure_with_cluster_text_made_inert():
    board = QueueBoard()
    board.watch([f"jobs{CURSOR_ESCAPES}"], "option")
    board.record(f"jobs{CURSOR_ESCAPES}", QueueSample(100.0, 12, None))
    board.set_worker_consumers({"other": 1})  # workers answered; none reads this queue
    types = TaskTypes()
    for n, state in enumerate((JobState.COMPLETED, JobState.FAILED, JobState.FAILED)):
        types.record(HOSTILE, state, 101.0 + n, 0.25 * (n + 1))
    held = {HOSTILE: [1 if state is JobState.ACTIVE else 0 for state in ALL_STATES]}
    report = Report(
        queues=board.snapshot(),
        task_types=types.snapshot(120.0, held),
        workers=[WorkerLine(f"w1@{TITLE_ESCAPE}", True, 1, 40, 4, ("jobs",))],
        workers_asked="1 replied",
    )
    out = io.StringIO()
    print_tables(report, out, width=200)
    text = out.getvalue()
    assert CONTROL.search(text) is None
    assert "jobs\\x1b[2J\\x1b[H\\x1b[5A" in text and "backlog, no consumer" in text
    assert "demo.\\x1b]0;pwned\\x07name" in text and "w1@\\x1b]0;pwned\\x07" in text
    assert "66.7" in text  # failure rate, per cent: 2 of 3 failed


def test_bad_broker_url_exits_2(capsys, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "")  # --broker sets it; restored after
    assert main(["stats", "--broker", "nosuch://host", "--seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sluice-tui: ") and "nosuch" in err and "Traceback" not in err


def test_unreachable_broker_exits_1_after_the_window(capsys, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "")
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert main(["stats", "--broker", url, "--seconds", "1", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "could not connect" in captured.err and "Traceback" not in captured.err


def test_queues_named_on_the_command_line_reach_the_tui_and_stats(monkeypatch):
    """--queue (repeatable) and --queue-interval, before or after the subcommand."""
    import sluice_tui.launch
    import sluice_tui.stats

    monkeypatch.setenv("CELERY_BROKER_URL", "")
    calls = {}
    monkeypatch.setattr(sluice_tui.launch, "open_tui", lambda app, **kw: calls.update(tui=kw))
    monkeypatch.setattr(sluice_tui.stats, "stats_app", lambda app, **kw: calls.update(stats=kw))
    broker = ("--broker", "memory://")
    assert main([*broker, "--queue", "a", "--queue", "b", "--queue-interval", "0.5"]) == 0
    assert main([*broker, "--queue", "a", "stats", "--queue", "c"]) == 0
    assert tuple(calls["tui"]["queues"]) == ("a", "b") and calls["tui"]["queue_interval"] == 0.5
    assert tuple(calls["stats"]["queues"]) == ("c",)  # the subcommand's own wins, as elsewhere
