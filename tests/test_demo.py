"""`sluice-tui demo`: a real cluster with no server, and nothing left behind."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from sluice_tui.demo.runner import STOPPING
from tests.cluster import LineReader, wait_for


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
        children = {int(p) for p in out.stdout.split()}
        todo.extend(children - found)
        found |= children
    return found


def alive(pids: set[int]) -> set[int]:
    still = set()
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().split()[2] != "Z":
                still.add(pid)
    return still


def demo_env(tmp_path: Path) -> dict[str, str]:
    """The demo's temp dir inside the test's: whatever it leaves there shows."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    return {**os.environ, "TMPDIR": str(temp)}


def left_in(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "tmp").iterdir())


def start_demo(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sluice_tui", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env=demo_env(tmp_path),
    )


def test_demo_reaches_six_states_within_30_seconds_and_leaves_nothing(tmp_path):
    demo = start_demo(tmp_path, "--dump", "24")
    out = LineReader(demo.stdout)
    # Workers (and their pool processes) appear once the demo is up.
    children = wait_for(
        lambda: len(d := descendants(demo.pid)) >= 4 and d, 30, "the demo's workers"
    )
    jobs = json.loads(out.text(timeout=90))
    assert demo.wait(timeout=30) == 0, demo.stderr.read()
    states = {job["state"] for job in jobs}
    assert len(states) >= 6, states
    assert {"completed", "failed", "active", "scheduled"} <= states
    # The demo's shape: jobs wait on the archive queue, which no worker reads,
    # while the reports queue has a worker of its own.
    by_queue = {}
    for job in jobs:
        by_queue.setdefault((job["queue"] or "").rsplit(".", 1)[-1], set()).add(job["state"])
    assert by_queue["archive"] == {"queued"}, by_queue
    assert "completed" in by_queue["reports"], by_queue
    assert len({job["name"] for job in jobs if job["state"] == "failed"}) >= 3, jobs
    assert alive(children | descendants(demo.pid)) == set()
    assert left_in(tmp_path) == []  # the demo's directory, and the pool's pymp-* in it


def test_ctrl_c_stops_every_worker(tmp_path):
    """Even while the workers start: the status then depends on how far it got."""
    demo = start_demo(tmp_path, "--dump", "120")
    children = wait_for(
        lambda: len(d := descendants(demo.pid)) >= 4 and d, 30, "the demo's workers"
    )
    demo.send_signal(signal.SIGINT)
    demo.wait(timeout=30)
    wait_for(lambda: not alive(children), 10, "every demo process to exit")
    assert left_in(tmp_path) == []


class Terminal:
    """The demo's TUI in a pseudo-terminal, its output collected on a thread."""

    def __init__(self, tmp_path: Path, size: tuple[int, int] = (120, 30)) -> None:
        self.master, replica = pty.openpty()
        columns, lines = size
        fcntl.ioctl(replica, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        env = {**demo_env(tmp_path), "TERM": "xterm-256color"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sluice_tui", "demo"],
            stdin=replica,
            stdout=replica,
            stderr=replica,
            env=env,
            start_new_session=True,
        )
        os.close(replica)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the demo closed the terminal
                return
            if not data:
                return
            self.output += data

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            # SIGTERM, as closing a terminal window sends: the demo stops its
            # workers, which run in sessions of their own that a SIGKILL of the
            # demo's group would leave running.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(5)
        os.close(self.master)


@pytest.fixture
def terminal(tmp_path):
    term = Terminal(tmp_path)
    yield term
    term.close()


STOPS = {
    "q": lambda term: os.write(term.master, b"q"),
    "ctrl+c": lambda term: os.write(term.master, b"\x03"),
    "SIGTERM": lambda term: term.process.send_signal(signal.SIGTERM),
    "SIGHUP": lambda term: term.process.send_signal(signal.SIGHUP),  # a terminal window closed
}


@pytest.mark.parametrize("stop", list(STOPS))
def test_quitting_says_stopping_workers_and_leaves_nothing(terminal, tmp_path, stop):
    """q and Ctrl+C (keys in the TUI), SIGTERM and SIGHUP: status 0 (make reports no error)."""
    wait_for(lambda: "demo.fail" in terminal.text(), 60, "jobs on the demo's screen")
    workers = descendants(terminal.process.pid)
    assert len(workers) >= 4
    STOPS[stop](terminal)
    # A bound on a hang, not a timing: under a loaded CI run a SIGTERM once took over 30 s.
    assert terminal.process.wait(timeout=60) == 0
    terminal._reader.join(5)
    assert STOPPING in terminal.text()
    assert "Traceback" not in terminal.text()
    assert alive(workers) == set()
    assert left_in(tmp_path) == []
