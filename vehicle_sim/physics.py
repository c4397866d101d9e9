"""Physics of the simulated UniROSS truck and its superstructure controller (SSC), stepped with ``dt``.

Owns the vehicle state (drive, engine, coolant, battery), the SSC actuators with travel times and rate limits
(suction fan with inertia, nozzle, brushes, water, hopper, plough, auger, rotor, chute), the air side of the suction
system (fan affinity law: pressure ~ -k n^2, about -3.5 kPa at 3000 rpm; a clog makes it more negative while the
airflow and the nozzle differential pressure collapse) and the SSC's own heartbeat watchdog (no valid
``OBC_Heartbeat`` for more than 300 ms: it stops every actuator and reports ``HeartbeatOk = 0``).

`VehiclePhysics.truth` is the callable the serial firmware simulator samples at 1 kHz; the CAN suction message
uses `measured` (the same values plus sensor noise), so both links agree. Thread-safe: one lock guards the state.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

# Modes (DBC value table Mode) and cab selector (CabSelector).
MODE_TRANSPORT, MODE_SWEEPER, MODE_SNOW, MODE_SAFE = 0, 1, 2, 3
CAB_OFF, CAB_TRANSPORT, CAB_SWEEPER, CAB_SNOW, CAB_REMOTE = 0, 1, 2, 3, 4
PLOUGH_RAISED, PLOUGH_LOWERED, PLOUGH_FLOAT = 0, 1, 2
FAN_STOPPED, FAN_RAMPING, FAN_RUNNING = 0, 1, 2

HEARTBEAT_TIMEOUT_S = 0.3
SUCTION_AT_3000_PA = -3500.0
NOZZLE_DP_AT_3000_PA = 450.0
FAN_ACCEL_RPM_S = 450.0  # ~7 s from 0 to 3000 rpm
FAN_DECEL_RPM_S = 350.0  # coasting down
FAN_TAU_S = 0.4
NOZZLE_RAISED_MM, NOZZLE_LOWERED_MM, NOZZLE_TRAVEL_S = 180.0, 25.0, 2.5
BRUSH_TRAVEL_S, BRUSH_RPM, BRUSH_ACCEL = 2.0, 110.0, 80.0
PLOUGH_TRAVEL_S = 3.0
HOPPER_TRAVEL_S = 8.0
AUGER_ACCEL, ROTOR_ACCEL, CHUTE_RATE = 100.0, 500.0, 20.0
ACTUATORS = ("fan", "nozzle", "brushes", "water", "plough", "auger", "rotor")

# SSC_Status.InterlockFlags bits
IL_ESTOP, IL_HEARTBEAT, IL_ENGINE_OFF, IL_PARKING_BRAKE_OFF, IL_SPEED, IL_HOPPER_RAISED, IL_DOOR_OPEN = range(7)
IL_NO_SWEEPER_HEAD, IL_NO_SNOW_ATTACHMENT = 7, 8
FAULT_NONE, FAULT_WATCHDOG, FAULT_ESTOP = 0, 1, 2


@dataclass
class Dtc:
    spn: int
    fmi: int
    occurrence: int = 1


@dataclass
class Inputs:
    """Driver, cab and environment: set by the scenario or the control server."""

    speed_target_kmh: float = 0.0
    parking_brake: bool = True
    brake_pedal: bool = False
    engine_running: bool = True
    cab_selector: int = CAB_TRANSPORT
    e_stop: bool = False
    hopper_raise: bool = False
    rear_door_closed: bool = True
    sweeper_head_mounted: bool = True
    snow_attachment_mounted: bool = False
    chute_angle_target: float = 0.0
    refuse_step: str | None = None  # an actuator of ACTUATORS that never moves, so never confirms
    clog: float = 0.0  # 0 (free) .. 1 (blocked hose)
    dtcs: list[Dtc] = field(default_factory=list)


@dataclass
class Commands:
    """What the OBC asked for over CAN (OBC_Setpoints, OBC_ModeCommand) and when its last valid heartbeat came."""

    fan_setpoint: float = 0.0
    nozzle_lower: bool = False
    brushes_on: bool = False
    water_on: bool = False
    plough_cmd: int = PLOUGH_RAISED
    auger_setpoint: float = 0.0
    rotor_setpoint: float = 0.0
    requested_mode: int = MODE_TRANSPORT
    last_heartbeat: float | None = None


@dataclass
class VehicleState:
    time: float = 0.0
    speed_kmh: float = 0.0
    engine_rpm: float = 650.0
    engine_torque_pct: float = 8.0
    coolant_c: float = 20.0
    oil_c: float = 20.0
    battery_v: float = 28.0
    alternator_a: float = 20.0
    fan_rpm: float = 0.0
    fan_accel: float = 0.0
    fan_state: int = FAN_STOPPED
    nozzle_height_mm: float = NOZZLE_RAISED_MM
    brush_pos: float = 0.0  # 0 raised .. 1 lowered
    brush_rpm: float = 0.0
    spraying: bool = False
    water_pump_bar: float = 0.0
    water_tank_pct: float = 80.0
    hopper_fill_pct: float = 10.0
    hopper_pos: float = 0.0  # 0 on its rest .. 1 fully tipped
    plough_pos: float = 0.0  # 0 raised .. 1 lowered
    plough_reported: int = PLOUGH_RAISED
    auger_rpm: float = 0.0
    rotor_rpm: float = 0.0
    chute_deg: float = 0.0
    heartbeat_ok: bool = False
    actuators_enabled: bool = False
    active_mode: int = MODE_SAFE
    fault_code: int = FAULT_NONE
    interlocks: int = 0
    fan_hours: float = 1234.5
    sweep_hours: float = 987.25
    snow_hours: float = 321.0


def approach(value: float, target: float, max_step: float) -> float:
    """Move ``value`` toward ``target`` by at most ``max_step``."""
    return target if abs(target - value) <= max_step else value + math.copysign(max_step, target - value)


def first_order(value: float, target: float, dt: float, tau: float) -> float:
    return target + (value - target) * math.exp(-dt / tau) if tau > 0 else target


class VehiclePhysics:
    """The simulated vehicle. ``step(dt, now)`` advances it; the CAN node and control server read and set it."""

    def __init__(self, seed: int | None = 0, *, fill_rate_pct_s: float = 0.2, noise: bool = True) -> None:
        self.lock = threading.RLock()
        self.inputs = Inputs()
        self.commands = Commands()
        self.state = VehicleState()
        self.fill_rate_pct_s = fill_rate_pct_s
        self.noise = noise
        self.watchdog_stalled_until = -math.inf
        self.watchdog_trips = 0
        self._rng = random.Random(seed)

    # -- inputs from CAN -------------------------------------------------------------------------------------
    def heartbeat(self, now: float) -> None:
        """A valid OBC_Heartbeat arrived."""
        with self.lock:
            self.commands.last_heartbeat = now

    def stall_watchdog(self, now: float, duration: float) -> None:
        """Fault injection: the SSC's watchdog trips (as if the heartbeat were lost) for ``duration``."""
        with self.lock:
            self.watchdog_stalled_until = now + duration

    # -- sensors ---------------------------------------------------------------------------------------------
    def _n(self, sigma: float) -> float:
        return self._rng.gauss(0.0, sigma) if self.noise else 0.0

    def suction_pressure_pa(self) -> float:
        s = self.state
        clog = self.inputs.clog
        return SUCTION_AT_3000_PA * (s.fan_rpm / 3000.0) ** 2 * (1.0 + 0.8 * clog)

    def nozzle_dp_pa(self) -> float:
        s = self.state
        return NOZZLE_DP_AT_3000_PA * (s.fan_rpm / 3000.0) ** 2 * (1.0 - self.inputs.clog) ** 2

    def fan_drive_bar(self) -> float:
        s = self.state
        if s.fan_rpm < 1.0 and s.fan_accel <= 0:
            return 0.0
        load = 185.0 * (s.fan_rpm / 3000.0) ** 2 * (1.0 - 0.4 * self.inputs.clog)
        return 15.0 + load + 0.02 * max(s.fan_accel, 0.0)

    def truth(self) -> Mapping[str, float]:
        """True physical values (no sensor noise): ``suction_pressure`` Pa (negative), ``fan_speed`` rpm,
        ``fan_drive_pressure`` bar, ``nozzle_dp`` Pa. The serial firmware simulator adds its own sensor noise."""
        with self.lock:
            return {
                "suction_pressure": self.suction_pressure_pa(),
                "fan_speed": self.state.fan_rpm,
                "fan_drive_pressure": self.fan_drive_bar(),
                "nozzle_dp": self.nozzle_dp_pa(),
            }

    def measured(self) -> Mapping[str, float]:
        """`truth` plus the SSC's own sensor noise, as it reports the values on CAN."""
        with self.lock:
            true = self.truth()
            return {
                "suction_pressure": min(0.0, true["suction_pressure"] + self._n(15.0)),
                "fan_speed": max(0.0, true["fan_speed"] + self._n(3.0)),
                "fan_drive_pressure": max(0.0, true["fan_drive_pressure"] + self._n(0.5)),
                "nozzle_dp": max(0.0, true["nozzle_dp"] + self._n(4.0)),
            }

    # -- step ------------------------------------------------------------------------------------------------
    def step(self, dt: float, now: float) -> None:
        with self.lock:
            s, i, c = self.state, self.inputs, self.commands
            s.time = now
            hb_fresh = c.last_heartbeat is not None and now - c.last_heartbeat <= HEARTBEAT_TIMEOUT_S
            stalled = now < self.watchdog_stalled_until
            if s.heartbeat_ok and not (hb_fresh and not stalled):
                self.watchdog_trips += 1
            s.heartbeat_ok = hb_fresh and not stalled
            s.actuators_enabled = s.heartbeat_ok and not i.e_stop
            s.active_mode = c.requested_mode if s.heartbeat_ok else MODE_SAFE
            s.fault_code = FAULT_ESTOP if i.e_stop else FAULT_WATCHDOG if not s.heartbeat_ok else FAULT_NONE
            self._drive(dt)
            self._engine(dt)
            self._suction(dt)
            self._sweeper(dt)
            self._hopper(dt)
            self._snow(dt)
            self._interlocks()

    def _can_move(self, actuator: str) -> bool:
        return self.state.actuators_enabled and self.inputs.refuse_step != actuator

    def _drive(self, dt: float) -> None:
        s, i = self.state, self.inputs
        target = 0.0 if i.parking_brake or i.brake_pedal or not i.engine_running else max(0.0, i.speed_target_kmh)
        rate = 3.6 if target > s.speed_kmh else 7.2  # km/h per s: 1 m/s^2 up, 2 m/s^2 down
        s.speed_kmh = approach(s.speed_kmh, target, rate * dt)

    def _engine(self, dt: float) -> None:
        s, i = self.state, self.inputs
        if not i.engine_running:
            s.engine_rpm = approach(s.engine_rpm, 0.0, 1500.0 * dt)
            s.engine_torque_pct = 0.0
            target_coolant, charging = 10.0, False
        else:
            pto = s.fan_rpm > 300.0 or s.rotor_rpm > 100.0
            target_rpm = min(1900.0, max(1100.0 if pto else 650.0, 650.0 + 45.0 * s.speed_kmh))
            s.engine_rpm = first_order(s.engine_rpm, target_rpm, dt, 0.4)
            load = 6.0 + 0.6 * s.speed_kmh + 30.0 * (s.fan_rpm / 3000.0) ** 3 + 10.0 * (s.rotor_rpm / 1500.0) ** 2
            s.engine_torque_pct = first_order(s.engine_torque_pct, min(100.0, load), dt, 0.3)
            target_coolant, charging = 88.0, True
        s.coolant_c = first_order(s.coolant_c, target_coolant, dt, 120.0)
        s.oil_c = first_order(s.oil_c, target_coolant + 4.0 if charging else 10.0, dt, 240.0)
        s.alternator_a = 20.0 + 0.2 * s.engine_torque_pct if charging else 0.0
        s.battery_v = first_order(s.battery_v, 28.2 if charging else 25.0, dt, 5.0)

    def _suction(self, dt: float) -> None:
        s, c = self.state, self.commands
        target = c.fan_setpoint if self._can_move("fan") and self.inputs.engine_running else 0.0
        wanted = (target - s.fan_rpm) / FAN_TAU_S
        accel = min(max(wanted, -FAN_DECEL_RPM_S), FAN_ACCEL_RPM_S)
        before = s.fan_rpm
        s.fan_rpm = max(0.0, approach(s.fan_rpm, target, abs(accel) * dt))
        s.fan_accel = (s.fan_rpm - before) / dt if dt > 0 else 0.0
        if s.fan_rpm < 50.0 and target <= 0.0:
            s.fan_state = FAN_STOPPED
        elif target > 0 and abs(s.fan_rpm - target) <= 0.05 * target:
            s.fan_state = FAN_RUNNING
        else:
            s.fan_state = FAN_RAMPING
        if s.fan_rpm > 300.0:
            s.fan_hours += dt / 3600.0
        if self._can_move("nozzle"):
            goal = NOZZLE_LOWERED_MM if c.nozzle_lower else NOZZLE_RAISED_MM
            rate = (NOZZLE_RAISED_MM - NOZZLE_LOWERED_MM) / NOZZLE_TRAVEL_S
            s.nozzle_height_mm = approach(s.nozzle_height_mm, goal, rate * dt)

    @property
    def nozzle_lowered(self) -> bool:
        return self.state.nozzle_height_mm <= NOZZLE_LOWERED_MM + 1.0

    def _sweeper(self, dt: float) -> None:
        s, c, i = self.state, self.commands, self.inputs
        if self._can_move("brushes") and i.sweeper_head_mounted:
            s.brush_pos = approach(s.brush_pos, 1.0 if c.brushes_on else 0.0, dt / BRUSH_TRAVEL_S)
        brushes_run = self._can_move("brushes") and c.brushes_on and s.brush_pos >= 0.99
        s.brush_rpm = approach(s.brush_rpm, BRUSH_RPM if brushes_run else 0.0, BRUSH_ACCEL * dt)
        s.spraying = self._can_move("water") and c.water_on and s.water_tank_pct > 0.0
        s.water_pump_bar = first_order(s.water_pump_bar, 6.0 if s.spraying else 0.0, dt, 0.3)
        if s.spraying:
            s.water_tank_pct = max(0.0, s.water_tank_pct - 0.08 * dt)
        sweeping = self.nozzle_lowered and s.fan_rpm > 1000.0 and s.speed_kmh > 0.5
        if sweeping:
            s.sweep_hours += dt / 3600.0
            airflow = (s.fan_rpm / 3000.0) ** 2 * (1.0 - i.clog)
            s.hopper_fill_pct = min(100.0, s.hopper_fill_pct + self.fill_rate_pct_s * s.speed_kmh / 10.0 * airflow * dt)

    def _hopper(self, dt: float) -> None:
        s, i = self.state, self.inputs
        if not i.e_stop and self.inputs.refuse_step != "hopper":
            s.hopper_pos = approach(s.hopper_pos, 1.0 if i.hopper_raise else 0.0, dt / HOPPER_TRAVEL_S)
        if s.hopper_pos > 0.8 and not i.rear_door_closed:
            s.hopper_fill_pct = max(0.0, s.hopper_fill_pct - 4.0 * dt)

    @property
    def hopper_raised(self) -> bool:
        return self.state.hopper_pos > 0.02

    @property
    def tipping(self) -> bool:
        return self.hopper_raised and (self.inputs.hopper_raise or not self.inputs.rear_door_closed)

    def _snow(self, dt: float) -> None:
        s, c, i = self.state, self.commands, self.inputs
        mounted = i.snow_attachment_mounted
        if mounted and self._can_move("plough"):
            goal = 0.0 if c.plough_cmd == PLOUGH_RAISED else 1.0
            s.plough_pos = approach(s.plough_pos, goal, dt / PLOUGH_TRAVEL_S)
        if s.plough_pos <= 0.01:
            s.plough_reported = PLOUGH_RAISED
        elif s.plough_pos >= 0.99:
            s.plough_reported = PLOUGH_FLOAT if c.plough_cmd == PLOUGH_FLOAT else PLOUGH_LOWERED
        auger = c.auger_setpoint if mounted and self._can_move("auger") else 0.0
        rotor = c.rotor_setpoint if mounted and self._can_move("rotor") else 0.0
        s.auger_rpm = approach(s.auger_rpm, auger, AUGER_ACCEL * dt)
        s.rotor_rpm = approach(s.rotor_rpm, rotor, ROTOR_ACCEL * dt)
        if s.auger_rpm > 10.0 or s.rotor_rpm > 50.0:
            s.snow_hours += dt / 3600.0
        if mounted:
            s.chute_deg = approach(s.chute_deg, i.chute_angle_target, CHUTE_RATE * dt)

    def _interlocks(self) -> None:
        s, i = self.state, self.inputs
        flags = {
            IL_ESTOP: i.e_stop,
            IL_HEARTBEAT: not s.heartbeat_ok,
            IL_ENGINE_OFF: not i.engine_running,
            IL_PARKING_BRAKE_OFF: not i.parking_brake,
            IL_SPEED: s.speed_kmh > 5.0,
            IL_HOPPER_RAISED: self.hopper_raised,
            IL_DOOR_OPEN: not i.rear_door_closed,
            IL_NO_SWEEPER_HEAD: not i.sweeper_head_mounted,
            IL_NO_SNOW_ATTACHMENT: not i.snow_attachment_mounted,
        }
        s.interlocks = sum(1 << bit for bit, on in flags.items() if on)
