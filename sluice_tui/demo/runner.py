"""``sluice-tui demo``: a real Celery cluster that needs no server, then the TUI on it.

Celery's filesystem:// transport and a file result backend live in a temporary
directory; real prefork workers run as subprocesses; a generator thread keeps
sending jobs that reach every state.  The cluster has a shape worth watching:
two workers keep up with the default queue, the reports queue gets jobs faster
than its one slow worker runs them, the archive queue has no worker at all, and
the task types fail and take time in different measures.  Everything is torn down on the way out,
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from sluice_tui.celery_adapter.connect import SetupError
from sluice_tui.demo.workload import demo_queues

# (node name, queue role, pool size): few enough slots that long jobs leave
# others queued.  The archive queue is left without a worker on purpose.
WORKERS = (("demo1", "tasks", 2), ("demo2", "tasks", 2), ("reports", "reports", 1))
SEND_INTERVAL = 0.4  # seconds between jobs: a steady, readable trickle
READY_TIMEOUT = 30.0
# SIGTERM and SIGHUP (the terminal went away) unwind like Ctrl+C.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
STOPPING = "sluice-tui demo: stopping workers..."


def worker_argv(node_name: str, concurrency: int, queues: Sequence[str] = ()) -> list[str]:
    """A prefork worker for the workload app, started without -E like many in production.

    Without ``queues`` it consumes the app's default queue.
    """
    argv = [
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
    if queues:
        argv += ["-Q", ",".join(queues)]
    return argv


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
        self.queues = demo_queues(self.namespace)
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
        for n, (node, role, concurrency) in enumerate(WORKERS, 1):
            log = open(self.root / f"worker{n}.log", "w")  # noqa: SIM115 - closed with the process
            argv = worker_argv(f"{node}@{self.namespace}", concurrency, [self.queues[role]])
            self.workers.append(
                subprocess.Popen(
                    argv,
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
        for job in _workload(rng, marker_dir, self.queues):
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


Job = tuple[str, tuple, dict]


def _opening(marker_dir: Path, queues: dict[str, str]) -> list[Job]:
    """One of each kind first, so every state and queue shows within seconds of starting."""
    return [
        ("demo.fail", ("order 1001 could not be charged",), {}),
        ("demo.slow", (40.0,), {}),
        ("demo.report", ("weekly sales", 6.0), {"queue": queues["reports"]}),
        ("demo.add", (1, 1), {"countdown": 90}),  # scheduled through the first minutes
        ("demo.archive", (1,), {"queue": queues["archive"]}),
        ("demo.add", (2, 2), {"countdown": 3, "expires": 1}),  # expires: revoked
        ("demo.charge", (1002, 0.3, True), {}),
        ("demo.flaky", (2, 2.0), {}),
        ("demo.reject", (), {}),
        ("demo.resize", ("cat.png", 1.5, False), {}),
        ("demo.slow", (45.0,), {}),
        ("demo.spawn", (3,), {}),
        ("demo.measure", ("x" * 3000,), {}),
        ("demo.fail_once", (str(marker_dir / "m0"),), {}),
        ("demo.slow", (30.0,), {}),
    ]


# How often each kind of job is sent (weights add up to 1), and how to make one.
# The reports queue gets 0.14 / SEND_INTERVAL = 0.35 jobs/s and its one slot runs
# a sixth of one a second (6 s each): it fills by about 10 a minute.  The default queue's two
# workers have 4 slots for about 1.6 slots of work, so they keep up once the
# opening's long jobs end.
Maker = Callable[[random.Random, int, Path, dict[str, str]], Job]
MIX: tuple[tuple[float, Maker], ...] = (
    (0.14, lambda r, n, m, q: ("demo.add", (r.randint(1, 99), r.randint(1, 99)), {})),
    (
        0.14,
        # Payments: quick, one in five declined.
        lambda r, n, m, q: ("demo.charge", (1000 + n, r.uniform(0.1, 0.6), r.random() < 0.2), {}),
    ),
    (
        0.10,
        # Images: a second or two, one in twenty-five corrupt.
        lambda r, n, m, q: (
            "demo.resize",
            (f"img{n}.jpg", r.uniform(0.5, 2.5), r.random() < 0.04),
            {},
        ),
    ),
    (
        0.14,
        lambda r, n, m, q: (
            "demo.report",
            (f"report {n}", r.uniform(5, 7)),
            {"queue": q["reports"]},
        ),
    ),
    (0.06, lambda r, n, m, q: ("demo.archive", (n,), {"queue": q["archive"]})),
    (
        0.05,
        lambda r, n, m, q: (
            "demo.fail",
            (f"order {r.randint(1000, 9999)} could not be charged",),
            {},
        ),
    ),
    (0.06, lambda r, n, m, q: ("demo.flaky", (r.randint(1, 3), 2.0), {})),
    (0.05, lambda r, n, m, q: ("demo.add", (n, 1), {"countdown": r.uniform(8, 30)})),
    # Long jobs, to revoke; rare enough that the workers keep up.
    (
        0.05,
        lambda r, n, m, q: (
            ("demo.slow", (r.uniform(5, 20),), {}) if r.random() < 0.5 else ("demo.add", (n, 3), {})
        ),
    ),
    (0.04, lambda r, n, m, q: ("demo.measure", ("x" * r.randint(2000, 6000),), {})),
    # Expires before its countdown: the worker revokes it on arrival.
    (0.04, lambda r, n, m, q: ("demo.add", (n, 2), {"countdown": 4, "expires": 2})),
    (0.03, lambda r, n, m, q: ("demo.reject", (), {})),
    (0.04, lambda r, n, m, q: ("demo.spawn", (r.randint(2, 4),), {})),
    (0.03, lambda r, n, m, q: ("demo.fail_once", (str(m / f"m{n}"),), {})),
    (0.03, lambda r, n, m, q: ("demo.slow", (r.uniform(1, 5),), {})),
)


def _workload(rng: random.Random, marker_dir: Path, queues: dict[str, str]) -> Iterator[Job]:
    """An endless, varied stream of jobs that between them reach every state."""
    yield from _opening(marker_dir, queues)
    weights = [weight for weight, _ in MIX]
    makers = [make for _, make in MIX]
    count = 0
    while True:
        count += 1
        (make,) = rng.choices(makers, weights)
        yield make(rng, count, marker_dir, queues)


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
        # The terminal may be gone (SIGHUP) or stderr a closed pipe: saying so
        # must not skip stopping the workers.
        with contextlib.suppress(OSError, ValueError):
            print(STOPPING, file=sys.stderr, flush=True)
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
