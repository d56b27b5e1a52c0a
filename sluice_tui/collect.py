"""``sluice-tui collect``: the receiver, resync and journal with no screen, as a service.

It says little on stderr, one line each: what it restored and where it
writes, connection changes, notices (a lost worker, a journal that stopped),
and every ``log_every`` seconds how much came in.  SIGTERM and Ctrl+C stop it
cleanly (exit 0) after the journal's last batch is written.  A journal that
cannot be opened or is written by another process: exit 2.  A journal that
stops writing while it runs (a full disk): exit 1, so that a service manager
restarts it once the cause is gone.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sluice_tui.celery_adapter.connect import broker_label
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.history import History, HistoryOptions, JournalFeeds, file_size, open_history
from sluice_tui.model.store import JobStore
from sluice_tui.terminal_text import inert

if TYPE_CHECKING:
    from celery import Celery

TICK = 0.2
SETUP_ERROR = 2
JOURNAL_STOPPED = 1


def say(text: str) -> None:
    print(f"sluice-tui collect: {inert(text)}", file=sys.stderr, flush=True)


def run_collect(
    app: Celery,
    *,
    history: HistoryOptions,
    log_every: float = 60.0,
    store_options: Mapping[str, Any] | None = None,
    read_only: bool = False,
    enable_events: bool = True,
    stop: threading.Event | None = None,
) -> int:
    """Collect until SIGTERM, SIGINT or ``stop`` is set; the exit status."""
    from sluice_tui.journal import JournalError

    store = JobStore(**(store_options or {}))
    broker = broker_label(app)
    try:
        journal = open_history(store, broker, history, EventAdapter(store).handle, mode="write")
    except JournalError as exc:
        say(str(exc))
        return SETUP_ERROR
    receiver = ReceiverThread(
        app,
        store,
        enable_events=enable_events,
        read_only=read_only,
        raw_sink=journal.raw_sink,
        start_gap=journal.start_gap,
    )
    feeds = JournalFeeds(journal, store, receiver)
    stop = stop or threading.Event()
    say(_opening(journal, broker))
    with _stopped_by_signals(stop):
        feeds.start()
        try:
            status = _watch(store, journal, stop, log_every)
        finally:
            if not feeds.stop(timeout=5.0):
                feeds.finish(say)
    say(f"stopped; {_progress(store, journal)}")
    return status


def _opening(journal: History, broker: str) -> str:
    restored = journal.restored
    text = (
        f"writing {journal.journal.path} from {broker}; restored {restored.jobs:,} jobs "
        f"({restored.events:,} events replayed) in {restored.seconds:.2f} s"
    )
    if journal.start_gap is not None and restored.last_write is not None:
        ago = time.time() - restored.last_write
        text += (
            f"; last written {_local(restored.last_write)} ({ago:.0f} s ago): "
            "that gap is resynced once connected"
        )
    return text


def _local(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _watch(store: JobStore, journal: History, stop: threading.Event, log_every: float) -> int:
    """Report until told to stop; JOURNAL_STOPPED if the journal stopped writing."""
    status_seen: tuple[str, str | None] | None = None
    notices_seen = 0
    next_log = time.monotonic() + log_every
    events_then = store.event_count
    while not stop.wait(TICK):
        status = store.status
        if (status.state, status.error) != status_seen:
            status_seen = (status.state, status.error)
            detail = f": {status.error}" if status.error else ""
            say(f"{status.state} {status.broker}{detail}")
        problem = journal.journal.problem
        notices_seen, fresh = store.notices_since(notices_seen)
        for text in fresh:
            if problem is None or problem not in text:  # said below, once
                say(text)
        if problem is not None:
            say(
                f"the journal stopped writing: {problem}; exiting with status 1 so that "
                "a service manager can start collect again"
            )
            return JOURNAL_STOPPED
        if log_every and time.monotonic() >= next_log:
            next_log += log_every
            events = store.event_count
            say(f"{events - events_then:,} events in {log_every:g} s; {_progress(store, journal)}")
            events_then = events
    return 0


def _progress(store: JobStore, journal: History) -> str:
    status = journal.status()
    online, known = store.worker_counts()
    written = ""
    if status.last_write is not None:
        written = f", last written {max(0.0, time.time() - status.last_write):.0f} s ago"
    return (
        f"{store.event_count:,} events, {len(store):,} jobs held, "
        f"workers {online}/{known} online, journal {file_size(status.size_bytes)}{written}"
    )


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` while inside (only the main thread can catch them)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        number: signal.signal(number, lambda *_: stop.set())
        for number in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
