"""The TUI driven by keys, over a real store fed with a fixed cluster history."""

from __future__ import annotations

import re

import pytest

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.demo.sample import NOW, T0, job_id
from sluice_tui.demo.screenshots import sample_app
from sluice_tui.history import NO_HISTORY
from sluice_tui.model.job import RETRIED_AS
from sluice_tui.model.states import ALL_STATES, JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.screens.help import STATE_LEGEND, HelpScreen
from sluice_tui.ui.screens.job_detail import JobDetailScreen
from sluice_tui.ui.screens.jobs import JobsScreen
from sluice_tui.ui.screens.workers import WorkersScreen
from sluice_tui.ui.text import STATE_COLOURS
from sluice_tui.ui.widgets.job_table import JobTable
from tests import events as ev
from tests.ui_helpers import SIZE, screen_text, shown_ids, table_rows, wait_in_app


@pytest.fixture
def app():
    return sample_app()


def feed(app, event):
    EventAdapter(app.store)(event)


def charge_failed(app, job_id: str, exception: str) -> None:
    """A shop.charge job received, then failed with ``exception`` (Celery's repr)."""
    feed(app, ev.received(job_id, NOW - 3, name="shop.charge"))
    feed(app, ev.failed(job_id, NOW - 2, exception=exception))


def empty_app():
    """The sample's app over an empty store, its clock at the sample's now."""
    app = sample_app()
    app.store = app.index.store = JobStore(clock=lambda: NOW)
    return app


async def test_jobs_screen_shows_states_counts_and_workers(app):
    async with app.run_test(size=SIZE):
        text = screen_text(app)
        for state in ALL_STATES:
            assert f"{state.digit} {state.value} " in text
        assert "0 all 12" in text
        assert "workers 1/2 online" in text
        assert len(table_rows(app)) == 12


@pytest.mark.parametrize("state", ALL_STATES)
async def test_digit_filters_to_one_state_and_zero_shows_all(app, state):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(str(state.digit))
        rows = table_rows(app)
        assert rows, "every state has a job in the sample"
        assert len(rows) == app.store.counts()[state]
        assert all(f" {state.value} " in row for row in rows)
        await pilot.press("0")
        assert len(table_rows(app)) == 12


async def test_search_filters_and_escape_clears(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"catalog")
        rows = table_rows(app)
        assert len(rows) == 3 and all("shop.catalog" in row for row in rows)
        assert "search: catalog 3 jobs" in screen_text(app)  # with how many it finds
        await pilot.press("escape")
        assert len(table_rows(app)) == 12
        assert "search:" not in screen_text(app)


async def test_enter_keeps_the_search_and_gives_its_lines_back_to_the_list(app):
    """Seen in a trial: after enter the 3-line search box stayed docked at 80x24."""
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash", *"catalog", "enter")
        await pilot.pause()
        assert not app.screen.query_one("#search").display
        assert "search: catalog" in screen_text(app)
        assert len(table_rows(app)) == 3
        await pilot.press("slash")  # back to edit it
        assert app.screen.query_one("#search").display
        await pilot.press("escape")
        assert len(table_rows(app)) == 12


async def test_search_matches_args_worker_and_id(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"clip-77")
        assert shown_ids(app) == [job_id(4)]
        await pilot.press("escape", "slash", *"worker-b")
        assert job_id(4) in shown_ids(app)
        await pilot.press("escape", "slash", *job_id(7)[:8])
        assert shown_ids(app) == [job_id(7)]


async def test_sort_key_cycles_columns_and_shift_s_reverses(app):
    async with app.run_test(size=SIZE) as pilot:
        assert shown_ids(app)[0] == job_id(12)  # newest first
        await pilot.press("s")  # by state
        assert "STATE \u25bc" in screen_text(app)
        states = [app.index.row_at(i).state for i in range(len(app.index))]
        assert states == sorted(states, key=ALL_STATES.index, reverse=True)
        await pilot.press("S")
        assert "STATE \u25b2" in screen_text(app)
        states = [app.index.row_at(i).state for i in range(len(app.index))]
        assert states[0] is JobState.UNKNOWN and states[-1] is JobState.CANCELLED
        await pilot.press("s")  # by name
        names = [app.index.row_at(i).name for i in range(len(app.index))]
        assert names == sorted(names)


async def test_enter_opens_detail_with_history_and_traceback(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "enter")
        assert isinstance(app.screen, JobDetailScreen)
        assert app.screen.job_id == job_id(2)
        text = screen_text(app)
        assert "CardDeclined" in text
        assert "Traceback (most recent call last)" in text
        assert "task-retried" in text and "worker-b@prod-2" in text
        await pilot.press("escape")
        assert isinstance(app.screen, JobsScreen)


async def test_detail_links_open_the_retry_and_children(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "enter")
        assert "retried as" in screen_text(app)
        await pilot.press("tab", "enter")
        assert app.screen.job_id == job_id(12)
        assert "retry of" in screen_text(app)
        await pilot.press("escape", "escape", "g", *job_id(8)[:8], "enter")
        assert app.screen.job_id == job_id(8)
        await pilot.press("tab", "enter")
        assert app.screen.job_id in (job_id(9), job_id(10))


async def test_goto_opens_a_job_by_id_prefix(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *job_id(5)[:8], "enter")
        assert isinstance(app.screen, JobDetailScreen)
        assert app.screen.job_id == job_id(5)
        assert "scheduled" in screen_text(app)


async def test_goto_never_seen_id_is_unknown_with_explanation(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g", *"no-such-job", "enter")
        assert isinstance(app.screen, JobDetailScreen)
        text = screen_text(app)
        assert "no-such-job" in text and "unknown" in text
        assert "No event for this id has been seen" in text


async def test_w_shows_workers_online_and_offline(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("w")
        assert isinstance(app.screen, WorkersScreen)
        lines = screen_text(app).splitlines()
        a = next(line for line in lines if "worker-a@prod-1" in line)
        b = next(line for line in lines if "worker-b@prod-2" in line)
        assert "online" in a and "1.00s ago" in a and "0.42 0.38 0.30" in a
        assert "offline" in b and "20.00s ago" in b and "py-celery 5.4.0" in b


async def test_p_pauses_and_resumes_live_updates(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        assert "PAUSED" in screen_text(app)
        feed(app, ev.received("fresh-job", T0 + 100))
        app.tick()
        assert "fresh-job" not in shown_ids(app)
        await pilot.press("p")
        assert "PAUSED" not in screen_text(app)
        assert "fresh-job" in shown_ids(app)


async def test_question_mark_lists_every_key(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for _ in range(4):  # the sections run past one screen: read them all
            await pilot.press("pagedown")
            text += screen_text(app)
        for key in ("1-8", "/", "s", "S", "g", "p", "r", "x", "w", "b", "t", "q", "⏎"):
            assert f" {key} " in text, key
        for words in ("Search", "Go to id", "Pause", "Retry", "Revoke", "Workers", "Detail"):
            assert words in text
        for words in ("Queues", "Task types", "Its jobs", "Filter"):
            assert words in text
        app.screen.query_one("#help-rules").scroll_visible(animate=False)
        await pilot.pause()
        assert "retry: allowed when a job is failed, cancelled" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, JobsScreen)


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_help_explains_every_state_and_its_celery_name(app, size):
    async with app.run_test(size=size) as pilot:
        await pilot.press("question_mark")
        app.screen.query_one("#help-keys").scroll_visible(animate=False)
        text = screen_text(app)
        for _ in range(6):  # at 80x24 the legend is further down: scroll to it
            if "cancelled    revoked" in text:
                break
            await pilot.press("pagedown")
            text = screen_text(app)
        lines = text.splitlines()
        for state, (meaning, celery) in STATE_LEGEND.items():
            # One line each: the state, what it means and Celery's name, none cut.
            assert any(
                f" {state.value} " in line and meaning in line and celery in line for line in lines
            ), (state, text)
        assert "Celery says PENDING for any id it never heard of" in text


async def test_help_legend_follows_the_theme(app):
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.press("question_mark")
        dark = {state: colours[0] for state, colours in STATE_COLOURS.items()}
        light = {state: colours[1] for state, colours in STATE_COLOURS.items()}
        assert legend_colours(app) == dark
        app.theme = "textual-light"
        await wait_in_app(pilot, lambda: legend_colours(app) == light, "the light colours")


def legend_colours(app) -> dict[JobState, str]:
    """Each state's colour in the help's legend, as drawn (the legend comes last)."""
    keys = app.screen.query_one("#help-keys")
    colours = {}
    for y in range(keys.size.height):
        for segment in keys.render_line(y):
            word = segment.text.strip()
            if word in JobState.__members__.values() and segment.style and segment.style.color:
                colours[JobState(word)] = segment.style.color.name
    return colours


async def test_q_quits(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0
        assert not app.is_running


async def test_new_jobs_do_not_move_the_cursor_off_its_job(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "down", "down")
        table = app.screen.query_one(JobTable)
        chosen = table.selected.id
        for n in range(5):
            feed(app, ev.received(f"newer-{n}", T0 + 200 + n))
        app.tick()
        await pilot.pause()
        assert table.selected.id == chosen
        assert table.cursor == 3 + 5
        await pilot.press("enter")
        assert app.screen.job_id == chosen


async def test_click_selects_and_double_click_opens(app):
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(JobTable)
        target = shown_ids(app)[4]
        await pilot.click(JobTable, offset=(2, 5))  # header is line 0
        assert table.selected.id == target
        await pilot.click(JobTable, offset=(2, 5), times=2)
        assert isinstance(app.screen, JobDetailScreen) and app.screen.job_id == target


async def test_detail_updates_live(app):
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4", "enter")
        assert app.screen.job_id == job_id(4)
        feed(app, ev.succeeded(job_id(4), T0 + 100, result="'done.mp4'"))
        app.tick()
        await pilot.pause()
        text = screen_text(app)
        assert "completed" in text and "done.mp4" in text


async def test_terminal_escapes_in_task_data_are_inert(app):
    async with app.run_test(size=SIZE) as pilot:
        nasty = "\x1b]0;pwned\x07\x1b[2J\x1b[H"
        feed(app, ev.received("evil", NOW, name=f"evil{nasty}", args=f"('{nasty}',)"))
        feed(app, ev.failed("evil", NOW + 1, exception=f"E('{nasty}')"))
        feed(app, ev.event("task-failed", "evil", NOW + 1, traceback=f"Traceback\n{nasty}\n"))
        app.tick()
        await pilot.pause()
        text = screen_text(app)
        assert "\x1b" not in text and "\x07" not in text
        assert "pwned\\x07" in text  # a long name shows its end
        await pilot.press("g", *"evil", "enter")
        text = screen_text(app)
        assert "\x1b" not in text and "\x07" not in text
        assert "\\x1b]0;pwned\\x07" in text


async def test_command_palette_offers_the_screen_actions(app):
    async with app.run_test(size=SIZE):
        titles = {command.title for command in app.get_system_commands(app.screen)}
    assert {
        "Workers",
        "Help: keys and states",
        "Go to job",
        "Search",
        "Next sort column",
        "Reverse sort",
        "Pause or resume",
        "Retry selected job",
        "Revoke selected job",
        "Show all states",
    } <= titles
    assert {f"Only {state.value}" for state in ALL_STATES} <= titles
    # Textual's own: only those that make sense here.
    assert {"Quit", "Theme", "Screenshot"} <= titles
    assert not titles & {"Keys", "Maximize", "Minimize"}


async def test_command_palette_has_no_textual_key_panel_and_escape_closes_it(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p", *"keys")
        # "keys" finds this app's help, not Textual's key panel.
        await wait_in_app(pilot, lambda: "Help: keys and states" in screen_text(app), "Help")
        text = screen_text(app)
        assert "Show help for the focused widget" not in text and "Scroll Left" not in text
        await pilot.press("escape")
        await wait_in_app(pilot, lambda: isinstance(app.screen, JobsScreen), "palette closed")
        assert not app.screen.query("HelpPanel")
        await pilot.press("ctrl+p", *"keys")
        await wait_in_app(pilot, lambda: "Help: keys and states" in screen_text(app), "Help")
        await pilot.press("enter")
        await wait_in_app(pilot, lambda: isinstance(app.screen, HelpScreen), "the app's help")


async def test_theme_from_the_palette_switches_the_state_colours(app):
    app.tick_seconds = 0.15  # the live tick redraws the header counts
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p", *"theme")
        await wait_in_app(pilot, lambda: "Change the colours" in screen_text(app), "Theme")
        await pilot.press("enter", *"textual-light")
        await wait_in_app(pilot, lambda: "textual-light" in screen_text(app), "the theme list")
        await pilot.press("enter")
        await wait_in_app(pilot, lambda: not app.current_theme.dark, "a light theme")
        await wait_in_app(
            pilot,
            lambda: all(light in fills(app) for _dark, light in STATE_COLOURS.values()),
            "every state in its light colour",
        )
        assert not any(dark in fills(app) for dark, _light in STATE_COLOURS.values())


def fills(app) -> set[str]:
    """The text colours on screen, from Textual's screenshot export."""
    return set(re.findall(r"fill: (#[0-9a-f]{6})", app.export_screenshot().lower()))


async def test_bindings_have_ids_for_remapping(app):
    async with app.run_test(size=SIZE):
        ids = {b.id for b in JobsScreen.BINDINGS} | {b.id for b in app.BINDINGS}
    assert {"jobs.search", "jobs.sort", "jobs.retry", "jobs.revoke", "app.quit"} <= ids


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_layout_fits_small_and_large_terminals(app, size):
    async with app.run_test(size=size):
        lines = screen_text(app).splitlines()
        assert len(lines) == size[1]
        header = next(line for line in lines if line.startswith("ID "))
        assert "STATE" in header and "NAME" in header
        if size[0] >= 200:
            assert "ARGS" in header and "WORKER" in header
        assert any(job_id(12)[:8] in line for line in lines)


async def test_a_tick_right_after_opening_a_screen_is_harmless(app):
    """The timer can fire between pushing a screen and its widgets existing."""
    async with app.run_test(size=SIZE) as pilot:
        for screen in (JobDetailScreen(job_id(2)), WorkersScreen()):
            app.push_screen(screen)
            app.tick()  # before the screen has mounted its widgets
            await pilot.pause()
            app.tick()
            assert screen.live
            await app.pop_screen()
            await pilot.pause()
        assert isinstance(app.screen, JobsScreen)


async def test_ticks_while_quitting_from_a_detail_screen_are_harmless():
    """The timer keeps firing while the app tears its screens down on quit."""
    app = sample_app()
    app.tick_seconds = 0.01
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6", "enter")
        assert isinstance(app.screen, JobDetailScreen)
        await pilot.pause(0.05)
        await pilot.press("q")
    assert app.return_code == 0


async def test_gaps_and_bad_events_are_flagged_and_d_explains_them(app):
    async with app.run_test(size=SIZE) as pilot:
        text = screen_text(app)
        # The sample had one outage (22:14:21-22:14:24 UTC) and one bad message.
        assert "events may have been lost 22:14:21-22:14:24" in text
        assert "1 bad event skipped" in text
        await pilot.press("d")
        text = screen_text(app)
        assert "Connection to broker lost" in text
        assert "resync corrected 1 job" in text
        assert "task event without a valid uuid" in text
        assert "\\x1b]0;pwned\\x07" in text and "\x1b" not in text
        app.store.record_gap(NOW - 5, NOW - 1, "Redis dropped us")
        app.tick()
        await pilot.pause()
        await pilot.pause()
        assert "Redis dropped us" in screen_text(app)
        await pilot.press("escape")
        assert "(and 1 earlier)" in screen_text(app)


async def test_no_warning_line_while_nothing_was_lost():
    app = empty_app()
    async with app.run_test(size=SIZE):
        text = screen_text(app)
        assert "events may have been lost" not in text and "diagnostics" not in text


async def test_jobs_of_a_lost_worker_show_as_unknown_with_a_note(app):
    async with app.run_test(size=SIZE) as pilot:
        # worker-b's last heartbeat was 20 s before NOW; it ran job 4.
        lost = app.store.sweep_workers(NOW, T0)
        assert lost == {"worker-b@prod-2": 1}
        app.tick()
        await pilot.press("1")
        (row,) = [r for r in table_rows(app) if job_id(4)[:8] in r]
        assert "unknown" in row and "worker lost" in row
        await pilot.press("g", *job_id(4)[:8], "enter")
        text = screen_text(app)
        assert "worker lost" in text and "no longer known" in text


@pytest.mark.parametrize("size", [SIZE, (80, 24)])
async def test_a_failed_jobs_error_shows_in_the_list(size):
    """Seen in a trial: the list showed nothing of why jobs failed; each had to be opened."""
    app = empty_app()
    charge_failed(app, "bad-1", "ValueError('payment declined\x1b[2J')")
    feed(app, ev.received("flaky-1", NOW - 3, name="shop.sync"))
    feed(app, ev.retried("flaky-1", NOW - 2, exception="ConnectionError('reset')"))
    async with app.run_test(size=size) as pilot:
        app.tick()
        text = screen_text(app)
        # At 80 columns the error leads the ARGS column, cut to fit.
        assert "ValueError: pay" in text and "\x1b" not in text  # read as Python shows it
        assert "ConnectionError" in text
        # Listing failed jobs, the errors come before workers and arguments: at 80
        # columns the second trial read only "[ValueError(…".
        await pilot.press(str(JobState.FAILED.digit))
        await pilot.pause()
        assert "ValueError: payment decl" in screen_text(app)


async def test_search_finds_jobs_by_their_error():
    app = empty_app()
    charge_failed(app, "bad-1", "PaymentDeclined('card expired')")
    charge_failed(app, "bad-2", "TimeoutError()")
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.press("slash", *"declined")
        await pilot.pause()
        assert shown_ids(app) == ["bad-1"]
        # Retried, its note says so; its error is still found (seen in a trial).
        app.store.annotate("bad-1", RETRIED_AS, "new-1")
        app.tick()
        await pilot.pause()
        assert shown_ids(app) == ["bad-1"] and "retried as new-1" in screen_text(app)


async def test_the_header_drops_a_settled_gap_after_a_while_and_names_a_restart():
    """Seen in a trial: a restart's gap warning stayed for good, two of the 24 lines."""
    clock = [NOW]
    app = sample_app()
    app.clock = lambda: clock[0]
    app.store = app.index.store = JobStore(clock=lambda: clock[0])
    number = app.store.record_gap(NOW - 60, NOW - 50, NO_HISTORY)
    async with app.run_test(size=(80, 24)) as pilot:
        app.tick()
        await pilot.pause()
        assert "no history kept" in screen_text(app)
        clock[0] = NOW + 3600  # an hour later, the resync still under way: still shown
        app.tick()
        await pilot.pause()
        assert "no history kept" in screen_text(app)
        app.store.settle_gap(number, "resync corrected 2 jobs")
        app.tick()
        await pilot.pause()
        assert "no history kept" in screen_text(app)  # just settled: still shown
        clock[0] += 600  # ten minutes after the resync said what it found
        app.tick()
        await pilot.pause()
        assert "not running" not in screen_text(app)


async def test_a_job_first_heard_of_late_says_why_its_name_is_unknown():
    """Seen in a trial: jobs named ? with no arguments and no word why."""
    app = empty_app()
    feed(app, ev.started("late-1", NOW - 3))  # its task-sent and task-received were missed
    feed(app, ev.succeeded("late-1", NOW - 2))
    async with app.run_test(size=SIZE) as pilot:
        app.tick()
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert "task name and arguments are unknown" in text
        assert "not listening" in text
