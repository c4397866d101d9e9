"""Value types of the mode machine: modes, setpoints, outputs, audit events and request decisions.

Numbering follows the DBC value tables (`Mode`, `CabSelector`, `PloughPosition`, `RequestSource`), so an
enum value can be packed into `OBC_ModeCommand` / `OBC_Setpoints` as is.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


class Mode(enum.IntEnum):
    """Machine states; values of the DBC value table `Mode` (`OBC_ModeCommand.RequestedMode`)."""

    TRANSPORT = 0
    SWEEPER = 1
    SNOW = 2
    SAFE = 3
    TO_SWEEPER = 4
    TO_SNOW = 5
    TO_TRANSPORT = 6


WORKING_MODES = frozenset({Mode.SWEEPER, Mode.SNOW})
#: the transition state that engages each working mode
ENGAGE_STATE = {Mode.SWEEPER: Mode.TO_SWEEPER, Mode.SNOW: Mode.TO_SNOW}
#: working mode -> the states of its "family" (engaging or engaged)
FAMILY = {
    Mode.SWEEPER: frozenset({Mode.SWEEPER, Mode.TO_SWEEPER}),
    Mode.SNOW: frozenset({Mode.SNOW, Mode.TO_SNOW}),
}
REQUESTABLE = frozenset({Mode.TRANSPORT, Mode.SWEEPER, Mode.SNOW, Mode.SAFE})


class CabSelector(enum.IntEnum):
    """`SSC_Equipment.CabModeSelector`."""

    OFF = 0
    TRANSPORT = 1
    SWEEPER = 2
    SNOW = 3
    REMOTE = 4


class PloughPosition(enum.IntEnum):
    """`SSC_Snow.PloughPosition` (feedback) and `OBC_Setpoints.PloughCmd` (0 raise, 1 lower, 2 float)."""

    RAISED = 0
    LOWERED = 1
    FLOAT = 2


class CommandSource(enum.IntEnum):
    """`OBC_ModeCommand.RequestSource`: who caused the state the OBC commands."""

    CAB = 0
    REMOTE = 1
    SAFETY = 2


#: a request's origin: the cab selector (CAN) or an engineer through the API
Source = Literal["cab", "remote"]
SOURCE_CODES: dict[str, CommandSource] = {
    "cab": CommandSource.CAB,
    "remote": CommandSource.REMOTE,
    "safety": CommandSource.SAFETY,
}


class EventKind(enum.StrEnum):
    REQUEST = "request"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    TRANSITION = "transition"
    STEP_DONE = "step_done"
    STEP_TIMEOUT = "step_timeout"
    SAFE_ENTERED = "safe_entered"
    SAFE_LEFT = "safe_left"
    STOW = "stow"


@dataclass(frozen=True, slots=True)
class ModeEvent:
    """One audit-trail entry. `seq` increases by one per event over the machine's life."""

    t: float
    kind: EventKind
    source: str
    from_state: Mode
    to_state: Mode | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "t": self.t,
            "kind": self.kind.value,
            "source": self.source,
            "from_state": self.from_state.name,
            "to_state": None if self.to_state is None else self.to_state.name,
            "reason": self.reason,
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class Refusal:
    """One reason a request was refused: a stable machine-readable name and a human text."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class RequestDecision:
    accepted: bool
    target: Mode
    source: str
    t: float
    reasons: tuple[Refusal, ...] = ()
    note: str = ""

    @property
    def reason_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "target": self.target.name,
            "source": self.source,
            "t": self.t,
            "reasons": [asdict(r) for r in self.reasons],
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Setpoints:
    """Actuator setpoints: the value fields of `OBC_Setpoints`. The defaults are the stowed / stopped values."""

    fan_speed_rpm: float = 0.0
    nozzle_cmd: int = 0  # 0 raise, 1 lower
    brushes_cmd: int = 0  # 0 off (raised, stopped), 1 on (lowered, turning)
    water_cmd: int = 0  # 0 off, 1 on
    plough_cmd: int = PloughPosition.RAISED  # 0 raise, 1 lower, 2 float
    auger_speed_rpm: float = 0.0
    rotor_speed_rpm: float = 0.0

    def signals(self) -> dict[str, float]:
        """The values keyed by `OBC_Setpoints` signal name (counter/checksum are the packer's)."""
        return {
            "FanSpeedSetpoint": self.fan_speed_rpm,
            "NozzleCmd": int(self.nozzle_cmd),
            "BrushesCmd": int(self.brushes_cmd),
            "WaterCmd": int(self.water_cmd),
            "PloughCmd": int(self.plough_cmd),
            "AugerSpeedSetpoint": self.auger_speed_rpm,
            "RotorSpeedSetpoint": self.rotor_speed_rpm,
        }


#: TRANSPORT and SAFE setpoints: every rotating part stopped, everything raised, water off
STOWED = Setpoints()


@dataclass(frozen=True, slots=True)
class ModeOutputs:
    """What one `ModeMachine.step()` hands to the command gate and the API."""

    setpoints: Setpoints
    state: Mode
    requested_mode: Mode
    request_source: CommandSource
    fault_ack: bool
    step_index: int | None  # 0-based index of the running transition step, None outside transitions
    step_name: str | None
    events: tuple[ModeEvent, ...]

    def setpoint_signals(self) -> dict[str, float]:
        return self.setpoints.signals()

    def mode_command_signals(self) -> dict[str, int]:
        """The values keyed by `OBC_ModeCommand` signal name."""
        return {
            "RequestedMode": int(self.requested_mode),
            "RequestSource": int(self.request_source),
            "FaultAck": int(self.fault_ack),
        }
