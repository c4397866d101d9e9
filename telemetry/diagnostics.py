"""Derived diagnostics of the suction system and the hopper, and the faults they drive.

Owns the physics-based checks run by the hot loop:

* **Airflow** from fan speed by the fan affinity laws: ``Q = Q_ref * n / n_ref`` and expected suction
  ``p_exp = p_ref * (n / n_ref)^2`` (negative gauge pressure). A second, measured airflow comes from the nozzle
  differential pressure (orifice law): ``Q_dp = Q_ref * sqrt(dp / dp_ref)``.
* **Clog** signature (a blocked nozzle or hose): the suction sensor sits between the blockage and the fan, so the
  fan pulls it towards its shut-off vacuum (measured vacuum well *above* what the fan speed predicts) while the
  airflow through the nozzle collapses (nozzle dp well *below* prediction). Both must hold:
  ``clog_score = min((p/p_exp - 1) / suction_margin, (1 - dp/dp_exp) / nozzle_margin)``, clipped to [0, 5];
  ``>= 1`` means both deviations exceed their margins. Either one alone is not a clog: during a fan spin-up the
  pressures lag the fan (vacuum below prediction), during spin-down the nozzle dp lags high, and a leak or a
  raised nozzle lowers the vacuum. Below ``min_fan_rpm`` the ratios are meaningless and the score is 0.
  The fault uses hysteresis and minimum durations (see :class:`FaultTuning`).
* **Fan imbalance / surge**: fluctuation energy. The despiked full-rate fan speed and suction pressure pass a
  Butterworth high-pass (state carried); the exponentially weighted mean square gives an RMS, divided by the
  low-passed level: ``fan_fluctuation`` (imbalance: rotation-frequency ripple on the speed) and
  ``pressure_fluctuation`` (surge: pressure pulsation).
* **Hopper trend**: least-squares line over a time window of ``SSC_HopperWater.HopperFillLevel`` -> fill rate
  and time to full.

Every block of serial samples is evaluated at the decimated (telemetry) rate; the fault manager is fed the
latest value once per call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import signal

from telemetry.faults import Demand, FaultSpec, Severity
from telemetry.filters import ChannelResult
from telemetry.ring_buffer import FloatArray, RingBuffer


class FaultTuning(BaseModel):
    """Thresholds of one diagnostic fault (see :class:`telemetry.faults.FaultSpec`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: Severity
    raise_threshold: float
    clear_threshold: float
    raise_after_s: float = Field(ge=0.0)
    clear_after_s: float = Field(ge=0.0)
    direction: Literal["above", "below"] = "above"
    demands: Demand | None = None
    latch: bool = False

    def spec(self, name: str, description: str) -> FaultSpec:
        return FaultSpec(
            name, self.severity, self.raise_threshold, self.clear_threshold, self.raise_after_s,
            self.clear_after_s, self.direction, self.demands, self.latch, description,
        )


class DiagnosticsConfig(BaseModel):
    """Coefficients and fault thresholds of the diagnostics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_rate_hz: float = Field(default=1000.0, gt=0.0)
    suction_channel: str = "suction_pressure"
    fan_channel: str = "fan_speed"
    nozzle_channel: str = "nozzle_dp"
    # Fan affinity reference point (nominal sweeping at n_ref).
    n_ref_rpm: float = Field(default=3000.0, gt=0.0)
    q_ref_m3s: float = Field(default=5.5, gt=0.0)
    suction_ref_pa: float = Field(default=-4000.0, lt=0.0)
    nozzle_dp_ref_pa: float = Field(default=800.0, gt=0.0)
    min_fan_rpm: float = Field(default=600.0, ge=0.0)
    # Clog signature margins.
    clog_suction_margin: float = Field(default=0.3, gt=0.0, description="vacuum this much above prediction")
    clog_nozzle_margin: float = Field(default=0.5, gt=0.0, description="nozzle dp this much below prediction")
    # Fluctuation energy.
    fluctuation_highpass_hz: float = Field(default=5.0, gt=0.0)
    fluctuation_time_constant_s: float = Field(default=1.0, gt=0.0)
    # Hopper trend.
    hopper_message: str = "SSC_HopperWater"
    hopper_signal: str = "HopperFillLevel"
    hopper_window_s: float = Field(default=60.0, gt=0.0)
    hopper_min_points: int = Field(default=10, ge=2)
    hopper_full_pct: float = Field(default=95.0, gt=0.0, le=100.0)

    clog_fault: FaultTuning = FaultTuning(
        severity="warning", raise_threshold=1.0, clear_threshold=0.5, raise_after_s=2.0, clear_after_s=3.0,
    )
    fan_imbalance_fault: FaultTuning = FaultTuning(
        severity="critical", raise_threshold=0.03, clear_threshold=0.015, raise_after_s=3.0, clear_after_s=5.0,
        demands="safe", latch=True,
    )
    surge_fault: FaultTuning = FaultTuning(
        severity="warning", raise_threshold=0.15, clear_threshold=0.08, raise_after_s=2.0, clear_after_s=3.0,
    )
    hopper_full_fault: FaultTuning = FaultTuning(
        severity="warning", raise_threshold=95.0, clear_threshold=90.0, raise_after_s=2.0, clear_after_s=2.0,
        demands="stow",
    )
    hopper_filling_fault: FaultTuning = FaultTuning(
        severity="info", raise_threshold=300.0, clear_threshold=420.0, raise_after_s=5.0, clear_after_s=5.0,
        direction="below",
    )


FAULT_DESCRIPTIONS: Mapping[str, str] = {
    "suction_clog": "Suction vacuum far above and nozzle airflow far below what the fan speed predicts",
    "fan_imbalance": "Fan speed ripple above limit (imbalance, damaged or loaded impeller)",
    "fan_surge": "Suction pressure pulsation above limit (fan surge / unstable airflow)",
    "hopper_full": "Hopper fill level at the full limit",
    "hopper_filling": "Hopper will be full soon at the current fill rate",
}


def fault_specs(cfg: DiagnosticsConfig) -> list[FaultSpec]:
    """The fault definitions the diagnostics feed, for :class:`telemetry.faults.FaultManager`."""
    tunings = {
        "suction_clog": cfg.clog_fault,
        "fan_imbalance": cfg.fan_imbalance_fault,
        "fan_surge": cfg.surge_fault,
        "hopper_full": cfg.hopper_full_fault,
        "hopper_filling": cfg.hopper_filling_fault,
    }
    return [t.spec(name, FAULT_DESCRIPTIONS[name]) for name, t in tunings.items()]


@dataclass(frozen=True, slots=True)
class SuctionDiagnosticsOutput:
    """Diagnostic series at the decimated sample positions; ``fault_inputs`` = latest value per fault."""

    series: dict[str, FloatArray]
    fault_inputs: dict[str, float]


SUCTION_SERIES_UNITS: Mapping[str, str] = {
    "airflow_m3s": "m3/s",
    "airflow_dp_m3s": "m3/s",
    "suction_expected_pa": "Pa",
    "clog_score": "",
    "fan_fluctuation": "",
    "pressure_fluctuation": "",
}


class SuctionDiagnostics:
    """Airflow, clog score and fluctuation energy from the filtered serial channels (state carried)."""

    def __init__(self, cfg: DiagnosticsConfig) -> None:
        self.cfg = cfg
        self._hp_sos = np.asarray(
            signal.butter(2, cfg.fluctuation_highpass_hz, btype="high", fs=cfg.sample_rate_hz, output="sos")
        )
        self._hp_zi_unit = signal.sosfilt_zi(self._hp_sos)
        alpha = 1.0 - math.exp(-1.0 / (cfg.fluctuation_time_constant_s * cfg.sample_rate_hz))
        self._ema_b = np.array([alpha])
        self._ema_a = np.array([1.0, alpha - 1.0])
        self._hp_zi: FloatArray = np.zeros((self._hp_sos.shape[0], 2, 2))
        self._ema_zi: FloatArray = np.zeros((2, 1))
        self._started = False

    @property
    def required_channels(self) -> tuple[str, str, str]:
        return self.cfg.suction_channel, self.cfg.fan_channel, self.cfg.nozzle_channel

    def reset(self) -> None:
        self._started = False

    def process(self, channels: Mapping[str, ChannelResult], restart: bool) -> SuctionDiagnosticsOutput | None:
        """Evaluate one block; None when a required channel is missing."""
        cfg = self.cfg
        if any(c not in channels for c in self.required_channels):
            return None
        p_res, n_res, dp_res = (channels[c] for c in self.required_channels)
        idx = n_res.decimated_at

        # Fluctuation energy, full rate, fan speed and suction pressure together (2 x N).
        x = np.vstack((n_res.despiked, p_res.despiked))
        if restart or not self._started:
            self._hp_zi = self._hp_zi_unit[:, None, :] * x[None, :, 0, None]
            self._ema_zi = np.zeros((2, 1))
            self._started = True
        hp, self._hp_zi = signal.sosfilt(self._hp_sos, x, axis=1, zi=self._hp_zi)
        ms, self._ema_zi = signal.lfilter(self._ema_b, self._ema_a, hp * hp, axis=1, zi=self._ema_zi)
        rms = np.sqrt(np.maximum(ms[:, idx], 0.0))

        n = n_res.filtered[idx]
        p = p_res.filtered[idx]
        dp = dp_res.filtered[idx]
        running = n >= max(cfg.min_fan_rpm, 1e-9)
        ratio = n / cfg.n_ref_rpm
        p_exp = cfg.suction_ref_pa * ratio * ratio
        dp_exp = cfg.nozzle_dp_ref_pa * ratio * ratio
        with np.errstate(divide="ignore", invalid="ignore"):
            suction_excess = (p / p_exp - 1.0) / cfg.clog_suction_margin
            nozzle_deficit = (1.0 - dp / dp_exp) / cfg.clog_nozzle_margin
            clog = np.where(running, np.clip(np.minimum(suction_excess, nozzle_deficit), 0.0, 5.0), 0.0)
            fan_fluct = np.where(running, rms[0] / np.abs(n), 0.0)
            p_fluct = np.where(running, rms[1] / np.maximum(np.abs(p_exp), 1.0), 0.0)
        series = {
            "airflow_m3s": cfg.q_ref_m3s * np.maximum(ratio, 0.0),
            "airflow_dp_m3s": cfg.q_ref_m3s * np.sqrt(np.maximum(dp, 0.0) / cfg.nozzle_dp_ref_pa),
            "suction_expected_pa": p_exp,
            "clog_score": clog,
            "fan_fluctuation": fan_fluct,
            "pressure_fluctuation": p_fluct,
        }
        if idx.size == 0:
            return SuctionDiagnosticsOutput(series, {})
        return SuctionDiagnosticsOutput(
            series,
            {"suction_clog": float(clog[-1]), "fan_imbalance": float(fan_fluct[-1]),
             "fan_surge": float(p_fluct[-1])},
        )


@dataclass(frozen=True, slots=True)
class HopperEstimate:
    level_pct: float
    rate_pct_per_s: float
    time_to_full_s: float


class HopperTrend:
    """Least-squares fill-rate over a sliding time window of the hopper fill level (fixed memory)."""

    def __init__(self, cfg: DiagnosticsConfig, depth: int = 4096) -> None:
        self.cfg = cfg
        self._buf = RingBuffer(depth)

    def update(self, t: FloatArray, level: FloatArray) -> HopperEstimate | None:
        """Add samples (NaN = not available, skipped); None until the window holds enough points."""
        ok = np.isfinite(level) & np.isfinite(t)
        self._buf.append(t[ok], level[ok])
        if len(self._buf) == 0:
            return None
        t_last = self._buf.last_time()
        tw, lw = self._buf.range(t_last - self.cfg.hopper_window_s, t_last)
        if tw.size < self.cfg.hopper_min_points or tw[-1] - tw[0] <= 0.0:
            return None
        tc = tw - tw.mean()
        slope = float(np.dot(tc, lw - lw.mean()) / np.dot(tc, tc))
        level_now = float(lw.mean() + slope * tc[-1])
        remaining = self.cfg.hopper_full_pct - level_now
        if remaining <= 0.0:
            ttf = 0.0
        elif slope > 1e-9:
            ttf = remaining / slope
        else:
            ttf = math.inf
        return HopperEstimate(level_now, slope, ttf)
