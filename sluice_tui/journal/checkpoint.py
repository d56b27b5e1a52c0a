"""A checkpoint's jobs: copied from the store at a cut, packed as JSON, loaded back as Jobs.

A job is kept whole, slot by slot (``Job.__slots__``), so that a job loaded
from a checkpoint is the job a replay of its events would make: every field,
the history with its times and steps, the attempt and error bookkeeping,
annotations.  Steps are stored once per chunk and referred to by number.  No
pickle: JSON (with Python's -Infinity for "never") and zlib only.

The copy is taken under the store's lock (see Journal.raw): it only copies
references and the two containers a later event changes in place (the history
list and ``extra``); turning it into JSON is done by the writer thread.
"""

from __future__ import annotations

import json
import operator
import zlib
from collections.abc import Container, Iterable
from dataclasses import fields as dataclass_fields
from typing import Any

from sluice_tui.journal.records import NoteBytes, step_from_json, step_to_json
from sluice_tui.model.job import Job, Omitted
from sluice_tui.model.states import JobState

FORMAT = 1
# Every slot but the history cap, which the restoring store decides (as in a replay).
SLOTS: tuple[str, ...] = tuple(name for name in Job.__slots__ if name != "_cap3")
_HIST = SLOTS.index("_hist")
_EXTRA = SLOTS.index("extra")
_STATE = SLOTS.index("state")
_ID = SLOTS.index("id")
_FIRST_SEEN = SLOTS.index("first_seen")
_GET = operator.attrgetter(*SLOTS)
# Keys of Job.extra whose values are not plain JSON (see job.py).
_OMITTED = "_omitted"
_RETRY_ERRORS = "_retry_errors"
_OMITTED_FIELDS = tuple(f.name for f in dataclass_fields(Omitted))
_STATES = {state.value: state for state in JobState}
LEVEL = 6  # checkpoints are written rarely and read at every start: small matters more


class CutNote(NoteBytes):
    """The mark of a cut in the record stream, carrying what was copied at it.

    ``copies``: the copied jobs (None for a checkpoint's start); ``gone``: ids
    the checkpoint lists that the store no longer held.
    """

    checkpoint: int
    chunk: int
    copies: list[list[Any]] | None
    gone: list[str]
    jobs: int
    bad: dict[str, int]  # the start's: the store's bad-event counts
    children: dict[str, list[str]] | None  # the last chunk's: every job's, in link order
    last: bool  # the checkpoint is complete with this chunk


def cut_note(checkpoint: int, chunk: int) -> CutNote:
    note = CutNote(json.dumps({"kind": "cut", "checkpoint": checkpoint, "chunk": chunk}).encode())
    note.checkpoint, note.chunk = checkpoint, chunk
    note.copies, note.gone, note.jobs, note.bad, note.last = None, [], 0, {}, False
    note.children = None
    return note


def copy_job(job: Job) -> list[Any]:
    """The job's slots as they are now; called under the store's lock, so kept to copying."""
    values = list(_GET(job))
    values[_HIST] = values[_HIST][:]
    extra = values[_EXTRA]
    if extra:
        extra = values[_EXTRA] = dict(extra)
        errors = extra.get(_RETRY_ERRORS)
        if errors is not None:
            extra[_RETRY_ERRORS] = dict(errors)
    return values


def pack_chunk(
    copies: list[list[Any]], gone: list[str], children: dict[str, list[str]] | None = None
) -> bytes:
    """Copied jobs (the ids no longer held, the links) as one compressed JSON document."""
    steps: list[Any] = []
    numbers: dict[int, int] = {}
    keep_alive = []  # numbers are by id(): the steps must outlive the loop
    jobs = []
    for values in copies:
        hist = values[_HIST]
        for i in range(1, len(hist), 3):
            step = hist[i]
            number = numbers.get(id(step))
            if number is None:
                number = numbers[id(step)] = len(steps)
                steps.append(step_to_json(step))
                keep_alive.append(step)
            hist[i] = number
        values[_STATE] = values[_STATE].value
        if values[_EXTRA]:
            values[_EXTRA] = _extra_to_json(values[_EXTRA])
        jobs.append(values)
    document = {"format": FORMAT, "slots": SLOTS, "steps": steps, "jobs": jobs, "gone": gone}
    if children is not None:
        document["children"] = children
    text = json.dumps(document, separators=(",", ":"), default=repr)
    return zlib.compress(text.encode(), LEVEL)


def _extra_to_json(extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(extra)
    omitted = out.get(_OMITTED)
    if isinstance(omitted, Omitted):
        plain = {name: getattr(omitted, name) for name in _OMITTED_FIELDS}
        plain["by_state"] = {state.value: n for state, n in omitted.by_state.items()}
        out[_OMITTED] = plain
    errors = out.get(_RETRY_ERRORS)
    if errors is not None:
        out[_RETRY_ERRORS] = [[t, *pair] for t, pair in errors.items()]
    return out


def _extra_from_json(extra: dict[str, Any]) -> dict[str, Any]:
    omitted = extra.get(_OMITTED)
    if omitted is not None:
        by_state = {_STATES[s]: n for s, n in omitted.pop("by_state").items()}
        extra[_OMITTED] = Omitted(**omitted, by_state=by_state)
    errors = extra.get(_RETRY_ERRORS)
    if errors is not None:
        extra[_RETRY_ERRORS] = {t: [exc, tb] for t, exc, tb in errors}
    return extra


class Unusable(ValueError):
    """A chunk this sluice-tui cannot load as it is (another layout of Job, or damage)."""


def unpack_chunk(body: bytes) -> tuple[list[list[Any]], list[Any], list[str]]:
    """(jobs as stored, the chunk's steps as JSON, ids gone); raises Unusable."""
    document = _document(body)
    return document["jobs"], document["steps"], document["gone"]


def links_of(body: bytes) -> dict[str, list[str]]:
    """The links a checkpoint's last chunk holds (every job's children, in order)."""
    children = _document(body).get("children")
    if not isinstance(children, dict):
        raise Unusable("a last chunk without the links")
    return children


def _document(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(zlib.decompress(body))
        if document["format"] != FORMAT or tuple(document["slots"]) != SLOTS:
            raise Unusable("a checkpoint of another layout of jobs")
        return document
    except (zlib.error, ValueError, KeyError, TypeError) as exc:
        raise Unusable(f"{type(exc).__name__}: {exc}") from None


def job_id(values: list[Any]) -> str:
    return values[_ID]


def first_seen_of(values: list[Any]) -> float:
    return values[_FIRST_SEEN]


def make_jobs(stored: Iterable[tuple[list[Any], list[Any]]], history_cap: int) -> list[Job]:
    """Jobs from (stored values, their chunk's steps as JSON); raises Unusable."""
    made = []
    steps_of: dict[int, list[Any]] = {}
    try:
        for values, step_table in stored:
            steps = steps_of.get(id(step_table))
            if steps is None:
                steps = steps_of[id(step_table)] = [step_from_json(s) for s in step_table]
            job = Job(values[_ID], values[_FIRST_SEEN], history_cap)
            hist = values[_HIST]
            for i in range(1, len(hist), 3):
                hist[i] = steps[hist[i]]
            values[_STATE] = _STATES[values[_STATE]]
            if values[_EXTRA]:
                values[_EXTRA] = _extra_from_json(values[_EXTRA])
            for name, value in zip(SLOTS, values, strict=True):
                setattr(job, name, value)
            made.append(job)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise Unusable(f"{type(exc).__name__}: {exc}") from None
    return made


def wanted_jobs(
    chunks: Iterable[tuple[int, int, bytes]], wanted: Container[str]
) -> tuple[dict[str, tuple[list[Any], list[Any], int, int]], set[str]]:
    """The newest stored copy of each wanted job over ``chunks`` (oldest first).

    Returns {id: (values, steps, checkpoint, chunk)} and the wanted ids a later
    chunk lists as gone (no copy of them counts: replay them instead).
    """
    found: dict[str, tuple[list[Any], list[Any], int, int]] = {}
    gone: set[str] = set()
    for checkpoint, chunk, body in chunks:
        jobs, steps, lost = unpack_chunk(body)
        for values in jobs:
            job = values[_ID]
            if job in wanted:
                found[job] = (values, steps, checkpoint, chunk)
                gone.discard(job)
        for job in lost:
            if job in wanted:
                found.pop(job, None)
                gone.add(job)
    return found, gone
