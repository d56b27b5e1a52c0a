"""The job list's sorted, filtered index over the store.  No Textual here.

The index mirrors one row per job and keeps the ids that pass the current
filter sorted by the current column.  Each UI tick applies only the store's
change feed: a changed job leaves and re-enters the sorted list by bisection,
so a tick costs O(changes x log n), and a filter or sort switch is one pass
over the mirror, as is a tick with too many changes for bisection.  Reversing
never re-sorts: display positions count from the other end.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, insort
from collections import Counter
from operator import itemgetter

from sluice_tui.model.job import RETRY_OF_NOTE, JobRow
from sluice_tui.model.states import ALL_STATES, JobState
from sluice_tui.model.store import JobStore
from sluice_tui.model.task_types import held_counts

_STATE_ORDER = {state: i for i, state in enumerate(ALL_STATES)}
# A tick with more changes than max(BULK_MIN, rows / BULK_SHARE) rebuilds the
# visible list in one pass instead of moving each changed row.
BULK_MIN = 2_000
BULK_SHARE = 20
# Text columns whose width follows their content.
MEASURED = ("name", "worker", "note", "args")
NOTE_JOIN = "\u00b7"


def note_text(row: JobRow) -> str | None:
    """What the list's NOTE says: for a failed or retrying job, its error and
    what sluice-tui did to it.

    A retry that failed again leads with its own error (``ValueError: … · retry
    of 1f0c…``): the error is what a list of failures is read for.  What the
    user did to the job itself (``retried as``, ``revoke requested``) leads,
    since it says the failure is already being dealt with.
    """
    note, error = row.note, row.error
    if not error or not note or note == error:
        return note
    if note.startswith(RETRY_OF_NOTE):
        return f"{error} {NOTE_JOIN} {note}"
    return f"{note} {NOTE_JOIN} {error}"


class SortColumn(enum.Enum):
    SEEN = "seen"
    STATE = "state"
    NAME = "name"
    WORKER = "worker"
    RUNTIME = "runtime"
    RETRIES = "retries"

    def next(self) -> SortColumn:
        members = list(SortColumn)
        return members[(members.index(self) + 1) % len(members)]


def _first_seen(item: tuple[str, JobRow | None]) -> float:
    row = item[1]
    return row.first_seen if row is not None else 0.0


# A row's sort entry: its key for each sortable column (a missing value sorts
# before every present one), then its place in first-seen order, then its id.
_STATE, _SEQ, _ID = 0, 5, 6
_COLUMN = {
    SortColumn.SEEN: _SEQ,
    SortColumn.STATE: _STATE,
    SortColumn.NAME: 1,
    SortColumn.WORKER: 2,
    SortColumn.RUNTIME: 3,
    SortColumn.RETRIES: 4,
}
_entry_id = itemgetter(_ID)


def _entry(row: JobRow, seq: int) -> tuple:
    return (
        _STATE_ORDER[row.state],
        row.name or "",
        row.worker or "",
        -1.0 if row.runtime is None else row.runtime,
        -1 if row.retries is None else row.retries,
        seq,
        row.id,
    )


class JobIndex:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.version = -1  # nothing read yet
        self.state_filter: JobState | None = None
        self.task_filter: str | None = None  # one task name, from the task types screen
        self.search = ""
        self.sort = SortColumn.SEEN
        # Newest first by default: what a monitor user looks at.
        self.reverse = True
        self._rows: dict[str, JobRow] = {}
        self._haystacks: dict[str, str] = {}
        # Rows are ordered by (the sort column's key, seq): seq numbers rows in
        # the order this index first saw them, which is also the order of _rows
        # and _entries, so a stable sort on the column's key alone gives the full
        # order.  Each row's entry holds its key for every column, kept as the
        # row changes, so a sort switch computes no keys: it is one sort of the
        # entries with an itemgetter key, all of it in C.
        self._entries: dict[str, tuple] = {}
        self._next_seq = 0
        self._column = _COLUMN[self.sort]
        self._visible: list[str] = []  # ids that pass the filter, in sort order
        self.noted = 0  # rows carrying a note (a revoke requested, a retry sent)
        # What the list holds, as of the last sync: the header shows these, so a
        # paused list and its counts stay still together.
        self.state_counts: Counter[JobState] = Counter()
        # The same per task name (counts in ALL_STATES order), for the task
        # types screen: it agrees with this list because it is this list's.
        self.type_counts: dict[str, list[int]] = {}
        # How many rows have each text length, per text column: the table sizes
        # its columns to their content without measuring every row each tick.
        self._lengths: dict[str, Counter[int]] = {field: Counter() for field in MEASURED}

    # -- reading ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self._visible)

    def row_at(self, position: int) -> JobRow:
        """The row shown at ``position`` (0 is the top of the list)."""
        visible = self._visible
        job_id = visible[len(visible) - 1 - position] if self.reverse else visible[position]
        return self._rows[job_id]

    def position_of(self, job_id: str) -> int | None:
        i = self._find(job_id)
        if i is None:
            return None
        return len(self._visible) - 1 - i if self.reverse else i

    def row(self, job_id: str) -> JobRow | None:
        return self._rows.get(job_id)

    @property
    def total(self) -> int:
        """Jobs held, whatever the filter."""
        return len(self._rows)

    def widest(self, field: str) -> int:
        """The length of the longest ``field`` (one of MEASURED) among the rows held."""
        lengths = self._lengths[field]
        return max((n for n, rows in lengths.items() if rows), default=0)

    # -- the view --------------------------------------------------------

    def set_state_filter(self, state: JobState | None) -> None:
        if state is not self.state_filter:
            self.state_filter = state
            self._rebuild()

    def set_task_filter(self, name: str | None) -> None:
        """Keep only jobs of one task name (exact), on top of the state filter."""
        if name != self.task_filter:
            self.task_filter = name
            self._rebuild()

    def set_search(self, text: str) -> None:
        text = text.strip().lower()
        if text != self.search:
            self.search = text
            self._rebuild()

    def set_sort(self, column: SortColumn) -> None:
        if column is not self.sort:
            self.sort = column
            self._column = _COLUMN[column]
            self._rebuild()

    def toggle_reverse(self) -> None:
        self.reverse = not self.reverse

    # -- keeping up with the store ----------------------------------------

    def sync(self) -> bool:
        """Apply the store's changes since the last sync; return whether any came."""
        if self.version < 0:
            self._reload()
            return True
        changes = self.store.changes_since(self.version)
        if changes.job_ids is None:
            self._reload()
            return True
        self.version = changes.version
        if not changes.job_ids:
            return False
        fresh = self.store.rows(changes.job_ids)
        # Each incremental move shifts the visible list (a memmove of up to n
        # pointers), so past a share of the list one rebuild is cheaper: a
        # flood costs a tick no more than a filter switch does.
        incremental = len(fresh) <= max(BULK_MIN, len(self._rows) // BULK_SHARE)
        # New rows take their place in first-seen order, which the change feed
        # does not keep for a job forgotten and seen again since the last sync.
        # Nearly sorted already, so the sort is a linear pass.
        for job_id, new in sorted(fresh.items(), key=_first_seen):
            old = self._rows.get(job_id)
            if incremental and old is not None and self._matches(old):
                i = self._find(job_id)
                if i is not None:
                    del self._visible[i]
            if self._take(job_id, old, new) and incremental and self._matches(new):
                insort(self._visible, job_id, key=self._key)  # key applies to job_id too
        if not incremental:
            self._rebuild()
        return True

    def _take(self, job_id: str, old: JobRow | None, new: JobRow | None) -> bool:
        """Mirror one changed row; return whether the job is still in the store."""
        self.noted += (new is not None and new.note is not None) - (
            old is not None and old.note is not None
        )
        if old is not None:
            self._haystacks.pop(job_id, None)
            self.state_counts[old.state] -= 1
            self._measure(old, -1)
            if old.name is not None:
                self.type_counts[old.name][_STATE_ORDER[old.state]] -= 1
        if new is not None:
            self.state_counts[new.state] += 1
            self._measure(new, 1)
            if new.name is not None:
                per = self.type_counts.get(new.name)
                if per is None:
                    per = self.type_counts[new.name] = [0] * len(ALL_STATES)
                per[_STATE_ORDER[new.state]] += 1
        if new is None:
            self._rows.pop(job_id, None)
            self._entries.pop(job_id, None)
            return False
        if old is None or new.first_seen != old.first_seen:
            # A job forgotten and seen again between two ticks arrived anew:
            # it goes last in seq order, and _rows and _entries keep that order.
            self._rows.pop(job_id, None)
            self._entries.pop(job_id, None)
            seq = self._next_seq
            self._next_seq += 1
        else:
            seq = self._entries[job_id][_SEQ]
        self._rows[job_id] = new
        self._entries[job_id] = _entry(new, seq)
        return True

    def _key(self, job_id: str) -> tuple:
        entry = self._entries[job_id]
        return (entry[self._column], entry[_SEQ])

    def _find(self, job_id: str) -> int | None:
        """Where ``job_id`` sits in the visible list, by bisection."""
        if job_id not in self._entries:
            return None
        visible = self._visible
        i = bisect_left(visible, self._key(job_id), key=self._key)
        return i if i < len(visible) and visible[i] == job_id else None

    def _reload(self) -> None:
        self.version, rows = self.store.all_rows()
        self._rows = {row.id: row for row in rows}
        self._entries = {
            job_id: _entry(row, n) for n, (job_id, row) in enumerate(self._rows.items())
        }
        self._next_seq = len(self._entries)
        self.noted = sum(1 for row in rows if row.note is not None)
        self.state_counts = Counter(row.state for row in rows)
        self.type_counts = held_counts(rows)
        self._lengths = {field: Counter() for field in MEASURED}
        for row in rows:
            self._measure(row, 1)
        self._haystacks = {}
        self._rebuild()

    def _rebuild(self) -> None:
        # Runs on every filter, search or sort switch.  The entries are in seq
        # order, so the candidates are already sorted by seq, and a stable sort
        # on the column's key alone finishes the job.
        entries = self._entries
        column = self._column
        if self.search or self.task_filter is not None:
            chosen = [entries[i] for i, row in self._rows.items() if self._matches(row)]
        elif self.state_filter is None:
            if column == _SEQ:
                self._visible = list(entries)
                return
            chosen = list(entries.values())
        else:
            rank = _STATE_ORDER[self.state_filter]
            chosen = [entry for entry in entries.values() if entry[_STATE] == rank]
        if column != _SEQ:
            chosen.sort(key=itemgetter(column))
        self._visible = list(map(_entry_id, chosen))

    def _measure(self, row: JobRow, sign: int) -> None:
        lengths = self._lengths
        if row.name:
            lengths["name"][len(row.name)] += sign
        if row.worker:
            lengths["worker"][len(row.worker)] += sign
        note = note_text(row)
        if note:
            lengths["note"][len(note)] += sign
        if row.args:
            lengths["args"][len(row.args)] += sign

    def _matches(self, row: JobRow) -> bool:
        if self.state_filter is not None and row.state is not self.state_filter:
            return False
        if self.task_filter is not None and row.name != self.task_filter:
            return False
        if not self.search:
            return True
        haystack = self._haystacks.get(row.id)
        if haystack is None:
            haystack = "\0".join(
                part
                for part in (
                    row.id,
                    row.name,
                    row.worker,
                    row.args,
                    row.kwargs,
                    row.note,
                    row.error,
                )
                if part
            ).lower()
            self._haystacks[row.id] = haystack
        return self.search in haystack
