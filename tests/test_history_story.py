"""A job's history reads as a story: causes before effects, attempt by attempt."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice_tui.actions import ActionsGate, RetryCall
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.states import ALL_STATES, JobState
from sluice_tui.model.store import JobStore
from tests import events as ev

T = 1_700_000_000.0


def story(job):
    """(attempt, event) in the order the detail screen tells them."""
    return [(a.number, t.event) for a in job.attempts() for t in a.entries]


# -- actions are not events ---------------------------------------------------


def test_a_revoke_request_is_no_start(feed, store, clock):
    feed(ev.received("j", T + 100))
    feed(ev.started("j", T + 110))
    clock.now = T + 500
    store.record_action("j", "revoke requested", {"revoke_requested": True})
    job = store.get("j")
    assert store.rows(["j"])["j"].started == T + 110  # was taken as a start at 500
    assert store.rows(["j"])["j"].received == T + 100
    assert job.last_time(JobState.ACTIVE) == T + 110
    assert job.history[-1].action and job.history[-1].event == "revoke requested"


def test_a_retried_job_created_by_the_monitor_has_no_received_time_until_an_event(store):
    store.record_action("new", "sent as a retry", {}, create=True, at=T, precedes=ALL_STATES)
    row = store.rows(["new"])["new"]
    assert row.received is None and row.started is None
    assert store.get("new").first_time is None


# -- cause before effect ----------------------------------------------------------


class SlowCluster:
    """Answers a revoke after a second, the job's task-revoked arriving meanwhile."""

    def __init__(self, feed, clock, worker_lag: float = 0.0) -> None:
        self.feed, self.clock, self.worker_lag = feed, clock, worker_lag

    def backend_state(self, job_id):
        return None

    def retry_call(self, job):
        return RetryCall(job.name, (1, 2), {}, None, None, None, "test")

    def send(self, call):
        # The new job's first event, stamped by a worker whose clock lags ours.
        self.feed(ev.received("new", self.clock.now - self.worker_lag))
        self.clock.advance(0.05)
        return "new"

    def revoke(self, job_id, *, terminate, signal):
        self.clock.advance(0.1)
        self.feed(ev.revoked(job_id, self.clock.now - self.worker_lag, terminated=terminate))
        self.clock.advance(1.0)  # the broadcast waits for replies
        return ["w1@host: ok"]


def test_revoke_request_is_dated_when_sent_so_task_revoked_follows_it(feed, store, clock):
    feed(ev.received("j", T))
    feed(ev.started("j", T + 1))
    clock.now = T + 10
    gate = ActionsGate(store, SlowCluster(feed, clock), clock=clock)
    gate.revoke(gate.plan_revoke("j"), terminate=True)
    job = store.get("j")
    assert [t.event for t in job.history][-2:] == ["revoke requested", "task-revoked"]
    assert job.history[-2].timestamp == T + 10  # when sent, not when the replies came


def test_a_lagging_worker_clock_never_puts_the_effect_before_its_cause(feed, store, clock):
    feed(ev.received("j", T))
    feed(ev.started("j", T + 1))
    clock.now = T + 10
    gate = ActionsGate(store, SlowCluster(feed, clock, worker_lag=2.0), clock=clock)
    gate.revoke(gate.plan_revoke("j"))
    job = store.get("j")
    events = [t.event for t in job.history]
    assert events == ["task-received", "task-started", "revoke requested", "task-revoked"]
    assert job.state is JobState.CANCELLED


def test_cause_first_whichever_arrives_first(clock):
    """The request recorded before or after the event it caused: the same story."""
    stories = []
    for event_first in (True, False):
        store = JobStore(clock=clock)
        feed = EventAdapter(store, clock=clock)
        feed(ev.started("j", T))
        feed(ev.event("task-failed", "other", T))  # another job: not part of this story
        revoked = ev.revoked("j", T + 8)  # the worker's clock is 2 s behind ours
        if event_first:
            feed(revoked)
        store.record_action("j", "revoke requested", {}, at=T + 10, precedes=[JobState.CANCELLED])
        if not event_first:
            feed(revoked)
        feed(ev.event("task-succeeded", "j", T + 9))  # not caused by a revoke: stays by time
        stories.append([(t.event, t.timestamp) for t in store.get("j").history])
    assert (
        stories[0]
        == stories[1]
        == [
            ("task-started", T),
            ("revoke requested", T + 10),
            ("task-revoked", T + 8),
            ("task-succeeded", T + 9),
        ]
    )


def test_a_retry_sent_precedes_every_event_of_the_new_job(feed, store, clock):
    feed(ev.received("j", T))
    feed(ev.failed("j", T + 1))
    clock.now = T + 10
    gate = ActionsGate(store, SlowCluster(feed, clock, worker_lag=1.0), clock=clock)
    gate.retry(gate.plan_retry("j"))
    new = store.get("new")
    assert [t.event for t in new.history] == ["sent as a retry", "task-received"]
    assert new.history[0].timestamp == T + 10
    assert store.get("j").history[-1].timestamp == T + 10


# -- attempts ------------------------------------------------------------------------


def flaky_events(job_id: str = "f") -> list[dict]:
    """demo.flaky as a real cluster tells it: fails twice, then succeeds.

    Each retry is re-sent (task-sent, retries=n) and received, with its
    countdown, before the worker's task-retried is stamped.
    """
    return [
        ev.sent(job_id, T + 0.004),  # stamped after publishing: after the worker's receipt
        ev.received(job_id, T + 0.002),
        ev.started(job_id, T + 0.010),
        ev.sent(job_id, T + 0.100, retries=1, parent_id=job_id),
        ev.received(job_id, T + 0.102, retries=1, eta="2099-01-01T00:00:00+00:00"),
        ev.retried(job_id, T + 0.105, exception="ConnectionError('attempt 1 failed')"),
        ev.started(job_id, T + 2.0),
        ev.sent(job_id, T + 2.100, retries=2, parent_id=job_id),
        ev.received(job_id, T + 2.102, retries=2, eta="2099-01-01T00:00:00+00:00"),
        ev.event(
            "task-retried",
            job_id,
            T + 2.105,
            exception="ConnectionError('attempt 2 failed')",
            traceback="Traceback (most recent call last):\nRetry in 4.0s\n",
        ),
        ev.started(job_id, T + 6.0),
        ev.succeeded(job_id, T + 6.2, result="'succeeded after 2 retries'"),
    ]


EXPECTED_STORY = [
    (1, "task-sent"),
    (1, "task-received"),
    (1, "task-started"),
    (1, "task-retried"),
    (2, "task-sent"),
    (2, "task-received"),
    (2, "task-started"),
    (2, "task-retried"),
    (3, "task-sent"),
    (3, "task-received"),
    (3, "task-started"),
    (3, "task-succeeded"),
]


def test_history_by_attempt_with_task_sent_first(feed, store):
    for event in flaky_events():
        feed(event)
    job = store.get("f")
    assert job.state is JobState.COMPLETED
    assert story(job) == EXPECTED_STORY
    # The history itself stays in event-time order.
    times = [t.timestamp for t in job.history]
    assert times == sorted(times)


def test_attempts_without_retries_fields_follow_the_workers_story(feed, store):
    """Events that do not say their attempt: each worker receipt after the first opens one."""
    for event in (
        ev.received("j", T, retries=None),
        ev.started("j", T + 1),
        ev.received("j", T + 1.5, retries=None),  # the re-sent job, before task-retried
        ev.retried("j", T + 1.6),
        ev.started("j", T + 5),
        ev.failed("j", T + 6),
    ):
        feed(event)
    assert story(store.get("j")) == [
        (1, "task-received"),
        (1, "task-started"),
        (1, "task-retried"),
        (2, "task-received"),
        (2, "task-started"),
        (2, "task-failed"),
    ]


def test_earlier_attempts_errors_stay_under_their_attempt(feed, store):
    for event in flaky_events():
        feed(event)
    job = store.get("f")
    assert job.current_error == (None, None)  # it succeeded: no error now
    assert [(e.attempt, e.exception) for e in job.attempt_errors] == [
        (1, "ConnectionError('attempt 1 failed')"),
        (2, "ConnectionError('attempt 2 failed')"),
    ]
    assert (
        job.attempt_errors[0].traceback == "Traceback (most recent call last):\nConnectionError\n"
    )
    assert job.attempt_errors[1].traceback == "Traceback (most recent call last):\nRetry in 4.0s\n"


def test_a_job_waiting_to_retry_shows_why_as_its_current_error(feed, store):
    for event in flaky_events()[:6]:
        feed(event)
    job = store.get("f")
    # The re-sent job was received before task-retried was stamped: still retrying.
    assert job.state is JobState.RETRYING
    assert job.current_error[0] == "ConnectionError('attempt 1 failed')"
    assert job.attempt_errors == ()


def test_a_newer_error_without_a_traceback_drops_the_old_traceback(feed, store):
    feed(ev.retried("j", T, exception="A()"))
    feed(ev.event("task-failed", "j", T + 1, exception="B()"))
    job = store.get("j")
    assert job.current_error == ("B()", None)
    assert [(e.attempt, e.exception) for e in job.attempt_errors] == [(1, "A()")]


@settings(max_examples=60, deadline=None)
@given(st.permutations(flaky_events()))
def test_the_story_does_not_depend_on_arrival_order(events):
    store = JobStore()
    adapter = EventAdapter(store)
    for event in events:
        adapter(dict(event))
    job = store.get("f")
    assert story(job) == EXPECTED_STORY
    assert [e.exception for e in job.attempt_errors] == [
        "ConnectionError('attempt 1 failed')",
        "ConnectionError('attempt 2 failed')",
    ]
    assert job.current_error == (None, None)
