"""r and x in every state: only what the rules allow reaches Celery's send/control API."""

from __future__ import annotations

import ast

import pytest
from celery import Celery

from sluice_tui.actions import ActionsGate
from sluice_tui.celery_adapter.control import CeleryControl
from sluice_tui.demo.sample import NOW, job_id, sample_store
from sluice_tui.model.states import ALL_STATES, Action, allowed
from sluice_tui.ui.actions import UIActions
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.screens.action_log import ActionLogScreen
from sluice_tui.ui.screens.confirm import ConfirmRetryScreen, ConfirmRevokeScreen
from sluice_tui.ui.screens.goto import GotoScreen
from sluice_tui.ui.screens.job_detail import JobDetailScreen
from sluice_tui.ui.screens.jobs import JobsScreen
from tests.ui_helpers import SIZE, capture_notifications, screen_text, settle


class RecordingCelery:
    """A real Celery app whose outgoing calls are recorded instead of published."""

    def __init__(self) -> None:
        self.app = Celery("t", broker="memory://", set_as_current=False)
        self.sent: list[tuple] = []
        self.revoked: list[tuple] = []
        self.app.send_task = self._send_task
        self.app.control.revoke = self._revoke
        # No worker holds any job: planning never waits on a broadcast's timeout.
        self.app.control.inspect = lambda timeout: self
        self.query_task = lambda job_id: {}

    def _send_task(self, name, args=None, kwargs=None, task_id=None, **options):
        self.sent.append((name, args, kwargs, task_id, options))

    def _revoke(self, task_id, terminate=False, signal=None, **kwargs):
        self.revoked.append((task_id, terminate, signal))
        return [{"worker-a@prod-1": {"ok": f"tasks flagged as revoked: {task_id}"}}]


@pytest.fixture
def cluster():
    return RecordingCelery()


def make_app(cluster, read_only=False):
    store = sample_store()
    gate = ActionsGate(store, CeleryControl(cluster.app), read_only=read_only, clock=lambda: NOW)
    app = SluiceApp(
        store, actions=UIActions(gate), read_only=read_only, clock=lambda: NOW, tick_seconds=None
    )
    return app, capture_notifications(app)


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("action", [Action.RETRY, Action.REVOKE])
async def test_keys_reach_celery_only_where_the_rules_allow(cluster, state, action):
    app, notes = make_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(str(state.digit))
        job = app.index.row_at(0)
        assert job.state is state
        await pilot.press("r" if action is Action.RETRY else "x")
        await settle(pilot)
        if not allowed(action, state):
            assert not isinstance(app.screen, ConfirmRetryScreen | ConfirmRevokeScreen)
            assert any(
                f"cannot {action.value} job {job.id} (it is {state.value})" in n for n in notes
            ), notes
            assert cluster.sent == [] and cluster.revoked == []
            return
        if action is Action.RETRY:
            assert isinstance(app.screen, ConfirmRetryScreen)
            expected_args = ast.literal_eval(job.args)
            shown = screen_text(app)
            assert job.name in shown and repr(tuple(expected_args)) in shown
            await pilot.press("y")
            await settle(pilot)
            ((name, args, kwargs, new_id, options),) = cluster.sent
            assert new_id != job.id
            assert (name, args, kwargs) == (job.name, expected_args, {})
            assert options == {"queue": "default"}
            assert app.store.get(new_id).extra["retry_of"] == job.id
        else:
            assert isinstance(app.screen, ConfirmRevokeScreen)
            await pilot.press("t" if state.value == "active" else "y")
            await settle(pilot)
            terminate = state.value == "active"
            assert cluster.revoked == [(job.id, terminate, "SIGTERM")]
            # The reply quotes the job by its short id: a toast broke the full one.
            replies = [n for n in notes if "flagged as revoked" in n]
            assert replies and all(job.id not in n and job.id[:8] in n for n in replies), notes
            if not app.store.get(job.id).state.finished:
                assert app.index.row(job.id).note == "revoke requested"


async def test_cancelling_the_dialog_sends_nothing(cluster):
    app, _ = make_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "r")
        await settle(pilot)
        await pilot.press("n")
        await pilot.press("4", "x")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
    assert cluster.sent == [] and cluster.revoked == []


async def test_goto_a_prefix_that_fits_no_job_opens_nothing_to_revoke(cluster):
    """A new user's trial: g 0123abcd opened a fake job, and x, y revoked that literal id."""
    app, _ = make_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *"0123abcd", "enter")
        await settle(pilot)
        assert isinstance(app.screen, GotoScreen), "the dialog stays open to fix the id"
        assert "no job id starts with 0123abcd" in screen_text(app)
        await pilot.press("x", "y")  # typed into the box: no revoke dialog anywhere
        await settle(pilot)
        assert isinstance(app.screen, GotoScreen)
        await pilot.press("escape", "x")  # x on the job list: its selected job, not 0123abcd
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, JobsScreen)
    assert cluster.revoked == []


async def test_goto_a_prefix_of_several_jobs_asks_for_more_then_opens_one(cluster):
    app, _ = make_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *"0000000", "enter")
        await settle(pilot)
        assert isinstance(app.screen, GotoScreen)
        assert "more than 10 job ids start with 0000000; type more of the id" in screen_text(app)
        await pilot.press("5", "enter")  # the box kept the text: one more digit
        await settle(pilot)
        assert isinstance(app.screen, JobDetailScreen) and app.screen.job_id == job_id(5)


async def test_goto_a_whole_id_never_seen_opens_as_unknown_and_can_be_revoked(cluster):
    unseen = "0123abcd-0000-4000-8000-00000000beef"  # queued before the monitor started?
    app, _ = make_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *unseen, "enter")
        await settle(pilot)
        assert isinstance(app.screen, JobDetailScreen) and app.screen.job_id == unseen
        assert "unknown" in screen_text(app)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmRevokeScreen)
        await pilot.press("y")
        await settle(pilot)
    assert cluster.revoked == [(unseen, False, "SIGTERM")]


async def test_revoking_a_running_job_can_kill_it(cluster):
    app, _ = make_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", "x")
        await settle(pilot)
        text = screen_text(app)
        assert "keeps running" in text and "SIGKILL" in text
        await pilot.press("k")
        await settle(pilot)
    assert cluster.revoked[0][1:] == (True, "SIGKILL")


async def test_read_only_refuses_both_keys(cluster):
    app, notes = make_app(cluster, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        # The footer does not offer what read-only refuses (seen in a trial).
        await settle(pilot)
        footer = [line for line in screen_text(app).splitlines() if "Quit" in line][-1]
        assert "Search" in footer and "Retry" not in footer and "Revoke" not in footer
        await pilot.press("6", "r", "4", "x")
        await settle(pilot)
        assert "READ-ONLY" in screen_text(app)
    assert cluster.sent == [] and cluster.revoked == []
    assert sum("Read-only" in n for n in notes) == 2


async def test_retry_of_cut_arguments_is_refused_with_how_to_fix(cluster):
    app, notes = make_app(cluster)
    from sluice_tui.celery_adapter.events import EventAdapter
    from tests import events as ev

    feed = EventAdapter(app.store)
    feed(ev.received("big", NOW, name="t.big", args="('" + "x" * 1100 + "',)"))
    feed(ev.failed("big", NOW + 1))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *"big", "enter", "r")
        await settle(pilot)
    assert cluster.sent == []
    assert any(
        "cut at Celery's 1024-character limit" in n and "result_extended=True" in n for n in notes
    ), notes


async def test_action_log_lists_what_was_sent(cluster):
    app, _ = make_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "r")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        await pilot.press("l")
        assert isinstance(app.screen, ActionLogScreen)
        text = screen_text(app)
        assert "retry" in text and "ok" in text and "sent again as" in text


async def test_a_job_that_ends_while_its_dialog_is_open_is_refused_not_failed(cluster):
    from tests import events as ev
    from tests.test_ui import feed

    app, notes = make_app(cluster)
    titles: list[str] = []
    show = app.notify

    def notify(message, **kwargs):
        titles.append(kwargs.get("title", ""))
        return show(message, **kwargs)

    app.notify = notify
    async with app.run_test(size=SIZE) as pilot:
        app.notify("an older notice")
        await pilot.press("4", "x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmRevokeScreen)
        assert "an older notice" not in screen_text(app)  # nothing covers the dialog
        job_id = app.screen.plan.job.id
        feed(app, ev.succeeded(job_id, NOW + 1))
        await pilot.press("t")
        await settle(pilot)
    assert cluster.revoked == []
    assert any(note.startswith("cannot revoke") and "completed" in note for note in notes)
    assert "Refused" in titles and "Failed" not in titles


async def test_a_retry_whose_queue_is_not_known_says_so_and_goes_where_typed(cluster):
    from sluice_tui.celery_adapter.events import EventAdapter
    from tests import events as ev

    app, notes = make_app(cluster)
    feed = EventAdapter(app.store)
    feed(ev.received("noqueue", NOW, name="t.report", args="(7,)"))  # no task-sent
    feed(ev.failed("noqueue", NOW + 1))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *"noqueue", "enter", "r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmRetryScreen), notes
        shown = screen_text(app)
        assert "not known: the app's default queue 'celery' will be used" in shown
        assert "priority" in shown and "link/link_error callbacks" in shown
        await pilot.click("#queue")
        await pilot.press(*"reports", "enter")
        await settle(pilot)
    ((name, args, _, _, options),) = cluster.sent
    assert (name, args, options["queue"]) == ("t.report", (7,), "reports")


async def test_retrying_a_job_again_names_the_earlier_retry_and_keeps_both(cluster):
    app, notes = make_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "r")
        await settle(pilot)
        job_id = app.screen.plan.job.id
        await pilot.press("y")
        await settle(pilot)
        first = app.store.get(job_id).extra["retried_as"]
        first_attempt = app.store.get(first).extra["attempt"]
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmRetryScreen), notes
        assert "Already retried as" in screen_text(app)
        assert app.screen.plan.earlier[-1].job_id == first
        assert " ".join(screen_text(app).split()).count("(now unknown)") == len(
            app.screen.plan.earlier
        )
        await pilot.press("y")
        await settle(pilot)
    assert len(cluster.sent) == 2
    extra = app.store.get(job_id).extra
    second = cluster.sent[1][3]
    assert extra["retried_as"] == second and extra["earlier_retries"].endswith(first)
    assert app.store.get(second).extra["attempt"] == first_attempt + 1


async def test_the_retry_dialog_names_a_job_sent_since_with_the_same_call(cluster):
    """A retry sent from a shell (`sluice-tui retry`) is seen only as a new job with the
    same task and arguments: the dialog names it before a second one goes out."""
    from sluice_tui.celery_adapter.events import EventAdapter
    from tests import events as ev

    app, notes = make_app(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "r")
        await settle(pilot)
        failed = app.screen.plan.job
        assert "Sent since it ended" not in screen_text(app)
        await pilot.press("n")
        await settle(pilot)
        ended = max(entry.timestamp for entry in failed.history)
        EventAdapter(app.store)(
            ev.sent("a-shells-retry", ended + 60, name=failed.name, args=failed.args)
        )
        app.tick()
        await pilot.press("6", "r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmRetryScreen), notes
        assert app.screen.plan.job.id == failed.id
        text = " ".join(screen_text(app).replace("\u2588", " ").split())  # no box edges
        assert "Sent since it ended, same task and arguments: a-shells-retry" in text, text
