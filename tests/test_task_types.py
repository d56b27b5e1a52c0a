"""Task-type figures: held counts, lifetime totals, and percentiles checked against a sort."""

from __future__ import annotations

import math
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.model.task_types import RELATIVE_ERROR, TaskTypes, held_counts
from sluice_tui.ui.job_index import JobIndex
from tests import events as ev

NOW = 1_700_000_000.0


def run(types: TaskTypes, name: str, runtime: float, *, fail: bool = False, at: float = NOW):
    """One job finishing, as the store reports it."""
    end = JobState.FAILED if fail else JobState.COMPLETED
    types.record(name, end, at + runtime, runtime)


class Row(NamedTuple):
    name: str | None
    state: JobState


def test_lifetime_totals_and_failure_rate_follow_a_known_workload():
    types = TaskTypes()
    for n in range(10):
        run(types, "proj.add", 0.1, fail=n < 3)
    types.record("proj.add", JobState.RETRYING, NOW, None)
    run(types, "proj.mul", 1.0)
    add, mul = types.snapshot(NOW + 5)
    assert (add.name, add.completed, add.failed, add.retries) == ("proj.add", 7, 3, 1)
    assert add.failure_rate == 0.3
    assert mul.failure_rate == 0.0 and mul.completed == 1
    assert add.completions[-1] == 7 and add.failures[-1] == 3


def test_held_counts_come_from_the_rows_held_and_add_types_not_finished_yet():
    types = TaskTypes()
    run(types, "proj.add", 0.5, fail=True)
    rows = [
        Row("proj.add", JobState.ACTIVE),
        Row("proj.slow", JobState.QUEUED),
        Row(None, JobState.UNKNOWN),
    ]
    add, slow = types.snapshot(NOW, held_counts(rows))
    # The failed job was evicted: it left the held counts, not the lifetime totals.
    assert add.counts[JobState.FAILED] == 0 and add.counts[JobState.ACTIVE] == 1
    assert add.failed == 1 and add.failure_rate == 1.0
    assert slow.held == 1 and slow.failure_rate is None and slow.p50 is None and slow.max is None


def test_the_sparkline_keeps_ten_minutes_per_minute():
    types = TaskTypes()
    for minute in range(15):
        run(types, "proj.add", 0.1, at=NOW + 60 * minute, fail=minute % 2 == 1)
    (add,) = types.snapshot(NOW + 60 * 14)
    assert len(add.completions) == 10
    assert add.completions == (0, 1) * 5 and add.failures == (1, 0) * 5  # minutes 5 to 14


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=1e-5, max_value=1e4, allow_nan=False), min_size=1, max_size=300)
)
def test_percentiles_are_within_the_stated_error_of_a_sort(runtimes):
    types = TaskTypes()
    for runtime in runtimes:
        run(types, "proj.t", runtime)
    (t,) = types.snapshot(NOW)
    for q, got in ((0.5, t.p50), (0.95, t.p95)):
        want = nearest_rank(runtimes, q)
        assert abs(got - want) <= RELATIVE_ERROR * want * 1.0001, (q, got, want)
    assert t.max == max(runtimes)


def test_a_full_store_agrees_with_the_job_table_and_keeps_lifetime_totals():
    """Through the real store and job index: evictions leave held counts, not totals."""
    store = JobStore(max_jobs=40)
    feed = EventAdapter(store)
    index = JobIndex(store)
    names = ("proj.a", "proj.b", "proj.c")
    failed = completed = 0
    for n in range(200):
        job, name, at = f"job-{n}", names[n % 3], NOW + n
        feed(ev.sent(job, at, name=name))
        feed(ev.started(job, at + 0.1))
        if n % 5 == 0:
            feed(ev.failed(job, at + 0.3))
            failed += 1
        elif n % 7 != 0:  # a few stay running
            feed(ev.succeeded(job, at + 0.2))
            completed += 1
        if n % 50 == 0:
            index.sync()
    index.sync()
    snapshot = store.task_types.snapshot(NOW + 200, index.type_counts)
    # Held: exactly what the job table holds, per name and state.
    for t in snapshot:
        for state in JobState:
            want = sum(
                1
                for i in range(len(index))
                if (r := index.row_at(i)).name == t.name and r.state is state
            )
            assert t.counts[state] == want, (t.name, state)
    assert sum(t.held for t in snapshot) == len(index) == len(store) < 200
    # Lifetime: every job that ever finished, evicted or not.
    assert sum(t.failed for t in snapshot) == failed
    assert sum(t.completed for t in snapshot) == completed


def test_the_rate_per_minute_is_over_the_time_watched_not_a_whole_minute():
    """`stats --seconds 8` saw 23 jobs finish: some 170 a minute, not 23."""
    types = TaskTypes(since=NOW)
    for n in range(23):
        run(types, "proj.add", 0.01, at=NOW + 0.3 * n)
    (add,) = types.snapshot(NOW + 8)
    assert add.per_minute == 23 * 60 / 8
    (add,) = types.snapshot(NOW + 30)
    assert add.per_minute == 23 * 60 / 30
    (add,) = types.snapshot(NOW + 3600)
    assert add.per_minute == 0.0, "nothing in the last 10 minutes"
    early = TaskTypes(since=NOW)
    run(early, "proj.add", 0.01, at=NOW + 1)
    (add,) = early.snapshot(NOW + 2)
    assert add.per_minute == 60 / 5.0, "at least 5 s of window: less is noise"
