"""One job in full: fields, related jobs, payloads, traceback and the history by attempt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from sluice_tui.model.job import (
    RETRIED_AS,
    RETRY_OF,
    WORKER_LOST,
    JobSnapshot,
)
from sluice_tui.model.states import Action, JobState
from sluice_tui.model.times import iso_epoch
from sluice_tui.ui.messages import Host, OpenJob, RunAction
from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.text import duration, full_time, inert, span, state_style
from sluice_tui.ui.widgets.fitting_footer import FittingFooter
from sluice_tui.ui.widgets.history_view import HistoryView

MAX_RELATED = 200
LINK_KEYS = {RETRY_OF, RETRIED_AS}

WORKER_LOST_EXPLANATION = (
    "Its worker stopped sending heartbeats while the job ran, so the job is no longer known "
    "to be running: it may be lost with the worker, waiting to be redelivered, or still "
    "running on a worker that is only stalled. A later event about it will say which."
)
NAMELESS_EXPLANATION = (
    "Its task name and arguments are unknown: Celery sends them only with task-sent and "
    "task-received, and those came while sluice-tui was not listening (before it started, "
    "or in a gap). The job list shows its name as ?."
)


def state_text(state: JobState, dark: bool = True) -> Text:
    return Text(state.value, state_style(state, dark))


# -- times and values (candidates for ui/text.py, shared with other screens) --


def moment(timestamp: float | None, now: float) -> str:
    """Local time as elsewhere on screen, with how far it is from now."""
    if timestamp is None:
        return ""
    delta = timestamp - now
    if abs(delta) < 0.5:
        relative = "now"
    else:
        relative = f"in {span(delta)}" if delta > 0 else f"{span(delta)} ago"
    return f"{full_time(timestamp)}  ({relative})"


def iso_moment(value: str | None, now: float | None) -> str | None:
    """An ISO 8601 time from the cluster (eta, expires) in the local format, and how
    far from ``now`` it is (None: no longer worth saying)."""
    when = iso_epoch(value)
    if when is None:
        return value  # not a time we can read: shown as it came
    return full_time(when) if now is None else moment(when, now)


def plain(value: Any) -> str:
    """A detail value in words: booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# -- the sections -------------------------------------------------------------


def render_title(job: JobSnapshot, dark: bool = True) -> Text:
    title = Text.assemble(("Job ", "bold"), (inert(job.id), "bold"), "  ")
    title.append_text(state_text(job.state, dark))
    if job.name:
        title.append("  " + inert(job.name), "bold")
    return title


NAMING_EVENTS = frozenset({"task-sent", "task-received"})


def _heard_late(job: JobSnapshot) -> bool:
    """Task events came for it, but not the two that carry a name (else it is known
    only from a revoke, a queue or the result backend: another story)."""
    events = {entry.event for entry in job.history}
    return any(e.startswith("task-") for e in events) and not events & NAMING_EVENTS


def render_fields(job: JobSnapshot, now: float, dark: bool = True) -> RenderableType:
    if not job.seen:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        grid.add_row("state", state_text(job.state, dark))
        grid.add_row("", Text(job.explanation or "", "italic"))
        return grid
    # Two columns, where and when: the history below should start on screen.
    # The id and name are in the title.
    where = [
        ("worker", job.worker),
        ("queue", job.queue),
        ("routing key", job.routing_key),
        ("retries", None if job.retries is None else str(job.retries)),
    ]
    where += [
        (key.replace("_", " "), plain(value))
        for key, value in sorted((job.extra or {}).items())
        if key not in LINK_KEYS  # shown as related jobs instead
    ]
    when = [
        ("first event", full_time(job.first_time)),
        ("started", full_time(job.last_time(JobState.ACTIVE))),
        ("runtime", duration(job.runtime)),
        # A finished job is not due nor expiring: "(in 3m27s)" read as if it would run.
        ("eta", iso_moment(job.eta, None if job.state.finished else now)),
        ("expires", iso_moment(job.expires, None if job.state.finished else now)),
    ]
    grid = Table.grid(padding=(0, 2))
    for _ in range(2):
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
    left = [(key, Text(inert(value))) for key, value in where if value]
    right = [(key, Text(inert(value))) for key, value in when if value]
    while len(left) > len(right) + 1:  # balance the columns: fewer lines
        right.insert(0, left.pop())
    for n in range(max(len(left), len(right))):
        grid.add_row(*_cell(left, n), *_cell(right, n))
    notes = []
    if job.state is JobState.UNKNOWN and WORKER_LOST in (job.extra or {}):
        notes.append(Text(WORKER_LOST_EXPLANATION, "italic"))
    if not job.name and _heard_late(job):
        notes.append(Text(NAMELESS_EXPLANATION, "italic"))
    return Group(grid, *notes) if notes else grid


def _cell(pairs: list[tuple[str, Text]], n: int) -> tuple[str, Text | str]:
    return pairs[n] if n < len(pairs) else ("", "")


def has_countdown(job: JobSnapshot) -> bool:
    """Whether the fields show a time relative to now, which goes stale."""
    return bool(job.eta or job.expires)


def render_payload(job: JobSnapshot) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    # Long values (Celery cuts reprs at 1024 characters) wrap, so all can be read.
    grid.add_column(overflow="fold")
    exception, _ = job.current_error
    for key, value in (
        ("args", job.args),
        ("kwargs", job.kwargs),
        ("result", job.result),
        ("exception", exception),
    ):
        if value is not None:
            style = "red" if key == "exception" else ""
            grid.add_row(key, Text(inert(value, multiline=True), style))
    return grid


def traceback_view(traceback: str) -> Syntax:
    return Syntax(
        inert(traceback, multiline=True).rstrip(),
        "pytb",
        theme="ansi_dark",
        word_wrap=True,
        background_color="default",
    )


def render_traceback(job: JobSnapshot) -> RenderableType:
    _, traceback = job.current_error
    if not traceback:
        note = "no traceback"
        if job.attempt_errors:
            note += " in this attempt; earlier attempts' errors are in the history"
        return Text(note, "grey50")
    return traceback_view(traceback)


def related_options(
    store_get: Callable[[str], JobSnapshot], job: JobSnapshot, dark: bool = True
) -> list[Option]:
    links: list[tuple[str, str]] = []
    if job.parent_id:
        links.append(("parent", job.parent_id))
    if job.root_id and job.root_id not in (job.id, job.parent_id):
        links.append(("root", job.root_id))
    extra = job.extra or {}
    for relation, key in (("retry of", RETRY_OF), ("retried as", RETRIED_AS)):
        if isinstance(extra.get(key), str):
            links.append((relation, extra[key]))
    links += [("child", child) for child in job.children[:MAX_RELATED]]
    options = []
    for relation, job_id in links:
        other = store_get(job_id)
        prompt = Text.assemble((f"{relation:<11}", "bold"), inert(job_id), "  ")
        prompt.append_text(state_text(other.state, dark))
        if other.name:
            prompt.append("  " + inert(other.name))
        options.append(Option(prompt, id=job_id))
    return options


def related_label(count: int) -> str:
    if count == 1:
        return "Related jobs (enter opens it)"
    return "Related jobs (enter opens the highlighted one; tab, then up/down, to choose)"


class JobDetailScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="detail.close"),
        Binding("enter", "open_related", "Open related", id="detail.open_related"),
        Binding("r", "retry", "Retry", id="detail.retry"),
        Binding("x", "revoke", "Revoke", id="detail.revoke"),
    ]

    app: Host  # type: ignore[assignment]  # what this screen reads; it asks by Messages

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self._version = -1
        self._related: list[tuple[str | None, str]] = []
        self._watched: frozenset[str] = frozenset({job_id})  # this job and its related ones
        self._countdown_at: float | None = None  # when the shown countdowns were drawn

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(id="detail-fields")
            yield Label(related_label(1), id="related-label", classes="section")
            yield OptionList(id="related")
            yield Label("Payload", classes="section")
            yield Static(id="detail-payload")
            yield Label("Traceback", classes="section")
            yield Static(id="detail-traceback")
            yield Label("History", classes="section")
            # Only its lines on screen are drawn: a history of any length is cheap.
            yield HistoryView(id="detail-history")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.refresh_from_store(changed=True)
        self.query_one("#detail-body").focus()

    def refresh_from_store(self, changed: bool) -> None:
        store = self.app.store
        if self._version >= 0:
            changes = store.changes_since(self._version)
            self._version = changes.version
            if changes.job_ids is not None and self._watched.isdisjoint(changes.job_ids):
                self._refresh_countdown()
                return
        else:
            self._version = store.version
        self.render_job(store.get(self.job_id))

    def _refresh_countdown(self) -> None:
        # "in 12s" must not stay at 12s while nothing else about the job moves.
        if self._countdown_at is not None and self.app.clock() - self._countdown_at >= 1.0:
            job = self.app.store.get(self.job_id)
            self._show_fields(job)

    def _show_fields(self, job: JobSnapshot) -> None:
        now = self.app.clock()
        self.query_one("#detail-fields", Static).update(
            render_fields(job, now, self.app.current_theme.dark)
        )
        self._countdown_at = now if job.seen and has_countdown(job) else None

    def render_job(self, job: JobSnapshot) -> None:
        self.query_one("#detail-title", Static).update(
            render_title(job, self.app.current_theme.dark)
        )
        self._show_fields(job)
        self.query_one("#detail-payload", Static).update(render_payload(job))
        self.query_one("#detail-traceback", Static).update(render_traceback(job))
        self.query_one("#detail-history", HistoryView).show(job)
        self._show_related(related_options(self.app.store.get, job, self.app.current_theme.dark))

    def _show_related(self, options: list[Option]) -> None:
        related = self.query_one("#related", OptionList)
        self._watched = frozenset({self.job_id, *(o.id for o in options if o.id)})
        shown = [(option.id, str(option.prompt)) for option in options]
        if shown != self._related:
            if [i for i, _ in shown] == [i for i, _ in self._related]:
                # Same jobs, news about them: keep the user's place in the list.
                for index, option in enumerate(options):
                    related.replace_option_prompt_at_index(index, option.prompt)
            else:
                related.clear_options()
                related.add_options(options)
                if options:
                    related.highlighted = 0
            self._related = shown
        if related.display != bool(options):
            related.display = bool(options)
            self.refresh_bindings()  # enter opens related jobs only when there are some
        label = self.query_one("#related-label", Label)
        label.update(related_label(len(options)))
        label.display = bool(options)

    @on(OptionList.OptionSelected, "#related")
    def _open_related(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.post_message(OpenJob(event.option.id))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_related":
            return bool(self._related)
        return True

    def action_open_related(self) -> None:
        """Enter anywhere on the screen opens the highlighted related job."""
        option = self.query_one("#related", OptionList).highlighted_option
        if option is not None and option.id:
            self.post_message(OpenJob(option.id))

    def action_close(self) -> None:
        self.app.pop_screen()

    def action_retry(self) -> None:
        self.post_message(RunAction(Action.RETRY, self.job_id))

    def action_revoke(self) -> None:
        self.post_message(RunAction(Action.REVOKE, self.job_id))
