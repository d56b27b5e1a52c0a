"""The history journal: jobs and their histories kept in SQLite across restarts.

The receiver appends every event message, as received, to the journal's
inbox (``Journal.inbox``); the store tells :meth:`Journal.note` of its own
changes; a writer process of its own (process.py, fed over a pipe by
feed.py) commits them in batches, and now and then a checkpoint: every job
whole (checkpointer.py).  At start-up :meth:`Journal.restore` loads the newest jobs
from the checkpoints into a fresh store and replays only the batches after
the newest one's start (replay.py).  No Celery here: the caller passes the
event adapter.
"""

from sluice_tui.journal.errors import JournalBusy, JournalError
from sluice_tui.journal.journal import Journal, Restored
from sluice_tui.journal.paths import default_path
from sluice_tui.journal.writer import Retention

__all__ = ["Journal", "JournalBusy", "JournalError", "Restored", "Retention", "default_path"]
