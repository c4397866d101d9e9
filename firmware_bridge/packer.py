"""CanPacker: encode a message through cantools and fill its rolling counter and checksum itself.

One packer per sender: it keeps that sender's counter per message. Callers never set counter or checksum.
"""

from __future__ import annotations

from collections.abc import Mapping

import can
from cantools.database.can import Database

from firmware_bridge.checksum import CHECKSUM_BYTE, message_checksum
from firmware_bridge.dbc_database import MessageInfo, all_message_info
from firmware_bridge.j1939 import with_source


class CanPacker:
    """Builds ready-to-send python-can messages for the messages of one database."""

    def __init__(self, db: Database, source_address: int | None = None) -> None:
        self._db = db
        self._info: dict[str, MessageInfo] = all_message_info(db)
        self._counters: dict[str, int] = {}
        self._source = source_address

    def info(self, name: str) -> MessageInfo:
        return self._info[name]

    def next_counter(self, name: str) -> int:
        value = self._counters.get(name, -1)
        value = (value + 1) & 0xF
        self._counters[name] = value
        return value

    def pack(
        self,
        name: str,
        values: Mapping[str, float | int],
        *,
        counter: int | None = None,
        corrupt_checksum: bool = False,
    ) -> bytes:
        """Payload bytes of ``name``: unspecified signals are 0 (or their multiplexer's page); counter and
        checksum filled in. ``counter`` overrides the rolling counter (fault injection: frozen counter)."""
        info = self._info[name]
        message = info.message
        full: dict[str, float | int] = {s.name: 0 for s in message.signals if not s.multiplexer_ids}
        if message.is_multiplexed():
            full = {k: v for k, v in values.items()}
        else:
            full.update(values)
        if info.counter_signal is not None:
            full[info.counter_signal] = self.next_counter(name) if counter is None else counter & 0xF
        if info.checksum_signal is not None:
            full[info.checksum_signal] = 0
        data = bytearray(message.encode(full, scaling=True, padding=True, strict=True))
        if info.checksum_signal is not None and info.pgn is not None:
            crc = message_checksum(info.pgn, data)
            data[CHECKSUM_BYTE] = crc ^ 0xFF if corrupt_checksum else crc
        return bytes(data)

    def make_message(
        self,
        name: str,
        values: Mapping[str, float | int],
        *,
        timestamp: float = 0.0,
        counter: int | None = None,
        corrupt_checksum: bool = False,
    ) -> can.Message:
        """A python-can frame of ``name`` with this packer's source address (if set)."""
        info = self._info[name]
        frame_id = info.message.frame_id
        if self._source is not None and info.is_j1939:
            frame_id = with_source(frame_id, self._source)
        return can.Message(
            timestamp=timestamp,
            arbitration_id=frame_id,
            is_extended_id=info.message.is_extended_frame,
            data=self.pack(name, values, counter=counter, corrupt_checksum=corrupt_checksum),
            is_fd=info.message.is_fd,
        )
