"""Tests of telemetry.hot_loop: end-to-end serial and CAN processing, gaps, bad input, timing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pytest

from firmware_bridge.serial_link import SampleBatch
from telemetry.faults import FaultManager
from telemetry.hot_loop import HotLoop, HotLoopConfig
from telemetry.signal_store import SignalStore

CHANNELS = ("suction_pressure", "fan_speed", "fan_drive_pressure", "nozzle_dp")
LEVELS = np.array([-4000.0, 3000.0, 180.0, 800.0])


@dataclass
class Msg:
    timestamp: np.ndarray
    signals: dict[str, np.ndarray]
    na: dict[str, np.ndarray] = field(default_factory=dict)

    def physical(self, name: str) -> np.ndarray:
        v = self.signals[name].astype(np.float64)
        return np.where(self.na.get(name, np.zeros(v.shape, bool)), np.nan, v)


@dataclass
class Decoded:
    messages: dict[str, Msg]


def make_loop(**cfg) -> tuple[HotLoop, SignalStore, FaultManager]:
    store, faults = SignalStore(), FaultManager()
    return HotLoop(store, faults, HotLoopConfig(**cfg)), store, faults


def steady_batch(first: int, n: int = 20, gap: bool = False, levels: np.ndarray = LEVELS) -> SampleBatch:
    return SampleBatch(CHANNELS, first, np.repeat(levels[:, None], n, axis=1), gap, (first + n - 1) / 1000.0)


def test_serial_batches_fill_store_at_telemetry_rate():
    loop, store, _ = make_loop()
    for i in range(100):  # 2 s in 20 ms blocks
        loop.process_samples(steady_batch(i * 20), now=i * 0.02)
    t, v = store.history("serial.fan_speed")
    assert t.size == 100  # 1 kHz / 20 = 50 Hz
    np.testing.assert_allclose(np.diff(t), 0.02)
    np.testing.assert_allclose(v, 3000.0)
    snap = store.snapshot()
    assert snap["serial.suction_pressure"].unit == "Pa" and snap["serial.suction_pressure"].valid
    assert snap["serial.nozzle_dp.raw"].value == 800.0
    assert snap["diag.airflow_m3s"].value == pytest.approx(5.5)
    assert snap["diag.clog_score"].value == 0.0
    assert loop.counters()["sample_batches"] == 100
    timing = loop.timing()["process_samples"]
    assert timing["calls"] == 100 and timing["p99_us"] > 0 and sum(timing["histogram"]["counts"]) == 100


def test_gap_restarts_filters_and_breaks_history():
    loop, store, _ = make_loop()
    for i in range(10):
        loop.process_samples(steady_batch(i * 20), now=0.0)
    low = LEVELS * 0.5
    loop.process_samples(steady_batch(5000, gap=True, levels=low), now=0.0)
    t, v = store.history("serial.fan_speed")
    # NaN marker between segments, then the new level at once (state restarted from x0, no ringing).
    assert np.isnan(v[10]) and t[10] < t[11]
    np.testing.assert_allclose(v[11:], 1500.0)
    assert loop.counters()["gaps"] == 1


def test_index_jump_without_gap_flag_is_treated_as_gap():
    loop, store, _ = make_loop()
    loop.process_samples(steady_batch(0), now=0.0)
    loop.process_samples(steady_batch(500, levels=LEVELS * 2), now=0.0)
    assert loop.counters()["index_discontinuity"] == 1
    assert store.latest("serial.fan_speed").value == pytest.approx(6000.0)


def test_bad_input_is_counted_never_raised():
    loop, store, _ = make_loop()
    loop.process_samples(SampleBatch(CHANNELS, 0, np.empty((4, 0)), False, 0.0), now=0.0)
    loop.process_samples(SampleBatch(CHANNELS, 0, np.ones((3, 20)), False, 0.0), now=0.0)
    loop.process_samples(SampleBatch(("fan_speed", "weird"), 0, np.ones((2, 20)), False, 0.1), now=0.0)
    loop.process_samples(SampleBatch(CHANNELS, 20, "garbage", False, 0.2), now=0.0)  # type: ignore[arg-type]
    nan_block = steady_batch(40)
    nan_block.samples[1, 3:6] = np.nan
    loop.process_samples(nan_block, now=0.0)
    loop.process_can(Decoded({"Broken": None}), None, now=0.0)  # type: ignore[dict-item]
    c = loop.counters()
    assert c["empty_batch"] == 1 and c["bad_shape"] >= 1 and c["unknown_channel"] == 1
    assert c["nonfinite_samples"] == 3
    assert c["error_process_samples"] == 1 and c["error_can_message"] == 1
    assert "weird" not in " ".join(store.keys())
    assert np.isfinite(store.latest("serial.fan_speed").value)


def test_can_signals_stored_with_validity_and_na():
    loop, store, _ = make_loop()
    ts = np.array([1.0, 1.02])
    suction = Msg(ts, {"SuctionPressure": np.array([-3000.0, -3100.0]), "SuctionFanState": np.array([2, 2])},
                  na={"SuctionPressure": np.array([False, True])})
    loop.process_can(Decoded({"SSC_Suction": suction}), {"SSC_Suction": True}, now=1.02)
    s = store.latest("SSC_Suction.SuctionPressure")
    assert np.isnan(s.value) and not s.valid  # J1939 not available
    assert store.latest("SSC_Suction.SuctionFanState").valid
    np.testing.assert_array_equal(store.history("SSC_Suction.SuctionPressure")[0], ts)
    # The message times out (absent from the batch, invalid): its signals become invalid.
    loop.process_can(Decoded({}), {"SSC_Suction": False}, now=1.2)
    assert not store.latest("SSC_Suction.SuctionFanState").valid
    loop.process_can(Decoded({"SSC_Suction": Msg(np.array([1.3]), {"SuctionFanState": np.array([2])})}),
                     {"SSC_Suction": True}, now=1.3)
    assert store.latest("SSC_Suction.SuctionFanState").valid


def test_hopper_trend_raises_hopper_faults():
    loop, store, faults = make_loop()
    for k in range(250):  # 25 s of 100 ms frames, one per batch, filling 2 %/s from 50 % (95 % at 22.5 s)
        ts = np.array([k * 0.1])
        level = 50.0 + 2.0 * ts
        hopper = Msg(ts, {"HopperFillLevel": level, "HopperRaised": np.zeros(1)})
        loop.process_can(Decoded({"SSC_HopperWater": hopper}), None, now=float(ts[-1]))
    assert store.latest("diag.hopper_fill_rate_pct_s").value == pytest.approx(2.0, rel=0.05)
    assert faults.get("hopper_filling").active
    assert faults.get("hopper_filling").raised_at < 22.5 - 5.0  # predicted well before it is full
    assert faults.get("hopper_full").active and faults.demand() == "stow"


def test_deadline_misses_counted_against_budget():
    loop, _, _ = make_loop(cycle_budget_s=1e-9)
    loop.process_samples(steady_batch(0), now=0.0)
    assert loop.timing()["process_samples"]["deadline_misses"] == 1


def test_store_memory_bounded_under_long_run():
    loop, store, _ = make_loop(serial_history_depth=100)
    loop.process_samples(steady_batch(0, n=1000), now=0.0)
    before = store.nbytes()
    for i in range(1, 200):
        loop.process_samples(steady_batch(i * 1000, n=1000), now=float(i))
    assert store.nbytes() == before
    assert len(store.history("serial.fan_speed")[0]) == 100


def test_sample_times_follow_the_least_delay_and_never_lie_in_the_future():
    loop, store, _ = make_loop()
    rng = np.random.default_rng(3)
    host_times = []
    for k in range(200):
        host_time = 100.0 + (k * 20 + 19) / 1000.0 + 0.002 + rng.exponential(0.01)  # jittery transport delay
        b = dataclasses.replace(steady_batch(k * 20), host_time=host_time)
        host_times.append(b.host_time)
        loop.process_samples(b, b.host_time)
        latest = store.latest("serial.fan_speed.raw")
        assert latest is not None and latest.timestamp <= b.host_time  # never in the future
    t, _ = store.history("serial.fan_speed.raw", 0.0, 1e9, 100000)
    t = t[np.isfinite(t)]
    spacing = np.diff(t)
    # the firmware's sample spacing (50 Hz telemetry), not the arrival jitter (~10 ms)
    assert abs(np.median(spacing) - 0.02) < 1e-5
    assert np.mean(np.abs(spacing - 0.02) < 2e-4) > 0.9
    # the offset converged to the least delay seen (2 ms + smallest jitter), not a jittery per-batch delay
    assert t[-1] > host_times[-1] - 0.05
