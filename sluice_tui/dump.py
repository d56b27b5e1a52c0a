"""``sluice-tui dump``: listen for N seconds (or read a journal), print every job as JSON."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.export import job_to_dict
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.terminal_text import inert

if TYPE_CHECKING:
    from celery import Celery

TICK = 0.1
SETUP_ERROR = 2  # as the command line's: a journal that cannot be read


def dump_app(
    app: Celery,
    *,
    seconds: float,
    until_idle: float | None = None,
    states: set[JobState] | None = None,
    store_options: Mapping[str, Any] | None = None,
    verbose: bool = False,
    enable_events: bool = True,
    read_only: bool = False,
) -> int:
    """Listen to ``app``'s events, then print the jobs as JSON; return the exit status."""
    store = JobStore(**(store_options or {}))
    receiver = ReceiverThread(app, store, enable_events=enable_events, read_only=read_only)
    reporter = ProgressReporter(store, verbose=verbose)
    ever_connected = False
    last_error = None
    idle = IdleWatch(store, until_idle)
    receiver.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not idle.done():
            time.sleep(min(TICK, max(0.0, deadline - time.monotonic())))
            status = store.status
            ever_connected |= status.state == "connected"
            last_error = status.error or last_error
            reporter.report()
    except KeyboardInterrupt:
        pass  # stop listening early; what was seen is still printed
    finally:
        receiver.stop()
    if not ever_connected:
        return unreachable(receiver.broker, seconds, last_error)
    print_jobs(store, states)
    return 0


def dump_history(
    path: Path,
    *,
    seconds: float = 0.0,
    until_idle: float | None = None,
    since: float | None = None,
    states: set[JobState] | None = None,
    store_options: Mapping[str, Any] | None = None,
) -> int:
    """Print the jobs a journal holds, as a live dump would; the exit status.

    Nothing listens to the broker.  ``since`` (seconds) keeps only jobs seen
    that recently; with ``seconds`` the journal is followed that long first,
    taking in what a collector adds meanwhile.
    """
    from sluice_tui.celery_adapter.events import EventAdapter
    from sluice_tui.journal import Journal, JournalError

    store = JobStore(**(store_options or {}))
    apply_event = EventAdapter(store).handle
    try:
        journal = Journal.open(Path(path), mode="read")
        try:
            journal.restore(
                store,
                apply_event,
                since=None if since is None else time.time() - since,
                states=states,
            )
            if seconds:
                journal.follow(store, apply_event)
                _wait(seconds, IdleWatch(store, until_idle))
        finally:
            journal.stop()
    except JournalError as exc:
        print(f"sluice-tui: {inert(exc)}", file=sys.stderr)
        return SETUP_ERROR
    print_jobs(store, states)
    return 0


def _wait(seconds: float, idle: IdleWatch) -> None:
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not idle.done():
            time.sleep(min(TICK, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass  # stop early; what was read is still printed


WRITE_SIZE = 1 << 16


def print_jobs(store: JobStore, states: set[JobState] | None) -> None:
    """The jobs as one JSON array on stdout; a count of skipped events on stderr."""
    jobs = [job_to_dict(job) for job in store.snapshots(states)]
    # In pieces of about 64 KB: json.dump writes each token, a system call
    # each when stdout is unbuffered (PYTHONUNBUFFERED, common in containers).
    pieces: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(indent=2).iterencode(jobs):
        pieces.append(chunk)
        size += len(chunk)
        if size >= WRITE_SIZE:
            sys.stdout.write("".join(pieces))
            pieces, size = [], 0
    pieces.append("\n")
    sys.stdout.write("".join(pieces))
    stats = store.stats()
    if stats.bad_events:
        print(f"sluice-tui: skipped {stats.bad_events} malformed event(s)", file=sys.stderr)


def unreachable(broker: str, seconds: float, error: str | None) -> int:
    """Say that the broker never answered within the window; the exit status for it."""
    print(
        f"sluice-tui: could not connect to the broker {inert(broker)} "
        f"within {seconds:g} s: {inert(error or 'no answer')}",
        file=sys.stderr,
    )
    return 1


class IdleWatch:
    """--until-idle: done once jobs were seen, all are finished, and events stopped."""

    def __init__(self, store: JobStore, quiet_seconds: float | None) -> None:
        self.store = store
        self.quiet_seconds = quiet_seconds
        self._version = 0
        self._quiet_since = time.monotonic()

    def done(self) -> bool:
        if self.quiet_seconds is None:
            return False
        version = self.store.version
        now = time.monotonic()
        if version != self._version:
            self._version = version
            self._quiet_since = now
            return False
        if not version or now - self._quiet_since < self.quiet_seconds:
            return False
        counts = self.store.counts()
        return not any(n for state, n in counts.items() if not state.finished)


class ProgressReporter:
    """With --verbose, tell stderr when the connection or the set of workers changes."""

    def __init__(self, store: JobStore, *, verbose: bool) -> None:
        self.store = store
        self.verbose = verbose
        self._status: tuple[str, str | None] | None = None
        self._workers: set[str] = set()

    def report(self) -> None:
        if not self.verbose:
            return
        status = self.store.status
        if (status.state, status.error) != self._status:
            self._status = (status.state, status.error)
            detail = f": {inert(status.error)}" if status.error else ""
            print(f"sluice-tui: {status.state} {inert(status.broker)}{detail}", file=sys.stderr)
        for worker in self.store.workers():
            if worker.hostname not in self._workers:
                self._workers.add(worker.hostname)
                print(f"sluice-tui: worker seen {inert(worker.hostname)}", file=sys.stderr)
