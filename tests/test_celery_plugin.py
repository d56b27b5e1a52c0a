"""`celery -A proj sluice ...`: the same commands and options as `sluice-tui` (issue 16).

The commands run as a user runs them, through Celery's own command line, on
the workload app and a filesystem broker (no server needed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from sluice_tui import cli
from sluice_tui.celery_adapter import plugin
from tests.cluster import WORKLOAD_APP, Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster("filesystem", tmp_path_factory.mktemp("plugin"))
    yield cluster
    cluster.close()


def celery(cluster: Cluster, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", WORKLOAD_APP, *args],
        env=cluster.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=60)
    return proc.returncode, stdout, stderr


def test_every_command_and_its_help_is_there_under_celery(cluster):
    # Started together: each pays Celery's start-up, not one after another.
    helps = {name: celery(cluster, "sluice", name, "--help") for name in ("retry", "revoke")}
    helps["dump"] = celery(cluster, "sluice", "dump", "--help")
    bad = celery(cluster, "sluice", "dump", "--seconds", "0")
    misplaced = celery(cluster, "sluice", "retry", "some-id", "--broker", "amqp://me:pw@h//")
    texts = {}
    for name, proc in helps.items():
        status, texts[name], _ = finished(proc)
        assert status == 0
        assert texts[name].startswith(f"Usage: python -m celery sluice {name} [OPTIONS]")
    for option in ("JOB_ID", "--queue NAME", "--listen S", "--yes", "--read-only"):
        assert option in texts["retry"]
    assert "--terminate" in texts["revoke"] and "--until-idle" in texts["dump"]
    assert "--broker" not in texts["dump"]  # Celery's -b sets it
    # Usage errors: one line, status 2, the command's help named, no traceback.
    status, _, stderr = finished(bad)
    assert status == 2
    assert stderr == (
        "sluice-tui: Invalid value for '--seconds': 0.0 is not in the range x>0 "
        "(see python -m celery sluice dump --help)\n"
    )
    status, _, stderr = finished(misplaced)
    assert status == 2 and len(stderr.splitlines()) == 1
    assert "No such option '--broker'; give it to celery, before sluice" in stderr
    assert "pw" not in stderr


def test_dump_and_retry_run_on_the_app_celery_loaded(cluster):
    from celery.app.task import Context

    request = Context(id="plugin-failed", task="demo.add", args=[3, 4], kwargs={})
    cluster.app.backend.mark_as_failure("plugin-failed", ValueError("x"), request=request)
    dump = celery(cluster, "sluice", "dump", "--seconds", "0.5")
    # No source knew the queue it was sent to: refused unless --queue says one.
    refused = celery(cluster, "sluice", "retry", "plugin-failed", "--yes", "--listen", "0")
    queue = f"{cluster.namespace}.again"
    retry = celery(cluster, "sluice", "retry", "plugin-failed", "--yes", "--queue", queue)
    # The group's option applies to the command after it, as with sluice-tui.
    read_only = celery(cluster, "sluice", "--read-only", "revoke", "any-id", "--listen", "0")

    status, stdout, stderr = finished(dump)
    assert status == 0, stderr
    # Nothing but what the retry below sends, if the dump was still listening.
    assert all(job["name"] == "demo.add" for job in json.loads(stdout))

    status, stdout, stderr = finished(refused)
    assert status == 2 and stdout == ""
    assert "queue:     not known: the app's default queue" in stderr
    assert "not sent: the queue plugin-failed was sent to is not known; add --queue" in stderr

    status, stdout, stderr = finished(retry)
    assert status == 0, stderr
    new_id = stdout.strip()
    assert new_id and new_id != "plugin-failed"
    assert "[3, 4]" in stderr and f"queue:     {queue} (" in stderr
    queued = {p.name: p.read_text() for p in (cluster.tmp_path / "broker" / "queue").iterdir()}
    assert any(new_id in text and name.endswith(f".{queue}.msg") for name, text in queued.items())

    status, stdout, stderr = finished(read_only)
    assert status == 2 and stdout == ""
    assert "read-only" in stderr and "Traceback" not in stderr


def options(command: click.Command) -> list[tuple]:
    """Each parameter of a command as a user meets it: names, kind, default, help."""
    return [
        (
            tuple(p.opts + p.secondary_opts),
            p.param_type_name,
            repr(p.type),
            p.default,
            p.multiple,
            getattr(p, "is_flag", False),
            getattr(p, "help", None),
        )
        for p in command.params
    ]


def tree(group: click.Group) -> dict[str, list[tuple]]:
    return {"": options(group)} | {name: options(c) for name, c in group.commands.items()}


def test_both_entry_points_have_the_same_commands_and_options():
    standalone, under_celery = tree(cli.sluice_tui), tree(plugin.sluice)
    commands = {"", "collect", "demo", "dump", "retry", "revoke", "stats"}
    assert standalone.keys() == under_celery.keys() == commands
    app_options = {("-b", "--broker"), ("-A", "--app")}
    for name, params in standalone.items():
        own = [p for p in params if p[0] not in app_options]
        # Only where the app comes from differs: Celery's -A and -b load it.
        assert own == under_celery[name], name
        assert {p[0] for p in params} & app_options == (set() if name == "demo" else app_options)
    # And the plugin declares none of its own.
    source = Path(plugin.__file__).read_text()
    assert "click.option" not in source and "click.argument" not in source
