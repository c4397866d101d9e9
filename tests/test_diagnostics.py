"""Tests of telemetry.diagnostics: clog signature vs fan ramp, fluctuation energy, hopper trend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from telemetry.diagnostics import DiagnosticsConfig, HopperTrend, SuctionDiagnostics, fault_specs
from telemetry.faults import FaultManager
from telemetry.filters import ChannelFilters, FilterBankConfig

FS = 1000.0
CHANNELS = ("suction_pressure", "fan_speed", "nozzle_dp")
CFG = DiagnosticsConfig()


def simulate(fan_rpm: np.ndarray, blockage: np.ndarray, seed: int = 0, tau_s: float = 0.3) -> np.ndarray:
    """Toy suction physics at 1 kHz: pressures follow the fan (affinity law) through a first-order lag.

    ``blockage`` in [0, 1]: 0 open hose; 1 closed. Closing raises the vacuum at the sensor towards 1.6 x the
    open-hose value and collapses the nozzle flow (dp ~ Q^2).
    """
    ratio2 = (fan_rpm / CFG.n_ref_rpm) ** 2
    p_target = CFG.suction_ref_pa * ratio2 * (1.0 + 0.6 * blockage)
    dp_target = CFG.nozzle_dp_ref_pa * ratio2 * (1.0 - blockage) ** 2
    a = 1.0 - math.exp(-1.0 / (tau_s * FS))
    lag = lambda x: signal.lfilter([a], [1, a - 1], x, zi=[x[0] * (1 - a)])[0]  # noqa: E731
    rng = np.random.default_rng(seed)
    n = fan_rpm.size
    return np.vstack(
        (lag(p_target) + rng.normal(0, 10, n), fan_rpm + rng.normal(0, 3, n), lag(dp_target) + rng.normal(0, 5, n))
    )


def run(samples: np.ndarray, block: int = 20) -> tuple[dict[str, np.ndarray], list[tuple[float, bool]]]:
    """Filters + suction diagnostics + fault manager over the whole signal; returns series and clog states."""
    filters = ChannelFilters(FilterBankConfig(), CHANNELS)
    diag = SuctionDiagnostics(CFG)
    faults = FaultManager(fault_specs(CFG))
    series: dict[str, list[np.ndarray]] = {}
    clog: list[tuple[float, bool]] = []
    for start in range(0, samples.shape[1], block):
        res = filters.process(samples[:, start : start + block], start, restart=False)
        out = diag.process(res, restart=False)
        assert out is not None
        for k, v in out.series.items():
            series.setdefault(k, []).append(v)
        now = (start + block) / FS
        for name, value in out.fault_inputs.items():
            faults.update(name, value, now)
        clog.append((now, faults.get("suction_clog").active))
    return {k: np.concatenate(v) for k, v in series.items()}, clog


def test_clog_fires_on_blockage_and_clears_after():
    n = 30_000
    fan = np.full(n, 3000.0)
    blockage = np.zeros(n)
    blockage[10_000:20_000] = 0.9
    series, clog = run(simulate(fan, blockage))
    t = np.arange(0, n, 20) / FS
    score = series["clog_score"]
    assert np.all(score[t < 9.5] < 0.5)
    assert np.all(score[(t > 11) & (t < 19.9)] > 1.0)
    active = {now: a for now, a in clog}
    assert not any(a for now, a in active.items() if now < 11.0)  # needs 2 s of evidence
    assert all(a for now, a in active.items() if 13.0 < now < 20.0)
    assert not any(a for now, a in active.items() if now > 25.0)  # cleared after hysteresis + 3 s


def test_fan_spin_up_ramp_does_not_fire_clog_or_imbalance():
    n = 20_000
    fan = np.clip(np.arange(n) / FS / 6.0, 0, 1) * 3000.0  # 0 -> 3000 rpm in 6 s, then steady
    series, clog = run(simulate(fan, np.zeros(n)))
    assert not any(a for _, a in clog)
    assert series["clog_score"].max() < 0.5
    assert series["fan_fluctuation"].max() < CFG.fan_imbalance_fault.raise_threshold


def test_spin_down_does_not_fire_clog():
    n = 15_000
    fan = np.clip(3000.0 - np.arange(n) / FS * 600.0, 0, 3000)  # 3000 -> 0 rpm in 5 s
    series, clog = run(simulate(fan, np.zeros(n), tau_s=0.8))
    assert not any(a for _, a in clog)
    assert series["clog_score"].max() < 1.0


def test_airflow_estimates_follow_affinity_and_orifice_laws():
    n = 5000
    series, _ = run(simulate(np.full(n, 1500.0), np.zeros(n)))
    assert series["airflow_m3s"][-1] == pytest.approx(CFG.q_ref_m3s / 2, rel=0.01)
    assert series["airflow_dp_m3s"][-1] == pytest.approx(CFG.q_ref_m3s / 2, rel=0.05)
    assert series["suction_expected_pa"][-1] == pytest.approx(CFG.suction_ref_pa / 4, rel=0.02)


def test_fan_ripple_raises_fluctuation_energy():
    n = 10_000
    t = np.arange(n) / FS
    fan = 3000.0 + 150.0 * np.sin(2 * np.pi * 50.0 * t)  # 5 % ripple at rotation frequency
    samples = simulate(fan, np.zeros(n))
    samples[1] = fan  # ripple on the speed channel itself
    series, _ = run(samples)
    steady = series["fan_fluctuation"][t[::20] > 5.0]
    # RMS of a 150 rpm sine = 106 rpm -> 3.5 % of 3000 rpm.
    assert steady.min() > 0.03 and steady.max() < 0.04
    calm, _ = run(simulate(np.full(n, 3000.0), np.zeros(n)))
    assert calm["fan_fluctuation"][t[::20] > 5.0].max() < 0.01


def test_missing_channel_returns_none():
    filters = ChannelFilters(FilterBankConfig(), ("fan_speed",))
    res = filters.process(np.ones((1, 20)), 0, restart=False)
    assert SuctionDiagnostics(CFG).process(res, restart=False) is None


def test_hopper_trend_slope_and_time_to_full():
    trend = HopperTrend(CFG)
    t = np.arange(0, 100, 0.1)
    level = 20.0 + 0.5 * t + np.random.default_rng(3).normal(0, 0.2, t.size)
    level[::50] = np.nan  # J1939 not available: skipped
    est = None
    for i in range(0, t.size, 10):
        est = trend.update(t[i : i + 10], level[i : i + 10])
    assert est is not None
    assert est.rate_pct_per_s == pytest.approx(0.5, rel=0.02)
    assert est.level_pct == pytest.approx(20.0 + 0.5 * t[-1], abs=0.5)
    assert est.time_to_full_s == pytest.approx((95.0 - est.level_pct) / est.rate_pct_per_s, rel=1e-9)
    flat = HopperTrend(CFG)
    est = flat.update(t, np.full(t.size, 40.0))
    assert est is not None and est.time_to_full_s == math.inf
    assert HopperTrend(CFG).update(t[:3], level[:3]) is None
