"""History that survives restarts, with a real prefork worker on filesystem://.

One worker and one ``sluice-tui collect`` process serve the module: collect
writes the default journal under ``XDG_STATE_HOME`` (a temporary folder, never
the real home) while a live ``dump`` watches the same workload.  Then: the
journal printed by ``dump --history`` equals the live dump; a second collector
is refused; a TUI follows the collector's journal; a restarted collector
restores every job and resyncs what it missed while it was down; a TUI that
writes its own journal restores it on the next start; a collector whose
journal cannot grow stops with a clear message.
"""

from __future__ import annotations

import json
import re
import resource
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.export import job_to_dict
from sluice_tui.history import NO_HISTORY, HistoryOptions
from sluice_tui.journal import Journal
from sluice_tui.launch import build_app
from sluice_tui.model.store import JobStore
from tests.cluster import WORKLOAD_APP, Cluster, LineReader, wait_for
from tests.ui_helpers import SIZE, screen_text, wait_in_app

WRITING = re.compile(r"writing (\S+) from ")


def start_collect(cluster: Cluster, *options: str) -> SimpleNamespace:
    """A collector on the default journal; returns once it has a worker in view."""
    proc = cluster.sluice("collect", "-A", WORKLOAD_APP, "--log-every", "0.5", *options)
    err = LineReader(proc.stderr)
    path = Path(WRITING.search(err.wait_for("writing ", 60))[1])
    err.wait_for("workers 1/1 online", 30)
    return SimpleNamespace(proc=proc, err=err, path=path)


def journal_jobs(path: Path) -> dict[str, dict]:
    """What the journal holds now, read in this process (quicker than a dump to poll)."""
    reader = Journal.open(path, mode="read")
    try:
        store = JobStore()
        reader.restore(store, EventAdapter(store))
    finally:
        reader.stop()
    return {job.id: job_to_dict(job) for job in store.snapshots()}


def dump_history(cluster: Cluster, path: Path, *options: str) -> dict[str, dict]:
    proc = cluster.sluice("dump", "--history", str(path), *options)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return {job["id"]: job for job in json.loads(out)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("journal")
    cluster = Cluster("filesystem", tmp)
    cluster.env["XDG_STATE_HOME"] = str(tmp / "state")
    try:
        cluster.start_worker("w1")
        collector = start_collect(cluster)
        live = cluster.sluice(
            "dump", "-A", WORKLOAD_APP, "--seconds", "90", "--until-idle", "2", "-v"
        )
        live_out, live_err = LineReader(live.stdout), LineReader(live.stderr)
        live_err.wait_for("worker seen", 30)
        ids = {
            "add": cluster.send("demo.add", 2, 3).id,
            "fail": cluster.send("demo.fail", "boom").id,
            "flaky": cluster.send("demo.flaky", 1, 0.2).id,
            "spawn": cluster.send("demo.spawn", 2).id,
            "eta": cluster.send("demo.add", 5, 5, countdown=1).id,
        }
        out = live_out.text(timeout=120)
        assert live.wait(timeout=10) == 0, live_err.seen
        live_jobs = {job["id"]: job for job in json.loads(out)}
        yield SimpleNamespace(
            cluster=cluster, tmp=tmp, collector=collector, ids=ids, live=live_jobs
        )
    finally:
        cluster.close()


def test_collect_keeps_the_default_journal_under_the_state_home(world):
    path = world.collector.path
    assert path.parent == world.tmp / "state" / "sluice-tui"
    assert re.fullmatch(r"journal-[0-9a-f]{12}\.sqlite3", path.name)


def test_dump_from_the_journal_equals_a_live_dump_of_the_same_workload(world):
    journal = dump_history(world.cluster, world.collector.path)
    live = world.live
    assert len(live) == 7  # five sent, two spawned
    spawned = live[world.ids["spawn"]]["children"]
    assert len(spawned) == 2
    assert {job_id: journal[job_id] for job_id in live} == live
    failed = dump_history(world.cluster, world.collector.path, "--state", "failed")
    assert set(failed) == {world.ids["fail"]}


def test_a_second_collector_on_the_journal_is_refused_clearly(world):
    path = world.collector.path
    second = world.cluster.sluice("collect", "-A", WORKLOAD_APP, "--history", str(path))
    _, err = second.communicate(timeout=60)
    assert second.returncode == 2
    assert f"pid {world.collector.proc.pid}" in err and "Traceback" not in err
    assert world.collector.proc.poll() is None  # the first one never noticed


async def test_a_tui_reads_the_collectors_journal_and_follows_it(world):
    cluster, collector = world.cluster, world.collector
    app = build_app(cluster.app, history=HistoryOptions(path=collector.path))
    for job_id in world.live:
        assert job_id in app.store  # the weekend's history, before the first screen
    async with app.run_test(size=SIZE) as pilot:
        await wait_in_app(
            pilot,
            lambda: f"following collector pid {collector.proc.pid}" in screen_text(app),
            "the header to name the collector",
            explain=lambda: screen_text(app),
        )
        later = cluster.send("demo.add", 40, 2).id
        await wait_in_app(
            pilot,
            lambda: app.store.get(later).state.value == "completed",
            "a job the collector journaled after the TUI started",
            timeout=30,
        )


def test_a_restarted_collector_restores_every_job_and_resyncs_the_time_it_was_down(world):
    cluster, collector = world.cluster, world.collector
    slow = cluster.send("demo.slow", 3).id
    wait_for(
        lambda: journal_jobs(collector.path).get(slow, {}).get("state") == "active",
        30,
        "the collector to journal the slow job as running",
    )
    journaled = journal_jobs(collector.path)
    collector.proc.send_signal(signal.SIGTERM)
    assert collector.proc.wait(timeout=30) == 0
    assert "stopped" in collector.err.text(timeout=10)
    cluster.app.AsyncResult(slow).get(timeout=30)  # it finishes while nobody listens

    restarted = world.collector = start_collect(cluster)
    assert restarted.path == collector.path
    opening = restarted.err.wait_for("restored", 10)
    restored = int(re.search(r"restored ([\d,]+) jobs", opening)[1].replace(",", ""))
    assert restored == len(journaled)
    assert "that gap is resynced once connected" in opening
    wait_for(
        lambda: journal_jobs(restarted.path).get(slow, {}).get("state") == "completed",
        30,
        "the gap's resync to find the slow job finished",
    )
    journal = dump_history(cluster, restarted.path)
    assert {job_id: journal[job_id] for job_id in world.live} == world.live
    assert "resync" in [entry["event"] for entry in journal[slow]["history"]][-1]


async def test_the_tui_writes_its_own_journal_and_restores_it_on_the_next_start(world, tmp_path):
    cluster = world.cluster
    options = HistoryOptions(path=tmp_path / "tui.sqlite3")
    first = build_app(cluster.app, history=options)
    async with first.run_test(size=SIZE) as pilot:
        await wait_in_app(pilot, lambda: first.store.worker_counts()[0] == 1, "the worker")
        job_id = cluster.send("demo.add", 1, 1).id
        await wait_in_app(
            pilot,
            lambda: first.store.get(job_id).state.value == "completed",
            "the job to finish",
            timeout=30,
        )
    assert first.history.status().mode.startswith("writing (writer process pid ")
    before = job_to_dict(first.store.get(job_id))

    second = build_app(cluster.app, history=options)
    assert job_to_dict(second.store.get(job_id)) == before
    gap = second.store.last_gap()
    assert gap is not None and gap.reason == NO_HISTORY
    async with second.run_test(size=SIZE) as pilot:
        await wait_in_app(
            pilot,
            lambda: "resync pending" not in second.store.last_gap().resync,
            "the restart's gap to be resynced",
            timeout=30,
        )


def test_a_collector_whose_journal_cannot_be_written_says_why_and_exits_1(world, tmp_path):
    """Writes past a file size limit (RLIMIT_FSIZE) fail, as on a full disk: SQLite sees an
    I/O error rather than SQLITE_FULL (test_journal_core covers that one), and collect must
    stop with the reason, never a traceback."""
    cluster = world.cluster
    limit = 256 * 1024

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    path = tmp_path / "small.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sluice_tui", "collect", "-A", WORKLOAD_APP, "--history", str(path)],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=small_files,
        start_new_session=True,
    )
    cluster.processes.append(proc)
    err = LineReader(proc.stderr)
    err.wait_for("connected", 30)
    # Events of jobs with long arguments, straight to the exchange (no work for the
    # worker); random text, since the journal compresses its batches.
    deadline = time.monotonic() + 60
    with cluster.app.connection_for_write() as conn:
        dispatcher = cluster.app.events.Dispatcher(conn, hostname="w@flood", enabled=True)
        n = 0
        while proc.poll() is None and time.monotonic() < deadline:
            for _ in range(50):
                n += 1
                args = secrets.token_hex(1000)
                dispatcher.send(type="task-received", uuid=f"big-{n}", name="x", args=args)
            time.sleep(0.1)
        dispatcher.close()
    assert proc.wait(timeout=30) == 1
    text = err.text(timeout=10)
    assert "the journal stopped writing" in text and str(path) in text
    assert "Traceback" not in text
