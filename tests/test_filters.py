"""Tests of telemetry.filters: block-size independence against whole-signal references, spikes, gaps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import signal

from telemetry.filters import ChannelFilterConfig, ChannelFilters, FilterBank, FilterBankConfig

FS = 1000.0


def hampel_reference(x: np.ndarray, k: int, threshold: float, floor: float) -> np.ndarray:
    """Per-sample causal Hampel with delay k, left edge padded with x[0] (the documented definition)."""
    padded = np.concatenate((np.full(2 * k, x[0]), x))
    out = np.empty_like(x)
    for i in range(len(x)):
        window = padded[i : i + 2 * k + 1]
        med = np.median(window)
        sigma = max(1.4826 * np.median(np.abs(window - med)), floor)
        centre = window[k]
        out[i] = med if abs(centre - med) > threshold * sigma else centre
    return out


def lowpass_reference(x: np.ndarray, cfg: ChannelFilterConfig) -> np.ndarray:
    sos = signal.butter(cfg.order, cfg.cutoff_hz, fs=FS, output="sos")
    y, _ = signal.sosfilt(sos, x, zi=signal.sosfilt_zi(sos) * x[0])
    return np.asarray(y)


def run_blocks(bank: FilterBank, x: np.ndarray, cuts: list[int], first_index: int = 0):
    edges = [0, *sorted(set(c for c in cuts if 0 < c < x.shape[1])), x.shape[1]]
    outs = [bank.process(x[:, a:b], first_index + a, restart=False) for a, b in itertools.pairwise(edges)]
    despiked = np.concatenate([o.despiked for o in outs], axis=1)
    filtered = np.concatenate([o.filtered for o in outs], axis=1)
    kept = np.concatenate([o.decimated_at + a for o, a in zip(outs, edges, strict=False)])
    return despiked, filtered, kept


def noisy_signal(rng: np.random.Generator, n: int, channels: int = 3) -> np.ndarray:
    t = np.arange(n) / FS
    x = 100 * np.sin(2 * np.pi * 2 * t)[None, :] + rng.normal(0, 3, (channels, n))
    spikes = rng.random((channels, n)) < 0.01
    return x + spikes * rng.choice([-400.0, 400.0], size=(channels, n))


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=1, max_value=599), max_size=12),
    seed=st.integers(0, 2**16),
    k=st.integers(0, 5),
    first_index=st.integers(0, 10_000),
)
def test_block_split_matches_whole_signal_reference(cuts, seed, k, first_index):
    cfg = ChannelFilterConfig(cutoff_hz=15.0, order=4, hampel_half_window=k, hampel_threshold=3.0, decimation=10)
    x = noisy_signal(np.random.default_rng(seed), 600)
    bank = FilterBank(cfg, FS, x.shape[0])
    despiked, filtered, kept = run_blocks(bank, x, cuts, first_index)
    for c in range(x.shape[0]):
        ref = hampel_reference(x[c], k, 3.0, 0.0)
        np.testing.assert_allclose(despiked[c], ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(filtered[c], lowpass_reference(ref, cfg), rtol=1e-12, atol=1e-9)
    expected_kept = np.flatnonzero((first_index + np.arange(600)) % 10 == 0)
    np.testing.assert_array_equal(kept, expected_kept)


def test_spikes_removed_and_steps_kept():
    k = 3
    cfg = ChannelFilterConfig(hampel_half_window=k, hampel_threshold=3.0, hampel_floor=1.0)
    rng = np.random.default_rng(1)
    n = 2000
    clean = np.where(np.arange(n) < 1000, -2000.0, -3500.0) + rng.normal(0, 0.3, n)
    spiky = clean.copy()
    spike_at = np.array([200, 201, 555, 1400, 1777])
    spiky[spike_at] += np.array([5000.0, 4800.0, -3000.0, 2500.0, -6000.0])
    bank = FilterBank(cfg, FS, 1)
    out = bank.process(spiky[None, :], 0, restart=False)
    delayed = out.despiked[0, k:]  # output i corresponds to input i - k
    # Every injected spike is gone: the output stays within noise of the clean signal.
    assert np.max(np.abs(delayed - clean[: n - k])) < 5.0
    # The step passes unchanged (not smoothed away): samples just after it are the raw samples.
    np.testing.assert_array_equal(delayed[1000:1010], clean[1000:1010])
    assert int(out.spikes[0]) >= len(spike_at)


def test_gap_restarts_state_without_stitching():
    cfg = ChannelFilterConfig(cutoff_hz=5.0, hampel_half_window=2)
    rng = np.random.default_rng(7)
    before = -1000 + rng.normal(0, 2, (2, 400))
    after = -3000 + rng.normal(0, 2, (2, 300))
    bank = FilterBank(cfg, FS, 2)
    bank.process(before, 0, restart=False)
    resumed = bank.process(after, 900, restart=True)
    fresh = FilterBank(cfg, FS, 2).process(after, 900, restart=False)
    np.testing.assert_array_equal(resumed.filtered, fresh.filtered)
    # Re-initialised at the first new sample: no ringing from the old level, starts at x0.
    np.testing.assert_allclose(resumed.filtered[:, 0], after[:, 0], atol=1e-9)
    assert np.all(resumed.filtered < -2900)


def test_nonfinite_samples_are_held_and_counted():
    cfg = ChannelFilterConfig(hampel_half_window=1)
    bank = FilterBank(cfg, FS, 2)
    x = np.full((2, 50), 10.0)
    x[0, 5:8] = np.nan
    x[1, :] = np.inf
    out = bank.process(x, 0, restart=False)
    assert out.nonfinite.tolist() == [3, 50]
    assert np.all(np.isfinite(out.filtered))
    np.testing.assert_allclose(out.filtered[0], 10.0)
    # Later finite data is still filtered (state was not poisoned by NaN).
    out2 = bank.process(np.full((2, 20), 10.0), 50, restart=False)
    assert np.all(np.isfinite(out2.filtered))


def test_channel_filters_group_by_config_and_ignore_unknown():
    cfg = FilterBankConfig()
    cf = ChannelFilters(cfg, ("fan_speed", "mystery", "suction_pressure", "nozzle_dp"))
    assert cf.unknown == ("mystery",)
    x = np.vstack([np.full(40, 3000.0), np.full(40, 1.0), np.full(40, -2500.0), np.full(40, 800.0)])
    out = cf.process(x, 0, restart=False)
    assert set(out) == {"fan_speed", "suction_pressure", "nozzle_dp"}
    np.testing.assert_allclose(out["suction_pressure"].filtered, -2500.0)
    np.testing.assert_array_equal(out["fan_speed"].decimated_at, [0, 20])


def test_config_rejects_aliasing_cutoff():
    with pytest.raises(ValidationError):
        FilterBankConfig(channels={"x": ChannelFilterConfig(cutoff_hz=30.0, decimation=20)})
