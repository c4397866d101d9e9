"""Wire framing of the SSC serial protocol: header, CRC-32, COBS and the stream parser.

Owns the byte layout below the message level (see ``docs/serial_protocol.md``)::

    0x00 | COBS( version | type | seq u16 LE | payload | CRC-32 LE ) | 0x00

``version`` is ``major << 4 | minor``; bit 7 of ``type`` is set on frames sent by the firmware. The CRC is
CRC-32/IEEE 802.3 (polynomial 0x04C11DB7, reflected, init and xor-out 0xFFFFFFFF: ``zlib.crc32``) over header and
payload. :class:`StreamParser` turns arbitrary byte chunks into CRC-checked :class:`Frame` objects: it splits on
0x00 with ``bytes.split`` (no per-byte Python loop), resynchronises on the next delimiter after any garbage, and
counts every rejected chunk by reason. Pure code: no I/O, no clock.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from cobs import cobs

PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 0

HEADER = struct.Struct("<BBH")
HEADER_SIZE = HEADER.size
CRC = struct.Struct("<I")
CRC_SIZE = CRC.size
#: Largest decoded frame (header + payload + CRC) a receiver accepts.
MAX_FRAME_SIZE = 1024
MAX_PAYLOAD_SIZE = MAX_FRAME_SIZE - HEADER_SIZE - CRC_SIZE
#: Largest COBS-encoded frame (without delimiters): one overhead byte per 254 data bytes, plus one.
MAX_ENCODED_SIZE = MAX_FRAME_SIZE + MAX_FRAME_SIZE // 254 + 1
DELIMITER = b"\x00"
FROM_FIRMWARE_BIT = 0x80
SEQ_MODULO = 1 << 16


class ProtocolError(ValueError):
    """A frame or payload that does not follow the protocol."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One CRC-checked frame, before its payload is decoded."""

    major: int
    minor: int
    msg_type: int  # without the direction bit
    from_firmware: bool
    seq: int
    payload: bytes

    def encode(self) -> bytes:
        """The wire bytes of this frame again, delimiters included (forwarding, recording, tests)."""
        return encode_frame(self.msg_type, self.seq, self.payload, from_firmware=self.from_firmware,
                            major=self.major, minor=self.minor)


def crc32(data: bytes | bytearray | memoryview) -> int:
    """CRC-32/IEEE 802.3 (0x04C11DB7 reflected), the frame check sequence."""
    return zlib.crc32(data)


def encode_frame(
    msg_type: int,
    seq: int,
    payload: bytes,
    *,
    from_firmware: bool,
    major: int = PROTOCOL_MAJOR,
    minor: int = PROTOCOL_MINOR,
) -> bytes:
    """Return the wire bytes of one frame, delimiters included."""
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD_SIZE={MAX_PAYLOAD_SIZE}")
    if not (0 <= major <= 15 and 0 <= minor <= 15):
        raise ProtocolError(f"protocol version {major}.{minor} does not fit in 4+4 bits")
    if not 0 <= msg_type < FROM_FIRMWARE_BIT:
        raise ProtocolError(f"message type {msg_type:#x} out of range")
    type_byte = msg_type | (FROM_FIRMWARE_BIT if from_firmware else 0)
    body = HEADER.pack((major << 4) | minor, type_byte, seq % SEQ_MODULO) + payload
    return DELIMITER + cobs.encode(body + CRC.pack(zlib.crc32(body))) + DELIMITER


def parse_body(body: bytes) -> Frame:
    """Check length and CRC of a COBS-decoded frame and split its header (raises :class:`ProtocolError`)."""
    if len(body) < HEADER_SIZE + CRC_SIZE:
        raise ProtocolError("runt frame")
    if zlib.crc32(memoryview(body)[:-CRC_SIZE]) != CRC.unpack_from(body, len(body) - CRC_SIZE)[0]:
        raise ProtocolError("CRC mismatch")
    version, type_byte, seq = HEADER.unpack_from(body)
    return Frame(
        major=version >> 4,
        minor=version & 0x0F,
        msg_type=type_byte & ~FROM_FIRMWARE_BIT,
        from_firmware=bool(type_byte & FROM_FIRMWARE_BIT),
        seq=seq,
        payload=body[HEADER_SIZE:-CRC_SIZE],
    )


class StreamParser:
    """Incremental frame parser: ``feed(chunk) -> list[Frame]``; never raises on any input.

    Counters (plain ints, read them or call :meth:`counters`): ``crc_errors``, ``cobs_errors``,
    ``runt_frames``, ``oversize_frames``, ``discarded_bytes`` (bytes of every rejected chunk, delimiters
    excluded) and ``frames``.
    """

    __slots__ = (
        "_buf",
        "_discarding",
        "_max_encoded",
        "cobs_errors",
        "crc_errors",
        "discarded_bytes",
        "frames",
        "oversize_frames",
        "runt_frames",
    )

    def __init__(self, max_encoded: int = MAX_ENCODED_SIZE) -> None:
        self._max_encoded = max_encoded
        self._buf = bytearray()
        self._discarding = False  # inside an oversize chunk: drop bytes until the next delimiter
        self.crc_errors = 0
        self.cobs_errors = 0
        self.runt_frames = 0
        self.oversize_frames = 0
        self.discarded_bytes = 0
        self.frames = 0

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _PARSER_COUNTERS}

    def reset(self) -> None:
        """Forget a partial frame (after a reconnect); counters are kept."""
        self._buf.clear()
        self._discarding = False

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        frames: list[Frame] = []
        if not data:
            return frames
        if DELIMITER not in data:
            self._extend_partial(data)
            return frames
        parts = data.split(DELIMITER)
        head = parts[0]
        if self._discarding:
            self.discarded_bytes += len(head)
            self._discarding = False
        elif self._buf:
            self._buf += head
            self._chunk(bytes(self._buf), frames)
            self._buf.clear()
        else:
            self._chunk(head, frames)
        for part in parts[1:-1]:
            self._chunk(part, frames)
        self._extend_partial(parts[-1])
        return frames

    def _extend_partial(self, data: bytes | bytearray) -> None:
        if self._discarding:
            self.discarded_bytes += len(data)
            return
        self._buf += data
        if len(self._buf) > self._max_encoded:
            self.oversize_frames += 1
            self.discarded_bytes += len(self._buf)
            self._buf.clear()
            self._discarding = True

    def _chunk(self, chunk: bytes | bytearray, frames: list[Frame]) -> None:
        size = len(chunk)
        if size == 0:  # idle or leading delimiter
            return
        if size > self._max_encoded:
            self.oversize_frames += 1
        else:
            try:
                body = cobs.decode(chunk)
            except cobs.DecodeError:
                self.cobs_errors += 1
            else:
                body_len = len(body)
                if body_len < HEADER_SIZE + CRC_SIZE:
                    self.runt_frames += 1
                elif zlib.crc32(memoryview(body)[:-CRC_SIZE]) != CRC.unpack_from(body, body_len - CRC_SIZE)[0]:
                    self.crc_errors += 1
                else:
                    version, type_byte, seq = HEADER.unpack_from(body)
                    self.frames += 1
                    frames.append(
                        Frame(
                            version >> 4,
                            version & 0x0F,
                            type_byte & 0x7F,
                            type_byte >= FROM_FIRMWARE_BIT,
                            seq,
                            body[HEADER_SIZE:-CRC_SIZE],
                        )
                    )
                    return
        self.discarded_bytes += size


_PARSER_COUNTERS = ("frames", "crc_errors", "cobs_errors", "runt_frames", "oversize_frames", "discarded_bytes")
PARSER_COUNTERS: tuple[str, ...] = _PARSER_COUNTERS
