"""Retry and revoke through Celery: the ClusterControl the actions gate talks to."""

from __future__ import annotations

import ast
from typing import Any

from celery import Celery, uuid
from celery.backends.base import DisabledBackend

from sluice_tui.actions import ActionRefused, RetryCall
from sluice_tui.model.job import JobSnapshot
from sluice_tui.model.states import JobState

# Celery cuts argsrepr/kwargsrepr at this many characters (Task.apply_async).
REPR_LIMIT = 1024
REPLY_TIMEOUT = 1.0

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


class CeleryControl:
    def __init__(self, app: Celery) -> None:
        self.app = app

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
        meta = self._meta(job.id)
        if meta and meta.get("name") and meta.get("args") is not None:
            return RetryCall(
                name=str(meta["name"]),
                args=tuple(meta["args"]),
                kwargs=dict(meta.get("kwargs") or {}),
                queue=job.queue or meta.get("queue"),
                routing_key=job.routing_key,
                exchange=job.exchange,
                source="the result backend (result_extended)",
            )
        if not job.name:
            raise ActionRefused(
                f"cannot retry job {job.id}: its task name is unknown. {ENABLE_EXTENDED}"
            )
        parsed = parse_call_reprs(job.args, job.kwargs)
        if isinstance(parsed, str):
            raise ActionRefused(
                f"cannot retry job {job.id} exactly: {parsed}, and the result backend "
                f"has no copy of them. {ENABLE_EXTENDED}"
            )
        args, kwargs = parsed
        return RetryCall(
            name=job.name,
            args=args,
            kwargs=kwargs,
            queue=job.queue,
            routing_key=job.routing_key,
            exchange=job.exchange,
            source="the task events (complete, read with ast.literal_eval)",
        )

    def send(self, call: RetryCall) -> str:
        task_id = uuid()  # never the old id: workers drop ids they saw revoked
        options: dict[str, Any] = {}
        if call.queue:
            options["queue"] = call.queue
        elif call.routing_key:
            options["routing_key"] = call.routing_key
            if call.exchange:
                options["exchange"] = call.exchange
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
