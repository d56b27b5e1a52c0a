"""`sluice-tui demo`: a real cluster with no server, and nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

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


def start_demo(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sluice_tui", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def test_demo_reaches_six_states_within_30_seconds_and_leaves_nothing(tmp_path):
    started = time.monotonic()
    demo = start_demo("--dump", "24")
    out = LineReader(demo.stdout)
    # Workers (and their pool processes) appear once the demo is up.
    children = wait_for(
        lambda: len(d := descendants(demo.pid)) >= 4 and d, 30, "the demo's workers"
    )
    jobs = json.loads(out.text(timeout=90))
    assert demo.wait(timeout=30) == 0, demo.stderr.read()
    assert time.monotonic() - started < 60
    states = {job["state"] for job in jobs}
    assert len(states) >= 6, states
    assert {"completed", "failed", "active", "scheduled"} <= states
    assert alive(children | descendants(demo.pid)) == set()


def test_ctrl_c_stops_every_worker(tmp_path):
    demo = start_demo("--dump", "120")
    children = wait_for(
        lambda: len(d := descendants(demo.pid)) >= 4 and d, 30, "the demo's workers"
    )
    demo.send_signal(signal.SIGINT)
    demo.wait(timeout=30)
    wait_for(lambda: not alive(children), 10, "every demo process to exit")
