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


@given(st.lists(records, min_size=1, max_size=5), st.integers(min_value=1, max_value=97))
def test_frames_read_back_in_order_however_the_pipe_splits_them(batches, piece):
    stream = b"".join(
        b"".join(memoryview(part).cast("B") for part in encode(batch)) for batch in batches if batch
    )
    reader = FrameReader()
    frames = []
    for start in range(0, len(stream), piece):
        frames += reader.feed(stream[start : start + piece])
    assert not reader.partial
    assert [
        [(type(record), record, time) for record, time in zip(f.records, f.times, strict=True)]
        for f in frames
    ] == [[(type(r), r, t) for r, t in batch] for batch in batches if batch]


def test_a_frame_cut_short_is_said_to_be_partial():
    whole = b"".join(memoryview(part).cast("B") for part in encode([(b'{"a": 1}', 1.0)]))
    reader = FrameReader()
    assert reader.feed(whole[:-3]) == []
    assert reader.partial


def test_sizes_that_do_not_add_up_are_refused():
    parts = encode([(b"abc", 1.0)])
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
