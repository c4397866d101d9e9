"""FrameBatch: python-can messages <-> NumPy columns, for classic, short, CAN FD, remote and error frames."""

from __future__ import annotations

import can
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge.frame_batch import FrameBatch

FD_LENGTHS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64)


@st.composite
def messages(draw: st.DrawFn) -> can.Message:
    fd = draw(st.booleans())
    length = draw(st.sampled_from(FD_LENGTHS if fd else FD_LENGTHS[:9]))
    extended = draw(st.booleans())
    return can.Message(
        timestamp=draw(st.floats(0, 2e9, allow_nan=False)),
        arbitration_id=draw(st.integers(0, 0x1FFFFFFF if extended else 0x7FF)),
        is_extended_id=extended,
        data=draw(st.binary(min_size=length, max_size=length)),
        is_fd=fd,
    )


@given(st.lists(messages(), max_size=40))
def test_columns_round_trip_through_python_can_messages(msgs: list[can.Message]) -> None:
    batch = FrameBatch.from_messages(msgs)
    assert len(batch) == len(msgs)
    width = batch.data.shape[1]
    assert width == (64 if any(m.is_fd for m in msgs) else 8)
    for m, back, row, dlc in zip(msgs, batch.to_messages(), batch.data, batch.dlc, strict=True):
        assert dlc == len(m.data)
        assert bytes(row[:dlc]) == bytes(m.data) and not row[dlc:].any()
        assert back.arbitration_id == m.arbitration_id and back.is_extended_id == m.is_extended_id
        assert back.timestamp == m.timestamp and bytes(back.data) == bytes(m.data)


def test_remote_and_error_frames_are_flagged() -> None:
    msgs = [
        can.Message(arbitration_id=0x100, is_extended_id=False, is_remote_frame=True, dlc=0),
        can.Message(arbitration_id=0, is_error_frame=True, data=b"\x01\x02"),
        can.Message(arbitration_id=0x0CFF1080, data=bytes(range(8))),
    ]
    batch = FrameBatch.from_messages(msgs)
    assert batch.is_remote.tolist() == [True, False, False]
    assert batch.is_error.tolist() == [False, True, False]
    assert np.array_equal(batch.data[2], np.arange(8, dtype=np.uint8))


def test_empty_and_concatenate() -> None:
    a = FrameBatch.from_messages([])
    b = FrameBatch.from_messages([can.Message(arbitration_id=1, data=b"\xff", is_extended_id=False)])
    both = FrameBatch.concatenate([a, b])
    assert len(a) == 0 and len(both) == 1 and both.data.shape == (1, 8)
