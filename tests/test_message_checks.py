"""ValidityTracker: counter continuity, checksum, timeout with hysteresis, two senders."""

from __future__ import annotations

import can
import numpy as np
import pytest

from firmware_bridge.batch_decoder import BatchDecoder, DecodedBatch
from firmware_bridge.dbc_database import default_database
from firmware_bridge.frame_batch import FrameBatch
from firmware_bridge.message_checks import ValidityTracker, leaky_bucket

DB = default_database()
DECODER = BatchDecoder(DB)
NAME = "SSC_Suction"  # 20 ms, timeout 70 ms
VALUES = {"SuctionFanSpeed": 2000.0, "SuctionPressure": -3000}


def _frames(packer_counters: list[int], *, sa: int = 0x80, corrupt: set[int] | None = None) -> list[can.Message]:
    from firmware_bridge.packer import CanPacker

    packer = CanPacker(DB, source_address=sa)
    return [packer.make_message(NAME, VALUES, counter=c, corrupt_checksum=i in (corrupt or set()))
            for i, c in enumerate(packer_counters)]


def _feed(tracker: ValidityTracker, frames: list[can.Message], now: float) -> DecodedBatch:
    return tracker.update(DECODER.decode(FrameBatch.from_messages(frames)), now)


def test_good_stream_becomes_valid_after_recover_frames() -> None:
    tracker = ValidityTracker(DB, own_node="OBC", recover_frames=3)
    assert not tracker.states()[NAME].valid and tracker.states()[NAME].timed_out
    _feed(tracker, _frames([0, 1]), now=0.0)
    assert not tracker.states()[NAME].valid  # two good frames: not yet
    _feed(tracker, _frames([2]), now=0.02)
    state = tracker.states()[NAME]
    assert state.valid and state.counter_ok and state.checksum_ok and not state.timed_out
    assert state.last_rx == 0.02


def test_one_dropped_frame_is_tolerated_but_a_frozen_counter_is_not() -> None:
    tracker = ValidityTracker(DB)
    _feed(tracker, _frames([0, 1, 2, 4, 5, 6]), now=0.1)  # one frame lost
    state = tracker.states()[NAME]
    assert state.valid and state.counter_errors == 1
    _feed(tracker, _frames([6, 6]), now=0.12)  # frozen
    state = tracker.states()[NAME]
    assert not state.counter_ok and not state.valid and state.counter_errors == 3
    assert tracker.error_counts["counter_jump"] == 3
    _feed(tracker, _frames([7, 8, 9, 10]), now=0.14)  # bucket drains: valid again
    assert tracker.states()[NAME].valid


def test_counter_jumps_make_the_message_invalid_and_it_stays_in_safety_set() -> None:
    tracker = ValidityTracker(DB, own_node="OBC")
    _feed(tracker, _frames([0, 1, 2, 3]), now=0.0)
    assert NAME not in tracker.stale_safety_relevant(0.0)
    _feed(tracker, _frames([9, 3, 12]), now=0.02)
    assert not tracker.states()[NAME].counter_ok
    assert NAME in tracker.stale_safety_relevant(0.02)


def test_bad_checksum_frames_are_counted_and_removed() -> None:
    tracker = ValidityTracker(DB)
    _feed(tracker, _frames([0, 1, 2]), now=0.0)
    out = _feed(tracker, _frames([3, 4, 5], corrupt={1}), now=0.02)
    assert out.messages[NAME].signals["Counter"].tolist() == [3, 5]
    state = tracker.states()[NAME]
    assert state.checksum_errors == 1 and state.checksum_ok  # one bad frame: bucket 1, tolerated
    assert state.counter_errors == 1  # the dropped frame shows as one counter step
    out = _feed(tracker, _frames([6, 7, 8], corrupt={0, 1, 2}), now=0.04)
    assert NAME not in out.messages
    state = tracker.states()[NAME]
    assert not state.checksum_ok and not state.valid and state.checksum_errors == 4
    assert tracker.error_counts["checksum"] == 4


def test_a_frame_landing_under_another_messages_pgn_fails_its_checksum() -> None:
    from firmware_bridge.packer import CanPacker

    frame = CanPacker(DB, source_address=0x80).make_message("SSC_Brushes", {"LeftBrushSpeed": 10})
    frame.arbitration_id = DB.get_message_by_name(NAME).frame_id
    tracker = ValidityTracker(DB)
    out = _feed(tracker, [frame], now=0.0)
    assert NAME not in out.messages and tracker.states()[NAME].checksum_errors == 1


def test_timeout_and_recovery_with_hysteresis() -> None:
    tracker = ValidityTracker(DB, recover_frames=3)
    _feed(tracker, _frames([0, 1, 2]), now=1.0)
    assert tracker.states()[NAME].valid
    tracker.check_timeouts(1.06)  # 60 ms < 70 ms timeout
    assert tracker.states()[NAME].valid
    assert NAME in tracker.stale_safety_relevant(1.08)
    state = tracker.states()[NAME]
    assert state.timed_out and not state.valid and state.timeouts == 1
    tracker.check_timeouts(1.5)
    assert tracker.states()[NAME].timeouts == 1  # one event, counted once
    _feed(tracker, _frames([9]), now=1.6)  # counter re-synchronises after a timeout: no jump
    state = tracker.states()[NAME]
    assert not state.timed_out and not state.valid and state.counter_errors == 0
    _feed(tracker, _frames([10, 11]), now=1.62)
    assert tracker.states()[NAME].valid
    assert tracker.error_counts == {"counter_jump": 0, "checksum": 0, "timeout": 1}


def test_two_senders_of_one_pgn_are_separate_sequences() -> None:
    tracker = ValidityTracker(DB)
    a, b = _frames([0, 1, 2, 3], sa=0x80), _frames([7, 8, 9, 10], sa=0x81)
    interleaved = [f for pair in zip(a, b, strict=True) for f in pair]
    out = _feed(tracker, interleaved, now=0.0)
    assert out.messages[NAME].source_address.tolist() == [0x80, 0x81] * 4
    state = tracker.states()[NAME]
    assert state.counter_errors == 0 and state.valid
    _feed(tracker, _frames([4], sa=0x80) + _frames([11], sa=0x81), now=0.02)
    assert tracker.states()[NAME].counter_errors == 0


def test_own_messages_are_not_tracked_and_untracked_pass_through() -> None:
    tracker = ValidityTracker(DB, own_node="OBC")
    assert "OBC_Heartbeat" not in tracker.states()
    assert "OBC_Heartbeat" not in tracker.stale_safety_relevant(10.0)
    assert "EEC1" in tracker.stale_safety_relevant(10.0)  # never received


def test_leaky_bucket_rules() -> None:
    assert leaky_bucket(0, np.array([True, False, False]), cap=5) == 0
    assert leaky_bucket(0, np.array([True, True, True, True, True, True, True]), cap=5) == 5
    assert leaky_bucket(3, np.zeros(2, dtype=bool), cap=5) == 1
    assert leaky_bucket(2, np.zeros(0, dtype=bool), cap=5) == 2


def test_timeout_scale_stretches_every_timeout_and_refuses_to_shrink() -> None:
    tracker = ValidityTracker(DB, recover_frames=3, timeout_scale=3.0)
    _feed(tracker, _frames([0, 1, 2]), now=1.0)
    tracker.check_timeouts(1.2)  # 200 ms < 3 x 70 ms
    assert tracker.states()[NAME].valid
    assert NAME in tracker.stale_safety_relevant(1.22)  # 220 ms > 210 ms
    with pytest.raises(ValueError):
        ValidityTracker(DB, timeout_scale=0.5)
