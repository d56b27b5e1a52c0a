"""Highest sustained event rate with the UI open, against Flower and `celery events --dump`.

    python -m bench.sustained [--seconds 60] [--brokers redis,rabbitmq] [--rates 500,1000,...]
    python -m bench.sustained --quick          # about two minutes

For each broker, a ladder of rates.  Each rung publishes task events (shaped
like bench.events: sent, received, started, retried, succeeded or failed)
at a fixed rate for ``--seconds`` to the run's own event exchange, and three
monitors consume that one stream at once, each started fresh for the rung:

- sluice-tui: the full TUI as ``sluice-tui`` builds it (launch.build_app:
  the receiver thread, the queue poller, the actions gate and the history
  journal, in the rung's folder; ``--no-history`` leaves it out), headless through
  ``App.run_test`` at 200x60, in this process.  It keeps up when its store
  has taken in every published event within DRAIN seconds of the end, the
  refresh tick's p95 stays under 50 ms, and a key pressed every second
  (filter digits and the sort key, delivered as the terminal driver
  delivers keys) is shown within 100 ms at p95.  Both are main-thread CPU,
  as bench.ui counts them: a tick is reading the change feed and updating
  the index plus painting the table's visible rows; a key runs from its
  delivery to the first frame that shows it, less the ticks that ran
  meanwhile.  Wall times and the painting of whole frames are reported
  beside them, not judged (see SluiceProbe).
- Flower (``celery flower``, a subprocess): it keeps up when its count of
  task events (``flower_events_total`` on /metrics) reaches every published
  event and its tasks table (``/tasks/datatable``, searched by state) holds
  every job in its final state within DRAIN seconds, and the tasks page's
  request (the first 15 rows, newest first: what the page asks for on each
  load, search or page turn) answers within 100 ms at p95 when asked once a
  second from another process.  That is wall time, the only time Flower's
  answers can be measured by from outside; it includes waiting for a CPU,
  which the TUI's CPU figures do not, so on a loaded machine this judges
  Flower more harshly (compare key_wall_p95_ms).  Flower's tasks page has
  no timer of its own (only the workers page refreshes, every second), so
  once a second is a user who keeps the table current.  ``--max_tasks`` is raised to hold every
  job of the rung, as the sluice store's ``max_jobs`` is: neither evicts.
- ``celery events --dump`` (a subprocess writing to a file): it keeps up when
  it has printed a line for every published task event within DRAIN seconds.

Every consumer is a Celery event receiver on the same exchange, so RabbitMQ
gives each its own queue; the event queue TTL is raised to 10 minutes so a
slow consumer's backlog is late, never dropped.  Redis pub/sub drops a
subscriber whose unread output passes the server's limit: that monitor then
misses events and fails the rung.

The ladder goes up until every monitor has failed a rung; a monitor that
failed is not started again at higher rates (its figure is the last rate it
kept up with), so the ones still climbing have the machine to themselves.
A rung the publishers could not deliver at its rate (below 95 %) is marked:
a monitor's figure from it means ">= the rate delivered".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kombu import Connection, Exchange

from bench.common import machine, report
from bench.sustained_app import BROKER, TAG, control_exchange, event_exchange, make_app
from bench.sustained_poll import tasks_page

ROOT = Path(__file__).resolve().parent.parent
BROKERS = {
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
    "redis": "redis://127.0.0.1:6379/13",
}
MONITORS = ("sluice", "flower", "dump")
FULL_RATES = (250, 500, 1000, 2000, 3000, 4000, 6000, 8000, 12000, 16000)
QUICK_RATES = (250, 500, 1000, 2000, 4000, 8000)
QUICK_SECONDS = 6.0
SIZE = (200, 60)
TICK_MS = 50.0  # refresh tick, p95
KEY_MS = 100.0  # key press to redraw, p95
PAGE_MS = 100.0  # Flower's tasks page request, p95
DRAIN = 5.0  # seconds after publishing ends for each monitor to catch up
KEY_INTERVAL = 1.0  # a key press, and a request for Flower's tasks page, this often
KEYS = ("6", "0", "s", "5", "0", "s")  # failed only, all, sort, ... as bench.ui
PER_PUBLISHER = 4000  # events/s one publisher process is asked for, at most
DELIVERED = 0.95  # below this share of the rate, the publishers were the limit
EVENTS_PER_JOB = 4.3  # bench.events' mix
PROBE_HOST = "probe@sluice-sustained"
BARRIER_HOST = "barrier@sluice-sustained"
START_TIMEOUT = 60.0


# -- results -------------------------------------------------------------------


@dataclass
class Verdict:
    """One monitor on one rung."""

    kept_up: bool
    taken: int  # events it accounted for when the drain window closed
    caught_up_after: float | None  # seconds after publishing ended, None if never
    figures: dict[str, float] = field(default_factory=dict)
    why: str = ""


@dataclass
class Rung:
    broker: str
    rate: int
    events: int
    jobs: int
    delivered: float  # events/s the publishers achieved
    verdicts: dict[str, Verdict]

    @property
    def publisher_limited(self) -> bool:
        return self.delivered < self.rate * DELIVERED


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else math.nan
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


# -- processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(args: list[str], env: dict[str, str], stdout, stderr=subprocess.DEVNULL):
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=stderr,
        text=True,
    )


def end(process: subprocess.Popen) -> None:
    """Stop a child for good: politely, then not."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def wait_for(condition, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(interval)


async def wait_for_async(condition, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


# -- the monitors as seen from outside -------------------------------------------


class DumpOutput:
    """Counts the task event lines ``celery events --dump`` has written to its file."""

    TASK_LINE = b"] task "  # "host [time] task succeeded: ..."; tracebacks span lines

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.tail = b""
        self.task_lines = 0
        self.hosts: set[str] = set()

    def update(self) -> int:
        with self.path.open("rb") as out:
            out.seek(self.offset)
            data = out.read()
        self.offset += len(data)
        data = self.tail + data
        cut = data.rfind(b"\n") + 1
        whole, self.tail = data[:cut], data[cut:]
        self.task_lines += whole.count(self.TASK_LINE)
        for host in (PROBE_HOST, BARRIER_HOST):
            if host.encode() in whole:
                self.hosts.add(host)
        return self.task_lines


METRIC = re.compile(rb"^flower_events_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)
WORKER_LABEL = re.compile(rb'worker="([^"]*)"')


class FlowerView:
    """Flower's own counts: /metrics for events, its tasks table for finished jobs."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.hosts: set[str] = set()

    def _get(self, path: str) -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise OSError(f"HTTP {response.status} from {path}")
            return body
        finally:
            conn.close()

    def answers(self) -> bool:
        try:
            self._get("/metrics")
            return True
        except OSError:
            return False

    def task_events(self) -> int:
        body = self._get("/metrics")
        for host in WORKER_LABEL.findall(body):
            self.hosts.add(host.decode())
        return int(sum(float(v) for labels, v in METRIC.findall(body) if b'type="task-' in labels))

    def finished_tasks(self) -> int:
        return sum(
            tasks_page(self.port, search=f"state:{state}", length=1)[1]["recordsFiltered"]
            for state in ("SUCCESS", "FAILURE")
        )


# -- one rung ------------------------------------------------------------------------


def heartbeat(host: str) -> dict:
    return {
        "type": "worker-heartbeat",
        "hostname": host,
        "timestamp": time.time(),
        "utcoffset": 0,
        "pid": 1,
        "clock": 1,
        "freq": 2.0,
        "active": 0,
        "processed": 0,
        "loadavg": [0.0, 0.0, 0.0],
        "sw_ident": "sluice-sustained",
        "sw_ver": "1",
        "sw_sys": "Linux",
    }


class Probe:
    """Heartbeats from made-up workers: shows that every monitor is subscribed, and when."""

    def __init__(self, broker: str, tag: str) -> None:
        from celery.events.event import get_exchange

        self.conn = Connection(broker)
        self.exchange = get_exchange(self.conn, name=event_exchange(tag))
        self.producer = self.conn.Producer(exchange=self.exchange, serializer="json")
        self.exchange(self.conn.default_channel).declare()

    def send(self, host: str) -> None:
        self.producer.publish(heartbeat(host), routing_key="worker.heartbeat", delivery_mode=1)

    def close(self) -> None:
        self.conn.release()


class PublisherFailed(RuntimeError):
    """A publisher process ended without its counts: the rung cannot be judged."""


class Publishers:
    """Enough publisher processes for ``rate``, started at once on ``go``."""

    def __init__(self, broker: str, tag: str, rate: int, seconds: float, seed: int) -> None:
        count = max(1, math.ceil(rate / PER_PUBLISHER))
        shares = [rate // count + (1 if i < rate % count else 0) for i in range(count)]
        # What a failing publisher says, for the report (a file: a pipe could fill up).
        self.errors = [tempfile.TemporaryFile("w+") for _ in shares]  # noqa: SIM115 (closed in end)
        self.processes = [
            spawn(
                [
                    "-m",
                    "bench.sustained_publish",
                    "--broker",
                    broker,
                    "--tag",
                    tag,
                    "--rate",
                    str(share),
                    "--seconds",
                    str(seconds),
                    "--seed",
                    str(seed * 100 + i),
                ],
                dict(os.environ),
                subprocess.PIPE,
                self.errors[i],
            )
            for i, share in enumerate(shares)
        ]
        for process in self.processes:
            if process.stdout.readline().strip() != "ready":
                self.end()
                raise RuntimeError("a publisher could not connect")

    def go(self) -> None:
        for process in self.processes:
            process.stdin.write("go\n")
            process.stdin.flush()

    def done(self) -> bool:
        return all(process.poll() is not None for process in self.processes)

    def results(self) -> tuple[int, int, float]:
        """(events, jobs, events per second) over every publisher."""
        rows = []
        for process, errors in zip(self.processes, self.errors, strict=True):
            line = process.stdout.readline()
            if not line.strip():
                errors.seek(0)
                said = errors.read().strip().splitlines()
                raise PublisherFailed(said[-1] if said else f"exit status {process.wait()}")
            rows.append(json.loads(line))
        events = sum(row["events"] for row in rows)
        jobs = sum(row["jobs"] for row in rows)
        return events, jobs, sum(row["events"] / row["seconds"] for row in rows)

    def end(self) -> None:
        for process in self.processes:
            end(process)
        for errors in self.errors:
            errors.close()


class SluiceProbe:
    """The TUI's side: its refresh and key times (main-thread CPU, as bench.ui), its store.

    A refresh tick, as bench.ui counts it: one tick (read the store's change
    feed, update the index) plus painting the job table's visible rows for
    the frame that follows.  Here the rows are timed as Textual paints them,
    not painted a second time.  ``frames`` adds everything else painted
    until the next tick (status bar, footer, compositing): reported, not
    judged.  A key: the main thread's CPU from the moment the terminal would
    deliver it until the first frame after the screen acted on it is ready,
    less the ticks (and their painting) that ran meanwhile, which count as
    ticks; on a busy machine that wait can span several.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.ticks: list[float] = []
        self.frames: list[float] = []
        self.keys: list[float] = []
        self.keys_wall: list[float] = []
        self.measuring = False
        self.hooked = False
        self.timing_key = False
        self.acted = False
        self.shown: float | None = None
        self.frame_ready = asyncio.Event()
        self._last_tick: float | None = None
        self._painted = 0.0
        self._rows = 0.0
        self._not_key = 0.0  # main-thread CPU for ticks while a key is being timed
        self.keys_gc: list[float] = []  # of each key's time, the collector's share
        self._gc_in_key = 0.0
        self._gc_started = 0.0
        real_tick = app.tick

        def timed_tick() -> None:
            if self._last_tick is not None and self.measuring:
                self.ticks.append((self._last_tick + self._rows) * 1000)
                self.frames.append((self._last_tick + self._painted) * 1000)
            started = time.thread_time()
            real_tick()
            self._last_tick = time.thread_time() - started
            self._painted = self._rows = 0.0
            if self.timing_key:
                self._not_key += self._last_tick

        # Before mount: the app's timer takes the bound method when it mounts.
        app.tick = timed_tick

    def hook_screen(self) -> None:
        """Time the jobs screen's painting and note when it has acted on a key."""
        from sluice_tui.ui.widgets.job_table import JobTable

        screen, app = self.app.screen, self.app
        sort, filter_ = screen.action_sort, screen.action_filter
        refresh_layout, compositor_refresh = screen._refresh_layout, screen._compositor_refresh
        display = app._display
        table = screen.query_one(JobTable)
        render_line = table.render_line

        def rows(y: int):
            started = time.thread_time()
            line = render_line(y)
            if not self._for_key():
                self._rows += time.thread_time() - started
            return line

        def action_sort() -> None:
            sort()
            self.acted = True

        def action_filter(digit: int) -> None:
            filter_(digit)
            self.acted = True

        def painting(paint):
            def timed(*args, **kwargs):
                started = time.thread_time()
                paint(*args, **kwargs)
                if not self._for_key():
                    took = time.thread_time() - started
                    self._painted += took
                    if self.timing_key:
                        self._not_key += took

            return timed

        def shown(screen, renderable) -> None:
            display(screen, renderable)
            if self.acted and renderable is not None and self.shown is None:
                self.shown = time.perf_counter()
                self.frame_ready.set()

        screen.action_sort, screen.action_filter = action_sort, action_filter
        table.render_line = rows
        screen._refresh_layout = painting(refresh_layout)
        screen._compositor_refresh = painting(compositor_refresh)
        app._display = shown
        self.hooked = True

    def _collecting(self, phase: str, _info: dict) -> None:
        """Garbage collections on the UI thread while a key is timed: reported, not judged."""
        if not self.timing_key or threading.current_thread() is not threading.main_thread():
            return
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            self._gc_in_key += time.thread_time() - self._gc_started

    def _for_key(self) -> bool:
        """Whether painting now shows a key's effect (else it belongs to the ticks)."""
        return self.timing_key and self.acted

    def seen(self, host: str) -> bool:
        return any(worker.hostname == host for worker in self.app.store.workers())

    async def press(self, key: str) -> None:
        """Send ``key`` as the terminal would; time it until the frame that shows its effect.

        Not Pilot.press: it waits for the app to go idle, which a busy
        monitor never is, so it would time the waiting.
        """
        from textual import events

        if not self.hooked:
            self.hook_screen()
        self.acted, self.shown, self.timing_key, self._not_key = False, None, True, 0.0
        self._gc_in_key = 0.0
        self.frame_ready = asyncio.Event()
        event = events.Key(key, key)
        event.set_sender(self.app)
        started, wall = time.thread_time(), time.perf_counter()
        self.app._driver.send_message(event)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.frame_ready.wait(), 10.0)
        cpu = time.thread_time() - started - self._not_key
        self.timing_key = False
        if self.measuring:
            self.keys.append(cpu * 1000)
            self.keys_gc.append(self._gc_in_key * 1000)
            self.keys_wall.append(((self.shown or time.perf_counter()) - wall) * 1000)


def start_dump(folder: Path, env: dict[str, str], children: list) -> DumpOutput:
    """``celery events --dump`` writing to a file in ``folder``."""
    out = folder / "dump.txt"
    with out.open("w") as sink:
        command = ["-m", "celery", "-A", "bench.sustained_app", "events", "--dump"]
        children.append(spawn(command, env, sink))
    return DumpOutput(out)


def start_flower(folder: Path, env: dict[str, str], room: int, children: list) -> FlowerView:
    """Flower on a free port, keeping up to ``room`` tasks; once it answers."""
    port = free_port()
    command = ["-m", "celery", "-A", "bench.sustained_app", "flower"]
    options = ["--address=127.0.0.1", f"--port={port}", f"--max_tasks={room}"]
    with (folder / "flower.log").open("w") as log:
        children.append(spawn(command + options, env, log, subprocess.STDOUT))
    flower = FlowerView(port)
    wait_for(flower.answers, START_TIMEOUT, "Flower to answer")
    return flower


async def run_rung(
    broker_name: str, rate: int, seconds: float, active: set[str], seed: int, history: bool = True
) -> Rung:
    from sluice_tui import gc_policy
    from sluice_tui.history import HistoryOptions
    from sluice_tui.launch import build_app

    broker = BROKERS[broker_name]
    tag = uuid.uuid4().hex[:10]
    env = {**os.environ, BROKER: broker, TAG: tag, "PYTHONPATH": str(ROOT)}
    room = int(rate * seconds / EVENTS_PER_JOB * 1.3) + 10_000  # every job of the rung
    children: list[subprocess.Popen] = []
    publishers: Publishers | None = None
    probe: Probe | None = None
    with tempfile.TemporaryDirectory(prefix="sluice-sustained-") as folder:
        try:
            dump = start_dump(Path(folder), env, children) if "dump" in active else None
            flower = start_flower(Path(folder), env, room, children) if "flower" in active else None
            async with contextlib.AsyncExitStack() as stack:
                sluice = None
                if "sluice" in active:
                    # The journal on, as the shipped command has it, in the rung's folder.
                    journal = HistoryOptions(path=Path(folder) / "journal.sqlite3")
                    app = build_app(
                        make_app(broker, tag),
                        store_options={"max_jobs": room},
                        history=journal if history else None,
                    )
                    gc_policy.install()  # as the shipped command's run_app does
                    stack.callback(gc_policy.uninstall)  # each rung starts as a fresh process would
                    sluice = SluiceProbe(app)
                    await stack.enter_async_context(app.run_test(size=SIZE))
                    gc.callbacks.append(sluice._collecting)
                    stack.callback(gc.callbacks.remove, sluice._collecting)
                probe = Probe(broker, tag)
                await ready(probe, sluice, dump, flower)
                baseline = sluice.app.store.event_count if sluice else 0
                if sluice is not None:  # once through the keys: first-use costs are not lag
                    for key in KEYS:
                        await sluice.press(key)
                publishers = Publishers(broker, tag, rate, seconds, seed)
                poller = None
                if flower is not None:
                    poller = spawn(
                        [
                            "-m",
                            "bench.sustained_poll",
                            f"--port={flower.port}",
                            f"--interval={KEY_INTERVAL}",
                        ],
                        env,
                        subprocess.PIPE,
                    )
                    children.append(poller)
                if sluice is not None:
                    sluice.measuring = True
                publishers.go()
                turn = 0
                while not publishers.done():
                    began = time.monotonic()
                    if sluice is not None:
                        await sluice.press(KEYS[turn % len(KEYS)])
                        turn += 1
                    await asyncio.sleep(max(0.05, KEY_INTERVAL - (time.monotonic() - began)))
                events, jobs, delivered = publishers.results()
                counters = {
                    "sluice": lambda: sluice.app.store.event_count - baseline,
                    "dump": dump.update if dump else None,
                    "flower": flower.task_events if flower else None,
                }
                caught = await drain({m: counters[m] for m in active}, events)
                page_ms: list[float] = []
                if poller is not None:
                    poller.stdin.write("stop\n")
                    poller.stdin.flush()
                    page_ms = json.loads(poller.stdout.readline())["ms"]
                verdicts = {}
                for monitor in active:
                    taken, after = caught[monitor]
                    verdicts[monitor] = Verdict(taken == events, taken, after)
                if sluice is not None:
                    sluice.measuring = False
                    bad = sluice.app.store.stats().bad_events
                    judge_sluice(verdicts["sluice"], sluice, bad)
                if flower is not None:
                    judge_flower(verdicts["flower"], flower, page_ms, jobs)
                if dump is not None and not verdicts["dump"].kept_up:
                    verdicts["dump"].why = f"printed {verdicts['dump'].taken:,} of {events:,}"
        finally:
            if publishers is not None:
                publishers.end()
            if probe is not None:
                probe.close()
            for child in children:
                end(child)
            clean_broker(broker, tag)
    return Rung(broker_name, rate, events, jobs, delivered, verdicts)


async def ready(probe: Probe, sluice: SluiceProbe | None, dump, flower) -> None:
    """Heartbeats until every monitor has one, then one more that marks the start.

    Events from one connection arrive in order, so once each monitor has the
    barrier heartbeat it has every probe before it: counts taken then are
    the baseline the rung's events add to.
    """

    def seen(host: str) -> bool:
        if dump is not None:
            dump.update()
        if flower is not None:
            with contextlib.suppress(OSError):
                flower.task_events()
        return (
            (sluice is None or sluice.seen(host))
            and (dump is None or host in dump.hosts)
            and (flower is None or host in flower.hosts)
        )

    deadline = time.monotonic() + START_TIMEOUT
    while not seen(PROBE_HOST):
        if time.monotonic() > deadline:
            raise RuntimeError("a monitor never received the probe events")
        probe.send(PROBE_HOST)
        await asyncio.sleep(0.3)
    probe.send(BARRIER_HOST)
    await wait_for_async(lambda: seen(BARRIER_HOST), START_TIMEOUT, "the barrier event")


async def drain(counters: dict, expected: int) -> dict[str, tuple[int, float | None]]:
    """Each monitor's count when it reached ``expected``, or when DRAIN ran out."""
    started = time.monotonic()
    result: dict[str, tuple[int, float | None]] = {}
    while True:
        now = time.monotonic() - started
        for monitor, count in counters.items():
            if monitor in result and result[monitor][1] is not None:
                continue
            try:
                taken = count()
            except OSError:
                taken = 0  # Flower too busy to answer counts as not there yet
            result[monitor] = (taken, now if taken >= expected else None)
        if all(after is not None for _, after in result.values()) or now > DRAIN:
            return result
        await asyncio.sleep(0.25)


def judge_sluice(verdict: Verdict, sluice: SluiceProbe, bad_events: int) -> None:
    verdict.figures = {
        "tick_p95_ms": p95(sluice.ticks),
        "tick_max_ms": max(sluice.ticks, default=math.nan),
        "frames_p95_ms": p95(sluice.frames),
        "key_p95_ms": p95(sluice.keys),
        "key_wall_p95_ms": p95(sluice.keys_wall),
        "key_less_gc_p95_ms": p95(
            [k - g for k, g in zip(sluice.keys, sluice.keys_gc, strict=True)]
        ),
        "bad_events": bad_events,
    }
    reasons = []
    if not verdict.kept_up:
        reasons.append(f"took in {verdict.taken:,}")
    if not verdict.figures["tick_p95_ms"] < TICK_MS:
        reasons.append(f"tick p95 {verdict.figures['tick_p95_ms']:.0f} ms")
    if not verdict.figures["key_p95_ms"] < KEY_MS:
        reasons.append(f"key p95 {verdict.figures['key_p95_ms']:.0f} ms")
    verdict.kept_up = not reasons
    verdict.why = ", ".join(reasons)


def judge_flower(verdict: Verdict, flower: FlowerView, page_ms: list[float], jobs: int) -> None:
    try:
        finished = flower.finished_tasks()
    except OSError:
        finished = -1
    verdict.figures = {"page_p95_ms": p95(page_ms), "finished": finished, "jobs": jobs}
    reasons = []
    if not verdict.kept_up:
        reasons.append(f"counted {verdict.taken:,} events")
    if finished != jobs:
        reasons.append(f"{finished:,} of {jobs:,} jobs finished")
    if not verdict.figures["page_p95_ms"] < PAGE_MS:
        reasons.append(f"page p95 {verdict.figures['page_p95_ms']:.0f} ms")
    verdict.kept_up = not reasons
    verdict.why = ", ".join(reasons)


def clean_broker(broker: str, tag: str) -> None:
    """Remove what the rung left on the broker: its exchanges, or its Redis keys."""
    with contextlib.suppress(Exception), Connection(broker) as conn:
        channel = conn.default_channel
        if conn.transport_cls in ("redis", "rediss"):
            client = channel.client
            for key in client.scan_iter(match=f"*sluice-sustained-{tag}*"):
                client.delete(key)
            # kombu keeps every expiring binding's deadline in one shared set.
            deadlines = "_kombu.binding_deadlines"
            ours = [m for m in client.zrange(deadlines, 0, -1) if tag.encode() in m]
            if ours:
                client.zrem(deadlines, *ours)
            return
        control = control_exchange(tag)
        for name in (event_exchange(tag), f"{control}.pidbox", f"reply.{control}.pidbox"):
            Exchange(name)(channel).delete()


# -- the ladder --------------------------------------------------------------------------


async def climb(
    broker: str,
    rates: list[int],
    seconds: float,
    monitors: tuple[str, ...] = MONITORS,
    history: bool = True,
) -> list[Rung]:
    rungs: list[Rung] = []
    active = set(monitors)
    for step, rate in enumerate(rates):
        if not active:
            break
        try:
            rung = await run_rung(broker, rate, seconds, active, seed=step + 1, history=history)
        except PublisherFailed as exc:
            # The ladder ends here: what was kept up with so far stands as "at least".
            print(f"  {broker} {rate:>6,}/s: not judged, a publisher failed: {exc}", flush=True)
            break
        rungs.append(rung)
        print_rung(rung)
        active -= {m for m, v in rung.verdicts.items() if not v.kept_up}
    return rungs


def print_rung(rung: Rung) -> None:
    limited = " (publishers limited)" if rung.publisher_limited else ""
    print(
        f"  {rung.broker} {rung.rate:>6,}/s: published {rung.events:,} events "
        f"({rung.delivered:,.0f}/s{limited})",
        flush=True,
    )
    for monitor, verdict in sorted(rung.verdicts.items()):
        after = "-" if verdict.caught_up_after is None else f"{verdict.caught_up_after:.1f} s"
        figures = " ".join(f"{k}={v:.1f}" for k, v in verdict.figures.items())
        state = "kept up" if verdict.kept_up else f"FELL BEHIND ({verdict.why})"
        print(f"    {monitor:<7} {state}; caught up after {after}; {figures}", flush=True)


def sustained(rungs: list[Rung], monitor: str) -> tuple[float, bool]:
    """The highest rate ``monitor`` kept up with before it first fell behind.

    (rate, at_least): at_least when it never fell behind, or when the rung
    was limited by the publishers (then the rate is what they delivered).
    """
    best, at_least = 0.0, False
    for rung in rungs:
        verdict = rung.verdicts.get(monitor)
        if verdict is None or not verdict.kept_up:
            return best, at_least
        if rung.publisher_limited:
            return rung.delivered, True
        best = float(rung.rate)
    return best, True


def summary(
    results: dict[str, list[Rung]], monitors: tuple[str, ...] = MONITORS
) -> dict[str, dict[str, tuple[float, bool]]]:
    return {broker: {m: sustained(rungs, m) for m in monitors} for broker, rungs in results.items()}


def first_failure(rungs: list[Rung], monitor: str) -> str:
    """Where and why ``monitor`` first fell behind, or "" if it never did."""
    for rung in rungs:
        verdict = rung.verdicts.get(monitor)
        if verdict is not None and not verdict.kept_up:
            return f"fell behind at {rung.rate:,}/s: {verdict.why}"
    return ""


def print_table(results: dict[str, list[Rung]], monitors: tuple[str, ...], seconds: float) -> None:
    rows = []
    for broker, by_monitor in summary(results, monitors).items():
        for monitor, (rate, at_least) in by_monitor.items():
            why = first_failure(results[broker], monitor)
            rows.append(
                (
                    f"{broker:<9} {monitor:<7}",
                    f"{'>=' if at_least else '  '}{rate:8,.0f}/s  {why}".rstrip(),
                )
            )
        if "sluice" in by_monitor and "flower" in by_monitor:
            flower = by_monitor["flower"][0]
            ratio = (
                f"{by_monitor['sluice'][0] / flower:8.1f} x"
                if flower
                else "  - (Flower kept up with no rung)"
            )
            rows.append((f"{broker:<9} sluice / Flower (target >= 2)", ratio))
    report(f"highest sustained rate, {seconds:.0f} s per rung", rows)


def measure(
    brokers: list[str],
    rates: list[int],
    seconds: float,
    monitors: tuple[str, ...] = MONITORS,
    history: bool = True,
) -> dict[str, list[Rung]]:
    results = {}
    journal = "on" if history else "off"
    for broker in brokers:
        print(
            f"{broker}: rates {', '.join(map(str, rates))}, {seconds:.0f} s each,"
            f" sluice-tui's journal {journal}",
            flush=True,
        )
        results[broker] = asyncio.run(climb(broker, sorted(rates), seconds, monitors, history))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None, help="per rung (default 60)")
    parser.add_argument("--brokers", default="rabbitmq,redis")
    parser.add_argument("--rates", default=None, help="comma-separated events/s, ascending")
    parser.add_argument("--monitors", default=",".join(MONITORS))
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SECONDS:.0f} s rungs")
    parser.add_argument(
        "--no-history",
        action="store_true",
        help="sluice-tui without its history journal (on by default, as the command has it)",
    )
    args = parser.parse_args()
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    unknown = [b for b in brokers if b not in BROKERS]
    if unknown:
        parser.error(f"unknown broker {', '.join(unknown)}; choose from {', '.join(BROKERS)}")
    monitors = tuple(m for m in MONITORS if m in args.monitors.split(","))
    if not monitors or set(args.monitors.split(",")) - set(MONITORS):
        parser.error(f"--monitors takes some of {', '.join(MONITORS)}")
    try:
        rates = [int(r) for r in args.rates.split(",")] if args.rates else None
    except ValueError:
        parser.error(f"--rates takes numbers separated by commas, not {args.rates!r}")
    if rates is not None and min(rates, default=0) <= 0:
        parser.error("--rates must all be above 0")
    if args.seconds is not None and args.seconds <= 0:
        parser.error("--seconds must be above 0")
    rates = rates or list(QUICK_RATES if args.quick else FULL_RATES)
    seconds = args.seconds or (QUICK_SECONDS if args.quick else 60.0)
    print(f"machine: {machine()}")
    results = measure(brokers, rates, seconds, monitors, history=not args.no_history)
    print_table(results, monitors, seconds)


if __name__ == "__main__":
    main()
