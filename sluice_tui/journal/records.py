"""How records are packed into a batch row, and how sluice-tui's own changes are written.

A batch holds records in the order they came: raw event messages (the JSON
bytes a broker delivered, one message or a list of events each) and notes
(sluice-tui's own changes to jobs, JSON written here).  The body is the
records joined by commas, so a whole batch decodes with one ``json.loads`` of
``[body]``; ``sizes`` keeps each record's length, its top bit marking a note, so
a batch with a malformed message still decodes record by record, and an event
can never pass itself off as a note.  Worker events go in a second stream of
the same form (``workers``), so a restore can skip old heartbeats undecoded.
No pickle: every byte is JSON or numbers.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import sys
import zlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sluice_tui.model.job import JOB_FIELDS, Field, FieldPlan, Step, coerce
from sluice_tui.model.states import JobState

NOTE_FLAG = 1 << 31
# zlib level 1: a third of level 6's CPU for a file about a fifth larger.
LEVEL = 1
# A preset dictionary of what Celery events say: small batches (an idle
# cluster's heartbeats) compress as well as big ones.  Never edit it: batches
# written with it need it to be read.  A change is a new dictionary (and a
# schema step saying which batches use which).
ZDICT = (
    b'"traceback": "Traceback (most recent call last):\\n  File \\"'
    b'"exception": "", "result": "None", "runtime": 0.0'
    b'"type": "task-revoked", "terminated": false, "signum": null, "expired": false'
    b'"type": "task-rejected", "requeue": false'
    b'"type": "task-failed"}"type": "task-retried"}'
    b'"sw_ident": "py-celery", "sw_ver": "5.5.0", "sw_sys": "Linux", '
    b'"active": 0, "processed": 0, "loadavg": [0.0, 0.0, 0.0], "freq": 2.0, '
    b'"type": "worker-heartbeat"}'
    b'"type": "worker-online"}"type": "worker-offline"}'
    b'"eta": null, "expires": null, "queue": "celery", "exchange": "", '
    b'"routing_key": "celery", "type": "task-sent"}'
    b'"retries": 0, "root_id": "", "parent_id": null, "name": "", '
    b'"args": "()", "kwargs": "{}", "type": "task-received"}'
    b'"type": "task-succeeded"}"type": "task-started"}'
    b'{"hostname": "celery@", "utcoffset": 0, "pid": , "clock": , "uuid": "'
    b'-4000-8000-0000000000", "timestamp": 17'
)
_LITTLE = sys.byteorder == "little"


class NoteBytes(bytes):
    """A record written by sluice-tui itself, as opposed to a message from the broker."""


@dataclass(frozen=True, slots=True)
class PackedBatch:
    first: float  # the earliest receive time in the batch
    last: float
    count: int
    received: bytes
    sizes: bytes
    body: bytes
    # Worker events (heartbeats, mostly), packed apart: a restore needs only the
    # last minutes of them, and skips the rest without decoding it.
    workers: bytes | None

    def row(self) -> tuple[float, float, int, bytes, bytes, bytes, bytes | None]:
        """The batches table's columns after its id, in order."""
        return (
            self.first,
            self.last,
            self.count,
            self.received,
            self.sizes,
            self.body,
            self.workers,
        )


# Worker events name their type "worker-...": the cheap test that picks the
# messages worth parsing to be sure.
WORKER_MARK = b'"worker-'


def pack(items: list[tuple[Any, float]]) -> PackedBatch:
    """Compress (record, receive time) pairs into one batch row."""
    tasks: list[tuple[Any, float]] = []
    workers: list[tuple[Any, float]] = []
    for item in items:
        record = item[0]
        if record.__class__ is bytes and WORKER_MARK in record and _is_worker_event(record):
            workers.append(item)
        else:
            tasks.append(item)
    times = [t for _, t in items]
    first = min(times)
    received, sizes, body = _stream(tasks, first)
    packed_workers = None
    if workers:
        w_received, w_sizes, w_body = _stream(workers, first)
        packed_workers = (
            struct.pack("<II", len(w_received), len(w_sizes)) + w_received + w_sizes + w_body
        )
    return PackedBatch(first, max(times), len(items), received, sizes, body, packed_workers)


def _is_worker_event(record: bytes) -> bool:
    try:
        event = json.loads(record)
    except ValueError:
        return False
    kind = event.get("type") if event.__class__ is dict else None
    return kind.__class__ is str and kind.startswith("worker-")


def _stream(items: list[tuple[Any, float]], first: float) -> tuple[bytes, bytes, bytes]:
    """(receive times, sizes, body) of records, packed and compressed."""
    records = [record for record, _ in items]
    sizes = flagged_sizes(records)
    base = round(first * 1e6)  # whole microseconds, so unpack gives them back exactly
    offsets = array("q", [round(t * 1e6) - base for _, t in items])
    squeeze = zlib.compressobj(LEVEL, zdict=ZDICT)
    body = squeeze.compress(b",".join(records)) + squeeze.flush()
    return _pack_array(offsets), _pack_array(sizes), body


def flagged_sizes(records: list[Any]) -> array:
    """Each record's length, the top bit set for a note; makes ``records`` all bytes."""
    sizes = array("I", map(len, records))
    if set(map(type, records)) - {bytes}:  # notes, or a str from an odd transport
        for i, record in enumerate(records):
            if record.__class__ is bytes:
                continue
            if isinstance(record, NoteBytes):
                sizes[i] = len(record) | NOTE_FLAG
                continue
            record = records[i] = (
                record.encode("utf-8", "surrogatepass")
                if isinstance(record, str)
                else bytes(record)
            )
            sizes[i] = len(record)
    return sizes


def to_microseconds(t: float) -> float:
    """A receive time as a batch gives it back: whole microseconds (see unpack).

    Whatever reads a record as it is written (the writer process's replica)
    uses this time, so that a restore, which reads it back, agrees to the bit.
    """
    return round(t * 1e6) / 1e6


@dataclass(slots=True)
class UnpackedBatch:
    times: list[float]
    records: list[Any]  # decoded JSON; None where a record did not decode
    notes: frozenset[int]  # indexes of the records that are notes
    undecodable: list[tuple[int, str]]  # (index, reason) of records that did not decode


class BatchDamaged(ValueError):
    """A batch row that does not decode: the file was damaged or tampered with."""


def unpack(first: float, received: bytes, sizes: bytes, body: bytes) -> UnpackedBatch:
    """A batch row's records and receive times; raises BatchDamaged."""
    try:
        offsets = _unpack_array("q", received)
        lengths = _unpack_array("I", sizes)
        stretch = zlib.decompressobj(zdict=ZDICT)
        text = stretch.decompress(body) + stretch.flush()
        base = round(first * 1e6)
        times = [(base + o) / 1e6 for o in offsets]
    except (zlib.error, ValueError, TypeError, OverflowError) as exc:
        raise BatchDamaged(f"{type(exc).__name__}: {exc}") from None
    if len(times) != len(lengths):
        raise BatchDamaged(f"{len(times)} receive times for {len(lengths)} records")
    notes = frozenset(i for i, n in enumerate(lengths) if n & NOTE_FLAG)
    try:
        records = json.loads(b"[" + text + b"]")
    except ValueError:
        records = None
    if records is not None and len(records) == len(lengths):
        return UnpackedBatch(times, records, notes, [])
    # Some message was not JSON: take the records one by one.
    chunks, start = [], 0
    for n in lengths:
        size = n & ~NOTE_FLAG
        chunks.append(text[start : start + size])
        start += size + 1  # the comma
    records, bad = _decode_each(chunks)
    return UnpackedBatch(times, records, notes, bad)


def decode(records: list[bytes]) -> tuple[list[Any], list[tuple[int, str]]]:
    """Each record's JSON (None where it does not decode), and (index, reason) of those."""
    try:
        decoded = json.loads(b"[" + b",".join(records) + b"]")
    except ValueError:
        decoded = None
    if decoded is not None and len(decoded) == len(records):
        return decoded, []
    return _decode_each(records)


def _decode_each(chunks: list[bytes]) -> tuple[list[Any], list[tuple[int, str]]]:
    records: list[Any] = []
    bad = []
    for i, chunk in enumerate(chunks):
        try:
            records.append(json.loads(chunk))
        except ValueError as exc:
            records.append(None)
            bad.append((i, f"{exc}: {chunk[:200]!r}"))
    return records, bad


def unpack_workers(first: float, packed: bytes) -> UnpackedBatch:
    """A batch's worker events (see PackedBatch.workers); raises BatchDamaged."""
    try:
        received_size, sizes_size = struct.unpack_from("<II", packed)
    except struct.error as exc:
        raise BatchDamaged(f"worker events: {exc}") from None
    start = struct.calcsize("<II")
    middle = start + received_size
    end = middle + sizes_size
    return unpack(first, packed[start:middle], packed[middle:end], packed[end:])


def _pack_array(values: array) -> bytes:
    if not _LITTLE:
        values.byteswap()
    return zlib.compress(values.tobytes(), LEVEL)


def _unpack_array(code: str, blob: bytes) -> array:
    values = array(code)
    values.frombytes(zlib.decompress(blob))
    if not _LITTLE:
        values.byteswap()
    return values


# -- notes: the store's changes that no event carries --------------------------


def encode_note(kind: str, payload: Mapping[str, Any]) -> NoteBytes:
    """The store hook's (kind, arguments) as a note record."""
    fields = dict(payload)
    if kind == "apply":
        plan = fields["plan"]
        fields["data"] = _what_the_plan_reads(fields["data"], plan)
        fields["step"] = step_to_json(fields["step"])
        fields["plan"] = plan_to_json(plan)
    fields["kind"] = kind
    return NoteBytes(json.dumps(fields, separators=(",", ":"), default=repr).encode())


def _what_the_plan_reads(data: Mapping[str, Any], plan: FieldPlan) -> dict[str, Any]:
    """The fields Job.apply reads from ``data``, already as it would make them.

    An inspect reply carries much more than the plan reads; and a value JSON
    would change (a tuple) is made text first, as Job.apply would.
    """
    kept: dict[str, Any] = {}
    for field in (*plan.identity, *plan.fields):
        value = data.get(field.key)
        if value is None or field.key in kept:
            continue
        if field.kind is str:
            value = value if value.__class__ is str else coerce(value, str)
        elif value.__class__ not in (str, int, float, bool):
            value = coerce(value, field.kind)
        if value is not None:
            kept[field.key] = value
    return kept


def _step_fields() -> dict[str, Any]:
    """Step's own fields (what its constructor takes), each with its default."""
    return {
        f.name: f.default
        for f in dataclasses.fields(Step)
        if f.init and f.name not in ("state", "event", "order")
    }


_STEP_DEFAULTS = _step_fields()


def step_to_json(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"state": step.state.value, "event": step.event, "order": step.order}
    for name, default in _STEP_DEFAULTS.items():
        value = getattr(step, name)
        if value != default:
            if name == "precedes":
                value = sorted(state.value for state in value)
            elif isinstance(value, JobState):
                value = value.value
            out[name] = value
    return out


_STEPS: dict[str, Step] = {}
_PLANS: dict[str, FieldPlan] = {}
_CACHE_LIMIT = 1_000  # distinct steps and plans: a few dozen in practice
_KINDS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}


def step_from_json(data: Mapping[str, Any]) -> Step:
    """The Step a note names; equal notes give the same object (history entries share it)."""
    key = json.dumps(data, sort_keys=True)
    step = _STEPS.get(key)
    if step is None:
        values: dict[str, Any] = {}
        for name in ("state", "event", "order", *_STEP_DEFAULTS):
            if name not in data:
                continue
            value = data[name]
            if name in ("state", "demotes"):
                value = None if value is None else JobState(value)
            elif name == "precedes":
                value = frozenset(JobState(v) for v in value)
            values[name] = value
        step = Step(**values)
        if not isinstance(step.event, str) or not isinstance(step.order, int):
            raise ValueError(f"malformed step {data!r:.200}")
        if len(_STEPS) < _CACHE_LIMIT:
            _STEPS[key] = step
    return step


def plan_to_json(plan: FieldPlan) -> dict[str, Any]:
    return {
        "identity": [_field_to_json(f) for f in plan.identity],
        "fields": [_field_to_json(f) for f in plan.fields],
        "sets_worker": plan.sets_worker,
    }


def plan_from_json(data: Mapping[str, Any]) -> FieldPlan:
    key = json.dumps(data, sort_keys=True)
    plan = _PLANS.get(key)
    if plan is None:
        plan = FieldPlan.of(
            tuple(_field_from_json(f, data) for f in data["fields"]),
            identity=tuple(_field_from_json(f, data) for f in data["identity"]),
            sets_worker=bool(data["sets_worker"]),
        )
        if len(_PLANS) < _CACHE_LIMIT:
            _PLANS[key] = plan
    return plan


def _field_to_json(field: Field) -> list[Any]:
    return [field.key, field.attr, field.group, field.kind.__name__]


def _field_from_json(item: Any, plan: Mapping[str, Any]) -> Field:
    """One field of a plan; only a job's public fields may be set, and only as plain values."""
    key, attr, group, kind = item
    if kind not in _KINDS or not isinstance(group, int) or attr not in JOB_FIELDS:
        raise ValueError(f"malformed field plan {plan!r:.200}")
    return Field(str(key), attr, group, _KINDS[kind])
