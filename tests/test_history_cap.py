"""A job that retries without end keeps a bounded history that folds exactly like the whole one."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.export import job_to_dict
from sluice_tui.model.job import JOB_FIELDS, MIN_HISTORY_CAP, Job
from sluice_tui.model.states import JobState
from tests import events as ev

T0 = 1_700_000_000.0
JOB = "forever-1"
UNCAPPED = 10**9


class OneJob:
    """Just enough of a store for the real adapter to feed one Job with a chosen cap."""

    def __init__(self, cap: int) -> None:
        self.job = Job(JOB, T0, history_cap=cap)
        self.bad: list[str] = []

    def apply(self, job_id, step, timestamp, hostname, data, plan, *, from_event=True) -> None:
        assert job_id == JOB
        self.job.apply(step, timestamp, hostname, data, plan)

    ingest = apply  # what the adapter calls

    def annotate(self, job_id: str, key: str, value: Any) -> None:
        self.job.annotate(key, value)

    def record_bad_event(self, reason: str, sample: str = "") -> None:
        self.bad.append(reason)

    def add_notice(self, text: str) -> None:
        pass


def feed(events: list[dict], cap: int) -> Job:
    return feed_states(events, cap)[0]


def feed_states(events: list[dict], cap: int) -> tuple[Job, list[JobState]]:
    """The job fed every event, and its state after each one."""
    store = OneJob(cap)
    adapter = EventAdapter(store)  # type: ignore[arg-type]
    states = []
    for event in events:
        adapter(dict(event))
        states.append(store.job.state)
    assert not store.bad
    return store.job, states


def retrying_story(attempts: int, outcome: str, rng: random.Random) -> list[dict]:
    """A task that retried ``attempts - 1`` times, as its worker and producer report it."""
    t = T0
    out = [ev.sent(JOB, t)]
    for attempt in range(attempts):
        host = rng.choice(["w1@a", "w2@b"])
        t += rng.uniform(0.001, 2.0)
        out.append(ev.received(JOB, t, hostname=host, retries=attempt))
        if attempt == attempts - 1 and outcome == "waiting":
            break
        t += rng.uniform(0.001, 2.0)
        out.append(ev.started(JOB, t, hostname=host))
        t += rng.uniform(0.001, 2.0)
        if attempt == attempts - 1:
            break
        out.append(ev.sent(JOB, t, parent_id=JOB, retries=attempt + 1))  # Task.retry re-sends
        out.append(ev.retried(JOB, t + 0.0001, hostname=host, exception=f"Busy({attempt})"))
        t += 0.0001
    if outcome == "succeeded":
        out.append(ev.succeeded(JOB, t + 1, hostname=host))
    elif outcome == "failed":
        out.append(ev.failed(JOB, t + 1, hostname=host))
    return out


def arrival(events: list[dict], how: str, rng: random.Random) -> list[dict]:
    """Delivery order: as sent, fully shuffled, or each event a few places late."""
    events = list(events)
    if how == "shuffled":
        rng.shuffle(events)
    elif how == "nearby":
        keyed = sorted(enumerate(events), key=lambda pair: pair[0] + rng.uniform(0, 12))
        events = [event for _, event in keyed]
    return events


def view(job: Job) -> tuple:
    snapshot = job.snapshot()
    row = job.row()._replace(note=None)
    return (job.state, row, *(getattr(snapshot, attr) for attr in JOB_FIELDS))


@settings(max_examples=150, deadline=None)
@given(
    attempts=st.integers(min_value=1, max_value=150),
    outcome=st.sampled_from(["succeeded", "failed", "running", "waiting"]),
    how=st.sampled_from(["in order", "shuffled", "nearby"]),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_a_capped_history_folds_to_the_same_job_as_the_whole_one(attempts, outcome, how, seed):
    rng = random.Random(seed)
    events = arrival(retrying_story(attempts, outcome, rng), how, rng)
    whole, whole_states = feed_states(events, UNCAPPED)
    capped, capped_states = feed_states(events, MIN_HISTORY_CAP)
    assert capped_states == whole_states  # after every event, not only the last
    assert view(capped) == view(whole)
    snapshot = capped.snapshot()
    kept = sum(1 for t in snapshot.history if not t.marker)
    omitted = snapshot.omitted
    if omitted is None:
        assert kept == len(events)
    else:
        # Every event is either kept, counted as not kept, or counted as late.
        assert kept + omitted.events + omitted.late == len(events)
        assert sum(omitted.by_state.values()) == omitted.events
    if how == "in order":
        assert len(snapshot.history) <= MIN_HISTORY_CAP
        assert snapshot.attempt == attempts


def test_the_first_attempt_a_marker_and_the_latest_attempts_are_kept():
    events = retrying_story(5_000, "running", random.Random(1))
    job = feed(events, 100)
    snapshot = job.snapshot()
    history = snapshot.history
    assert len(history) <= 100
    assert [t.event for t in history[:5]] == [
        "task-sent",
        "task-received",
        "task-started",
        "task-sent",
        "task-retried",
    ]
    # The fourth is the re-send of attempt 2, stamped just before task-retried.
    assert [t.attempt for t in history[:5]] == [1, 1, 1, 2, 1]
    markers = [t for t in history if t.marker]
    assert len(markers) == 1 and history[5].marker
    omitted = snapshot.omitted
    assert omitted.first_attempt == 2
    # The attempts after the marker are numbered on from it, up to the real
    # one, and the first of them is whole: it starts with its sending.
    attempts = {attempt.number: attempt for attempt in snapshot.attempts()}
    first_whole = omitted.last_attempt + 1
    assert [t.event for t in attempts[first_whole].entries] == [
        "task-sent",
        "task-received",
        "task-started",
        "task-retried",
    ]
    assert sorted(attempts)[-(5_000 - first_whole + 1) :] == list(range(first_whole, 5_001))
    assert snapshot.attempt == 5_000 and snapshot.retries == 4_999
    assert job.state is JobState.ACTIVE
    # The last attempt the marker covers may go on after it (its task-retried kept).
    retried = omitted.by_state[JobState.RETRYING]
    assert retried in (omitted.attempts, omitted.attempts - 1)
    assert omitted.start < omitted.end < history[6].timestamp
    # Errors of dropped attempts go too: memory stays flat.
    assert len(snapshot.attempt_errors) < 40


def test_a_late_event_for_the_dropped_stretch_is_counted_and_moves_nothing():
    events = retrying_story(1_000, "succeeded", random.Random(2))
    job = feed(events, 60)
    omitted = job.snapshot().omitted
    middle = (omitted.start + omitted.end) / 2
    before = view(job)
    late = [ev.failed(JOB, middle), ev.started(JOB, middle + 0.0005)]
    adapter = EventAdapter(_Feeding(job))  # type: ignore[arg-type]
    for event in late:
        adapter(event)
    assert view(job) == before
    assert job.state is JobState.COMPLETED
    assert job.snapshot().omitted.late == 2


def test_dump_shows_the_marker_with_its_counts():
    events = retrying_story(500, "failed", random.Random(3))
    job = feed(events, 60)
    history = job_to_dict(job.snapshot())["history"]
    markers = [entry for entry in history if entry["event"] == "not kept"]
    assert len(markers) == 1
    marker = markers[0]["not_kept"]
    assert marker["first_attempt"] == 2
    assert marker["events"] + sum(1 for entry in history if "not_kept" not in entry) == len(events)
    assert marker["by_state"]["retrying"] in (marker["attempts"], marker["attempts"] - 1)


def test_a_history_without_retries_is_never_cut():
    events = [ev.sent(JOB, T0), ev.received(JOB, T0 + 1), ev.started(JOB, T0 + 2)]
    events += [ev.succeeded(JOB, T0 + 3)]
    job = feed(events, MIN_HISTORY_CAP)
    assert job.snapshot().omitted is None
    assert len(job.snapshot().history) == 4


class _Feeding(OneJob):
    def __init__(self, job: Job) -> None:
        self.job = job
        self.bad = []
