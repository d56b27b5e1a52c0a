"""The list index agrees with a brute-force sort and filter after any updates.

The expected list is worked out here from the store's snapshots and the rules a
user sees (the filter digits, the sort keys, newest first), not from the
index's own matching or sort keys, so a wrong rule in the index shows.
"""

from dataclasses import dataclass
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.job import JobSnapshot
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui import job_index
from sluice_tui.ui.job_index import JobIndex, SortColumn
from tests import events as ev

T = 1_700_000_000.0
KINDS = ["sent", "received", "started", "succeeded", "failed", "retried"]
# The order of the filter digits 1-8, which the state column sorts by.
STATE_ORDER = [
    JobState.UNKNOWN,
    JobState.QUEUED,
    JobState.SCHEDULED,
    JobState.ACTIVE,
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.RETRYING,
    JobState.CANCELLED,
]


@dataclass
class View:
    """What the user asked for, tracked by the test itself."""

    state: JobState | None = None
    search: str = ""
    sort: SortColumn = SortColumn.SEEN
    newest_first: bool = True  # the default: what a monitor user looks at


def sort_key(column: SortColumn, job: JobSnapshot):
    # A job missing the value sorts before every job that has one.
    if column is SortColumn.STATE:
        return STATE_ORDER.index(job.state)
    if column is SortColumn.NAME:
        return (job.name is not None, job.name or "")
    if column is SortColumn.WORKER:
        return (job.worker is not None, job.worker or "")
    if column is SortColumn.RUNTIME:
        return (job.runtime is not None, job.runtime or 0.0)
    if column is SortColumn.RETRIES:
        return (job.retries is not None, job.retries or 0)
    return 0  # SEEN: first-seen order alone


def found_by(search: str, job: JobSnapshot, row_texts: tuple[str | None, ...]) -> bool:
    """Whether the search finds the job: its fields, and its row's note and error."""
    fields = (job.id, job.name, job.worker, job.args, job.kwargs, *row_texts)
    return not search or any(search in field.lower() for field in fields if field)


def expected(view: View, store: JobStore) -> list[str]:
    jobs = store.snapshots()  # oldest first: first-seen order breaks ties
    notes = {
        job_id: (row.note, row.error) for job_id, row in store.rows([j.id for j in jobs]).items()
    }
    shown = [
        job
        for job in jobs
        if (view.state is None or job.state is view.state)
        and found_by(view.search, job, notes[job.id])
    ]
    shown.sort(key=lambda job: sort_key(view.sort, job))  # stable: ties stay first-seen
    if view.newest_first:
        shown.reverse()
    return [job.id for job in shown]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_index_matches_brute_force(data):
    # Ticks either move each changed row or, past a threshold, rebuild: both ways.
    bulk_min = data.draw(st.sampled_from([0, job_index.BULK_MIN]), label="bulk_min")
    with patch.object(job_index, "BULK_MIN", bulk_min):
        check_against_brute_force(data)


def check_against_brute_force(data):
    store = JobStore(max_jobs=data.draw(st.integers(3, 30)))
    feed = EventAdapter(store)
    index = JobIndex(store)
    index.sync()
    view = View()
    clock = T
    for _ in range(data.draw(st.integers(1, 12))):
        for _ in range(data.draw(st.integers(0, 15))):
            clock += data.draw(st.floats(0.001, 2))
            job = f"j{data.draw(st.integers(0, 25))}"
            kind = data.draw(st.sampled_from(KINDS))
            maker = getattr(ev, kind)
            feed(
                maker(job, clock)
                if kind != "received"
                else ev.received(
                    job,
                    clock,
                    name=data.draw(st.sampled_from(["b", "a", "c"])),
                    hostname=data.draw(st.sampled_from(["w1", "w2"])),
                )
            )
        action = data.draw(st.sampled_from(["sync", "filter", "sort", "reverse", "search"]))
        if action == "filter":
            view.state = data.draw(st.sampled_from([None, *STATE_ORDER]))
            index.set_state_filter(view.state)
        elif action == "sort":
            view.sort = data.draw(st.sampled_from(list(SortColumn)))
            index.set_sort(view.sort)
        elif action == "reverse":
            view.newest_first = not view.newest_first
            index.toggle_reverse()
        elif action == "search":
            typed = data.draw(st.sampled_from(["", "j1", "W2 ", "a", "J"]))
            view.search = typed.strip().lower()  # as typed: case and spaces do not matter
            index.set_search(typed)
        index.sync()
        shown = [index.row_at(i).id for i in range(len(index))]
        assert shown == expected(view, store)
        for position, job_id in enumerate(shown):
            assert index.position_of(job_id) == position
