"""The task types and queues screens, driven through the real app."""

from __future__ import annotations

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.queues import QueueSample, queues_of
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.model.task_types import task_types_of
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.screens.jobs import JobsScreen
from sluice_tui.ui.screens.queues import QueueDetailScreen, QueuesScreen
from sluice_tui.ui.screens.task_types import COLUMNS, SORTABLE, TaskTypesScreen
from sluice_tui.ui.text import inert
from sluice_tui.ui.widgets.line_table import LineTable
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
        table = screen.query_one(LineTable)
        figures = task_types_of(app.store).snapshot(app.clock(), app.index.type_counts)
        for _ in SORTABLE:
            await pilot.press("s")
            key = COLUMNS[screen.sort].key
            shown = list(table.keys)
            # Ties keep first-seen order, as in the job table.
            assert shown == [t.name for t in sorted(figures, key=key, reverse=True)]
        await pilot.press("S")
        shown = list(table.keys)
        assert shown == [t.name for t in sorted(figures, key=COLUMNS[screen.sort].key)]


def feed_many(app: SluiceApp, count: int, prefix: str = "bulk.task_") -> None:
    """``count`` more task types, each with ``n + 1`` finished jobs (busiest last)."""
    feed = EventAdapter(app.store, clock=app.clock)
    for n in range(count):
        for k in range(n + 1):
            job = f"{prefix}{n}-{k}"
            feed(ev.sent(job, T + k, name=f"{prefix}{n:03d}"))
            feed(ev.started(job, T + k + 0.1))
            feed(ev.succeeded(job, T + k + 0.2))


def body_lines(app: SluiceApp) -> list[str]:
    """The table's rows as the terminal shows them, from the line under the header."""
    lines = screen_text(app).splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith(" TASK "))
    return lines[header + 1 :]


async def test_the_cursor_follows_its_task_across_a_re_sort_and_enter_opens_it():
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, TaskTypesScreen)
        await pilot.press("down")
        chosen = screen.selected_name()
        assert chosen is not None
        # New work for the other types re-sorts the rows under the cursor.
        feed = EventAdapter(app.store, clock=app.clock)
        for n in range(20):
            job = f"more-{n}"
            feed(ev.sent(job, T + 20 + n, name="proj.mul" if chosen != "proj.mul" else "proj.add"))
            feed(ev.started(job, T + 20.1 + n))
            feed(ev.succeeded(job, T + 20.2 + n))
        app.tick()
        await pilot.pause()
        assert screen.selected_name() == chosen
        # The highlighted row on screen is that task's.
        table = screen.query_one(LineTable)
        cursor_line = table.render_line(table.cursor + 1 - int(table.scroll_y)).text
        assert chosen in cursor_line
        await pilot.press("s")  # and a sort switch keeps it too
        assert screen.selected_name() == chosen
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        assert app.index.task_filter == chosen


async def test_a_click_selects_and_a_second_click_opens_the_task():
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("t")
        screen = app.screen
        table = screen.query_one(LineTable)
        second = table.keys[1]
        await pilot.click(LineTable, offset=(5, 2))  # line 0 is the header
        assert screen.selected_name() == second
        assert isinstance(app.screen, TaskTypesScreen)
        await pilot.click(LineTable, offset=(5, 2))
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        assert app.index.task_filter == second


async def test_a_hostile_name_shows_literally_and_the_header_marks_the_sort():
    app = make_app()
    async with app.run_test(size=(200, 30)) as pilot:
        await pilot.press("t")
        text = screen_text(app)
        header = text.splitlines()[1]
        assert "/MIN \u25bc" in header  # busiest first
        await pilot.press("S")
        assert "/MIN \u25b2" in screen_text(app).splitlines()[1]
        await pilot.press("s")
        header = screen_text(app).splitlines()[1]
        assert "DONE 10M" in header and "\u25bc" not in header.split("/MIN")[0][-3:]
        # Control characters are shown as escapes and markup as written.
        assert "proj.\\x1b[31mred\\x1b[0m[bold]x[/]" in text
        assert "\x1b" not in text


async def test_80_columns_keep_the_columns_that_fit_and_every_line_fits():
    app = make_app()
    feed_many(app, 3, prefix="a.rather.long.module.path.for.tasks.")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        lines = screen_text(app).splitlines()
        labels = lines[1].replace("\u25bc", "").split()
        # The narrowest columns go first, by rank: the long names leave room for these.
        assert labels == ["TASK", "QUEUED", "ACTIVE", "FAIL%", "P95", "/MIN"]
        assert all(len(line) <= 80 for line in lines)
        for line in lines[2:6]:  # each row ends with its rate, the last column's figure
            assert float(line.split()[-1]) > 0, line


async def test_scrolling_to_the_bottom_shows_the_last_types():
    app = make_app()
    feed_many(app, 60)
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.press("t")
        screen = app.screen
        table = screen.query_one(LineTable)
        last = inert(table.keys[-1])
        assert last not in screen_text(app)
        await pilot.press("end")
        assert inert(screen.selected_name()) == last
        assert last in "\n".join(body_lines(app))
        await pilot.press("home")
        assert screen.selected_name() == table.keys[0] and table.scroll_y == 0
        await pilot.press("pagedown")
        assert table.cursor == table.visible_rows
        # A scroll (wheel or scrollbar) moves the rows and carries the cursor along.
        await pilot.press("home")
        table.scroll_to(y=5, animate=False)
        await pilot.pause()
        assert table.scroll_y > 0
        assert int(table.scroll_y) <= table.cursor < int(table.scroll_y) + table.visible_rows
        assert inert(table.keys[int(table.scroll_y)]) in body_lines(app)[0]


async def test_a_filter_that_drops_the_selected_task_moves_the_cursor_to_the_top():
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("t")
        screen = app.screen
        await pilot.press("down", "down")
        other = "add" if screen.selected_name() != "proj.add" else "mul"
        await pilot.press("slash", *other, "enter")
        table = screen.query_one(LineTable)
        assert table.cursor == 0 and screen.selected_name() == f"proj.{other}"
        await pilot.press("slash", *"zzz")
        assert "No task matches the filter." in screen_text(app)
        assert screen.selected_name() is None


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
