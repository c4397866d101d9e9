"""Log reading: every python-can format into FrameBatches, the candump fast path, clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import can
import numpy as np
import pytest

from firmware_bridge.batch_decoder import BatchDecoder
from firmware_bridge.dbc_database import default_database
from firmware_bridge.frame_batch import FrameBatch
from uniross.log_reader import LogFormatError, iter_frame_batches, parse_candump_block, read_frame_batch
from uniross.synthetic_trial import TrialPlan, trial_messages

CANDUMP = """\
(1700000000.123456) can0 0CFF1080#1027546F00000058
(1700000000.143456) can0 18FEF100#0000100000000000

(1700000000.200000) can0 18FEEE00#78FFFFFFFFFFFFFF
(1700000000.300000) can0 123#DEAD
"""


def _write(path: Path, msgs: list[can.Message]) -> None:
    with can.Logger(path) as writer:
        for msg in msgs:
            writer.on_message_received(msg)


@pytest.fixture(scope="module")
def trial() -> list[can.Message]:
    return list(trial_messages(default_database(), TrialPlan(duration=3.0)))


def _same(a: FrameBatch, b: FrameBatch) -> None:
    np.testing.assert_allclose(a.timestamp, b.timestamp, rtol=0, atol=2e-6)
    for field in ("arbitration_id", "is_extended", "dlc", "data", "is_error", "is_remote"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_hand_written_candump_decodes_to_expected_values(tmp_path: Path) -> None:
    path = tmp_path / "truck.log"
    path.write_text(CANDUMP)
    batch = read_frame_batch(path)
    assert len(batch) == 4
    assert batch.arbitration_id.tolist() == [0x0CFF1080, 0x18FEF100, 0x18FEEE00, 0x123]
    assert batch.is_extended.tolist() == [True, True, True, False]
    assert batch.dlc.tolist() == [8, 8, 8, 2]
    assert batch.timestamp[0] == pytest.approx(1700000000.123456, abs=1e-6)
    decoded = BatchDecoder(default_database()).decode(batch)
    suction = decoded.messages["SSC_Suction"]
    assert suction.source_address.tolist() == [0x80]
    # 0x2710 * 0.25 = 2500 rpm; 0x6F54 - 32000 = -3500 Pa
    assert suction.physical("SuctionFanSpeed")[0] == pytest.approx(2500.0)
    assert suction.physical("SuctionPressure")[0] == pytest.approx(-3500.0)
    speed = decoded.messages["CCVS1"].physical("WheelBasedVehicleSpeed")
    assert speed[0] == pytest.approx(0x1000 / 256)  # 16 km/h
    coolant = decoded.messages["ET1"].physical("EngCoolantTemp")
    assert coolant[0] == pytest.approx(0x78 - 40)
    assert decoded.rejects.get("unknown_id", 0) == 1  # the 11-bit 0x123 is not in the DBC


def test_candump_fast_path_equals_python_can_reader(tmp_path: Path, trial: list[can.Message]) -> None:
    path = tmp_path / "trial.log"
    _write(path, trial)
    fast = list(iter_frame_batches(path, chunk=500, block_bytes=4096))  # many blocks and chunks
    assert max(len(b) for b in fast) <= 500
    _same(FrameBatch.concatenate(fast), read_frame_batch(path, fast=False))


def test_candump_fd_remote_and_error_frames_take_the_slow_path(tmp_path: Path) -> None:
    path = tmp_path / "mixed.log"
    path.write_text(
        "(1.0) can0 123#R\n(2.0) can0 18FF1080##1112233445566778899AA\n(3.0) can0 20000080#0000000000000000\n"
    )
    batch = read_frame_batch(path)
    assert batch.is_remote.tolist() == [True, False, False]
    assert batch.is_error.tolist() == [False, False, True]
    assert batch.data.shape[1] == 64 and batch.dlc[1] == 10
    assert parse_candump_block(path.read_bytes()) is None


@pytest.mark.parametrize("suffix", [".blf", ".asc", ".log", ".csv", ".db", ".mf4"])
def test_every_format_round_trips_through_python_can_writers(
    tmp_path: Path, trial: list[can.Message], suffix: str
) -> None:
    if suffix == ".mf4":
        pytest.importorskip("asammdf")
    from uniross.recording import open_writer

    path = tmp_path / f"trial{suffix}"
    writer = open_writer(path)
    for msg in trial:
        writer.on_message_received(msg)
    writer.stop()
    got = read_frame_batch(path)
    assert len(got) == len(trial)
    _same(got, FrameBatch.from_messages(trial))


@pytest.mark.parametrize(
    ("suffix", "cut", "where"),
    [(".log", -7, "line"), (".asc", -40, "line"), (".csv", -5, "line"), (".blf", 0.6, "offset")],
)
def test_truncated_logs_give_a_located_error(
    tmp_path: Path, trial: list[can.Message], suffix: str, cut: float, where: str
) -> None:
    path = tmp_path / f"trial{suffix}"
    _write(path, trial)
    raw = path.read_bytes()
    end = int(len(raw) * cut) if isinstance(cut, float) else len(raw) + int(cut)
    path.write_bytes(raw[:end])
    with pytest.raises(LogFormatError) as info:
        read_frame_batch(path)
    err = info.value
    assert err.path == path
    if where == "line":
        assert err.line is not None and err.line > 10
        assert f"line {err.line}" in str(err)
    else:
        assert err.offset == end


def test_corrupt_candump_line_is_reported_by_number(tmp_path: Path) -> None:
    lines = CANDUMP.splitlines()
    lines.insert(3, "(1700000000.15) can0 18FEF100#00001Z")
    path = tmp_path / "bad.log"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LogFormatError, match="line 4"):
        read_frame_batch(path)


def test_odd_hex_payload_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "odd.log"
    path.write_text("(1.0) can0 18FEF100#000\n")
    with pytest.raises(LogFormatError, match="line 1"):
        read_frame_batch(path)


def test_garbage_blf_and_unknown_suffix(tmp_path: Path) -> None:
    bad = tmp_path / "junk.blf"
    bad.write_bytes(b"not a blf at all" * 20)
    with pytest.raises(LogFormatError, match="byte offset"):
        read_frame_batch(bad)
    other = tmp_path / "x.pcap"
    other.write_bytes(b"")
    with pytest.raises(LogFormatError, match="unsupported log format"):
        read_frame_batch(other)
    with pytest.raises(LogFormatError, match="no such file"):
        read_frame_batch(tmp_path / "missing.log")
