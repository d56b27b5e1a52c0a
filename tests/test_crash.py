"""A crash exits non-zero, with its traceback in a file that stderr names (issue 16).

Nothing here ships as a feature: the crashes are made by patching the app in
the test's own process (or in a script the test runs), never by an option.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from celery import Celery

from sluice_tui import cli, launch, oneshot

CRASH_LINE = re.compile(r"^sluice-tui: crashed \((.*)\); the traceback is in (\S+)$")

# The TUI, headless, on an in-process broker; its refresh tick raises once
# the app runs.  The URL in the message shows the password is masked.
CRASHING_TUI = textwrap.dedent(
    """
    from sluice_tui.cli import entry_point
    from sluice_tui.ui.app import SluiceApp

    run = SluiceApp.run

    def tick(self):
        raise RuntimeError("table broke on amqp://me:s3cret@rabbit//")

    SluiceApp.run = lambda self, **options: run(self, headless=True, size=(100, 30))
    SluiceApp.tick = tick
    entry_point()
    """
)


def crash_file(stderr: str) -> tuple[str, Path]:
    """The one stderr line a crash leaves: what broke, and the file it names."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    found = CRASH_LINE.match(lines[0])
    assert found, stderr
    return found[1], Path(found[2])


def test_a_crash_inside_the_running_tui_exits_1_and_names_the_traceback_file(tmp_path):
    state = tmp_path / "state"
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_TUI, "--broker", "memory://"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_STATE_HOME": str(state)},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr
    summary, path = crash_file(result.stderr)
    assert summary == "RuntimeError: table broke on amqp://me:**@rabbit//"
    assert path.parent == state / "sluice-tui"
    assert re.fullmatch(r"crash-\d{8}-\d{6}\.txt", path.name)
    text = path.read_text()
    assert "Traceback (most recent call last)" in text
    assert "in tick\n" in text  # where it broke, as Python tells it
    assert "RuntimeError: table broke on amqp://me:**@rabbit//" in text
    assert "s3cret" not in text


# An app for `celery -A tests.test_crash:app sluice ...` run in this process.
app = Celery("crash-tests", broker="memory://", set_as_current=False)
TREES = ["sluice-tui", "celery sluice"]


@pytest.fixture
def state_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    # --broker (and celery -b) set this, as Celery's own command line does.
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    return tmp_path / "sluice-tui"


def run_tree(tree: str, *argv: str) -> int:
    """Run a command line in this process through one tree; its exit status."""
    if tree == "sluice-tui":
        return cli.main([*argv, "--broker", "memory://"])
    from celery.bin.celery import celery

    with pytest.raises(SystemExit) as exited:
        celery.main(["-A", "tests.test_crash:app", "sluice", *argv], auto_envvar_prefix="CELERY")
    return exited.value.code


def boom(*args, **kwargs):
    raise ValueError("not what anyone expected")


def test_a_crash_before_the_tui_starts_is_reported_the_same_way(state_dir, monkeypatch, capsys):
    monkeypatch.setattr(launch, "build_app", boom)
    assert cli.main(["--broker", "memory://"]) == 1
    summary, path = crash_file(capsys.readouterr().err)
    assert summary == "ValueError: not what anyone expected"
    assert path.parent == state_dir
    assert "in boom\n" in path.read_text()


@pytest.mark.parametrize("tree", TREES)
def test_a_crash_in_a_one_shot_command_exits_1_and_names_the_file(
    state_dir, monkeypatch, capsys, tree
):
    monkeypatch.setattr(oneshot.Resolver, "lookup", boom)
    assert run_tree(tree, "retry", "some-id", "--yes") == 1
    summary, path = crash_file(capsys.readouterr().err)
    assert summary == "ValueError: not what anyone expected"
    assert path.parent == state_dir
    assert "in boom\n" in path.read_text()


def test_without_a_writable_state_dir_the_file_goes_to_the_temporary_folder(
    tmp_path, state_dir, monkeypatch, capsys
):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(launch, "build_app", boom)
    assert cli.main(["--broker", "memory://"]) == 1
    _, path = crash_file(capsys.readouterr().err)
    assert path.parent == tmp_path and path.name.startswith("sluice-tui-crash-")
    assert "ValueError: not what anyone expected" in path.read_text()


@pytest.mark.parametrize("tree", TREES)
def test_ctrl_c_in_a_one_shot_command_exits_130_quietly(state_dir, monkeypatch, capsys, tree):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(oneshot.Resolver, "lookup", interrupted)
    assert run_tree(tree, "revoke", "some-id", "--yes") == 130
    assert capsys.readouterr().err == ""
    assert not state_dir.exists()
