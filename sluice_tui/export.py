"""Plain-data views of the store, for ``dump`` and other scripts."""

from __future__ import annotations

from typing import Any

from sluice_tui.model.job import JobSnapshot


def job_to_dict(job: JobSnapshot) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "state": job.state.value,
        "history": [
            {
                "state": t.state.value,
                "timestamp": t.timestamp,
                "hostname": t.hostname,
                "event": t.event,
            }
            for t in job.history
        ],
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
