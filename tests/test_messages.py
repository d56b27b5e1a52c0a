"""Screens ask the app for things by Messages; no screen module imports the app."""

from __future__ import annotations

import ast
from pathlib import Path

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.states import Action, JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.messages import OpenJob, RunAction, ShowTaskJobs
from sluice_tui.ui.screens.job_detail import JobDetailScreen
from sluice_tui.ui.screens.jobs import JobsScreen
from tests import events as ev
from tests.conftest import FakeClock
from tests.ui_helpers import screen_text, shown_ids

T = 1_700_000_000.0
SCREENS = Path(__file__).parents[1] / "sluice_tui" / "ui" / "screens"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_screen_imports_the_app_even_for_types():
    paths = list(SCREENS.glob("*.py"))
    offenders = [p.name for p in paths if "sluice_tui.ui.app" in imported_modules(p)]
    assert len(paths) >= 10 and offenders == []


def app_with_jobs() -> SluiceApp:
    clock = FakeClock(T + 60)
    store = JobStore(clock=clock)
    feed = EventAdapter(store, clock=clock)
    for n in range(6):
        name = "proj.add" if n % 2 else "proj.mul"
        feed(ev.sent(f"job-{n}", T + n, name=name))
        if n < 4:
            feed(ev.started(f"job-{n}", T + n + 0.5))
    return SluiceApp(store, clock=clock, tick_seconds=None)


async def test_open_job_from_a_screen_reaches_the_app_and_opens_the_detail():
    app = app_with_jobs()
    async with app.run_test(size=(100, 30)) as pilot:
        app.screen.post_message(OpenJob("job-3"))
        await pilot.pause()
        assert isinstance(app.screen, JobDetailScreen)
        assert app.screen.job_id == "job-3"


async def test_run_action_goes_through_the_app_which_honours_read_only():
    app = app_with_jobs()
    app.read_only = True
    seen: list[str] = []
    app.notify = lambda text, **kw: seen.append(text)  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        app.screen.post_message(RunAction(Action.RETRY, "job-1"))
        await pilot.pause()
    assert any("Read-only" in text for text in seen)


async def test_task_filter_narrows_the_list_and_state_filters_still_apply():
    app = app_with_jobs()
    async with app.run_test(size=(100, 30)) as pilot:
        app.screen.post_message(ShowTaskJobs("proj.add"))
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        assert sorted(shown_ids(app)) == ["job-1", "job-3", "job-5"]
        assert "task: proj.add" in screen_text(app)
        assert "0 all 3 " in screen_text(app)  # the header counts that task's jobs (a trial)
        await pilot.press(str(JobState.ACTIVE.digit))
        assert sorted(shown_ids(app)) == ["job-1", "job-3"]
        await pilot.press("0", "escape")  # escape with no search drops the task filter
        await pilot.pause()
        assert len(shown_ids(app)) == 6
        assert "task:" not in screen_text(app)
        assert "0 all 6 " in screen_text(app)
