"""The demo workload: importing it leaves nothing on disk, and its mix has the demo's shape."""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import subprocess
import sys

# Runs in a fresh interpreter: audit hooks cannot be removed once added.
WATCH_IMPORT = """
import json, sys
made = []

def watch(event, args):
    if event in ("os.mkdir", "os.makedirs", "shutil.copyfile", "shutil.copytree"):
        made.append(f"{event} {args[0]}")
    elif event == "open" and isinstance(args[1], str) and args[1][:1] in "wax":
        made.append(f"open {args[0]}")

sys.addaudithook(watch)
import sluice_tui.demo.workload
print(json.dumps(made))
"""


def test_importing_the_workload_without_a_broker_writes_nothing(tmp_path):
    """tests/cluster.py imports it: that used to create /tmp/sluice-demo/{queue,...}."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # an import's own cache files are not ours
    result = subprocess.run(
        [sys.executable, "-c", WATCH_IMPORT],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_demo_keeps_one_queue_filling_one_unread_and_failure_rates_apart(tmp_path):
    """The generator's mix against the demo's workers: what the queue views will show."""
    from sluice_tui.demo.runner import SEND_INTERVAL, WORKERS, _workload
    from sluice_tui.demo.workload import demo_queues

    queues = demo_queues("ns")
    rng = random.Random(12)
    jobs = list(itertools.islice(_workload(rng, tmp_path, queues), 20_000))
    seconds = len(jobs) * SEND_INTERVAL

    def consumers(role):
        return [w for w in WORKERS if w[1] == role]

    # Reports arrive faster than their workers' slots can run them.
    reports = [args for name, args, options in jobs if options.get("queue") == queues["reports"]]
    slots = sum(size for _, _, size in consumers("reports"))
    assert slots and len(reports) / seconds > 1.5 * slots / statistics.mean(a[1] for a in reports)
    # Jobs go to the archive queue, and no worker reads it.
    assert any(options.get("queue") == queues["archive"] for _, _, options in jobs)
    assert consumers("archive") == []
    # Task types fail in different measures and take different times.
    declined = [args[2] for name, args, _ in jobs if name == "demo.charge"]
    corrupt = [args[2] for name, args, _ in jobs if name == "demo.resize"]
    assert 0.15 < statistics.mean(declined) < 0.25
    assert 0.02 < statistics.mean(corrupt) < 0.06
    runtime = {
        name: statistics.mean(args[1] for n, args, _ in jobs if n == name)
        for name in ("demo.charge", "demo.resize", "demo.report")
    }
    assert runtime["demo.charge"] < runtime["demo.resize"] < runtime["demo.report"]
