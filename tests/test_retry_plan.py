"""Retries do what they say: the original queue and options, or a plain word that
they are not known; a job retried twice asks again, numbers its attempts on, and
keeps both links."""

from __future__ import annotations

import pytest
from celery import Celery

from sluice_tui.actions import (
    EARLIER_RETRIES,
    ActionRefused,
    ActionsGate,
    EarlierRetry,
    RetryCall,
    earlier_text,
    plan_lines,
)
from sluice_tui.celery_adapter.control import CeleryControl
from sluice_tui.model.states import JobState
from tests import events as ev

T = 1_700_000_000.0


class FakeControl:
    """Reads the call from the events, as the Celery control does, and counts sends."""

    def __init__(self) -> None:
        self.sent: list[RetryCall] = []

    def backend_state(self, job_id):
        return None

    def retry_call(self, job):
        return RetryCall(
            job.name,
            (1, 2),
            {},
            job.queue,
            job.routing_key,
            job.exchange,
            "the events",
            queue_source="from the task-sent event" if job.queue else None,
            fallback="the app's default queue 'celery'",
        )

    def send(self, call):
        self.sent.append(call)
        return f"retry-{len(self.sent)}"


@pytest.fixture
def control():
    return FakeControl()


@pytest.fixture
def gate(store, control, clock):
    return ActionsGate(store, control, clock=clock)


def a_failed_job(feed, job_id="j", **received):
    feed(ev.received(job_id, T, **received))
    feed(ev.failed(job_id, T + 1))


def test_an_unknown_queue_is_said_and_a_given_one_is_used(feed, gate, control):
    a_failed_job(feed)  # no task-sent: the events never said the queue
    plan = gate.plan_retry("j")
    assert plan.queue is None and "queue" in plan.not_known
    assert dict(plan_lines(plan))["queue"] == (
        "not known: the app's default queue 'celery' will be used"
    )
    chosen = gate.plan_retry("j", queue="reports")
    assert chosen.queue == "reports" and "queue" not in chosen.not_known
    assert dict(plan_lines(chosen))["queue"] == "reports (given for this retry)"
    gate.retry(chosen)
    assert control.sent[-1].queue == "reports"


def test_the_queue_from_task_sent_is_kept_and_what_is_not_known_is_listed(feed, gate):
    feed(ev.sent("j", T - 1, queue="reports", routing_key="reports"))
    a_failed_job(feed)
    plan = gate.plan_retry("j")
    assert plan.queue == "reports"
    lines = dict(plan_lines(plan))
    assert lines["queue"] == "reports (from the task-sent event)"
    assert lines["not known"].startswith("priority")


def test_a_second_retry_names_the_first_asks_again_and_is_attempt_3(feed, gate, store):
    a_failed_job(feed)
    first = gate.plan_retry("j")
    assert first.earlier == () and earlier_text(first) is None and first.attempt == 2
    gate.retry(first)
    feed(ev.received("retry-1", T + 5))
    feed(ev.succeeded("retry-1", T + 6))

    second = gate.plan_retry("j")
    assert second.earlier == (EarlierRetry("retry-1", JobState.COMPLETED),)
    assert "retry-1 (now completed)" in earlier_text(second)
    assert second.attempt == 3
    gate.retry(second)

    extra = store.get("j").extra
    assert extra["retried_as"] == "retry-2" and extra[EARLIER_RETRIES] == "retry-1"
    assert store.get("retry-2").extra["attempt"] == 3
    assert store.get("retry-1").extra["retry_of"] == "j"  # the first link is still there
    third = gate.plan_retry("j")
    assert [e.job_id for e in third.earlier] == ["retry-1", "retry-2"]


def test_retrying_an_earlier_attempt_numbers_on_from_the_whole_family(feed, gate):
    a_failed_job(feed)
    gate.retry(gate.plan_retry("j"))  # retry-1, attempt 2
    feed(ev.received("retry-1", T + 5))
    feed(ev.failed("retry-1", T + 6))
    gate.retry(gate.plan_retry("retry-1"))  # retry-2, attempt 3
    assert gate.plan_retry("j").attempt == 4  # not 2 again


def test_a_retry_sent_while_another_dialog_was_open_is_refused(feed, gate, control):
    a_failed_job(feed)
    one, other = gate.plan_retry("j"), gate.plan_retry("j")
    gate.retry(one)
    with pytest.raises(ActionRefused, match="retried as retry-1 meanwhile"):
        gate.retry(other)
    assert len(control.sent) == 1
    assert not gate.log[-1].ok


# -- the Celery control: every source of the queue, in order -----------------------------


class Inspect:
    """Stands in for app.control.inspect(): a worker that still holds some jobs."""

    def __init__(self, held: dict[str, dict]) -> None:
        self.held, self.asked = held, 0

    def __call__(self, timeout):
        return self

    def query_task(self, job_id):
        self.asked += 1
        if job_id not in self.held:
            return {"w1@host": {}}
        return {"w1@host": {job_id: ["scheduled", self.held[job_id]]}}


@pytest.fixture
def celery_app():
    app = Celery("t", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.sent = []
    app.send_task = lambda name, args=None, kwargs=None, task_id=None, **options: app.sent.append(
        (name, args, kwargs, options)
    )
    app.metas = {}
    app.backend.get_task_meta = lambda job_id, **kw: app.metas.get(job_id, {"status": "PENDING"})
    app.control.inspect = app.inspector = Inspect({})
    return app


@pytest.fixture
def celery_gate(store, celery_app, clock):
    return ActionsGate(store, CeleryControl(celery_app), clock=clock)


def sent_options(celery_gate, job_id):
    celery_gate.retry(celery_gate.plan_retry(job_id))
    return celery_gate.control.app.sent[-1][3]


def test_task_sent_routing_comes_first(feed, celery_gate, celery_app):
    feed(ev.sent("j", T - 1, queue="from-sent", routing_key="from-sent"))
    a_failed_job(feed)
    celery_app.metas["j"] = {"status": "FAILURE", "queue": "from-backend"}
    assert sent_options(celery_gate, "j")["queue"] == "from-sent"
    assert celery_app.inspector.asked == 0  # nobody waits on workers needlessly


def test_the_backends_queue_when_events_did_not_carry_one(feed, celery_gate, celery_app):
    a_failed_job(feed)
    celery_app.metas["j"] = {
        "status": "FAILURE",
        "name": "proj.add",
        "args": [1, 2],
        "kwargs": {},
        "queue": "from-backend",
    }
    plan = celery_gate.plan_retry("j")
    assert plan.queue == "from-backend"
    assert plan.call.queue_source == "from the result backend, result_extended"
    assert celery_app.inspector.asked == 0


def test_a_worker_holding_the_job_gives_its_routing_priority_and_arguments(
    feed, celery_gate, celery_app
):
    cut = "('" + "x" * 1100 + "',)"  # the events cannot give the arguments
    feed(ev.received("j", T, args=cut, eta="2030-01-01T00:00:00+00:00"))
    feed(ev.revoked("j", T + 1))  # revoked before its eta: a worker still holds it
    celery_app.inspector.held["j"] = {
        "id": "j",
        "name": "proj.add",
        "args": ["x" * 1100],
        "kwargs": {"n": 1},
        "delivery_info": {"exchange": "", "routing_key": "held", "priority": 7},
    }
    plan = celery_gate.plan_retry("j")
    assert plan.queue == "held" and plan.call.queue_source == "from worker w1@host"
    assert "priority" not in plan.not_known
    options = sent_options(celery_gate, "j")
    assert options["queue"] == "held" and options["priority"] == 7
    name, args, kwargs, _ = celery_app.sent[-1]
    assert (name, args, kwargs) == ("proj.add", ("x" * 1100,), {"n": 1})


def test_nothing_known_says_where_the_apps_routing_sends_it(feed, celery_gate, celery_app):
    a_failed_job(feed, name="proj.report")
    plan = celery_gate.plan_retry("j")
    assert plan.queue is None
    assert celery_app.inspector.asked == 0  # a failed job has left its worker
    assert plan.call.fallback == "the app's default queue 'celery'"
    assert "queue" not in sent_options(celery_gate, "j")
    routed = Celery("r", broker="memory://", set_as_current=False)
    routed.conf.task_routes = {"proj.*": {"queue": "reports"}}
    assert CeleryControl(routed).fallback("proj.report", (), {}) == (
        "queue 'reports', where the app's task_routes send proj.report"
    )


def test_a_retry_stays_in_its_workflow(feed, celery_gate):
    a_failed_job(feed, "child", parent_id="parent", root_id="root")
    options = sent_options(celery_gate, "child")
    assert (options["parent_id"], options["root_id"]) == ("parent", "root")
    a_failed_job(feed, "top")  # its own root: the retry starts a tree of its own
    options = sent_options(celery_gate, "top")
    assert "root_id" not in options and "parent_id" not in options


def test_a_job_sent_since_with_the_same_call_is_named_before_a_retry(feed, gate):
    """A trial: `sluice-tui retry` from a shell left no mark a monitor sees, and the
    TUI offered the same retry again.  Whoever sent it, a job of the same task with
    the same arguments, first seen after this one ended, is named as a likely retry."""
    feed(ev.received("before", T - 5))  # the same call sent earlier: not a retry of j
    a_failed_job(feed)
    feed(ev.received("other-args", T + 3, args="(7, 8)"))
    feed(ev.received("other-task", T + 3, name="proj.mul"))
    first = gate.plan_retry("j")
    assert first.lookalikes == () and earlier_text(first) is None

    feed(ev.sent("from-a-shell", T + 4))  # the same name and args (1, 2), after j failed
    feed(ev.received("from-a-shell", T + 4.5))
    plan = gate.plan_retry("j")
    assert plan.lookalikes == (EarlierRetry("from-a-shell", JobState.QUEUED),)
    warning = earlier_text(plan)
    assert "from-a-shell (now queued)" in warning and "same task and arguments" in warning
    assert plan.earlier == (), "not one this monitor sent"


def test_a_retry_this_monitor_sent_is_named_once_as_such(feed, gate):
    a_failed_job(feed)
    gate.retry(gate.plan_retry("j"))
    feed(ev.received("retry-1", T + 5))  # its events carry the same call
    plan = gate.plan_retry("j")
    assert [e.job_id for e in plan.earlier] == ["retry-1"] and plan.lookalikes == ()
    assert earlier_text(plan).count("retry-1") == 1
