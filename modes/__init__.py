"""The UniROSS mode state machine: pure logic (no I/O), interlocks, sequences, arbitration, audit events.

Entry point: `ModeMachine` (`step(inputs, now)`, `request(target, source, now, acknowledge)`, `status()`,
`events`). Inputs: `ModeInputs.from_snapshot(values, stale, ...)`. See docs/modes.md.
"""

from modes.config import ModeConfig
from modes.inputs import SAFETY_INPUT_MESSAGES, SIGNAL_MAP, ModeInputs
from modes.interlocks import Interlock, InterlockRegistry, InterlockResult
from modes.machine import ModeMachine, ModeStatus
from modes.sequences import DEFAULT_TIMEOUTS_S, SEQUENCE_STEPS, Condition, SequenceId, Step
from modes.types import (
    STOWED,
    CabSelector,
    CommandSource,
    EventKind,
    Mode,
    ModeEvent,
    ModeOutputs,
    PloughPosition,
    Refusal,
    RequestDecision,
    Setpoints,
)

__all__ = [
    "DEFAULT_TIMEOUTS_S",
    "SAFETY_INPUT_MESSAGES",
    "SEQUENCE_STEPS",
    "SIGNAL_MAP",
    "STOWED",
    "CabSelector",
    "CommandSource",
    "Condition",
    "EventKind",
    "Interlock",
    "InterlockRegistry",
    "InterlockResult",
    "Mode",
    "ModeConfig",
    "ModeEvent",
    "ModeInputs",
    "ModeMachine",
    "ModeOutputs",
    "ModeStatus",
    "PloughPosition",
    "Refusal",
    "RequestDecision",
    "SequenceId",
    "Setpoints",
    "Step",
]
