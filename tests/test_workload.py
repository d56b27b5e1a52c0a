"""The demo workload app can be imported without leaving anything on disk."""

from __future__ import annotations

import json
import os
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
