"""Fault injection for the simulated CAN node, with exact counts of what was injected (for tests and the HIL suite).

Frame faults act on the frames the node is about to send: ``drop`` loses them (their rolling counter is used, so
the receiver sees a gap), ``silent`` suppresses them (the sender skips them, no counter gap),
``freeze_counter`` repeats the last counter value, ``corrupt_checksum`` inverts the CRC byte, ``bus_off`` silences the
whole node. Each is bounded by a frame ``count`` and/or a ``duration``. Vehicle faults (``clog``,
``stall_watchdog``) are applied to the physics by the node and counted as events.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

ALL = "*"
FRAME_FAULTS = ("drop", "silent", "freeze_counter", "corrupt_checksum", "bus_off")
VEHICLE_FAULTS = ("clog", "stall_watchdog")
FAULT_KINDS = FRAME_FAULTS + VEHICLE_FAULTS


class FaultSpecError(ValueError):
    pass


@dataclass
class Fault:
    kind: str
    message: str  # a message name or ALL
    remaining: int | None  # frames still to affect (None: bounded by time only)
    until: float | None  # monotonic end (None: bounded by count only)
    frozen_counter: int | None = None

    def active(self, now: float) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.until is None or now < self.until

    def matches(self, name: str) -> bool:
        return self.message in (ALL, name)


@dataclass(frozen=True)
class FrameAction:
    send: bool = True
    lost: bool = False  # ``drop``: the frame was built (its counter used) but lost, so the receiver sees a gap
    freeze: bool = False
    corrupt_checksum: bool = False


class FaultInjector:
    """Holds the active frame faults and counts every frame each of them affected (``kind -> message -> n``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.injected: dict[str, dict[str, int]] = {kind: {} for kind in FAULT_KINDS}

    def add(
        self,
        kind: str,
        now: float,
        *,
        message: str | None = None,
        count: int | None = None,
        duration: float | None = None,
    ) -> Fault:
        if kind not in FRAME_FAULTS:
            raise FaultSpecError(f"unknown frame fault {kind!r} (one of {', '.join(FRAME_FAULTS)})")
        if kind in ("drop", "freeze_counter", "corrupt_checksum") and not message:
            raise FaultSpecError(f"{kind} needs a message")
        if kind == "bus_off":
            message, count = ALL, None
            duration = 0.5 if duration is None else duration
        if count is None and duration is None:
            raise FaultSpecError(f"{kind} needs a count or a duration")
        if count is not None and count < 0:
            raise FaultSpecError("count must be >= 0")
        fault = Fault(kind, message or ALL, count, None if duration is None else now + duration)
        with self._lock:
            self._faults.append(fault)
        return fault

    def count_event(self, kind: str, target: str = ALL) -> None:
        with self._lock:
            bucket = self.injected.setdefault(kind, {})
            bucket[target] = bucket.get(target, 0) + 1

    def bus_off(self, now: float) -> bool:
        with self._lock:
            return any(f.kind == "bus_off" and f.active(now) for f in self._faults)

    def action(self, name: str, now: float) -> FrameAction:
        """Decide what happens to the next frame of ``name`` and count it against the faults that apply."""
        with self._lock:
            self._faults = [f for f in self._faults if f.active(now)]
            suppress = next(
                (f for f in self._faults if f.kind in ("bus_off", "silent", "drop") and f.matches(name)), None
            )
            if suppress is not None:
                self._consume(suppress, name)
                return FrameAction(send=False, lost=suppress.kind == "drop")
            freeze = next((f for f in self._faults if f.kind == "freeze_counter" and f.matches(name)), None)
            corrupt = next((f for f in self._faults if f.kind == "corrupt_checksum" and f.matches(name)), None)
            for fault in (freeze, corrupt):
                if fault is not None:
                    self._consume(fault, name)
            return FrameAction(send=True, freeze=freeze is not None, corrupt_checksum=corrupt is not None)

    def _consume(self, fault: Fault, name: str) -> None:
        if fault.remaining is not None:
            fault.remaining -= 1
        bucket = self.injected[fault.kind]
        bucket[name] = bucket.get(name, 0) + 1

    def active(self, now: float) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"kind": f.kind, "message": f.message, "remaining": f.remaining, "until": f.until}
                for f in self._faults
                if f.active(now)
            ]

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {kind: dict(v) for kind, v in self.injected.items()}
