"""Where a journal lives when the user does not say."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

APP_DIR = "sluice-tui"


def state_dir() -> Path:
    """``$XDG_STATE_HOME/sluice-tui``, else ``~/.local/state/sluice-tui`` (the XDG default)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    # The spec says a relative value is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / APP_DIR


def default_path(broker_label: str) -> Path:
    """One journal per broker: the masked URL, hashed, names the file."""
    digest = hashlib.sha256(broker_label.encode("utf-8", "replace")).hexdigest()[:12]
    return state_dir() / f"journal-{digest}.sqlite3"
