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


async def test_workers_screen_shows_the_figures_asked_on_opening():
    control = FakeControl()
    app, _ = make_app(control)
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
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(WorkerDetailScreen("worker-b@prod-2"))
        await settle(pilot)
        # Every worker once as the app starts, then this one as its detail opens.
        assert control.asked == [None, ["worker-b@prod-2"]]
        app.screen.refresh_from_store(changed=True)
        await pilot.pause()
        text = screen_text(app)
        assert "threads: 8 processes now" in text and "min 2, max 8" in text


async def test_tasks_per_second_and_its_sparkline_come_from_heartbeats():
    app, _ = make_app(FakeControl())
    for n, processed in enumerate((1300, 1310, 1330, 1331)):  # after the sample's last
        data = {"active": 1, "processed": processed, "freq": 2.0}
        app.store.apply_worker(WORKER_A, "heartbeat", data, NOW - 0.8 + 0.2 * n)
    async with app.run_test(size=SIZE) as pilot:
        await open_workers(pilot)
        row = next(line for line in screen_text(app).splitlines() if WORKER_A in line)
        assert " 5.0 " in row  # 1 task in the last 0.2 s
        assert any(bar in row for bar in "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588")
