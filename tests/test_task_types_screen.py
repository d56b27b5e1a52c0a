"""The task types and queues screens, driven through the real app."""

from __future__ import annotations

from textual.widgets import DataTable

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.queues import QueueSample, queues_of
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.model.task_types import task_types_of
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.screens.jobs import JobsScreen
from sluice_tui.ui.screens.queues import QueueDetailScreen, QueuesScreen
from sluice_tui.ui.screens.task_types import COLUMNS, SORTABLE, TaskTypesScreen
from tests import events as ev
from tests.conftest import FakeClock
from tests.ui_helpers import screen_text, shown_ids

T = 1_700_000_000.0
EVIL = "proj.\x1b[31mred\x1b[0m[bold]x[/]"


def feed_workload(store: JobStore, clock: FakeClock) -> None:
    """proj.add: 6 ok, 2 failed; proj.mul: 1 ok, 1 active; the evil name: 1 queued."""
    feed = EventAdapter(store, clock=clock)
    types = task_types_of(store)
    plan = [("proj.add", "ok")] * 6 + [("proj.add", "fail")] * 2
    plan += [("proj.mul", "ok"), ("proj.mul", "run"), (EVIL, "queued")]
    for n, (name, end) in enumerate(plan):
        job = f"job-{n}"
        feed(ev.sent(job, T + n, name=name))
        if end == "queued":
            continue
        feed(ev.started(job, T + n + 0.1))
        if end == "ok":
            feed(ev.succeeded(job, T + n + 0.6))
        elif end == "fail":
            feed(ev.failed(job, T + n + 2.1))
    assert types.names()  # the store records them as jobs finish


def make_app(size_clock: float = T + 30) -> SluiceApp:
    clock = FakeClock(size_clock)
    store = JobStore(clock=clock)
    feed_workload(store, clock)
    return SluiceApp(store, clock=clock, tick_seconds=None)


async def test_task_types_show_counts_failure_rate_and_open_the_filtered_job_table():
    app = make_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.press("t")
        assert isinstance(app.screen, TaskTypesScreen)
        text = screen_text(app)
        add = next(line for line in text.splitlines() if "proj.add" in line)
        assert "25.0%" in add  # 2 failed of 8 finished
        assert "\x1b" not in text and "red[bold]" not in text.replace("[31m", "")
        await pilot.press("slash", *"add", "enter")
        assert [r for r in screen_text(app).splitlines() if "proj." in r][-1].count("proj.") == 1
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        assert len(shown_ids(app)) == 8 and app.index.task_filter == "proj.add"
        await pilot.press(str(JobState.FAILED.digit))
        assert len(shown_ids(app)) == 2
        assert "task: proj.add" in screen_text(app)


async def test_task_types_sort_by_each_column_and_fit_80_columns():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, TaskTypesScreen)
        header = screen_text(app).splitlines()[1]
        for label in ("TASK", "FAIL%", "P95", "/MIN"):
            assert label in header
        table = screen.query_one(DataTable)
        figures = task_types_of(app.store).snapshot(app.clock(), app.index.type_counts)
        for _ in SORTABLE:
            await pilot.press("s")
            key = COLUMNS[screen.sort].key
            shown = [table.coordinate_to_cell_key((r, 0)).row_key.value for r in range(3)]
            # Ties keep first-seen order, as in the job table.
            assert shown == [t.name for t in sorted(figures, key=key, reverse=True)]
        await pilot.press("S")
        shown = [table.coordinate_to_cell_key((r, 0)).row_key.value for r in range(3)]
        assert shown == [t.name for t in sorted(figures, key=COLUMNS[screen.sort].key)]


async def test_queues_screen_flags_a_backlog_without_consumer_and_shows_the_priority_split():
    app = make_app()
    board = queues_of(app.store)
    board.watch(["celery", "orphans"], "app")
    for n in range(5):
        board.record("celery", QueueSample(T + 2 * n, 100 + 10 * n, 2))
        board.record(
            "orphans", QueueSample(T + 2 * n, 12, None, priorities={0: 9, 3: 0, 6: 0, 9: 3})
        )
    board.set_worker_consumers({"celery": 2})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("b")
        assert isinstance(app.screen, QueuesScreen)
        text = screen_text(app)
        celery = next(line for line in text.splitlines() if "celery" in line)
        assert "140" in celery and "+5.0/s" in celery
        orphans = next(line for line in text.splitlines() if "orphans" in line)
        assert "backlog, no consumer" in orphans
        await pilot.press("down", "enter")
        assert isinstance(app.screen, QueueDetailScreen)
        assert "priority 9: 3" in screen_text(app)
