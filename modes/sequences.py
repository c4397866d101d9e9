"""Transition sequences as data: ordered actuator steps, each confirmed by feedback and bounded by a timeout.

A `Step` changes some setpoints when it starts (`command`, applied on top of the setpoints already
commanded) and is done when every `Condition` of `confirm` holds on the inputs. A step that is not
confirmed within `timeout_s` drives the machine to SAFE. Timeouts default to the actuator travel time plus
margin (`DEFAULT_TIMEOUTS_S`) and can be overridden per step name through `ModeConfig.step_timeouts_s`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from modes.config import ModeConfig
from modes.inputs import ModeInputs
from modes.types import Mode, PloughPosition, Setpoints

_INPUT_FIELDS = frozenset(f.name for f in fields(ModeInputs))
_SETPOINT_FIELDS = frozenset(f.name for f in fields(Setpoints))


class Op(enum.StrEnum):
    EQ = "=="
    LT = "<"
    GE = ">="
    NEAR = "near"  # within `tolerance` (fraction) of `value`


@dataclass(frozen=True, slots=True)
class Condition:
    """A feedback check on one `ModeInputs` field; a missing value never holds."""

    field: str
    op: Op
    value: float
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.field not in _INPUT_FIELDS:
            raise ValueError(f"unknown input field {self.field!r}")

    def holds(self, inputs: ModeInputs) -> bool:
        actual = getattr(inputs, self.field)
        if actual is None:
            return False
        if self.op is Op.EQ:
            return bool(actual == self.value)
        if self.op is Op.LT:
            return bool(actual < self.value)
        if self.op is Op.GE:
            return bool(actual >= self.value)
        return bool(abs(actual - self.value) <= self.tolerance * abs(self.value))

    def describe(self) -> str:
        if self.op is Op.NEAR:
            return f"{self.field} within {self.tolerance:.0%} of {self.value:g}"
        return f"{self.field} {self.op.value} {self.value:g}"


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    command: Mapping[str, float]
    confirm: tuple[Condition, ...]
    timeout_s: float

    def __post_init__(self) -> None:
        unknown = set(self.command) - _SETPOINT_FIELDS
        if unknown:
            raise ValueError(f"step {self.name}: unknown setpoint fields {sorted(unknown)}")
        if self.timeout_s <= 0:
            raise ValueError(f"step {self.name}: timeout must be positive")

    def apply(self, setpoints: Setpoints) -> Setpoints:
        return replace(setpoints, **self.command)  # type: ignore[arg-type]

    def confirmed(self, inputs: ModeInputs) -> bool:
        return all(c.holds(inputs) for c in self.confirm)


class SequenceId(enum.StrEnum):
    TO_SWEEPER = "TO_SWEEPER"
    TO_SNOW = "TO_SNOW"
    SWEEPER_TO_TRANSPORT = "SWEEPER_TO_TRANSPORT"
    SNOW_TO_TRANSPORT = "SNOW_TO_TRANSPORT"
    SAFE_TO_TRANSPORT = "SAFE_TO_TRANSPORT"


#: the state the machine is in while a sequence runs, and the state it reaches when the sequence is done
SEQUENCE_STATES: dict[SequenceId, tuple[Mode, Mode]] = {
    SequenceId.TO_SWEEPER: (Mode.TO_SWEEPER, Mode.SWEEPER),
    SequenceId.TO_SNOW: (Mode.TO_SNOW, Mode.SNOW),
    SequenceId.SWEEPER_TO_TRANSPORT: (Mode.TO_TRANSPORT, Mode.TRANSPORT),
    SequenceId.SNOW_TO_TRANSPORT: (Mode.TO_TRANSPORT, Mode.TRANSPORT),
    SequenceId.SAFE_TO_TRANSPORT: (Mode.TO_TRANSPORT, Mode.TRANSPORT),
}

#: actuator travel / spin times (nozzle 2-3 s, brushes 2 s, fan 5-8 s, plough 3 s) plus margin
DEFAULT_TIMEOUTS_S: dict[str, float] = {
    "lower_nozzle": 4.0,
    "lower_brushes": 3.5,
    "water_on": 2.0,
    "fan_ramp_up": 10.0,
    "fan_ramp_down": 12.0,
    "water_off": 2.0,
    "raise_brushes": 3.5,
    "raise_nozzle": 4.0,
    "lower_plough": 5.0,
    "auger_up": 5.0,
    "rotor_up": 6.0,
    "rotor_stop": 6.0,
    "auger_stop": 5.0,
    "raise_plough": 5.0,
    "stop_rotating": 12.0,
}


def build_steps(cfg: ModeConfig) -> dict[str, Step]:
    unknown = set(cfg.step_timeouts_s) - set(DEFAULT_TIMEOUTS_S)
    if unknown:
        raise ValueError(f"step_timeouts_s names unknown steps: {sorted(unknown)}")
    timeouts = {**DEFAULT_TIMEOUTS_S, **cfg.step_timeouts_s}
    tol = cfg.speed_tolerance
    fan_stopped = Condition("fan_speed_rpm", Op.LT, cfg.fan_stopped_rpm)
    auger_stopped = Condition("auger_speed_rpm", Op.LT, cfg.snow_stopped_rpm)
    rotor_stopped = Condition("rotor_speed_rpm", Op.LT, cfg.snow_stopped_rpm)
    raw: tuple[tuple[str, dict[str, float], tuple[Condition, ...]], ...] = (
        ("lower_nozzle", {"nozzle_cmd": 1}, (Condition("nozzle_lowered", Op.EQ, True),)),
        (
            "lower_brushes",
            {"brushes_cmd": 1},
            (Condition("left_brush_lowered", Op.EQ, True), Condition("right_brush_lowered", Op.EQ, True)),
        ),
        ("water_on", {"water_cmd": 1}, (Condition("water_spray_active", Op.EQ, True),)),
        (
            "fan_ramp_up",
            {"fan_speed_rpm": cfg.fan_setpoint_rpm},
            (Condition("fan_speed_rpm", Op.NEAR, cfg.fan_setpoint_rpm, tol),),
        ),
        ("fan_ramp_down", {"fan_speed_rpm": 0.0}, (fan_stopped,)),
        ("water_off", {"water_cmd": 0}, (Condition("water_spray_active", Op.EQ, False),)),
        (
            "raise_brushes",
            {"brushes_cmd": 0},
            (
                Condition("left_brush_lowered", Op.EQ, False),
                Condition("right_brush_lowered", Op.EQ, False),
                Condition("left_brush_speed_rpm", Op.LT, cfg.brush_stopped_rpm),
                Condition("right_brush_speed_rpm", Op.LT, cfg.brush_stopped_rpm),
            ),
        ),
        (
            "raise_nozzle",
            {"nozzle_cmd": 0},
            (Condition("nozzle_lowered", Op.EQ, False), Condition("nozzle_height_mm", Op.GE, cfg.nozzle_raised_mm)),
        ),
        (
            "lower_plough",
            {"plough_cmd": PloughPosition.LOWERED},
            (Condition("plough_position", Op.EQ, PloughPosition.LOWERED),),
        ),
        (
            "auger_up",
            {"auger_speed_rpm": cfg.auger_setpoint_rpm},
            (Condition("auger_speed_rpm", Op.NEAR, cfg.auger_setpoint_rpm, tol),),
        ),
        (
            "rotor_up",
            {"rotor_speed_rpm": cfg.rotor_setpoint_rpm},
            (Condition("rotor_speed_rpm", Op.NEAR, cfg.rotor_setpoint_rpm, tol),),
        ),
        ("rotor_stop", {"rotor_speed_rpm": 0.0}, (rotor_stopped,)),
        ("auger_stop", {"auger_speed_rpm": 0.0}, (auger_stopped,)),
        (
            "raise_plough",
            {"plough_cmd": PloughPosition.RAISED},
            (Condition("plough_position", Op.EQ, PloughPosition.RAISED),),
        ),
        (
            "stop_rotating",
            {"fan_speed_rpm": 0.0, "auger_speed_rpm": 0.0, "rotor_speed_rpm": 0.0},
            (fan_stopped, auger_stopped, rotor_stopped),
        ),
    )
    return {name: Step(name, command, confirm, timeouts[name]) for name, command, confirm in raw}


#: the step names of each sequence, in order
SEQUENCE_STEPS: dict[SequenceId, tuple[str, ...]] = {
    SequenceId.TO_SWEEPER: ("lower_nozzle", "lower_brushes", "water_on", "fan_ramp_up"),
    SequenceId.SWEEPER_TO_TRANSPORT: ("fan_ramp_down", "water_off", "raise_brushes", "raise_nozzle"),
    SequenceId.TO_SNOW: ("lower_plough", "auger_up", "rotor_up"),
    SequenceId.SNOW_TO_TRANSPORT: ("rotor_stop", "auger_stop", "raise_plough"),
    SequenceId.SAFE_TO_TRANSPORT: ("stop_rotating", "water_off", "raise_brushes", "raise_nozzle", "raise_plough"),
}


def build_sequences(cfg: ModeConfig) -> dict[SequenceId, tuple[Step, ...]]:
    steps = build_steps(cfg)
    return {seq: tuple(steps[name] for name in names) for seq, names in SEQUENCE_STEPS.items()}


def stow_sequence_for(state: Mode) -> SequenceId:
    """The sequence that stows the equipment from `state` (a working mode, its engagement, or SAFE)."""
    if state in (Mode.SWEEPER, Mode.TO_SWEEPER):
        return SequenceId.SWEEPER_TO_TRANSPORT
    if state in (Mode.SNOW, Mode.TO_SNOW):
        return SequenceId.SNOW_TO_TRANSPORT
    return SequenceId.SAFE_TO_TRANSPORT
