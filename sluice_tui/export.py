"""Plain-data views of the store, for ``dump`` and other scripts."""

from __future__ import annotations

from typing import Any

from sluice_tui.model.job import JobSnapshot, Omitted, Transition


def job_to_dict(job: JobSnapshot) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "state": job.state.value,
        "history": [_entry(t, job.omitted) for t in job.history],
        "args": job.args,
        "kwargs": job.kwargs,
        "result": job.result,
        "exception": job.exception,
        "traceback": job.traceback,
        "retries": job.retries,
        "worker": job.worker,
        "runtime": job.runtime,
        "eta": job.eta,
        "expires": job.expires,
        "queue": job.queue,
        "routing_key": job.routing_key,
        "parent_id": job.parent_id,
        "root_id": job.root_id,
        "children": list(job.children),
        "details": dict(job.extra or {}),
    }


def _entry(t: Transition, omitted: Omitted | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "state": t.state.value,
        "timestamp": t.timestamp,
        "hostname": t.hostname,
        "event": t.event,
        "attempt": t.attempt,
    }
    if t.action:
        entry["action"] = True
    if t.marker and omitted is not None:
        entry["not_kept"] = {
            "first_attempt": omitted.first_attempt,
            "last_attempt": omitted.last_attempt,
            "attempts": omitted.attempts,
            "events": omitted.events,
            "actions": omitted.actions,
            "late_events": omitted.late,
            "start": omitted.start,
            "end": omitted.end,
            "by_state": {state.value: n for state, n in omitted.by_state.items()},
        }
    return entry
