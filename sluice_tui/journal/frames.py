"""Records on their way from the monitor to the journal's writer process.

The monitor hands over what it would have written itself: each event message
as received and each note, with its receive time, in order.  A frame is a
header (record count, body length), the receive times (float64), the sizes
(uint32, the top bit marking a note, as in a batch) and the records back to
back.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass
from typing import Any

from sluice_tui.journal.records import NOTE_FLAG, NoteBytes, flagged_sizes

HEADER = struct.Struct("=II")
_TIME = array("d").itemsize
_SIZE = array("I").itemsize


def encode(items: list[Any]) -> tuple[list[bytes | array] | None, bytes | None]:
    """Taken inbox items as one frame, in parts (None: no record), and a last message
    whose time is still to come.

    The receiver appends a message's bytes and then its receive time; notes
    come from other threads as (note, time) pairs, and may fall between a
    message and its time.  The usual case, bytes and times alternating, is
    sliced apart; anything else is sorted out item by item.
    """
    waiting = None
    if len(items) & 1 and items[-1].__class__ is bytes:
        waiting = items.pop()
    paired = _alternating(items)
    if paired is None:
        if waiting is not None:
            items.append(waiting)
        records, times, waiting = _one_by_one(items)
        if not records:
            return None, waiting
        sizes = flagged_sizes(records)
        body = b"".join(records)
    else:
        records, times, body = paired
        sizes = array("I", list(map(len, records)))  # all messages: none is a note
    return [HEADER.pack(len(records), len(body)), times, sizes, body], waiting


def _alternating(items: list[Any]) -> tuple[list[Any], array, bytes] | None:
    """Messages and their times, alternating: sliced apart; None for anything else."""
    if not items or len(items) & 1:
        return None
    records = items[0::2]
    try:
        # A note (a pair) or a time out of step in either slice raises; a
        # message is always bytes (the receiver makes it so), a note never.
        times = array("d", items[1::2])
        body = b"".join(records)
    except TypeError:
        return None
    return records, times, body


def _one_by_one(items: list[Any]) -> tuple[list[Any], array, Any]:
    records: list[Any] = []
    times = array("d")
    waiting = None
    for item in items:
        if item.__class__ is tuple:  # a note, with its time
            records.append(item[0])
            times.append(item[1])
        elif waiting is not None and isinstance(item, (float, int)):
            records.append(waiting)
            times.append(item)
            waiting = None
        else:
            waiting = item
    return records, times, waiting


@dataclass(slots=True)
class Frame:
    records: list[bytes]  # a note as NoteBytes
    times: array


class FrameReader:
    """Frames out of a byte stream read in pieces of any size."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer += data
        frames = []
        start = 0
        while len(buffer) - start >= HEADER.size:
            count, body_size = HEADER.unpack_from(buffer, start)
            times_at = start + HEADER.size
            sizes_at = times_at + count * _TIME
            body_at = sizes_at + count * _SIZE
            end = body_at + body_size
            if len(buffer) < end:
                break
            times = array("d", buffer[times_at:sizes_at])
            sizes = array("I", buffer[sizes_at:body_at])
            body = bytes(buffer[body_at:end])
            frames.append(Frame(_split(body, sizes), times))
            start = end
        del buffer[:start]
        return frames

    @property
    def partial(self) -> bool:
        """Whether a frame was cut short (the stream ended in its middle)."""
        return bool(self._buffer)


def _split(body: bytes, sizes: array) -> list[bytes]:
    records: list[bytes] = []
    at = 0
    for size in sizes:
        if size & NOTE_FLAG:
            size &= ~NOTE_FLAG
            records.append(NoteBytes(body[at : at + size]))
        else:
            records.append(body[at : at + size])
        at += size
    if at != len(body):
        raise ValueError(f"a frame's sizes add up to {at} bytes, its body has {len(body)}")
    return records
