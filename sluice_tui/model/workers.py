"""Workers, as seen through their online, heartbeat and offline events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice_tui.model.worker_info import Throughput

DEFAULT_HEARTBEAT_FREQ = 2.0
# A worker is alive while now < last heartbeat + EXPIRE_WINDOW * freq, as in Celery.
EXPIRE_WINDOW = 2.0
# A worker that said goodbye (worker-offline, Celery's warm shutdown) while
# jobs ran on it lets them finish first: they stay running until there is
# evidence the process went without finishing them (see JobStore.sweep).  The
# evidence short of a new process under its name is silence: no news of any
# job it was finishing for this long.  Deploys stop workers under a supervisor
# that waits a while and then kills (Docker 10 s, Kubernetes 30 s, systemd 90 s
# by default); people who run long tasks raise that to many minutes.  Thirty
# minutes of silence covers those waits: calling a job lost too early is the
# false alarm this avoids, while waiting too long only leaves a job shown
# running on a worker shown offline, which is what is known.  A job whose task
# has a hard time limit (as its worker reported it) waits at least until that
# limit has passed since it started, plus TIME_LIMIT_SLACK.
SHUTDOWN_GRACE = 30 * 60.0
TIME_LIMIT_SLACK = 60.0


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    hostname: str
    online: bool
    freq: float
    last_heartbeat: float | None  # epoch seconds, when the last heartbeat arrived
    active: int | None
    processed: int | None
    loadavg: tuple[float, ...] | None
    sw_ident: str | None
    sw_ver: str | None
    sw_sys: str | None
    pid: int | None
    rates: tuple[float, ...] = ()  # tasks per second between heartbeats, oldest first
    finishing: int = 0  # offline in a warm shutdown: jobs it still runs (see JobStore.sweep)

    def seconds_since_heartbeat(self, now: float) -> float | None:
        return None if self.last_heartbeat is None else max(0.0, now - self.last_heartbeat)


class Worker:
    __slots__ = (
        "active",
        "back_at",
        "draining",
        "freq",
        "hostname",
        "last_heartbeat",
        "loadavg",
        "lost",
        "offline",
        "offline_at",
        "pid",
        "processed",
        "quiet_since",
        "superseded",
        "sw_ident",
        "sw_sys",
        "sw_ver",
        "throughput",
    )

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.freq = DEFAULT_HEARTBEAT_FREQ
        self.last_heartbeat: float | None = None
        self.offline = False
        self.offline_at: float | None = None
        # Set once the worker's active jobs have been marked lost; a sign of
        # life clears it.
        self.lost = False
        # After a goodbye with jobs running (a warm shutdown): those jobs, each
        # with a mark of its history then (a new entry is news of it), and when
        # news of any of them last came.  None until a sweep looked at the goodbye.
        self.draining: dict[str, tuple[int, float | None]] | None = None
        self.quiet_since: float | None = None
        # When a new process came under this name after a goodbye: the jobs the
        # old one still ran then (marked as draining is), for the next sweep.
        self.superseded: dict[str, tuple[int, float | None]] = {}
        self.back_at: float | None = None
        self.active = self.processed = self.pid = None
        self.loadavg: tuple[float, ...] | None = None
        self.sw_ident = self.sw_ver = self.sw_sys = None
        self.throughput = Throughput()

    def apply(self, kind: str, data: Mapping[str, Any], received_at: float) -> None:
        """Merge a ``online``, ``heartbeat`` or ``offline`` event."""
        self.offline = kind == "offline"
        if self.offline:
            self.offline_at = received_at
        else:
            self.last_heartbeat = received_at
            self.lost = False
        freq = data.get("freq")
        # A worker answers a `heartbeat` control request (sent on connect to
        # wake workers) with freq=5, whatever its real interval; only its
        # regular heartbeats, which also report `active`, say the real one.
        if isinstance(freq, int | float) and freq > 0 and "active" in data:
            self.freq = float(freq)
        for key in ("sw_ident", "sw_ver", "sw_sys"):
            value = data.get(key)
            if isinstance(value, str):
                setattr(self, key, value)
        for key in ("active", "processed", "pid"):
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, key, value)
                if key == "processed":
                    self.throughput.add(received_at, value)
        loadavg = data.get("loadavg")
        if isinstance(loadavg, list | tuple) and all(isinstance(x, int | float) for x in loadavg):
            self.loadavg = tuple(float(x) for x in loadavg)

    def is_online(self, now: float) -> bool:
        if self.offline or self.last_heartbeat is None:
            return False
        return now < self.last_heartbeat + EXPIRE_WINDOW * self.freq

    def last_sign_of_life(self) -> float:
        """When the worker was last known alive: its offline event, or its last heartbeat."""
        if self.offline and self.offline_at is not None:
            return self.offline_at
        if self.last_heartbeat is not None:
            return self.last_heartbeat
        return float("-inf")  # never heard from (cannot happen: apply sets one)

    def gone_since(self, now: float, watched_since: float) -> float | None:
        """When the worker stopped, if it has: its offline event, or heartbeats overdue.

        A worker gone by its offline event may still be finishing jobs (a warm
        shutdown): the store judges those apart (JobStore.sweep).

        ``watched_since`` is when the event stream last (re)connected: heartbeats
        missed while the monitor itself was cut off prove nothing, so a silent
        worker is judged only after a full window of listening.
        """
        if self.offline:
            return self.offline_at
        if self.last_heartbeat is None:
            return None
        window = EXPIRE_WINDOW * self.freq
        deadline = max(self.last_heartbeat, watched_since) + window
        return deadline if now >= deadline else None

    def snapshot(self, now: float) -> WorkerSnapshot:
        return WorkerSnapshot(
            hostname=self.hostname,
            online=self.is_online(now),
            freq=self.freq,
            last_heartbeat=self.last_heartbeat,
            active=self.active,
            processed=self.processed,
            loadavg=self.loadavg,
            sw_ident=self.sw_ident,
            sw_ver=self.sw_ver,
            sw_sys=self.sw_sys,
            pid=self.pid,
            rates=self.throughput.rates(),
            finishing=len(self.draining) if self.offline and self.draining else 0,
        )
