"""``sluice-tui retry`` and ``sluice-tui revoke``: the TUI's actions as commands.

The id typed is looked up first (:mod:`sluice_tui.celery_adapter.resolve`): a
full id is used as is, a prefix only when exactly one job starts with it, and
the full id is printed before anything is asked.  Then the action passes
through the same gate as the keys, with the state the lookup found (else the
result backend's; without one it is unknown, so retry is refused and revoke
allowed, by the same rules).

Exit status: 0 when a known job was acted on; 1 when the broker or result
backend failed, or no worker took the revoke; 2 for a refusal (state rules,
read-only, no confirmation, a prefix that fits no job or several, a retry
whose original queue is not known and no --queue); 3 when a
revoke was sent for an id that no source knows (Celery allows it: workers
drop the job if it ever arrives), so a script never reads success on a real
job that was not touched.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sluice_tui.actions import ActionRefused, ActionsGate, earlier_text, plan_lines
from sluice_tui.celery_adapter.control import CeleryControl
from sluice_tui.celery_adapter.events import MAX_ID_LENGTH
from sluice_tui.celery_adapter.resolve import (
    MAX_CANDIDATES,
    IdKind,
    Lookup,
    Resolver,
    count_matches,
)
from sluice_tui.model.states import ActionNotAllowed
from sluice_tui.model.store import JobStore
from sluice_tui.terminal_text import inert

if TYPE_CHECKING:
    from celery import Celery

REFUSED = 2
FAILED = 1
UNKNOWN_ID = 3
T = TypeVar("T")
NEEDS_BACKEND = (
    "this app has no result backend, so a job's state (failed, cancelled, ...) cannot be "
    "known from it; set result_backend (with result_extended = True) in the app's config"
)


@dataclass(frozen=True)
class JobRequest:
    """What both commands are told: the id typed and how to look for it."""

    job_id: str
    yes: bool = False  # send without asking
    listen: float = 2.0  # seconds to listen to events when no other source knows the id
    read_only: bool = False
    enable_events: bool = True
    # The history journal to look in too: None for the broker's own file (if
    # there is one); ``use_history`` False for none.
    history: Path | None = None
    use_history: bool = True


@dataclass(frozen=True)
class JournalRead:
    """What the history journal gave a lookup."""

    path: Path | None = None  # the journal read; None: none was
    problem: str = ""  # why it could not be read


def _setup(app: Celery, request: JobRequest) -> tuple[ActionsGate, Resolver, JournalRead]:
    """The gate and the resolver over one store, filled from the journal first;
    what the journal gave (for the sources line)."""
    store = JobStore()  # the journal and the lookup fill it; the gate reads it
    journal = _from_journal(app, store, request)
    if journal.problem and request.history is not None:  # the file named could not be read
        _say(journal.problem)
        raise _Exit(REFUSED)
    resolver = Resolver(
        app,
        store,
        ask_workers=not request.read_only,
        enable_events=request.enable_events,
        listen_seconds=request.listen,
    )
    gate = ActionsGate(store, CeleryControl(app), read_only=request.read_only)
    return gate, resolver, journal


def _from_journal(app: Celery, store: JobStore, request: JobRequest) -> JournalRead:
    """Restore the history journal into ``store``: on Monday the weekend's failed
    jobs are there, names and arguments included, whatever the result backend
    kept."""
    if not request.use_history or not 0 < len(request.job_id) <= MAX_ID_LENGTH:
        return JournalRead()  # no journal, or no id (refused next)
    from sluice_tui.celery_adapter.connect import broker_label
    from sluice_tui.celery_adapter.events import EventAdapter
    from sluice_tui.journal import Journal, JournalError, default_path

    path = request.history or default_path(broker_label(app))
    if request.history is None and not path.exists():
        return JournalRead()
    try:
        journal = Journal.open(path, mode="read")
        try:
            # Only the jobs the id may name: a journal can hold a million.
            journal.restore(store, EventAdapter(store).handle, prefix=request.job_id)
        finally:
            journal.stop()
    except JournalError as exc:
        return JournalRead(problem=f"history journal not read: {exc}")
    return JournalRead(path)


def _say(text: str) -> None:
    print(f"sluice-tui: {inert(text)}", file=sys.stderr)


def _confirmed(request: JobRequest, question: str) -> bool | None:
    """True to go ahead; False if declined; None when no one can be asked."""
    if request.yes:
        return True
    if not sys.stdin.isatty():
        return None
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


class _Exit(Exception):
    """Stop the command with this exit status; the reason is already on stderr."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _through_gate(step: Callable[[], T], failure: str) -> T:
    """Run one step of an action; a refusal or a broker error ends the command."""
    try:
        return step()
    except (ActionNotAllowed, ActionRefused) as exc:
        _say(str(exc))
        raise _Exit(REFUSED) from None
    except Exception as exc:  # the broker or result backend failed
        _say(f"{failure}: {type(exc).__name__}: {exc}")
        raise _Exit(FAILED) from None


def _ask(request: JobRequest, question: str) -> None:
    confirmed = _confirmed(request, question)
    if confirmed is None:
        _say("not sent: no terminal to confirm on; add --yes to send without asking")
        raise _Exit(REFUSED)
    if not confirmed:
        _say("not sent")
        raise _Exit(REFUSED)


def _exit_status(command: Callable[..., None]) -> Callable[..., int]:
    def run(*args, **kwargs) -> int:
        try:
            command(*args, **kwargs)
        except _Exit as stop:
            return stop.status
        return 0

    return run


def _resolve(resolver: Resolver, text: str, journal: JournalRead) -> Lookup:
    """Look the typed id up; end the command unless it names exactly one job."""
    if not text or len(text) > MAX_ID_LENGTH:
        _say(f"not a job id: {text[:80]!r} (ids are 1 to {MAX_ID_LENGTH} characters)")
        raise _Exit(REFUSED)
    lookup = resolver.lookup(
        text, known=lambda found: _journal_sightings(found, resolver.store, journal)
    )
    if lookup.asked or lookup.not_asked:  # else the broker was away: said below
        _say(f"looked for {text}: {lookup.sources()}")
    resolved = lookup.resolved()
    if resolved is None:
        _refuse_prefix(lookup)
    if not lookup.known and lookup.failures:
        # A source that could not answer might know the job: never guess.
        _say(f"could not look up {text}: {'; '.join(lookup.failures)}")
        raise _Exit(FAILED)
    if resolved != text:
        print(
            f"{inert(text)} -> {inert(resolved)} {inert(lookup.describe(resolved))}",
            file=sys.stderr,
        )
    return lookup


def _journal_sightings(lookup: Lookup, store: JobStore, journal: JournalRead) -> None:
    """The jobs the journal gave that the typed id names, as one more source."""
    if journal.problem:  # the other sources still answer
        lookup.not_asked.append(journal.problem)
    if journal.path is None:
        return
    ids = store.find(lookup.query, MAX_CANDIDATES)
    if lookup.kind is not IdKind.PREFIX:
        ids = [i for i in ids if i == lookup.query]
    for job_id in ids:
        job = store.get(job_id)
        if job is not None:
            lookup.saw(job_id, job.state, "history journal")
    lookup.asked.append(f"history journal: {count_matches(len(ids))}")


def _refuse_prefix(lookup: Lookup) -> None:
    text = lookup.query
    matches = lookup.matches()
    if not matches and lookup.failures:
        _say(f"could not look up {text}: {'; '.join(lookup.failures)}")
        raise _Exit(FAILED)
    if not matches:
        hint = "" if lookup.has_backend else " (no result backend: finished jobs cannot be found)"
        _say(f"no job id starts with {text}{hint}")
        raise _Exit(REFUSED)
    more = " or more" if len(matches) >= MAX_CANDIDATES else ""
    _say(f"{len(matches)}{more} job ids start with {text}; give more of the id:")
    for job_id in matches:
        print(f"  {inert(job_id)}  {inert(lookup.describe(job_id))}", file=sys.stderr)
    raise _Exit(REFUSED)


def _unknown_note(lookup: Lookup) -> str:
    without = "" if lookup.has_backend else f"; {NEEDS_BACKEND}"
    return f"no job {lookup.query} is known anywhere: its state is unknown{without}"


@_exit_status
def run_retry(app: Celery, request: JobRequest, *, queue: str | None = None) -> None:
    """Retry the job ``request`` names; ``queue`` sends it there instead of its own."""
    gate, resolver, journal = _setup(app, request)
    lookup = _resolve(resolver, request.job_id, journal)
    job_id = lookup.resolved() or request.job_id
    try:
        plan = _through_gate(
            lambda: gate.plan_retry(job_id, queue=queue), f"could not look up {job_id}"
        )
    except _Exit:
        if not lookup.known:  # say why the state is unknown, and what would tell it
            _say(_unknown_note(lookup))
        raise
    call = plan.call
    lines = [
        ("args", json.dumps(list(call.args), default=repr)),
        ("kwargs", json.dumps(call.kwargs, default=repr)),
        *plan_lines(plan),
    ]
    print(
        f"retry {inert(plan.job.id)} ({plan.job.state.value}) as task {inert(call.name)}",
        *(f"  {label + ':':<10} {inert(text)}" for label, text in lines),
        sep="\n",
        file=sys.stderr,
    )
    if plan.queue is None:
        # A script must not send a job somewhere nobody chose: the TUI's dialog
        # asks for a queue here, the command needs it said.
        _say(
            f"not sent: the queue {plan.job.id} was sent to is not known; "
            "add --queue NAME to choose one"
        )
        raise _Exit(REFUSED)
    warning = earlier_text(plan)
    if warning:
        _say(warning)
    _ask(request, "Send it again as a new job?")
    print(inert(_through_gate(lambda: gate.retry(plan), "sending failed")))


@_exit_status
def run_revoke(
    app: Celery, request: JobRequest, *, terminate: bool = False, signal: str = "SIGTERM"
) -> None:
    """Revoke the job ``request`` names; ``terminate`` also stops it with ``signal``."""
    gate, resolver, journal = _setup(app, request)
    lookup = _resolve(resolver, request.job_id, journal)
    job_id = lookup.resolved() or request.job_id
    plan = _through_gate(lambda: gate.plan_revoke(job_id), f"could not look up {job_id}")
    how = f"terminate with {signal}" if terminate else "revoke"
    if plan.running and not terminate:
        _say("the job is running: without --terminate it keeps running to the end")
    state = plan.job.state.value
    if not lookup.known:
        _say(
            _unknown_note(lookup) + ". A revoke still tells the workers now running to drop "
            "it if it ever arrives (a job sent without events, or not sent yet)"
        )
        state = "not known anywhere"
    _ask(request, f"{how.capitalize()} job {inert(plan.job.id)} ({state})?")
    replies = _through_gate(
        lambda: gate.revoke(plan, terminate=terminate, signal=signal), "revoke failed"
    )
    for line in replies:
        print(inert(line))
    if not replies:
        _say("no worker answered the revoke within a second: no worker is known to have it")
        raise _Exit(FAILED)
    if not lookup.known:
        _say(f"revoke sent for {job_id}, which no source knows: no known job was touched")
        raise _Exit(UNKNOWN_ID)
