"""The monitor's end of the journal's writer process: start it, feed it, hear from it.

The receiver only appends each message and its receive time to the
journal's inbox (the store's notes go there as pairs).  A thread takes what
is there every FEED_INTERVAL, packs it as one frame (frames.py) and writes it
into the process's pipe; it lets go of the GIL while the pipe is full, so a
slow disk costs the receiver nothing but memory (diagnostics show how much is
not yet saved).  A second thread
reads what the process says (process.py): its commits and checkpoints for
diagnostics, notices and bad events for the store, and why it stopped.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sluice_tui
from sluice_tui.journal import checkpointer, schema, writer
from sluice_tui.model.store import JobStore

FEED_INTERVAL = 0.05
PIPE_SIZE = 1 << 20  # fewer wake-ups in a flood; Linux's limit for a user by default
_F_SETPIPE_SZ = 1031  # fcntl's name for it arrived in Python 3.10, on Linux only
LOG_LINES = 5  # what the process printed that was not a message, kept to say why it ended
# Messages received and not yet committed past which the feed stops.  The
# writer process saves some 50 000 a second, so only a flood faster than that
# for seconds on end, or a hung disk, gets here; the monitor holds each message
# (about 400 bytes) until it is handed over, and would grow without bound.  It
# goes on in memory; a restart journals again, the time between resynced as a gap.
MAX_UNSAVED = 500_000

# Module settings the monitor passes on to the writer process, so that a test
# or benchmark changing them in the monitor changes them there too.
TUNING = {
    schema: ("MAX_PAGE_COUNT",),
    writer: ("BATCH_INTERVAL", "BATCH_RECORDS", "POLL_INTERVAL", "PRUNE_INTERVAL"),
    checkpointer: (
        "CHECKPOINT_RECORDS",
        "CHECKPOINT_INTERVAL",
        "CHUNK_JOBS",
        "CUT_SPACING",
        "MAX_CHAIN",
        "CHAIN_COPIES",
    ),
}


def tuning() -> dict[str, dict[str, Any]]:
    """The settings as they stand in this process, to pass on."""
    return {
        module.__name__: {name: getattr(module, name) for name in names}
        for module, names in TUNING.items()
    }


def apply_tuning(settings: dict[str, dict[str, Any]]) -> None:
    """In the writer process: the settings the monitor passed on."""
    for module, names in TUNING.items():
        given = settings.get(module.__name__, {})
        for name in names:
            if name in given:
                setattr(module, name, given[name])


class WriterFeed:
    """The writer process seen from the monitor: started, fed, heard, stopped."""

    def __init__(
        self,
        take: Callable[[], list[bytes | array] | None],
        config: dict[str, Any],
        store: JobStore,
        on_failure: Callable[[str], None],
        keep_fds: tuple[int, ...] = (),
        unsaved: Callable[[], int] = lambda: 0,
    ) -> None:
        self.take = take  # the pending records as the next frame's parts (frames.encode)
        self.unsaved = unsaved  # records received and not yet committed
        self.config = config
        self.store = store
        self.on_failure = on_failure
        self.keep_fds = keep_fds
        self.last_commit: float | None = None  # epoch seconds
        self.saved = 0  # records the process has committed
        self.checkpoints_completed = 0
        self.checkpoint_problem: str | None = None
        self.failed = False
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self._feeder = threading.Thread(target=self._feed, name="sluice-journal-feed", daemon=True)
        self._listener = threading.Thread(
            target=self._listen, name="sluice-journal-status", daemon=True
        )

    def start(self) -> None:
        """Start the process; raises OSError if it cannot be (then none is left running)."""
        process = self._process = subprocess.Popen(
            # -P: not the current directory's modules, whatever the user runs from.
            # The file is named too, for ps: the config line says what to open.
            [sys.executable, "-P", "-m", "sluice_tui.journal.process", str(self.config["path"])],
            env=_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=self.keep_fds,  # the writer lock: held until the process ends
            # Out of the terminal's process group: a Ctrl-C or a service
            # manager's SIGTERM meant for the monitor must not cut the
            # journal's last batch short; the process ends when the pipe does.
            start_new_session=True,
        )
        try:
            with contextlib.suppress(OSError):
                fcntl.fcntl(process.stdin.fileno(), _F_SETPIPE_SZ, PIPE_SIZE)
            process.stdin.write(json.dumps(self.config).encode() + b"\n")
            process.stdin.flush()
        except OSError:  # it died at once: reaped here, as no thread will
            with contextlib.suppress(OSError):
                process.stdin.close()
            process.kill()
            process.wait()
            self._process = None
            raise
        self._feeder.start()
        self._listener.start()

    def stop(self, timeout: float) -> bool:
        """Hand over what is pending and let the process finish; whether it ended in time."""
        self._stopping.set()
        process = self._process
        if process is None:
            return True
        deadline = time.monotonic() + timeout
        self._feeder.join(timeout)
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False  # it goes on writing, and ends once the pipe is drained
        self._listener.join(1.0)
        return not self._feeder.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- the feeding thread ------------------------------------------------------

    def _feed(self) -> None:
        process = self._process
        assert process is not None and process.stdin is not None
        fd = process.stdin.fileno()
        os.set_blocking(fd, False)  # a full pipe is waited on here, the backlog in sight
        try:
            while not self.failed:
                stopping = self._stopping.wait(FEED_INTERVAL)
                if self._too_far_behind():
                    break
                parts = self.take()
                if parts is not None:
                    self._write_all(fd, parts)
                if stopping:
                    break
        except OSError:
            pass  # the process is gone: the listener says why
        except Exception as exc:  # what was taken is lost: say so, not a silent "writing"
            self.fail(f"the history journal's feed stopped: {type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the process writes what it has, then ends

    def _write_all(self, fd: int, parts: list[bytes | array]) -> None:
        """Write a frame into the pipe, waiting while it is full, unless the backlog
        grows too big meanwhile (then the rest is dropped with the feed)."""
        total = sum(memoryview(part).nbytes for part in parts)
        try:
            written = os.writev(fd, parts)
        except BlockingIOError:
            written = 0
        if written == total:
            return
        rest = memoryview(b"".join(memoryview(part).cast("B") for part in parts))[written:]
        while rest:
            try:
                rest = rest[os.write(fd, rest) :]
            except BlockingIOError:
                select.select([], [fd], [], FEED_INTERVAL)  # lets go of the GIL
                if self._too_far_behind():
                    return

    def _too_far_behind(self) -> bool:
        behind = self.unsaved()
        if behind > MAX_UNSAVED:
            self.fail(
                f"its writer process fell {behind:,} messages behind the events coming in "
                f"(at most {MAX_UNSAVED:,} wait for it, to bound the monitor's memory)"
            )
        return self.failed

    # -- the listening thread ----------------------------------------------------

    def _listen(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        for line in process.stdout:
            message = None
            if line.startswith(b"{"):
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
            if isinstance(message, dict):
                self._heard(message)
            elif line.strip():
                self._log.append(line.decode("utf-8", "replace").strip())
        code = process.wait()
        if code != 0 and not self.failed:
            said = f": {self._log[-1]}" if self._log else ""
            self.fail(f"the history writer process ended ({_exit_reason(code)}){said}")

    def _heard(self, message: dict[str, Any]) -> None:
        store = self.store
        if "commit" in message:
            self.last_commit = message["commit"]
            self.saved = int(message.get("records", self.saved))
        elif "checkpoints" in message:
            self.checkpoints_completed = int(message["checkpoints"])
        elif "checkpoint_problem" in message:
            self.checkpoint_problem = message["checkpoint_problem"]
        elif "notice" in message:
            store.add_notice(str(message["notice"]))
        elif "bad" in message:
            kind, detail = message["bad"]
            store.record_bad_event(str(kind), str(detail))
        elif "failed" in message:
            self.fail(str(message["failed"]))

    def fail(self, reason: str) -> None:
        """Feed no more, and say why once (``on_failure``): the process saves what it
        was handed and ends."""
        if not self.failed:
            self.failed = True
            self.on_failure(reason)


def _environment() -> dict[str, str]:
    """The monitor's environment, with the folder sluice_tui came from on PYTHONPATH if
    the writer process (no current directory on its path) would not find it otherwise."""
    home = str(Path(sluice_tui.__file__).resolve().parent.parent)
    # sys.path[0] is the monitor's script or current directory: not the writer's.
    if home in {str(Path(entry).resolve()) for entry in sys.path[1:] if entry}:
        return dict(os.environ)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": home if not path else f"{home}{os.pathsep}{path}"}


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
