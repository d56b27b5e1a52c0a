"""The journal as users meet it: dump --history, collect's refusals, the TUI writing,
following or running without one, and what diagnostics say.

Journals are written the way the receiver writes them (each event message's
JSON bytes to ``Journal.raw``, the event through the adapter into the store),
in ``tmp_path``; nothing touches the real home.  The real worker runs are in
test_journal_real.py.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from celery import Celery

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.cli import DURATION, main
from sluice_tui.export import job_to_dict
from sluice_tui.history import HistoryOptions, HistoryStatus
from sluice_tui.journal import Journal, schema
from sluice_tui.launch import build_app
from sluice_tui.model.store import JobStore
from sluice_tui.ui.screens.diagnostics import render_diagnostics
from tests.cluster import TRANSPORTS, Cluster, event_arrives, require_transport, wait_for
from tests.events import failed, heartbeat, received, retried, sent, started, succeeded
from tests.test_journal_core import fresh_restore
from tests.ui_helpers import SIZE, screen_text, wait_in_app

HOUR = 3600.0


class JournalFeed:
    """A journal written as the receiver writes it: raw message bytes, then the adapter."""

    def __init__(self, path: Path) -> None:
        self.journal = Journal.open(path, mode="write", broker="memory://")
        # The store's clock reads the time the current event was received, as
        # if it ran then (a stream from three days ago was seen three days ago).
        self.now = time.time()
        self.store = JobStore(clock=lambda: self.now)
        self.adapter = EventAdapter(self.store, clock=lambda: self.now)
        self.journal.start_writing(self.store)

    def send(self, *events: dict) -> None:
        for event in events:
            received_at = self.now = event["local_received"]
            wire = {key: value for key, value in event.items() if key != "local_received"}
            self.journal.raw(json.dumps(wire).encode(), received_at)
            self.adapter(dict(event))

    def stop(self) -> None:
        assert self.journal.stop()

    def wait_committed(self, job_id: str) -> None:
        """Until a reader of the file sees ``job_id`` (the writer commits every 0.5 s)."""

        def committed() -> bool:
            reader = Journal.open(self.journal.path, mode="read")
            try:
                store = JobStore()
                reader.restore(store, EventAdapter(store))
                return job_id in store
            finally:
                reader.stop()

        wait_for(committed, 10, f"{job_id} to be committed")


def mixed_stream(now: float, prefix: str = "") -> list[dict]:
    """A success, a failure, a retried job, and a child linked to its parent."""
    t = now - 30
    return [
        sent(f"{prefix}ok", t, name="proj.add"),
        received(f"{prefix}ok", t + 0.1, name="proj.add"),
        started(f"{prefix}ok", t + 0.2),
        succeeded(f"{prefix}ok", t + 0.3),
        sent(f"{prefix}bad", t + 1, name="proj.charge", args="(7,)"),
        received(f"{prefix}bad", t + 1.1, name="proj.charge", args="(7,)"),
        started(f"{prefix}bad", t + 1.2),
        failed(f"{prefix}bad", t + 1.3, exception="ValueError('declined')"),
        received(f"{prefix}again", t + 2, name="proj.flaky"),
        started(f"{prefix}again", t + 2.1),
        retried(f"{prefix}again", t + 2.2),
        received(f"{prefix}again", t + 3, name="proj.flaky", retries=1),
        started(f"{prefix}again", t + 3.1),
        succeeded(f"{prefix}again", t + 3.2),
        received(
            f"{prefix}child",
            t + 4,
            name="proj.add",
            parent_id=f"{prefix}ok",
            root_id=f"{prefix}ok",
        ),
    ]


def printed_jobs(capsys) -> list[dict]:
    out = capsys.readouterr().out
    return json.loads(out)


# -- dump --history -----------------------------------------------------------


def test_dump_from_a_journal_prints_what_a_live_dump_of_the_same_events_would(tmp_path, capsys):
    path = tmp_path / "j.sqlite3"
    feed = JournalFeed(path)
    now = time.time()
    feed.send(*mixed_stream(now))
    feed.stop()
    live = [job_to_dict(job) for job in feed.store.snapshots()]

    assert main(["dump", "--history", str(path)]) == 0
    assert printed_jobs(capsys) == live
    assert {job["id"]: job["children"] for job in live}["ok"] == ["child"]

    assert main(["dump", "--history", str(path), "--state", "failed", "--seconds", "0"]) == 0
    assert printed_jobs(capsys) == [job for job in live if job["state"] == "failed"]


def test_dump_since_keeps_only_the_jobs_seen_that_recently(tmp_path, capsys):
    path = tmp_path / "j.sqlite3"
    now = time.time()
    for stream in (mixed_stream(now - 3 * 24 * HOUR, "old-"), mixed_stream(now, "new-")):
        feed = JournalFeed(path)  # one run three days ago, one now
        feed.send(*stream)
        feed.stop()

    assert main(["dump", "--history", str(path), "--since", "48h"]) == 0
    ids = {job["id"] for job in printed_jobs(capsys)}
    assert ids == {"new-ok", "new-bad", "new-again", "new-child"}
    assert main(["dump", "--history", str(path), "--since", "4d"]) == 0
    assert len(printed_jobs(capsys)) == 8


def test_dump_history_errors_are_one_line_with_status_2(tmp_path, capsys):
    assert main(["dump", "--history", str(tmp_path / "nothing-here.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sluice-tui: ") and "nothing-here.sqlite3" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "nothing-here.sqlite3").exists()  # reading never creates one

    (tmp_path / "junk.sqlite3").write_bytes(b"this is not a database, only words " * 200)
    assert main(["dump", "--history", str(tmp_path / "junk.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sluice-tui: ") and len(err.splitlines()) == 1

    assert main(["dump", "--since", "2h", "--broker", "memory://"]) == 2
    assert "--since reads a journal" in capsys.readouterr().err
    assert main(["dump", "--since", "soon", "--history", "x"]) == 2
    assert "'soon' is not a length of time" in capsys.readouterr().err


def test_lengths_of_time_read_as_people_write_them():
    assert DURATION.convert("48h", None, None) == 48 * HOUR
    assert DURATION.convert("7d", None, None) == 7 * 24 * HOUR
    assert DURATION.convert(" 30m", None, None) == 1800
    assert DURATION.convert("90", None, None) == 90
    assert DURATION.convert("1.5h", None, None) == 1.5 * HOUR


# -- collect ------------------------------------------------------------------


def test_a_second_writer_is_refused_with_the_first_ones_pid(tmp_path, capsys):
    path = tmp_path / "j.sqlite3"
    feed = JournalFeed(path)  # this process writes it, as a collector would
    try:
        assert main(["collect", "--broker", "memory://", "--history", str(path)]) == 2
    finally:
        feed.stop()
    err = capsys.readouterr().err
    assert f"pid {os.getpid()}" in err and str(path) in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert main(["collect", "--broker", "memory://", "--no-history"]) == 2
    assert "--no-history leaves it nothing to do" in capsys.readouterr().err


# -- the TUI ------------------------------------------------------------------


async def test_a_tui_on_a_journal_someone_else_writes_follows_it(tmp_path):
    path = tmp_path / "j.sqlite3"
    feed = JournalFeed(path)
    feed.send(*mixed_stream(time.time()))
    feed.wait_committed("child")
    celery = Celery(broker="memory://", set_as_current=False)
    app = build_app(celery, history=HistoryOptions(path=path))
    try:
        assert "bad" in app.store  # restored before the first event, before the screen
        async with app.run_test(size=SIZE) as pilot:
            await wait_in_app(
                pilot,
                lambda: f"following sluice-tui pid {os.getpid()}" in screen_text(app),
                "the header to say whose journal it follows",
                explain=lambda: screen_text(app),
            )
            now = time.time()
            feed.send(received("later", now, name="proj.add"), started("later", now + 0.1))
            await wait_in_app(
                pilot,
                lambda: app.store.get("later").state.value == "active",
                "a job the writer added after the TUI started",
            )
            await pilot.press("d")
            text = screen_text(app)
            assert str(path) in text.replace("\n", "")
            assert f"following sluice-tui pid {os.getpid()}" in text
            await pilot.press("escape")
            feed.send(heartbeat("w1@host", time.time()))
            await wait_in_app(pilot, lambda: app.store.worker_counts() == (1, 1), "a worker")
            feed.stop()  # the writer goes away: this TUI takes over, listening and writing
            await wait_in_app(
                pilot,
                lambda: any("now listens to the broker" in n for _, n in app.store.notices()),
                "the TUI to say it listens and writes the journal itself",
                explain=lambda: screen_text(app),
            )
            assert app.history.status().mode.startswith("writing (writer process pid")
            await wait_in_app(
                pilot, lambda: event_arrives(celery, app.store, "after"), "its own events"
            )
            await wait_in_app(
                pilot,
                lambda: "following" not in screen_text(app),
                "the header to show its own connection",
                explain=lambda: screen_text(app),
            )
    finally:
        feed.stop()
    store, _ = fresh_restore(path)
    assert {"later", "after"} <= {job.id for job in store.snapshots()}, "both writers' jobs"


async def test_a_follower_that_cannot_write_the_journal_says_the_writer_stopped(
    tmp_path, monkeypatch
):
    """A collector's journal, run as another user: this TUI may read it, not write it."""
    from sluice_tui.journal import JournalError

    def refused(self, store, apply_event):
        raise JournalError(f"cannot write the history journal {self.path}: the path is read-only")

    monkeypatch.setattr(Journal, "become_writer", refused)
    path = tmp_path / "j.sqlite3"
    feed = JournalFeed(path)
    feed.send(heartbeat("w1@host", time.time()))
    app = build_app(
        Celery(broker="memory://", set_as_current=False), history=HistoryOptions(path=path)
    )
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_in_app(pilot, lambda: app.store.worker_counts() == (1, 1), "a worker")
            feed.stop()
            await wait_in_app(
                pilot,
                lambda: "writer stopped" in screen_text(app),
                "the header to say the writer stopped",
                explain=lambda: screen_text(app),
            )
            assert any(f"(pid {os.getpid()}) stopped" in n for _, n in app.store.notices())
            # Nobody listens now: the worker the writer heard is not judged on that silence.
            assert app.store.worker_counts(time.time() + 3600) == (1, 1)
    finally:
        feed.stop()


async def test_without_a_usable_journal_the_tui_says_why_and_keeps_jobs_in_memory(tmp_path):
    (tmp_path / "a-file").write_text("")
    path = tmp_path / "a-file" / "journal.sqlite3"  # its folder is a file: cannot exist
    celery = Celery(broker="memory://", set_as_current=False)
    app = build_app(celery, history=HistoryOptions(path=path))
    async with app.run_test(size=SIZE) as pilot:
        await wait_in_app(pilot, lambda: event_arrives(celery, app.store, "j1"), "an event")
        assert any("History is off" in text for _, text in app.store.notices())
        await pilot.press("d")
        text = screen_text(app)
        assert "off: jobs are kept in memory only" in text


async def test_a_disk_that_fills_up_stops_the_journal_and_the_tui_goes_on(tmp_path, monkeypatch):
    # SQLite's page limit fails a write with SQLITE_FULL, as a full file system does.
    monkeypatch.setattr(schema, "MAX_PAGE_COUNT", 40)
    celery = Celery(broker="memory://", set_as_current=False)
    app = build_app(celery, history=HistoryOptions(path=tmp_path / "j.sqlite3"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_in_app(pilot, lambda: event_arrives(celery, app.store, "first"), "an event")
        with celery.connection_for_write() as conn:
            dispatcher = celery.events.Dispatcher(conn, hostname="w@flood", enabled=True)
            for n in range(400):  # about 2 KB each that does not compress: 40 pages is 160 KB
                args = repr(os.urandom(1000))
                dispatcher.send(type="task-received", uuid=f"job-{n}", name="x", args=args)
            dispatcher.close()
        await wait_in_app(
            pilot,
            lambda: app.history.status().problem is not None,
            "the journal to fill up",
            explain=lambda: f"{app.history.status()}",
        )
        assert "is full" in app.history.status().problem
        notices = [text for _, text in app.store.notices()]
        assert any("no longer being saved" in text and "is full" in text for text in notices)
        await wait_in_app(pilot, lambda: event_arrives(celery, app.store, "after"), "an event")
        await pilot.press("d")
        assert "problem" in screen_text(app)  # diagnostics keep the reason


def test_diagnostics_show_where_the_journal_is_and_what_went_wrong():
    from rich.console import Console

    status = HistoryStatus(
        path="/var/lib/sluice/journal.sqlite3",
        mode="writing",
        size_bytes=1_500_000,
        last_write=1_700_000_000.0,
        problem="the disk is full: writing stopped",
        restored_jobs=12_345,
        restored_events=50_000,
        restore_seconds=0.25,
    )
    console = Console(width=120, record=True)
    console.print(render_diagnostics(JobStore(), status))
    text = console.export_text()
    assert "/var/lib/sluice/journal.sqlite3" in text and "writing" in text
    assert "1.5 MB" in text and "12,345 jobs (50,000 events replayed)" in text
    assert "the disk is full: writing stopped" in text


# -- the receiver's raw sink ----------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_receiver_hands_each_message_to_the_raw_sink_as_received(transport, tmp_path):
    require_transport(transport)
    cluster = Cluster(transport, tmp_path)
    store = JobStore()
    sink = SimpleNamespace(inbox=[])  # as the journal: each body, then its time
    receiver = ReceiverThread(cluster.app, store, raw_sink=sink, broadcasts=False)
    receiver.start()
    try:
        wait_for(lambda: store.status.state == "connected", 10, "connection")
        before = time.time()
        # Redis subscribes on the first poll after "connected": send until one arrives.
        wait_for(lambda: event_arrives(cluster.app, store, "raw-1"), 20, "the event")
    finally:
        receiver.stop()
        cluster.close()
    messages = list(zip(sink.inbox[0::2], sink.inbox[1::2], strict=True))
    bodies = [(json.loads(body), at) for body, at in messages if isinstance(body, bytes)]
    assert len(bodies) == len(messages) and all(isinstance(at, float) for _, at in messages)
    events = [
        (event, at)
        for body, at in bodies
        for event in (body if isinstance(body, list) else [body])
        if event.get("uuid") == "raw-1"
    ]
    assert events
    event, at = events[0]
    assert event["type"] == "task-started" and "local_received" not in event
    assert before <= at <= time.time()


def test_a_big_journal_says_it_is_loading_before_the_screen_opens(tmp_path, capsys):
    from sluice_tui import history

    path = tmp_path / "big.sqlite3"
    path.write_bytes(b"\0" * history.SLOW_RESTORE_BYTES)
    history._say_when_loading_takes_a_while(path)
    assert f"loading history from {path} (2.0 MB)" in capsys.readouterr().err
    history._say_when_loading_takes_a_while(tmp_path / "none-yet.sqlite3")
    assert capsys.readouterr().err == ""
