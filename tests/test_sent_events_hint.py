"""Producers without task_send_sent_event: the app says so, even after a handful of jobs."""

from __future__ import annotations

import pytest

from sluice_tui.celery_adapter.events import SENT_EVENTS_GRACE, SENT_EVENTS_HINT
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests import events as ev
from tests.cluster import Cluster, require_transport, wait_for

T = 1_700_000_000.0


def notices(store: JobStore) -> list[str]:
    return [text for _, text in store.notices()]


def test_three_jobs_in_a_burst_get_the_hint_once_the_grace_has_passed(feed, store):
    for n in range(3):
        feed(ev.received(f"j{n}", T + n * 0.01))
    assert notices(store) == []  # their task-sent may still be on its way
    feed.check_sent_events(T + SENT_EVENTS_GRACE + 0.1)  # the receiver, with no new event
    assert notices(store) == [SENT_EVENTS_HINT]
    feed.check_sent_events(T + 60)
    feed(ev.received("later", T + 61))
    assert notices(store) == [SENT_EVENTS_HINT]  # said once


def test_a_task_sent_just_after_its_job_was_received_means_no_hint(feed, store):
    for n in range(3):
        feed(ev.received(f"j{n}", T + n * 0.01))
    feed(ev.sent("j2", T + 0.5))
    feed.check_sent_events(T + 60)
    feed(ev.received("j3", T + 61))
    assert notices(store) == []


@pytest.mark.parametrize(
    "transport", ["filesystem", pytest.param("redis", marks=pytest.mark.broker)]
)
def test_a_real_producer_without_sent_events_is_pointed_out(transport, tmp_path):
    """A worker started without -E (sluice-tui enables its events), a few jobs."""
    require_transport(transport)
    cluster = Cluster(transport, tmp_path)
    cluster.app.conf.task_send_sent_event = False  # Celery's default, for this producer
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store)
    try:
        cluster.start_worker("w1", 2)
        receiver.start()
        wait_for(lambda: store.workers(), 30, "the worker's events to be enabled")
        jobs = [cluster.send("demo.add", n, n) for n in range(3)]
        wait_for(
            lambda: all(store.get(j.id).state is JobState.COMPLETED for j in jobs),
            30,
            "the jobs to complete",
        )
        wait_for(lambda: notices(store), 30, "the task-sent hint")
        assert notices(store) == [SENT_EVENTS_HINT]
        assert all(store.get(j.id).history[0].event == "task-received" for j in jobs)
    finally:
        receiver.stop()
        cluster.close()
