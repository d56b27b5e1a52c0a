"""The list index agrees with a brute-force sort and filter after any updates."""

from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.states import ALL_STATES
from sluice_tui.model.store import JobStore
from sluice_tui.ui import job_index
from sluice_tui.ui.job_index import JobIndex, SortColumn
from tests import events as ev

T = 1_700_000_000.0
KINDS = ["sent", "received", "started", "succeeded", "failed", "retried"]


def expected(index: JobIndex, store: JobStore) -> list[str]:
    rows = [index.row(job.id) for job in store.snapshots()]
    seq = {job_id: n for n, job_id in enumerate(index._rows)}
    rows = [r for r in rows if index._matches(r)]
    rows.sort(key=lambda r: (index._primary(r), seq[r.id]), reverse=index.reverse)
    return [r.id for r in rows]


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
            index.set_state_filter(data.draw(st.sampled_from([None, *ALL_STATES])))
        elif action == "sort":
            index.set_sort(data.draw(st.sampled_from(list(SortColumn))))
        elif action == "reverse":
            index.toggle_reverse()
        elif action == "search":
            index.set_search(data.draw(st.sampled_from(["", "j1", "w2", "a"])))
        index.sync()
        shown = [index.row_at(i).id for i in range(len(index))]
        assert shown == expected(index, store)
        for position, job_id in enumerate(shown):
            assert index.position_of(job_id) == position
