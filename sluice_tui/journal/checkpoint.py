"""A checkpoint's jobs: copied from the store at a cut, packed as JSON, loaded back as Jobs.

A job is kept whole, slot by slot (``Job.__slots__``), so that a job loaded
from a checkpoint is the job a replay of its events would make: every field,
the history with its times and steps, the attempt and error bookkeeping,
annotations.  Steps are stored once per chunk and referred to by number.  No
pickle: JSON (with Python's -Infinity for "never") and zlib only.

The copy is taken under the store's lock, between two records the writer
process applies to its replica (see checkpointer.py): it only copies
references and the two containers a later event changes in place (the history
list and ``extra``); turning it into JSON is done when the batch is written.
"""

from __future__ import annotations

import json
import operator
import struct
import sys
import zlib
from array import array
from collections.abc import Container, Iterable
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

from sluice_tui.journal.records import NoteBytes, step_from_json, step_to_json
from sluice_tui.model.job import Job, Omitted
from sluice_tui.model.states import JobState

FORMAT = 1
# Every slot but the history cap, which the restoring store decides (as in a replay).
SLOTS: tuple[str, ...] = tuple(name for name in Job.__slots__ if name != "_cap3")
_ID = SLOTS.index("id")
_FIRST_SEEN = SLOTS.index("first_seen")
_GET = operator.attrgetter(*SLOTS)


def _compile_fill() -> Any:
    """``fill(job, values)``: every slot set in one statement (a loop of setattr costs 3x)."""
    if not all(name.isidentifier() for name in SLOTS):
        raise ValueError("Job slots must be names")
    targets = ", ".join(f"job.{name}" for name in SLOTS)
    names: dict[str, Any] = {}
    exec(f"def fill(job, values):\n    {targets}, = values\n", names)  # from Job's own slots
    return names["fill"]


_FILL = _compile_fill()
# Keys of Job.extra whose values are not plain JSON (see job.py).
_OMITTED = "_omitted"
_RETRY_ERRORS = "_retry_errors"
_OMITTED_FIELDS = tuple(f.name for f in dataclass_fields(Omitted))
_STATES = {state.value: state for state in JobState}
# zlib level 1: a third of level 6's CPU (the writer process packs every job
# once) for a chunk about a tenth bigger.
LEVEL = 1
# Text that repeats across jobs (hosts, task names, queues): kept once per chunk.
_SHARED = frozenset({"name", "worker", "queue", "exchange", "routing_key"})
_VALUE = operator.attrgetter("_value_")  # JobState.value without the enum's descriptor
_LITTLE = sys.byteorder == "little"


class CutNote(NoteBytes):
    """The mark of a cut in the record stream, carrying what was copied at it.

    ``copies``: the copied jobs (None for a checkpoint's start); ``gone``: ids
    the checkpoint lists that the store no longer held.
    """

    checkpoint: int
    chunk: int
    copies: Copies | None
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


class Copies:
    """Jobs copied at one cut, kept flat: no object per job that the collector would chase.

    ``add`` runs under the store's lock, once per job a checkpoint holds:
    it copies what a later event changes in place (the history, ``extra``)
    and references the rest.
    """

    __slots__ = ("extras", "histories", "lengths", "values")

    def __init__(self) -> None:
        self.values: list[Any] = []  # every job's slots, one job after the other
        self.histories: list[Any] = []  # every job's history entries, flat
        self.lengths = array("I")  # history entries per job
        self.extras: dict[int, dict[str, Any]] = {}  # by job number, for jobs with any

    def add(self, job: Job) -> None:
        self.values.extend(_GET(job))
        hist = job._hist
        self.histories.extend(hist)
        self.lengths.append(len(hist) // 3)
        extra = job.extra
        if extra:
            extra = dict(extra)
            errors = extra.get(_RETRY_ERRORS)
            if errors is not None:
                extra[_RETRY_ERRORS] = dict(errors)
            self.extras[len(self.lengths) - 1] = extra

    def __len__(self) -> int:
        return len(self.lengths)


def pack_chunk(
    copies: Copies, gone: list[str], children: dict[str, list[str]] | None = None
) -> bytes:
    """Copied jobs (the ids no longer held, the links) as one compressed chunk.

    Column by column, with C doing nearly all of it (writing costs the writer
    thread a few microseconds a job, and loading 100 000 jobs well under a
    second): times as arrays of doubles, the rest as JSON lists; each step
    once, the histories referring to it by number.
    """
    n = len(copies)
    width = len(SLOTS)
    kinds: list[str] = []
    plain: dict[str, Any] = {}
    parts: list[bytes] = []
    ids = copies.values[_ID::width]
    for k, name in enumerate(SLOTS):
        values = copies.values[k::width]
        if name == "_hist":
            kinds.append("history")
            times, numbers, hosts, steps = _pack_histories(copies.histories)
            parts += [_binary(copies.lengths), times, numbers]
            plain["_hosts"], plain["_steps"] = hosts, steps
        elif name == "extra":
            kinds.append("extra")
            plain[name] = {str(i): _extra_to_json(e) for i, e in copies.extras.items()}
        elif name == "state":
            kinds.append("state")
            plain[name] = list(map(_VALUE, values))
        elif _all_the_same(values):
            # Many fields are the same in every job (None, mostly): said once.
            kinds.append("same")
            plain[name] = values[0]
        elif name == "root_id" and values == ids:
            kinds.append("the id")  # a job that is its own root: the usual case

        elif set(map(type, values)) <= {float}:
            kinds.append("time")
            parts.append(_binary(array("d", values)))
        else:
            kinds.append("json")
            plain[name] = values
    header = {
        "format": FORMAT,
        "slots": SLOTS,
        "kinds": kinds,
        "jobs": n,
        "parts": [len(part) for part in parts],
        "plain": plain,
        "gone": gone,
        "children": children,
    }
    head = json.dumps(header, separators=(",", ":"), default=repr).encode()
    return zlib.compress(b"".join([struct.pack("<I", len(head)), head, *parts]), LEVEL)


def _all_the_same(values: list[Any]) -> bool:
    """Whether every value is the first, of its type too (1 == 1.0 == True)."""
    if not values or values.count(values[0]) != len(values):
        return False
    return len(set(map(type, values))) == 1


def _pack_histories(flat: list[Any]) -> tuple[bytes, bytes, list[str | None], list[Any]]:
    """(the entries' times, their steps' numbers, their hosts, the steps) of flat histories."""
    steps = flat[1::3]
    ids = list(map(id, steps))
    by_id = dict(zip(ids, steps, strict=True))  # each distinct step once (the objects live on)
    numbers = {key: n for n, key in enumerate(by_id)}
    return (
        _binary(array("d", flat[0::3])),
        _binary(array("I", map(numbers.__getitem__, ids))),
        flat[2::3],
        [step_to_json(step) for step in by_id.values()],
    )


def _binary(values: array) -> bytes:
    if not _LITTLE:
        values.byteswap()
    return values.tobytes()


def _numbers(code: str, data: bytes) -> array:
    values = array(code)
    values.frombytes(data)
    if not _LITTLE:
        values.byteswap()
    return values


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


@dataclass
class Chunk:
    rows: list[tuple[Any, ...]]  # each job's slots, in SLOTS order
    gone: list[str]
    children: dict[str, list[str]] | None


def unpack_chunk(body: bytes) -> Chunk:
    """A chunk's jobs as rows of slot values (the steps made, the text shared); raises Unusable."""
    try:
        data = zlib.decompress(body)
        (size,) = struct.unpack_from("<I", data)
        header = json.loads(data[4 : 4 + size])
        if header["format"] != FORMAT or tuple(header["slots"]) != SLOTS:
            raise Unusable("a checkpoint of another layout of jobs")
        n = header["jobs"]
        offset = 4 + size
        parts = []
        for length in header["parts"]:
            parts.append(data[offset : offset + length])
            offset += length
        if offset != len(data):
            raise Unusable("its parts do not add up")
        parts.reverse()  # taken from the end: pop()
        plain = header["plain"]
        shared: dict[Any, Any] = {}
        columns: list[list[Any]] = []
        for name, kind in zip(SLOTS, header["kinds"], strict=True):
            if kind == "history":
                hosts = plain["_hosts"]
                column = _histories(
                    parts, plain["_steps"], list(map(shared.setdefault, hosts, hosts))
                )
            elif kind == "extra":
                column = [None] * n
                for i, extra in plain[name].items():
                    column[int(i)] = _extra_from_json(extra)
            elif kind == "state":
                column = list(map(_STATES.__getitem__, plain[name]))
            elif kind == "time":
                column = _numbers("d", parts.pop()).tolist()
            elif kind == "json":
                column = plain[name]
                if name in _SHARED:  # one copy of each name, as the adapter keeps them
                    column = list(map(shared.setdefault, column, column))
            elif kind == "same":
                column = [plain[name]] * n
            elif kind == "the id" and len(columns) > _ID:
                column = columns[_ID]
            else:
                raise Unusable(f"a column of kind {kind!r}")
            if len(column) != n:
                raise Unusable(f"{len(column)} values of {name} for {n} jobs")
            columns.append(column)
        gone = [str(job) for job in header["gone"]]
        children = header["children"]
        if children is not None and not isinstance(children, dict):
            raise Unusable("links that are not a mapping")
        return Chunk(list(zip(*columns, strict=True)) if n else [], gone, children)
    except Unusable:
        raise
    except (zlib.error, struct.error, ValueError, KeyError, TypeError, IndexError) as exc:
        raise Unusable(f"{type(exc).__name__}: {exc}") from None


def _histories(parts: list[bytes], step_table: list[Any], hosts: list[Any]) -> list[list[Any]]:
    lengths = _numbers("I", parts.pop())
    times = _numbers("d", parts.pop()).tolist()
    steps = [step_from_json(step) for step in step_table]
    numbers = list(map(steps.__getitem__, _numbers("I", parts.pop())))
    if not len(times) == len(numbers) == len(hosts) == sum(lengths):
        raise Unusable("histories that do not add up")
    flat: list[Any] = [None] * (3 * len(times))
    flat[0::3] = times
    flat[1::3] = numbers
    flat[2::3] = hosts
    histories = []
    start = 0
    for length in lengths:
        end = start + 3 * length
        histories.append(flat[start:end])
        start = end
    return histories


def job_id(row: tuple[Any, ...]) -> str:
    return row[_ID]


def first_seen_of(row: tuple[Any, ...]) -> float:
    return row[_FIRST_SEEN]


def make_jobs(rows: Iterable[tuple[Any, ...]], history_cap: int) -> list[Job]:
    """Jobs from rows of slot values (see unpack_chunk); each row is used up."""
    made = []
    cap3 = Job("", 0.0, history_cap)._cap3  # as Job.__init__ makes it
    new, fill = Job.__new__, _FILL
    for row in rows:
        job = new(Job)
        job._cap3 = cap3
        fill(job, row)
        if len(job._hist) > cap3:  # saved by a monitor with a larger --history-per-job
            job._trim()
        made.append(job)
    return made


def wanted_jobs(
    chunks: Iterable[tuple[int, int, bytes]], wanted: Container[str]
) -> tuple[dict[str, tuple[tuple[Any, ...], int, int]], dict[str, list[str]] | None]:
    """The newest copy of each wanted job over ``chunks`` (oldest first), and the last links.

    Returns {id: (row, checkpoint, chunk)}, without the wanted ids a later
    chunk lists as gone (no copy of them counts: they are replayed instead),
    and the links of the last chunk; raises Unusable.
    """
    found: dict[str, tuple[tuple[Any, ...], int, int]] = {}
    links = None
    for checkpoint, number, body in chunks:
        chunk = unpack_chunk(body)
        for row in chunk.rows:
            job = row[_ID]
            if job in wanted:
                found[job] = (row, checkpoint, number)
        for job in chunk.gone:
            found.pop(job, None)
        links = chunk.children
    return found, links
