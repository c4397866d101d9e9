"""Benchmark: 16 channels x 1 kHz through the whole hot loop (filters + diagnostics + store).

Feeds 60 s of simulated samples in 20 ms blocks and reports the CPU share of one core (process CPU time /
simulated time) and the per-block latency p50/p99. Baseline, measured in the same run: a straightforward
per-sample pure-Python implementation of the same filters (Hampel over a deque, biquad cascade, decimation) on a
shorter slice, scaled to the same simulated time. Prints the ratio. Target: < 2 % of one core.

Run: ``.venv/bin/python bench/bench_hot_loop.py [--seconds 60] [--baseline-seconds 2]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import deque

import numpy as np

from firmware_bridge.serial_link import SampleBatch
from telemetry.faults import FaultManager
from telemetry.filters import ChannelFilterConfig, ChannelFilters, FilterBankConfig
from telemetry.hot_loop import HotLoop, HotLoopConfig
from telemetry.signal_store import SignalStore

FS = 1000.0
BLOCK = 20
MAIN = ("suction_pressure", "fan_speed", "fan_drive_pressure", "nozzle_dp")
CHANNELS = MAIN + tuple(f"aux_{i}" for i in range(12))
LEVELS = np.array([-4000.0, 3000.0, 180.0, 800.0] + [100.0] * 12)


def make_signal(seconds: float, seed: int = 0) -> np.ndarray:
    n = int(seconds * FS)
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    x = LEVELS[:, None] * (1.0 + 0.05 * np.sin(2 * np.pi * 0.2 * t))[None, :]
    x += rng.normal(0, 1.0, x.shape) * np.abs(LEVELS[:, None]) * 0.005
    spikes = rng.random(x.shape) < 0.002
    return x + spikes * LEVELS[:, None] * 0.5


def vectorized_run(x: np.ndarray) -> tuple[float, list[float], HotLoop]:
    cfg = ChannelFilterConfig()
    loop = HotLoop(
        SignalStore(default_depth=3000),
        FaultManager(),
        HotLoopConfig(filters=FilterBankConfig(channels={c: cfg for c in CHANNELS})),
    )
    latencies: list[float] = []
    cpu0 = time.process_time()
    for start in range(0, x.shape[1], BLOCK):
        batch = SampleBatch(CHANNELS, start, x[:, start : start + BLOCK], False, (start + BLOCK - 1) / FS)
        t0 = time.perf_counter()
        loop.process_samples(batch, now=start / FS)
        latencies.append(time.perf_counter() - t0)
    return time.process_time() - cpu0, latencies, loop


class PurePythonChannel:
    """Per-sample reference of the same pipeline for one channel (Hampel, SOS cascade, decimation)."""

    def __init__(self, sos: list[list[float]], k: int, threshold: float, floor: float, decim: int) -> None:
        self.sos = sos
        self.k, self.threshold, self.floor, self.decim = k, threshold, floor, decim
        self.window: deque[float] = deque(maxlen=2 * k + 1)
        self.z = [[0.0, 0.0] for _ in sos]

    def step(self, x: float, index: int) -> float | None:
        if not self.window:
            self.window.extend([x] * (2 * self.k))
        self.window.append(x)
        w = list(self.window)
        med = statistics.median(w)
        mad = statistics.median([abs(v - med) for v in w])
        centre = w[self.k]
        y = med if abs(centre - med) > self.threshold * max(1.4826 * mad, self.floor) else centre
        for (b0, b1, b2, _a0, a1, a2), z in zip(self.sos, self.z, strict=True):
            out = b0 * y + z[0]
            z[0] = b1 * y - a1 * out + z[1]
            z[1] = b2 * y - a2 * out
            y = out
        return y if index % self.decim == 0 else None


def vectorized_filters_only(x: np.ndarray) -> float:
    """Same filters as the pure-Python baseline (no diagnostics, no store): the like-for-like comparison."""
    filters = ChannelFilters(FilterBankConfig(channels={c: ChannelFilterConfig() for c in CHANNELS}), CHANNELS)
    cpu0 = time.process_time()
    for start in range(0, x.shape[1], BLOCK):
        filters.process(x[:, start : start + BLOCK], start, restart=False)
    return time.process_time() - cpu0


def pure_python_run(x: np.ndarray) -> float:
    from scipy import signal

    cfg = ChannelFilterConfig()
    sos = signal.butter(cfg.order, cfg.cutoff_hz, fs=FS, output="sos").tolist()
    chans = [
        PurePythonChannel(sos, cfg.hampel_half_window, cfg.hampel_threshold, cfg.hampel_floor, cfg.decimation)
        for _ in range(x.shape[0])
    ]
    rows = x.tolist()
    cpu0 = time.process_time()
    for c, ch in enumerate(chans):
        row = rows[c]
        for i, v in enumerate(row):
            ch.step(v, i)
    return time.process_time() - cpu0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--baseline-seconds", type=float, default=2.0)
    args = ap.parse_args()

    x = make_signal(args.seconds)
    vectorized_run(x[:, : 50 * BLOCK])  # warm-up (imports, first allocations)
    cpu, lat, loop = vectorized_run(x)
    share = cpu / args.seconds
    lat_us = np.array(lat) * 1e6
    filt_share = vectorized_filters_only(x) / args.seconds
    base_cpu = pure_python_run(x[:, : int(args.baseline_seconds * FS)])
    base_share = base_cpu / args.baseline_seconds

    print(f"hot loop: {len(CHANNELS)} channels x {FS:.0f} Hz, {args.seconds:.0f} s simulated, {BLOCK} ms blocks")
    print(f"  vectorized (filters + diagnostics + store): CPU {cpu:.3f} s -> {100 * share:.2f} % of one core")
    print(f"  per-block latency: p50 {np.percentile(lat_us, 50):.0f} us, p99 {np.percentile(lat_us, 99):.0f} us, "
          f"max {lat_us.max():.0f} us")
    print(f"  deadline misses (budget {loop.config.cycle_budget_s * 1e3:.1f} ms): "
          f"{loop.timing()['process_samples']['deadline_misses']}")
    print(f"  pure-Python per-sample filters only ({args.baseline_seconds:.0f} s slice, scaled): "
          f"{100 * base_share:.1f} % of one core")
    print(f"  vectorized filters only: {100 * filt_share:.2f} % of one core")
    print(f"  ratio pure-Python filters / vectorized filters: {base_share / filt_share:.1f}x")
    print(f"  ratio pure-Python filters / whole vectorized loop: {base_share / share:.1f}x")
    print(f"  target < 2 % of one core: {'PASS' if share < 0.02 else 'FAIL'}")


if __name__ == "__main__":
    main()
