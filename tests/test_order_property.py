"""The final job state and history must not depend on the order events arrive in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests import events as ev

T0 = 1_700_000_000.0
OUTCOMES = {
    "succeeded": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "rejected": JobState.FAILED,
    "revoked": JobState.CANCELLED,
    "running": JobState.ACTIVE,
    "waiting": JobState.QUEUED,
}


@st.composite
def job_story(draw, job_id: str):
    """One job's events in the order they really happened, plus its expected state."""
    gaps = st.floats(min_value=0.001, max_value=5.0)
    t = T0 + draw(st.floats(min_value=0, max_value=100))
    out = []
    if draw(st.booleans()):
        out.append(ev.sent(job_id, t))
    workers = st.sampled_from(["w1@a", "w2@b", "w3@c"])
    retries = draw(st.integers(min_value=0, max_value=3))
    for attempt in range(retries + 1):
        host = draw(workers)
        t += draw(gaps)
        out.append(ev.received(job_id, t, hostname=host, retries=attempt))
        if attempt == retries:
            break
        t += draw(gaps)
        out.append(ev.started(job_id, t, hostname=host))
        t += draw(gaps)
        out.append(ev.sent(job_id, t, parent_id=job_id, retries=attempt + 1))  # the re-send
        out.append(ev.retried(job_id, t + 0.0001, hostname=host, exception=f"Boom({attempt})"))
        t += 0.0001
    outcome = draw(st.sampled_from(sorted(OUTCOMES)))
    host = out[-1]["hostname"]
    if outcome not in ("waiting", "revoked") or draw(st.booleans()):
        t += draw(gaps)
        out.append(ev.started(job_id, t, hostname=host))
    t += draw(gaps)
    if outcome == "succeeded":
        out.append(ev.succeeded(job_id, t, hostname=host))
    elif outcome == "failed":
        out.append(ev.failed(job_id, t, hostname=host))
    elif outcome == "rejected":
        out.append(ev.rejected(job_id, t, hostname=host))
    elif outcome == "revoked":
        out.append(ev.revoked(job_id, t, hostname=host))
    expected = OUTCOMES[outcome]
    if outcome == "waiting" and out[-1]["type"] == "task-started":
        expected = JobState.ACTIVE
    return out, expected, retries, host


def replay(events):
    store = JobStore()
    adapter = EventAdapter(store)
    for e in events:
        adapter(dict(e))  # the adapter may mutate what it is given
    return store


def view(store, job_id):
    job = store.get(job_id)
    return (
        job.state,
        job.history,
        job.name,
        job.args,
        job.retries,
        job.worker,
        job.exception,
        job.result,
        job.parent_id,
        job.children,
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_arrival_order_gives_the_same_jobs(data):
    ids = [f"job-{i}" for i in range(data.draw(st.integers(min_value=1, max_value=4)))]
    stories = {job_id: data.draw(job_story(job_id)) for job_id in ids}
    in_order = [e for job_id in ids for e in stories[job_id][0]]
    shuffled = data.draw(st.permutations(in_order))

    expected_store = replay(in_order)
    shuffled_store = replay(shuffled)

    for job_id, (_events, expected_state, retries, last_host) in stories.items():
        assert view(shuffled_store, job_id) == view(expected_store, job_id)
        job = shuffled_store.get(job_id)
        assert job.state is expected_state
        assert job.retries == retries
        assert job.worker == last_host
        timestamps = [t.timestamp for t in job.history]
        assert timestamps == sorted(timestamps)
        assert len(job.history) == len(stories[job_id][0])
    assert shuffled_store.counts() == expected_store.counts()
