"""The workers screen, a worker's detail and the worker controls, driven by a Pilot.

The cluster is a fake ClusterControl: these tests are about what the screens
show and send; tests/test_real_worker_control.py shows real workers obey.
"""

from __future__ import annotations

from textual.widgets import Input

from sluice_tui.actions import ActionsGate, WorkerAction, WorkerCommand, WorkerReply
from sluice_tui.demo.sample import NOW, job_id, sample_store
from sluice_tui.model.worker_info import HeldJob, HeldJobs, TaskLimits, WorkerFigures
from sluice_tui.ui.actions import UIActions
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.screens.action_log import ActionLogScreen
from sluice_tui.ui.screens.job_detail import JobDetailScreen
from sluice_tui.ui.screens.worker_control import WorkerControlScreen
from sluice_tui.ui.screens.worker_detail import WorkerDetailScreen
from sluice_tui.ui.screens.workers import WorkersScreen
from tests.ui_helpers import SIZE, capture_notifications, screen_text, settle

A = WorkerAction
WORKER_A = "worker-a@prod-1"
UNSEEN_JOB = "0f0f0f0f-held-only-by-the-worker"


class FakeControl:
    """Answers like two workers would; records every control it is asked to send."""

    def __init__(self, reply: WorkerReply | None = None) -> None:
        self.sent: list[WorkerCommand] = []
        self.asked: list[list[str] | None] = []
        self.reply = reply

    def worker_figures(self, destination=None):
        self.asked.append(destination)
        figures = [
            WorkerFigures(
                WORKER_A,
                NOW,
                pool="prefork",
                concurrency=4,
                pool_size=4 + sum(c.n or 0 for c in self.sent if c.action is A.POOL_GROW),
                prefetch=16,
                queues=("celery", "reports"),
                registered=("demo.add", "reports.build"),
                limits={"reports.build": TaskLimits(rate_limit="10/m")},
            ),
            WorkerFigures("worker-b@prod-2", NOW, pool="threads", pool_size=8, autoscale=(8, 2)),
        ]
        return [f for f in figures if destination is None or f.hostname in destination]

    def held_jobs(self, hostname):
        jobs = (HeldJob("reserved", UNSEEN_JOB, name="reports.build", args="(7,)"),)
        return HeldJobs(hostname, NOW, jobs if hostname == WORKER_A else ())

    def worker_control(self, command):
        self.sent.append(command)
        if command.action is A.SHUTDOWN:
            return []
        return [self.reply or WorkerReply(command.hostname, True, "pool will grow")]


def make_app(control: FakeControl, read_only: bool = False) -> tuple[SluiceApp, list[str]]:
    store = sample_store()
    gate = ActionsGate(store, control, read_only=read_only, clock=lambda: NOW)
    app = SluiceApp(
        store, actions=UIActions(gate), read_only=read_only, clock=lambda: NOW, tick_seconds=None
    )
    return app, capture_notifications(app)


async def open_workers(pilot) -> None:
    await pilot.press("w")
    await settle(pilot)
    pilot.app.screen.refresh_from_store(changed=True)
    await pilot.pause()


def heartbeat(app, hostname: str, at: float, processed: int = 1200, active: int = 1) -> None:
    data = {"active": active, "processed": processed, "freq": 2.0}
    app.store.apply_worker(hostname, "heartbeat", data, at)


async def test_workers_screen_shows_the_figures_asked_on_opening():
    control = FakeControl()
    app, _ = make_app(control)
    heartbeat(app, "worker-b@prod-2", NOW - 1)  # online: its figures are current
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        assert isinstance(app.screen, WorkersScreen)
        assert control.asked == [None]  # every worker, once, on opening
        text = screen_text(app)
        row = next(line for line in text.splitlines() if WORKER_A in line)
        assert "prefork 4" in row and "16" in row and "celery, reports" in row
        b = next(line for line in text.splitlines() if "worker-b@prod-2" in line)
        assert "threads 8 (2-8)" in b  # autoscaling between 2 and 8
        assert "2 workers replied" in text


async def test_enter_opens_a_worker_with_its_jobs_and_a_job_from_there():
    app, _ = make_app(FakeControl())
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, WorkerDetailScreen)
        assert app.screen.hostname == WORKER_A
        app.screen.refresh_from_store(changed=True)
        await pilot.pause()
        text = screen_text(app)
        assert "prefork: 4 processes now, concurrency 4" in text
        assert "reports.build: rate 10/m" in text
        # The sample's scheduled job on worker-a comes from the store; the
        # reserved one only the worker knows of comes from its own word.
        rows = {line.split()[0]: line for line in text.splitlines() if line.split()[:1]}
        scheduled = job_id(5)
        assert scheduled[:8] in rows["scheduled"] and "due in" in rows["scheduled"]
        assert UNSEEN_JOB[:8] in rows["reserved"] and "worker says" in rows["reserved"]
        await pilot.press("down", "enter")  # reserved first, then scheduled
        await settle(pilot)
        assert isinstance(app.screen, JobDetailScreen)
        assert app.screen.job_id == scheduled


async def test_pool_grow_is_confirmed_sent_to_one_worker_and_logged():
    control = FakeControl()
    app, notes = make_app(control)
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        await pilot.press("plus")
        await settle(pilot)
        assert isinstance(app.screen, WorkerControlScreen)
        assert "Sends: grow the pool by 1 process to worker-a@prod-1" in screen_text(app)
        assert control.sent == []  # nothing before it is confirmed
        await pilot.press("backspace", "2", "enter")
        await settle(pilot)
        assert control.sent == [WorkerCommand(A.POOL_GROW, WORKER_A, n=2)]
        assert any("pool will grow" in n for n in notes), notes
        assert app.store.worker_info.figures(WORKER_A).pool_size == 6  # asked again
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, ActionLogScreen)
        log = screen_text(app)
        assert "pool grow" in log and f"worker {WORKER_A}" in log and "ok" in log


async def test_escape_sends_nothing():
    control = FakeControl()
    app, _ = make_app(control)
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert "10/m" in screen_text(app)  # the limits it has now
        await pilot.press(*"rep", "escape")
        await settle(pilot)
        assert isinstance(app.screen, WorkersScreen) and control.sent == []


async def test_a_bad_rate_is_said_once_and_nothing_is_sent():
    """A trial saw "rate must read like ..." twice in the dialog after enter."""
    control = FakeControl()
    app, _ = make_app(control)
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press(*"reports.build", "tab", *"fast", "enter")
        await settle(pilot)
        text = " ".join(screen_text(app).split())
        assert isinstance(app.screen, WorkerControlScreen) and control.sent == []
        assert text.count("rate must read like") == 1 and "Not sent: see above." in text, text


async def test_a_refusal_is_said_and_logged_as_failed():
    control = FakeControl(WorkerReply(WORKER_A, False, "Autoscale not enabled"))
    app, notes = make_app(control)
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        await pilot.press("a", *"6", "tab", *"2", "enter")
        await settle(pilot)
        assert control.sent == [WorkerCommand(A.AUTOSCALE, WORKER_A, max=6, min=2)]
        assert any("refused by the worker" in n and "Autoscale not enabled" in n for n in notes)
        (record,) = app.actions.gate.log
        assert not record.ok and record.worker == WORKER_A


async def test_shutdown_needs_the_workers_name_typed():
    control = FakeControl()
    app, notes = make_app(control)
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        await pilot.press("S")
        await settle(pilot)
        name = app.screen.query_one("#field-confirm", Input)
        name.value = "worker-a"  # most of it, as typed
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, WorkerControlScreen) and control.sent == []
        assert "type the worker's name" in screen_text(app)
        name.value = WORKER_A
        await pilot.press("enter")
        await settle(pilot)
        assert control.sent == [WorkerCommand(A.SHUTDOWN, WORKER_A)]
        assert any("sends no reply" in n for n in notes), notes


async def test_read_only_refuses_every_control_before_a_dialog():
    control = FakeControl()
    app, notes = make_app(control, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        assert control.asked == []  # inspect publishes: not in read-only
        assert "workers not asked (--read-only)" in screen_text(app)
        assert "shutdown" not in screen_text(app)  # no list of controls that would be refused
        for n, key in enumerate(["plus", "minus", "a", "c", "x", "r", "m", "S"], 1):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, WorkersScreen), key
            assert len([x for x in notes if "read-only mode" in x]) == n, (key, notes)
        assert control.sent == []


async def test_hostnames_and_replies_from_workers_are_shown_inert():
    evil = "evil[bold red]x\x1b]0;owned\x07@host"
    app, _ = make_app(FakeControl())
    app.store.apply_worker(evil, "heartbeat", {"active": 0, "freq": 2.0}, NOW)
    app.store.worker_info.record_figures(
        [WorkerFigures(evil, NOW, pool="pre\x1b[31mfork", queues=("q[/]\x1b[2J",))], at=NOW
    )
    async with app.run_test(size=(200, 50)) as pilot:
        await open_workers(pilot)
        text = screen_text(app)
        assert "evil[bold red]x\\x1b]0;owned\\x07@host" in text
        assert "pre\\x1b[31mfork" in text and "q[/]\\x1b[2J" in text
        assert "\x1b" not in text


async def test_at_80x24_the_essentials_and_the_dialog_fit():
    app, _ = make_app(FakeControl())
    async with app.run_test(size=(80, 24)) as pilot:
        await open_workers(pilot)
        text = screen_text(app)
        header = next(line for line in text.splitlines() if "HOSTNAME" in line)
        for label in ("STATUS", "ACTIVE", "HEARTBEAT", "POOL"):
            assert label in header
        await pilot.press("m")
        await settle(pilot)
        shown = screen_text(app)
        assert "hard (s)" in shown and "Send" in shown and "Cancel" in shown


async def test_a_workers_detail_asks_that_worker_only_on_opening():
    control = FakeControl()
    app, _ = make_app(control)
    heartbeat(app, "worker-b@prod-2", NOW - 1)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(WorkerDetailScreen("worker-b@prod-2"))
        await settle(pilot)
        # Every worker once as the app starts, then this one as its detail opens.
        assert control.asked == [None, ["worker-b@prod-2"]]
        app.screen.refresh_from_store(changed=True)
        await pilot.pause()
        text = screen_text(app)
        assert "threads: 8 processes now" in text and "min 2, max 8" in text


async def test_tasks_per_second_is_steady_at_a_steady_rate_and_beside_its_sparkline():
    """About one task a second, counted by heartbeats 2 s apart: each interval
    reads 0.0, 0.5, 1.5, 0.0...; the column reads 1.0 at every heartbeat."""
    app, _ = make_app(FakeControl())
    host = "steady@host"
    done = [0, 1, 3, 0, 2, 4, 0, 2, 4, 2, 2, 4]  # tasks in each 2 s interval: 24 in 24 s
    processed = 100
    heartbeat(app, host, NOW - 24.5, processed)
    for n, step in enumerate(done, 1):
        processed += step
        heartbeat(app, host, NOW - 24.5 + 2 * n, processed)
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        readings = []
        for n, step in enumerate(done[:3]):  # the pattern goes on
            row = next(line for line in screen_text(app).splitlines() if host in line)
            readings.append(row.split()[5])  # host, status, "2.00s ago", active
            assert any(bar in row for bar in "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588")
            processed += step
            heartbeat(app, host, NOW + 2 * n, processed)
            app.screen.refresh_from_store(changed=True)
            await pilot.pause()
        assert readings == ["1.0", "1.0", "1.0"]


async def test_an_offline_worker_is_not_shown_as_still_running_what_it_said():
    """A trial: the worker answered, ran two jobs, then stopped (Ctrl-C)."""
    app, _ = make_app(FakeControl())
    heartbeat(app, WORKER_A, NOW - 1, active=2)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(WorkerDetailScreen(WORKER_A))
        await settle(pilot)
        app.screen.refresh_from_store(changed=True)
        await pilot.pause()
        text = screen_text(app)
        assert "2 running" in text and "prefork: 4 processes now" in text
        assert UNSEEN_JOB[:8] in text and "worker says" in text
        assert "22:15:20, just now" in text  # what it said, with its age
        app.store.apply_worker(WORKER_A, "offline", {}, NOW - 0.5)
        app.screen.refresh_from_store(changed=True)
        await pilot.pause()
        text = screen_text(app)
        assert "last known at 22:15:19, worker offline: 2 running" in text
        assert "last known at 22:15:20, worker offline" in text  # the figures
        assert "processes now" not in text and "4 processes," in text
        # What it held is gone with it: no job "worker says" runs there now.
        assert UNSEEN_JOB[:8] not in text and "worker says" not in text
        # Nor does the events' scheduled job wait there any more.
        assert "was scheduled  00000005" in text
        await pilot.press("escape")
        await open_workers(pilot)
        row = next(line for line in screen_text(app).splitlines() if WORKER_A in line)
        assert "offline" in row, row
        # Neither its last running count nor its pool, prefetch and queues.
        assert " 2 " not in row and "prefork" not in row and "reports" not in row


class SilentControl(FakeControl):
    """Answered once; then the workers say nothing (busy, or gone)."""

    def worker_figures(self, destination=None):
        figures = super().worker_figures(destination)
        return figures if len(self.asked) == 1 else []

    def held_jobs(self, hostname):
        if len(self.asked) == 1:
            return super().held_jobs(hostname)
        return HeldJobs(hostname, NOW + 30, (), replied=False)


async def test_a_worker_that_did_not_answer_the_last_ask_has_its_figures_marked_old():
    control = SilentControl()
    app, _ = make_app(control)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(WorkerDetailScreen(WORKER_A))  # the app asked first, on starting
        await settle(pilot)
        app.screen.refresh_from_store(changed=True)
        await pilot.pause()
        text = screen_text(app)
        assert "last known at 22:15:20, no answer when asked at 22:15:50" in text
        assert "prefetch" in text and "processes now" not in text
        assert UNSEEN_JOB[:8] not in text


async def test_a_held_job_the_events_saw_finish_is_not_shown_as_held():
    class Control(FakeControl):
        def held_jobs(self, hostname):
            jobs = (HeldJob("active", job_id(1), name="demo.add", started=NOW - 200),)
            return HeldJobs(hostname, NOW - 3, jobs)

    app, _ = make_app(Control())
    assert app.store.rows([job_id(1)])[job_id(1)].state.finished
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(WorkerDetailScreen(WORKER_A))
        await settle(pilot)
        app.screen.refresh_from_store(changed=True)
        await pilot.pause()
        assert job_id(1)[:8] not in screen_text(app)


async def test_jobs_a_worker_said_it_held_a_while_ago_say_when():
    class Control(FakeControl):
        def held_jobs(self, hostname):
            jobs = (HeldJob("reserved", UNSEEN_JOB, name="reports.build", args="(7,)"),)
            return HeldJobs(hostname, NOW - 60, jobs)

    app, _ = make_app(Control())
    heartbeat(app, WORKER_A, NOW - 1)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(WorkerDetailScreen(WORKER_A))
        await settle(pilot)
        app.screen.refresh_from_store(changed=True)
        await pilot.pause()
        row = next(line for line in screen_text(app).splitlines() if UNSEEN_JOB[:8] in line)
        assert "worker said 22:14:20" in row and "worker says" not in row
