"""Recorder: non-blocking bounded queue, every drop counted, rotation, the serial sample file format."""

from __future__ import annotations

import threading
from pathlib import Path

import can
import numpy as np
import pytest

from firmware_bridge.dbc_database import default_database
from firmware_bridge.frame_batch import FrameBatch
from firmware_bridge.serial_link.receiver import SampleBatch
from uniross.log_reader import LogFormatError, read_frame_batch
from uniross.recording import (
    CanLogWriter,
    Recorder,
    SampleFileWriter,
    SampleRecorder,
    read_sample_file,
    record_bus,
    rotated_name,
)
from uniross.synthetic_trial import TrialPlan, trial_messages


@pytest.fixture(scope="module")
def trial() -> list[can.Message]:
    return list(trial_messages(default_database(), TrialPlan(duration=4.0)))


@pytest.mark.parametrize("suffix", [".blf", ".asc", ".log", ".csv", ".db"])
def test_recorder_writes_every_submitted_frame(tmp_path: Path, trial: list[can.Message], suffix: str) -> None:
    path = tmp_path / f"rec{suffix}"
    with Recorder(path) as rec:
        for start in range(0, len(trial), 100):
            assert rec.submit_messages(trial[start : start + 100])
    c = rec.counters()
    assert c["written_items"] == c["submitted_items"] == len(trial)
    assert c["dropped_items"] == 0 and c["write_errors"] == 0
    got = read_frame_batch(path)
    want = FrameBatch.from_messages(trial)
    np.testing.assert_array_equal(got.arbitration_id, want.arbitration_id)
    np.testing.assert_array_equal(got.data, want.data)


class _SlowRecorder(Recorder):
    """The writer thread waits on an event: the queue fills and further batches must be dropped and counted."""

    def __init__(self, path: Path, gate: threading.Event) -> None:
        self.gate = gate
        super().__init__(path, queue_max=2)

    def _write(self, item: list[can.Message]) -> None:  # type: ignore[override]
        self.gate.wait(5)
        super()._write(item)


def test_full_queue_drops_are_counted_never_blocking(tmp_path: Path, trial: list[can.Message]) -> None:
    gate = threading.Event()
    rec = _SlowRecorder(tmp_path / "slow.log", gate)
    batches = [trial[i : i + 10] for i in range(0, 100, 10)]
    accepted = [rec.submit_messages(b) for b in batches]
    gate.set()
    rec.close()
    c = rec.counters()
    assert not all(accepted)
    dropped = sum(len(b) for b, ok in zip(batches, accepted, strict=True) if not ok)
    assert c["dropped_items"] == dropped > 0
    assert c["written_items"] == 100 - dropped
    assert len(read_frame_batch(tmp_path / "slow.log")) == 100 - dropped
    assert not rec.submit_messages(trial[:5])  # closed: dropped and counted
    assert rec.counters()["dropped_items"] == dropped + 5


def test_write_failure_is_counted_and_later_batches_dropped(tmp_path: Path, trial: list[can.Message]) -> None:
    rec = Recorder(tmp_path / "x.log")
    rec._log.write = _raise  # type: ignore[method-assign,assignment]
    rec.submit_messages(trial[:3])
    rec.submit_messages(trial[3:5])
    rec.close()
    c = rec.counters()
    assert c["write_errors"] == 1
    assert c["dropped_items"] == 5 and c["written_items"] == 0


def _raise(_msgs: object) -> None:
    raise OSError("disk full")


def test_size_rotation_splits_into_numbered_files(tmp_path: Path, trial: list[can.Message]) -> None:
    writer = CanLogWriter(tmp_path / "rot.log", max_bytes=20_000)
    for start in range(0, len(trial), 50):
        writer.write(trial[start : start + 50])
    writer.close()
    assert len(writer.files) > 2
    assert writer.files[1] == tmp_path / "rot_001.log"
    total = FrameBatch.concatenate([read_frame_batch(p) for p in writer.files])
    assert len(total) == len(trial)
    assert np.all(np.diff(total.timestamp) >= 0)
    assert all(p.stat().st_size < 20_000 + 50 * 60 for p in writer.files)


def test_time_rotation(tmp_path: Path, trial: list[can.Message], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("uniross.recording.time.monotonic", lambda: clock[0])
    writer = CanLogWriter(tmp_path / "t.blf", max_seconds=10)
    writer.write(trial[:10])
    clock[0] += 11
    writer.write(trial[10:20])
    writer.close()
    assert [p.name for p in writer.files] == ["t.blf", "t_001.blf"]
    assert [len(read_frame_batch(p)) for p in writer.files] == [10, 10]


def test_rotated_name_keeps_compound_suffix() -> None:
    assert rotated_name(Path("a/trial.log.gz"), 2) == Path("a/trial_002.log.gz")
    assert rotated_name(Path("trial.blf"), 0) == Path("trial.blf")


def test_record_bus_from_virtual_bus(tmp_path: Path, trial: list[can.Message]) -> None:
    channel = f"rec{id(tmp_path) % 1000}"
    with can.Bus(interface="virtual", channel=channel) as rx, can.Bus(interface="virtual", channel=channel) as tx:
        for msg in trial[:50]:
            tx.send(msg)
        rec = Recorder(tmp_path / "bus.blf")
        counters = record_bus(rx, rec, duration=0.3)
        rec.close()
    assert counters["submitted_items"] == 50
    assert len(read_frame_batch(tmp_path / "bus.blf")) == 50


def _samples(first: int, n: int, gap: bool = False) -> SampleBatch:
    values = np.vstack([np.arange(first, first + n), -np.arange(first, first + n) * 0.5])
    values[1, 0] = np.nan
    return SampleBatch(("suction_pressure", "fan_speed"), first, values, gap, 1000.0 + first / 1000)


def test_sample_file_round_trip_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "s.usmp"
    with SampleRecorder(path, ("suction_pressure", "fan_speed")) as rec:
        rec.submit_samples(_samples(0, 100))
        rec.submit_samples(_samples(150, 50, gap=True))
    assert rec.counters()["written_items"] == 300
    blocks = list(read_sample_file(path))
    assert [b.first_index for b in blocks] == [0, 150]
    assert [b.gap_before for b in blocks] == [False, True]
    np.testing.assert_array_equal(blocks[1].samples, _samples(150, 50).samples.astype(np.float32))
    assert np.isnan(blocks[0].samples[1, 0])
    raw = path.read_bytes()
    path.write_bytes(raw[:-10])
    with pytest.raises(LogFormatError, match="truncated block") as info:
        list(read_sample_file(path))
    assert info.value.offset is not None and 0 < info.value.offset < len(raw)


def test_sample_writer_refuses_other_channels(tmp_path: Path) -> None:
    writer = SampleFileWriter(tmp_path / "s.usmp", ("a",))
    with pytest.raises(ValueError, match="channels"):
        writer.write(_samples(0, 3))
    writer.close()


def _decoded_values(path: Path) -> dict[str, dict[str, np.ndarray]]:
    from uniross.export import collect_columns

    return collect_columns(path, default_database())


def test_record_then_replay_reproduces_decoded_values_and_mode_events(tmp_path: Path) -> None:
    from uniross.replay import replay_pipeline

    plan = TrialPlan(duration=3.0, sweeper_from=1.0, sweeper_to=2.5, clog_from=1.5, clog_to=2.0, dtc_from=0.5)
    msgs = list(trial_messages(default_database(), plan))
    direct = tmp_path / "direct.log"
    with can.Logger(direct) as writer:
        for msg in msgs:
            writer.on_message_received(msg)
    recorded = tmp_path / "recorded.blf"
    with Recorder(recorded) as rec:
        for start in range(0, len(msgs), 64):
            rec.submit_messages(msgs[start : start + 64])
    want, got = _decoded_values(direct), _decoded_values(recorded)
    assert set(want) == set(got)
    for name in want:
        for column in want[name]:
            np.testing.assert_allclose(got[name][column], want[name][column], atol=2e-6, err_msg=f"{name}.{column}")
    a = replay_pipeline(direct, default_database())
    b = replay_pipeline(recorded, default_database())
    assert a.frames == b.frames == len(msgs)
    assert a.mode_events and a.mode_events == b.mode_events
    assert a.final_signals == b.final_signals
    assert a.final_signals["SSC_Status.SscActiveMode"] == 0.0  # back in TRANSPORT at the end of the trial


def test_replay_source_paces_by_timestamps(tmp_path: Path, trial: list[can.Message]) -> None:
    from uniross.replay import ReplaySource

    path = tmp_path / "p.log"
    with can.Logger(path) as writer:
        for msg in trial:
            writer.on_message_received(msg)
    clock = [0.0]
    slept: list[float] = []

    def sleep(dt: float) -> None:
        slept.append(dt)
        clock[0] += dt

    source = ReplaySource(path, speed=2.0, batch_period=0.1, clock=lambda: clock[0], sleep=sleep)
    batches = list(source)
    assert sum(len(b) for b in batches) == len(trial)
    assert all(float(b.timestamp[-1] - b.timestamp[0]) < 0.1 for b in batches)
    span = trial[-1].timestamp - trial[0].timestamp
    assert clock[0] == pytest.approx((span - (batches[0].timestamp[-1] - trial[0].timestamp)) / 2.0, abs=1e-6)
    fast = list(ReplaySource(path, speed=0.0, sleep=sleep))
    assert sum(len(b) for b in fast) == len(trial) and len(slept) == len(batches) - 1
