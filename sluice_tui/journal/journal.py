"""The history journal: what the monitor saw, kept in SQLite across restarts."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from array import array
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sluice_tui.journal import writer
from sluice_tui.journal.errors import JournalBusy, JournalError, describe
from sluice_tui.journal.feed import WriterFeed, tuning
from sluice_tui.journal.frames import encode
from sluice_tui.journal.lock import WriterLock, writer_pid
from sluice_tui.journal.records import encode_note
from sluice_tui.journal.replay import Replayer, follow_once, restore
from sluice_tui.journal.schema import open_for_reading, open_for_writing
from sluice_tui.journal.writer import Retention
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore

FOLLOW_INTERVAL = 0.5
DEFAULT_RETENTION = Retention()


@dataclass(frozen=True)
class Restored:
    jobs: int  # jobs chosen from the journal
    events: int  # events replayed for them (worker events included)
    seconds: float
    last_write: float | None  # epoch seconds of the journal's last commit; None if never
    loaded: int = 0  # of the jobs, those loaded whole from checkpoints (the rest replayed)


class _Discard(list):
    """The inbox once writing stopped: what goes in goes nowhere."""

    def append(self, item: Any) -> None:
        pass


class Journal:
    """One journal file, open for writing (one process at a time) or for reading.

    Writing: :meth:`restore`, then :meth:`start_writing`, and give the journal
    to the receiver as its raw sink (it appends to :attr:`inbox`); a process
    of its own writes the file (see feed.py).
    Reading (a collector writes): :meth:`restore`, then :meth:`follow`.
    :meth:`stop` in both cases.  Nothing here raises into the monitor once
    open: a failure while writing stops the journal, says why once (a store
    notice and :attr:`problem`) and the monitor goes on in memory.
    """

    def __init__(
        self,
        path: Path,
        mode: str,
        conn: sqlite3.Connection,
        lock: WriterLock | None,
        retention: Retention,
        writer: int | None,
        broker: str = "",
    ) -> None:
        self.path = path
        self.broker = broker
        self.mode = mode
        self.writer_pid = writer  # the pid holding the writer lock, when mode == "read"
        self.retention = retention
        self._conn: sqlite3.Connection | None = conn
        self._lock = lock
        # The receiver's raw sink (see celery_adapter.event_feed.RawSink): each
        # message's bytes, then its receive time; the store's notes as pairs.
        self.inbox: list[Any] = []
        self._problem: str | None = None
        self._store: JobStore | None = None
        self._writer: WriterFeed | None = None
        self._follower: threading.Thread | None = None
        self._stop_following = threading.Event()
        self._last_batch: int | None = None
        self._dropped_notes = 0
        self._last_write: float | None = None
        self._taken = 0  # records taken out of the inbox for the writer process

    # -- opening ---------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        mode: Literal["write", "read"],
        broker: str = "",
        retention: Retention = DEFAULT_RETENTION,
    ) -> Journal:
        """Open ``path``; raises JournalError (JournalBusy: another process writes it)."""
        path = Path(path).expanduser()
        if mode == "read":
            conn = open_for_reading(path)
            return cls(path, "read", conn, None, retention, writer_pid(path), broker)
        if mode != "write":
            raise ValueError(f"mode must be 'write' or 'read', not {mode!r}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise JournalError(describe(path, exc)) from None
        lock = WriterLock(path)
        lock.acquire()
        try:
            conn = open_for_writing(path, broker)
        except BaseException:
            lock.release(remove=True)  # no PATH.lock left beside a file that is refused
            raise
        return cls(path, "write", conn, lock, retention, None, broker)

    @classmethod
    def open_for_monitor(
        cls, path: Path, broker: str = "", retention: Retention = DEFAULT_RETENTION
    ) -> Journal:
        """Write if nobody else does; else read what the writer (a collector) writes.

        A journal this user may not write (a collector's, run as a service
        user) is read too, as long as a writer keeps it up to date; with no
        writer, the reason it cannot be written is raised.
        """
        try:
            return cls.open(path, mode="write", broker=broker, retention=retention)
        except JournalBusy:
            return cls.open(path, mode="read", broker=broker, retention=retention)
        except JournalError as cannot_write:
            if writer_pid(Path(path).expanduser()) is None:
                raise
            try:
                return cls.open(path, mode="read", broker=broker, retention=retention)
            except JournalError:
                raise cannot_write from None

    # -- start-up --------------------------------------------------------

    def restore(
        self,
        store: JobStore,
        apply_event: Callable[[dict], None],
        *,
        since: float | None = None,
        states: Collection[JobState] | None = None,
        prefix: str | None = None,
    ) -> Restored:
        """Load the newest jobs (up to ``store.max_jobs``) with their histories into ``store``.

        Call it before the first live event.  ``since`` and ``states`` choose
        jobs by when they last changed and by their last state, ``prefix`` by
        how their ids start (a one-shot command looking for one job).
        """
        started = time.perf_counter()
        conn = self._open_conn()
        try:
            jobs, events, last, loaded = restore(
                conn, store, apply_event, since=since, states=states, prefix=prefix
            )
            row = conn.execute("SELECT value FROM meta WHERE key = 'last_write'").fetchone()
        except sqlite3.Error as exc:
            raise JournalError(describe(self.path, exc)) from None
        self._last_batch = last
        last_write = float(row[0]) if row is not None and row[0] is not None else None
        self._last_write = last_write
        return Restored(jobs, events, time.perf_counter() - started, last_write, loaded)

    # -- writing ---------------------------------------------------------

    def raw(self, body: bytes, received: float) -> None:
        """One event message as received, before decoding, handed over as the receiver
        does it (tests and benchmarks call this; the receiver appends inline)."""
        inbox = self.inbox
        inbox.append(body)
        inbox.append(received)

    def note(self, kind: str, payload: dict[str, Any]) -> None:
        """The store's hook: a change to jobs that no event carries."""
        try:
            record = encode_note(kind, payload)
        except Exception:  # never into the store's caller; counted for diagnostics
            self._dropped_notes += 1
            return
        self.inbox.append((record, time.time()))

    def start_writing(self, store: JobStore) -> None:
        """Start the writer process; from now on ``store``'s own changes are journaled too.

        The process restores the journal as :meth:`restore` did into ``store``
        (same limits), so its replica and ``store`` start equal.
        """
        if self.mode != "write":
            raise RuntimeError("a journal opened for reading cannot write")
        if self._writer is not None or self._problem is not None:
            return
        self._store = store
        retention = self.retention
        config = {
            "path": str(self.path),
            "broker": self.broker,
            "max_jobs": store.max_jobs,
            "history_cap": store.history_cap,
            "retention": {"max_age": retention.max_age, "max_jobs": retention.max_jobs},
            "tuning": tuning(),
            "json_rows": writer.has_json(self._open_conn()),
        }
        assert self._lock is not None
        feed = WriterFeed(
            self._take, config, store, self._failed, (self._lock.fileno,), lambda: self.unsaved
        )
        store.journal_hook = self.note
        self._writer = feed
        try:
            feed.start()
        except OSError as exc:
            self._failed(f"the history writer process could not start: {exc}")

    def _take(self) -> list[bytes | array] | None:
        """What the inbox holds, as a frame's parts; appends made meanwhile stay (slicing
        and del each hold the GIL)."""
        inbox = self.inbox  # looked up each time: _failed replaces it
        count = len(inbox)
        if not count:
            return None
        items = inbox[:count]
        del inbox[:count]
        parts, waiting = encode(items)
        if waiting is not None:  # its time is being appended: it goes with the next frame
            inbox.insert(0, waiting)
        if parts is not None:
            self._taken += len(parts[2])  # the sizes: one a record
        return parts

    def _failed(self, reason: str) -> None:
        """The writer stopped: drop what is pending, stop collecting, say so once."""
        self._problem = reason
        self.inbox = _Discard()
        store = self._store
        if store is not None:
            if store.journal_hook == self.note:
                store.journal_hook = None
            store.add_notice(
                f"history is no longer being saved: {reason}; the monitor goes on in memory"
            )

    # -- following a collector -------------------------------------------

    def follow(self, store: JobStore, apply_event: Callable[[dict], None]) -> None:
        """Replay batches as the writing process commits them (a thread; read mode)."""
        if self._follower is not None:
            return
        self._store = store
        replayer = Replayer(store, apply_event)
        self._follower = threading.Thread(
            target=self._follow, args=(replayer,), name="sluice-journal-follow", daemon=True
        )
        self._follower.start()

    def _follow(self, replayer: Replayer) -> None:
        conn = self._open_conn()
        while not self._stop_following.wait(FOLLOW_INTERVAL):
            try:
                last = self._last_batch
                self._last_batch = follow_once(conn, replayer, last)
                if self._last_batch != last:
                    row = conn.execute("SELECT value FROM meta WHERE key = 'last_write'").fetchone()
                    self._last_write = float(row[0]) if row is not None else self._last_write
            except Exception as exc:
                reason = describe(self.path, exc)
                self._problem = reason
                replayer.store.add_notice(f"stopped following the history journal: {reason}")
                return

    def become_writer(self, store: JobStore, apply_event: Callable[[dict], None]) -> Journal:
        """Following, and the writer went: this journal opened for writing, with what the
        writer committed last replayed into ``store``; this one is stopped.

        Raises JournalError (JournalBusy: another process began writing first);
        then, or on any failure, this one goes on following as before.
        """
        writing = Journal.open(
            self.path, mode="write", broker=self.broker, retention=self.retention
        )
        follower = self._follower
        try:
            # However long its replay takes: a batch applied twice would double jobs' histories.
            self._stop_following.set()
            if follower is not None:
                follower.join()
            conn = self._open_conn()
            replayer = Replayer(store, apply_event)
            while (after := follow_once(conn, replayer, self._last_batch)) != self._last_batch:
                self._last_batch = after
            row = conn.execute("SELECT value FROM meta WHERE key = 'last_write'").fetchone()
        except BaseException as exc:
            writing.stop()
            if follower is not None:  # back to following, from where it got
                self._stop_following.clear()
                self._follower = None
                self.follow(store, apply_event)
            if isinstance(exc, sqlite3.Error):
                raise JournalError(describe(self.path, exc)) from None
            raise
        writing._last_batch = self._last_batch
        writing._last_write = float(row[0]) if row is not None and row[0] is not None else None
        self.stop()
        return writing

    # -- the end ---------------------------------------------------------

    def stop(self, timeout: float = 2.0) -> bool:
        """Write what is pending and close; whether it all ended within ``timeout``."""
        deadline = time.monotonic() + timeout
        done = True
        if self._writer is not None:
            done = self._writer.stop(timeout)
            if self._store is not None and self._store.journal_hook == self.note:
                self._store.journal_hook = None
        if self._follower is not None:
            self._stop_following.set()
            self._follower.join(max(0.0, deadline - time.monotonic()))
            done = done and not self._follower.is_alive()
        if done:
            self.inbox = _Discard()  # a receiver still running feeds nothing now
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            if self._lock is not None:
                # The writer process, which shared the lock, has ended: nobody else holds it.
                self._lock.release(remove=True)
                self._lock = None
        return done

    def finish(self, say: Callable[[str], None], patience: float = 10.0) -> bool:
        """After :meth:`stop` ran out of time: wait while the writer process saves what it
        was handed, saying so; give up (and say what was lost) after ``patience`` seconds
        without progress.  Whether everything was saved."""
        writer = self._writer
        if writer is None or not writer.running:
            return self.unsaved == 0
        say(f"saving the last {self.unsaved:,} messages to the history journal...")
        best, since = self.unsaved, time.monotonic()
        while not self.stop(1.0):
            now = self.unsaved
            if now < best:
                best, since = now, time.monotonic()
            elif time.monotonic() - since > patience:
                say(
                    f"{now:,} messages were not saved to the history journal: "
                    f"its writer process (pid {writer.pid}) stopped taking them"
                )
                return False
        return True

    # -- what diagnostics show -------------------------------------------

    @property
    def unsaved(self) -> int:
        """Messages and notes received that the journal has not committed (yet, or ever)."""
        writer = self._writer
        if writer is None:
            return 0
        return self._taken - writer.saved + len(self.inbox) // 2

    def size_bytes(self) -> int:
        """The file's size, with its write-ahead log."""
        main, wal = self.sizes()
        return (main or 0) + (wal or 0)

    def sizes(self) -> tuple[int | None, int | None]:
        """The main file's size and its write-ahead log's (``-wal``); None: not there."""
        found: list[int | None] = []
        for name in (str(self.path), f"{self.path}-wal"):
            try:
                found.append(os.stat(name).st_size)
            except OSError:
                found.append(None)
        return found[0], found[1]

    @property
    def dropped_notes(self) -> int:
        """The monitor's own changes (resync corrections, actions sent, lost workers)
        that could not be recorded: a restart does not show them."""
        return self._dropped_notes

    @property
    def problem(self) -> str | None:
        """Why writing (or following) stopped, if it did."""
        return self._problem

    @property
    def last_write(self) -> float | None:
        """Epoch seconds of the journal's latest commit that this process knows of."""
        writer = self._writer
        if writer is not None and writer.last_commit is not None:
            return writer.last_commit
        return self._last_write

    @property
    def checkpoints(self) -> str:
        """How checkpoints stand, for diagnostics: how many were completed, or why they stopped."""
        writer = self._writer
        if writer is None:
            return "none taken by this process"
        if writer.checkpoint_problem is not None:
            return f"stopped: {writer.checkpoint_problem} (restarts replay every event)"
        return f"{writer.checkpoints_completed:,} completed by this process"

    @property
    def checkpoints_completed(self) -> int:
        return 0 if self._writer is None else self._writer.checkpoints_completed

    @property
    def writer_process(self) -> int | None:
        """The pid of the process writing the file for this monitor, once started."""
        return None if self._writer is None else self._writer.pid

    @property
    def writing(self) -> bool:
        return self._writer is not None and self._problem is None

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"the history journal {self.path} is closed")
        return self._conn
