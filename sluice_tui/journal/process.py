"""The journal's writer process: batches, job rows and checkpoints, off the monitor's GIL.

Run by :class:`sluice_tui.journal.feed.WriterFeed` as ``python -P -m
sluice_tui.journal.process PATH`` (PATH only for ps to show).  Its standard
input carries one line of JSON
(what to open, and how) and then frames (frames.py) of the records the
monitor received; its standard output carries one line of JSON per thing the
monitor should know: commits, checkpoints, notices, and why it stopped.

It holds a replica of the monitor's store, restored from the journal as the
monitor's was and fed the same records in the same order: the replica is
what a restart would rebuild, and the rows and checkpoints are taken from it,
so the monitor never copies a job or packs a batch.  Records are applied to
the replica one by one, and a checkpoint's cut goes between two of them, so
each mark sits at the exact point of its copy (see checkpointer.py).

When the monitor goes (its end of the pipe closes, even by kill -9), what was
received is written and the process ends; the writer lock, inherited, is let
go only then.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sluice_tui import gc_policy
from sluice_tui.journal import writer
from sluice_tui.journal.checkpointer import Checkpointer
from sluice_tui.journal.errors import JournalError, describe
from sluice_tui.journal.feed import apply_tuning
from sluice_tui.journal.frames import Frame, FrameReader
from sluice_tui.journal.records import NoteBytes, decode, to_microseconds
from sluice_tui.journal.replay import Replayer, restore
from sluice_tui.journal.schema import open_for_writing
from sluice_tui.journal.writer import BatchWriter, Retention
from sluice_tui.model.store import JobStore

READ_SIZE = 1 << 20
DUE_CHECK = 0xFF  # a big frame's records: whether a batch is due, every 256


class Status:
    """One JSON line per message to the monitor (this process has one thread)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out

    def say(self, **message: Any) -> None:
        line = json.dumps(message, ensure_ascii=True, default=repr).encode() + b"\n"
        try:
            self._out.write(line)
            self._out.flush()
        except (OSError, ValueError):
            pass  # the monitor is gone: nobody to tell


class ReplicaWriter:
    """The replica, the records on their way to the journal, and what the monitor was told."""

    def __init__(self, config: dict[str, Any], status: Status) -> None:
        # The event adapter is pure Python (it imports no Celery) and must be
        # the very one the monitor applies events with.
        from sluice_tui.celery_adapter.events import EventAdapter

        self.status = status
        self.path = Path(config["path"])
        self.failed: str | None = None
        self.conn = open_for_writing(self.path, config.get("broker", ""))
        self.replica = JobStore(
            max_jobs=int(config["max_jobs"]), history_cap=int(config["history_cap"])
        )
        apply_event = self.apply_event = EventAdapter(self.replica).handle
        restore(self.conn, self.replica, apply_event)
        next_id = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM checkpoints").fetchone()[
            0
        ]
        self.pending: list[tuple[Any, float]] = []
        self.checkpoints = Checkpointer(
            self.replica,
            self.pending.append,
            next_id,
            notify=lambda text: status.say(notice=text),
        )
        self.writer = BatchWriter(
            self.conn,
            self.replica,
            self.pending,
            Retention(**config["retention"]),
            self.checkpoints,
            report_bad=lambda kind, detail: status.say(bad=[kind, detail]),
            json_rows=bool(config["json_rows"]),
        )
        self.replayer = Replayer(self.replica, apply_event)
        self._told: tuple[int, int, str | None] = (0, 0, None)
        self.appended = 0  # the monitor's records taken in so far

    def take(self, frame: Frame) -> None:
        """Apply a frame's records to the replica, each after any cut due before it,
        committing batches as they fall due."""
        records = frame.records
        times = [to_microseconds(t) for t in frame.times]
        decoded, undecodable = decode(records)
        bad = dict(undecodable)
        pending, checkpoints, replayer = self.pending, self.checkpoints, self.replayer
        writer, apply_event = self.writer, self.apply_event
        for i, record in enumerate(records):
            if checkpoints.wanted:
                checkpoints.cut()
            t = times[i]
            pending.append((record, t))
            self.appended += 1
            message = decoded[i]
            if message.__class__ is dict and record.__class__ is not NoteBytes:
                # One event, the usual record: as Replayer.take, without its detours
                # (a job an event makes is first seen at its receive time anyway).
                message["local_received"] = t
                apply_event(message)
            elif i in bad:
                self.replica.record_bad_event("undecodable message", bad[i])
            else:
                replayer.take(message, t, note=record.__class__ is NoteBytes)
            if (len(pending) >= writer.batch_records) or (
                not i & DUE_CHECK and writer.due(time.monotonic())
            ):
                replayer.finish()  # the rows carry when each job was first seen
                self.tick()
        replayer.finish()
        self.tick()

    def idle(self) -> None:
        """No records came for a while: a checkpoint's cuts go on, batches fall due."""
        if self.checkpoints.wanted:
            self.checkpoints.cut(now=True)
        self.tick()

    def tick(self) -> None:
        self._guarded(lambda: self.writer.tick(time.monotonic()))

    def flush(self) -> None:
        self._guarded(self.writer.write_batch)

    def _guarded(self, step: Callable[[], Any]) -> None:
        if self.failed is not None:
            return
        try:
            step()
        except (sqlite3.Error, OSError, MemoryError) as exc:
            self._fail(describe(self.path, exc))
        except Exception as exc:  # a bug here must not take the monitor down
            self._fail(f"history journal {self.path}: {type(exc).__name__}: {exc}")
        self.report()

    def _fail(self, reason: str) -> None:
        self.failed = reason
        self.status.say(failed=reason)

    def report(self) -> None:
        """Tell the monitor of new commits and checkpoints."""
        writer = self.writer
        now = (writer.batches_written, self.checkpoints.completed, self.checkpoints.problem)
        if now == self._told:
            return
        batches, completed, problem = now
        if batches != self._told[0]:
            # A commit takes every record pending: all taken in so far are saved.
            self.status.say(commit=writer.last_commit, records=self.appended)
        if completed != self._told[1]:
            self.status.say(checkpoints=completed)
        if problem != self._told[2]:
            self.status.say(checkpoint_problem=problem)
        self._told = now


def serve(fd: int, status: Status) -> int:
    """Read the config and the frames from ``fd`` until it ends; the exit code."""
    config, data = _first_line(fd)
    apply_tuning(config.get("tuning", {}))
    path = Path(config["path"])
    try:
        replica = ReplicaWriter(config, status)
    except (JournalError, sqlite3.Error, OSError, MemoryError) as exc:
        status.say(failed=describe(path, exc))
        return 1
    reader = FrameReader()
    try:
        _serve(fd, data, replica, reader)
    finally:
        replica.flush()  # whatever ended the reading: what was taken in is saved
    if reader.partial:
        status.say(notice="the monitor stopped in the middle of a frame: its records are lost")
    return 0 if replica.failed is None else 1


def _serve(fd: int, data: bytes, replica: ReplicaWriter, reader: FrameReader) -> None:
    while replica.failed is None:
        for frame in reader.feed(data):
            replica.take(frame)
        # While a checkpoint is under way, a quiet spell is for its cuts.
        wait = 0.0 if replica.checkpoints.wanted else writer.POLL_INTERVAL
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            replica.idle()
            data = b""
            continue
        data = os.read(fd, READ_SIZE)
        if not data:
            return  # the monitor closed its end, or died


def _first_line(fd: int) -> tuple[dict[str, Any], bytes]:
    """The config line, and what came after it in the same reads."""
    data = b""
    while b"\n" not in data:
        more = os.read(fd, READ_SIZE)
        if not more:
            raise SystemExit("no configuration on standard input")
        data += more
    line, _, rest = data.partition(b"\n")
    return json.loads(line), rest


def main() -> int:
    # Standard output is the monitor's status channel (stderr goes there too:
    # what is not a JSON line is kept by the monitor to say why this ended).
    status = Status(sys.stdout.buffer)
    # The monitor's signals are not this process's: it ends when the pipe does,
    # after the last batch, whatever stopped the monitor (see feed.py).
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    gc_policy.install()  # its replica holds as many jobs as the monitor's store
    try:
        return serve(sys.stdin.fileno(), status)
    except Exception as exc:
        status.say(failed=f"the history writer process failed: {type(exc).__name__}: {exc}")
        raise


if __name__ == "__main__":
    sys.exit(main())
