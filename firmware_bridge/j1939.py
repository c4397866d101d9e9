"""J1939 29-bit identifier arithmetic: priority, PGN (PDU1/PDU2 rule), source and destination address."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PDU2_THRESHOLD = 240  # PF >= 240: PDU2 (broadcast, PS is group extension); PF < 240: PDU1 (PS is destination)
GLOBAL_ADDRESS = 0xFF


def pgn_of(can_id: int) -> int:
    """Parameter group number of a 29-bit identifier (destination address zeroed for PDU1)."""
    pf = (can_id >> 16) & 0xFF
    pgn = (can_id >> 8) & 0x3FFFF
    return pgn & 0x3FF00 if pf < PDU2_THRESHOLD else pgn


def pgn_array(can_ids: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """Vectorized :func:`pgn_of`."""
    ids = can_ids.astype(np.uint32, copy=False)
    pgn = (ids >> 8) & 0x3FFFF
    pdu1 = ((ids >> 16) & 0xFF) < PDU2_THRESHOLD
    return np.where(pdu1, pgn & 0x3FF00, pgn).astype(np.uint32)


def source_address(can_id: int) -> int:
    return can_id & 0xFF


def priority(can_id: int) -> int:
    return (can_id >> 26) & 0x7


def destination_address(can_id: int) -> int:
    """Destination of a PDU1 frame; PDU2 frames are always global (0xFF)."""
    pf = (can_id >> 16) & 0xFF
    return (can_id >> 8) & 0xFF if pf < PDU2_THRESHOLD else GLOBAL_ADDRESS


def make_id(pgn: int, source: int, prio: int = 6, destination: int = GLOBAL_ADDRESS) -> int:
    """Build a 29-bit identifier; for PDU1 PGNs the destination goes into PS."""
    pf = (pgn >> 8) & 0xFF
    if pf < PDU2_THRESHOLD:
        pgn = (pgn & 0x3FF00) | (destination & 0xFF)
    return ((prio & 0x7) << 26) | ((pgn & 0x3FFFF) << 8) | (source & 0xFF)


def with_source(can_id: int, source: int) -> int:
    """The same identifier sent by another source address."""
    return (can_id & ~0xFF) | (source & 0xFF)
