"""The main screen: the header, the live job table, search, and the list's keys."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static

from sluice_tui.model.states import ALL_STATES, Action
from sluice_tui.ui.messages import AskGoto, Host, OpenJob, RunAction, ShowTaskJobs, TogglePause
from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.text import inert
from sluice_tui.ui.widgets.fitting_footer import FittingFooter
from sluice_tui.ui.widgets.job_table import JobTable
from sluice_tui.ui.widgets.status_bar import StatusBar, StatusView, gap_to_show

FILTER_BINDINGS = [
    Binding("0", "filter(0)", "All states", id="jobs.filter.all", show=False),
    *(
        Binding(
            str(state.digit),
            f"filter({state.digit})",
            f"Only {state.value}",
            id=f"jobs.filter.{state.value}",
            show=False,
        )
        for state in ALL_STATES
    ),
]


class JobsScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        *FILTER_BINDINGS,
        Binding("slash", "search", "Search", id="jobs.search"),
        Binding("escape", "clear_search", "Clear search", id="jobs.clear_search", show=False),
        Binding("s", "sort", "Sort", id="jobs.sort"),
        Binding("S", "reverse", "Reverse sort", id="jobs.reverse", show=False),
        Binding("g", "goto", "Go to id", id="jobs.goto", show=False),
        Binding("p", "pause", "Pause", id="jobs.pause"),
        Binding("r", "retry", "Retry", id="jobs.retry"),
        Binding("x", "revoke", "Revoke", id="jobs.revoke"),
    ]

    app: Host  # type: ignore[assignment]  # what this screen reads; it asks by Messages

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Static(id="task-filter")
        yield JobTable(self.app.index, clock=self.app.clock, id="jobs")
        yield Input(placeholder="search id, name, worker, args, kwargs, error", id="search")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one("#search").display = False
        self._show_task_filter()
        self.table.focus()
        self.refresh_from_store(changed=True)

    def on_screen_resume(self) -> None:
        self.refresh_from_store(changed=True)

    @property
    def table(self) -> JobTable:
        return self.query_one(JobTable)

    def refresh_from_store(self, changed: bool) -> None:
        app = self.app
        table = self.table
        if changed:
            table.rows_changed()
        if not app.paused:
            table.tick()
        self._show_status()

    def _show_status(self) -> None:
        app = self.app
        index = app.index
        store = app.store
        status = store.status
        self.table.waiting_on = _waiting_on(status.state)
        online, known = store.worker_counts()
        # The index's counts, not the store's: they move with the list, and
        # stay still while it is paused.  With a task chosen, that task's.
        if index.task_filter is None:
            counts = tuple((state, index.state_counts[state]) for state in ALL_STATES)
        else:
            held = index.type_counts.get(index.task_filter) or [0] * len(ALL_STATES)
            counts = tuple(zip(ALL_STATES, held, strict=True))
        self.query_one(StatusBar).show(
            StatusView(
                connection=status.state,
                broker=status.broker,
                error=status.error,
                events_per_second=app.events_per_second,
                workers_online=online,
                workers_known=known,
                counts=counts,
                state_filter=index.state_filter,
                search=index.search,
                found=len(index) if index.search else 0,
                sort=index.sort.value,
                reverse=index.reverse,
                paused=app.paused,
                read_only=app.read_only,
                bad_events=store.stats().bad_events,
                gaps=store.gap_count,
                last_gap=gap_to_show(store.last_gap(), app.clock()),
                following=self.table.following,
                dark=app.current_theme.dark,
            )
        )

    # -- actions -----------------------------------------------------------

    def action_filter(self, digit: int) -> None:
        self.app.index.set_state_filter(None if digit == 0 else ALL_STATES[digit - 1])
        self._view_changed()

    def action_sort(self) -> None:
        index = self.app.index
        index.set_sort(index.sort.next())
        self._view_changed()

    def action_reverse(self) -> None:
        self.app.index.toggle_reverse()
        self._view_changed()

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.value or search.display:
            search.value = ""
            search.display = False
            self.app.index.set_search("")
            self._view_changed()
            self.table.focus()
        elif self.app.index.task_filter is not None:
            # A second escape (or the first, with no search) drops the task filter.
            self.post_message(ShowTaskJobs(None))

    def action_goto(self) -> None:
        self.post_message(AskGoto())

    def action_pause(self) -> None:
        self.post_message(TogglePause())

    def action_retry(self) -> None:
        self._act(Action.RETRY)

    def action_revoke(self) -> None:
        self._act(Action.REVOKE)

    def _act(self, action: Action) -> None:
        row = self.table.hold()
        if row is None:
            self.notify("No job is selected.", severity="warning")
            return
        self.post_message(RunAction(action, row.id))

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.app.index.set_search(event.value)
        self._view_changed()

    @on(Input.Submitted, "#search")
    def _search_done(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            self.action_clear_search()
        else:
            # The search stays on (the header says so) and gives its 3 lines back
            # to the list; / shows it again to edit, escape ends it.
            event.input.display = False
            self.table.focus()

    @on(JobTable.Chosen)
    def _open(self, event: JobTable.Chosen) -> None:
        self.post_message(OpenJob(event.job_id))

    @on(JobTable.FollowChanged)
    def _follow_changed(self) -> None:
        self._show_status()

    def view_changed(self) -> None:
        """The index's filter or order moved: redraw the list and the header."""
        self._show_task_filter()
        self._view_changed()

    def _view_changed(self) -> None:
        self.table.view_changed()
        self._show_status()

    def _show_task_filter(self) -> None:
        name = self.app.index.task_filter
        line = self.query_one("#task-filter", Static)
        line.display = name is not None
        if name is not None:
            line.update(
                Text.assemble(
                    ("task: ", "grey62"),
                    (inert(name), "bold"),
                    ("  (escape shows all tasks)", "grey50"),
                )
            )


def _waiting_on(connection: str) -> str | None:
    """Why no job can arrive yet, as the empty list says it; None: they can."""
    if connection == "connecting":
        return "connecting to the broker."
    if connection == "reconnecting":
        return "the broker cannot be reached (the header says why); jobs show once it answers."
    return None
