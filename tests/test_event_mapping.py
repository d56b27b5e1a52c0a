"""Celery events -> job states and fields, through the adapter and a real store."""

from sluice_tui.model.states import JobState
from tests import events as ev

T = 1_700_000_000.0


def test_task_sent_makes_a_queued_job(feed, store):
    feed(ev.sent("j1", T))
    job = store.get("j1")
    assert job.seen and job.state is JobState.QUEUED
    assert job.name == "proj.add" and job.queue == "celery" and job.routing_key == "celery"
    assert job.worker is None  # the producer is not a worker


def test_never_seen_id_is_unknown_with_an_explanation(store):
    job = store.get("no-such-id")
    assert job is not None
    assert job.state is JobState.UNKNOWN
    assert not job.seen
    assert "never" in job.explanation and "PENDING" in job.explanation
    assert job.history == ()


def test_received_is_queued_or_scheduled_by_eta(feed, store):
    feed(ev.received("now", T))
    feed(ev.received("later", T, eta="2023-11-14T22:23:20.500000+00:00"))  # T + 300 s
    feed(ev.received("past", T, eta="2023-11-14T22:00:00+00:00"))
    assert store.get("now").state is JobState.QUEUED
    assert store.get("later").state is JobState.SCHEDULED
    assert store.get("past").state is JobState.QUEUED


def test_a_countdown_seen_only_by_the_producer_is_scheduled(feed, store):
    # A worker with events off when it took the job never sends task-received.
    feed(ev.sent("later", T, eta="2023-11-14T22:23:20.500000+00:00"))  # T + 300 s
    feed(ev.sent("past", T, eta="2023-11-14T22:00:00+00:00"))
    assert store.get("later").state is JobState.SCHEDULED
    assert store.get("past").state is JobState.QUEUED
    feed(ev.started("later", T + 301))
    assert store.get("later").state is JobState.ACTIVE
    rows = store.rows(["later"])
    assert rows["later"].eta is None  # no countdown once it runs


def test_lifecycle_success(feed, store):
    for e in (
        ev.sent("j", T),
        ev.received("j", T + 1),
        ev.started("j", T + 2),
        ev.succeeded("j", T + 3, result="42", runtime=0.5),
    ):
        feed(e)
    job = store.get("j")
    assert job.state is JobState.COMPLETED
    assert job.result == "42" and job.runtime == 0.5 and job.worker == "w1@host"
    assert [(t.state, t.event) for t in job.history] == [
        (JobState.QUEUED, "task-sent"),
        (JobState.QUEUED, "task-received"),
        (JobState.ACTIVE, "task-started"),
        (JobState.COMPLETED, "task-succeeded"),
    ]
    assert [t.hostname for t in job.history] == [ev.PRODUCER, "w1@host", "w1@host", "w1@host"]


def test_failed_and_rejected_are_failed(feed, store):
    feed(ev.received("f", T))
    feed(ev.failed("f", T + 1))
    feed(ev.received("r", T))
    feed(ev.rejected("r", T + 1))
    failed = store.get("f")
    assert failed.state is JobState.FAILED
    assert failed.exception == "ValueError('boom')" and "Traceback" in failed.traceback
    assert store.get("r").state is JobState.FAILED
    assert store.get("r").extra == {"requeue": False}


def test_revoked_is_cancelled_with_details(feed, store):
    feed(ev.started("x", T))
    feed(ev.revoked("x", T + 1, terminated=True))
    job = store.get("x")
    assert job.state is JobState.CANCELLED
    assert job.extra["terminated"] is True and job.extra["signum"] == 15


def test_retry_cycle_keeps_every_attempt(feed, store):
    seq = [
        ev.sent("j", T),
        ev.received("j", T + 1),
        ev.started("j", T + 2),
        ev.retried("j", T + 3),
        ev.received("j", T + 3.1, retries=1, eta="2023-11-14T22:13:30+00:00", hostname="w2@h"),
        ev.started("j", T + 10, hostname="w2@h"),
        ev.succeeded("j", T + 11, hostname="w2@h"),
    ]
    states = []
    for e in seq:
        feed(e)
        states.append(store.get("j").state)
    assert states == [
        JobState.QUEUED,
        JobState.QUEUED,
        JobState.ACTIVE,
        JobState.RETRYING,
        JobState.SCHEDULED,
        JobState.ACTIVE,
        JobState.COMPLETED,
    ]
    job = store.get("j")
    assert len(job.history) == 7
    assert job.retries == 1 and job.worker == "w2@h"
    assert job.exception == "ConnectionError('try again')"  # the retry's reason stays visible


def test_retry_resend_names_the_job_as_its_own_parent(feed, store):
    """Task.retry's task-sent carries parent_id == its own id; that is not a child."""
    feed(ev.sent("j", T, parent_id="p", root_id="p"))
    feed(ev.started("j", T + 1))
    feed(ev.sent("j", T + 2, parent_id="j", root_id="p"))
    feed(ev.sent("p", T - 1))
    assert store.get("j").parent_id == "p"
    assert store.get("j").children == ()
    assert store.get("p").children == ("j",)


def test_task_cancelled_means_it_will_run_again(feed, store):
    """A worker that loses its broker kills the task and lets it be redelivered."""
    feed(ev.received("c", T))
    feed(ev.started("c", T + 1))
    feed(ev.event("task-cancelled", "c", T + 2))
    job = store.get("c")
    assert job.state is JobState.RETRYING
    assert job.history[-1].event == "task-cancelled"
    feed(ev.received("c", T + 5, hostname="w2@h"))
    feed(ev.started("c", T + 6, hostname="w2@h"))
    assert store.get("c").state is JobState.ACTIVE


def test_success_before_started_still_ends_completed(feed, store):
    """Seen here in a real run: task-succeeded arrived before task-started."""
    feed(ev.received("j", T))
    feed(ev.succeeded("j", T + 2))
    feed(ev.started("j", T + 1))
    job = store.get("j")
    assert job.state is JobState.COMPLETED
    assert [t.event for t in job.history] == ["task-received", "task-started", "task-succeeded"]


def test_late_sent_merges_fields_but_does_not_reopen(feed, store):
    feed(ev.started("j", T + 2))
    feed(ev.succeeded("j", T + 3))
    assert store.get("j").name is None
    feed(ev.sent("j", T, name="proj.late", args="(7,)", queue="high"))
    job = store.get("j")
    assert job.state is JobState.COMPLETED
    assert job.name == "proj.late" and job.args == "(7,)" and job.queue == "high"
    assert job.history[0].event == "task-sent"


def test_producer_clock_ahead_of_the_worker_does_not_reopen(feed, store):
    feed(ev.received("j", T))
    feed(ev.started("j", T + 1))
    feed(ev.succeeded("j", T + 2))
    feed(ev.sent("j", T + 60))  # producer clock a minute fast
    assert store.get("j").state is JobState.COMPLETED


def test_children_are_linked_in_any_order(feed, store):
    feed(ev.received("child1", T + 1, parent_id="parent", root_id="parent"))
    feed(ev.received("parent", T))
    feed(ev.received("child2", T + 2, parent_id="parent", root_id="parent"))
    assert store.get("parent").children == ("child1", "child2")
    assert store.get("child1").root_id == "parent"


def test_missing_task_sent_events_are_pointed_out_once(feed, store):
    for i in range(60):
        feed(ev.received(f"r{i}", T + i))
    notices = [text for _, text in store.notices()]
    assert len(notices) == 1
    assert "task_send_sent_event" in notices[0] and "invisible" in notices[0]


def test_no_hint_when_sent_events_flow(feed, store):
    feed(ev.sent("s", T))
    for i in range(60):
        feed(ev.received(f"r{i}", T + i))
    assert store.notices() == []


def test_received_fills_what_sent_left_out(feed, store):
    feed(ev.sent("c", T, parent_id=None, root_id=None, expires=None))
    feed(ev.received("c", T + 1, parent_id="p", root_id="p", expires="2023-11-15T00:00:00"))
    job = store.get("c")
    assert (job.parent_id, job.root_id, job.expires) == ("p", "p", "2023-11-15T00:00:00")


def test_a_retry_created_before_its_events_still_gets_its_arguments(feed, store):
    store.record_action("new", "sent as a retry", {"retry_of": "old"}, create=True, name="t.x")
    feed(ev.sent("new", T, name="t.x", args="(1, 2)"))
    job = store.get("new")
    assert job.args == "(1, 2)" and job.state is JobState.QUEUED


def test_task_sent_stamped_after_received_does_not_unschedule(feed, store):
    """Celery stamps task-sent after publishing: the worker's event can be earlier."""
    feed(ev.received("j", T, eta="2023-11-14T22:23:20+00:00"))
    feed(ev.sent("j", T + 0.001))
    assert store.get("j").state is JobState.SCHEDULED
    feed(ev.started("s", T))
    feed(ev.sent("s", T + 0.001))
    assert store.get("s").state is JobState.ACTIVE


def test_a_failed_job_shows_how_long_its_last_attempt_ran(feed, store):
    """task-failed carries no runtime: the list and detail give started to failed."""
    for event in (
        *(ev.received("f", T), ev.started("f", T + 1), ev.retried("f", T + 2)),
        *(ev.received("f", T + 10), ev.started("f", T + 11), ev.failed("f", T + 11.25)),
        *(ev.received("never-ran", T), ev.failed("never-ran", T + 1)),
        *(ev.received("ok", T), ev.started("ok", T + 1), ev.succeeded("ok", T + 9, runtime=0.5)),
    ):
        feed(event)
    rows = store.rows(["f", "never-ran", "ok"])
    assert rows["f"].runtime == 0.25, "the last attempt, not the first"
    assert store.get("f").runtime == 0.25
    assert rows["never-ran"].runtime is None and store.get("never-ran").runtime is None
    assert rows["ok"].runtime == 0.5, "a success keeps the runtime the worker measured"
