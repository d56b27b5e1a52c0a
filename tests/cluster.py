"""A real Celery cluster for tests: worker subprocesses on a real broker.

Every cluster gets its own namespace (queue and exchange names), so tests that
share the machine's Redis or RabbitMQ never see each other's tasks or events.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery
from kombu import Connection

from sluice_tui.demo.runner import worker_argv
from sluice_tui.demo.workload import config_from_env

REDIS_URL = "redis://127.0.0.1:6379"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
WORKLOAD_APP = "sluice_tui.demo.workload"


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval=0.05):
    """Poll ``condition`` until it is truthy; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def send_event(app: Celery, hostname: str = "w@h", **fields) -> None:
    """Publish one event as a worker would, on the app's event exchange."""
    with app.connection_for_write() as conn:
        dispatcher = app.events.Dispatcher(conn, hostname=hostname, enabled=True)
        dispatcher.send(**fields)
        dispatcher.close()


def event_arrives(app: Celery, store, job_id: str) -> bool:
    """Send a task-started for ``job_id``; whether the store has it (poll until it does)."""
    send_event(app, type="task-started", uuid=job_id)
    return job_id in store


# Filesystem always runs; Redis and RabbitMQ are mandatory when CI=true.
TRANSPORTS = [
    "filesystem",
    pytest.param("redis", marks=pytest.mark.broker),
    pytest.param("rabbitmq", marks=pytest.mark.broker),
]


def require_transport(transport: str) -> None:
    if transport == "redis":
        require_broker(REDIS_URL)
    elif transport == "rabbitmq":
        require_broker(RABBITMQ_URL)


def require_broker(url: str) -> None:
    """Skip when the broker is absent, except in CI, where it must be there."""
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=0)
    except Exception as exc:
        message = f"broker {url} is not reachable: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: broker tests are mandatory)")
        pytest.skip(message)


def broker_url(transport: str, tmp_path: Path) -> str:
    """The SLUICE_BROKER value for a transport: a directory means filesystem://."""
    if transport == "filesystem":
        return str(tmp_path / "broker")
    if transport == "redis":
        # Distinct db per run; names are namespaced as well.
        return f"{REDIS_URL}/{1 + uuid.uuid4().int % 15}"
    if transport == "rabbitmq":
        return RABBITMQ_URL
    raise ValueError(transport)


class LineReader:
    """Collects a pipe's lines on a thread, so tests can wait for one."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.put(line)
        stream.close()

    def text(self, timeout: float) -> str:
        """Everything the stream carried, once it has closed."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            pytest.fail(f"stream still open after {timeout} s")
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "".join(self.seen)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen:
                if text in line:
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no line containing {text!r} within {timeout} s; got {self.seen}")
            try:
                self.seen.append(self.lines.get(timeout=remaining))
            except queue.Empty:
                continue


# Starts the workload's worker with Celery settings from SLUICE_TEST_CONF (JSON)
# laid over the workload's own: its config comes from the environment, and
# only its broker, backend and names can be set there.
_WORKER_WITH_CONF = (
    "import json, os, sys\n"
    "from sluice_tui.demo.workload import app\n"
    "app.conf.update(json.loads(os.environ['SLUICE_TEST_CONF']))\n"
    "app.worker_main(sys.argv[1:])\n"
)


class Cluster:
    """Workers and a producer on one broker.

    ``conf`` changes Celery settings for the producer and the workers alike
    (say ``result_extended=False``); without it they run the workload's
    config, the ideal one for a monitor.
    """

    def __init__(self, transport: str, tmp_path: Path, conf: dict | None = None) -> None:
        self.transport = transport
        self.conf = dict(conf or {})
        self.tmp_path = tmp_path
        self.namespace = f"sluice-test-{uuid.uuid4().hex[:10]}"
        self.env = {
            **os.environ,
            "SLUICE_BROKER": broker_url(transport, tmp_path),
            "SLUICE_BACKEND": f"file://{tmp_path / 'results'}",
            "SLUICE_NAMESPACE": self.namespace,
            "PYTHONUNBUFFERED": "1",
            # Prefork pools make pymp-* directories there, and a worker killed
            # by the group SIGTERM below never removes them: keep them here.
            "TMPDIR": str(tmp_path / "tmp"),
        }
        (tmp_path / "results").mkdir(parents=True, exist_ok=True)
        (tmp_path / "tmp").mkdir(exist_ok=True)
        self.app = Celery("sluice-test-producer", set_as_current=False)
        self.app.conf.update(config_from_env(self.env))
        if self.conf:
            self.app.conf.update(self.conf)
            self.env["SLUICE_TEST_CONF"] = json.dumps(self.conf)
        self.processes: list[subprocess.Popen] = []

    @property
    def broker_url(self) -> str:
        return self.app.conf.broker_url

    def start_worker(
        self, name: str = "w1", concurrency: int = 2, *options: str
    ) -> subprocess.Popen:
        """A prefork worker started without -E, as many production workers are."""
        log = open(self.tmp_path / f"{name}.log", "w")  # noqa: SIM115 - lives with the process
        argv = worker_argv(f"{name}@{self.namespace}", concurrency)
        if self.conf:  # the same app, through a start that lays the settings over it
            argv = [sys.executable, "-c", _WORKER_WITH_CONF, *argv[argv.index("worker") :]]
        worker = subprocess.Popen(
            [*argv, *options],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(worker)
        logfile = self.tmp_path / f"{name}.log"
        wait_for(
            lambda: " ready." in logfile.read_text() or worker.poll() is not None,
            60,
            f"worker {name} to be ready",
        )
        if worker.poll() is not None:
            pytest.fail(f"worker {name} exited: {logfile.read_text()[-2000:]}")
        return worker

    def start_beating_worker(self, receiver, store, heartbeat: int) -> tuple[subprocess.Popen, str]:
        """Worker w1 sending a heartbeat every ``heartbeat`` s, and ``receiver`` started,
        once ``store`` has heard the worker at that pace; (the worker, its hostname)."""
        worker = self.start_worker("w1", 2, f"--heartbeat-interval={heartbeat}")
        receiver.start()
        wait_for(
            lambda: any(w.online and w.freq == heartbeat for w in store.workers()),
            30,
            "a regular heartbeat from the worker",
        )
        return worker, f"w1@{self.namespace}"

    def sluice(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sluice_tui", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.processes.append(proc)
        return proc

    def send(self, name: str, *args, **options):
        return self.app.send_task(name, args=args, **options)

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
            # Prefork children outlive a killed parent unless the group goes too.
            _signal_group(proc, signal.SIGKILL)
        self._forget_broker_names()

    def _forget_broker_names(self) -> None:
        if self.transport == "filesystem":
            return
        try:
            with Connection(self.broker_url, connect_timeout=3) as conn:
                channel = conn.default_channel
                channel.queue_delete(f"{self.namespace}.tasks")
                if self.transport == "rabbitmq":
                    for exchange in (
                        f"{self.namespace}.ev",
                        f"{self.namespace}.ctl",
                        f"{self.namespace}.tasks",
                    ):
                        channel.exchange_delete(exchange)
                else:
                    client = channel.client
                    for key in client.scan_iter(match=f"*{self.namespace}*"):
                        client.delete(key)
        except Exception:
            pass  # best effort: names are unique, so leftovers harm no other run


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
