"""Garbage collection: full passes skip the long-lived store, and leaks stay bounded."""

from __future__ import annotations

import gc
import weakref

import pytest

from sluice_tui import gc_policy
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.store import JobStore
from tests import events


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def clock():
    clock = Clock()
    assert gc_policy._installed is None, "left installed by an earlier test"
    gc_policy.install(thaw_every=600.0, clock=clock)
    yield clock
    gc_policy.uninstall()


def fill(store: JobStore, jobs: int, first: int = 0) -> None:
    adapter = EventAdapter(store)
    for n in range(first, first + jobs):
        job_id = f"job-{n}"
        adapter(events.sent(job_id, 1000.0 + n))
        adapter(events.succeeded(job_id, 1000.5 + n))


def test_a_full_collection_leaves_the_store_out_of_the_next_one(clock):
    store = JobStore()
    fill(store, 2_000)
    gc.collect()
    frozen = gc.get_freeze_count()
    assert frozen > 2_000  # the jobs, at least
    assert len(gc.get_objects(generation=2)) < frozen // 10  # what the next full pass walks


def test_cyclic_garbage_is_freed_by_the_thaw_at_the_latest(clock):
    kept = Cycle()
    gone = weakref.ref(kept)
    gc.collect()  # frozen while alive
    del kept
    gc.collect()
    assert gone() is not None  # frozen: no pass looks at it
    clock.now += 601
    gc.collect()  # the pass after the deadline thaws
    gc.collect()
    assert gone() is None


def test_jobs_evicted_from_a_frozen_store_are_freed_without_a_collection(clock):
    store = JobStore(max_jobs=2_000)
    fill(store, 2_000)
    gc.collect()
    frozen = gc.get_freeze_count()
    gc.disable()  # reference counting alone must free them
    try:
        fill(store, 2_000, first=2_000)
        assert "job-0" not in store and "job-3999" in store
        assert gc.get_freeze_count() <= frozen - 2_000
    finally:
        gc.enable()
