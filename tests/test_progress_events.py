"""A task's own events (``Task.send_event('task-progress', ...)``) are history, not errors."""

from __future__ import annotations

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.job import PROGRESS_NOT_KEPT
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests import events as ev

T = 1_700_000_000.0


def fed(*events: dict, **store_options) -> JobStore:
    store = JobStore(**store_options)
    adapter = EventAdapter(store)
    for event in events:
        adapter(event)
    return store


def test_a_progress_event_is_kept_with_its_fields_and_moves_nothing():
    store = fed(
        ev.received("a", T),
        ev.started("a", T + 1),
        ev.event("task-progress", "a", T + 2, current=3, total=10, stage="upload"),
    )
    job = store.get("a")
    assert job.state is JobState.ACTIVE
    assert store.stats().bad_events == 0
    entry = job.history[-1]
    assert entry.event == "task-progress current=3 total=10 stage=upload"
    assert entry.progress and not entry.action
    assert entry.hostname == "w1@host"
    assert store.rows(["a"])["a"].started == T + 1  # progress is no start


def test_a_finished_job_stays_finished_when_its_progress_arrives_late():
    store = fed(
        ev.received("a", T),
        ev.started("a", T + 1),
        ev.succeeded("a", T + 3),
        ev.event("task-progress", "a", T + 2, percent=90),
    )
    job = store.get("a")
    assert job.state is JobState.COMPLETED
    assert [t.event for t in job.history][-2:] == ["task-progress percent=90", "task-succeeded"]


def test_thousands_of_progress_events_keep_the_newest_within_the_cap():
    events = [ev.received("a", T), ev.started("a", T + 1)]
    events += [ev.event("task-progress", "a", T + 2 + i, done=i) for i in range(10_000)]
    store = fed(*events, history_cap=100)
    job = store.get("a")
    assert len(job.history) <= 100
    assert [t.event for t in job.history[:2]] == ["task-received", "task-started"]
    assert job.history[-1].event == "task-progress done=9999"
    kept = sum(1 for t in job.history if t.progress)
    assert job.extra[PROGRESS_NOT_KEPT] == 10_000 - kept
    assert job.state is JobState.ACTIVE


def test_many_distinct_unknown_types_share_one_reason():
    store = fed(*(ev.event(f"kind-{i}", None, T) for i in range(500)))
    assert store.stats().bad_events == 500
    assert {reason for _, reason, _ in store.bad_event_samples()} == {"unknown event type"}


def test_huge_progress_fields_are_cut_and_control_codes_kept_as_data():
    store = fed(ev.event("task-progress", "a", T, note="\x1b]0;x\x07" + "y" * 100_000))
    text = store.get("a").history[0].event
    assert len(text) <= 160 and text.endswith("…")
