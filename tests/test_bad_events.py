"""Malformed events are counted and skipped; they never crash or corrupt the store."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.job import MAX_TEXT
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.terminal_text import inert
from tests import events as ev

T = 1_700_000_000.0


def test_task_event_without_uuid_is_counted_and_skipped(feed, store):
    feed(ev.event("task-started", None, T))
    feed(ev.event("task-started", "", T))
    feed(ev.event("task-started", 12345, T))
    assert len(store) == 0
    assert store.stats().bad_events == 3
    assert store.stats().bad_by_reason == {"task event without a valid uuid": 3}


def test_unknown_types_and_non_mappings_are_counted(feed, store):
    feed(ev.event("job-exploded", "a", T))  # task-* types are a task's own events
    feed(["not", "a", "dict"])
    feed("garbage")
    feed({"no": "type"})
    stats = store.stats()
    assert stats.bad_events == 4
    assert len(store) == 0
    assert store.bad_event_samples()[-1][1] == "unknown event type"


def test_bad_timestamp_keeps_the_event_at_its_arrival_time(feed, store):
    e = ev.started("a", T)
    e["timestamp"] = "yesterday"
    feed(e)
    job = store.get("a")
    assert job.state is JobState.ACTIVE
    assert job.history[0].timestamp == e["local_received"]
    assert store.stats().bad_by_reason == {"missing or invalid timestamp": 1}


def test_wrong_field_types_are_coerced_or_dropped(feed, store):
    feed(ev.received("a", T, args=["a", "list"], retries="three", name=42))
    feed(ev.succeeded("a", T + 1, runtime="slow", result={"a": 1}))
    job = store.get("a")
    assert job.state is JobState.COMPLETED
    assert job.args == "['a', 'list']" and job.name == "42"
    assert job.retries is None and job.runtime is None
    assert job.result == "{'a': 1}"


def test_huge_strings_are_cut(feed, store):
    feed(ev.received("a", T, args="x" * (5 * MAX_TEXT)))
    args = store.get("a").args
    assert len(args) < MAX_TEXT + 100
    assert "cut at" in args


# Strings as JSON can carry them: lone surrogates (from \ud800 escapes) and
# terminal escapes.  Bytes arrive from non-JSON serializers.
NASTY_TEXT = st.text(
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.sampled_from("\x1b\x07\x9b\n"),
    max_size=8,
)
FAR_TIMES = st.sampled_from([-1e300, -1e12, 0.0, 1e12, 1e300, 2**63, -(2**63)])
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=50)
    | NASTY_TEXT
    | st.binary(max_size=10)
    | FAR_TIMES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = [
    "timestamp",
    "hostname",
    "name",
    "args",
    "kwargs",
    "retries",
    "eta",
    "result",
    "runtime",
    "exception",
    "traceback",
    "parent_id",
    "freq",
    "loadavg",
    "active",
    "local_received",
    "terminated",
]
TYPES = [
    "task-sent",
    "task-received",
    "task-started",
    "task-succeeded",
    "task-failed",
    "task-retried",
    "task-revoked",
    "task-rejected",
    "task-cancelled",
    "worker-heartbeat",
    "worker-online",
    "worker-offline",
    "bogus",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(TYPES) | JSONISH,
                "uuid": st.sampled_from(["a", "b"]) | JSONISH,
            },
            optional={
                **{k: JSONISH | st.floats(min_value=-1e12, max_value=1e12) for k in KEYS},
                "eta": JSONISH | st.sampled_from(["9999-12-31T23:59:59", "0001-01-01", "nope"]),
            },
        )
        | JSONISH,
        max_size=20,
    )
)
def test_fuzzed_events_never_raise_and_keep_counts_right(events):
    store = JobStore()
    adapter = EventAdapter(store)
    for e in events:
        adapter(e)
    stats = store.stats()
    # Every event was either taken in or counted as bad (or both: kept, flagged).
    assert stats.events + stats.bad_events >= len(events)
    counts = store.counts()
    assert sum(counts.values()) == len(store)
    for job in store.snapshots():
        assert counts[job.state] >= 1
        assert job.name is None or isinstance(job.name, str)
        for value in (job.name, job.args, job.kwargs, job.result, job.worker, job.eta):
            shown = inert(value)
            shown.encode("utf-8")  # a lone surrogate here would crash the screen
            assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in shown)
    store.workers()
    store.sweep_workers(2e300, 0.0)
    assert not any(reason.startswith("internal error") for reason in stats.bad_by_reason)


def test_lone_surrogates_from_json_are_kept_and_shown_safely(feed, store):
    nasty = json.loads('"bad\\ud800name\\udfff"')  # legal JSON, unencodable text
    feed(ev.received("a", T, name=nasty, args=f"('{nasty}',)", hostname=nasty))
    job = store.get("a")
    assert job.name == nasty  # kept as sent
    for value in (job.name, job.args, job.worker):
        assert "\\ud800" in inert(value)
        inert(value).encode("utf-8")
