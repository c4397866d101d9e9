"""Tunable thresholds, working setpoints and step timeouts of the mode machine (one frozen dataclass)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ModeConfig:
    # working setpoints (inside the OBC_Setpoints ranges: fan 0..4000, auger 0..500, rotor 0..2500 step 10)
    fan_setpoint_rpm: float = 2400.0
    auger_setpoint_rpm: float = 250.0
    rotor_setpoint_rpm: float = 1500.0
    # interlock / supervision thresholds (DESIGN.md "Modes")
    engine_running_rpm: float = 400.0
    engage_max_speed_kmh: float = 5.0
    stationary_max_speed_kmh: float = 0.5
    sweep_max_speed_kmh: float = 25.0
    sweep_overspeed_s: float = 2.0
    hopper_full_pct: float = 95.0
    fan_interlock_rpm: float = 300.0  # fan "on" above this: never together with auger/rotor
    # feedback thresholds used to confirm steps
    fan_stopped_rpm: float = 50.0
    snow_stopped_rpm: float = 20.0  # auger / rotor below this count as stopped
    brush_stopped_rpm: float = 10.0
    nozzle_raised_mm: float = 150.0
    speed_tolerance: float = 0.10  # "at setpoint" = within 10 % of it
    # per-step timeout overrides, keyed by step name (see modes.sequences.DEFAULT_TIMEOUTS_S)
    step_timeouts_s: Mapping[str, float] = field(default_factory=dict)
    event_log_size: int = 1000
    fault_ack_hold_s: float = 1.0  # OBC_ModeCommand.FaultAck stays 1 this long after an acknowledged exit

    def __post_init__(self) -> None:
        if not self.fan_interlock_rpm < self.fan_setpoint_rpm <= 4000.0:
            raise ValueError("fan_setpoint_rpm must be above fan_interlock_rpm and at most 4000")
        if not 0.0 < self.auger_setpoint_rpm <= 500.0:
            raise ValueError("auger_setpoint_rpm must be in (0, 500]")
        if not 0.0 < self.rotor_setpoint_rpm <= 2500.0 or self.rotor_setpoint_rpm % 10:
            raise ValueError("rotor_setpoint_rpm must be in (0, 2500] and a multiple of 10 (DBC scaling)")
        if self.fan_setpoint_rpm * (1.0 - self.speed_tolerance) <= self.fan_interlock_rpm:
            raise ValueError("fan setpoint tolerance band reaches below fan_interlock_rpm")
        if self.snow_stopped_rpm * 2 > self.auger_setpoint_rpm * (1.0 - self.speed_tolerance):
            raise ValueError("snow_stopped_rpm too close to the auger setpoint")
        if not 0.0 <= self.stationary_max_speed_kmh <= self.engage_max_speed_kmh < self.sweep_max_speed_kmh:
            raise ValueError("need 0 <= stationary <= engage < sweep speed limits")
        if any(t <= 0.0 for t in self.step_timeouts_s.values()):
            raise ValueError("step timeouts must be positive")
        if self.event_log_size < 1:
            raise ValueError("event_log_size must be >= 1")
