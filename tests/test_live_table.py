"""The job list stays live: it follows new jobs, pins the job the user moved to,
and keeps the selected row on screen whatever happens, at every terminal size."""

from __future__ import annotations

import time

import pytest
from textual.screen import Screen
from textual.widgets import Input

from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.demo.sample import NOW, T0
from sluice_tui.demo.screenshots import sample_app
from sluice_tui.model.job import RETRY_OF, JobRow
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp
from sluice_tui.ui.job_index import SortColumn, note_text
from sluice_tui.ui.screens.job_detail import JobDetailScreen
from sluice_tui.ui.text import short_id
from sluice_tui.ui.widgets.job_table import (
    ARGS,
    COLUMNS,
    NOTE,
    WORKER,
    JobTable,
    fit,
    layout,
    least_width,
)
from tests import events as ev
from tests.test_ui import empty_app, feed
from tests.ui_helpers import screen_text

SIZES = [(200, 50), (80, 24), (60, 15)]


def table_of(app) -> JobTable:
    return app.screen.query_one(JobTable)


def assert_selection_on_screen(app) -> str:
    """The highlighted row is inside the view and its id is drawn; returns that id."""
    table = table_of(app)
    top = int(table.scroll_y)
    assert top <= table.cursor < top + table.visible_rows, (table.cursor, top)
    selected = table.selected
    assert selected is not None
    line = table.render_line(table.cursor - top + 1).text
    assert line.startswith(short_id(selected.id)), line
    assert short_id(selected.id) in screen_text(app)
    return selected.id


def arrive(app, first: int, count: int) -> list[str]:
    """``count`` new jobs, newest last, then one UI tick."""
    ids = [f"new-{n:04d}" for n in range(first, first + count)]
    for n, job_id in enumerate(ids):
        feed(app, ev.received(job_id, T0 + 1000 + first + n))
    app.tick()
    return ids


async def test_untouched_list_follows_the_newest_job_as_jobs_pour_in():
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert "FOLLOW" in screen_text(app)
        for batch in range(6):  # far more jobs than the view holds
            newest = arrive(app, batch * 10, 10)[-1]
            await pilot.pause()
            assert table_of(app).selected.id == newest
            assert table_of(app).scroll_y == 0
            assert assert_selection_on_screen(app) == newest
        await pilot.press("enter")
        assert isinstance(app.screen, JobDetailScreen) and app.screen.job_id == newest


async def test_moving_pins_the_job_and_f_or_home_follows_again():
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down")
        chosen = table_of(app).selected.id
        assert "PINNED" in screen_text(app) and "FOLLOW" not in screen_text(app)
        for batch in range(5):
            arrive(app, batch * 10, 10)
            await pilot.pause()
            assert assert_selection_on_screen(app) == chosen
        await pilot.press("r")  # acts on the pinned job, not on a newer one
        await pilot.press("enter")
        assert app.screen.job_id == chosen
        await pilot.press("escape", "f")
        newest = arrive(app, 100, 3)[-1]
        await pilot.pause()
        assert "FOLLOW" in screen_text(app)
        assert assert_selection_on_screen(app) == newest
        await pilot.press("pagedown", "home")
        assert table_of(app).following and table_of(app).selected.id == newest


async def test_oldest_first_follows_at_the_bottom_like_tail():
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("S")  # seen, oldest first
        assert not app.index.reverse and app.index.sort is SortColumn.SEEN
        newest = arrive(app, 0, 40)[-1]
        await pilot.pause()
        assert table_of(app).cursor == len(app.index) - 1
        assert assert_selection_on_screen(app) == newest


@pytest.mark.parametrize("size", SIZES)
async def test_selection_stays_on_screen_through_resizes(size):
    app = sample_app()
    async with app.run_test(size=(200, 50)) as pilot:
        arrive(app, 0, 120)
        await pilot.pause()
        await pilot.press("pagedown", "pagedown", "down")
        chosen = assert_selection_on_screen(app)
        for width, height in [size, (60, 15), (200, 50), size]:
            await pilot.resize_terminal(width, height)
            await pilot.pause()
            assert assert_selection_on_screen(app) == chosen
        await pilot.press("enter")
        assert app.screen.job_id == chosen


async def test_selection_stays_on_screen_through_filters_sorts_and_search():
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        arrive(app, 0, 60)
        await pilot.pause()
        await pilot.press("pagedown", "pagedown")
        assert_selection_on_screen(app)
        filters = [[str(digit)] for digit in range(1, 9)] + [["0"]]
        for keys in [*filters, ["s"], ["s", "S"], ["slash", *"new-00"]]:
            await pilot.press(*keys)
            arrive(app, 1000 + len(app.index), 2)  # and a tick on top of each change
            await pilot.pause()
            assert_selection_on_screen(app)
        search = app.screen.query_one("#search", Input)
        assert search.value == "new-00"


async def test_a_wheel_scroll_carries_the_cursor_along():
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        arrive(app, 0, 80)
        await pilot.pause()
        table = table_of(app)
        table.scroll_to(y=30, animate=False)  # what the wheel and the scrollbar do
        await pilot.pause()
        assert table.scroll_y > 0
        assert not table.following
        assert_selection_on_screen(app)


async def test_an_empty_list_says_why():
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")  # the sample has one retrying job
        assert "No retrying jobs" not in screen_text(app)
        feed(app, ev.succeeded(app.index.row_at(0).id, NOW))
        app.tick()
        await pilot.pause()
        assert "No retrying jobs. 0 shows every state." in screen_text(app)
        await pilot.press("0", "slash", *"zzz")
        assert "No jobs match 'zzz'. Escape clears the search." in screen_text(app)


async def test_paused_counts_stay_with_the_paused_list():
    app = sample_app()
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("p")
        before = screen_text(app).splitlines()[1]
        assert "0 all 12" in before
        arrive(app, 0, 5)
        await pilot.pause()
        assert screen_text(app).splitlines()[1] == before
        await pilot.press("p")
        assert "0 all 17" in screen_text(app)


async def test_running_and_scheduled_jobs_show_their_clock():
    now = [NOW]
    app = sample_app()
    app.clock = lambda: now[0]
    async with app.run_test(size=(120, 34)) as pilot:
        feed(app, ev.received("slow-job", NOW - 30))
        feed(app, ev.started("slow-job", NOW - 30))
        feed(app, ev.received("later-job", NOW - 5, eta=_iso(NOW + 90)))
        app.tick()
        await pilot.pause()
        rows = {line[:8]: line for line in screen_text(app).splitlines()}
        assert "30.00s" in rows["slow-job"]
        assert "in 1m30s" in rows["later-jo"]
        now[0] += 2
        app.tick()
        await pilot.pause()
        rows = {line[:8]: line for line in screen_text(app).splitlines()}
        assert "32.00s" in rows["slow-job"]
        assert "in 1m28s" in rows["later-jo"]


def _iso(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).isoformat()


# -- rows that read well at every width --------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_every_size_shows_whole_headers_help_and_quit(size):
    app = sample_app()
    async with app.run_test(size=size) as pilot:
        for key in ("s", "s", "s", "s", "s", "s"):  # every sort column, arrow included
            await pilot.press(key)
            header = table_of(app).render_line(0).text
            arrow = "\u25bc"
            shown = [c.label for c in COLUMNS if c.label in header]
            sorted_label = next(c.label for c in COLUMNS if c.sort is app.index.sort)
            if sorted_label in shown:
                assert f"{sorted_label} {arrow}" in header
        footer = screen_text(app).splitlines()[-1]
        assert "? Help" in footer and "q Quit" in footer


@pytest.mark.parametrize("width", [60, 80, 120, 200])
async def test_the_header_wraps_between_items_never_inside_one(width):
    app = sample_app()
    async with app.run_test(size=(width, 30)):
        header = "\n".join(screen_text(app).splitlines()[:4])
        counts = app.index.state_counts
        for state in JobState:
            assert f"{state.digit} {state.value} {counts[state]}" in header, state


async def test_a_header_taller_than_its_first_unwrapped_text_shows_every_line_from_the_start():
    """Counts wide enough to wrap twice at 80 columns, and a gap: five lines, the warning last.

    Seen in a trial after a restart: the header kept the height of its text
    before the first layout, and the gap warning stayed hidden until a resize.
    """
    store = JobStore()
    adapter = EventAdapter(store)
    for n in range(8_652):
        adapter(ev.sent(f"job-{n}", T0 + n))
        final = ev.succeeded if n < 8_211 else ev.failed if n < 8_650 else ev.revoked
        adapter(final(f"job-{n}", T0 + n + 0.5))
    now = time.time()  # the header shows a settled gap for a while after it ended
    gap = store.record_gap(now - 60, now - 30, "Connection reset by peer")
    store.settle_gap(gap, "resync corrected 0 jobs")
    app = SluiceApp(store)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert lines[3].strip() == "FOLLOW"  # the counts took two lines, as in the trial
        assert "events may have been lost" in lines[4]
        assert lines[5].startswith("ID ")


def test_listing_failures_puts_the_errors_before_workers_and_arguments():
    natural = {"name": 14, "worker": 14, "note": 60}
    usual = [COLUMNS[i].label for i, _ in layout(80, natural, notes=True)]
    assert "NOTE" not in usual and "WORKER" in usual  # notes lead the ARGS cells instead
    errors = dict(
        (COLUMNS[i].label, w) for i, w in layout(80, natural, notes=True, errors_first=True)
    )
    assert errors["NOTE"] >= 32 and "WORKER" not in errors
    wide = dict(layout(200, natural, notes=True, errors_first=True))
    assert {NOTE, WORKER, ARGS} <= set(wide)  # with room, nothing gives way
    assert wide[NOTE] >= 60  # the whole error
    # Whatever the names measure, a failure's error keeps 30 cells at 80 columns.
    long = {"name": 40, "worker": 36, "note": 120, "args": 200}
    for width in (78, 80):
        assert dict(layout(width, long, notes=True, errors_first=True))[NOTE] >= 30


def test_a_wide_list_spends_spare_room_on_notes_before_short_arguments():
    natural = {"name": 14, "worker": 14, "note": 80, "args": 6}
    columns = dict(layout(200, natural, notes=True))
    assert columns[NOTE] == 80 and len(columns) == len(COLUMNS)


def test_columns_follow_their_content_and_args_take_the_rest():
    short_names = {"name": 10, "worker": 12, "note": 0}
    columns = {COLUMNS[i].label: width for i, width in layout(200, short_names, notes=False)}
    assert list(columns) == [c.label for c in COLUMNS if c.label != "NOTE"]
    assert columns["NAME"] == least_width(COLUMNS[2])  # no wider than its names need
    assert columns["ARGS"] > 80  # the spare width went where text is long
    # 80 columns: the note column gives way before the worker and the args
    narrow = [COLUMNS[i].label for i, _ in layout(79, short_names, notes=True)]
    assert "WORKER" in narrow and "ARGS" in narrow and "NOTE" not in narrow
    for width in (40, 60, 79, 120, 200):
        for notes in (False, True):
            shown = layout(width, {"name": 30, "worker": 30, "note": 19}, notes=notes)
            assert sum(w for _, w in shown) + len(shown) - 1 == width


def test_cut_text_is_marked_with_an_ellipsis():
    assert fit("demo2@sluice-demo-04f25c97", 14, cut="middle") == "demo2@s\u2026f25c97"
    assert fit("shop.catalog.import_row", 12, cut="start") == "\u2026.import_row"
    assert fit("retried as a471c932", 12) == "retried as \u2026"
    assert fit("short", 8) == "short   "
    assert fit("1m30s", 7, right=True) == "  1m30s"


async def test_a_note_folds_into_args_when_its_column_has_no_room():
    app = sample_app()
    async with app.run_test(size=(120, 34)):
        text = screen_text(app)
        assert " NOTE " in text and "retried as 0000000c" in text
    app = sample_app()
    async with app.run_test(size=(96, 34)):
        text = screen_text(app)
        assert " NOTE " not in text and "[retry of 0000" in text


async def test_help_keeps_its_descriptions_in_a_small_terminal():
    app = sample_app()
    async with app.run_test(size=(60, 15)) as pilot:
        await pilot.press("question_mark")
        pages = [screen_text(app)]
        for _ in range(10):  # the help scrolls: read it page by page
            await pilot.press("pagedown")
            await pilot.pause()
            pages.append(screen_text(app))
        text = "\n".join(pages)
        assert "show all states" in pages[0]
        assert "follow the newest jobs again" in text
        assert "cancelled" in text and "REVOKED" in text, "the states legend, whole"


@pytest.mark.parametrize(("theme", "column"), [("textual-dark", 0), ("textual-light", 1)])
async def test_state_colours_follow_the_theme(theme, column):
    from sluice_tui.ui.text import STATE_COLOURS

    app = sample_app()
    async with app.run_test(size=(120, 34)) as pilot:
        app.theme = theme
        await pilot.pause()
        table = table_of(app)
        row = table.index.row_at(1)  # not the cursor's row, which has its own colours
        segments = [s for s in table.render_line(2) if s.text.strip() == row.state.value]
        expected = STATE_COLOURS[row.state][column]
        assert segments and segments[0].style.color.name == expected
        header = "\n".join(screen_text(app).splitlines()[:3])
        assert row.state.value in header


async def test_a_key_acts_on_the_row_drawn_not_on_one_a_tick_just_moved_in():
    app = sample_app()
    asked: list[str] = []
    app.request_action = lambda action, job_id: asked.append(job_id)
    async with app.run_test(size=(80, 24)) as pilot:
        seen = assert_selection_on_screen(app)  # drawn highlighted, following
        newer = arrive(app, 0, 1)[0]  # a tick moves the cursor; no repaint yet
        assert table_of(app).cursor_id == newer
        app.screen.action_retry()  # the key lands before the repaint
        await pilot.pause()  # the screen's request reaches the app as a message
        assert asked == [seen]
        assert not table_of(app).following  # acting pins: the job stays put
        assert assert_selection_on_screen(app) == seen
        arrive(app, 10, 3)
        await pilot.pause()
        assert assert_selection_on_screen(app) == seen


async def test_workers_screen_at_80_columns_shows_when_each_last_spoke():
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("w")
        lines = screen_text(app).splitlines()
        header = next(n for n, line in enumerate(lines) if "HOSTNAME" in line)
        assert "HEARTBEAT" in lines[header]
        rows = lines[header + 1 : header + 3]
        assert all(" ago" in line for line in rows), rows


async def test_jobs_pouring_in_redraw_the_list_without_laying_out_the_screen(monkeypatch):
    """A full layout of the screen on every tick cost keys their latency under load.

    New jobs change the header's figures and the list's length; neither changes
    the size of anything once the list is longer than the view.
    """
    layouts = []
    real = Screen._refresh_layout
    monkeypatch.setattr(
        Screen, "_refresh_layout", lambda self, *a, **k: (layouts.append(1), real(self, *a, **k))
    )
    app = sample_app()
    async with app.run_test(size=(80, 24)) as pilot:
        for batch in range(3):  # the list outgrows the view, the scrollbar appears
            arrive(app, batch * 30, 30)
            await pilot.pause()
        layouts.clear()
        for batch in range(3, 13):
            newest = arrive(app, batch * 30, 30)[-1]
            await pilot.pause()
            assert assert_selection_on_screen(app) == newest  # the list did move on
        assert f"0 all {len(app.store)}" in screen_text(app)  # and so did the header
        assert layouts == []


def _trial_failures(app) -> None:
    """What a new user's trial held: a long task name elsewhere in the list,
    a failure, and a retry that failed again."""
    feed(app, ev.received("a" * 32, NOW - 50, name="trialapp.a_rather_long_task_name_here"))
    feed(app, ev.received("e458fff1" + "0" * 24, NOW - 9, name="trialapp.fail"))
    feed(
        app,
        ev.failed(
            "e458fff1" + "0" * 24,
            NOW - 8,
            exception="ValueError('payment declined for order 1234, card expired')",
        ),
    )
    feed(app, ev.received("b" * 32, NOW - 7, name="trialapp.fail"))
    app.store.record_action("b" * 32, "sent as a retry", {RETRY_OF: "ae492ef7" + "1" * 24})
    feed(app, ev.failed("b" * 32, NOW - 6, exception="PaymentDeclined('card 4242 declined')"))


async def test_at_80_columns_the_failed_list_shows_each_error_readably():
    app = empty_app()
    _trial_failures(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("6")
        text = screen_text(app)
        assert " NOTE" in text
        assert "ValueError: payment declined for" in text  # not [ValueErr…
        # A retry that failed again leads with its own error, then its link.
        assert "PaymentDeclined: card 4242 decl" in text
        assert "[" not in text  # no note folded into ARGS


async def test_a_wide_list_gives_notes_the_room_it_has():
    app = empty_app()
    _trial_failures(app)
    async with app.run_test(size=(200, 50)):
        text = screen_text(app)
        assert "ValueError: payment declined for order 1234, card expired" in text
        assert "PaymentDeclined: card 4242 declined \u00b7 retry of ae492ef7" in text


def test_a_failed_retrys_note_leads_with_its_error_and_an_action_leads_otherwise():
    row = JobRow(
        "x", 0.0, JobState.FAILED, "t", None, None, None, None, None, None, None,
        note="retry of ae492ef7", error="ValueError: boom",
    )  # fmt: skip
    assert note_text(row) == "ValueError: boom \u00b7 retry of ae492ef7"
    row = row._replace(note="retried as 1f0c2d3e")
    assert note_text(row) == "retried as 1f0c2d3e \u00b7 ValueError: boom"
    assert note_text(row._replace(note="ValueError: boom")) == "ValueError: boom"
    assert note_text(row._replace(note=None, error=None)) is None


def test_a_notes_second_clause_too_short_to_read_is_left_out_whole():
    note = "retried as 0000000c \u00b7 CardDeclined: card declined"
    assert fit(note, 24, cut="clause") == "retried as 0000000c     "
    assert fit(note, 36, cut="clause") == "retried as 0000000c \u00b7 CardDeclined:\u2026"
    assert fit("ValueError: boom", 10, cut="clause") == "ValueErro\u2026"


async def test_an_empty_list_says_the_broker_cannot_be_reached_while_reconnecting():
    """A trial: the header said `reconnecting: Error 111 ...` while the list said it
    waited for task events from the workers, as if all were well."""
    app = empty_app()  # its ticks are run by hand (app.tick), as the timer would
    store = app.store

    async def shown_after(state: str, error: str | None = None) -> str:
        store.set_status(state, "redis://localhost:6399//", error)
        app.tick()
        await pilot.pause()
        return screen_text(app)

    async with app.run_test(size=(80, 24)) as pilot:
        text = await shown_after("reconnecting", "Error 111 connecting")
        assert "No jobs yet: the broker cannot be reached" in text
        assert "waiting for task events" not in text
        assert "No jobs yet: connecting to the broker." in await shown_after("connecting")
        text = await shown_after("connected")
        assert "No jobs yet: waiting for task events from the workers." in text
        feed(app, ev.sent("j1", T0))
        text = await shown_after("reconnecting", "Error 111 connecting")
        assert "No jobs yet" not in text and "j1" in text, "jobs held: the list shows them"
