"""Test helpers for the mode machine: a healthy baseline `ModeInputs` and a small actuator plant model.

`ActuatorPlant` is deliberately simple: lifts (nozzle, brushes, plough) travel at a constant rate and report
their end switches only at the ends; rotating parts (fan, auger, rotor, brushes) follow their setpoints with a
rate limit; any actuator named in `stuck` stops following (it holds its position/speed), which is how tests
make a step miss its confirmation. Used by the unit and property tests; the vehicle simulator has its own
physics.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from modes.inputs import ModeInputs
from modes.types import CabSelector, PloughPosition, Setpoints

ACTUATORS = ("nozzle", "brushes", "water", "fan", "plough", "auger", "rotor")


def healthy_inputs(**overrides: Any) -> ModeInputs:
    """A parked, running truck with everything stowed, sweeper head mounted, all inputs fresh."""
    base = ModeInputs(
        vehicle_speed_kmh=0.0,
        parking_brake_set=True,
        engine_speed_rpm=800.0,
        fan_speed_rpm=0.0,
        nozzle_lowered=False,
        nozzle_height_mm=200.0,
        left_brush_lowered=False,
        right_brush_lowered=False,
        left_brush_speed_rpm=0.0,
        right_brush_speed_rpm=0.0,
        water_spray_active=False,
        hopper_fill_pct=30.0,
        hopper_raised=False,
        tipping_active=False,
        rear_door_closed=True,
        auger_speed_rpm=0.0,
        rotor_speed_rpm=0.0,
        plough_position=PloughPosition.RAISED,
        sweeper_head_mounted=True,
        snow_attachment_mounted=True,
        emergency_stop=False,
        cab_selector=CabSelector.REMOTE,
        ssc_heartbeat_ok=True,
        critical_dtc_active=False,
        serial_link_alive=True,
    )
    return replace(base, **overrides)


def _toward(value: float, target: float, max_step: float) -> float:
    if abs(target - value) <= max_step:
        return target
    return value + max_step if target > value else value - max_step


@dataclass
class ActuatorPlant:
    nozzle_travel_s: float = 2.5
    brush_travel_s: float = 2.0
    plough_travel_s: float = 3.0
    fan_rate_rpm_s: float = 600.0
    auger_rate_rpm_s: float = 150.0
    rotor_rate_rpm_s: float = 600.0
    brush_rate_rpm_s: float = 200.0
    brush_working_rpm: float = 120.0
    nozzle_raised_mm: float = 200.0
    nozzle_lowered_mm: float = 15.0
    # state: lift positions 0 (raised) .. 1 (lowered)
    nozzle_pos: float = 0.0
    brush_pos: float = 0.0
    plough_pos: float = 0.0
    plough_reported: PloughPosition = PloughPosition.RAISED
    water: bool = False
    fan_rpm: float = 0.0
    auger_rpm: float = 0.0
    rotor_rpm: float = 0.0
    brush_rpm: float = 0.0
    stuck: set[str] = field(default_factory=set)

    def advance(self, sp: Setpoints, dt: float) -> None:
        free = [a not in self.stuck for a in ACTUATORS]
        nozzle, brushes, water, fan, plough, auger, rotor = free
        if nozzle:
            self.nozzle_pos = _toward(self.nozzle_pos, float(sp.nozzle_cmd == 1), dt / self.nozzle_travel_s)
        if brushes:
            self.brush_pos = _toward(self.brush_pos, float(sp.brushes_cmd == 1), dt / self.brush_travel_s)
            target = self.brush_working_rpm if sp.brushes_cmd == 1 and self.brush_pos >= 1.0 else 0.0
            self.brush_rpm = _toward(self.brush_rpm, target, dt * self.brush_rate_rpm_s)
        if water:
            self.water = sp.water_cmd == 1
        if fan:
            self.fan_rpm = _toward(self.fan_rpm, sp.fan_speed_rpm, dt * self.fan_rate_rpm_s)
        if plough:
            lowered = sp.plough_cmd in (PloughPosition.LOWERED, PloughPosition.FLOAT)
            self.plough_pos = _toward(self.plough_pos, float(lowered), dt / self.plough_travel_s)
            if self.plough_pos <= 0.0:
                self.plough_reported = PloughPosition.RAISED
            elif self.plough_pos >= 1.0:
                self.plough_reported = PloughPosition.LOWERED
        if auger:
            self.auger_rpm = _toward(self.auger_rpm, sp.auger_speed_rpm, dt * self.auger_rate_rpm_s)
        if rotor:
            self.rotor_rpm = _toward(self.rotor_rpm, sp.rotor_speed_rpm, dt * self.rotor_rate_rpm_s)

    def feedback(self, base: ModeInputs) -> ModeInputs:
        """`base` with the actuator feedback fields replaced by the plant's."""
        height = self.nozzle_raised_mm + (self.nozzle_lowered_mm - self.nozzle_raised_mm) * self.nozzle_pos
        return replace(
            base,
            fan_speed_rpm=self.fan_rpm,
            nozzle_lowered=self.nozzle_pos >= 1.0,
            nozzle_height_mm=height,
            left_brush_lowered=self.brush_pos >= 1.0,
            right_brush_lowered=self.brush_pos >= 1.0,
            left_brush_speed_rpm=self.brush_rpm,
            right_brush_speed_rpm=self.brush_rpm,
            water_spray_active=self.water,
            auger_speed_rpm=self.auger_rpm,
            rotor_speed_rpm=self.rotor_rpm,
            plough_position=self.plough_reported,
        )


def ideal_feedback(sp: Setpoints, base: ModeInputs) -> ModeInputs:
    """Feedback of a plant that reaches every setpoint at once."""
    plant = ActuatorPlant()
    plant.advance(sp, 1e6)
    plant.advance(sp, 1e6)  # second pass: brush speed follows the lowered brushes
    return plant.feedback(base)
