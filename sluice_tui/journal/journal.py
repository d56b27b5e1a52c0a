"""The history journal: what the monitor saw, kept in SQLite across restarts."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sluice_tui.journal.checkpointer import Checkpointer
from sluice_tui.journal.errors import JournalBusy, JournalError, describe
from sluice_tui.journal.lock import WriterLock, writer_pid
from sluice_tui.journal.records import encode_note
from sluice_tui.journal.replay import Replayer, follow_once, restore
from sluice_tui.journal.schema import open_for_reading, open_for_writing
from sluice_tui.journal.writer import BatchWriter, Retention
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


class _NoCheckpoints:
    """What Journal.raw asks before a writer starts: no cut is ever due."""

    wanted = False
    problem = None


class _Discard(list):
    """Where records go once writing stopped: nowhere, at the cost of a call."""

    def append(self, item: Any) -> None:
        pass


class Journal:
    """One journal file, open for writing (one process at a time) or for reading.

    Writing: :meth:`restore`, then :meth:`start_writing` and hand :meth:`raw` to
    the receiver.  Reading (a collector writes): :meth:`restore`, then
    :meth:`follow`.  :meth:`stop` in both cases.  Nothing here raises into the
    monitor once open: a failure while writing stops the journal, says why
    once (a store notice and :attr:`problem`) and the monitor goes on in memory.
    """

    def __init__(
        self,
        path: Path,
        mode: str,
        conn: sqlite3.Connection,
        lock: WriterLock | None,
        retention: Retention,
        writer: int | None,
    ) -> None:
        self.path = path
        self.mode = mode
        self.writer_pid = writer  # the pid holding the writer lock, when mode == "read"
        self.retention = retention
        self._conn: sqlite3.Connection | None = conn
        self._lock = lock
        self._pending: list[tuple[Any, float]] = []
        self._problem: str | None = None
        self._store: JobStore | None = None
        self._writer: BatchWriter | None = None
        self._follower: threading.Thread | None = None
        self._stop_following = threading.Event()
        self._last_batch: int | None = None
        self._dropped_notes = 0
        self._last_write: float | None = None
        self._checkpoints: Checkpointer | _NoCheckpoints = _NoCheckpoints()

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
            return cls(path, "read", conn, None, retention, writer_pid(path))
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
            lock.release()
            raise
        return cls(path, "write", conn, lock, retention, None)

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
        """The receiver's raw sink: one event message as received, before decoding.

        Called by the one receiver thread, which applies a message in full
        before it hands over the next: so a checkpoint's cut is taken here
        (see checkpointer.py).
        """
        checkpoints = self._checkpoints
        if checkpoints.wanted:
            checkpoints.cut()
        self._pending.append((body, received))

    def idle(self) -> None:
        """The receiver's thread between messages (as at ``raw``): a checkpoint's cut may go here.

        Without it a checkpoint begun just before the cluster went quiet would
        stay open until events came again.
        """
        checkpoints = self._checkpoints
        if checkpoints.wanted:
            checkpoints.cut()

    def note(self, kind: str, payload: dict[str, Any]) -> None:
        """The store's hook: a change to jobs that no event carries."""
        try:
            record = encode_note(kind, payload)
        except Exception:  # never into the store's caller; counted for diagnostics
            self._dropped_notes += 1
            return
        self._pending.append((record, time.time()))

    def start_writing(self, store: JobStore) -> None:
        """Start the writer thread; from now on ``store``'s own changes are journaled too."""
        if self.mode != "write":
            raise RuntimeError("a journal opened for reading cannot write")
        if self._writer is not None or self._problem is not None:
            return
        self._store = store
        conn = self._open_conn()
        try:
            next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM checkpoints").fetchone()[0]
        except sqlite3.Error as exc:
            raise JournalError(describe(self.path, exc)) from None
        checkpoints = Checkpointer(store, self._record, next_id)
        writer = BatchWriter(
            conn, self.path, store, self._pending, self.retention, self._failed, checkpoints
        )
        self._checkpoints = checkpoints
        store.journal_hook = self.note
        self._writer = writer
        writer.start()

    def _record(self, item: tuple[Any, float]) -> None:
        self._pending.append(item)  # looked up each time: _failed replaces the list

    def _failed(self, reason: str) -> None:
        """The writer stopped: drop what is pending, stop collecting, say so once."""
        self._problem = reason
        self._pending = _Discard()
        if isinstance(self._checkpoints, Checkpointer):
            self._checkpoints.abandon(reason)
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
            self._pending = _Discard()  # a receiver still running feeds nothing now
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None
        return done

    # -- what diagnostics show -------------------------------------------

    def size_bytes(self) -> int:
        """The file's size, with its write-ahead log."""
        total = 0
        for name in (str(self.path), f"{self.path}-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(name).st_size
        return total

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
        checkpoints = self._checkpoints
        if checkpoints.problem is not None:
            return f"stopped: {checkpoints.problem} (restarts replay every event)"
        if not isinstance(checkpoints, Checkpointer):
            return "none taken by this process"
        return f"{checkpoints.completed:,} completed by this process"

    @property
    def writing(self) -> bool:
        return self._writer is not None and self._problem is None

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"the history journal {self.path} is closed")
        return self._conn
