"""Open the TUI on a Celery app, and report a crash: shared by every command.

A crash never prints a traceback on the terminal (the TUI may have just left
it, and a traceback with locals can hold a broker password): the traceback
goes to a file, stderr gets one line naming it, and the exit status is not 0.
Textual and the app's modules are imported only when the TUI opens, so a
crash while importing them is reported the same way.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from sluice_tui.history import HistoryOptions
    from sluice_tui.ui.app import SluiceApp

CRASHED = 1
# scheme://user:password@ -> scheme://user:**@, the way kombu masks URLs.
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^\s:/@]*:)[^\s@/]+@")


def mask_passwords(text: str) -> str:
    """Every URL's password in ``text`` replaced by ``**``."""
    return _URL_PASSWORD.sub(r"\1**@", text)


class Sources:
    """Several feeds of the store started and stopped as one (the receiver, the queue poller)."""

    def __init__(self, *sources) -> None:
        self.sources = sources

    def start(self) -> None:
        for source in self.sources:
            source.start()

    def stop(self, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        stopped = True
        for source in self.sources:
            stopped = source.stop(max(0.1, deadline - time.monotonic())) and stopped
        return stopped


def build_app(
    celery_app: Celery,
    *,
    store_options: Mapping[str, Any] | None = None,
    read_only: bool = False,
    enable_events: bool = True,
    queues: Iterable[str] = (),
    queue_interval: float = 2.0,
    history: HistoryOptions | None = None,
) -> SluiceApp:
    """The TUI over a new store, fed by the event receiver and the queue poller.

    The poller only reads queue depths, so it runs in ``--read-only`` too.
    ``queues`` are extra queue names to watch (``--queue``).  With ``history``
    the store starts from the journal (see :mod:`sluice_tui.history`): written
    as events come, or followed when a collector writes it, in which case the
    collector listens and this monitor does not.  ``--read-only`` keeps the
    journal: writing a local file does not touch the cluster.
    """
    from sluice_tui.actions import ActionsGate
    from sluice_tui.celery_adapter.connect import broker_label
    from sluice_tui.celery_adapter.control import CeleryControl
    from sluice_tui.celery_adapter.queues import QueuePoller
    from sluice_tui.celery_adapter.receiver import ReceiverThread
    from sluice_tui.history import History, JournalFeeds, monitor_history
    from sluice_tui.model.store import JobStore
    from sluice_tui.ui.actions import UIActions
    from sluice_tui.ui.app import SluiceApp

    store = JobStore(**(store_options or {}))
    journal = None if history is None else monitor_history(store, broker_label(celery_app), history)
    poller = QueuePoller(celery_app, store, interval=queue_interval, extra_queues=queues)

    def receiver(history: History | None, gap: int | None) -> ReceiverThread:
        return ReceiverThread(
            celery_app,
            store,
            enable_events=enable_events,
            read_only=read_only,
            raw_sink=None if history is None else history.raw_sink,
            start_gap=gap,
        )

    if not isinstance(journal, History):
        source = Sources(receiver(None, None), poller)
    elif journal.writing:
        source = JournalFeeds(journal, store, receiver(journal, journal.start_gap), poller)
    else:
        # The writer listens, not this monitor; once the writer goes, this one does.
        following = journal
        source = JournalFeeds(journal, store, poller, listen=lambda gap: receiver(following, gap))
    gate = ActionsGate(store, CeleryControl(celery_app), read_only=read_only)
    return SluiceApp(
        store, source=source, actions=UIActions(gate), read_only=read_only, history=journal
    )


def open_tui(celery_app: Celery, **options) -> int:
    """Run the TUI until it quits; the exit status (not 0 after a crash, reported)."""
    return run_app(build_app(celery_app, **options))


def run_app(app: SluiceApp) -> int:
    from rich.console import Console

    from sluice_tui import gc_policy

    gc_policy.install()  # keys answer while the store holds 100 000s of jobs

    # Textual prints a crash's traceback (with locals) on its error console
    # once the terminal is back; keep it, and show it only if it was no crash.
    held = io.StringIO()
    app.error_console = Console(file=held, markup=False, highlight=False, width=100)
    app.run()
    finish = getattr(app.source, "finish", None)  # a journal's writer still saving
    if finish is not None:
        finish(_say)
    status = app.return_code or 0
    # Textual keeps the first unhandled exception for its test harness.
    error = getattr(app, "_exception", None)
    if error is not None:
        report_crash(error)
        return status or CRASHED
    if held.getvalue():
        sys.stderr.write(mask_passwords(held.getvalue()))
    return status


def _say(text: str) -> None:
    """A line on stderr, if there is still a terminal (a closed window's SIGHUP)."""
    with contextlib.suppress(OSError, ValueError):
        print(f"sluice-tui: {text}", file=sys.stderr, flush=True)


def report_crash(error: BaseException) -> int:
    """Write ``error``'s traceback to a file, name it on stderr; the exit status."""
    text = mask_passwords("".join(traceback.format_exception(error)))
    where = _write_crash_file(f"sluice-tui crashed at {time.ctime()}\n\n{text}")
    summary = mask_passwords(f"{type(error).__name__}: {error}".splitlines()[0])[:200]
    if where is None:  # nowhere to write: the terminal is the last resort
        sys.stderr.write(text)
        print(f"sluice-tui: crashed ({summary}); no file could be written", file=sys.stderr)
    else:
        print(f"sluice-tui: crashed ({summary}); the traceback is in {where}", file=sys.stderr)
    return CRASHED


def _write_crash_file(text: str) -> Path | None:
    name = time.strftime("crash-%Y%m%d-%H%M%S")
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    try:
        folder = Path(state) / "sluice-tui"
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(100):  # two crashes in one second keep both files
            path = folder / (f"{name}.txt" if n == 0 else f"{name}-{n}.txt")
            try:
                with path.open("x", encoding="utf-8") as out:
                    out.write(text)
                return path
            except FileExistsError:
                continue
    except OSError:
        pass
    try:  # a read-only or missing home: the temporary folder instead
        handle, name = tempfile.mkstemp(prefix="sluice-tui-crash-", suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        return Path(name)
    except OSError:
        return None
