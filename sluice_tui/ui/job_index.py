"""The job list's sorted, filtered index over the store.  No Textual here.

The index mirrors one row per job and keeps the ids that pass the current
filter sorted by the current column.  Each UI tick applies only the store's
change feed: a changed job leaves and re-enters the sorted list by bisection,
so a tick costs O(changes x log n), and a filter or sort switch is one pass
over the mirror.  Reversing never re-sorts: display positions count from the
other end.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, insort
from collections.abc import Callable
from typing import Any

from sluice_tui.model.job import JobRow
from sluice_tui.model.states import ALL_STATES, JobState
from sluice_tui.model.store import JobStore

_STATE_ORDER = {state: i for i, state in enumerate(ALL_STATES)}


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


def _primary(column: SortColumn) -> Callable[[JobRow], Any]:
    if column is SortColumn.SEEN:
        return lambda row: 0
    if column is SortColumn.STATE:
        return lambda row: _STATE_ORDER[row.state]
    if column is SortColumn.NAME:
        return lambda row: row.name or ""
    if column is SortColumn.WORKER:
        return lambda row: row.worker or ""
    if column is SortColumn.RUNTIME:
        return lambda row: -1.0 if row.runtime is None else row.runtime
    return lambda row: -1 if row.retries is None else row.retries


class JobIndex:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.version = -1  # nothing read yet
        self.state_filter: JobState | None = None
        self.search = ""
        self.sort = SortColumn.SEEN
        # Newest first by default: what a monitor user looks at.
        self.reverse = True
        self._rows: dict[str, JobRow] = {}
        self._haystacks: dict[str, str] = {}
        self._keys: list[tuple] = []  # sorted (primary, first_seen, id) of visible rows
        self._primary = _primary(self.sort)
        self.noted = 0  # rows carrying a note (a revoke requested, a retry sent)

    # -- reading ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self._keys)

    def row_at(self, position: int) -> JobRow:
        """The row shown at ``position`` (0 is the top of the list)."""
        keys = self._keys
        key = keys[len(keys) - 1 - position] if self.reverse else keys[position]
        return self._rows[key[2]]

    def position_of(self, job_id: str) -> int | None:
        row = self._rows.get(job_id)
        if row is None:
            return None
        key = self._key(row)
        keys = self._keys
        i = bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            return None
        return len(keys) - 1 - i if self.reverse else i

    def row(self, job_id: str) -> JobRow | None:
        return self._rows.get(job_id)

    # -- the view --------------------------------------------------------

    def set_state_filter(self, state: JobState | None) -> None:
        if state is not self.state_filter:
            self.state_filter = state
            self._rebuild()

    def set_search(self, text: str) -> None:
        text = text.strip().lower()
        if text != self.search:
            self.search = text
            self._rebuild()

    def set_sort(self, column: SortColumn) -> None:
        if column is not self.sort:
            self.sort = column
            self._primary = _primary(column)
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
        rows, keys, haystacks = self._rows, self._keys, self._haystacks
        for job_id, new in fresh.items():
            old = rows.get(job_id)
            self.noted += (new is not None and new.note is not None) - (
                old is not None and old.note is not None
            )
            if old is not None:
                if self._matches(old):
                    key = self._key(old)
                    i = bisect_left(keys, key)
                    if i < len(keys) and keys[i] == key:
                        del keys[i]
                haystacks.pop(job_id, None)
            if new is None:
                rows.pop(job_id, None)
                continue
            rows[job_id] = new
            if self._matches(new):
                insort(keys, self._key(new))
        return True

    def _reload(self) -> None:
        self.version, rows = self.store.all_rows()
        self._rows = {row.id: row for row in rows}
        self.noted = sum(1 for row in rows if row.note is not None)
        self._haystacks = {}
        self._rebuild()

    def _rebuild(self) -> None:
        key = self._key
        matches = self._matches
        self._keys = sorted(key(row) for row in self._rows.values() if matches(row))

    def _key(self, row: JobRow) -> tuple:
        return (self._primary(row), row.first_seen, row.id)

    def _matches(self, row: JobRow) -> bool:
        if self.state_filter is not None and row.state is not self.state_filter:
            return False
        if not self.search:
            return True
        haystack = self._haystacks.get(row.id)
        if haystack is None:
            haystack = "\0".join(
                part for part in (row.id, row.name, row.worker, row.args, row.kwargs) if part
            ).lower()
            self._haystacks[row.id] = haystack
        return self.search in haystack
