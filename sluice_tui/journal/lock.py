"""One writer per journal: an exclusive flock on ``PATH.lock``.

The kernel drops the lock when its holders die, even by kill -9, so a crashed
writer never leaves the journal locked.  The holders are the monitor and the
writer process it starts (which inherits the lock, and outlives the monitor
by the time it takes to write what it was handed).  The monitor writes its
pid into the file, which is only a hint for the message a second writer gets.

A writer that is done may remove the file (``release(remove=True)``), while
it still holds the lock: a writer that opened the old file meanwhile finds,
once it has the lock, that the path no longer names that file, and opens the
path again.  A lock is only taken on the file the path names.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from pathlib import Path

from sluice_tui.journal.errors import JournalBusy, JournalError, describe

# A reader probing the lock holds it for an instant; a writer starting at that
# instant tries again for this long before it calls the journal busy.
ACQUIRE_PATIENCE = 0.5
# A monitor's writer process inherits its lock and holds it until it has
# written all it was handed: after the monitor itself is gone (a quit while
# it was behind, a kill -9), the lock names a dead pid for a moment.
ORPHAN_PATIENCE = 30.0


def lock_path(path: Path) -> Path:
    return Path(f"{path}.lock")


class WriterLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`JournalBusy` naming who holds it."""
        deadline = time.monotonic() + ACQUIRE_PATIENCE
        orphaned = False
        while True:
            fd = self._open()
            try:
                orphaned = self._lock(fd, deadline, orphaned)
            except BaseException:
                os.close(fd)
                raise
            if _names(lock_path(self.path), fd):
                break
            # The writer before removed the file as it let go: lock the one the path names now.
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _open(self) -> int:
        try:
            # Readable by all: it holds only the writer's pid, which readers name.
            return os.open(lock_path(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(describe(self.path, exc)) from None

    def _lock(self, fd: int, deadline: float, orphaned: bool) -> bool:
        """Flock ``fd``, waiting as long as the holder deserves; whether the wait was
        for an orphaned writer process (that patience is granted once)."""
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return orphaned
            except BlockingIOError:
                # A reader asking who writes holds it for an instant: wait that
                # out, whatever pid an earlier writer left in the file.
                if time.monotonic() > deadline:
                    holder = _read_pid(fd)
                    if not orphaned and holder is not None and not alive(holder):
                        orphaned = True  # its writer process finishes: wait for it, once
                        deadline = time.monotonic() + ORPHAN_PATIENCE
                        with contextlib.suppress(OSError, ValueError):
                            print(
                                f"sluice-tui: waiting for the writer process that pid {holder} "
                                f"left to finish saving {self.path}...",
                                file=sys.stderr,
                                flush=True,
                            )
                        continue
                    if orphaned and holder is not None and not alive(holder):
                        raise JournalBusy(orphan_message(self.path, holder)) from None
                    raise JournalBusy(busy_message(self.path, holder)) from None
                time.sleep(0.02)

    @property
    def fileno(self) -> int:
        """The held lock's descriptor: a process that inherits it holds the lock too."""
        if self._fd is None:
            raise RuntimeError("the writer lock is not held")
        return self._fd

    def release(self, *, remove: bool = False) -> None:
        """Let go of the lock; ``remove`` the file too, when no process the lock was
        handed to (a writer process) can still hold it."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # no pid left behind to be named as a writer
            if remove and _names(lock_path(self.path), self._fd):
                with contextlib.suppress(OSError):
                    # Before closing: while the lock is held, nobody has it on this file.
                    os.unlink(lock_path(self.path))
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def busy_message(path: Path, pid: int | None) -> str:
    who = f"pid {pid}" if pid is not None else "another process"
    return (
        f"the history journal {path} is being written by {who} (a sluice-tui or "
        "sluice-tui collect); one writer per journal: stop it, or pass --history with another path"
    )


def orphan_message(path: Path, pid: int) -> str:
    lock = lock_path(path)
    return (
        f"the history journal {path} is still held by the writer process that pid {pid} "
        f"(now gone) left, after waiting {ORPHAN_PATIENCE:g} s for it to finish saving: stop "
        f"that process (fuser -v {lock} names it), or pass --history with another path"
    )


def writer_pid(path: Path) -> int | None:
    """The pid of the process writing ``path`` now, or None if nobody writes it."""
    for _ in range(3):
        try:
            fd = os.open(lock_path(path), os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_pid(fd) or -1  # locked, pid not written yet: still a writer
            fcntl.flock(fd, fcntl.LOCK_UN)
            if _names(lock_path(path), fd) or not lock_path(path).exists():
                return None
            # A writer quitting removed the file this one opened, and a new one made
            # another: ask that one.
        finally:
            os.close(fd)
    return -1


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc to tell: it answered the signal
    return state not in (b"Z", b"X")


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` is the file open as ``fd`` (not removed, nor made anew since)."""
    try:
        named, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None
