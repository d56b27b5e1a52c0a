"""The Textual app: polls the store on a timer and routes actions to the gate.

Data flows one way.  A receiver thread writes to the store; a timer on the UI
thread reads the store's change feed; no widget is touched from any other
thread.  Retry and revoke go through the actions gate, which holds the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar, Protocol

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.worker import Worker

from sluice_tui.actions import ActionRecord, ActionsGate
from sluice_tui.history import HistoryView
from sluice_tui.model.states import ALL_STATES, Action
from sluice_tui.model.store import JobStore
from sluice_tui.ui.job_index import JobIndex
from sluice_tui.ui.messages import (
    AskGoto,
    OpenJob,
    OpenQueues,
    OpenTaskTypes,
    OpenWorkers,
    RunAction,
    ShowTaskJobs,
    TogglePause,
)
from sluice_tui.ui.screens.action_log import ActionLogScreen
from sluice_tui.ui.screens.diagnostics import DiagnosticsScreen
from sluice_tui.ui.screens.goto import GotoScreen
from sluice_tui.ui.screens.help import HelpScreen
from sluice_tui.ui.screens.job_detail import JobDetailScreen
from sluice_tui.ui.screens.jobs import FILTER_BINDINGS, JobsScreen
from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.screens.queues import QueueDetailScreen, QueuesScreen
from sluice_tui.ui.screens.task_types import TaskTypesScreen
from sluice_tui.ui.screens.workers import WorkersScreen
from sluice_tui.ui.widgets.job_table import JobTable

TICK_SECONDS = 0.15  # about 7 refreshes a second


class EventSource(Protocol):
    """What feeds the store: the receiver thread, or nothing in tests."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 2.0) -> bool: ...


class ActionHandler(Protocol):
    """Carries out retry and revoke for the UI (see sluice_tui.ui.actions)."""

    gate: ActionsGate

    def request(self, app: SluiceApp, action: Action, job_id: str) -> None: ...

    def on_worker_done(self, app: SluiceApp, event: Worker.StateChanged) -> bool: ...


class SluiceApp(App):
    TITLE = "sluice-tui"
    CSS_PATH = Path(__file__).with_name("sluice.tcss")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "workers", "Workers", id="app.workers"),
        Binding("b", "queues", "Queues", id="app.queues", show=False),
        Binding("t", "task_types", "Task types", id="app.task_types", show=False),
        Binding("l", "action_log", "Action log", id="app.action_log", show=False),
        Binding("d", "diagnostics", "Diagnostics", id="app.diagnostics", show=False),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
        # Terminal monitors quit on Ctrl+C; Textual's default only explains ctrl+q.
        Binding("ctrl+c", "quit", "Quit", id="app.interrupt", show=False, priority=True),
    ]

    def __init__(
        self,
        store: JobStore,
        *,
        source: EventSource | None = None,
        actions: ActionHandler | None = None,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
        tick_seconds: float | None = TICK_SECONDS,
        history: HistoryView | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        # The journal's status, for diagnostics (see sluice_tui.history); None: not shown.
        self.history = history
        self.index = JobIndex(store)
        self.source = source
        self.actions = actions
        self.read_only = read_only
        self.clock = clock
        self.tick_seconds = tick_seconds
        self.paused = False
        self.events_per_second = 0.0
        self._rate_window = (time.monotonic(), store.event_count)
        self._notices_shown = 0

    def get_default_screen(self) -> Screen:
        return JobsScreen()

    def on_mount(self) -> None:
        self.index.sync()
        if self.source is not None:
            self.source.start()
        if self.actions is not None and not self.read_only:
            # Pools, queues consumed and limits are only known by asking; the
            # queues screen needs the consumers at once (inspect publishes, so
            # never in --read-only).
            self.actions.ask_workers(self, quietly=True)
        if self.tick_seconds:
            self.set_interval(self.tick_seconds, self.tick)
        if not self.is_headless:
            self._quit_on_sigterm()

    def _quit_on_sigterm(self) -> None:
        """``kill``, and closing the terminal window (SIGHUP), quit as q does: the
        terminal restored (if it is still there), the journal flushed, the demo's
        workers stopped.

        Raised from a signal handler at whatever point the loop was, an
        interrupt could stall Textual's shutdown (a demo given SIGTERM once
        outlived 30 s); through the loop, the exit is an ordinary message.
        """
        loop = asyncio.get_running_loop()
        for stop in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(stop, self.exit)

    def on_unmount(self) -> None:
        if self.source is not None:
            self.source.stop()

    def tick(self) -> None:
        """Pull what changed from the store and show it."""
        self._measure_rate()
        self._show_notices()
        changed = False if self.paused else self.index.sync()
        if not self.screen_stack:
            return  # the app closed while this tick ran: nothing left to show it on
        screen = self.screen
        if isinstance(screen, LiveScreen) and screen.live:
            try:
                with self.batch_update():
                    screen.refresh_from_store(changed)
            except NoMatches:
                pass  # the screen's widgets are coming or going; the next tick shows it

    def _show_notices(self) -> None:
        self._notices_shown, fresh = self.store.notices_since(self._notices_shown)
        for text in fresh:
            self.notify(text, title="Note", timeout=15, markup=False)

    def _measure_rate(self) -> None:
        started, count = self._rate_window
        now = time.monotonic()
        if now - started >= 1.0:
            events = self.store.event_count
            self.events_per_second = (events - count) / (now - started)
            self._rate_window = (now, events)

    # -- what screens ask for (see sluice_tui.ui.messages) -------------------

    def on_open_job(self, message: OpenJob) -> None:
        self.open_job(message.job_id)

    def on_run_action(self, message: RunAction) -> None:
        self.request_action(message.action, message.job_id)

    def on_show_task_jobs(self, message: ShowTaskJobs) -> None:
        self.show_task_jobs(message.task_name)

    def on_open_workers(self, _message: OpenWorkers) -> None:
        self.action_workers()

    def on_open_queues(self, _message: OpenQueues) -> None:
        self.action_queues()

    def on_open_task_types(self, _message: OpenTaskTypes) -> None:
        self.action_task_types()

    def on_ask_goto(self, _message: AskGoto) -> None:
        self.action_goto()

    def on_toggle_pause(self, _message: TogglePause) -> None:
        self.toggle_pause()

    # -- navigation --------------------------------------------------------

    def open_job(self, job_id: str) -> None:
        self.push_screen(JobDetailScreen(job_id))

    def show_task_jobs(self, task_name: str | None) -> None:
        """Back to the job table (the first screen), filtered to one task name."""
        self.index.set_task_filter(task_name)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        screen = self.screen_stack[0]
        if isinstance(screen, JobsScreen):
            screen.view_changed()

    def action_workers(self) -> None:
        if not isinstance(self.screen, WorkersScreen):
            self.push_screen(WorkersScreen())

    def action_queues(self) -> None:
        if not isinstance(self.screen, QueuesScreen):
            self.push_screen(QueuesScreen())

    def action_task_types(self) -> None:
        if not isinstance(self.screen, TaskTypesScreen):
            self.push_screen(TaskTypesScreen())

    def action_action_log(self) -> None:
        if not isinstance(self.screen, ActionLogScreen):
            self.push_screen(ActionLogScreen())

    def action_diagnostics(self) -> None:
        if not isinstance(self.screen, DiagnosticsScreen):
            self.push_screen(DiagnosticsScreen())

    def action_log(self) -> list[ActionRecord]:
        return [] if self.actions is None else list(self.actions.gate.log)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if self.actions is not None:
            self.actions.on_worker_done(self, event)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_sections()))

    def action_goto(self) -> None:
        # The dialog judges the text against the store and stays open on a
        # prefix that fits no job or several (see GotoScreen).
        self.push_screen(GotoScreen(self.store.find), self._goto)

    def _goto(self, job_id: str | None) -> None:
        if job_id:
            self.open_job(job_id)

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self.notify("Live updates paused." if self.paused else "Live updates resumed.")
        self.tick()

    # -- actions -----------------------------------------------------------

    def request_action(self, action: Action, job_id: str) -> None:
        if self.read_only:
            self.notify(
                f"Read-only mode: {action.value} is disabled. "
                "Start sluice-tui without --read-only to change the cluster.",
                severity="warning",
            )
            return
        if self.actions is None:
            self.notify(f"{action.value} is not available here.", severity="warning")
            return
        self.actions.request(self, action, job_id)

    # -- help and the command palette ----------------------------------------

    def key_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        def describe(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
            return [
                (self.get_key_display(binding), binding.description)
                for binding in bindings
                if isinstance(binding, Binding)
                and binding.description
                and binding not in FILTER_BINDINGS
            ]

        states = ", ".join(f"{state.digit} {state.value}" for state in ALL_STATES)
        jobs = [
            ("0", "show all states"),
            ("1-8", f"show one state: {states}"),
            ("\u2191 \u2193 pgup pgdn", "move; the cursor stays on its job as rows arrive"),
            ("home f", "follow the newest jobs again"),
            ("click", "select; a double click opens"),
            *describe(b for b in JobTable.BINDINGS if isinstance(b, Binding) and b.show),
            *describe(JobsScreen.BINDINGS),
        ]
        return [
            ("Jobs", jobs),
            ("Job detail", describe(JobDetailScreen.BINDINGS)),
            ("Queues", describe(QueuesScreen.BINDINGS)),
            ("Queue detail", describe(QueueDetailScreen.BINDINGS)),
            ("Task types", describe(TaskTypesScreen.BINDINGS)),
            ("Workers", describe(WorkersScreen.BINDINGS)),
            ("Everywhere", describe(self.BINDINGS)),
        ]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """This app's commands, and of Textual's own only those that fit here.

        Not ``super()``'s list: its Keys opens Textual's key panel (scroll
        and copy keys that are not ours; it squeezes the job list and escape
        does not close it), and Maximize/Minimize act on whichever widget has
        focus.  ``?`` is this app's key help.  Theme stays: the state colours
        have a dark and a light set and follow the theme.
        """
        yield SystemCommand("Quit", "Quit sluice-tui (q)", self.action_quit)
        yield SystemCommand(
            "Theme", "Change the colours; states keep theirs readable", self.action_change_theme
        )
        yield SystemCommand(
            "Screenshot",
            "Save an SVG picture of this screen to your downloads folder",
            lambda: self.set_timer(0.1, self.deliver_screenshot),
        )
        yield SystemCommand("Workers", "Show the workers screen", self.action_workers)
        yield SystemCommand("Queues", "Broker queue depths and rates", self.action_queues)
        yield SystemCommand(
            "Task types", "Counts, failure rate, runtimes per task name", self.action_task_types
        )
        # "keys" finds it too: Textual's own Keys command is gone (see above).
        yield SystemCommand(
            "Help: keys and states",
            "Every key, and what each job state means (?)",
            self.action_help,
        )
        yield SystemCommand("Action log", "Every retry and revoke sent", self.action_action_log)
        yield SystemCommand(
            "Diagnostics",
            "Gaps in the event stream, bad events, store, history journal",
            self.action_diagnostics,
        )
        yield SystemCommand("Go to job", "Open a job by id (or id prefix)", self.action_goto)
        yield SystemCommand("Pause or resume", "Freeze or resume live updates", self.toggle_pause)
        if isinstance(screen, JobsScreen):
            yield SystemCommand(
                "Show all states", "Clear the state filter", lambda: screen.action_filter(0)
            )
            for state in ALL_STATES:
                yield SystemCommand(
                    f"Only {state.value}",
                    f"Filter the job list to {state.value} jobs (key {state.digit})",
                    lambda digit=state.digit: screen.action_filter(digit),
                )
            yield SystemCommand(
                "Search", "Search id, name, worker, args and kwargs", screen.action_search
            )
            yield SystemCommand("Next sort column", "Cycle the sort column", screen.action_sort)
            yield SystemCommand("Reverse sort", "Reverse the sort order", screen.action_reverse)
            yield SystemCommand(
                "Retry selected job", "Send the selected job again", screen.action_retry
            )
            yield SystemCommand(
                "Revoke selected job", "Revoke the selected job", screen.action_revoke
            )
