"""The history journal on its own: what a restart gives back, retention, the file's guard rails.

Events go through the real adapter and store, fed the way the receiver feeds
them (the message bytes to the journal first, then the decoded events); the
journal writes a real SQLite file under tmp_path.
"""

from __future__ import annotations

import ctypes
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sluice_tui.celery_adapter import resync as resync_steps
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.journal import (
    Journal,
    JournalBusy,
    JournalError,
    Retention,
    default_path,
    records,
    schema,
    writer,
)
from sluice_tui.model.job import NO_FIELDS, Field, FieldPlan
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from tests import events as ev
from tests.cluster import wait_for

# The first schema, as released: a file made by it must open for ever.
SCHEMA_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE batches (id INTEGER PRIMARY KEY, first REAL NOT NULL, last REAL NOT NULL,"
    " count INTEGER NOT NULL, received BLOB NOT NULL, sizes BLOB NOT NULL, body BLOB NOT NULL,"
    " workers BLOB)",
    "CREATE INDEX batches_by_last ON batches (last)",
    "CREATE TABLE job_changes (batch INTEGER NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL,"
    " name TEXT, first_seen REAL NOT NULL, PRIMARY KEY (batch, id)) WITHOUT ROWID",
)


class Monitor:
    """A store, its adapter and a journal, fed as the receiver feeds them."""

    def __init__(
        self, path: Path, retention: Retention | None = None, max_jobs: int | None = None
    ) -> None:
        self.store = JobStore() if max_jobs is None else JobStore(max_jobs=max_jobs)
        self.adapter = EventAdapter(self.store)
        self.journal = Journal.open(
            path, mode="write", broker="redis://h:6379/0", retention=retention or Retention()
        )
        self.restored = self.journal.restore(self.store, self.adapter)
        self.journal.start_writing(self.store)

    def receive(self, message, received: float | None = None) -> None:
        """One broker message: an event, or a list of them (Celery batches events)."""
        body = json.dumps(message).encode()
        received = time.time() if received is None else received
        self.journal.raw(body, received)
        decoded = json.loads(body)
        for event in decoded if isinstance(decoded, list) else [decoded]:
            if isinstance(event, dict):
                event["local_received"] = received
                self.adapter(event)
            else:
                self.store.record_bad_event("malformed event message", repr(event))


def writing_journal(path: Path) -> tuple[Journal, EventAdapter]:
    """A journal written as the monitor writes it, over a store that evicts nothing."""
    journal = Journal.open(path, mode="write")
    store = JobStore(max_jobs=10**9)
    adapter = EventAdapter(store)
    journal.restore(store, adapter)
    journal.start_writing(store)
    return journal, adapter


def receive(journal: Journal, adapter: EventAdapter, bodies: list[bytes]) -> None:
    """Message bytes as the receiver hands them on: to the journal, then the store."""
    for body in bodies:
        received = time.time()
        journal.raw(body, received)
        event = json.loads(body)
        event["local_received"] = received
        adapter(event)


def fresh_restore(path: Path, **choose) -> tuple[JobStore, object]:
    store = JobStore()
    journal = Journal.open(path, mode="read")
    try:
        restored = journal.restore(store, EventAdapter(store), **choose)
    finally:
        assert journal.stop()
    return store, restored


def committed_jobs(path: Path) -> int:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(DISTINCT id) FROM job_changes").fetchone()[0]


def mixed_workload(m: Monitor) -> dict[str, str]:
    """Every kind of change a user can see, events and the monitor's own; the ids by role."""
    t = time.time() - 60
    ids = {
        role: f"{role}-0000-4000-8000-{n:012d}"
        for n, role in enumerate(
            [
                "done",
                "retried",
                "revoked",
                "rejected",
                "progress",
                "child",
                "later",
                "batched",
                "lost",
                "resynced",
                "backend",
            ]
        )
    }
    m.receive({**ev.heartbeat("w1@host", t), "processed": 3})
    m.receive({**ev.heartbeat("w2@host", t), "type": "worker-online"})
    for role in ("done", "retried", "revoked", "rejected", "progress", "lost", "resynced"):
        m.receive(ev.sent(ids[role], t, name=f"proj.{role}", args="(1, 'x')"))
        m.receive(ev.received(ids[role], t + 0.1, name=f"proj.{role}", args="(1, 'x')"))
    m.receive(ev.started(ids["done"], t + 0.2))
    m.receive(ev.succeeded(ids["done"], t + 0.3))
    m.receive(ev.sent(ids["child"], t + 0.31, parent_id=ids["done"], root_id=ids["done"]))
    m.receive(ev.started(ids["retried"], t + 0.2))
    m.receive(ev.retried(ids["retried"], t + 0.3))
    m.receive(ev.received(ids["retried"], t + 0.4, retries=1))
    m.receive(ev.started(ids["retried"], t + 0.5))
    m.receive(ev.failed(ids["retried"], t + 0.6, exception="KeyError('k')"))
    m.receive(ev.started(ids["revoked"], t + 0.2))
    m.receive(ev.revoked(ids["revoked"], t + 0.3, terminated=True))
    m.receive(ev.rejected(ids["rejected"], t + 0.3))
    m.receive(ev.started(ids["progress"], t + 0.2))
    m.receive(ev.event("task-progress", ids["progress"], t + 0.25, done=40, of=100))
    m.receive(ev.received(ids["later"], t + 1, eta="2999-01-01T00:00:00+00:00"))
    m.receive([ev.sent(ids["batched"], t + 1.1), ev.received(ids["batched"], t + 1.2), 42])
    m.receive(ev.started(ids["lost"], t + 0.2, hostname="w2@host"))
    m.receive({**ev.heartbeat("w1@host", t + 2), "processed": 9})
    # The monitor's own changes: a retry it sent, a resync, a lost worker.
    new = "retry-of-failed-0000-000000000001"
    m.store.record_action(ids["retried"], "retry sent", {"retried_as": new}, at=t + 3)
    m.store.record_action(
        new,
        "sent as a retry",
        {"retry_of": ids["retried"]},
        create=True,
        name="proj.retried",
        at=t + 3,
        precedes=[JobState.QUEUED],
    )
    m.store.resync(
        ids["resynced"],
        resync_steps.RUNNING,
        t + 4,
        "w1@host",
        {
            "name": "proj.resynced",
            "args": ("tuple", 1),
            "hostname": "w1@host",
            "acknowledged": True,
        },
        FieldPlan.of((), identity=(Field("args", "args"),), sets_worker=True),
    )
    outcome = FieldPlan.of((Field("exception", "exception"), Field("traceback", "traceback")))
    m.store.resync(
        ids["backend"],
        resync_steps.FROM_BACKEND["FAILURE"],
        t + 4,
        None,
        {"exception": "OSError()", "traceback": "Traceback..."},
        outcome,
    )
    m.store.resync(ids["revoked"], resync_steps.REVOKED, t + 4, "w1@host", {}, NO_FIELDS)
    lost = m.store.sweep_workers(time.time() + 3600, t)
    assert lost.get("w2@host") == 1, "the job running on the silent worker is marked lost"
    return ids


# The journal keeps receive times in whole microseconds, and dates a job the
# monitor made itself (a retry sent, a resync) by when it noted it, a moment
# before the live store made the job.
SEEN_SLACK = 0.001


def same_job(now: Any, was: Any) -> bool:
    """Snapshots (or rows) alike in all but when their job was first seen, which is close."""
    if now is None or was is None:
        return now is was
    return abs(now.first_seen - was.first_seen) < SEEN_SLACK and _undated(now) == _undated(was)


def _undated(item: Any) -> Any:
    return (
        item._replace(first_seen=0.0) if isinstance(item, tuple) else replace(item, first_seen=0.0)
    )


def same_jobs(restored: JobStore, live: JobStore) -> bool:
    now, was = restored.snapshots(), live.snapshots()
    return len(now) == len(was) and all(map(same_job, now, was))


def test_a_restart_gives_back_every_job_as_the_user_saw_it(tmp_path):
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    assert m.restored.jobs == 0 and m.restored.last_write is None
    ids = mixed_workload(m)
    assert m.journal.stop()
    assert m.journal.problem is None

    store, restored = fresh_restore(path)
    before = {s.id: s for s in m.store.snapshots()}
    after = {s.id: s for s in store.snapshots()}
    assert list(after) == list(before), "same jobs, in the order they came"
    assert restored.jobs == len(before) and restored.last_write is not None
    for job_id, was in before.items():
        assert same_job(after[job_id], was), job_id  # history, fields, links: all of it
    assert all(map(same_job, store.rows(before).values(), m.store.rows(before).values()))
    assert store.get(ids["done"]).children == (ids["child"],)
    assert any(t.progress for t in store.get(ids["progress"]).history)
    assert store.get(ids["lost"]).extra["worker_lost"] == "w2@host"
    assert store.counts() == m.store.counts()
    assert store.stats().bad_by_reason == m.store.stats().bad_by_reason
    workers_then = {w.hostname: w for w in m.store.workers()}
    workers_now = {w.hostname: w for w in store.workers()}
    assert workers_now.keys() == workers_then.keys()
    for host, w in workers_then.items():
        assert workers_now[host].processed == w.processed
        assert workers_now[host].last_heartbeat == pytest.approx(w.last_heartbeat, abs=1e-5)
        assert workers_now[host].online == w.online


def test_an_sqlite_without_json_functions_writes_the_same_journal(tmp_path, monkeypatch):
    """Before 3.38 SQLite's JSON functions were a build option: rows go one by one then."""
    monkeypatch.setattr(writer, "has_json", lambda conn: False)
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    mixed_workload(m)
    assert m.journal.stop() and m.journal.problem is None
    store, _ = fresh_restore(path)
    assert same_jobs(store, m.store)


def test_restore_chooses_the_newest_jobs_and_filters_by_state_and_age(tmp_path):
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    t = time.time()
    first = [f"old-{n}" for n in range(5)]
    for job_id in first:
        m.receive(ev.received(job_id, t))
        m.receive(ev.failed(job_id, t + 0.1))
    wait_for(lambda: committed_jobs(path) == 5, 10, "the first jobs committed")
    split = time.time()
    for n in range(5):
        m.receive(ev.received(f"new-{n}", t + 1))
        m.receive(ev.succeeded(f"new-{n}", t + 1.1))
    assert m.journal.stop()

    small = JobStore(max_jobs=5)
    journal = Journal.open(path, mode="read")
    journal.restore(small, EventAdapter(small))
    journal.stop()
    assert sorted(s.id for s in small.snapshots()) == [f"new-{n}" for n in range(5)]

    failed, _ = fresh_restore(path, states=[JobState.FAILED])
    assert sorted(s.id for s in failed.snapshots()) == first
    recent, _ = fresh_restore(path, since=split)
    assert {s.state for s in recent.snapshots()} == {JobState.COMPLETED}


def test_a_restore_by_id_prefix_loads_only_the_jobs_it_may_name(tmp_path):
    """What retry and revoke ask of a journal that may hold a million jobs."""
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    t = time.time()
    for n, job_id in enumerate(["ab12-one", "ab12-two", "cd34-three"]):
        m.receive(ev.received(job_id, t + n, name="proj.add"))
        m.receive(ev.succeeded(job_id, t + n + 0.5))
    assert m.journal.stop()
    store, _ = fresh_restore(path, prefix="ab12")
    assert sorted(s.id for s in store.snapshots()) == ["ab12-one", "ab12-two"]
    assert store.get("ab12-two").history == m.store.get("ab12-two").history
    store, _ = fresh_restore(path, prefix="zz")
    assert store.snapshots() == []


def test_an_event_cannot_pass_itself_off_as_the_monitors_own_record(tmp_path):
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    m.receive(ev.received("victim", time.time()))
    # Shaped like a note, but it came from the broker.
    m.receive(
        {
            "kind": "action",
            "id": "victim",
            "event": "retry sent",
            "details": {},
            "create": True,
            "name": "x",
            "at": 1.0,
            "precedes": [],
        }
    )
    assert m.journal.stop()
    store, _ = fresh_restore(path)
    assert [t.event for t in store.get("victim").history] == ["task-received"]
    assert store.stats().bad_by_reason == m.store.stats().bad_by_reason


def test_a_restore_skips_old_heartbeats_but_never_a_job_that_mentions_workers(tmp_path):
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    long_ago = time.time() - 3600
    # An hour ago: a worker that has been gone since, and a job whose text
    # looks like a worker event.
    m.receive({**ev.heartbeat("gone@host", long_ago), "type": "worker-online"}, long_ago)
    m.receive(
        ev.received(
            "mentions", long_ago, args='("worker-heartbeat",)', kwargs='{"type": "worker-x"}'
        ),
        long_ago,
    )
    wait_for(lambda: _has_job(path, "mentions"), 10, "the old batch committed")
    m.receive({**ev.heartbeat("alive@host", time.time()), "processed": 5})
    assert m.journal.stop()
    store, _ = fresh_restore(path)
    assert [w.hostname for w in store.workers()] == ["alive@host"]
    assert store.get("mentions").args == '("worker-heartbeat",)'
    assert store.get("mentions").state is JobState.QUEUED


def test_a_batch_with_a_message_that_is_not_json_loses_only_that_message():
    items = [
        (b'{"type": "task-started", "uuid": "a"}', 10.0),
        (b"{not json", 10.5),
        (records.encode_note("annotate", {"id": "a", "key": "k", "value": 1}), 11.0),
    ]
    packed = records.pack(items)
    batch = records.unpack(packed.first, packed.received, packed.sizes, packed.body)
    assert batch.records[0] == {"type": "task-started", "uuid": "a"}
    assert batch.records[1] is None and [i for i, _ in batch.undecodable] == [1]
    assert batch.notes == {2} and batch.records[2]["kind"] == "annotate"
    assert batch.times == pytest.approx([10.0, 10.5, 11.0], abs=1e-6)


def test_a_damaged_batch_costs_only_its_own_events(tmp_path):
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    t = time.time()
    for n in range(3):
        m.receive(ev.received(f"job-{n}", t))
        wait_for(lambda n=n: _has_job(path, f"job-{n}"), 10, f"job {n} committed")
    assert m.journal.stop()
    with sqlite3.connect(path) as conn:
        victim = conn.execute("SELECT min(id) + 1 FROM batches").fetchone()[0]
        conn.execute("UPDATE batches SET body = ? WHERE id = ?", (b"bit rot", victim))
    store, _ = fresh_restore(path)
    assert sorted(s.id for s in store.snapshots()) == ["job-0", "job-2"]
    assert store.stats().bad_by_reason == {"damaged journal batch": 1}


def test_following_a_journal_another_writer_fills(tmp_path):
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    t = time.time()
    m.receive(ev.received("before", t))
    wait_for(lambda: committed_jobs(path) == 1, 10, "the first job committed")

    reader = Journal.open_for_monitor(path, "redis://h:6379/0")
    assert reader.mode == "read" and reader.writer_pid == os.getpid()
    follower = JobStore()
    adapter = EventAdapter(follower)
    assert reader.restore(follower, adapter).jobs == 1
    reader.follow(follower, adapter)
    m.receive(ev.started("before", t + 1))
    m.receive(ev.received("after", t + 2))
    m.store.record_action("after", "revoke sent", {"revoke_requested": True}, at=t + 3)
    wait_for(
        lambda: (follower.get("after").extra or {}).get("revoke_requested"),
        10,
        "the follower to catch up",
    )
    assert follower.get("before").state is JobState.ACTIVE
    assert reader.last_write is not None
    assert reader.stop() and m.journal.stop()


# -- retention ------------------------------------------------------------------------


def test_retention_drops_jobs_past_the_count_with_the_batches_only_they_needed(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(writer, "PRUNE_INTERVAL", 0.1)
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path, Retention(max_jobs=4))
    t = time.time()
    for group in range(3):
        for n in range(4):
            job_id = f"g{group}-{n}"
            m.receive(ev.received(job_id, t + group))
            m.receive(ev.succeeded(job_id, t + group + 0.1))
        wait_for(lambda g=group: _has_job(path, f"g{g}-3"), 10, f"group {group} committed")
    wait_for(lambda: committed_jobs(path) == 4, 10, "the count limit to prune the journal")
    assert m.journal.stop()
    store, _ = fresh_restore(path)
    assert sorted(s.id for s in store.snapshots()) == [f"g2-{n}" for n in range(4)]
    assert all(len(s.history) == 2 for s in store.snapshots()), "whole histories kept"
    assert "g0-0" not in _ids_in_batches(path), "the batches only dropped jobs needed went too"


def _ids_in_batches(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT first, received, sizes, body FROM batches").fetchall()
    return {event.get("uuid") for row in rows for event in records.unpack(*row).records}


def test_retention_drops_jobs_older_than_the_age_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(writer, "PRUNE_INTERVAL", 0.1)
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path, Retention(max_age=1.0))
    t = time.time()
    m.receive(ev.received("old", t))
    wait_for(lambda: _has_job(path, "old"), 10, "the old job committed")
    # Kept while younger than the limit, then dropped, batches and all.
    wait_for(lambda: not _has_job(path, "old"), 10, "the old job to age out")
    m.receive(ev.received("new", time.time()))
    wait_for(lambda: _has_job(path, "new"), 10, "the new job committed")
    assert m.journal.stop()
    store, _ = fresh_restore(path)
    assert [s.id for s in store.snapshots()] == ["new"]
    assert "old" not in _ids_in_batches(path)


def _has_job(path: Path, job_id: str) -> bool:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT 1 FROM job_changes WHERE id = ?", (job_id,)).fetchone()
        return row is not None


# -- the file ---------------------------------------------------------------------------


def test_a_file_made_by_the_first_schema_opens_and_restores(tmp_path):
    path = tmp_path / "v1.sqlite3"
    body = b'{"type": "task-received", "uuid": "v1-job", "name": "proj.old", "timestamp": 5.0}'
    packed = records.pack([(body, 100.0)])
    conn = sqlite3.connect(path)
    for statement in SCHEMA_V1:
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)", [("format", "sluice-tui journal"), ("last_write", 100.0)]
    )
    conn.execute("INSERT INTO batches VALUES (1, ?, ?, ?, ?, ?, ?, ?)", packed.row())
    conn.execute("INSERT INTO job_changes VALUES (1, 'v1-job', 'queued', 'proj.old', 100.0)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store, restored = fresh_restore(path)
    assert store.get("v1-job").name == "proj.old" and store.get("v1-job").state is JobState.QUEUED
    assert restored.last_write == 100.0
    journal = Journal.open(path, mode="write")  # and it can be written on
    assert journal.stop()


def test_a_journal_from_a_newer_sluice_tui_is_refused_clearly(tmp_path):
    path = tmp_path / "future.sqlite3"
    Journal.open(path, mode="write").stop()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    for mode in ("write", "read"):
        with pytest.raises(JournalError, match="newer sluice-tui"):
            Journal.open(path, mode=mode)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no sluice-tui history"),
        (b"this is a text file, not a database\n" * 200, "not a sluice-tui history journal"),
    ],
)
def test_an_empty_or_foreign_file_gives_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "odd.sqlite3"
    path.write_bytes(content)
    with pytest.raises(JournalError, match=message) as raised:
        Journal.open(path, mode="read")
    assert "\n" not in str(raised.value)
    if content:
        with pytest.raises(JournalError, match=message):
            Journal.open(path, mode="write")
        assert path.read_bytes() == content, "nothing written over a file that is not ours"


def test_another_applications_database_is_not_taken_over(tmp_path):
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    with pytest.raises(JournalError, match="not a sluice-tui history journal"):
        Journal.open(path, mode="write")


def test_a_second_writer_is_told_who_writes(tmp_path):
    path = tmp_path / "journal.sqlite3"
    first = Journal.open(path, mode="write")
    with pytest.raises(JournalBusy, match=f"being written by pid {os.getpid()}"):
        Journal.open(path, mode="write")
    assert first.stop()
    Journal.open(path, mode="write").stop()  # the lock went with the first writer


def test_a_full_disk_stops_the_journal_not_the_monitor(tmp_path, monkeypatch):
    # SQLite's page limit gives SQLITE_FULL exactly where a full file system would.
    monkeypatch.setattr(schema, "MAX_PAGE_COUNT", 40)
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    t = time.time()
    n = 0
    while m.journal.problem is None:
        assert n < 200_000, "the journal never filled up"
        m.receive(ev.received(f"job-{n}", t, args=repr(os.urandom(64))))
        n += 1
        if n % 500 == 0:
            time.sleep(0.05)  # let the writer take a batch
    assert "is full" in m.journal.problem
    notices = [text for _, text in m.store.notices()]
    assert any("no longer being saved" in text and "is full" in text for text in notices)
    m.receive(ev.received("after-the-disk-filled", t))  # the monitor goes on in memory
    assert "after-the-disk-filled" in m.store
    assert m.journal.stop()


def test_a_disk_too_full_to_start_a_journal_says_so_at_open(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "MAX_PAGE_COUNT", 2)
    with pytest.raises(JournalError, match="is full"):
        Journal.open(tmp_path / "journal.sqlite3", mode="write")


def test_a_read_only_directory_gives_the_message(tmp_path):
    """As a user who may not write there.  Root ignores permissions, so as root the
    process drops the capability to override them first (as root without it, the
    owner's r-x applies)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sluice_tui.journal import Journal, JournalError\n"
        "try:\n"
        f"    Journal.open(Path({str(folder / 'sub' / 'j.sqlite3')!r}), mode='write')\n"
        "except JournalError as exc:\n"
        "    print(exc)\n"
        "    sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
        preexec_fn=_without_root_powers if os.geteuid() == 0 else None,
    )
    folder.chmod(0o755)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "read-only" in done.stdout and "Traceback" not in done.stdout + done.stderr


def _without_root_powers() -> None:
    """Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from what the next exec may hold."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2):
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_the_default_file_is_per_broker_under_the_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    a = default_path("redis://:**@h:6379/0")
    assert a.parent == tmp_path / "sluice-tui" and a.name.startswith("journal-")
    assert a != default_path("redis://:**@h:6379/1")
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    assert default_path("x").parent == Path.home() / ".local" / "state" / "sluice-tui"


@pytest.mark.bench
def test_a_job_with_a_four_event_history_takes_under_400_bytes(tmp_path):
    """The issue's size target, with realistic events (bench.journal reports it at 50k jobs)."""
    from bench.journal import write_journal

    path = tmp_path / "journal.sqlite3"
    jobs, events = write_journal(path, 5_000, retry_share=0.0)
    assert events == 4 * jobs
    assert path.stat().st_size / jobs <= 400


def test_the_write_ahead_log_stays_small_while_writing(tmp_path):
    """Diagnostics show the file with its log: a log of 4 MB beside a 0.2 MB file alarmed a user."""
    from bench.journal import message_bodies

    journal, adapter = writing_journal(tmp_path / "journal.sqlite3")
    log = Path(f"{journal.path}-wal")
    bodies = message_bodies(120_000)
    biggest = 0
    try:
        for start in range(0, len(bodies), 5_000):
            committed = journal.last_write
            receive(journal, adapter, bodies[start : start + 5_000])
            wait_for(lambda c=committed: journal.last_write != c, 10, "the batch to be committed")
            biggest = max(biggest, log.stat().st_size)
        assert journal.size_bytes() > 5 * 2**20  # more than SQLite's default log limit
        assert biggest < 2 * 2**20
    finally:
        assert journal.stop(30.0)


def test_the_writer_keeps_committing_through_a_flood(tmp_path):
    """A flood must not leave the journal behind: a kill -9 in one would lose all of it.

    The receiver here never lets go of the GIL (no socket to wait on), the
    hardest case for a writer that needs turns of it: a batch's job rows once
    took a switch interval each, and 200 000 events got two commits.
    """
    from bench.journal import message_bodies

    journal, adapter = writing_journal(tmp_path / "journal.sqlite3")
    bodies = message_bodies(200_000)
    commits = set()
    try:
        for start in range(0, len(bodies), 1_000):
            receive(journal, adapter, bodies[start : start + 1_000])
            commits.add(journal.last_write)
            if len(commits) > 6:
                break
        assert len(commits) > 6, f"{len(commits) - 1} commits in a flood of {start + 1_000} events"
        assert committed_jobs(journal.path) > 0
    finally:
        assert journal.stop(60.0)


def test_a_job_id_that_is_not_valid_text_costs_only_that_job(tmp_path):
    """JSON may carry a lone surrogate ("\\ud800"); SQLite would store it as invalid
    UTF-8, and every later restore of the file would fail (found in a review)."""
    path = tmp_path / "journal.sqlite3"
    m = Monitor(path)
    t = time.time()
    m.receive(ev.received("job-\ud800", t))
    m.receive(ev.received("fine", t + 0.1))
    wait_for(lambda: _has_job(path, "fine"), 10, "the batch committed")
    assert m.journal.stop()
    store, _ = fresh_restore(path)
    assert "fine" in store  # the file reads; that job itself may come back from the tail
    assert any("not valid text" in reason for reason in m.store.stats().bad_by_reason)


def test_a_file_where_the_journals_folder_should_be_is_named(tmp_path):
    """`--history env.sh/j.sqlite3` said "[Errno 17] File exists" (a trial)."""
    (tmp_path / "env.sh").write_text("export X=1\n")
    with pytest.raises(JournalError, match=r"folder .*/env\.sh is a file"):
        Journal.open(tmp_path / "env.sh" / "j.sqlite3", mode="write")
    assert (tmp_path / "env.sh").read_text() == "export X=1\n"
