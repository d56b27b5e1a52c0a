"""How inspect replies become job corrections, malformed replies included."""

from __future__ import annotations

from types import SimpleNamespace

from celery import Celery
from celery.backends.base import DisabledBackend

from sluice_tui.celery_adapter.resync import Resync
from sluice_tui.model.states import JobState
from tests import events as ev


class Replies:
    """Canned answers in the shape Celery's inspect API returns them."""

    def __init__(self, **replies) -> None:
        self.replies = replies

    def __getattr__(self, name):
        return lambda **kwargs: self.replies.get(name)


def cluster_answering(**replies) -> SimpleNamespace:
    control = SimpleNamespace(inspect=lambda timeout: Replies(**replies))
    return SimpleNamespace(
        control=control, backend=DisabledBackend(app=Celery(set_as_current=False))
    )


def request(job_id: str, name: str = "proj.add") -> dict:
    return {"id": job_id, "name": name, "args": "(1, 2)", "kwargs": "{}", "type": name}


def test_replies_correct_jobs_and_add_unseen_ones(feed, store, clock):
    feed(ev.received("queued-then-started", clock.now - 10))
    feed(ev.received("revoked-while-queued", clock.now - 10))
    feed(ev.received("revoked-but-running", clock.now - 10))
    feed(ev.received("reserved-as-known", clock.now - 10))
    app = cluster_answering(
        active={
            "w1@h": [
                request("queued-then-started"),
                request("revoked-but-running"),
                request("started-in-the-gap"),
                {"no": "id"},
            ]
        },
        reserved={"w1@h": [request("reserved-as-known")], "w2@h": "not a list"},
        scheduled={"w2@h": [{"eta": "2099-01-01T00:00:00", "request": request("later")}, 7]},
        revoked={"w1@h": ["revoked-while-queued", "revoked-but-running", "never-seen"]},
    )
    result = Resync(app, store, clock=clock).run()

    assert store.get("queued-then-started").state is JobState.ACTIVE
    assert store.get("started-in-the-gap").state is JobState.ACTIVE
    assert store.get("started-in-the-gap").worker == "w1@h"
    assert store.get("later").state is JobState.SCHEDULED
    assert store.get("later").eta == "2099-01-01T00:00:00"
    assert store.get("revoked-while-queued").state is JobState.CANCELLED
    # Revoked without terminate, it is still running: the active reply wins.
    assert store.get("revoked-but-running").state is JobState.ACTIVE
    assert "never-seen" not in store
    # Already queued and reported reserved: nothing new, no history entry.
    assert [t.event for t in store.get("reserved-as-known").history] == ["task-received"]
    assert [t.event for t in store.get("later").history] == ["resync: scheduled on worker"]

    assert result.corrected == 5
    assert result.workers == 2
    assert store.stats().bad_by_reason == {"malformed inspect reply": 3}
    assert result.summary() == "resync corrected 5 jobs; 2 workers answered"


def test_no_answer_and_read_only_are_said_plainly(store, clock):
    assert "no worker answered" in Resync(cluster_answering(), store, clock=clock).run().summary()
    read_only = Resync(cluster_answering(), store, ask_workers=False, clock=clock).run()
    assert "workers not asked (read-only)" in read_only.summary()


def test_found_jobs_carry_the_replys_times_and_args_as_events_show_them(store, clock):
    started = clock.now - 105.0  # the worker started it before the monitor did
    running = {**request("running"), "args": "(7, 7)", "time_start": started}
    waiting = {**request("waiting"), "args": [7, 7], "kwargs": {"x": 1}, "time_start": None}
    later = {**request("later"), "args": [[1, 2], "a"]}
    app = cluster_answering(
        active={"w1@h": [running]},
        reserved={"w1@h": [waiting]},
        scheduled={"w1@h": [{"eta": "2099-01-01T00:00:00+00:00", "request": later}]},
    )
    Resync(app, store, clock=clock).run()

    row = store.rows(["running"])["running"]
    assert row.received == row.started == started  # not the moment it was found
    assert store.get("running").args == "(7, 7)"
    # JSON made the args tuple a list: shown as the events' repr of a tuple.
    assert store.get("waiting").args == "(7, 7)"
    assert store.get("waiting").kwargs == "{'x': 1}"
    assert store.get("later").args == "([1, 2], 'a')"
    assert store.get("later").eta == "2099-01-01T00:00:00+00:00"


def test_a_time_start_that_cannot_be_a_start_time_is_not_used(store, clock):
    # Older workers sent monotonic seconds; a bool or a string is no time at all.
    for job_id, value in (("mono", 12345.6), ("flag", True), ("text", "12:00"), ("ahead", 9e12)):
        app = cluster_answering(active={"w1@h": [{**request(job_id), "time_start": value}]})
        Resync(app, store, clock=clock).run()
        assert store.rows([job_id])[job_id].started == clock.now, job_id


def test_a_restart_into_a_backlog_looks_up_thousands_of_jobs_in_a_redis_backend(feed, store, clock):
    """A restart after a busy hour: the journal has thousands of jobs still queued that
    finished meanwhile.  A trial found 1 895 of them left "queued" for good, past a
    cap of 2 000 lookups one by one; a key-value backend answers 1 000 a round trip."""
    import uuid

    from tests.cluster import REDIS_URL, require_broker

    require_broker(REDIS_URL)
    url = f"{REDIS_URL}/13"
    app = Celery(set_as_current=False, broker=url, backend=url)
    run = uuid.uuid4().hex[:8]
    finished = [f"backlog-{run}-{n:05d}" for n in range(6_000)]
    still_queued = f"backlog-{run}-waiting"
    for job_id in [*finished, still_queued]:
        feed(ev.sent(job_id, clock.now - 60))
    backend = app.backend
    try:
        with backend.client.pipeline() as pipe:
            for n, job_id in enumerate(finished):
                meta = {"status": "SUCCESS", "result": n, "task_id": job_id, "traceback": None}
                if n % 10 == 0:
                    error = {
                        "exc_type": "ValueError",
                        "exc_message": ["no"],
                        "exc_module": "builtins",
                    }
                    meta.update(status="FAILURE", result=error)
                pipe.set(backend.get_key_for_task(job_id), backend.encode(meta))
            pipe.set(backend.get_key_for_task(finished[5]), b"{not json")  # one damaged
            pipe.execute()
        result = Resync(app, store, ask_workers=False).run()
        assert result.checked_in_backend == 6_001, result
        assert store.get(still_queued).state is JobState.QUEUED  # the backend knows nothing
        states = {store.get(job_id).state for job_id in finished[1:10] if job_id != finished[5]}
        assert states == {JobState.COMPLETED}
        assert store.get(finished[0]).state is JobState.FAILED
        assert store.get(finished[5]).state is JobState.QUEUED  # its result did not decode
        assert store.counts()[JobState.QUEUED] == 2
    finally:
        backend.client.delete(*[backend.get_key_for_task(job_id) for job_id in finished])
        app.close()


def test_a_memcached_style_backend_answering_with_a_mapping_is_read(feed, store, clock):
    """Memcached's multi-get answers {key: value} for the keys it has (found in a review)."""
    app = Celery(set_as_current=False, broker="memory://", backend="cache+memory://")
    for job_id in ("done-1", "done-2", "unknown-3"):
        feed(ev.sent(job_id, clock.now - 60))
    for job_id in ("done-1", "done-2"):
        app.backend.store_result(job_id, 42, "SUCCESS")
    result = Resync(app, store, ask_workers=False).run()
    assert result.checked_in_backend == 3 and not result.problems[1:], result
    assert store.get("done-1").state is JobState.COMPLETED
    assert store.get("done-2").state is JobState.COMPLETED
    assert store.get("unknown-3").state is JobState.QUEUED


class SentWhileAsking(Replies):
    """Workers that take a moment to answer, while a producer sends a job the
    answer then includes: the monitor has just connected and resyncs."""

    def __init__(self, feed, clock, **replies) -> None:
        super().__init__(**replies)
        self.feed, self.clock = feed, clock

    def __getattr__(self, name):
        if name == "active":
            self.clock.advance(0.2)
            self.feed(ev.sent("sent-after-connect", self.clock.now))
            self.feed(ev.sent("done-after-connect", self.clock.now))
        return super().__getattr__(name)


def test_a_job_sent_while_the_workers_are_asked_has_its_resync_entry_after_its_sending(
    feed, store, clock
):
    """The resync dated what it learned when it began asking: a job sent just after
    the connect showed "resync" before "task-sent" in its history."""
    scheduled = {"eta": "2099-01-01T00:00:00", "request": request("sent-after-connect")}
    replies = SentWhileAsking(feed, clock, scheduled={"w1@h": [scheduled]})
    app = SimpleNamespace(
        control=SimpleNamespace(inspect=lambda timeout: replies),
        # The other one ran at once: the result backend has its outcome before its events.
        backend=SimpleNamespace(
            get_task_meta=lambda job_id: (
                {"status": "SUCCESS", "result": 3}
                if job_id == "done-after-connect"
                else {"status": "PENDING"}
            )
        ),
    )
    Resync(app, store, clock=clock).run()

    for job_id, learned in (
        ("sent-after-connect", "resync: scheduled on worker"),
        ("done-after-connect", "resync: result backend"),
    ):
        history = store.get(job_id).history
        assert [t.event for t in history] == ["task-sent", learned], job_id
        assert history[0].timestamp < history[1].timestamp, job_id
        assert history[1].timestamp - history[0].timestamp < 0.001, "dated when it was learned"
    assert store.get("sent-after-connect").state is JobState.SCHEDULED
    assert store.get("done-after-connect").state is JobState.COMPLETED


def test_a_job_known_before_the_resync_keeps_the_resyncs_own_date(feed, store, clock):
    feed(ev.received("known", clock.now - 10))
    asked_at = clock.now
    Resync(cluster_answering(active={"w1@h": [request("known")]}), store, clock=clock).run()
    assert [(t.event, t.timestamp) for t in store.get("known").history][-1] == (
        "resync: running on worker",
        asked_at,
    )
