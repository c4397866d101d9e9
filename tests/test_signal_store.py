"""Tests of telemetry.ring_buffer and telemetry.signal_store: fixed memory, range + decimation, changes."""

from __future__ import annotations

import threading

import cantools
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.ring_buffer import RingBuffer, minmax_decimate
from telemetry.signal_store import SignalStore


def test_ring_buffer_fixed_memory_over_a_million_appends():
    rb = RingBuffer(1000)
    nbytes = rb.nbytes
    t = 0.0
    for _ in range(10_000):  # 1e6 samples in columns of 100
        ts = t + np.arange(100) * 1e-3
        rb.append(ts, ts * 2)
        t = ts[-1] + 1e-3
    assert rb.nbytes == nbytes
    assert len(rb) == 1000
    tt, vv = rb.range(-np.inf, np.inf)
    np.testing.assert_allclose(np.diff(tt), 1e-3, rtol=1e-6)
    assert tt[-1] == t - 1e-3
    np.testing.assert_array_equal(vv, tt * 2)


def test_store_memory_constant_under_load_and_key_flood():
    store = SignalStore(default_depth=500, max_keys=8)
    for k in range(8):
        store.register(f"serial.ch{k}", unit="Pa")
    before = store.nbytes()
    for i in range(2000):
        t = i + np.arange(50) / 50
        for k in range(8):
            store.append(f"serial.ch{k}", t, np.sin(t))
        store.set(f"garbage.{i}", 1.0, float(i))  # unknown keys beyond max_keys are refused
    assert store.nbytes() == before
    assert len(store.keys()) == 8
    assert store.counters()["dropped_unknown_keys"] == 2000


@settings(max_examples=60, deadline=None)
@given(
    depth=st.integers(1, 64),
    chunks=st.lists(st.integers(0, 100), min_size=1, max_size=20),
    bounds=st.tuples(st.floats(-10, 600), st.floats(-10, 600)),
)
def test_ring_buffer_range_matches_last_depth_samples(depth, chunks, bounds):
    rb = RingBuffer(depth)
    all_t: list[float] = []
    n = 0
    for c in chunks:
        ts = np.arange(n, n + c, dtype=float)
        rb.append(ts, -ts)
        all_t.extend(ts)
        n += c
    t0, t1 = min(bounds), max(bounds)
    kept = np.array(all_t[-depth:] if all_t else [])
    expected = kept[(kept >= t0) & (kept <= t1)]
    tt, vv = rb.range(t0, t1)
    np.testing.assert_array_equal(tt, expected)
    np.testing.assert_array_equal(vv, -expected)


def test_out_of_order_samples_dropped_and_counted():
    rb = RingBuffer(10)
    rb.append(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    rb.append(np.array([2.5, 4.0, 3.5, 5.0]), np.array([9.0, 4.0, 9.0, 5.0]))
    t, v = rb.range(-np.inf, np.inf)
    np.testing.assert_array_equal(t, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(v, [1, 2, 3, 4, 5])
    assert rb.dropped_out_of_order == 2


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 500), max_points=st.integers(1, 80), seed=st.integers(0, 1000))
def test_minmax_decimation_keeps_extremes_in_order(n, max_points, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    v = rng.normal(size=n)
    v[rng.random(n) < 0.05] = np.nan
    td, vd = minmax_decimate(t, v, max_points)
    assert td.size <= max(max_points, 1) or n <= max_points
    assert np.all(np.diff(td) > 0)
    np.testing.assert_array_equal(vd, v[td.astype(int)])  # real samples, not averages
    if n > max_points >= 2 and np.isfinite(v).any():
        assert np.nanmax(vd) == np.nanmax(v) and np.nanmin(vd) == np.nanmin(v)
    if n <= max_points:
        np.testing.assert_array_equal(td, t)


def test_history_range_and_decimation():
    store = SignalStore(default_depth=10_000)
    t = np.arange(5000) / 1000.0
    v = np.sin(2 * np.pi * t)
    v[2500] = 50.0  # spike must survive decimation
    store.append("serial.fan_speed", t, v, unit="rpm")
    tt, vv = store.history("serial.fan_speed", 1.0, 3.0)
    np.testing.assert_array_equal(tt, t[1000:3001])
    np.testing.assert_array_equal(vv, v[1000:3001])
    td, vd = store.history("serial.fan_speed", 1.0, 3.0, max_points=100)
    assert td.size <= 100 and 50.0 in vd
    assert td[0] >= 1.0 and td[-1] <= 3.0
    assert store.history("nope", 0, 1)[0].size == 0


def test_snapshot_validity_and_changed_since():
    store = SignalStore()
    store.register("SSC_Suction.SuctionPressure", unit="Pa")
    v0, changed = store.changed_since(0)
    assert changed == []
    store.append("SSC_Suction.SuctionPressure", np.array([1.0, 2.0]), np.array([-100.0, -200.0]))
    store.set("serial.fan_speed", 3000.0, 2.5, unit="rpm")
    store.set("diag.clog_score", float("nan"), 2.5)
    seq, changed = store.changed_since(v0)
    assert set(changed) == {"SSC_Suction.SuctionPressure", "serial.fan_speed", "diag.clog_score"}
    snap = store.snapshot()
    s = snap["SSC_Suction.SuctionPressure"]
    assert (s.value, s.unit, s.valid, s.timestamp) == (-200.0, "Pa", True, 2.0)
    assert not snap["diag.clog_score"].valid  # NaN is never valid
    assert store.changed_since(seq) == (seq, [])
    store.set_valid("SSC_Suction.SuctionPressure", False)
    seq2, changed = store.changed_since(seq)
    assert changed == ["SSC_Suction.SuctionPressure"] and seq2 > seq
    assert not store.latest("SSC_Suction.SuctionPressure").valid
    assert list(store.snapshot(["serial.fan_speed", "unknown"])) == ["serial.fan_speed"]


def test_register_can_database_units():
    db = cantools.database.load_file("dbc/uniross.dbc")
    store = SignalStore(default_depth=10)
    assert store.register_can_database(db) > 10
    assert store.unit("SSC_Suction.SuctionPressure") == "Pa"
    assert store.unit("SSC_HopperWater.HopperFillLevel") == "%"


def test_concurrent_readers_see_consistent_history():
    store = SignalStore(default_depth=2000)
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            t, v = store.history("serial.x", max_points=200)
            if t.size and not (np.all(np.diff(t) >= 0) and np.array_equal(v, t * 3)):
                errors.append("inconsistent")
            store.snapshot()

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for th in threads:
        th.start()
    for i in range(3000):
        t = i * 0.02 + np.arange(20) * 1e-3
        store.append("serial.x", t, t * 3)
    stop.set()
    for th in threads:
        th.join()
    assert errors == []
