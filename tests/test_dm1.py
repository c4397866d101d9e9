"""DM1 single frame and BAM multi-packet: roundtrip, interleaved senders, timeout and sequence aborts."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_bridge.batch_decoder import BatchDecoder
from firmware_bridge.dbc_database import default_database
from firmware_bridge.dm1 import (
    DM1_PGN,
    Dm1Assembler,
    Dm1Lamps,
    Dtc,
    encode_bam,
    encode_dm1,
    parse_dm1,
)
from firmware_bridge.frame_batch import FrameBatch
from firmware_bridge.j1939 import pgn_of

DB = default_database()
LAMPS = Dm1Lamps(protect=0, amber_warning=1, red_stop=0, mil=1, flash_amber_warning=0)
DTCS = [Dtc(190, 3, 5), Dtc(524287, 30, 126, 1), Dtc(84, 2, 1), Dtc(0x1ABCD, 12, 9)]


def _batch(frames: list[tuple[int, bytes]], t0: float = 0.0, dt: float = 0.05) -> FrameBatch:
    data = np.array([list(d) for _, d in frames], dtype=np.uint8).reshape(len(frames), 8)
    return FrameBatch.from_arrays(t0 + np.arange(len(frames)) * dt, [i for i, _ in frames], data,
                                  is_extended=np.ones(len(frames), bool))


def test_single_frame_roundtrip_and_dbc_layout() -> None:
    frames = encode_dm1(LAMPS, DTCS[1:2], source_address=0x00)
    assert len(frames) == 1
    can_id, data = frames[0]
    assert pgn_of(can_id) == DM1_PGN and can_id == DB.get_message_by_name("DM1").frame_id
    decoded = DB.decode_message(can_id, data, decode_choices=False)
    assert isinstance(decoded, dict)
    low, high = decoded["DTC1_SPN_Low"], decoded["DTC1_SPN_High"]
    assert isinstance(low, int) and isinstance(high, int)
    assert low + (high << 16) == 524287
    assert (decoded["DTC1_FMI"], decoded["DTC1_OccurrenceCount"], decoded["DTC1_SPN_ConversionMethod"]) == (30, 126, 1)
    assert (decoded["AmberWarningLampStatus"], decoded["MalfunctionIndicatorLampStatus"]) == (1, 1)
    asm = Dm1Assembler()
    asm.feed(_batch(frames), now=0.0)
    report = asm.active_dtcs()[0x00]
    assert report.lamps == LAMPS and report.dtcs == DTCS[1:2]


def test_empty_dm1_means_no_active_dtc() -> None:
    frames = encode_dm1(Dm1Lamps(), [], source_address=0x00)
    assert frames[0][1][2:6] == bytes(4)
    asm = Dm1Assembler()
    asm.feed(_batch(frames), now=0.0)
    assert asm.active_dtcs()[0x00].dtcs == []


@pytest.mark.parametrize("n_dtcs", [2, 3, 4])
def test_multi_packet_roundtrip_through_the_decoder(n_dtcs: int) -> None:
    frames = encode_dm1(LAMPS, DTCS[:n_dtcs], source_address=0x00)
    size = 2 + 4 * n_dtcs
    assert len(frames) == 1 + -(-size // 7)
    assert frames[0][1][0] == 32 and frames[0][1][1] == size
    decoded = BatchDecoder(DB).decode(_batch(frames))  # TP_CM_BAM / TP_DT_BAM messages of the DBC
    assert len(decoded.messages["TP_DT_BAM"]) == len(frames) - 1
    asm = Dm1Assembler()
    asm.feed(decoded, now=1.0)
    assert asm.active_dtcs()[0x00].dtcs == DTCS[:n_dtcs]
    assert asm.counts["completed"] == 1 and asm.aborted == 0


def test_interleaved_sources_are_reassembled_separately() -> None:
    a = encode_dm1(LAMPS, DTCS[:3], source_address=0x00)
    b = encode_dm1(Dm1Lamps(red_stop=1), DTCS[2:4], source_address=0x80)
    mixed = [f for pair in zip(a, b, strict=False) for f in pair] + a[len(b):]
    asm = Dm1Assembler()
    asm.feed(_batch(mixed, dt=0.01), now=0.5)
    reports = asm.active_dtcs()
    assert reports[0x00].dtcs == DTCS[:3]
    assert reports[0x80].dtcs == DTCS[2:4] and reports[0x80].lamps.red_stop == 1
    assert asm.counts["completed"] == 2


def test_gap_over_t1_aborts_within_a_batch_and_across_feeds() -> None:
    frames = encode_dm1(LAMPS, DTCS, source_address=0x00)
    asm = Dm1Assembler()
    asm.feed(_batch(frames[:2], t0=0.0), now=0.0)
    asm.feed(_batch(frames[2:], t0=0.8), now=0.8)  # next packet 0.8 s later: timeout
    assert asm.counts["aborted_timeout"] == 1 and 0x00 not in asm.active_dtcs()
    assert asm.counts["orphan_packets"] == len(frames) - 2  # the packets after the abort
    asm = Dm1Assembler()
    asm.feed(_batch(frames[:2] + frames[2:], dt=0.5), now=0.0)  # 0.5 s gaps: fine
    assert asm.counts["completed"] == 1
    asm = Dm1Assembler()
    batch = _batch(frames, dt=0.05)
    batch.timestamp[3:] += 1.0
    asm.feed(batch, now=0.0)
    assert asm.counts["aborted_timeout"] == 1 and asm.counts["completed"] == 0


def test_duplicate_or_out_of_order_sequence_aborts() -> None:
    frames = encode_dm1(LAMPS, DTCS, source_address=0x00)
    for broken in ([*frames[:2], frames[1], *frames[2:]], [frames[0], frames[2], frames[1], *frames[3:]]):
        asm = Dm1Assembler()
        asm.feed(_batch(broken), now=0.0)
        assert asm.counts["aborted_sequence"] == 1 and asm.counts["completed"] == 0
        assert 0x00 not in asm.active_dtcs()


def test_new_announce_aborts_the_running_session_and_bad_announce_is_counted() -> None:
    frames = encode_dm1(LAMPS, DTCS, source_address=0x00)
    asm = Dm1Assembler()
    asm.feed(_batch(frames[:2] + frames), now=0.0)
    assert asm.counts["aborted_new_bam"] == 1 and asm.counts["completed"] == 1
    bad = bytearray(frames[0][1])
    bad[3] = 9  # packet count does not match the size
    asm.feed(_batch([(frames[0][0], bytes(bad))]), now=0.1)
    assert asm.counts["bad_announce"] == 1


def test_other_pgn_bam_is_counted_not_reported() -> None:
    asm = Dm1Assembler()
    asm.feed(_batch(encode_bam(0xFECB, bytes(range(20)), source_address=0x03)), now=0.0)
    assert asm.counts["completed_other_pgn"] == 1 and asm.active_dtcs() == {}


def test_parse_skips_padding_and_encode_rejects_bad_sizes() -> None:
    lamps, dtcs = parse_dm1(LAMPS.to_bytes() + Dtc(100, 1, 2).to_bytes() + b"\xff" * 4)
    assert lamps == LAMPS and dtcs == [Dtc(100, 1, 2)]
    with pytest.raises(ValueError):
        encode_bam(DM1_PGN, bytes(8), source_address=0)
