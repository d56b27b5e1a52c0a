"""Times from the cluster, read once: Celery sends eta and expires as ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso_epoch(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 time; None for anything that is not one."""
    if type(value) is not str or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # Celery sends UTC when enable_utc is on
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
