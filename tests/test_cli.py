"""`sluice-tui` as a user runs it: exit codes and messages, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.cluster import WORKLOAD_APP, Cluster, LineReader, send_event
from tests.own_servers import free_port


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sluice_tui", *args], capture_output=True, text=True, timeout=timeout
    )


def assert_human(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert stderr.startswith("sluice-tui: ")


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("sluice-tui ")
    help_text = run_cli("--help").stdout
    assert "examples:" in help_text and "dump" in help_text
    assert "--until-idle" in run_cli("dump", "--help").stdout
    # What the one-job commands take, and no store tuning that means nothing to them.
    for command in ("retry", "revoke"):
        text = run_cli(command, "--help").stdout
        assert "--read-only" in text and "--listen" in text, text
        assert "--max-jobs" not in text and "--stale-after" not in text, text


def test_a_usage_error_is_one_line_with_status_2_and_the_password_masked(capsys):
    from sluice_tui.cli import main

    # A URL typed where the command goes, without --broker: not echoed with its password.
    assert main(["amqp://me:s3cret@rabbit//"]) == 2
    assert capsys.readouterr().err == (
        "sluice-tui: No such command 'amqp://me:**@rabbit//' (see sluice-tui --help)\n"
    )
    assert main(["dump", "--seconds", "0"]) == 2
    assert capsys.readouterr().err == (
        "sluice-tui: Invalid value for '--seconds': 0.0 is not in the range x>0 "
        "(see sluice-tui dump --help)\n"
    )


def test_dump_unreachable_broker_fails_after_the_window_with_a_masked_url():
    result = run_cli(
        "dump", "--broker", f"amqp://me:s3cret@127.0.0.1:{free_port()}//", "--seconds", "1"
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert_human(result.stderr)
    assert "could not connect" in result.stderr and "refused" in result.stderr.lower()
    assert "s3cret" not in result.stderr


def test_dump_bad_broker_url():
    result = run_cli("dump", "--broker", "nosuch://host", "--seconds", "1")
    assert result.returncode == 2
    assert_human(result.stderr)
    assert "nosuch" in result.stderr


def test_dump_app_that_cannot_be_imported():
    result = run_cli("dump", "-A", "no_such_project.celery", "--seconds", "1")
    assert result.returncode == 2
    assert_human(result.stderr)
    assert "no_such_project" in result.stderr


def test_dump_state_filter_and_json_shape(tmp_path):
    cluster = Cluster("filesystem", tmp_path)
    dump = cluster.sluice(
        "dump",
        "-A",
        "sluice_tui.demo.workload",
        "--seconds",
        "30",
        "--until-idle",
        "0.5",
        "--state",
        "failed",
        "-v",
    )
    stdout, stderr = LineReader(dump.stdout), LineReader(dump.stderr)
    try:
        stderr.wait_for("connected", 20)
        send_event(cluster.app, type="task-received", uuid="ok", name="t.a", args="(1,)")
        send_event(cluster.app, type="task-succeeded", uuid="ok", result="1", runtime=0.1)
        send_event(cluster.app, type="task-received", uuid="bad", name="t.b", args="()")
        send_event(
            cluster.app,
            type="task-failed",
            uuid="bad",
            exception="KeyError('k')",
            traceback="Traceback ...",
        )
        jobs = json.loads(stdout.text(timeout=40))
        assert dump.wait(timeout=10) == 0
    finally:
        cluster.close()
    assert [job["id"] for job in jobs] == ["bad"]
    (job,) = jobs
    assert job["state"] == "failed" and job["exception"] == "KeyError('k')"
    expected_keys = {
        "id",
        "name",
        "state",
        "history",
        "args",
        "kwargs",
        "result",
        "exception",
        "traceback",
        "retries",
        "worker",
        "eta",
        "queue",
        "parent_id",
        "root_id",
    }
    assert expected_keys <= job.keys()
    assert [h["event"] for h in job["history"]] == ["task-received", "task-failed"]
    assert set(job["history"][0]) == {"state", "timestamp", "hostname", "event", "attempt"}


def run_in(cluster: Cluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sluice_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cluster.env,
        stdin=subprocess.DEVNULL,
    )


def test_retry_of_an_unknown_id_is_refused_with_status_2(tmp_path):
    cluster = Cluster("filesystem", tmp_path)
    result = run_in(cluster, "retry", "no-such-job", "-A", WORKLOAD_APP, "--yes", "--listen", "0.2")
    assert result.returncode == 2
    assert_human(result.stderr)
    assert "cannot retry job no-such-job (it is unknown)" in result.stderr
    assert "no job no-such-job is known anywhere" in result.stderr
    assert "failed, cancelled" in result.stderr


def test_retry_of_a_failed_job_sends_its_exact_arguments_under_a_new_id(tmp_path):
    from celery.app.task import Context

    cluster = Cluster("filesystem", tmp_path)
    request = Context(
        id="failed-job",
        task="demo.add",
        args=[2, 40],
        kwargs={"z": 1},
        delivery_info={"routing_key": cluster.namespace + ".tasks"},
    )
    cluster.app.backend.mark_as_failure("failed-job", ValueError("x"), request=request)
    result = run_in(cluster, "retry", "failed-job", "-A", "sluice_tui.demo.workload", "--yes")
    assert result.returncode == 0, result.stderr
    new_id = result.stdout.strip()
    assert new_id and new_id != "failed-job"
    assert "[2, 40]" in result.stderr and '{"z": 1}' in result.stderr
    queued = [p.read_text() for p in (tmp_path / "broker" / "queue").iterdir()]
    assert any(new_id in text and "demo.add" in text for text in queued)


def journal_of_a_job(cluster: Cluster, job: str, args: str, *more: dict) -> Path:
    """A history journal that saw ``job`` (demo.add) sent, received and started an hour
    ago, then ``more``, as the TUI would have written it."""
    from tests import events as ev
    from tests.test_journal_cli import JournalFeed

    queue = cluster.namespace + ".tasks"
    journal = cluster.tmp_path / "weekend.sqlite3"
    feed = JournalFeed(journal)
    t = time.time() - 3600
    feed.send(
        ev.sent(job, t, name="demo.add", args=args, queue=queue, routing_key=queue),
        ev.received(job, t + 0.1, name="demo.add", args=args),
        ev.started(job, t + 0.2),
        *more,
    )
    feed.stop()
    return journal


def test_retry_finds_a_job_the_result_backend_never_had_in_the_history_journal(tmp_path):
    """Seen in a trial: `dump --history` showed the failed job with its name and
    arguments, and `retry` said its task name was unknown (no result backend)."""
    from tests import events as ev

    cluster = Cluster("filesystem", tmp_path)
    job = "0ddba11c-4f00-4e3b-9a7e-5c1c0ffee123"
    journal = journal_of_a_job(cluster, job, "(2, 40)", ev.failed(job, time.time() - 3599))
    args = ("retry", "0ddba11c", "-A", WORKLOAD_APP, "--yes", "--listen", "0")
    result = run_in(cluster, *args, "--history", str(journal))
    assert result.returncode == 0, result.stderr
    assert f"0ddba11c -> {job} failed (history journal)" in result.stderr
    assert "as task demo.add" in result.stderr and "[2, 40]" in result.stderr
    new_id = result.stdout.strip()
    queued = [p.read_text() for p in (tmp_path / "broker" / "queue").iterdir()]
    assert any(new_id in text and "demo.add" in text for text in queued)
    assert "events" not in result.stderr.split("looked for")[1].splitlines()[0]  # no listen
    # Without the journal nothing knows the job: refused, as before.
    result = run_in(cluster, *args, "--no-history")
    assert result.returncode == 2
    assert "no job id starts with 0ddba11c" in result.stderr
    # A journal named but unreadable, or named and refused at once: said, not ignored.
    result = run_in(cluster, *args, "--history", str(tmp_path / "missing.sqlite3"))
    assert result.returncode == 2 and "history journal not read" in result.stderr
    result = run_in(cluster, *args, "--history", str(journal), "--no-history")
    assert result.returncode == 2 and "give one of them" in result.stderr


def test_retry_trusts_the_result_backend_over_an_older_journal(tmp_path):
    """The journal last saw the job running (the TUI was closed); it failed since."""
    from celery.app.task import Context

    cluster = Cluster("filesystem", tmp_path)
    job = "5a1e0000-4f00-4e3b-9a7e-5c1c0ffee123"
    journal = journal_of_a_job(cluster, job, "(1, 2)")  # last seen running
    request = Context(id=job, task="demo.add", args=[1, 2], kwargs={}, delivery_info={})
    cluster.app.backend.mark_as_failure(job, ValueError("x"), request=request)
    args = ("retry", job, "-A", WORKLOAD_APP, "--yes", "--listen", "0", "--history", str(journal))
    result = run_in(cluster, *args)
    assert result.returncode == 0, result.stderr
    assert f"retry {job} (failed) as task demo.add" in result.stderr


def test_retry_without_a_terminal_needs_yes(tmp_path):
    from celery.app.task import Context

    cluster = Cluster("filesystem", tmp_path)
    queue = {"routing_key": cluster.namespace + ".tasks"}
    request = Context(id="f2", task="demo.add", args=[1, 1], kwargs={}, delivery_info=queue)
    cluster.app.backend.mark_as_failure("f2", ValueError("x"), request=request)
    result = run_in(cluster, "retry", "f2", "-A", "sluice_tui.demo.workload")
    assert result.returncode == 2
    assert "--yes" in result.stderr


def test_revoke_of_a_completed_job_is_refused_and_one_reaching_no_worker_fails(tmp_path):
    cluster = Cluster("filesystem", tmp_path)
    cluster.app.backend.mark_as_done("done-job", 3)
    result = run_in(cluster, "revoke", "done-job", "-A", "sluice_tui.demo.workload", "--yes")
    assert result.returncode == 2
    assert "cannot revoke job done-job (it is completed)" in result.stderr
    # Allowed (unknown), said to be unknown, and not a success: no worker took it.
    result = run_in(cluster, "revoke", "never-seen", "-A", WORKLOAD_APP, "--yes", "--listen", "0.2")
    assert result.returncode == 1, result.stderr
    assert_human(result.stderr)
    assert "no job never-seen is known anywhere" in result.stderr
    assert "no worker answered the revoke" in result.stderr


def test_read_only_refuses_every_action(tmp_path):
    cluster = Cluster("filesystem", tmp_path)
    for command in ("retry", "revoke"):
        result = run_in(
            cluster,
            command,
            "any-id",
            "-A",
            "sluice_tui.demo.workload",
            "--read-only",
            "--yes",
            "--listen",
            "0.2",
        )
        assert result.returncode == 2
        assert "read-only" in result.stderr
        # Workers are not asked either: an inspect request is a published message.
        assert "workers not asked (--read-only" in result.stderr


def test_celery_plugin_runs_with_the_projects_app_and_config(tmp_path):
    cluster = Cluster("filesystem", tmp_path)
    help_text = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "sluice_tui.demo.workload", "sluice", "--help"],
        capture_output=True,
        text=True,
        env=cluster.env,
        timeout=60,
    ).stdout
    assert "sluice-tui" in help_text and "--read-only" in help_text
    dump = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sluice_tui.demo.workload",
            "sluice",
            "dump",
            "--seconds",
            "30",
            "--until-idle",
            "0.5",
        ],
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout = LineReader(dump.stdout)
    try:
        # The plugin found the app's filesystem broker and namespaced event exchange
        # from the project's config alone: events sent there reach it.  It may not
        # listen yet, so send a finished job each second until it reports one.
        for attempt in range(30):
            send_event(cluster.app, type="task-received", uuid=f"via-plugin-{attempt}", name="t.p")
            send_event(cluster.app, type="task-succeeded", uuid=f"via-plugin-{attempt}")
            if dump.poll() is not None:
                break
            time.sleep(1.0)
        jobs = json.loads(stdout.text(timeout=40))
        assert dump.wait(timeout=10) == 0
    finally:
        cluster.close()
    assert jobs and all(job["state"] == "completed" for job in jobs)
    assert all(job["id"].startswith("via-plugin-") for job in jobs)


def test_broker_option_wins_over_the_environment(tmp_path):
    env = {**os.environ, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sluice_tui",
            "dump",
            "--broker",
            f"amqp://guest:guest@127.0.0.1:{free_port()}//",
            "--seconds",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert result.returncode == 1
    assert "amqp://" in result.stderr and "redis://" not in result.stderr


def test_app_with_broker_the_broker_wins_even_over_the_apps_transport(tmp_path):
    # The app is configured for the filesystem transport (its own transport
    # class); --broker must replace all of that, as `celery -A proj -b URL` does.
    cluster = Cluster("filesystem", tmp_path)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    sluice = [sys.executable, "-m", "sluice_tui", "dump", "-A", WORKLOAD_APP, "--broker", dead]
    plugin = [sys.executable, "-m", "celery", "-A", WORKLOAD_APP, "-b", dead, "sluice", "dump"]
    for command in (sluice, plugin):
        result = subprocess.run(
            [*command, "--seconds", "1"],
            capture_output=True,
            text=True,
            env=cluster.env,
            timeout=60,
        )
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert f"could not connect to the broker {dead}" in result.stderr


def test_memory_bounds_reach_the_store_before_or_after_the_command(monkeypatch):
    """--max-jobs, --history-per-job, --stale-after and --forget-workers-after shape the store."""
    import sluice_tui.dump
    import sluice_tui.launch
    from sluice_tui.cli import main
    from sluice_tui.model.store import JobStore

    monkeypatch.setenv("CELERY_BROKER_URL", "")
    built = {}
    monkeypatch.setattr(sluice_tui.launch, "run_app", lambda app: built.update(tui=app.store))

    def fake_dump(app, **options):
        built["dump"] = JobStore(**options["store_options"])
        return 0

    monkeypatch.setattr(sluice_tui.dump, "dump_app", fake_dump)
    limits = ["--max-jobs", "50", "--history-per-job", "40", "--stale-after", "60"]
    assert main(["--broker", "memory://", *limits, "--forget-workers-after", "90"]) == 0
    assert main(["--broker", "memory://", "dump", *limits, "--forget-workers-after", "90"]) == 0
    for store in built.values():
        assert (store.max_jobs, store.history_cap) == (50, 40)
        assert (store.stale_after, store.forget_workers_after) == (60.0, 90.0)
    assert main(["--broker", "memory://", "--history-per-job", "5"]) == 2  # below the floor


def test_a_dump_cut_off_by_its_reader_stops_quietly(tmp_path):
    """`sluice-tui dump ... | head`: no crash report, the status a shell expects of a filter."""
    from tests.test_journal_cli import JournalFeed, mixed_stream

    path = tmp_path / "j.sqlite3"
    feed = JournalFeed(path)
    now = time.time()
    for n in range(300):  # about a megabyte of JSON: more than a pipe holds
        feed.send(*mixed_stream(now, prefix=f"{n}-"))
    feed.stop()
    dump = subprocess.Popen(
        [sys.executable, "-m", "sluice_tui", "dump", "--history", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert dump.stdout.read(100).startswith(b"[")
    dump.stdout.close()  # what `head -c 100` does once it has its bytes
    stderr = dump.stderr.read().decode()
    assert dump.wait(30) == 141, stderr
    assert stderr == ""
    crashes = Path(os.environ["XDG_STATE_HOME"]) / "sluice-tui"
    assert not list(crashes.glob("crash-*.txt"))
