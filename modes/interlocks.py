"""Engagement interlocks: named, individually testable predicates on `ModeInputs`, grouped per target mode.

A predicate returns True when its condition holds; a missing input (None) makes it fail (fail safe).
The registry answers "which interlocks guard entering SWEEPER / SNOW" and "which of them fail now".
Equipment change (engaging another working mode than the last one, or the first one after start) adds
the standstill and parking-brake interlocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modes.config import ModeConfig
from modes.inputs import ModeInputs
from modes.types import Mode, PloughPosition


@dataclass(frozen=True, slots=True)
class Interlock:
    name: str
    description: str
    check: Callable[[ModeInputs], bool]

    def holds(self, inputs: ModeInputs) -> bool:
        return bool(self.check(inputs))


@dataclass(frozen=True, slots=True)
class InterlockResult:
    name: str
    description: str
    ok: bool


def below(value: float | None, limit: float) -> bool:
    """True only for a known value strictly below `limit`."""
    return value is not None and value < limit


def at_most(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def inputs_fresh(i: ModeInputs) -> bool:
    return not i.stale and i.ssc_heartbeat_ok is True and i.serial_link_alive


def sweeper_stowed(i: ModeInputs, cfg: ModeConfig) -> bool:
    return (
        below(i.fan_speed_rpm, cfg.fan_stopped_rpm)
        and i.nozzle_lowered is False
        and i.left_brush_lowered is False
        and i.right_brush_lowered is False
    )


def snow_stowed(i: ModeInputs, cfg: ModeConfig) -> bool:
    return (
        below(i.auger_speed_rpm, cfg.snow_stopped_rpm)
        and below(i.rotor_speed_rpm, cfg.snow_stopped_rpm)
        and i.plough_position is PloughPosition.RAISED
    )


class InterlockRegistry:
    """The interlocks guarding each working mode, built from one `ModeConfig`."""

    def __init__(self, cfg: ModeConfig) -> None:
        c = cfg
        self.common: tuple[Interlock, ...] = (
            Interlock(
                "speed_engage",
                f"vehicle speed <= {c.engage_max_speed_kmh:g} km/h at engagement",
                lambda i: at_most(i.vehicle_speed_kmh, c.engage_max_speed_kmh),
            ),
            Interlock(
                "engine_running",
                f"engine running (> {c.engine_running_rpm:g} rpm)",
                lambda i: i.engine_speed_rpm is not None and i.engine_speed_rpm > c.engine_running_rpm,
            ),
            Interlock("no_critical_dtc", "no active critical DTC", lambda i: i.critical_dtc_active is False),
            Interlock(
                "inputs_fresh",
                "all safety-relevant inputs fresh (CAN messages valid, SSC heartbeat ok, serial link alive)",
                inputs_fresh,
            ),
            Interlock("no_emergency_stop", "emergency stop released", lambda i: i.emergency_stop is False),
            Interlock(
                "no_fault_demand", "no active diagnostic fault demanding stow or SAFE", lambda i: not i.fault_demands
            ),
        )
        self.equipment_change: tuple[Interlock, ...] = (
            Interlock(
                "stationary",
                f"truck stationary (< {c.stationary_max_speed_kmh:g} km/h) to change equipment",
                lambda i: below(i.vehicle_speed_kmh, c.stationary_max_speed_kmh),
            ),
            Interlock(
                "parking_brake_set",
                "parking brake set to change equipment",
                lambda i: i.parking_brake_set is True,
            ),
        )
        self.specific: dict[Mode, tuple[Interlock, ...]] = {
            Mode.SWEEPER: (
                Interlock("sweeper_head_mounted", "sweeper head mounted", lambda i: i.sweeper_head_mounted is True),
                Interlock(
                    "hopper_lowered",
                    "hopper lowered (not raised, not tipping)",
                    lambda i: i.hopper_raised is False and i.tipping_active is False,
                ),
                Interlock("rear_door_closed", "hopper rear door closed", lambda i: i.rear_door_closed is True),
                Interlock(
                    "hopper_not_full",
                    f"hopper fill < {c.hopper_full_pct:g} %",
                    lambda i: below(i.hopper_fill_pct, c.hopper_full_pct),
                ),
                Interlock(
                    "snow_equipment_stowed",
                    f"snow equipment stowed (auger and rotor < {c.snow_stopped_rpm:g} rpm, plough raised)",
                    lambda i: snow_stowed(i, c),
                ),
            ),
            Mode.SNOW: (
                Interlock(
                    "snow_attachment_mounted",
                    "snow attachment mounted",
                    lambda i: i.snow_attachment_mounted is True,
                ),
                Interlock(
                    "sweeper_equipment_stowed",
                    f"sweeper equipment stowed (fan < {c.fan_stopped_rpm:g} rpm, nozzle and brushes raised)",
                    lambda i: sweeper_stowed(i, c),
                ),
            ),
        }

    def for_target(self, target: Mode, *, equipment_change: bool) -> tuple[Interlock, ...]:
        if target not in self.specific:
            raise ValueError(f"no interlocks for {target.name}: only working modes are engaged")
        change = self.equipment_change if equipment_change else ()
        return self.common + change + self.specific[target]

    def failed(self, target: Mode, inputs: ModeInputs, *, equipment_change: bool) -> tuple[Interlock, ...]:
        return tuple(
            lock for lock in self.for_target(target, equipment_change=equipment_change) if not lock.holds(inputs)
        )

    def evaluate(
        self, target: Mode, inputs: ModeInputs | None, *, equipment_change: bool
    ) -> tuple[InterlockResult, ...]:
        """Every interlock of `target` with its state (all failing when no inputs were seen yet)."""
        return tuple(
            InterlockResult(lock.name, lock.description, inputs is not None and lock.holds(inputs))
            for lock in self.for_target(target, equipment_change=equipment_change)
        )

    def all(self) -> tuple[Interlock, ...]:
        """Every distinct interlock (for documentation and tests)."""
        out = list(self.common + self.equipment_change)
        for locks in self.specific.values():
            out.extend(locks)
        return tuple(out)
