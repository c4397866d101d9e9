"""Message types of the SSC serial protocol and their payload codecs.

Owns the payload layouts (``docs/serial_protocol.md``), the channel table (id, name, unit, int16 scale) and
``encode_message`` / ``decode_message``. Every decoder checks exact lengths and raises
:class:`~firmware_bridge.serial_link.framing.ProtocolError` on a malformed payload; text fields are decoded with
``errors="replace"`` so that firmware strings never raise.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from .framing import PROTOCOL_MAJOR, PROTOCOL_MINOR, Frame, ProtocolError, encode_frame


class MsgType(IntEnum):
    HELLO = 0x01  # host -> firmware
    HELLO_REPLY = 0x02  # firmware -> host
    HEARTBEAT = 0x03  # both directions
    SAMPLE_BATCH = 0x10  # firmware -> host
    COMMAND = 0x20  # host -> firmware
    ACK = 0x21  # firmware -> host
    NAK = 0x22  # firmware -> host
    LOG = 0x30  # firmware -> host
    FAULT = 0x31  # firmware -> host


HOST_TYPES = frozenset({MsgType.HELLO, MsgType.HEARTBEAT, MsgType.COMMAND})
FIRMWARE_TYPES = frozenset(
    {MsgType.HELLO_REPLY, MsgType.HEARTBEAT, MsgType.SAMPLE_BATCH, MsgType.ACK, MsgType.NAK, MsgType.LOG, MsgType.FAULT}
)


class SampleEncoding(IntEnum):
    INT16_SCALED = 0  # physical = raw * scale + offset; raw -32768 = invalid sample (NaN)
    FLOAT32 = 1  # physical value as IEEE 754 binary32


class CommandId(IntEnum):
    PING = 0x0001  # no payload
    SET_STREAMING = 0x0002  # u8: 0 = stop sample batches, 1 = stream
    CLEAR_FAULTS = 0x0003  # no payload


class CommandStatus(IntEnum):
    OK = 0
    UNKNOWN_COMMAND = 1
    BAD_PAYLOAD = 2
    BUSY = 3
    REFUSED = 4


class Severity(IntEnum):
    DEBUG = 0
    INFO = 1
    WARNING = 2
    ERROR = 3
    CRITICAL = 4


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    id: int
    name: str
    unit: str
    scale: float  # physical units per int16 LSB
    offset: float = 0.0


CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(0, "suction_pressure", "Pa", 1.0),
    ChannelSpec(1, "fan_speed", "rpm", 0.25),
    ChannelSpec(2, "fan_drive_pressure", "bar", 0.01),
    ChannelSpec(3, "nozzle_dp", "Pa", 0.1),
)
CHANNEL_BY_ID = {spec.id: spec for spec in CHANNELS}
CHANNEL_BY_NAME = {spec.name: spec for spec in CHANNELS}
CHANNEL_NAMES: tuple[str, ...] = tuple(spec.name for spec in CHANNELS)
INT16_INVALID = -32768
_SCALE = np.array([spec.scale for spec in CHANNELS])
_OFFSET = np.array([spec.offset for spec in CHANNELS])
_DTYPES: dict[SampleEncoding, np.dtype[Any]] = {
    SampleEncoding.INT16_SCALED: np.dtype("<i2"),
    SampleEncoding.FLOAT32: np.dtype("<f4"),
}
MAX_TEXT_BYTES = 200


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _utf8(text: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) > MAX_TEXT_BYTES:
        raise ProtocolError(f"text of {len(data)} bytes exceeds {MAX_TEXT_BYTES}")
    return data


def _unpack(layout: struct.Struct, payload: bytes, *, exact: bool) -> tuple[int, ...]:
    if len(payload) < layout.size or (exact and len(payload) != layout.size):
        raise ProtocolError(f"payload of {len(payload)} bytes, expected {'' if exact else '>= '}{layout.size}")
    return layout.unpack_from(payload)


@dataclass(frozen=True, slots=True)
class Hello:
    """Host -> firmware handshake request; payload: UTF-8 software identification."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.HELLO
    software: str

    def pack(self) -> bytes:
        return _utf8(self.software)

    @classmethod
    def unpack(cls, payload: bytes) -> Hello:
        if len(payload) > MAX_TEXT_BYTES:
            raise ProtocolError("HELLO text too long")
        return cls(_text(payload))


_HELLO_REPLY = struct.Struct("<HB")


@dataclass(frozen=True, slots=True)
class HelloReply:
    """Firmware -> host handshake answer; its frame header carries the firmware's protocol version."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.HELLO_REPLY
    sample_rate_hz: int
    channel_ids: tuple[int, ...]
    firmware: str

    def pack(self) -> bytes:
        return _HELLO_REPLY.pack(self.sample_rate_hz, _bitmap(self.channel_ids)) + _utf8(self.firmware)

    @classmethod
    def unpack(cls, payload: bytes) -> HelloReply:
        rate, bitmap = _unpack(_HELLO_REPLY, payload, exact=False)
        text = payload[_HELLO_REPLY.size :]
        if len(text) > MAX_TEXT_BYTES:
            raise ProtocolError("HELLO_REPLY text too long")
        return cls(rate, _channel_ids(bitmap), _text(text))


_HEARTBEAT = struct.Struct("<IB")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Periodic liveness message, both directions; ``flags`` bit 0 = firmware has an active fault."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.HEARTBEAT
    uptime_ms: int
    flags: int = 0

    def pack(self) -> bytes:
        return _HEARTBEAT.pack(self.uptime_ms, self.flags)

    @classmethod
    def unpack(cls, payload: bytes) -> Heartbeat:
        return cls(*_unpack(_HEARTBEAT, payload, exact=True))


_SAMPLE_HEADER = struct.Struct("<BBHQ")


@dataclass(frozen=True, slots=True, eq=False)
class SampleBatchMessage:
    """Samples of C channels x N consecutive sample indices, channel-major, on the wire."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.SAMPLE_BATCH
    channel_ids: tuple[int, ...]  # ascending
    first_index: int
    encoding: SampleEncoding
    raw: npt.NDArray[np.generic]  # int16 or float32, shape [C, N]

    @classmethod
    def from_physical(
        cls,
        channel_ids: Sequence[int],
        first_index: int,
        values: npt.ArrayLike,
        encoding: SampleEncoding = SampleEncoding.INT16_SCALED,
    ) -> SampleBatchMessage:
        """Quantise physical values [C, N] (NaN -> invalid sample, out of range -> saturated)."""
        ids = tuple(channel_ids)
        _bitmap(ids)
        if list(ids) != sorted(set(ids)):
            raise ProtocolError("channel ids must be ascending and unique")
        phys = np.asarray(values, dtype=np.float64).reshape(len(ids), -1)
        if encoding == SampleEncoding.FLOAT32:
            return cls(ids, first_index, encoding, phys.astype("<f4"))
        rows = list(ids)
        scaled = (phys - _OFFSET[rows, None]) / _SCALE[rows, None]
        raw = np.clip(np.rint(np.nan_to_num(scaled, nan=INT16_INVALID)), INT16_INVALID + 1, 32767)
        raw[np.isnan(phys)] = INT16_INVALID
        return cls(ids, first_index, encoding, raw.astype("<i2"))

    @property
    def sample_count(self) -> int:
        return int(self.raw.shape[1])

    def physical(self) -> npt.NDArray[np.float64]:
        """Samples in physical units, float64 [C, N]; invalid int16 samples become NaN."""
        if self.encoding == SampleEncoding.FLOAT32:
            return self.raw.astype(np.float64)
        rows = list(self.channel_ids)
        out = self.raw.astype(np.float64) * _SCALE[rows, None] + _OFFSET[rows, None]
        out[self.raw == INT16_INVALID] = np.nan
        return out

    def pack(self) -> bytes:
        count = self.raw.shape[1]
        if self.raw.shape[0] != len(self.channel_ids) or not 0 < count <= 0xFFFF:
            raise ProtocolError(f"bad sample array shape {self.raw.shape}")
        data = np.ascontiguousarray(self.raw, dtype=_DTYPES[self.encoding]).tobytes()
        return _SAMPLE_HEADER.pack(_bitmap(self.channel_ids), self.encoding, count, self.first_index) + data

    @classmethod
    def unpack(cls, payload: bytes) -> SampleBatchMessage:
        bitmap, encoding, count, first_index = _unpack(_SAMPLE_HEADER, payload, exact=False)
        ids = _channel_ids(bitmap)
        if not ids or count == 0:
            raise ProtocolError("SAMPLE_BATCH without channels or samples")
        try:
            dtype = _DTYPES[SampleEncoding(encoding)]
        except ValueError:
            raise ProtocolError(f"unknown sample encoding {encoding}") from None
        if len(payload) != _SAMPLE_HEADER.size + len(ids) * count * dtype.itemsize:
            raise ProtocolError("SAMPLE_BATCH length does not match channels x count")
        raw = np.frombuffer(payload, dtype=dtype, offset=_SAMPLE_HEADER.size).reshape(len(ids), count)
        return cls(ids, first_index, SampleEncoding(encoding), raw)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleBatchMessage):
            return NotImplemented
        return (
            self.channel_ids == other.channel_ids
            and self.first_index == other.first_index
            and self.encoding == other.encoding
            and self.raw.dtype == other.raw.dtype
            and np.array_equal(self.raw, other.raw, equal_nan=self.raw.dtype.kind == "f")
        )

    __hash__ = None  # type: ignore[assignment]


_COMMAND = struct.Struct("<HH")


@dataclass(frozen=True, slots=True)
class Command:
    """Host -> firmware command; a retry repeats the same ``token`` so the firmware can execute it once."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.COMMAND
    token: int
    command_id: int
    data: bytes = b""

    def pack(self) -> bytes:
        return _COMMAND.pack(self.token, self.command_id) + self.data

    @classmethod
    def unpack(cls, payload: bytes) -> Command:
        token, command_id = _unpack(_COMMAND, payload, exact=False)
        return cls(token, command_id, payload[_COMMAND.size :])


_REPLY = struct.Struct("<HHB")


@dataclass(frozen=True, slots=True)
class CommandReply:
    """ACK (``acked``) or NAK answer to a command, echoing its token and id, with a status and result data."""

    token: int
    command_id: int
    status: int
    acked: bool
    data: bytes = b""

    @property
    def MSG_TYPE(self) -> MsgType:
        return MsgType.ACK if self.acked else MsgType.NAK

    def pack(self) -> bytes:
        return _REPLY.pack(self.token, self.command_id, self.status) + self.data

    @classmethod
    def unpack(cls, payload: bytes, *, acked: bool) -> CommandReply:
        token, command_id, status = _unpack(_REPLY, payload, exact=False)
        return cls(token, command_id, status, acked, payload[_REPLY.size :])


_RECORD = struct.Struct("<BBHI")


@dataclass(frozen=True, slots=True)
class FirmwareRecord:
    """LOG (``is_fault`` False) or FAULT record from the firmware; ``active`` is a fault's raised/cleared flag."""

    is_fault: bool
    severity: int
    code: int
    fw_time_ms: int
    text: str
    active: bool = False

    @property
    def MSG_TYPE(self) -> MsgType:
        return MsgType.FAULT if self.is_fault else MsgType.LOG

    def pack(self) -> bytes:
        return _RECORD.pack(self.severity, int(self.active), self.code, self.fw_time_ms) + _utf8(self.text)

    @classmethod
    def unpack(cls, payload: bytes, *, is_fault: bool) -> FirmwareRecord:
        severity, flags, code, fw_time_ms = _unpack(_RECORD, payload, exact=False)
        text = payload[_RECORD.size :]
        if len(text) > MAX_TEXT_BYTES:
            raise ProtocolError("record text too long")
        return cls(is_fault, severity, code, fw_time_ms, _text(text), bool(flags & 1))


Message = Hello | HelloReply | Heartbeat | SampleBatchMessage | Command | CommandReply | FirmwareRecord


def _bitmap(channel_ids: Sequence[int]) -> int:
    bitmap = 0
    for cid in channel_ids:
        if cid not in CHANNEL_BY_ID:
            raise ProtocolError(f"unknown channel id {cid}")
        bitmap |= 1 << cid
    return bitmap


def _channel_ids(bitmap: int) -> tuple[int, ...]:
    ids = tuple(cid for cid in range(8) if bitmap >> cid & 1)
    if any(cid not in CHANNEL_BY_ID for cid in ids):
        raise ProtocolError(f"channel bitmap {bitmap:#04x} has reserved bits")
    return ids


def encode_message(
    msg: Message,
    seq: int,
    *,
    from_firmware: bool,
    major: int = PROTOCOL_MAJOR,
    minor: int = PROTOCOL_MINOR,
) -> bytes:
    """Wire bytes (delimiters included) of one message."""
    return encode_frame(msg.MSG_TYPE, seq, msg.pack(), from_firmware=from_firmware, major=major, minor=minor)


def decode_message(frame: Frame) -> Message:
    """Decode the payload of a CRC-checked frame (raises ProtocolError on unknown type or bad payload)."""
    payload = frame.payload
    match frame.msg_type:
        case MsgType.SAMPLE_BATCH:
            return SampleBatchMessage.unpack(payload)
        case MsgType.HEARTBEAT:
            return Heartbeat.unpack(payload)
        case MsgType.HELLO:
            return Hello.unpack(payload)
        case MsgType.HELLO_REPLY:
            return HelloReply.unpack(payload)
        case MsgType.COMMAND:
            return Command.unpack(payload)
        case MsgType.ACK | MsgType.NAK:
            return CommandReply.unpack(payload, acked=frame.msg_type == MsgType.ACK)
        case MsgType.LOG | MsgType.FAULT:
            return FirmwareRecord.unpack(payload, is_fault=frame.msg_type == MsgType.FAULT)
    raise ProtocolError(f"unknown message type {frame.msg_type:#04x}")
