"""J1939-73 DM1 (active diagnostic trouble codes) and J1939-21 BAM multi-packet transport: parse, reassemble, encode.

- DM1 payload: byte 0 lamp status (protect bits 0-1, amber warning 2-3, red stop 4-5, MIL 6-7), byte 1 the
  same four lamps' flash state, then 4 bytes per DTC: SPN low 16 bits (LE), byte 2 = FMI (bits 0-4) | SPN bits
  16-18 (bits 5-7), byte 3 = occurrence count (bits 0-6) | SPN conversion method (bit 7). SPN 0 / FMI 0 means
  "no active DTC"; all-ones chunks are padding.
- One DTC fits a single 8-byte frame (PGN 65226). More go as a BAM: TP.CM (PGN 60416, to global) with control
  byte 32, total size, packet count and the carried PGN, then TP.DT (PGN 60160) packets with sequence numbers
  1..n carrying 7 bytes each (last one padded with 0xFF).
- :class:`Dm1Assembler` reassembles BAMs per source address: a gap over T1 = 750 ms between packets, an
  out-of-order or duplicate sequence number, or a new announce from the same sender aborts the session; every
  outcome is counted. ``encode_dm1`` is the sender side (the vehicle simulator uses it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from firmware_bridge.batch_decoder import DecodedBatch
from firmware_bridge.frame_batch import FrameBatch
from firmware_bridge.j1939 import GLOBAL_ADDRESS, destination_address, make_id, pgn_array

DM1_PGN = 0xFECA  # 65226
TP_CM_PGN = 0xEC00  # 60416
TP_DT_PGN = 0xEB00  # 60160
BAM_CONTROL = 32
T1_S = 0.75
BYTES_PER_PACKET = 7
MAX_BAM_SIZE = 1785
_KIND_CM, _KIND_DT, _KIND_DM1 = 0, 1, 2


@dataclass(frozen=True)
class Dm1Lamps:
    """Lamp status (0 off, 1 on) and flash state (0 slow, 1 fast, 3 not flashing) of the four DM1 lamps."""

    protect: int = 0
    amber_warning: int = 0
    red_stop: int = 0
    mil: int = 0
    flash_protect: int = 3
    flash_amber_warning: int = 3
    flash_red_stop: int = 3
    flash_mil: int = 3

    def to_bytes(self) -> bytes:
        status = (self.protect & 3) | (self.amber_warning & 3) << 2 | (self.red_stop & 3) << 4 | (self.mil & 3) << 6
        flash = ((self.flash_protect & 3) | (self.flash_amber_warning & 3) << 2 | (self.flash_red_stop & 3) << 4
                 | (self.flash_mil & 3) << 6)
        return bytes((status, flash))

    @classmethod
    def from_bytes(cls, b0: int, b1: int) -> Dm1Lamps:
        return cls(b0 & 3, b0 >> 2 & 3, b0 >> 4 & 3, b0 >> 6 & 3, b1 & 3, b1 >> 2 & 3, b1 >> 4 & 3, b1 >> 6 & 3)


@dataclass(frozen=True)
class Dtc:
    spn: int
    fmi: int
    oc: int = 1
    cm: int = 0

    def to_bytes(self) -> bytes:
        return bytes((self.spn & 0xFF, self.spn >> 8 & 0xFF, (self.spn >> 16 & 0x7) << 5 | (self.fmi & 0x1F),
                      (self.cm & 1) << 7 | (self.oc & 0x7F)))


@dataclass(frozen=True)
class Dm1Report:
    lamps: Dm1Lamps
    dtcs: list[Dtc]
    timestamp: float


def parse_dm1(payload: bytes) -> tuple[Dm1Lamps, list[Dtc]]:
    """Lamps and active DTCs of a DM1 payload (single frame or reassembled)."""
    if len(payload) < 2:
        return Dm1Lamps(), []
    lamps = Dm1Lamps.from_bytes(payload[0], payload[1])
    dtcs = []
    for pos in range(2, len(payload) - 3, 4):
        b = payload[pos : pos + 4]
        if b == b"\xff\xff\xff\xff":
            continue
        spn = b[0] | b[1] << 8 | (b[2] >> 5) << 16
        fmi = b[2] & 0x1F
        if spn == 0 and fmi == 0:
            continue
        dtcs.append(Dtc(spn, fmi, b[3] & 0x7F, b[3] >> 7))
    return lamps, dtcs


def dm1_payload(lamps: Dm1Lamps, dtcs: list[Dtc]) -> bytes:
    """DM1 data bytes: lamps plus DTCs (one zero DTC when none is active)."""
    body = b"".join(d.to_bytes() for d in dtcs) if dtcs else Dtc(0, 0, 0, 0).to_bytes()
    return lamps.to_bytes() + body


def encode_dm1(lamps: Dm1Lamps, dtcs: list[Dtc], *, source_address: int = 0x00,
               priority: int = 6) -> list[tuple[int, bytes]]:
    """Frames ``(29-bit id, 8 data bytes)`` to send one DM1: a single frame for at most one DTC, else a BAM."""
    payload = dm1_payload(lamps, dtcs)
    if len(payload) <= 8:
        return [(make_id(DM1_PGN, source_address, prio=priority), payload.ljust(8, b"\xff"))]
    return encode_bam(DM1_PGN, payload, source_address=source_address)


def encode_bam(pgn: int, payload: bytes, *, source_address: int, priority: int = 7) -> list[tuple[int, bytes]]:
    """J1939-21 broadcast announce + data packets for a 9..1785-byte payload of ``pgn``."""
    size = len(payload)
    if not 9 <= size <= MAX_BAM_SIZE:
        raise ValueError(f"BAM payload must be 9..{MAX_BAM_SIZE} bytes, got {size}")
    packets = math.ceil(size / BYTES_PER_PACKET)
    cm = bytes((BAM_CONTROL, size & 0xFF, size >> 8, packets, 0xFF, pgn & 0xFF, pgn >> 8 & 0xFF, pgn >> 16 & 0xFF))
    frames = [(make_id(TP_CM_PGN, source_address, prio=priority, destination=GLOBAL_ADDRESS), cm)]
    dt_id = make_id(TP_DT_PGN, source_address, prio=priority, destination=GLOBAL_ADDRESS)
    for seq in range(1, packets + 1):
        chunk = payload[(seq - 1) * BYTES_PER_PACKET : seq * BYTES_PER_PACKET]
        frames.append((dt_id, bytes((seq,)) + chunk.ljust(BYTES_PER_PACKET, b"\xff")))
    return frames


@dataclass
class _Session:
    pgn: int
    size: int
    packets: int
    last_ts: float
    last_now: float
    next_seq: int = 1
    data: bytearray = field(default_factory=bytearray)


class Dm1Assembler:
    """Active DTCs per source address from single-frame DM1s and BAM-transported DM1s."""

    def __init__(self) -> None:
        self._sessions: dict[int, _Session] = {}
        self._reports: dict[int, Dm1Report] = {}
        self.counts = dict.fromkeys(("single_frame", "completed", "completed_other_pgn", "aborted_timeout",
                                     "aborted_sequence", "aborted_new_bam", "bad_announce", "orphan_packets"), 0)

    @property
    def aborted(self) -> int:
        return self.counts["aborted_timeout"] + self.counts["aborted_sequence"] + self.counts["aborted_new_bam"]

    def active_dtcs(self) -> dict[int, Dm1Report]:
        """Latest DM1 per source address (an empty ``dtcs`` list: that sender reports no active DTC)."""
        return dict(self._reports)

    def feed(self, frames: DecodedBatch | FrameBatch, now: float) -> None:
        """Process the DM1 / TP.CM / TP.DT frames of a batch (anything else is ignored)."""
        self.expire(now)
        ts, ids, data = _select(frames)
        if len(ts) == 0:
            return
        pgns = pgn_array(ids)
        kinds = np.where(pgns == TP_CM_PGN, _KIND_CM, np.where(pgns == TP_DT_PGN, _KIND_DT, _KIND_DM1))
        for t, can_id, kind, row in zip(ts.tolist(), ids.tolist(), kinds.tolist(), data, strict=True):
            sa = can_id & 0xFF
            payload = bytes(row[:8])
            if kind == _KIND_DM1:
                lamps, dtcs = parse_dm1(payload)
                self._reports[sa] = Dm1Report(lamps, dtcs, t)
                self.counts["single_frame"] += 1
            elif kind == _KIND_CM:
                if destination_address(can_id) == GLOBAL_ADDRESS and payload[0] == BAM_CONTROL:
                    self._announce(sa, payload, t, now)
            else:
                self._packet(sa, payload, t, now)

    def expire(self, now: float) -> None:
        """Abort sessions whose next packet is overdue (T1)."""
        for sa in [sa for sa, s in self._sessions.items() if now - s.last_now > T1_S]:
            del self._sessions[sa]
            self.counts["aborted_timeout"] += 1

    def _announce(self, sa: int, payload: bytes, t: float, now: float) -> None:
        size = payload[1] | payload[2] << 8
        packets = payload[3]
        pgn = payload[5] | payload[6] << 8 | payload[7] << 16
        if sa in self._sessions:
            del self._sessions[sa]
            self.counts["aborted_new_bam"] += 1
        if not 9 <= size <= MAX_BAM_SIZE or packets != math.ceil(size / BYTES_PER_PACKET):
            self.counts["bad_announce"] += 1
            return
        self._sessions[sa] = _Session(pgn, size, packets, t, now)

    def _packet(self, sa: int, payload: bytes, t: float, now: float) -> None:
        session = self._sessions.get(sa)
        if session is None:
            self.counts["orphan_packets"] += 1
            return
        if t - session.last_ts > T1_S:
            del self._sessions[sa]
            self.counts["aborted_timeout"] += 1
            return
        if payload[0] != session.next_seq:
            del self._sessions[sa]
            self.counts["aborted_sequence"] += 1
            return
        session.data += payload[1:8]
        session.next_seq += 1
        session.last_ts, session.last_now = t, now
        if payload[0] < session.packets:
            return
        del self._sessions[sa]
        if session.pgn == DM1_PGN:
            lamps, dtcs = parse_dm1(bytes(session.data[: session.size]))
            self._reports[sa] = Dm1Report(lamps, dtcs, t)
            self.counts["completed"] += 1
        else:
            self.counts["completed_other_pgn"] += 1


_WANTED = np.array([DM1_PGN, TP_CM_PGN, TP_DT_PGN], dtype=np.uint32)


def _select(frames: DecodedBatch | FrameBatch) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint32],
                                                        npt.NDArray[np.uint8]]:
    """Timestamps, ids and payloads of the 8-byte extended DM1 / TP frames, in arrival order."""
    if isinstance(frames, FrameBatch):
        ok = frames.is_extended & ~frames.is_error & ~frames.is_remote & (frames.dlc >= 8)
        ok &= np.isin(pgn_array(frames.arbitration_id), _WANTED)
        idx = np.flatnonzero(ok)
        return frames.timestamp[idx], frames.arbitration_id[idx].astype(np.uint32), frames.data[idx, :8]
    parts = [m for m in frames.messages.values()
             if len(m) and np.isin(pgn_array(m.arbitration_id[:1]), _WANTED)[0]]
    if not parts:
        return np.zeros(0), np.zeros(0, np.uint32), np.zeros((0, 8), np.uint8)
    ts = np.concatenate([m.timestamp for m in parts])
    ids = np.concatenate([m.arbitration_id for m in parts]).astype(np.uint32)
    data = np.concatenate([m.raw_data[:, :8] for m in parts])
    # Messages are split by name in a DecodedBatch: merge by time; on equal times an announce goes before its
    # packets and packets keep their order.
    kind = np.where(pgn_array(ids) == TP_CM_PGN, 0, 1)
    order = np.lexsort((np.arange(len(ts)), kind, ts))
    return ts[order], ids[order], data[order]
