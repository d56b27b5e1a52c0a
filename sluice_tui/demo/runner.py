"""``sluice-tui demo``: a real Celery cluster that needs no server, then the TUI on it.

Celery's filesystem:// transport and a file result backend live in a temporary
directory; real prefork workers run as subprocesses; a generator thread keeps
sending jobs that reach every state.  Everything is torn down on the way out,
whether the user quits, presses Ctrl+C, or the process is terminated; a stop
the user asked for is the demo's normal end, so it exits with status 0.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sluice_tui.celery_adapter.connect import SetupError

WORKERS = 2
CONCURRENCY = 2  # few enough slots that long jobs leave others queued
SEND_INTERVAL = 0.4  # seconds between jobs: a steady, readable trickle
READY_TIMEOUT = 30.0
# SIGTERM and SIGHUP (the terminal went away) unwind like Ctrl+C.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
STOPPING = "sluice-tui demo: stopping workers..."


def worker_argv(node_name: str, concurrency: int) -> list[str]:
    """A prefork worker for the workload app, started without -E like many in production."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "sluice_tui.demo.workload",
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        "-n",
        node_name,
        "--without-mingle",
        "--without-gossip",
        "-l",
        "INFO",
    ]


def _die_with_parent() -> None:
    """In a worker: get SIGTERM if the demo process dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the normal shutdown path still stops the workers
    os.setsid()  # own process group, so the whole prefork tree can be signalled


class DemoCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.namespace = f"sluice-demo-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "SLUICE_BROKER": str(root),
            "SLUICE_NAMESPACE": self.namespace,
            "PYTHONUNBUFFERED": "1",
            # The prefork pool (billiard) makes a pymp-* directory in the temp
            # dir, and a killed worker never removes it: keep it in ours.
            "TMPDIR": str(root / "tmp"),
        }
        self.workers: list[subprocess.Popen] = []
        self._stop = threading.Event()
        self._generator: threading.Thread | None = None

    def start_workers(self) -> None:
        (self.root / "tmp").mkdir(exist_ok=True)
        for n in range(1, WORKERS + 1):
            log = open(self.root / f"worker{n}.log", "w")  # noqa: SIM115 - closed with the process
            self.workers.append(
                subprocess.Popen(
                    worker_argv(f"demo{n}@{self.namespace}", CONCURRENCY),
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                )
            )
            log.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        for n, worker in enumerate(self.workers, 1):
            logfile = self.root / f"worker{n}.log"
            while " ready." not in logfile.read_text(errors="replace"):
                if worker.poll() is not None:
                    raise SetupError(f"a demo worker exited:\n{logfile.read_text()[-1500:]}")
                if time.monotonic() > deadline:
                    raise SetupError("the demo workers did not start within 30 s")
                time.sleep(0.1)

    def start_generator(self, app) -> None:
        self._generator = threading.Thread(
            target=self._generate, args=(app,), name="sluice-demo-generator", daemon=True
        )
        self._generator.start()

    def _generate(self, app) -> None:
        rng = random.Random()
        marker_dir = self.root / "markers"
        marker_dir.mkdir(exist_ok=True)
        for job in _workload(rng, marker_dir):
            if self._stop.wait(SEND_INTERVAL):
                return
            name, args, options = job
            with contextlib.suppress(Exception):  # a hiccup must not end the demo
                app.send_task(name, args=args, **options)

    def stop(self) -> None:
        """Kill the workers outright: demo jobs need not finish, quitting must be quick.

        Even a cold shutdown (SIGQUIT) takes a prefork worker on this
        transport 4-5 s; SIGKILL to its process group takes the pool
        processes too, at once.  What they leave behind is in ``root``.
        """
        self._stop.set()
        for worker in self.workers:
            _signal_group(worker, signal.SIGKILL)
        for worker in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=5)
        if self._generator is not None:
            self._generator.join(timeout=2)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _opening(marker_dir: Path) -> list[tuple[str, tuple, dict]]:
    """One of each kind first, so every state shows within seconds of starting."""
    return [
        ("demo.fail", ("order 1001 could not be charged",), {}),
        ("demo.slow", (40.0,), {}),
        ("demo.add", (1, 1), {"countdown": 90}),  # scheduled through the first minutes
        ("demo.add", (2, 2), {"countdown": 3, "expires": 1}),  # expires: revoked
        ("demo.flaky", (2, 2.0), {}),
        ("demo.reject", (), {}),
        ("demo.slow", (45.0,), {}),
        ("demo.spawn", (3,), {}),
        ("demo.measure", ("x" * 3000,), {}),
        ("demo.fail_once", (str(marker_dir / "m0"),), {}),
        ("demo.slow", (30.0,), {}),
    ]


def _workload(rng: random.Random, marker_dir: Path) -> Iterator[tuple[str, tuple, dict]]:
    """An endless, varied stream of jobs that between them reach every state."""
    yield from _opening(marker_dir)
    count = 0
    while True:
        count += 1
        roll = rng.random()
        if roll < 0.30:
            yield "demo.add", (rng.randint(1, 99), rng.randint(1, 99)), {}
        elif roll < 0.42:
            yield "demo.fail", (f"order {rng.randint(1000, 9999)} could not be charged",), {}
        elif roll < 0.52:
            yield "demo.flaky", (rng.randint(1, 3), 2.0), {}
        elif roll < 0.60:
            yield "demo.add", (count, 1), {"countdown": rng.uniform(8, 30)}
        elif roll < 0.68:
            # Long jobs, to revoke; kept short and rare enough that the
            # workers keep up and the backlog does not grow without end.
            if rng.random() < 0.5:
                yield "demo.slow", (rng.uniform(5, 20),), {}
            else:
                yield "demo.add", (count, 3), {}
        elif roll < 0.74:
            yield "demo.measure", ("x" * rng.randint(2000, 6000),), {}
        elif roll < 0.79:
            # Expires before its countdown: the worker revokes it on arrival.
            yield "demo.add", (count, 2), {"countdown": 4, "expires": 2}
        elif roll < 0.84:
            yield "demo.reject", (), {}
        elif roll < 0.90:
            yield "demo.spawn", (rng.randint(2, 4),), {}
        elif roll < 0.95:
            yield "demo.fail_once", (str(marker_dir / f"m{count}"),), {}
        else:
            yield "demo.slow", (rng.uniform(1, 5),), {}


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def running_demo() -> Iterator[DemoCluster]:
    """Start the demo cluster; on exit stop it and remove its directory.

    Ctrl+C, SIGTERM and SIGHUP once the demo runs are the user stopping it,
    not a failure: they end the ``with`` block quietly (status 0), so that
    ``make demo`` does not report an error for a demo stopped on purpose.
    """
    root = Path(tempfile.mkdtemp(prefix="sluice-demo-"))
    cluster = DemoCluster(root)
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    previous[signal.SIGINT] = signal.getsignal(signal.SIGINT)
    try:
        os.environ.update(SLUICE_BROKER=str(root), SLUICE_NAMESPACE=cluster.namespace)
        cluster.start_workers()
        cluster.wait_ready()
        with contextlib.suppress(KeyboardInterrupt):  # the user stopped it: no error
            yield cluster
    finally:
        # A second Ctrl+C or SIGTERM must not cut the clean-up short.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        print(STOPPING, file=sys.stderr, flush=True)
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
