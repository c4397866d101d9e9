"""CommandGate: the only transmitter of the service.

It packs the OBC's own messages (sender node ``OBC`` in the DBC) with a `CanPacker` (counter and checksum filled
in, source address 0x27) and sends them through a sender (a `CanReader` or any ``can.BusABC``). Anything else, in
particular a chassis PGN, is refused with `CommandRefused` and counted: the service never writes to the chassis.
Encoding and transmit errors are counted per message and returned, never raised, so a control loop keeps running.
The heartbeat is sent by the caller's control loop every cycle (no kernel periodic task).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import can
from cantools.database.can import Database

from firmware_bridge.packer import CanPacker

OBC_NODE = "OBC"
OBC_SOURCE_ADDRESS = 0x27


class Sender(Protocol):
    def send(self, msg: can.Message, timeout: float | None = ...) -> None: ...


class CommandRefused(ValueError):
    """The gate does not transmit this message (not one of the OBC's own)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"refused to send {name!r}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class SendResult:
    name: str
    ok: bool
    reason: str | None = None  # "encode_error: ..." / "tx_error: ..."
    message: can.Message | None = None


class CommandGate:
    """Packs and sends the OBC's messages; refuses every other message."""

    def __init__(
        self,
        sender: Sender,
        db: Database,
        source_address: int = OBC_SOURCE_ADDRESS,
        *,
        node: str = OBC_NODE,
        tx_timeout: float | None = 0.01,
    ) -> None:
        self._sender = sender
        self._packer = CanPacker(db, source_address)
        self._allowed = frozenset(m.name for m in db.messages if node in m.senders)
        self._tx_timeout = tx_timeout
        self._lock = threading.Lock()
        self.sent: dict[str, int] = dict.fromkeys(sorted(self._allowed), 0)
        self.tx_errors: dict[str, int] = dict.fromkeys(sorted(self._allowed), 0)
        self.encode_errors: dict[str, int] = dict.fromkeys(sorted(self._allowed), 0)
        self.refused: dict[str, int] = {}

    @property
    def allowed(self) -> frozenset[str]:
        return self._allowed

    def send(self, name: str, values: Mapping[str, float | int]) -> SendResult:
        """Pack and transmit ``name``. Raises `CommandRefused` for a message that is not the OBC's own."""
        with self._lock:
            if name not in self._allowed:
                self.refused[name] = self.refused.get(name, 0) + 1
                raise CommandRefused(name, "not a message sent by the OBC (chassis and SSC messages are read-only)")
            try:
                msg = self._packer.make_message(name, values)
            except Exception as exc:  # cantools EncodeError / KeyError for a bad value or unknown signal
                self.encode_errors[name] += 1
                return SendResult(name, False, f"encode_error: {exc}")
            try:
                self._sender.send(msg, timeout=self._tx_timeout)
            except can.CanError as exc:
                self.tx_errors[name] += 1
                return SendResult(name, False, f"tx_error: {exc}", msg)
            self.sent[name] += 1
            return SendResult(name, True, None, msg)

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sent": dict(self.sent),
                "tx_errors": dict(self.tx_errors),
                "encode_errors": dict(self.encode_errors),
                "refused": dict(self.refused),
            }
