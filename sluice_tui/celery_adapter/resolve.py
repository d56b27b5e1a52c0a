"""Find the job a user means by an id typed on the command line.

Celery accepts any string as a task id and answers PENDING for ids it never
heard of, so a revoke of a mistyped or shortened id "succeeds" on nothing.
Here an id is looked up before anything is sent:

- a UUID (36 characters with dashes, as Celery makes them) is a full id;
- anything shorter made of hex digits and dashes is a prefix, resolved the way
  the TUI's ``g`` does: it names a job only when exactly one id starts with it
  (or when a source knows that exact id, for short custom ids);
- anything else is a custom id (``apply_async(task_id=...)``), used as is.

Sources, each bounded in time: the result backend (exact lookups anywhere;
listing ids for a prefix on Redis and file backends), the workers' inspect
replies (``active``, ``reserved``, ``scheduled``, ``revoked``; not in
read-only mode, since an inspect request is a published message), the
messages still waiting in the broker's queues (Redis, read in place), and,
when those found nothing, a short listen to the event stream.  What was found goes
into the store the actions gate reads, so the gate judges the same states.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from celery import Celery
from celery.backends.base import DisabledBackend
from celery.backends.filesystem import FilesystemBackend

from sluice_tui.celery_adapter.connect import broker_label, describe_error
from sluice_tui.celery_adapter.control import CELERY_STATES
from sluice_tui.celery_adapter.events import IDENTITY, MAX_ID_LENGTH
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.celery_adapter.resync import FROM_BACKEND, RESERVED, REVOKED, RUNNING, SCHEDULED
from sluice_tui.model.job import NO_FIELDS, Field, FieldPlan, Step
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore

UUID_SHAPE = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\Z")
PREFIX_SHAPE = re.compile(r"[0-9a-fA-F][0-9a-fA-F-]{0,34}\Z")

INSPECT_TIMEOUT = 1.0
BACKEND_BUDGET = 2.0  # seconds for listing and reading the result backend
LISTEN_SECONDS = 2.0
CONNECT_BUDGET = 5.0  # for the listen: time allowed to reach the event stream
MAX_CANDIDATES = 20  # ids read per source; enough to show that a prefix is too short
QUEUE_PEEK = 10_000  # messages read per broker queue list, newest and oldest alike
# A job waiting in a Redis queue: no worker holds it and no event names it yet.
IN_QUEUE = Step(JobState.QUEUED, "lookup: waiting in the broker", 1)

_REQUEST_FIELDS = FieldPlan.of(identity=IDENTITY, sets_worker=True)
_SCHEDULED_FIELDS = FieldPlan.of((Field("eta", "eta"),), identity=IDENTITY, sets_worker=True)
# Inspect commands, the step each reply means, and how it reads in messages.
_WORKER_LISTS: tuple[tuple[str, Step, str], ...] = (
    ("active", RUNNING, "running"),
    ("reserved", RESERVED, "reserved"),
    ("scheduled", SCHEDULED, "scheduled"),
    ("revoked", REVOKED, "in the revoked list"),
)


class IdKind(Enum):
    FULL = "full"
    PREFIX = "prefix"
    CUSTOM = "custom"


def id_kind(text: str) -> IdKind:
    """How a typed id is taken: see the module docstring."""
    if UUID_SHAPE.match(text):
        return IdKind.FULL
    if PREFIX_SHAPE.match(text):
        return IdKind.PREFIX
    return IdKind.CUSTOM


@dataclass(frozen=True)
class Sighting:
    """One source's word on one id."""

    state: JobState | None  # None: the source knows the id, not its state
    where: str  # "result backend", "worker w1@host (scheduled)", "events"

    @property
    def from_revoked_list(self) -> bool:
        return self.where.endswith("(in the revoked list)")


@dataclass
class Lookup:
    query: str
    kind: IdKind
    has_backend: bool = False
    sightings: dict[str, list[Sighting]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)  # "result backend: 1 match", ...
    not_asked: list[str] = field(default_factory=list)  # and why
    failures: list[str] = field(default_factory=list)  # sources that could not answer

    def saw(self, job_id: str, state: JobState | None, where: str) -> None:
        self.sightings.setdefault(job_id, []).append(Sighting(state, where))

    def matches(self) -> list[str]:
        """Ids that fit the query, in order."""
        if self.kind is not IdKind.PREFIX:
            return [self.query] if self.query in self.sightings else []
        return sorted(i for i in self.sightings if i.startswith(self.query))

    def resolved(self) -> str | None:
        """The one id meant, or None when there is none or more than one.

        A full or custom id is always itself.  A prefix is a short custom id
        when a source knows exactly that id as a job; an exact match found
        only in a revoked list is not enough (revoking a shortened id by
        mistake puts it there), so it competes like any other candidate.
        """
        if self.kind is not IdKind.PREFIX:
            return self.query
        exact = self.sightings.get(self.query, [])
        if any(not s.from_revoked_list for s in exact):
            return self.query
        matches = self.matches()
        return matches[0] if len(matches) == 1 else None

    @property
    def known(self) -> bool:
        """Whether any source knows the resolved id."""
        resolved = self.resolved()
        return resolved is not None and resolved in self.sightings

    def describe(self, job_id: str) -> str:
        """``completed (result backend)``, ``scheduled (worker w1@h)``..."""
        sightings = self.sightings.get(job_id, [])
        states = [s.state.value for s in sightings if s.state is not None]
        where = "; ".join(dict.fromkeys(s.where for s in sightings))
        return f"{states[0] if states else 'state unknown'} ({where})"

    def sources(self) -> str:
        return "; ".join([*self.asked, *self.not_asked, *self.failures])


class Resolver:
    """Looks an id up in every source it may ask, each within a time budget."""

    def __init__(
        self,
        app: Celery,
        store: JobStore,
        *,
        ask_workers: bool = True,
        enable_events: bool = True,
        listen_seconds: float = LISTEN_SECONDS,
        inspect_timeout: float = INSPECT_TIMEOUT,
    ) -> None:
        self.app = app
        self.store = store
        self.ask_workers = ask_workers
        self.enable_events = enable_events and ask_workers
        self.listen_seconds = listen_seconds
        self.inspect_timeout = inspect_timeout
        self._parallel = True

    def lookup(self, text: str, known: Callable[[Lookup], None] | None = None) -> Lookup:
        """What every source says of ``text``; ``known`` adds what the caller knows
        already (a history journal), after the result backend and before the
        workers and the listen, which it may make needless."""
        found = Lookup(text, id_kind(text))
        unreachable = self._unreachable()
        if unreachable:  # nothing can be sent either: fail now, not after every timeout
            found.failures.append(unreachable)
            return found
        self._ask_backend(found)
        if known is not None:
            known(found)
        if _finished(found):
            # The backend's outcome is the last word on a finished job, and an
            # id known exactly wins over longer ones it is a prefix of.
            found.not_asked.append("workers and events not needed (the job has finished)")
        elif not self.ask_workers:
            found.not_asked.append(
                "workers not asked (--read-only: an inspect request is a published message)"
            )
        else:
            self._ask_workers(found)
        if not _finished(found):
            self._ask_queues(found)
        # Listening is pointless on a broker the workers could not be asked through.
        if not found.matches() and self.listen_seconds > 0 and not found.failures:
            self._listen(found)
        return found

    def _unreachable(self) -> str | None:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=0)
                # kombu's filesystem transport rewrites its exchange table under
                # a per-process file lock, so threads of one process collide.
                self._parallel = conn.transport.driver_type != "filesystem"
        except Exception as exc:
            return (
                f"could not connect to the broker {broker_label(self.app)}: {describe_error(exc)}"
            )
        return None

    # -- the result backend ---------------------------------------------

    def _ask_backend(self, found: Lookup) -> None:
        backend = self.app.backend
        if isinstance(backend, DisabledBackend):
            found.not_asked.append("no result backend (finished jobs cannot be found)")
            return
        found.has_backend = True
        deadline = time.monotonic() + BACKEND_BUDGET
        try:
            ids = [found.query]
            listed = ""
            if found.kind is IdKind.PREFIX:
                lister = _lister(backend)
                if lister is None:
                    listed = f" (a {type(backend).__name__} cannot list ids: exact id only)"
                else:
                    ids += [i for i in _bounded(lister(found.query), deadline) if i != found.query]
            hits = 0
            for job_id in ids:
                if time.monotonic() > deadline:
                    listed += " (cut short by the time budget)"
                    break
                state = _backend_state(backend, job_id)
                if state is not None:
                    hits += 1
                    found.saw(job_id, state, "result backend")
                    step = _FINISHED_IN_BACKEND.get(state)
                    if step is not None and job_id in self.store:
                        # The store holds a journal's word on it, perhaps days
                        # old: the backend's outcome is newer (the gate reads the store).
                        self.store.resync(job_id, step, time.time(), None, {}, NO_FIELDS)
            found.asked.append(f"result backend: {count_matches(hits)}{listed}")
        except Exception as exc:  # unreachable, refused, a corrupt record...
            found.failures.append(f"result backend failed: {describe_error(exc)}")

    # -- the workers ----------------------------------------------------

    def _ask_workers(self, found: Lookup) -> None:
        replies: dict[str, Any] = {}
        errors: list[str] = []
        threads = [
            threading.Thread(target=self._inspect, args=(name, replies, errors), daemon=True)
            for name, _, _ in _WORKER_LISTS
        ]
        for thread in threads:  # four requests at once: one timeout, not four
            thread.start()
            if not self._parallel:
                thread.join()
        deadline = time.monotonic() + self.inspect_timeout + CONNECT_BUDGET
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            found.failures.append("workers: no answer in time (is the broker up?)")
        elif errors:
            found.failures.append(f"workers not asked: {errors[0]}")
        else:
            self._read_replies(found, dict(replies))

    def _read_replies(self, found: Lookup, replies: Mapping[str, Any]) -> None:
        answered: set[str] = set()
        hits: set[str] = set()
        running: set[str] = set()
        for name, step, label in _WORKER_LISTS:
            for worker, job_id, request in _entries(name, replies.get(name), answered):
                if not _fits(found, job_id) or (step is REVOKED and job_id in running):
                    continue  # revoked but still running (no terminate): it runs
                if step is RUNNING:
                    running.add(job_id)
                hits.add(job_id)
                found.saw(job_id, step.state, f"worker {worker} ({label})")
                plan = _SCHEDULED_FIELDS if step is SCHEDULED else _REQUEST_FIELDS
                self.store.resync(
                    job_id, step, time.time(), worker, request, NO_FIELDS if not request else plan
                )
        who = f"{len(answered)} answered" if answered else "none answered"
        found.asked.append(f"workers ({who}): {count_matches(len(hits))}")

    def _inspect(self, name: str, replies: dict[str, Any], errors: list[str]) -> None:
        try:
            inspect = self.app.control.inspect(timeout=self.inspect_timeout)
            replies[name] = getattr(inspect, name)()
        except Exception as exc:  # the broker is away: say so, never hang
            errors.append(describe_error(exc))

    # -- the broker's queues --------------------------------------------

    def _ask_queues(self, found: Lookup) -> None:
        """Jobs still waiting in the broker, read without taking them (Redis only).

        A Redis queue is a list that can be read in place; on RabbitMQ a
        message can only be seen by taking it, which no lookup should do.
        """
        try:
            with self.app.connection_for_read() as conn:
                if conn.transport.driver_type != "redis":
                    found.not_asked.append(
                        f"broker queues not read ({conn.transport.driver_type} cannot be "
                        "read without taking messages)"
                    )
                    return
                hits = 0
                channel = conn.default_channel
                for queue, job_id in _queued_ids(channel, self._queue_names()):
                    if _fits(found, job_id) and hits < MAX_CANDIDATES:
                        hits += 1
                        found.saw(job_id, JobState.QUEUED, f"broker queue {queue}")
                        self.store.resync(job_id, IN_QUEUE, time.time(), None, {}, NO_FIELDS)
                found.asked.append(f"broker queues: {count_matches(hits)}")
        except Exception as exc:
            found.failures.append(f"broker queues not read: {describe_error(exc)}")

    def _queue_names(self) -> list[str]:
        conf = self.app.conf
        names = [conf.task_default_queue]
        names += [q.name for q in conf.task_queues or () if getattr(q, "name", None)]
        return list(dict.fromkeys(n for n in names if isinstance(n, str) and n))

    # -- the event stream -----------------------------------------------

    def _listen(self, found: Lookup) -> None:
        """Hear the events for a moment: a job may be moving right now."""
        receiver = ReceiverThread(
            self.app,
            self.store,
            resync=False,
            broadcasts=False,  # a moment's listen for ids; revokes are not its business
            read_only=not self.ask_workers,
            enable_events=self.enable_events,
        )
        receiver.start()
        try:
            connected = _wait(lambda: self.store.status.state == "connected", CONNECT_BUDGET)
            if not connected:
                error = self.store.status.error or "no answer"
                found.failures.append(f"events not heard: {describe_error(error)}")
                return
            _wait(lambda: _heard(found, self.store), self.listen_seconds)
            # Let events for other matching ids arrive too: a prefix is judged
            # on every id that fits, not on the first.
            time.sleep(min(0.2, self.listen_seconds))
        finally:
            receiver.stop()
        ids = [i for i in self.store.find(found.query, MAX_CANDIDATES) if _fits(found, i)]
        for job_id in ids:
            found.saw(job_id, self.store.get(job_id).state, "events")
        found.asked.append(f"events ({self.listen_seconds:g} s): {count_matches(len(ids))}")


def _queued_ids(channel: Any, queues: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(queue, job id) of each message waiting in kombu's Redis lists, priorities included."""
    client = channel.client
    steps = getattr(channel, "priority_steps", [0]) or [0]
    for queue in queues:
        for priority in steps:
            key = channel._q_for_pri(queue, priority)  # kombu's name for a priority list
            for raw in client.lrange(key, 0, QUEUE_PEEK - 1):
                job_id = _message_id(raw)
                if job_id is not None:
                    yield queue, job_id


def _message_id(raw: str | bytes) -> str | None:
    """The task id of one kombu message as Redis stores it; None for anything else."""
    try:
        message = json.loads(raw)
        job_id = message["headers"]["id"]
    except (ValueError, TypeError, KeyError):
        return None
    return job_id if isinstance(job_id, str) and 0 < len(job_id) <= MAX_ID_LENGTH else None


_FINISHED_IN_BACKEND = {step.state: step for step in FROM_BACKEND.values()}


def _finished(found: Lookup) -> bool:
    return any(
        s.state is not None and s.state.finished for s in found.sightings.get(found.query, [])
    )


def _heard(found: Lookup, store: JobStore) -> bool:
    if found.kind is IdKind.PREFIX:
        return bool(store.find(found.query, 1))
    return found.query in store


def _fits(found: Lookup, job_id: str) -> bool:
    if found.kind is IdKind.PREFIX:
        return job_id.startswith(found.query)
    return job_id == found.query


def _entries(
    name: str, replies: Any, answered: set[str]
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(worker, id, request fields) from one inspect reply; malformed parts skipped."""
    if not isinstance(replies, Mapping):
        return
    for worker, items in replies.items():
        if not isinstance(worker, str) or not isinstance(items, list):
            continue
        answered.add(worker)
        for item in items:
            if name == "revoked":
                request: Any = {}
                job_id = item
            elif name == "scheduled" and isinstance(item, Mapping):
                request = item.get("request")
                request = (
                    {**request, "eta": item.get("eta")} if isinstance(request, Mapping) else {}
                )
                job_id = request.get("id")
            else:
                request = item if isinstance(item, Mapping) else {}
                job_id = request.get("id")
            if isinstance(job_id, str) and 0 < len(job_id) <= MAX_ID_LENGTH:
                yield worker[:MAX_ID_LENGTH], job_id, request


def _lister(backend: Any) -> Callable[[str], Iterable[str]] | None:
    """How to list the ids starting with a prefix in this backend, if it can."""
    if isinstance(backend, FilesystemBackend):
        return lambda prefix: _list_files(backend, prefix)
    client = getattr(backend, "client", None)
    if hasattr(client, "scan_iter") and hasattr(backend, "get_key_for_task"):
        return lambda prefix: _scan_redis(backend, client, prefix)
    return None


def _scan_redis(backend: Any, client: Any, prefix: str) -> Iterator[str]:
    # Hex digits and dashes hold no glob characters, so the prefix is safe in MATCH.
    keyprefix = _keyprefix(backend)
    for key in client.scan_iter(match=keyprefix + prefix + "*", count=1000):
        yield _text(key)[len(keyprefix) :]


def _list_files(backend: FilesystemBackend, prefix: str) -> Iterator[str]:
    keyprefix = _keyprefix(backend)
    with os.scandir(backend.path) as entries:
        for entry in entries:
            name = _text(entry.name)
            if name.startswith(keyprefix + prefix):
                yield name[len(keyprefix) :]


def _keyprefix(backend: Any) -> str:
    # The backend's own key for an id, global_keyprefix included (it refuses "").
    return _text(backend.get_key_for_task("x"))[:-1]


def _bounded(ids: Iterable[str], deadline: float) -> list[str]:
    taken: list[str] = []
    for job_id in ids:
        if len(taken) >= MAX_CANDIDATES or time.monotonic() > deadline:
            break
        taken.append(job_id)
    return taken


def _backend_state(backend: Any, job_id: str) -> JobState | None:
    """The backend's state for an id, or None for PENDING (which means: no record)."""
    meta = backend.get_task_meta(job_id)
    status = meta.get("status") if isinstance(meta, Mapping) else None
    if status in (None, "PENDING"):
        return None
    return CELERY_STATES.get(str(status), JobState.UNKNOWN)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def count_matches(hits: int) -> str:
    """`no match`, `1 match`, `3 matches`: how a lookup says what a source gave."""
    return "no match" if not hits else f"{hits} match{'es' if hits != 1 else ''}"


def _wait(condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
