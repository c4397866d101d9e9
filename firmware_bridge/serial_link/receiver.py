"""Receive-side bookkeeping of the serial link: version, direction, sequence and sample-index checks.

Pure and deterministic (``now`` is passed in): :class:`RxTracker` takes CRC-checked frames and turns them into
:class:`SampleBatch` objects, :class:`LinkEvent` / firmware records and command replies, counting every frame it
refuses. Sequence gaps (lost frames) and sample-index gaps (lost samples) are counted separately; a batch after
lost samples has ``gap_before=True`` and is never stitched to the previous one. The bounded output queues drop
their oldest entry when full and count it (``overruns``), marking the batch after the dropped one as a gap.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from .framing import PROTOCOL_MAJOR, SEQ_MODULO, Frame, ProtocolError
from .messages import (
    CHANNEL_BY_ID,
    FIRMWARE_TYPES,
    CommandReply,
    FirmwareRecord,
    Heartbeat,
    HelloReply,
    MsgType,
    SampleBatchMessage,
    decode_message,
)


@dataclass(frozen=True, slots=True, eq=False)
class SampleBatch:
    """Physical samples of C channels x N consecutive firmware sample indices (see docs/architecture.md)."""

    channels: tuple[str, ...]
    first_index: int  # firmware sample counter at 1 kHz
    samples: npt.NDArray[np.float64]  # [C, N], physical units (Pa, rpm, bar, Pa); NaN = invalid sample
    gap_before: bool  # samples were lost before this batch
    host_time: float  # host clock when the frame was received

    @property
    def next_index(self) -> int:
        return self.first_index + int(self.samples.shape[1])


class LinkState(StrEnum):
    DISCONNECTED = "disconnected"  # no open port
    CONNECTING = "connecting"  # port open, waiting for a compatible HELLO_REPLY
    UP = "up"  # handshake done and frames arriving within the timeout
    INCOMPATIBLE = "incompatible"  # firmware speaks another protocol major version


class LinkEventKind(StrEnum):
    LINK_UP = "link_up"
    LINK_LOST = "link_lost"
    INCOMPATIBLE = "incompatible"


@dataclass(frozen=True, slots=True)
class LinkEvent:
    kind: LinkEventKind
    timestamp: float  # host clock
    reason: str


@dataclass(frozen=True, slots=True)
class FirmwareRecordEvent:
    """A LOG or FAULT record from the firmware, stamped with the host clock."""

    record: FirmwareRecord
    timestamp: float


Event = LinkEvent | FirmwareRecordEvent


T = TypeVar("T")


class BoundedQueue(Generic[T]):
    """Thread-safe FIFO that drops (and counts) its oldest item when full; ``drain`` never blocks for long."""

    def __init__(self, maxlen: int) -> None:
        self._items: deque[T] = deque()
        self._maxlen = maxlen
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, item: T, mark_new_head: Callable[[T], T] | None = None) -> T | None:
        """Append; when full drop the oldest item, return it and apply ``mark_new_head`` to the next one."""
        with self._lock:
            dropped = None
            if len(self._items) >= self._maxlen:
                dropped = self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            if dropped is not None and mark_new_head is not None:
                self._items[0] = mark_new_head(self._items[0])
            return dropped

    def drain(self) -> list[T]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class RxCounters:
    rx_frames: int = 0
    malformed_frames: int = 0
    unknown_types: int = 0
    echo_frames: int = 0
    version_errors: int = 0
    lost_frames: int = 0
    seq_gaps: int = 0
    seq_resets: int = 0
    lost_samples: int = 0
    sample_gaps: int = 0
    index_resets: int = 0
    overruns: int = 0
    overrun_samples: int = 0
    event_overruns: int = 0
    heartbeats_rx: int = 0
    hello_replies: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class RxTracker:
    """Per-link receive state; one instance lives as long as the link (indices survive reconnects)."""

    max_batches: int = 1000
    max_events: int = 256
    major: int = PROTOCOL_MAJOR
    counters: RxCounters = field(default_factory=RxCounters)
    last_rx: float | None = None  # host time of the last valid firmware frame
    firmware: HelloReply | None = None
    firmware_major: int | None = None
    firmware_minor: int | None = None
    _expected_seq: int | None = None
    _next_index: int | None = None

    def __post_init__(self) -> None:
        self.batches: BoundedQueue[SampleBatch] = BoundedQueue(self.max_batches)
        self.events: BoundedQueue[Event] = BoundedQueue(self.max_events)

    def reset_session(self) -> None:
        """New connection: the next frame sets the sequence baseline (sample indices are kept)."""
        self._expected_seq = None

    def push_event(self, event: Event) -> None:
        if self.events.put(event) is not None:
            self.counters.event_overruns += 1

    def process(self, frame: Frame, now: float) -> HelloReply | CommandReply | None:
        """Account one CRC-checked frame; return a handshake answer or a command reply for the link to act on."""
        c = self.counters
        if not frame.from_firmware:
            c.echo_frames += 1  # our own transmission (RS-485 echo, loop://)
            return None
        if frame.major != self.major:
            c.version_errors += 1
            if frame.msg_type == MsgType.HELLO_REPLY:
                self.firmware_major, self.firmware_minor = frame.major, frame.minor
                return _try_hello(frame)
            return None
        if frame.msg_type not in FIRMWARE_TYPES:
            c.unknown_types += 1
            return None
        try:
            msg = decode_message(frame)
        except ProtocolError:
            c.malformed_frames += 1
            return None
        c.rx_frames += 1
        self._track_seq(frame.seq)
        self.last_rx = now
        if isinstance(msg, SampleBatchMessage):
            self._deliver(msg, now)
        elif isinstance(msg, Heartbeat):
            c.heartbeats_rx += 1
        elif isinstance(msg, FirmwareRecord):
            self.push_event(FirmwareRecordEvent(msg, now))
        elif isinstance(msg, HelloReply):
            c.hello_replies += 1
            self.firmware, self.firmware_major, self.firmware_minor = msg, frame.major, frame.minor
            return msg
        elif isinstance(msg, CommandReply):
            return msg
        return None

    def _track_seq(self, seq: int) -> None:
        expected = self._expected_seq
        self._expected_seq = (seq + 1) % SEQ_MODULO
        if expected is None or seq == expected:
            return
        delta = (seq - expected) % SEQ_MODULO
        if delta < SEQ_MODULO // 2:
            self.counters.lost_frames += delta
            self.counters.seq_gaps += 1
        else:  # duplicate, or the firmware restarted its counter
            self.counters.seq_resets += 1

    def _deliver(self, msg: SampleBatchMessage, now: float) -> None:
        c = self.counters
        gap = False
        expected = self._next_index
        if expected is not None and msg.first_index != expected:
            gap = True
            c.sample_gaps += 1
            if msg.first_index > expected:
                c.lost_samples += msg.first_index - expected
            else:
                c.index_resets += 1
        self._next_index = msg.first_index + msg.sample_count
        batch = SampleBatch(
            channels=tuple(CHANNEL_BY_ID[cid].name for cid in msg.channel_ids),
            first_index=msg.first_index,
            samples=msg.physical(),
            gap_before=gap,
            host_time=now,
        )
        dropped = self.batches.put(batch, _mark_gap)
        if dropped is not None:
            c.overruns += 1
            c.overrun_samples += int(dropped.samples.shape[1])


def _mark_gap(batch: SampleBatch) -> SampleBatch:
    return replace(batch, gap_before=True)


def _try_hello(frame: Frame) -> HelloReply | None:
    try:
        msg = decode_message(frame)
    except ProtocolError:
        return None
    return msg if isinstance(msg, HelloReply) else None
