"""Process-level drain: the whole ``sluice-tui dump`` process against Celery's bare receiver.

    python -m bench.drain [--events N] [--redis-events N] [--repeat R] [--idle S]

Each side is a real OS process, measured from outside by its CPU ticks
(user + system, all threads, from /proc/<pid>/stat):

- sluice: the shipped ``sluice-tui dump`` as users run it (receiver, store,
  resync, enable_events and broadcast listener threads, dump's own loop),
  with ``-A bench.drain_app`` so the event exchange and queue TTL are the
  bench's;
- celery: ``python -m bench.drain celery-consumer``, Celery's bare
  ``EventReceiver`` whose only handler counts.

One round, per side: start the process; publish a probe ``worker-online``
event every 0.2 s until the consumer shows it took one in (sluice's
``--verbose`` says "worker seen", the counter prints a line): it is
subscribed, whatever the queue is called.  Then measure its idle CPU for
4 s; pause it (SIGSTOP) and publish the backlog, N task events from
``bench.events`` followed by a ``worker-online`` event from a sentinel
hostname; resume it (SIGCONT) and read its CPU again the moment it shows the
sentinel.  Events arrive in order, so by then all N are in; the job list
dump prints (after SIGINT) and the counter's count are checked against the
stream.  Nothing the process does in that window is subtracted; the idle
rate is reported beside it, and so is the CPU rate in the second after "all
in" (the highest of the rounds): near idle, it shows no work on the backlog
was left for after the moment the reading was taken.

Rounds are interleaved (the order of the two sides alternates) and each has
its own exchange; the figures are medians over the rounds, with the spread.
The Redis burst is kept small enough to fit the server's pub/sub output
buffer while the consumer is paused, as in ``bench.end_to_end``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from celery.events.event import get_exchange
from kombu import Connection, Producer

from bench.common import machine, report
from bench.drain_app import EXCHANGE_VARIABLE, make_app
from bench.events import iter_task_events

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
REDIS = "redis://127.0.0.1:6379/14"
REPO = Path(__file__).resolve().parent.parent
PROBE = "celery@drain-probe"  # worker-online from here: the consumer is subscribed
SENTINEL = "celery@drain-done"  # published after the backlog: all of it is in
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
SUBSCRIBE_TIMEOUT = 60.0
EXIT_TIMEOUT = 30.0
# The idle window outlasts dump's start-up resync (three inspect rounds of
# 1 s each), so the backlog meets a settled process, as a burst on a monitor
# that has been running would.
IDLE_SECONDS = 4.0
TAIL_SECONDS = 1.0
# A job's last event -> its state in dump's output (the stream may end mid-job).
DUMP_STATE = {
    "task-sent": "queued",
    "task-received": "queued",
    "task-started": "active",
    "task-retried": "retrying",
    "task-succeeded": "completed",
    "task-failed": "failed",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the whole process (every thread, living or ended)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


class LineWatcher:
    """Reads a child's output on a thread, so the child never blocks on a full pipe."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for(self, text: str, timeout: float) -> bool:
        """Whether a line containing ``text`` arrives within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:  # the child closed its output: it ended
                return False
            self.seen.append(line)
            if text in line:
                return True
        return False


@dataclass(frozen=True)
class Stream:
    """One round's events and what a consumer must end up with."""

    events: list[dict]
    jobs: Counter  # final state -> jobs, as dump names states

    @classmethod
    def make(cls, count: int) -> Stream:
        events = list(iter_task_events(count, seed=7))
        last: dict[str, str] = {}
        for event in events:
            last[event["uuid"]] = event["type"]
        return cls(events, Counter(DUMP_STATE[kind] for kind in last.values()))


class Publisher:
    """Publishes to a round's event exchange as Celery's dispatcher would."""

    def __init__(self, broker: str, exchange_name: str) -> None:
        self.conn = Connection(broker)
        self.exchange = get_exchange(self.conn, name=exchange_name)
        self.producer = Producer(self.conn, exchange=self.exchange, serializer="json")

    def publish(self, event: dict) -> None:
        key = event["type"].replace("-", ".")
        self.producer.publish(event, routing_key=key, delivery_mode=1)

    def worker_online(self, hostname: str) -> None:
        self.publish({"type": "worker-online", "hostname": hostname, "timestamp": time.time()})

    def close(self) -> None:
        # The exchange is durable on RabbitMQ: leave none behind.
        self.exchange.bind(self.conn.default_channel).delete()
        self.conn.release()


@dataclass(frozen=True)
class Side:
    name: str
    command: list[str]
    subscribed: str  # text of the consumer's line that says it took the probe in
    done: str  # ... and the sentinel
    check: Callable[[subprocess.Popen, Path], None]  # ends the process, checks what it took in


@dataclass(frozen=True)
class Figures:
    cpu: float  # seconds, resume to "all in"
    wall: float
    idle_rate: float  # CPU seconds per second while subscribed and idle
    # ... in the second after "all in": near the idle rate unless work on the
    # backlog was still going on when the consumer said it was done.
    tail_rate: float


def sluice_side(broker: str, stream: Stream) -> Side:
    def check(process: subprocess.Popen, output: Path) -> None:
        process.send_signal(signal.SIGINT)  # dump's Ctrl+C: stop and print what was seen
        process.wait(EXIT_TIMEOUT)
        jobs = json.loads(output.read_text())
        got = Counter(job["state"] for job in jobs)
        if got != stream.jobs:
            raise RuntimeError(f"sluice-tui dump printed {dict(got)}, expected {dict(stream.jobs)}")

    command = [sys.executable, "-m", "sluice_tui", "dump", "-A", "bench.drain_app"]
    command += ["--broker", broker, "--seconds", "3600", "--verbose"]
    return Side("sluice", command, f"worker seen {PROBE}", f"worker seen {SENTINEL}", check)


def celery_side(broker: str, stream: Stream) -> Side:
    def check(process: subprocess.Popen, output: Path) -> None:
        process.stdin.close()  # the counter waits for this to exit
        if process.wait(EXIT_TIMEOUT) != 0:
            raise RuntimeError(f"the Celery counter missed events: {output.read_text()[-300:]}")

    command = [sys.executable, "-m", "bench.drain", "celery-consumer"]
    command += ["--broker", broker, "--expect", str(len(stream.events))]
    return Side("celery", command, "subscribed", "all in", check)


def run_side(side: Side, broker: str, stream: Stream, idle_seconds: float) -> Figures:
    exchange = f"sluice-drain-{uuid.uuid4().hex[:8]}.ev"
    env = {**os.environ, EXCHANGE_VARIABLE: exchange}
    with tempfile.TemporaryDirectory(prefix="sluice-drain-") as tmp:
        output = Path(tmp) / "stdout"
        watched = "stderr" if side.name == "sluice" else "stdout"
        with output.open("w") as out:
            process = subprocess.Popen(
                side.command,
                cwd=REPO,
                env=env,
                text=True,
                stdin=subprocess.PIPE,
                stdout=out if watched == "stderr" else subprocess.PIPE,
                stderr=subprocess.PIPE if watched == "stderr" else out,
            )
        publisher = Publisher(broker, exchange)
        try:
            watcher = LineWatcher(getattr(process, watched))
            return _measure(side, process, watcher, publisher, stream, idle_seconds, output)
        finally:
            publisher.close()
            if process.poll() is None:
                process.kill()
                process.wait()


def _measure(
    side: Side,
    process: subprocess.Popen,
    watcher: LineWatcher,
    publisher: Publisher,
    stream: Stream,
    idle_seconds: float,
    output: Path,
) -> Figures:
    deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
    while not watcher.wait_for(side.subscribed, 0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{side.name} never subscribed: {watcher.seen[-5:]}")
        publisher.worker_online(PROBE)
    # Idle: what the process costs while subscribed and nothing arrives.
    started, idle_from = time.monotonic(), cpu_seconds(process.pid)
    time.sleep(idle_seconds)  # a timed window, not a wait for a condition
    idle_rate = (cpu_seconds(process.pid) - idle_from) / (time.monotonic() - started)
    # The backlog waits at the broker while the consumer is paused.
    process.send_signal(signal.SIGSTOP)
    try:
        for event in stream.events:
            publisher.publish(event)
        publisher.worker_online(SENTINEL)
        before = cpu_seconds(process.pid)
        resumed = time.monotonic()
    finally:
        process.send_signal(signal.SIGCONT)
    if not watcher.wait_for(side.done, max(30.0, len(stream.events) / 500)):
        raise RuntimeError(f"{side.name} did not take the backlog in: {watcher.seen[-5:]}")
    cpu, wall = cpu_seconds(process.pid) - before, time.monotonic() - resumed
    time.sleep(TAIL_SECONDS)
    tail_rate = (cpu_seconds(process.pid) - before - cpu) / TAIL_SECONDS
    side.check(process, output)
    return Figures(cpu, wall, idle_rate, tail_rate)


def measure(broker: str, events: int, repeat: int, idle_seconds: float = IDLE_SECONDS) -> dict:
    """Both sides, ``repeat`` interleaved rounds; medians, per-round ratios and idle rates."""
    stream = Stream.make(events)
    sides = [celery_side(broker, stream), sluice_side(broker, stream)]
    runs: dict[str, list[Figures]] = {side.name: [] for side in sides}
    for round_ in range(repeat):
        for side in sides if round_ % 2 == 0 else sides[::-1]:
            runs[side.name].append(run_side(side, broker, stream, idle_seconds))
    per_thousand = {
        name: [f.cpu / events * 1000 * 1000 for f in figures] for name, figures in runs.items()
    }
    ratios = [c / s for c, s in zip(per_thousand["celery"], per_thousand["sluice"], strict=True)]
    return {
        "events": events,
        "celery_ms": statistics.median(per_thousand["celery"]),
        "sluice_ms": statistics.median(per_thousand["sluice"]),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "celery_runs_ms": per_thousand["celery"],
        "sluice_runs_ms": per_thousand["sluice"],
        "celery_idle_ms_per_s": statistics.median(f.idle_rate * 1000 for f in runs["celery"]),
        "sluice_idle_ms_per_s": statistics.median(f.idle_rate * 1000 for f in runs["sluice"]),
        "celery_tail_ms_per_s": max(f.tail_rate * 1000 for f in runs["celery"]),
        "sluice_tail_ms_per_s": max(f.tail_rate * 1000 for f in runs["sluice"]),
        "celery_wall_s": statistics.median(f.wall for f in runs["celery"]),
        "sluice_wall_s": statistics.median(f.wall for f in runs["sluice"]),
    }


def _spread(values: list[float], digits: int = 1) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def print_result(name: str, r: dict, repeat: int) -> None:
    report(
        f"process drain, {name}: a {r['events']:,}-event backlog, whole consumer process "
        f"(CPU ms per 1 000 events, median of {repeat} rounds, spread in brackets)",
        [
            (
                "Celery EventReceiver + counting handler",
                f"{r['celery_ms']:7.1f} ms  ({_spread(r['celery_runs_ms'])}), "
                f"drain {r['celery_wall_s']:.2f} s, idle {r['celery_idle_ms_per_s']:.1f} ms/s, "
                f"after {r['celery_tail_ms_per_s']:.1f} ms/s",
            ),
            (
                "sluice-tui dump",
                f"{r['sluice_ms']:7.1f} ms  ({_spread(r['sluice_runs_ms'])}), "
                f"drain {r['sluice_wall_s']:.2f} s, idle {r['sluice_idle_ms_per_s']:.1f} ms/s, "
                f"after {r['sluice_tail_ms_per_s']:.1f} ms/s",
            ),
            (
                "ratio celery / sluice (floor 1.0, target 1.3)",
                f"{r['ratio']:7.2f} x  ({_spread(r['ratios'], 2)})",
            ),
        ],
    )


def celery_consumer(broker: str, expect: int) -> int:
    """Celery's bare receiver, counting; says when the probe and the sentinel arrive."""
    app = make_app(broker, os.environ[EXCHANGE_VARIABLE])
    count = 0
    subscribed = False

    def on_event(event: dict) -> None:
        nonlocal count
        count += 1

    def on_worker_online(event: dict) -> None:
        nonlocal subscribed
        if event["hostname"] == PROBE and not subscribed:
            subscribed = True
            print("subscribed", flush=True)
        elif event["hostname"] == SENTINEL:
            print(f"all in: {count} of {expect}", flush=True)
            sys.stdin.read()  # hold still while the harness reads the CPU ticks
            raise SystemExit(0 if count == expect else 1)

    with app.connection_for_read() as conn:
        handlers = {"*": on_event, "worker-online": on_worker_online}
        receiver = app.events.Receiver(conn, handlers=handlers)
        receiver.capture(limit=None, timeout=None, wakeup=False)
    return 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="RabbitMQ backlog")
    parser.add_argument("--redis-events", type=int, default=10_000, help="Redis burst")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle", type=float, default=IDLE_SECONDS, help="idle window, s")
    parser.add_argument("--only", choices=["rabbitmq", "redis"], action="append")
    commands = parser.add_subparsers(dest="command")
    consumer = commands.add_parser("celery-consumer", help="the Celery side (run by the bench)")
    consumer.add_argument("--broker", required=True)
    consumer.add_argument("--expect", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "celery-consumer":
        sys.exit(celery_consumer(args.broker, args.expect))
    print(f"machine: {machine()}")
    brokers = {"rabbitmq": ("RabbitMQ", RABBITMQ, args.events)}
    brokers["redis"] = ("Redis", REDIS, args.redis_events)
    for key in args.only or list(brokers):
        name, url, events = brokers[key]
        print_result(name, measure(url, events, args.repeat, args.idle), args.repeat)


if __name__ == "__main__":
    main()
