"""The history journal: jobs and their histories kept in SQLite across restarts.

The receiver hands every event message, as received, to :meth:`Journal.raw`;
the store tells :meth:`Journal.note` of its own changes; one writer thread
commits them in batches.  At start-up :meth:`Journal.restore` replays the
newest jobs into a fresh store.  No Celery here: the caller passes the event
adapter.
"""

from sluice_tui.journal.errors import JournalBusy, JournalError
from sluice_tui.journal.journal import Journal, Restored
from sluice_tui.journal.paths import default_path
from sluice_tui.journal.writer import Retention

__all__ = ["Journal", "JournalBusy", "JournalError", "Restored", "Retention", "default_path"]
