"""One job in full: fields, related jobs, payloads, traceback and state history."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.console import RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from sluice_tui.model.job import RETRIED_AS, RETRY_OF, WORKER_LOST, JobSnapshot
from sluice_tui.model.states import Action, JobState
from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.text import STATE_STYLES, duration, full_time, inert

if TYPE_CHECKING:
    from sluice_tui.ui.app import SluiceApp

MAX_RELATED = 200
LINK_KEYS = {RETRY_OF, RETRIED_AS}

WORKER_LOST_EXPLANATION = (
    "Its worker stopped sending heartbeats while the job ran, so the job is no longer known "
    "to be running: it may be lost with the worker, waiting to be redelivered, or still "
    "running on a worker that is only stalled. A later event about it will say which."
)


def state_text(snapshot_state) -> Text:
    return Text(snapshot_state.value, STATE_STYLES[snapshot_state])


def render_title(job: JobSnapshot) -> Text:
    title = Text.assemble(("Job ", "bold"), (inert(job.id), "bold"), "  ")
    title.append_text(state_text(job.state))
    if job.name:
        title.append("  " + inert(job.name), "bold")
    return title


def render_fields(job: JobSnapshot) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    if not job.seen:
        grid.add_row("state", state_text(job.state))
        grid.add_row("", Text(job.explanation or "", "italic"))
        return grid
    received = job.history[0].timestamp if job.history else None
    started = job.last_time(job.state.ACTIVE)
    rows = [
        ("id", job.id),
        ("name", job.name),
        ("worker", job.worker),
        ("queue", job.queue),
        ("routing key", job.routing_key),
        ("retries", None if job.retries is None else str(job.retries)),
        ("eta", job.eta),
        ("expires", job.expires),
        ("first event", full_time(received)),
        ("started", full_time(started)),
        ("runtime", duration(job.runtime)),
    ]
    rows += [
        (key.replace("_", " "), str(value))
        for key, value in sorted((job.extra or {}).items())
        if key not in LINK_KEYS  # shown as related jobs instead
    ]
    for key, value in rows:
        if value:
            grid.add_row(key, Text(inert(value)))
    if job.state is JobState.UNKNOWN and WORKER_LOST in (job.extra or {}):
        grid.add_row("", Text(WORKER_LOST_EXPLANATION, "italic"))
    return grid


def render_payload(job: JobSnapshot) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for key in ("args", "kwargs", "result", "exception"):
        value = getattr(job, key)
        if value is not None:
            style = "red" if key == "exception" else ""
            grid.add_row(key, Text(inert(value, multiline=True), style))
    return grid


def render_traceback(job: JobSnapshot) -> RenderableType:
    if not job.traceback:
        return Text("no traceback", "grey50")
    return Syntax(
        inert(job.traceback, multiline=True).rstrip(),
        "pytb",
        theme="ansi_dark",
        word_wrap=True,
        background_color="default",
    )


def render_history(job: JobSnapshot) -> RenderableType:
    if not job.history:
        return Text("no events yet", "grey50")
    table = Table(box=None, padding=(0, 1), header_style="bold", expand=False)
    for label in ("#", "time", "+", "state", "event", "host"):
        table.add_column(label, no_wrap=True, justify="right" if label in "#+" else "left")
    previous = None
    for n, step in enumerate(job.history, 1):
        since = "" if previous is None else "+" + duration(step.timestamp - previous)
        table.add_row(
            str(n),
            full_time(step.timestamp),
            since,
            state_text(step.state),
            step.event,
            inert(step.hostname),
        )
        previous = step.timestamp
    return table


def related_options(app: SluiceApp, job: JobSnapshot) -> list[Option]:
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
        other = app.store.get(job_id)
        prompt = Text.assemble((f"{relation:<11}", "bold"), inert(job_id), "  ")
        prompt.append_text(state_text(other.state))
        if other.name:
            prompt.append("  " + inert(other.name))
        options.append(Option(prompt, id=job_id))
    return options


class JobDetailScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="detail.close"),
        Binding("r", "retry", "Retry", id="detail.retry"),
        Binding("x", "revoke", "Revoke", id="detail.revoke"),
    ]

    app: SluiceApp

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self._version = -1
        self._related: list[tuple[str | None, str]] = []

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(id="detail-fields")
            yield Label("Related jobs (enter opens)", id="related-label", classes="section")
            yield OptionList(id="related")
            yield Label("Payload", classes="section")
            yield Static(id="detail-payload")
            yield Label("Traceback", classes="section")
            yield Static(id="detail-traceback")
            yield Label("History", classes="section")
            yield Static(id="detail-history")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_from_store(changed=True)
        self.query_one("#detail-body").focus()

    def refresh_from_store(self, changed: bool) -> None:
        store = self.app.store
        if self._version >= 0:
            changes = store.changes_since(self._version)
            self._version = changes.version
            if changes.job_ids is not None and self.job_id not in changes.job_ids:
                return
        else:
            self._version = store.version
        self.render_job(store.get(self.job_id))

    def render_job(self, job: JobSnapshot) -> None:
        self.query_one("#detail-title", Static).update(render_title(job))
        self.query_one("#detail-fields", Static).update(render_fields(job))
        self.query_one("#detail-payload", Static).update(render_payload(job))
        self.query_one("#detail-traceback", Static).update(render_traceback(job))
        self.query_one("#detail-history", Static).update(render_history(job))
        options = related_options(self.app, job)
        related = self.query_one("#related", OptionList)
        shown = [(option.id, str(option.prompt)) for option in options]
        if shown != self._related:
            self._related = shown
            related.clear_options()
            related.add_options(options)
            if options:
                related.highlighted = 0
        related.display = bool(options)
        self.query_one("#related-label").display = bool(options)

    @on(OptionList.OptionSelected, "#related")
    def _open_related(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.app.open_job(event.option.id)

    def action_close(self) -> None:
        self.app.pop_screen()

    def action_retry(self) -> None:
        self.app.request_action(Action.RETRY, self.job_id)

    def action_revoke(self) -> None:
        self.app.request_action(Action.REVOKE, self.job_id)
