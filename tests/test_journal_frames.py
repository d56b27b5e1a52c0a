"""The pipe from the monitor to the journal's writer process: frames survive any split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice_tui.journal.frames import FrameReader, encode
from sluice_tui.journal.records import NoteBytes

records = st.lists(
    st.tuples(
        st.one_of(st.binary(max_size=300), st.binary(max_size=50).map(NoteBytes)),
        st.floats(min_value=0, max_value=2e9, allow_nan=False),
    ),
    max_size=40,
)


def inbox_items(pairs) -> list:
    """As the journal's inbox gets them: a message's bytes then its time; a note as a pair."""
    items: list = []
    for record, t in pairs:
        items += [(record, t)] if isinstance(record, NoteBytes) else [record, t]
    return items


def wire(items: list) -> bytes:
    parts, waiting = encode(items)
    assert waiting is None
    return b"".join(memoryview(part).cast("B") for part in parts)


@given(st.lists(records, min_size=1, max_size=5), st.integers(min_value=1, max_value=97))
def test_frames_read_back_in_order_however_the_pipe_splits_them(batches, piece):
    stream = b"".join(wire(inbox_items(batch)) for batch in batches if batch)
    reader = FrameReader()
    frames = []
    for start in range(0, len(stream), piece):
        frames += reader.feed(stream[start : start + piece])
    assert not reader.partial
    assert [
        [(type(record), record, time) for record, time in zip(f.records, f.times, strict=True)]
        for f in frames
    ] == [[(type(r), r, t) for r, t in batch] for batch in batches if batch]


def test_a_note_between_a_message_and_its_time_and_a_message_still_without_one():
    """The receiver's two appends are not one step: another thread's note may fall
    between them, and a take may come before the second."""
    note = NoteBytes(b'{"kind": "annotate"}')
    parts, waiting = encode([b"a", 1.0, b"b", (note, 2.5), 2.0, b"c"])
    assert waiting == b"c"  # goes back in front of the inbox for the next frame
    (frame,) = FrameReader().feed(b"".join(memoryview(part).cast("B") for part in parts))
    assert list(zip(frame.records, frame.times, strict=True)) == [
        (b"a", 1.0),
        (note, 2.5),
        (b"b", 2.0),
    ]
    assert isinstance(frame.records[1], NoteBytes) and not isinstance(frame.records[2], NoteBytes)
    assert encode([b"c"]) == (None, b"c")


def test_a_frame_cut_short_is_said_to_be_partial():
    whole = wire([b'{"a": 1}', 1.0])
    reader = FrameReader()
    assert reader.feed(whole[:-3]) == []
    assert reader.partial


def test_sizes_that_do_not_add_up_are_refused():
    parts, _ = encode([b"abc", 1.0])
    parts[3] = b"abcd"  # a body longer than its sizes say
    header = bytearray(parts[0])
    header[4] = 4  # the body length, so the frame is read whole
    parts[0] = bytes(header)
    with pytest.raises(ValueError, match="add up"):
        FrameReader().feed(b"".join(memoryview(part).cast("B") for part in parts))


@given(st.lists(st.floats(min_value=1e9, max_value=4e9, allow_nan=False), min_size=1, max_size=50))
def test_the_writer_process_dates_records_as_a_restore_reads_them_back(times):
    """The replica's receive times, and so its first_seen, agree to the bit with a replay's."""
    from sluice_tui.journal.records import pack, to_microseconds, unpack

    items = [(b"{}", to_microseconds(t)) for t in times]
    batch = pack(items)
    read = unpack(batch.first, batch.received, batch.sizes, batch.body)
    assert read.times == [t for _, t in items]
