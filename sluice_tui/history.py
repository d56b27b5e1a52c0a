"""The journal wired into the monitor: open it, restore from it, then write or follow it.

:mod:`sluice_tui.journal` keeps history on disk; this module decides what the
TUI and ``collect`` do with it.  A journal no other process writes is written
here: its jobs are restored into the store before the first event, the time
since its last write becomes a gap that the first resync settles, and every
event message received goes into it.  A journal a collector writes is read
instead: restored, then followed as the collector adds to it.

The receiver is made by the caller (launch, collect); only the event adapter,
which imports no Celery, is taken here.  A journal that cannot be opened
never stops the monitor: it runs in memory and says why, once.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sluice_tui.model.store import JobStore

if TYPE_CHECKING:
    from sluice_tui.celery_adapter.event_feed import RawSink
    from sluice_tui.journal import Journal, Restored, Retention

DAY = 86400.0
DEFAULT_MAX_AGE = 7 * DAY
DEFAULT_MAX_JOURNAL_JOBS = 1_000_000
# The gap a restart leaves: the time the journal holds nothing of (sluice-tui
# was not running, or ran without saving: --no-history, a full disk).
NO_HISTORY = "no history kept"
# The connection state shown while following a journal that nobody writes any more.
WRITER_GONE = "writer stopped"


@dataclass(frozen=True)
class HistoryOptions:
    """What the command line said about the journal."""

    enabled: bool = True
    path: Path | None = None  # None: the default file for the broker (journal.default_path)
    max_age: float = DEFAULT_MAX_AGE
    max_jobs: int = DEFAULT_MAX_JOURNAL_JOBS

    def retention(self) -> Retention:
        from sluice_tui.journal import Retention

        return Retention(max_age=self.max_age, max_jobs=self.max_jobs)

    def resolve_path(self, broker: str) -> Path:
        if self.path is not None:
            return self.path
        from sluice_tui.journal import default_path

        return default_path(broker)


@dataclass(frozen=True)
class HistoryStatus:
    """What diagnostics and the header show about the journal."""

    path: str
    # "writing (writer process pid N)", "stopped writing ...", "following collector
    # pid N", "following sluice-tui pid N", "following the writer process that pid N
    # left ...", "following the journal" or "off"
    mode: str
    size_bytes: int | None = None  # the file and its write-ahead log together
    wal_bytes: int | None = None  # of size_bytes, the write-ahead log's (the -wal file)
    last_write: float | None = None  # epoch of the journal's latest commit, when known
    problem: str | None = None  # why it is off, or why writing stopped
    restored_jobs: int = 0
    restored_events: int = 0
    restore_seconds: float = 0.0
    keeps: str = ""  # the retention, as said to the user
    checkpoints: str = ""  # how the journal's checkpoints stand (writing only)
    unsaved: int = 0  # messages received and not yet committed (writing only)
    dropped_notes: int = 0  # the monitor's own changes that could not be journaled


class HistoryView(Protocol):
    """What the UI reads: a status, nothing it could change."""

    def status(self) -> HistoryStatus: ...


@dataclass
class History:
    """An open journal, what was restored from it, and the gap the restart left."""

    journal: Journal
    restored: Restored
    broker: str  # masked, as the header shows it
    apply_event: Callable[[dict], None]  # the event adapter restore used; follow uses it too
    start_gap: int | None = None  # for the receiver's first resync (write mode)
    writer: int | None = None  # read mode: the pid writing the journal, as last looked at

    @property
    def writing(self) -> bool:
        return self.journal.mode == "write"

    @property
    def raw_sink(self) -> RawSink | None:
        """The receiver's raw sink: every event message goes into the journal."""
        return self.journal if self.writing else None

    @property
    def following(self) -> str:
        """How the header names a journal read from a collector."""
        if self.writer is None:
            return "following the journal (no collector writes it now)"
        return self.following_pid(self.writer)

    def _writing(self) -> str:
        if self.journal.problem is not None:
            return "stopped writing (see problem): jobs are kept in memory only"
        pid = self.journal.writer_process
        return "writing" if pid is None else f"writing (writer process pid {pid})"

    @staticmethod
    def following_pid(pid: int | None) -> str:
        if not pid or pid <= 0:
            return "following the journal"
        kind = writer_kind(pid)
        if kind is None:  # kill -9'd: its writer process still saves what it was handed
            return f"following the writer process that pid {pid} left (pid {pid} has exited)"
        return f"following {kind} pid {pid}"

    def status(self) -> HistoryStatus:
        journal = self.journal
        size, wal = journal.sizes()
        return HistoryStatus(
            path=str(journal.path),
            mode=self._writing() if self.writing else self.following,
            size_bytes=None if size is None else size + (wal or 0),
            wal_bytes=wal,
            last_write=journal.last_write,
            problem=journal.problem,
            restored_jobs=self.restored.jobs,
            restored_events=self.restored.events,
            restore_seconds=self.restored.seconds,
            keeps=keeps(journal.retention.max_age, journal.retention.max_jobs),
            checkpoints=journal.checkpoints if self.writing else "",
            unsaved=journal.unsaved if self.writing else 0,
            dropped_notes=journal.dropped_notes,
        )


@dataclass(frozen=True)
class NoHistory:
    """The journal is off (``--no-history``) or could not be opened (``problem``)."""

    path: str = ""
    problem: str | None = None

    def status(self) -> HistoryStatus:
        return HistoryStatus(path=self.path, mode="off", problem=self.problem)


def open_history(
    store: JobStore,
    broker: str,
    options: HistoryOptions,
    apply_event: Callable[[dict], None],
    *,
    mode: str = "monitor",
) -> History:
    """Open the journal and restore it into ``store``; raises JournalError.

    ``mode`` is "monitor" (write when no one else does, else read and follow),
    "write" (``collect``: a second writer is an error) or "read".
    ``apply_event`` is the Celery event adapter the restored events go through.
    In write mode the time since the journal's last write is recorded as a
    gap (``History.start_gap``) for the receiver's first resync to settle.
    """
    from sluice_tui.journal import Journal, JournalError

    path = options.resolve_path(broker)
    retention = options.retention()
    try:
        if mode == "monitor":
            journal = Journal.open_for_monitor(path, broker, retention)
        else:
            journal = Journal.open(path, mode=mode, broker=broker, retention=retention)
    except OSError as exc:  # the state directory itself could not be made
        raise JournalError(f"cannot open the journal {path}: {exc.strerror or exc}") from None
    try:
        restored = journal.restore(store, apply_event)
    except BaseException:
        journal.stop()
        raise
    history = History(journal, restored, broker, apply_event, writer=journal.writer_pid)
    if history.writing and restored.last_write is not None:
        now = time.time()
        if now > restored.last_write:
            history.start_gap = store.record_gap(restored.last_write, now, NO_HISTORY)
    return history


def monitor_history(store: JobStore, broker: str, options: HistoryOptions) -> History | NoHistory:
    """The TUI's journal: opened and restored, or why there is none (said once, as a notice)."""
    if not options.enabled:
        return NoHistory()
    from sluice_tui.celery_adapter.events import EventAdapter
    from sluice_tui.journal import JournalError

    path = options.resolve_path(broker)
    _say_when_loading_takes_a_while(path)
    try:
        return open_history(store, broker, options, EventAdapter(store).handle)
    except JournalError as exc:
        store.add_notice(f"History is off, the monitor keeps jobs in memory only: {exc}")
        return NoHistory(path=str(path), problem=str(exc))


# Restoring replays the journal at about 50k events a second: a big one takes
# seconds before the screen opens, so say what is happening meanwhile.
SLOW_RESTORE_BYTES = 2_000_000


def _say_when_loading_takes_a_while(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError:
        return
    if size >= SLOW_RESTORE_BYTES:
        print(
            f"sluice-tui: loading history from {path} ({file_size(size)})...",
            file=sys.stderr,
            flush=True,
        )


class Source(Protocol):
    def start(self) -> None: ...

    def stop(self, timeout: float = 2.0) -> bool: ...


class JournalFeeds:
    """The monitor's sources around a journal: it starts first and stops last.

    Writing, the journal must take the hook on the store before any event
    changes a job, and flush after the receiver's last one.  Following, the
    journal is the job feed: the receiver is not started at all (the
    collector listens), and the header says whose journal is followed.  When
    the writer goes, ``listen(gap)`` (if given) makes a receiver, and this
    monitor writes the journal and listens itself (see :meth:`take_over`).
    """

    def __init__(
        self,
        history: History,
        store: JobStore,
        *sources: Source,
        listen: Callable[[int | None], Source] | None = None,
    ) -> None:
        self.history = history
        self.store = store
        self.sources = sources
        self.listen = listen
        self._watch: WriterWatch | None = None
        # A take-over (on the watch's thread) and stopping (the app's) run one at a time.
        self._switching = threading.Lock()
        self._stopping = False

    def start(self) -> None:
        journal = self.history.journal
        if self.history.writing:
            journal.start_writing(self.store)
        else:
            # With no collector writing, nothing new comes: workers are not judged on silence.
            self.store.set_status(
                self.history.following,
                self.history.broker,
                hearing=self.history.writer is not None,
                deaf_since=journal.last_write,
            )
            journal.follow(self.store, self.history.apply_event)
            self._watch = WriterWatch(self.history, self.store, self.take_over)
            self._watch.start()
        for source in self.sources:
            source.start()

    def take_over(self) -> bool:
        """Following, and the writer went: write the journal and listen here instead.

        Whether it did: not if the journal cannot be written here (a collector's,
        run as another user) or another process began writing it first.
        """
        with self._switching:
            if self.listen is None or self._stopping:
                return False
            return self._take_over()

    def _take_over(self) -> bool:
        from sluice_tui.journal import JournalError

        assert self.listen is not None
        before = self.history.writer
        try:
            journal = self.history.journal.become_writer(self.store, self.history.apply_event)
        except (JournalError, OSError):
            return False  # another writer came first, or this user may not write it
        except Exception as exc:  # following goes on; the reason is not lost
            self.store.add_notice(f"could not take over the journal: {type(exc).__name__}: {exc}")
            return False
        now = time.time()
        since = journal.last_write
        gap = (
            None if since is None or since >= now else self.store.record_gap(since, now, NO_HISTORY)
        )
        self.history.journal, self.history.writer = journal, None
        journal.start_writing(self.store)
        try:
            receiver = self.listen(gap)
            self.sources = (*self.sources, receiver)
            receiver.start()
        except Exception as exc:  # on the watch's thread: said, never a traceback on screen
            self.store.add_notice(
                f"this monitor writes {journal.path} now but could not listen to the broker: "
                f"{type(exc).__name__}: {exc}"
            )
            return True
        self.store.add_notice(
            f"The process writing {journal.path} (pid {before}) stopped: this monitor now "
            "listens to the broker and writes the journal itself."
        )
        return True

    def finish(self, say: Callable[[str], None]) -> None:
        """Once the screen is gone: what :meth:`stop` could not save in time (journal.finish)."""
        if self.history.writing:
            self.history.journal.finish(say)

    def stop(self, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        stopped = True
        with self._switching:  # a take-over under way ends first, and none starts now
            self._stopping = True
        if self._watch is not None:
            self._watch.stop()
        for source in self.sources:
            stopped = source.stop(max(0.1, deadline - time.monotonic())) and stopped
        return self.history.journal.stop(max(0.5, deadline - time.monotonic())) and stopped


class WriterWatch:
    """Following: when the writer goes, this monitor takes over (JournalFeeds.take_over);
    if it cannot, the header says so, and names the next writer that starts.

    The follower keeps reading either way (a new writer's batches come in as
    the old one's did); the header must not name a writer that is gone.
    """

    def __init__(
        self,
        history: History,
        store: JobStore,
        take_over: Callable[[], bool],
        interval: float = 2.0,
    ) -> None:
        self.history = history
        self.store = store
        self.take_over = take_over  # when the writer goes; whether this monitor now writes
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-writer-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(1.0)

    def _run(self) -> None:
        from sluice_tui.journal.lock import writer_pid

        path = self.history.journal.path
        while not self._stopping.wait(self.interval):
            pid = writer_pid(path)
            if pid == self.history.writer:
                if pid is not None and self.store.status.state != (
                    label := self.history.following_pid(pid)
                ):  # the same lock, but its monitor was killed: its writer process finishes
                    self.store.set_status(label, self.history.broker)
                continue
            if pid is None and self.take_over():
                return  # this monitor writes now: nobody to watch
            before, self.history.writer = self.history.writer, pid
            if pid is None:
                self.store.set_status(
                    WRITER_GONE,
                    self.history.broker,
                    "no process writes the journal now; restart sluice-tui to listen itself",
                    hearing=False,  # a worker is not offline because nobody listens to it
                    deaf_since=time.time() - self.interval,  # it stopped since the last look
                )
                self.store.add_notice(
                    f"The process writing {path} (pid {before}) stopped: this monitor shows "
                    "no new events until a collector or another sluice-tui writes it again, "
                    "or until it is restarted (then it listens and writes the journal itself)."
                )
            else:
                self.store.set_status(self.history.following_pid(pid), self.history.broker)


def writer_kind(pid: int) -> str | None:
    """What writes a journal: a "collector", a "sluice-tui" with a screen, or None when
    ``pid`` has exited (the lock is then held by the writer process it left)."""
    from sluice_tui.journal.lock import alive

    if not alive(pid):
        return None  # no cmdline to read: it was one or the other, nobody can tell now
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            args = cmdline.read().split(b"\0")
    except OSError:
        return "collector"  # no /proc to tell (or another user's): the usual case
    return "collector" if b"collect" in args else "sluice-tui"


def keeps(max_age: float, max_jobs: int) -> str:
    """The retention in words: jobs seen in the last 7 days, at most 1,000,000."""
    days = max_age / DAY
    age = f"{days:g} days" if days >= 1 else f"{max_age / 3600:g} hours"
    return f"jobs seen in the last {age}, at most {max_jobs:,}"


def file_size(size: int | None) -> str:
    """A file's size as people read it: 812 KB, 4.2 MB."""
    if size is None:
        return "unknown"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
