"""The in-memory job store: thread-safe, bounded, with a cheap change feed.

One receiver thread writes; any number of readers (the UI tick, ``dump``) read
snapshots.  Readers poll :meth:`JobStore.changes_since` with the version they
last saw and get back only the ids that changed, so a 10 Hz UI never copies
the whole store.
"""

from __future__ import annotations

import operator
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, KeysView, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sluice_tui.model.job import (
    HISTORY_CAP,
    NO_FIELDS,
    WORKER_LOST,
    FieldPlan,
    Job,
    JobRow,
    JobSnapshot,
    Step,
)
from sluice_tui.model.queues import QueueBoard
from sluice_tui.model.states import ALL_STATES, FINISHED_STATES, JobState
from sluice_tui.model.task_types import TaskTypes
from sluice_tui.model.times import iso_epoch
from sluice_tui.model.worker_info import WorkerBoard
from sluice_tui.model.workers import SHUTDOWN_GRACE, TIME_LIMIT_SLACK, Worker, WorkerSnapshot

# Enum members as module globals for the ingest path (see the same in job.py).
_UNKNOWN = JobState.UNKNOWN
_QUEUED = JobState.QUEUED
_SCHEDULED = JobState.SCHEDULED
_ACTIVE = JobState.ACTIVE
_RETRYING = JobState.RETRYING
DEFAULT_MAX_JOBS = 100_000
# An unfinished job with no event for this long is aged out (see age_out): a
# purged queue, or a task sent where no worker listens, would otherwise leave
# jobs queued for ever.  A day is longer than any backlog a person still watches.
DEFAULT_STALE_AFTER = 24 * 3600.0
# Workers offline for this long are forgotten (autoscaled pods come and go).
DEFAULT_FORGET_WORKERS_AFTER = 24 * 3600.0
# How often age_out looks through the jobs, at most (it is one pass over all
# of them), and at least a hundred times per stale_after.
AGE_SCAN_EVERY = 60.0
# Bad-event reasons counted apart; any further kind shares one count.
MAX_BAD_REASONS = 100
MAX_REASON_LENGTH = 200
OTHER_BAD_REASONS = "other reasons (too many kinds to count apart)"
# Unfinished jobs that wait without a worker: the ones room can be made from.
WAITING_STATES = frozenset({JobState.UNKNOWN, JobState.QUEUED, JobState.RETRYING})
ACTOR = "sluice-tui"  # the hostname on history entries for our own actions
# A job running on a worker that stopped heartbeating is no longer known to
# run: it may be lost, redelivered (acks_late) or still running on a worker
# that is only stalled.  So it becomes unknown, and any later event about it
# (received again, succeeded, failed) moves it on as usual.
LOST_WITH_WORKER = Step(JobState.UNKNOWN, "worker lost", 5, demotes=JobState.ACTIVE)
MAX_GAPS = 100
# What a sweep can find about a worker (WorkerNews.what).
STOPPED = "stopped"  # no heartbeat for twice its interval: its running jobs lost
SHUTTING_DOWN = "shutting down"  # said goodbye while jobs ran: they finish first
RESTARTED = "restarted"  # a new process under its name: the old one's jobs lost
SHUTDOWN_OVERDUE = "shutdown overdue"  # no news of its jobs for the grace: lost


@dataclass(frozen=True, slots=True)
class WorkerNews:
    """What a sweep found about one worker (see JobStore.sweep)."""

    hostname: str
    what: str  # STOPPED, SHUTTING_DOWN, RESTARTED or SHUTDOWN_OVERDUE
    jobs: int  # jobs marked lost; for SHUTTING_DOWN, the jobs still running on it


RESYNC_PENDING = "resync pending"


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch of time in which events may have been lost."""

    start: float  # epoch seconds: the last moment the stream was known good
    end: float  # when events flowed again
    reason: str
    resync: str = RESYNC_PENDING  # what was done to make up for it
    settled: float | None = None  # when the resync said so (local clock)


RECONNECTING = "reconnecting"


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """What the receiver last said about its broker connection."""

    state: str  # "connecting", "connected", "reconnecting" or "stopped"
    broker: str  # always with the password masked
    error: str | None = None
    since: float = 0.0
    receiving: str = ""  # how events are read (diagnostics)


@dataclass(frozen=True, slots=True)
class StoreStats:
    events: int  # every event the store accepted, jobs and workers
    bad_events: int
    bad_by_reason: dict[str, int]
    evicted: int  # finished jobs forgotten to make room
    dropped_late: int  # events for jobs already evicted
    jobs: int
    max_jobs: int
    crowded_out: int = 0  # unfinished jobs forgotten to make room (see JobStore)
    aged_out: int = 0  # unfinished jobs dropped after stale_after with no event
    workers_forgotten: int = 0  # offline for longer than forget_workers_after
    stale_after: float = DEFAULT_STALE_AFTER
    forget_workers_after: float = DEFAULT_FORGET_WORKERS_AFTER


@dataclass(frozen=True, slots=True)
class Changes:
    version: int
    # In the order each first changed, so new jobs come in the order they
    # arrived.  None means the reader fell too far behind: re-read everything.
    job_ids: KeysView[str] | None
    workers_changed: bool


class JobStore:
    """Jobs and workers, kept bounded and fresh.

    Every time is epoch seconds: the events' own timestamps (Celery takes them
    from ``time.time()``, whatever the sender's zone) and the store's ``clock``
    for what the monitor dates itself.  Zones matter only when a time is shown.

    How jobs leave, so that neither old unfinished jobs nor a flood of new ones
    can hide a job that just finished:

    * Room.  Past ``max_jobs``, finished jobs go first, the first finished
      first, but the newest tenth of ``max_jobs`` finished jobs always stay.
      Then unfinished jobs waiting without a worker (queued, unknown,
      retrying) go, the first to wait first.  Running and scheduled jobs never
      go to make room.  A forgotten finished job ignores late events; a
      forgotten unfinished one comes back with its next event.
    * Age.  :meth:`age_out`, called every few seconds, drops unfinished jobs
      with no event for ``stale_after`` seconds, except a scheduled job until
      ``stale_after`` past its ETA and a running job while its worker is
      online.  It also forgets workers offline for ``forget_workers_after``.
    """

    def __init__(
        self,
        max_jobs: int = DEFAULT_MAX_JOBS,
        *,
        clock: Callable[[], float] = time.time,
        feed_limit: int | None = None,
        history_cap: int = HISTORY_CAP,
        stale_after: float = DEFAULT_STALE_AFTER,
        forget_workers_after: float = DEFAULT_FORGET_WORKERS_AFTER,
    ) -> None:
        if max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        if stale_after <= 0 or forget_workers_after <= 0:
            raise ValueError("stale_after and forget_workers_after must be positive")
        self.max_jobs = max_jobs
        self.stale_after = stale_after
        self.forget_workers_after = forget_workers_after
        self.history_cap = history_cap  # entries per job; see Job._trim
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        # Jobs per state, counted when asked (dump asks when quiet), at this version:
        # kept per event they cost ingest 3 %, and the job table counts its own.
        self._counted: tuple[int, dict[JobState, int]] = (-1, {})
        self._children: dict[str, list[str]] = {}
        # Jobs in the order they finished: eviction pops from the left, so it
        # never scans past the unfinished jobs it keeps.  An entry whose job
        # has since left or moved on is skipped.
        self._finished: deque[Job] = deque()
        self._min_finished = max(1, max_jobs // 10)
        # The jobs that were waiting at the last look (_look_for_waiting), oldest
        # first.  Not kept up to date per event (that cost ingest 3 %): it is
        # refilled by age_out's pass, or by eviction when it runs dry, and
        # the jobs that waited longest are in it anyway.
        self._waiting: deque[Job] = deque()
        self._created_since_look = 0
        self._next_scan = clock()  # when age_out next looks through the jobs
        # Ids of the last evicted finished jobs, to drop their late events: a
        # set to look in, and the order to forget them in.
        self._evicted: set[str] = set()
        self._evicted_order: deque[str] = deque()
        self._evicted_limit = max(1_000, max_jobs // 10)
        self._feed: list[str] = []
        self._feed_base = 0
        # A reader further behind than this reloads everything; the bound keeps
        # the feed (and the ids it holds on to) from outgrowing the jobs.
        self._feed_limit = feed_limit or max(10_000, max_jobs)
        self._workers: dict[str, Worker] = {}
        self._worker_version = 0
        self._events = 0
        self._evicted_total = 0
        self._crowded_out = 0
        self._aged_out = 0
        self._workers_forgotten = 0
        self._dropped_late = 0
        self._bad = Counter[str]()
        self._bad_samples: deque[tuple[float, str, str]] = deque(maxlen=200)
        self._status = ConnectionStatus("stopped", "", since=clock())
        self._deaf_since: float | None = None  # when the link was lost, while reconnecting
        self._notices: deque[tuple[float, str]] = deque(maxlen=50)
        self._notice_total = 0
        self._gaps: list[Gap] = []
        self._gap_total = 0
        # Lifetime figures per task name (held counts come from the jobs
        # themselves) and broker queue depths (written by the queue poller):
        # every layer that has the store has them.
        self.task_types = TaskTypes(self._lock, since=clock())
        self.queues = QueueBoard()
        self._queues_seen = self.queues.seen  # read inline on ingest: no call per job
        self.worker_info = WorkerBoard(clock)  # what workers said when asked (inspect)
        # Told of every change to jobs that no event carries (actions, resyncs,
        # lost workers, annotations), as (kind, arguments), so a history journal
        # can replay it; the arguments may hold Step and FieldPlan objects.
        self.journal_hook: Callable[[str, dict[str, Any]], None] | None = None

    # -- writer side -----------------------------------------------------

    def apply(
        self,
        job_id: str,
        step: Step,
        timestamp: float,
        hostname: str | None,
        data: Mapping[str, Any],
        plan: FieldPlan,
        *,
        from_event: bool = True,
    ) -> None:
        """Merge one job event, creating the job on first sight.

        ``from_event=False`` is for what the monitor learned otherwise (a
        resync, a lost worker): it changes the job but is not counted as an event.
        """
        self.ingest(job_id, step, timestamp, hostname, data, plan, from_event)

    def ingest(
        self,
        job_id: str,
        step: Step,
        timestamp: float,
        hostname: str | None,
        data: Mapping[str, Any],
        plan: FieldPlan,
        from_event: bool = True,
    ) -> None:
        """:meth:`apply`, for the event adapter's hot path.

        The same parameters, none of them keyword-only: CPython 3.11 does not
        specialize a call to a function that has one (a six-argument call
        measured 207 ns against 81 ns without it).
        """
        jobs = self._jobs
        # acquire/release, not `with`: the with statement costs this, the
        # hottest lock, twice as much (its __enter__ and __exit__ are looked up
        # and called as methods on every event).
        lock = self._lock
        lock.acquire()
        try:
            if from_event:
                self._events += 1
            elif self.journal_hook is not None:  # events are journaled raw
                # Told under the lock, as the other hooks are: a journal's
                # checkpoint, copying jobs under it, sees each change either
                # both recorded and applied or neither.
                self.journal_hook(
                    "apply",
                    {
                        "id": job_id,
                        "step": step,
                        "timestamp": timestamp,
                        "hostname": hostname,
                        "data": data,
                        "plan": plan,
                    },
                )
            job = jobs.get(job_id)
            created = job is None
            if created:
                if job_id in self._evicted:
                    self._dropped_late += 1
                    return
                # Seen when the message came, as a journal's replay dates it.
                seen = data.get("local_received") if from_event else None
                if seen.__class__ is not float:
                    clock = self._clock  # a method call on an attribute is not specialized
                    seen = clock()
                job = jobs[job_id] = Job(job_id, seen, self.history_cap)
                self._created_since_look += 1
            old_state = job.state
            old_parent = job.parent_id
            # job.apply(...), one call less.  Read as an attribute first: a
            # method call on it would look it up unspecialized on every event.
            apply_plan = plan.apply
            if apply_plan(job, step, timestamp, hostname, data):
                state = job.state
                if state in FINISHED_STATES and old_state not in FINISHED_STATES:
                    self._finished.append(job)
                    self.task_types.record(job.name, state, timestamp, job.runtime)
                elif state is _RETRYING:
                    self.task_types.record(job.name, state, timestamp, None)
                elif state is _QUEUED and job.queue not in self._queues_seen:
                    self.queues.saw(job.queue)
            if job.parent_id is not old_parent and job.parent_id != old_parent:
                self._link_child(job.parent_id, job_id, old_parent)
            feed = self._feed
            feed.append(job_id)
            if len(feed) > self._feed_limit:
                self._trim_feed()
            if created and len(jobs) > self.max_jobs:  # only a new job makes the store grow
                self._evict()
        finally:
            lock.release()

    def annotate(self, job_id: str, key: str, value: Any) -> None:
        """Attach a detail to a known job (ignored for unknown ids)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                if self.journal_hook is not None:
                    self.journal_hook("annotate", {"id": job_id, "key": key, "value": value})
                job.annotate(key, value)
                self._feed.append(job_id)

    def record_action(
        self,
        job_id: str,
        event: str,
        details: Mapping[str, Any],
        *,
        create: bool = False,
        name: str | None = None,
        at: float | None = None,
        precedes: Iterable[JobState] = (),
    ) -> bool:
        """Put something sluice-tui did into a job's history, without changing its state.

        ``at`` is when it was done (the user confirmed it, it was sent), not
        when the cluster answered: the store's clock by default.  Entries into
        ``precedes`` states are what it causes; they stay after it in the
        history even when a worker's clock dates them a little earlier.
        With ``create``, an id not yet seen is added as an ``unknown`` job (a
        retry that was just sent); otherwise an unknown id is left alone.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None and not create:
                return False
            at = self._clock() if at is None else at
            causes = frozenset(precedes)
            if self.journal_hook is not None:
                self.journal_hook(
                    "action",
                    {
                        "id": job_id,
                        "event": event,
                        "details": dict(details),
                        "create": create,
                        "name": name,
                        "at": at,
                        "precedes": sorted(causes),
                    },
                )
            if job is None:
                job = self._jobs[job_id] = Job(job_id, self._clock(), self.history_cap)
                self._created_since_look += 1
                if len(self._jobs) > self.max_jobs:
                    self._evict()
            step = Step(job.state, event, 7, passive=True, precedes=causes)
            job.record(step, at, ACTOR)
            if name is not None and job.name is None:
                job.name = name
            for key, value in details.items():
                job.annotate(key, value)
            self._feed.append(job_id)
            return True

    def apply_worker(
        self, hostname: str, kind: str, data: Mapping[str, Any], received_at: float
    ) -> None:
        with self._lock:
            self._events += 1
            worker = self._workers.get(hostname)
            if worker is None:
                worker = self._workers[hostname] = Worker(hostname)
            was_offline, had_lost = worker.offline, worker.lost
            worker.apply(kind, data, received_at)
            if was_offline and not worker.offline:
                self._came_back(worker, had_lost, received_at)
            self._worker_version += 1

    def _came_back(self, worker: Worker, had_lost: bool, at: float) -> None:
        """A worker that said goodbye is heard again: a new process under its name.

        The old process stopped heartbeating before its goodbye, so whatever
        it still ran then is not running any more: the next sweep marks those
        jobs lost unless news of them comes first.  In the stream, the new
        process's own jobs come after this, so every job running on the name
        now is the old one's.  Looked up here, once per comeback, since a
        sweep may not have seen the goodbye (a quick restart).
        """
        if worker.draining is not None:
            ids: Iterable[str] = worker.draining
        elif had_lost:
            ids = ()  # its jobs were judged already
        else:
            hostname = worker.hostname
            ids = [
                job.id
                for job in self._jobs.values()
                if job.state is _ACTIVE and job.worker == hostname
            ]
        jobs = self._jobs
        worker.superseded = {
            job_id: _news_mark(job)
            for job_id in ids
            if (job := jobs.get(job_id)) is not None
            and job.state is _ACTIVE
            and job.worker == worker.hostname
        }
        worker.back_at = at
        worker.draining = worker.quiet_since = None

    def resync(
        self,
        job_id: str,
        step: Step,
        timestamp: float,
        hostname: str | None,
        data: Mapping[str, Any],
        plan: FieldPlan,
    ) -> bool:
        """Apply a state learned by asking the cluster, where it tells something new.

        The step goes into the job's history like an event, so the job shows its
        state came from a resync.  A job that already agrees is left alone, and
        so is a forgotten (evicted) one.  Returns whether the job changed.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                if job_id in self._evicted:
                    return False
            elif job.state is step.state or not step.moves(job.state):
                return False
        self.apply(job_id, step, timestamp, hostname, data, plan, from_event=False)
        return True

    def sweep_workers(self, now: float, watched_since: float) -> dict[str, int]:
        """Mark jobs of workers that stopped as lost: :meth:`sweep`, told as lost counts.

        Returns each worker found lost with the number of its jobs marked lost
        (a worker only shutting down is not in it).
        """
        marked: dict[str, int] = {}
        for news in self.sweep(now, watched_since):
            if news.what != SHUTTING_DOWN:
                marked[news.hostname] = marked.get(news.hostname, 0) + news.jobs
        return marked

    def sweep(self, now: float, watched_since: float) -> list[WorkerNews]:
        """Judge workers that stopped, and the jobs they were running.

        * No heartbeat for twice its interval, and no goodbye (STOPPED): the
          process may be dead, so its running jobs become unknown at once
          (LOST_WITH_WORKER, noted WORKER_LOST).  ``watched_since`` is when
          the event stream last connected (see :meth:`Worker.gone_since`).
        * A goodbye (``worker-offline``) while jobs run on it is Celery's warm
          shutdown (SHUTTING_DOWN, told once): those jobs finish first, and
          stay running until their own events finish them.
        * Unless the old process is shown gone: a new one under the same
          name came online while they still ran (RESTARTED), or no news of
          any of them came for SHUTDOWN_GRACE (and past a known time limit;
          SHUTDOWN_OVERDUE).  Then they are marked lost as above.

        Changes to jobs go through :meth:`apply` and :meth:`annotate`, which a
        journal records.
        """
        news: list[WorkerNews] = []
        to_mark: list[tuple[str, str, float]] = []  # (job id, hostname, when)
        with self._lock:
            jobs = self._jobs
            running: dict[str, list[Job]] | None = None  # by worker, looked up once
            for worker in self._workers.values():
                hostname = worker.hostname
                if worker.superseded:
                    stale = _unchanged(jobs, hostname, worker.superseded)
                    worker.superseded = {}
                    when = now if worker.back_at is None else worker.back_at
                    to_mark.extend((job_id, hostname, when) for job_id in stale)
                    if stale:
                        news.append(WorkerNews(hostname, RESTARTED, len(stale)))
                if worker.lost:
                    continue
                since = worker.gone_since(now, watched_since)
                if since is None:
                    continue
                if worker.offline and worker.draining is not None:
                    self._judge_draining(worker, now, news, to_mark)
                    continue
                if running is None:
                    running = {}
                    for job in jobs.values():
                        if job.state is _ACTIVE and job.worker is not None:
                            running.setdefault(job.worker, []).append(job)
                active = running.get(hostname, ())
                if worker.offline and active:
                    worker.draining = {job.id: _news_mark(job) for job in active}
                    worker.quiet_since = since
                    news.append(WorkerNews(hostname, SHUTTING_DOWN, len(active)))
                    continue
                worker.lost = True
                to_mark.extend((job.id, hostname, since) for job in active)
                news.append(WorkerNews(hostname, STOPPED, len(active)))
            if news:
                self._worker_version += 1
        for job_id, hostname, when in to_mark:
            self.apply(job_id, LOST_WITH_WORKER, when, hostname, {}, NO_FIELDS, from_event=False)
            self.annotate(job_id, WORKER_LOST, hostname)
        return news

    def _judge_draining(
        self,
        worker: Worker,
        now: float,
        news: list[WorkerNews],
        to_mark: list[tuple[str, str, float]],
    ) -> None:
        """A worker shutting down: drop the jobs it finished, mark lost those overdue."""
        draining = worker.draining
        assert draining is not None
        hostname = worker.hostname
        jobs = self._jobs
        for job_id, mark in list(draining.items()):
            job = jobs.get(job_id)
            if job is None or job.state is not _ACTIVE or job.worker != hostname:
                del draining[job_id]  # finished, or moved on: news either way
                worker.quiet_since = now
            elif (fresh := _news_mark(job)) != mark:
                draining[job_id] = fresh  # a progress event from it
                worker.quiet_since = now
        if not draining:
            worker.lost = True  # all finished: nothing left to judge until it is heard again
            return
        quiet_since = now if worker.quiet_since is None else worker.quiet_since
        deadline = quiet_since + SHUTDOWN_GRACE
        if now < deadline:
            return
        overdue: list[tuple[str, float]] = []
        for job_id in draining:
            # The time limit is looked up only now: a sweep comes twice a second.
            limit = self._time_limit(hostname, jobs[job_id])
            due = deadline if limit is None else max(deadline, limit + TIME_LIMIT_SLACK)
            if now >= due:
                overdue.append((job_id, due))
        for job_id, due in overdue:
            del draining[job_id]
            to_mark.append((job_id, hostname, due))
        if overdue:
            news.append(WorkerNews(hostname, SHUTDOWN_OVERDUE, len(overdue)))
        if not draining:
            worker.lost = True

    def _time_limit(self, hostname: str, job: Job) -> float | None:
        """When the job's hard time limit ends, if its worker reported one for its task."""
        figures = self.worker_info.figures(hostname)
        if figures is None or job.name is None:
            return None
        limits = figures.limits.get(job.name)
        started = job.row().started
        if limits is None or limits.time_limit is None or started is None:
            return None
        try:
            seconds = float(limits.time_limit)
        except ValueError:
            return None
        return started + seconds if seconds > 0 and seconds == seconds else None

    def backdate(self, first_seen: Mapping[str, float]) -> None:
        """Date jobs as first seen earlier than this store saw them: a journal replay's jobs."""
        with self._lock:
            jobs = self._jobs
            for job_id, when in first_seen.items():
                job = jobs.get(job_id)
                if job is not None and when < job.first_seen:
                    job.first_seen = when
                    self._feed.append(job_id)  # readers re-read its row

    # -- a journal's checkpoints (sluice_tui.journal.checkpoint) ---------------

    def begin_checkpoint(
        self, since: int | None, mark: Callable[[int, list[str] | None, list[str], dict], None]
    ) -> None:
        """Tell ``mark`` what a checkpoint after version ``since`` (None: every job) must copy.

        ``mark(version, changed, held, bad)`` is called under the lock, so
        what it records is at this very point: the version now, the ids that
        changed since ``since`` (those no longer held included; None when it
        is too far behind to tell), every id held, and the bad-event counts.
        """
        with self._lock:
            version = self._feed_base + len(self._feed)
            changed = None
            if since is not None and since >= self._feed_base:
                changed = list(dict.fromkeys(self._feed[since - self._feed_base :]))
            mark(version, changed, list(self._jobs), dict(self._bad))

    def copy_jobs(
        self,
        job_ids: Iterable[str],
        copy: Callable[[Job], None],
        mark: Callable[[list[str], dict[str, list[str]] | None], None],
        *,
        links: bool = False,
    ) -> None:
        """Under the lock: ``copy(job)`` for each of ``job_ids`` held, then ``mark(gone,
        children)``: the ids not held and, with ``links``, every job's children in
        the order they were linked (else None)."""
        gone: list[str] = []
        with self._lock:
            jobs = self._jobs
            for job_id in job_ids:
                job = jobs.get(job_id)
                if job is None:
                    gone.append(job_id)
                else:
                    copy(job)
            children = None
            if links:
                children = {parent: kids[:] for parent, kids in self._children.items()}
            mark(gone, children)

    def order_by_first_seen(self) -> None:
        """Put the jobs in the order they were first seen (stable for equal times).

        A replay makes jobs in the order their first records come, which is
        that order; a restore that loads some jobs whole and replays others
        puts them back in it.
        """
        with self._lock:
            firsts = [job.first_seen for job in self._jobs.values()]
            if not all(map(operator.le, firsts, firsts[1:])):  # mostly they are already
                self._jobs = dict(sorted(self._jobs.items(), key=_first_seen_of))

    def relink(self, children: Mapping[str, Iterable[str]]) -> None:
        """Put each job's children in the order ``children`` (a checkpoint's) gives.

        A restore cannot tell in which order the children it loaded whole
        were linked; the checkpoint says.  Children it does not name (ones
        the writer no longer held) follow, in the order they were linked here.
        """
        with self._lock:
            jobs = self._jobs
            linked: dict[str, list[str]] = {}
            for parent, kids in children.items():
                held = [kid for kid in kids if (job := jobs.get(kid)) and job.parent_id == parent]
                if held:
                    linked[parent] = held
            for parent, kids in self._children.items():
                named = set(linked.get(parent, ()))
                rest = [kid for kid in kids if kid not in named]
                if rest:
                    linked.setdefault(parent, []).extend(rest)
            self._children = linked

    def load(self, jobs: Iterable[Job], bad: Mapping[str, int] | None = None) -> int:
        """Put jobs restored whole (a journal's checkpoint) into the store; how many went in.

        For a store being restored, before the first live event: what a
        replay of their events would have done besides making the jobs is
        done here (links, lifetime figures per task, queues seen).
        Ids already held are left alone.
        """
        loaded = 0
        with self._lock:
            held = self._jobs
            for job in jobs:
                job_id = job.id
                if job_id in held:
                    continue
                held[job_id] = job
                loaded += 1
                if job.state in FINISHED_STATES:
                    self._finished.append(job)
                if job.parent_id is not None:
                    self._children.setdefault(job.parent_id, []).append(job_id)
                if job.queue is not None and job.queue not in self._queues_seen:
                    self.queues.saw(job.queue)
                self._count_type(job)
                self._feed.append(job_id)
            for reason, n in (bad or {}).items():
                self._bad[reason] += n
            self._created_since_look += loaded
            if len(self._feed) > self._feed_limit:
                self._trim_feed()
            if len(held) > self.max_jobs:
                self._evict()
        return loaded

    def _trim_feed(self) -> None:
        """Keep the newest half of the change feed's limit; readers further behind re-read all."""
        feed = self._feed
        cut = len(feed) - self._feed_limit // 2
        del feed[:cut]
        self._feed_base += cut

    def _count_type(self, job: Job) -> None:
        """The lifetime figures a replay of the job's history would have recorded."""
        state = _UNKNOWN
        hist = job._hist  # the store's own jobs: no copy of the history
        for i in range(1, len(hist), 3):
            step = hist[i]
            if state in step.moves_from:  # step.moves(state), inlined
                old, state = state, step.state
                if state in FINISHED_STATES and old not in FINISHED_STATES:
                    self.task_types.record(job.name, state, hist[i - 1], job.runtime)
                elif state is _RETRYING:
                    self.task_types.record(job.name, state, hist[i - 1], None)

    def record_gap(self, start: float, end: float, reason: str) -> int:
        """Note that events between ``start`` and ``end`` may be missing; returns its number."""
        with self._lock:
            self._gaps.append(Gap(start, end, reason))
            if len(self._gaps) > MAX_GAPS:
                del self._gaps[0]
            self._gap_total += 1
            return self._gap_total

    def extend_gap(self, number: int, end: float, why: str | None = None) -> None:
        """Gap ``number`` lasted until ``end``; ``why``, if given, is added to its reason."""

        def extended(gap: Gap) -> Gap:
            if end <= gap.end:
                return gap
            return replace(
                gap, end=end, reason=gap.reason if why is None else f"{gap.reason}, {why}"
            )

        self._change_gap(number, extended)

    def settle_gap(self, number: int, outcome: str) -> None:
        """Say what the resync after gap ``number`` found (or why there was none)."""
        now = self._clock()
        self._change_gap(number, lambda gap: replace(gap, resync=outcome, settled=now))

    def _change_gap(self, number: int, change: Callable[[Gap], Gap]) -> None:
        """Gap ``number`` (as record_gap returned it) becomes ``change(gap)``, if still kept."""
        with self._lock:
            index = len(self._gaps) - (self._gap_total - number) - 1
            if 0 <= index < len(self._gaps):
                self._gaps[index] = change(self._gaps[index])

    def record_bad_event(self, reason: str, sample: str = "") -> None:
        """Count an event that could not be used; keep a short sample for diagnostics.

        Reasons may quote the event (its type, say), so they are cut, and past
        MAX_BAD_REASONS kinds the rest share one count: made-up event types
        cannot grow the counters without bound.  Samples are a bounded deque.
        """
        reason = reason[:MAX_REASON_LENGTH]
        with self._lock:
            bad = self._bad
            key = reason
            if key not in bad and len(bad) >= MAX_BAD_REASONS:
                key = OTHER_BAD_REASONS
            bad[key] += 1
            self._bad_samples.append((self._clock(), reason, sample[:500]))

    def add_notice(self, text: str) -> None:
        """Something the user should know that is not about one job."""
        with self._lock:
            self._notices.append((self._clock(), text))
            self._notice_total += 1

    def set_status(
        self,
        state: str,
        broker: str,
        error: str | None = None,
        receiving: str = "",
        *,
        hearing: bool | None = None,
        deaf_since: float | None = None,
    ) -> None:
        """The header's connection state.

        ``hearing``: whether events can reach this monitor now (by default,
        unless reconnecting); while they cannot, workers are judged as of
        ``deaf_since`` (default: now), as silence proves nothing.
        """
        now = self._clock()
        if hearing is None:
            hearing = state != RECONNECTING
        if hearing:
            self._deaf_since = None
        elif self._deaf_since is None:  # retries re-say "reconnecting": the first one counts
            self._deaf_since = now if deaf_since is None else min(now, deaf_since)
        self._status = ConnectionStatus(state, broker, error, now, receiving)

    def _judged_at(self, now: float) -> float:
        """When to judge whether workers are online: silence while cut off proves nothing."""
        deaf_since = self._deaf_since
        return now if deaf_since is None else min(now, deaf_since)

    def _link_child(self, parent_id: str | None, child_id: str, old_parent: str | None) -> None:
        if old_parent is not None:
            self._unlink_child(old_parent, child_id)
        if parent_id is not None:
            self._children.setdefault(parent_id, []).append(child_id)

    def _unlink_child(self, parent_id: str, child_id: str) -> None:
        siblings = self._children.get(parent_id)
        if siblings is None:
            return
        try:
            siblings.remove(child_id)
        except ValueError:
            return
        if not siblings:
            del self._children[parent_id]

    def _evict(self) -> None:
        """Make room: finished jobs, then waiting ones (see the class docstring)."""
        jobs = self._jobs
        finished = self._finished
        while len(jobs) > self.max_jobs:
            if len(finished) > self._min_finished:
                job = finished.popleft()
                job_id = job.id
                if jobs.get(job_id) is job and job.state in FINISHED_STATES:
                    # _drop(job, remember=True), inlined: once per job in a full store.
                    del jobs[job_id]
                    if job.parent_id is not None:
                        self._unlink_child(job.parent_id, job_id)
                    self._evicted.add(job_id)
                    self._evicted_order.append(job_id)
                    if len(self._evicted_order) > self._evicted_limit:
                        self._evicted.discard(self._evicted_order.popleft())
                    self._feed.append(job_id)
                    self._evicted_total += 1
            elif self._waiting or self._look_for_waiting():
                job = self._waiting.popleft()
                if jobs.get(job.id) is job and job.state in WAITING_STATES:
                    self._drop(job, remember=False)
                    self._crowded_out += 1
            else:
                return  # running or scheduled, or the newest finished: all kept

    def _look_for_waiting(self) -> bool:
        """Refill the waiting jobs for eviction; whether there are any.

        One pass over all jobs, so done only once a tenth of ``max_jobs`` new
        jobs came since the last look: until then the store may hold that many
        more jobs than ``max_jobs``.
        """
        if self._created_since_look < self._min_finished:
            return False
        self._refill_waiting()
        return bool(self._waiting)

    def _refill_waiting(self) -> None:
        self._waiting = deque(j for j in self._jobs.values() if j.state in WAITING_STATES)
        self._created_since_look = 0

    def _drop(self, job: Job, *, remember: bool) -> None:
        """Forget a job.

        A finished job is remembered, so that a late event (a producer's
        task-sent) does not bring it back as queued.  An unfinished one is not:
        its next event is news, and shows it again.
        """
        del self._jobs[job.id]
        if job.parent_id is not None:
            self._unlink_child(job.parent_id, job.id)
        if remember:
            self._evicted.add(job.id)
            self._evicted_order.append(job.id)
            if len(self._evicted_order) > self._evicted_limit:
                self._evicted.discard(self._evicted_order.popleft())
        self._feed.append(job.id)

    def age_out(self, now: float) -> tuple[int, int]:
        """Drop unfinished jobs and workers that have been quiet too long.

        The receiver calls it every few seconds; it looks through the jobs and
        workers about once a minute (at most every hundredth of
        ``stale_after``).  Nothing is stamped per event, which would cost
        ingest: a job is judged by its history, read only for the few
        unfinished jobs first seen longer than ``stale_after`` ago and not
        quiet for a good reason.  Returns (jobs aged out, workers forgotten).
        """
        with self._lock:
            if now < self._next_scan:
                return 0, 0
            self._next_scan = now + min(AGE_SCAN_EVERY, self.stale_after / 100)
            cutoff = now - self.stale_after
            stale = [
                job
                for job in self._jobs.values()
                if job.first_seen < cutoff
                and job.state not in FINISHED_STATES
                and not self._still_expected(job, now)
                and _last_heard(job) < cutoff
            ]
            for job in stale:
                self._drop(job, remember=False)
            self._aged_out += len(stale)
            self._refill_waiting()
            return len(stale), self._forget_workers(now)

    def _still_expected(self, job: Job, now: float) -> bool:
        """Whether a quiet unfinished job is quiet for a good reason."""
        if job.state is _SCHEDULED:
            # A countdown of three days is scheduled for three days.
            eta = iso_epoch(job.eta)
            return eta is not None and now - eta <= self.stale_after
        if job.state is _ACTIVE:
            # A long task says nothing while it runs; its worker's heartbeats do.
            worker = self._workers.get(job.worker) if job.worker is not None else None
            return worker is not None and worker.is_online(now)
        return False

    def _forget_workers(self, now: float) -> int:
        gone = [
            hostname
            for hostname, worker in self._workers.items()
            if now - worker.last_sign_of_life() > self.forget_workers_after
        ]
        for hostname in gone:
            del self._workers[hostname]
        if gone:
            self._worker_version += 1
            self._workers_forgotten += len(gone)
        return len(gone)

    # -- reader side -----------------------------------------------------

    @property
    def version(self) -> int:
        return self._feed_base + len(self._feed)

    def changes_since(self, version: int, worker_version: int = -1) -> Changes:
        """The ids that changed (or were evicted) since ``version``."""
        with self._lock:
            now = self._feed_base + len(self._feed)
            if version < self._feed_base:
                ids = None
            else:
                ids = dict.fromkeys(self._feed[version - self._feed_base :]).keys()
            return Changes(now, ids, worker_version != self._worker_version)

    @property
    def worker_version(self) -> int:
        return self._worker_version

    def get(self, job_id: str) -> JobSnapshot:
        """A snapshot of the job; an id never seen gives an explicit ``unknown`` job."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return JobSnapshot.unseen(job_id)
            return job.snapshot(tuple(self._children.get(job_id, ())))

    def rows(self, job_ids: Iterable[str]) -> dict[str, JobRow | None]:
        """List rows for ``job_ids``; None for ids the store no longer holds."""
        with self._lock:
            jobs = self._jobs
            return {
                job_id: (job.row() if (job := jobs.get(job_id)) is not None else None)
                for job_id in job_ids
            }

    def summaries(self, job_ids: Iterable[str]) -> dict[str, tuple[JobState, str | None, float]]:
        """(state, name, first_seen) of each of ``job_ids`` the store holds: a journal's rows."""
        with self._lock:
            jobs = self._jobs
            return {
                job_id: (job.state, job.name, job.first_seen)
                for job_id in job_ids
                if (job := jobs.get(job_id)) is not None
            }

    def all_rows(self) -> tuple[int, list[JobRow]]:
        """Every job's row, oldest first, with the version they were read at."""
        with self._lock:
            return self._feed_base + len(self._feed), [job.row() for job in self._jobs.values()]

    @property
    def event_count(self) -> int:
        return self._events

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)

    def snapshots(self, states: Iterable[JobState] | None = None) -> list[JobSnapshot]:
        """Snapshots of every job (or those in ``states``), oldest first."""
        wanted = None if states is None else frozenset(states)
        with self._lock:
            children = self._children
            return [
                job.snapshot(tuple(children.get(job.id, ())))
                for job in self._jobs.values()
                if wanted is None or job.state in wanted
            ]

    def find(self, prefix: str, limit: int = 10) -> list[str]:
        """Known ids starting with ``prefix``: lets users type a short id."""
        with self._lock:
            if prefix in self._jobs:
                return [prefix]
            return [job_id for job_id in self._jobs if job_id.startswith(prefix)][:limit]

    def same_call(
        self, name: str, args: str, kwargs: str | None, after: float, limit: int = 5
    ) -> list[str]:
        """Jobs of task ``name`` with these very arguments whose first entry came after
        ``after`` (epoch), the latest first: a retry sent from anywhere looks so.

        One pass over every job: for a retry's confirmation, not for a tick.
        """
        found: list[tuple[float, str]] = []
        with self._lock:
            for job in self._jobs.values():
                if job.args == args and job.name == name and job.kwargs == kwargs:
                    hist = job._hist  # in time order: its first entry is its first sight
                    if hist and hist[0] > after:
                        found.append((hist[0], job.id))
        found.sort(reverse=True)
        return [job_id for _, job_id in found[:limit]]

    def counts(self) -> dict[JobState, int]:
        """Jobs held per state."""
        with self._lock:
            version, counts = self._counted
            if version != self.version:
                counted = Counter(job.state for job in self._jobs.values())
                counts = {state: counted[state] for state in ALL_STATES}
                self._counted = (self.version, counts)
            return dict(counts)

    def workers(self, now: float | None = None) -> list[WorkerSnapshot]:
        now = self._judged_at(self._clock() if now is None else now)
        with self._lock:
            return [w.snapshot(now) for w in sorted(self._workers.values(), key=_hostname)]

    def worker_counts(self, now: float | None = None) -> tuple[int, int]:
        """(online, known) workers."""
        now = self._judged_at(self._clock() if now is None else now)
        with self._lock:
            online = sum(1 for w in self._workers.values() if w.is_online(now))
            return online, len(self._workers)

    @property
    def status(self) -> ConnectionStatus:
        return self._status

    def stats(self) -> StoreStats:
        with self._lock:
            return StoreStats(
                events=self._events,
                bad_events=sum(self._bad.values()),
                bad_by_reason=dict(self._bad),
                evicted=self._evicted_total,
                dropped_late=self._dropped_late,
                jobs=len(self._jobs),
                max_jobs=self.max_jobs,
                crowded_out=self._crowded_out,
                aged_out=self._aged_out,
                workers_forgotten=self._workers_forgotten,
                stale_after=self.stale_after,
                forget_workers_after=self.forget_workers_after,
            )

    def notices(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self._notices)

    def notices_since(self, seen: int) -> tuple[int, list[str]]:
        """Notices added after the first ``seen``, and the new total."""
        with self._lock:
            fresh = min(self._notice_total - seen, len(self._notices))
            texts = [text for _, text in list(self._notices)[len(self._notices) - fresh :]]
            return self._notice_total, texts

    def gaps(self) -> list[Gap]:
        """The most recent gaps, oldest first."""
        with self._lock:
            return list(self._gaps)

    def last_gap(self) -> Gap | None:
        with self._lock:
            return self._gaps[-1] if self._gaps else None

    @property
    def gap_count(self) -> int:
        return self._gap_total

    def ids_in(self, states: Iterable[JobState]) -> list[str]:
        """Ids of jobs in ``states``, oldest first."""
        wanted = frozenset(states)
        with self._lock:
            return [job.id for job in self._jobs.values() if job.state in wanted]

    def bad_event_samples(self) -> list[tuple[float, str, str]]:
        with self._lock:
            return list(self._bad_samples)


def _last_heard(job: Job) -> float:
    """The time of the job's latest history entry: its last event, or an action on it.

    Event times are the senders' epoch seconds, on the same base as the
    monitor's clock; a sender's clock a little off hardly matters at the scale
    of stale_after.
    """
    history = job.transitions()
    return history[-1].timestamp if history else job.first_seen


def _news_mark(job: Job) -> tuple[int, float | None]:
    """What changes when anything is added to the job's history (its length and last time)."""
    hist = job._hist  # the store's own job: no copy
    return len(hist), hist[-3] if hist else None


def _unchanged(
    jobs: Mapping[str, Job], hostname: str, marks: Mapping[str, tuple[int, float | None]]
) -> list[str]:
    """The ids in ``marks`` still running on ``hostname`` with nothing new since marked."""
    return [
        job_id
        for job_id, mark in marks.items()
        if (job := jobs.get(job_id)) is not None
        and job.state is _ACTIVE
        and job.worker == hostname
        and _news_mark(job) == mark
    ]


def _first_seen_of(item: tuple[str, Job]) -> float:
    return item[1].first_seen


def _hostname(worker: Worker) -> str:
    return worker.hostname
