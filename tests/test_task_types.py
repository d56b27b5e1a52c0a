"""Task-type figures: held counts, lifetime totals, and percentiles checked against a sort."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice_tui.model.states import JobState
from sluice_tui.model.task_types import RELATIVE_ERROR, TaskTypes

NOW = 1_700_000_000.0


def run(types: TaskTypes, name: str, runtime: float, *, fail: bool = False, at: float = NOW):
    """One job's life: queued, active, then finished."""
    types.moved(None, None, name, JobState.QUEUED, at, None)
    types.moved(name, JobState.QUEUED, name, JobState.ACTIVE, at, None)
    end = JobState.FAILED if fail else JobState.COMPLETED
    types.moved(name, JobState.ACTIVE, name, end, at + runtime, runtime)


def test_counts_and_failure_rate_follow_a_known_workload():
    types = TaskTypes()
    for n in range(10):
        run(types, "proj.add", 0.1, fail=n < 3)
    types.moved(None, None, "proj.add", JobState.QUEUED, NOW, None)
    types.moved("proj.add", JobState.QUEUED, "proj.add", JobState.RETRYING, NOW, None)
    run(types, "proj.mul", 1.0)
    add, mul = types.snapshot(NOW + 5)
    assert (add.name, add.completed, add.failed, add.retries) == ("proj.add", 7, 3, 1)
    assert add.failure_rate == 0.3
    assert add.counts[JobState.COMPLETED] == 7 and add.counts[JobState.FAILED] == 3
    assert add.counts[JobState.RETRYING] == 1 and add.held == 11
    assert mul.failure_rate == 0.0 and mul.counts[JobState.COMPLETED] == 1
    assert add.completions[-1] == 7 and add.failures[-1] == 3


def test_forgetting_a_job_leaves_the_held_counts_not_the_lifetime_totals():
    types = TaskTypes()
    run(types, "proj.add", 0.5, fail=True)
    types.forgot("proj.add", JobState.FAILED)
    (add,) = types.snapshot(NOW)
    assert add.counts[JobState.FAILED] == 0 and add.held == 0
    assert add.failed == 1 and add.failure_rate == 1.0


def test_a_name_learned_late_moves_the_job_under_it():
    types = TaskTypes()
    types.moved(None, None, None, JobState.ACTIVE, NOW, None)  # started came first
    types.moved(None, JobState.ACTIVE, "proj.add", JobState.ACTIVE, NOW, None)  # then received
    (add,) = types.snapshot(NOW)
    assert add.counts[JobState.ACTIVE] == 1 and add.completed == 0


def test_nothing_finished_has_no_failure_rate_and_no_percentiles():
    types = TaskTypes()
    types.moved(None, None, "proj.slow", JobState.ACTIVE, NOW, None)
    (slow,) = types.snapshot(NOW)
    assert slow.failure_rate is None and slow.p50 is None and slow.max is None


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
