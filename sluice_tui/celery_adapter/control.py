"""Retry, revoke and worker controls through Celery: the ClusterControl the gate talks to."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from celery import Celery, uuid
from celery.backends.base import DisabledBackend

from sluice_tui.actions import (
    NEVER_KNOWN,
    ActionRefused,
    RetryCall,
    WorkerAction,
    WorkerCommand,
    WorkerReply,
)
from sluice_tui.celery_adapter.inspect import ask_figures, ask_held
from sluice_tui.model.job import JobSnapshot
from sluice_tui.model.states import JobState
from sluice_tui.model.worker_info import HeldJobs, WorkerFigures

# Celery cuts argsrepr/kwargsrepr at this many characters (Task.apply_async).
REPR_LIMIT = 1024
REPLY_TIMEOUT = 1.0
# How long a retry's planning waits for workers to say whether they hold the job.
INSPECT_TIMEOUT = 1.0

CELERY_STATES = {
    "PENDING": JobState.UNKNOWN,
    "RECEIVED": JobState.QUEUED,
    "STARTED": JobState.ACTIVE,
    "SUCCESS": JobState.COMPLETED,
    "FAILURE": JobState.FAILED,
    "REJECTED": JobState.FAILED,
    "RETRY": JobState.RETRYING,
    "REVOKED": JobState.CANCELLED,
}

ENABLE_EXTENDED = (
    "Set result_extended=True (and a result backend) in the app's Celery config, so "
    "the real arguments are stored and a retry can send exactly those."
)


def parse_call_reprs(args_repr: str | None, kwargs_repr: str | None) -> tuple[tuple, dict] | str:
    """The exact args and kwargs behind Celery's event reprs, or why they cannot be known.

    Only ``ast.literal_eval``, never eval.  A repr at Celery's length limit may
    have been cut, and one holding ``...`` was cut at a nesting level; both are
    refused rather than sent in a changed form.
    """
    if args_repr is None or kwargs_repr is None:
        return "the events carried no arguments for this job"
    for label, text in (("args", args_repr), ("kwargs", kwargs_repr)):
        if len(text) >= REPR_LIMIT:
            return f"its {label} were cut at Celery's {REPR_LIMIT}-character limit"
    try:
        args = ast.literal_eval(args_repr)
        kwargs = ast.literal_eval(kwargs_repr)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return "its arguments are not plain Python literals (objects, dates, ...)"
    if isinstance(args, list):
        args = tuple(args)
    if not isinstance(args, tuple) or not isinstance(kwargs, dict):
        return "its arguments did not read back as a tuple and a dict"
    if not all(isinstance(key, str) for key in kwargs):
        return "its kwargs have keys that are not strings"
    if _holds_ellipsis(args) or _holds_ellipsis(kwargs):
        return "its arguments were cut at Celery's nesting limit"
    return args, kwargs


def _holds_ellipsis(value: Any) -> bool:
    if value is Ellipsis:
        return True
    if isinstance(value, tuple | list | set | frozenset):
        return any(_holds_ellipsis(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_ellipsis(k) or _holds_ellipsis(v) for k, v in value.items())
    return False


@dataclass(frozen=True)
class WorkerCopy:
    """A job as a worker holding it describes it (inspect query_task)."""

    worker: str
    name: str | None
    args: tuple | None
    kwargs: dict
    routing_key: str | None
    exchange: str | None
    priority: int | None

    @classmethod
    def from_info(cls, worker: str, info: dict[str, Any]) -> WorkerCopy:
        delivery = info.get("delivery_info")
        delivery = delivery if isinstance(delivery, dict) else {}
        args, kwargs = info.get("args"), info.get("kwargs")
        priority = delivery.get("priority")
        return cls(
            worker=worker,
            name=info.get("name") if isinstance(info.get("name"), str) else None,
            args=tuple(args) if isinstance(args, list | tuple) else None,
            kwargs=kwargs if isinstance(kwargs, dict) else {},
            routing_key=delivery.get("routing_key") or None,
            exchange=delivery.get("exchange") or None,
            priority=priority if isinstance(priority, int) else None,
        )


def _why_not(job: JobSnapshot, parsed: object) -> str:
    if not job.name:
        return f"cannot retry job {job.id}: its task name is unknown. {ENABLE_EXTENDED}"
    return (
        f"cannot retry job {job.id} exactly: {parsed}, and neither the result backend "
        f"nor a worker has a copy of them. {ENABLE_EXTENDED}"
    )


class CeleryControl:
    def __init__(self, app: Celery, *, inspect_timeout: float = INSPECT_TIMEOUT) -> None:
        self.app = app
        self.inspect_timeout = inspect_timeout

    @property
    def has_backend(self) -> bool:
        return not isinstance(self.app.backend, DisabledBackend)

    def _meta(self, job_id: str) -> dict[str, Any] | None:
        if not self.has_backend:
            return None
        meta = self.app.backend.get_task_meta(job_id)
        return meta if isinstance(meta, dict) else None

    def backend_state(self, job_id: str) -> JobState | None:
        meta = self._meta(job_id)
        if meta is None:
            return None
        return CELERY_STATES.get(str(meta.get("status")), JobState.UNKNOWN)

    def retry_call(self, job: JobSnapshot) -> RetryCall:
        """The call to send again, from every source there is.

        The arguments: the result backend (result_extended), else the events'
        reprs when complete, else a worker that still holds the job.  The
        queue: task-sent's routing, else the backend's ``queue``
        (result_extended), else a worker that still holds the job (its
        delivery_info).  The workers are asked only when the first sources
        fall short and the job was revoked (a failed job has left its
        worker), and only for ``inspect_timeout`` seconds.
        """
        meta = self._meta(job.id) or {}
        held: WorkerCopy | None = None
        # A failed job has left its worker; a revoked one may wait there for its eta.
        may_be_held = job.state is JobState.CANCELLED
        if meta.get("name") and meta.get("args") is not None:
            name = str(meta["name"])
            args, kwargs = tuple(meta["args"]), dict(meta.get("kwargs") or {})
            source = "the result backend, result_extended"
        else:
            parsed = parse_call_reprs(job.args, job.kwargs) if job.name else None
            if isinstance(parsed, tuple):
                name, (args, kwargs) = str(job.name), parsed
                source = "the task events (complete, read with ast.literal_eval)"
            else:
                held = self.worker_copy(job.id) if may_be_held else None
                if held is None or held.name is None or held.args is None:
                    raise ActionRefused(_why_not(job, parsed))
                name, args, kwargs = held.name, held.args, held.kwargs
                source = f"worker {held.worker}, which still holds the job"
        routing = self._routing(job, meta)
        priority = None
        if routing is None and may_be_held:
            held = held or self.worker_copy(job.id)
            if held is not None and held.routing_key:
                routing = (None, held.routing_key, held.exchange, f"from worker {held.worker}")
        if held is not None:
            priority = held.priority
        queue, routing_key, exchange, queue_source = routing or (None, None, None, None)
        root = job.root_id or None
        return RetryCall(
            name=name,
            args=args,
            kwargs=kwargs,
            queue=queue,
            routing_key=routing_key,
            exchange=exchange,
            source=source,
            queue_source=queue_source,
            priority=priority,
            parent_id=job.parent_id or meta.get("parent_id") or None,
            # A job that was its own root starts a new tree; one inside a
            # workflow stays in it.
            root_id=root if root != job.id else None,
            fallback=self.fallback(name, args, kwargs),
            not_carried=NEVER_KNOWN,
        )

    @staticmethod
    def _routing(
        job: JobSnapshot, meta: dict[str, Any]
    ) -> tuple[str | None, str | None, str | None, str] | None:
        """(queue, routing_key, exchange, source) from the events or the backend."""
        if job.queue or job.routing_key:
            return job.queue, job.routing_key, job.exchange, "from the task-sent event"
        if meta.get("queue"):
            return str(meta["queue"]), None, None, "from the result backend, result_extended"
        return None

    def worker_copy(self, job_id: str) -> WorkerCopy | None:
        """What a worker still holding the job (active, reserved, or waiting for
        its eta) says about it; None when no worker replies in time.

        A failed job has left its worker; a job revoked before it ran (the
        backend says so at once) stays with a worker until its eta.
        """
        try:
            replies = self.app.control.inspect(timeout=self.inspect_timeout).query_task(job_id)
        except Exception:  # the broker may be away: the queue stays unknown
            return None
        for worker, tasks in (replies or {}).items():
            found = tasks.get(job_id) if isinstance(tasks, dict) else None
            if isinstance(found, list | tuple) and len(found) == 2 and isinstance(found[1], dict):
                return WorkerCopy.from_info(str(worker), found[1])
        return None

    def fallback(self, name: str, args: tuple, kwargs: dict) -> str:
        """Where Celery sends the task when no queue is given, in words."""
        default = self.app.conf.task_default_queue
        try:
            queue = self.app.amqp.router.route({}, name, args, kwargs).get("queue")
        except Exception:
            queue = None
        routed = getattr(queue, "name", queue)
        if routed and routed != default:
            return f"queue {routed!r}, where the app's task_routes send {name}"
        return f"the app's default queue {default!r}"

    def send(self, call: RetryCall) -> str:
        task_id = uuid()  # never the old id: workers drop ids they saw revoked
        options: dict[str, Any] = {}
        if call.queue:
            options["queue"] = call.queue
        elif call.routing_key:
            if call.exchange and call.exchange != call.routing_key:
                options["routing_key"] = call.routing_key
                options["exchange"] = call.exchange
            else:  # the default exchange, or one named as its queue: the key is the queue
                options["queue"] = call.routing_key
        if call.priority is not None:
            options["priority"] = call.priority
        if call.parent_id:
            options["parent_id"] = call.parent_id
        if call.root_id:
            options["root_id"] = call.root_id
        self.app.send_task(
            call.name, args=call.args, kwargs=call.kwargs, task_id=task_id, **options
        )
        return task_id

    def revoke(self, job_id: str, *, terminate: bool, signal: str) -> list[str]:
        replies = self.app.control.revoke(
            job_id, terminate=terminate, signal=signal, reply=True, timeout=REPLY_TIMEOUT
        )
        lines = []
        for reply in replies or ():
            for worker, answer in reply.items():
                if isinstance(answer, dict):
                    answer = answer.get("ok") or answer.get("error") or answer
                lines.append(f"{worker}: {answer}")
        return lines

    def worker_control(self, command: WorkerCommand) -> list[WorkerReply]:
        """One of Celery's broadcast controls, to the command's worker only."""
        a, control = WorkerAction, self.app.control
        to = {"destination": [command.hostname], "reply": True, "timeout": REPLY_TIMEOUT}
        match command.action:
            case a.POOL_GROW:
                replies = control.pool_grow(n=command.n, **to)
            case a.POOL_SHRINK:
                replies = control.pool_shrink(n=command.n, **to)
            case a.AUTOSCALE:
                replies = control.autoscale(command.max, command.min, **to)
            case a.ADD_CONSUMER:
                replies = control.add_consumer(command.queue, **to)
            case a.CANCEL_CONSUMER:
                replies = control.cancel_consumer(command.queue, **to)
            case a.RATE_LIMIT:
                replies = control.rate_limit(command.task, command.rate, **to)
            case a.TIME_LIMIT:
                replies = control.time_limit(
                    command.task, soft=command.soft, hard=command.hard, **to
                )
            case _:  # shutdown: the worker stops instead of replying
                control.shutdown(destination=[command.hostname])
                return []
        return worker_replies(replies)

    def worker_figures(self, destination: list[str] | None = None) -> list[WorkerFigures]:
        return ask_figures(self.app, destination=destination, timeout=self.inspect_timeout)

    def held_jobs(self, hostname: str) -> HeldJobs:
        return ask_held(self.app, hostname, timeout=self.inspect_timeout)


def worker_replies(replies: Any) -> list[WorkerReply]:
    """Celery's ``[{worker: {"ok": text} or {"error": text}}]``, one line per worker."""
    out = []
    for reply in replies or ():
        if not isinstance(reply, dict):
            continue
        for worker, answer in reply.items():
            if isinstance(answer, dict) and "error" in answer:
                out.append(WorkerReply(str(worker), False, str(answer["error"])))
            elif isinstance(answer, dict) and "ok" in answer:
                out.append(WorkerReply(str(worker), True, str(answer["ok"])))
            else:
                out.append(WorkerReply(str(worker), False, f"unexpected reply {answer!r}"))
    return out
