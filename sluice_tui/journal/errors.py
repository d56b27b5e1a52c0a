"""What can go wrong with a journal, said in one line a user can act on."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path


class JournalError(Exception):
    """The journal cannot be used; the message is for the user, one line."""


class JournalBusy(JournalError):
    """Another process writes this journal (one writer per journal)."""


def describe(path: Path, exc: BaseException) -> str:
    """A one-line reason for a failure of SQLite or the file system on ``path``."""
    text = " ".join(str(exc).split())  # one line, whatever the library said
    lowered = text.lower()
    code = getattr(exc, "errno", None)
    if "disk is full" in lowered or code == errno.ENOSPC or code == errno.EDQUOT:
        return f"the disk holding the history journal {path} is full"
    if (
        "readonly" in lowered
        or "read-only" in lowered
        or code in (errno.EROFS, errno.EACCES, errno.EPERM)
        or isinstance(exc, PermissionError)
    ):
        return f"cannot write the history journal {path}: the path is read-only ({text})"
    if code in (errno.ENOTDIR, errno.EEXIST) and getattr(exc, "filename", None):
        # mkdir of the journal's folder met a file of that name
        return f"cannot make the folder for the history journal {path}: {exc.filename} is a file"
    if "unable to open" in lowered:
        return f"cannot open the history journal {path} ({text}); is its directory writable?"
    if (
        "not a database" in lowered
        or "malformed" in lowered
        or isinstance(exc, sqlite3.DatabaseError | ValueError)
    ):
        return f"{path} is not a sluice-tui history journal, or it is damaged ({text})"
    return f"history journal {path}: {text}"
