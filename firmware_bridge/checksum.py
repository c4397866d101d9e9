"""CRC-8/SAE-J1850 message checksum of docs/can_protocol.md: scalar (packer) and vectorized (batch checks).

The checksum covers a 2-byte data id (the PGN, little-endian) followed by payload bytes 0..6; it sits in byte 7.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from crccheck.crc import Crc8SaeJ1850

CHECKSUM_BYTE = 7
_POLY = 0x1D


def _make_table() -> npt.NDArray[np.uint8]:
    table = np.zeros(256, dtype=np.uint8)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = ((crc << 1) ^ _POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table[i] = crc
    return table


_TABLE = _make_table()


def data_id_bytes(pgn: int) -> bytes:
    return bytes((pgn & 0xFF, (pgn >> 8) & 0xFF))


def message_checksum(pgn: int, payload: bytes | bytearray) -> int:
    """Checksum of one frame (``payload`` is at least 7 bytes; byte 7 is ignored)."""
    return int(Crc8SaeJ1850.calc(data_id_bytes(pgn) + bytes(payload[:CHECKSUM_BYTE])))


def batch_checksums(pgn: int, data: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Checksums of many frames of one message at once (``data`` is ``uint8[n, >=7]``)."""
    crc = np.full(data.shape[0], 0xFF, dtype=np.uint8)
    for byte in data_id_bytes(pgn):
        crc = _TABLE[crc ^ np.uint8(byte)]
    for col in range(CHECKSUM_BYTE):
        crc = _TABLE[crc ^ data[:, col]]
    return crc ^ np.uint8(0xFF)
