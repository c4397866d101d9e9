"""Running-mode supervision: SAFE causes, stow demands, the SWEEPER overspeed timer and the last-line
setpoint guard (fan and snow equipment never together). Pure functions of `ModeInputs`.
"""

from __future__ import annotations

from dataclasses import replace

from modes.config import ModeConfig
from modes.inputs import ModeInputs
from modes.interlocks import below
from modes.types import Mode, Setpoints

SAFE_CAUSE_TEXT = {
    "stale": "safety-relevant CAN message not valid (timeout, counter or checksum)",
    "ssc_heartbeat_lost": "SSC reports the OBC heartbeat lost (or HeartbeatOk not available)",
    "serial_link_lost": "serial link to the SSC firmware lost",
    "emergency_stop": "emergency stop pressed (or its state not available)",
    "fault": "diagnostic fault demands SAFE",
    "step_timeout": "transition step not confirmed in time",
    "invariant": "setpoint guard tripped (fan and snow equipment together)",
    "requested": "SAFE requested",
}


def safe_causes(i: ModeInputs) -> tuple[str, ...]:
    """Live conditions that force SAFE (empty: none). Names are `kind` or `kind:detail`."""
    causes = [f"stale:{name}" for name in sorted(i.stale)]
    if i.ssc_heartbeat_ok is not True:
        causes.append("ssc_heartbeat_lost")
    if not i.serial_link_alive:
        causes.append("serial_link_lost")
    if i.emergency_stop is not False:
        causes.append("emergency_stop")
    causes.extend(f"fault:{name}" for name, demand in sorted(i.fault_demands) if demand == "safe")
    return tuple(causes)


def cause_text(cause: str) -> str:
    kind, _, detail = cause.partition(":")
    text = SAFE_CAUSE_TEXT.get(kind, kind)
    return f"{text}: {detail}" if detail else text


def stow_reasons(i: ModeInputs, state: Mode, cfg: ModeConfig, overspeed_s: float) -> tuple[str, ...]:
    """Why the equipment of a working (or engaging) `state` must be stowed now (empty: no reason)."""
    reasons: list[str] = []
    if i.critical_dtc_active is not False:
        reasons.append("critical_dtc")
    reasons.extend(f"fault:{name}" for name, demand in sorted(i.fault_demands) if demand == "stow")
    if not (i.engine_speed_rpm is not None and i.engine_speed_rpm > cfg.engine_running_rpm):
        reasons.append("engine_not_running")
    if state in (Mode.SWEEPER, Mode.TO_SWEEPER):
        if i.sweeper_head_mounted is not True:
            reasons.append("sweeper_head_not_mounted")
        if i.hopper_raised is not False:
            reasons.append("hopper_raised")
        if i.tipping_active is not False:
            reasons.append("tipping_active")
        if overspeed_s > cfg.sweep_overspeed_s:
            reasons.append("overspeed")
    elif state in (Mode.SNOW, Mode.TO_SNOW) and i.snow_attachment_mounted is not True:
        reasons.append("snow_attachment_not_mounted")
    return tuple(reasons)


class OverspeedTimer:
    """How long the speed has continuously been above the SWEEPER limit (unknown speed counts as above)."""

    def __init__(self) -> None:
        self._since: float | None = None

    def update(self, armed: bool, speed_kmh: float | None, limit_kmh: float, now: float) -> float:
        over = armed and not (speed_kmh is not None and speed_kmh <= limit_kmh)
        if not over:
            self._since = None
            return 0.0
        if self._since is None:
            self._since = now
        return max(0.0, now - self._since)


def guard(sp: Setpoints, i: ModeInputs, cfg: ModeConfig) -> tuple[Setpoints, tuple[str, ...]]:
    """Last line of defence on the outgoing setpoints.

    - fan setpoint above `fan_interlock_rpm` never together with an auger or rotor setpoint above 0;
    - no fan setpoint while the auger or rotor is measured turning (or unknown);
    - no auger/rotor setpoint while the fan is measured above `fan_interlock_rpm` (or unknown).
    Returns the clamped setpoints (fan, auger and rotor 0) and the names of the violated rules.
    """
    snow_cmd = sp.auger_speed_rpm > 0.0 or sp.rotor_speed_rpm > 0.0
    violations: list[str] = []
    if sp.fan_speed_rpm > cfg.fan_interlock_rpm and snow_cmd:
        violations.append("fan_and_snow_setpoints")
    snow_turning = not (
        below(i.auger_speed_rpm, cfg.snow_stopped_rpm) and below(i.rotor_speed_rpm, cfg.snow_stopped_rpm)
    )
    if sp.fan_speed_rpm > 0.0 and snow_turning:
        violations.append("fan_cmd_while_snow_turning")
    if snow_cmd and not below(i.fan_speed_rpm, cfg.fan_interlock_rpm):
        violations.append("snow_cmd_while_fan_running")
    if not violations:
        return sp, ()
    return replace(sp, fan_speed_rpm=0.0, auger_speed_rpm=0.0, rotor_speed_rpm=0.0), tuple(violations)
