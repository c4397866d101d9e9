"""Loading the vehicle DBC and reading the UniROSS attributes off it (signal roles, safety, cycle times, PGNs).

cantools owns the definitions; this module only answers the questions the rest of the stack asks of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cantools
from cantools.database.can import Database, Message, Signal

from firmware_bridge.j1939 import pgn_of

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DBC = REPO_ROOT / "dbc" / "uniross.dbc"

ROLE_VALUE = "Value"
ROLE_COUNTER = "Counter"
ROLE_CHECKSUM = "Checksum"
ROLE_RAW = "Raw"


def load_database(path: str | Path = DEFAULT_DBC, strict: bool = True) -> Database:
    """Load a DBC with cantools (strict: overlapping or out-of-range signals are an error)."""
    db = cantools.database.load_file(str(path), database_format="dbc", strict=strict)
    assert isinstance(db, Database)
    return db


@cache
def default_database() -> Database:
    """The UniROSS database, loaded once per process."""
    return load_database(DEFAULT_DBC)


def _enum_attribute(obj: Message | Signal, name: str, db: Database) -> str | None:
    """An enum/string attribute of a message or signal, falling back to the definition's default."""
    dbc = obj.dbc
    if dbc is not None and name in dbc.attributes:
        attr = dbc.attributes[name]
        value = attr.value
        choices = attr.definition.choices
        if choices and isinstance(value, int):
            return str(choices[value])
        return str(value)
    definitions = db.dbc.attribute_definitions if db.dbc is not None else {}
    definition = definitions.get(name)
    if definition is None or definition.default_value is None:
        return None
    return str(definition.default_value)


def signal_role(signal: Signal, db: Database) -> str:
    """``Value`` (default), ``Counter``, ``Checksum`` or ``Raw`` from the ``SigRole`` attribute."""
    return _enum_attribute(signal, "SigRole", db) or ROLE_VALUE


def is_safety_relevant(message: Message, db: Database) -> bool:
    return _enum_attribute(message, "SafetyRelevant", db) == "Yes"


def timeout_s(message: Message) -> float | None:
    """Reception timeout from the cycle time (docs/can_protocol.md); None for event messages."""
    if not message.cycle_time:
        return None
    cycle = message.cycle_time / 1000.0
    return max(3.0 * cycle, cycle + 0.05)


@dataclass(frozen=True)
class MessageInfo:
    """What the codec and the checks need to know about one message, resolved once."""

    message: Message
    name: str
    is_j1939: bool
    pgn: int | None
    counter_signal: str | None
    checksum_signal: str | None
    safety_relevant: bool
    cycle_time_s: float | None
    timeout_s: float | None


def message_info(message: Message, db: Database) -> MessageInfo:
    counter = next((s.name for s in message.signals if signal_role(s, db) == ROLE_COUNTER), None)
    checksum = next((s.name for s in message.signals if signal_role(s, db) == ROLE_CHECKSUM), None)
    is_j1939 = message.protocol == "j1939" and message.is_extended_frame
    return MessageInfo(
        message=message,
        name=message.name,
        is_j1939=is_j1939,
        pgn=pgn_of(message.frame_id) if is_j1939 else None,
        counter_signal=counter,
        checksum_signal=checksum,
        safety_relevant=is_safety_relevant(message, db),
        cycle_time_s=message.cycle_time / 1000.0 if message.cycle_time else None,
        timeout_s=timeout_s(message),
    )


def all_message_info(db: Database) -> dict[str, MessageInfo]:
    return {m.name: message_info(m, db) for m in db.messages}
