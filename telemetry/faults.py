"""Named faults with hysteresis, minimum durations, acknowledgement and a bounded history.

Owns :class:`FaultManager`, the one place where diagnostics turn into faults. The hot loop (single writer)
feeds it values; the mode machine and the API (readers, other threads) read immutable snapshots.

A fault is defined by a :class:`FaultSpec`:

* ``direction="above"``: the raise condition is ``value >= raise_threshold``, the clear condition is
  ``value < clear_threshold`` (``clear_threshold <= raise_threshold``: the gap is the hysteresis);
  ``"below"`` mirrors it.
* The raise condition must hold continuously for ``raise_after_s`` before the fault is raised, the clear
  condition for ``clear_after_s`` before it clears. A value between the thresholds, or a NaN (no evidence),
  restarts both timers.
* ``latch=True`` keeps a fault active after its condition cleared until it is acknowledged.
* ``demands`` is the mode change the fault asks for while active: ``"safe"``, ``"stow"`` or ``None``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

Severity = Literal["info", "warning", "critical"]
Demand = Literal["stow", "safe"]
EventKind = Literal["raised", "cleared", "acknowledged"]

_DEMAND_RANK: dict[Demand | None, int] = {None: 0, "stow": 1, "safe": 2}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """Static definition of a named fault."""

    name: str
    severity: Severity
    raise_threshold: float
    clear_threshold: float
    raise_after_s: float = 0.0
    clear_after_s: float = 0.0
    direction: Literal["above", "below"] = "above"
    demands: Demand | None = None
    latch: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        above = self.direction == "above"
        if (self.clear_threshold > self.raise_threshold) if above else (self.clear_threshold < self.raise_threshold):
            raise ValueError(f"fault {self.name!r}: clear threshold is on the wrong side of the raise threshold")
        if self.raise_after_s < 0 or self.clear_after_s < 0:
            raise ValueError(f"fault {self.name!r}: durations must be >= 0")


@dataclass(frozen=True, slots=True)
class FaultState:
    """Immutable snapshot of one fault."""

    name: str
    severity: Severity
    active: bool
    demands: Demand | None
    description: str
    value: float = math.nan
    raised_at: float | None = None
    cleared_at: float | None = None
    acknowledged: bool = False
    acknowledged_at: float | None = None
    raise_count: int = 0


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One entry of the bounded history."""

    name: str
    kind: EventKind
    at: float
    severity: Severity
    value: float


@dataclass(slots=True)
class _Tracker:
    spec: FaultSpec
    state: FaultState
    raise_since: float | None = None
    clear_since: float | None = None
    condition_clear: bool = True


@dataclass(slots=True)
class _Counters:
    updates: int = 0
    unknown_fault: int = 0
    nan_values: int = 0
    events: dict[str, int] = field(default_factory=lambda: {"raised": 0, "cleared": 0, "acknowledged": 0})


class FaultManager:
    """Debounces named fault conditions. One writer (:meth:`update`), many readers (snapshots)."""

    def __init__(self, specs: Iterable[FaultSpec] = (), history_len: int = 256) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, _Tracker] = {}
        self._history: deque[FaultEvent] = deque(maxlen=history_len)
        self._counters = _Counters()
        self._version = 0
        for spec in specs:
            self.register(spec)

    def register(self, spec: FaultSpec) -> None:
        """Add a fault definition (replacing one of the same name resets it)."""
        state = FaultState(spec.name, spec.severity, False, spec.demands, spec.description)
        with self._lock:
            self._faults[spec.name] = _Tracker(spec, state)
            self._version += 1

    def _event(self, tr: _Tracker, kind: EventKind, now: float) -> None:
        self._history.append(FaultEvent(tr.spec.name, kind, now, tr.spec.severity, tr.state.value))
        self._counters.events[kind] += 1
        self._version += 1

    def update(self, name: str, value: float, now: float) -> FaultState | None:
        """Feed the latest value of a fault's monitored quantity; returns the new state (None if unknown)."""
        with self._lock:
            tr = self._faults.get(name)
            self._counters.updates += 1
            if tr is None:
                self._counters.unknown_fault += 1
                return None
            spec = tr.spec
            value = float(value)
            tr.state = replace(tr.state, value=value)
            if math.isnan(value):
                self._counters.nan_values += 1
                tr.raise_since = tr.clear_since = None
                return tr.state
            above = spec.direction == "above"
            raising = value >= spec.raise_threshold if above else value <= spec.raise_threshold
            clearing = value < spec.clear_threshold if above else value > spec.clear_threshold
            tr.raise_since = (now if tr.raise_since is None else tr.raise_since) if raising else None
            tr.clear_since = (now if tr.clear_since is None else tr.clear_since) if clearing else None
            st = tr.state
            if not st.active:
                tr.condition_clear = False
                if tr.raise_since is not None and now - tr.raise_since >= spec.raise_after_s:
                    tr.state = replace(
                        st, active=True, raised_at=now, cleared_at=None, acknowledged=False,
                        acknowledged_at=None, raise_count=st.raise_count + 1,
                    )
                    self._event(tr, "raised", now)
            else:
                tr.condition_clear = tr.clear_since is not None and now - tr.clear_since >= spec.clear_after_s
                if tr.condition_clear and (not spec.latch or st.acknowledged):
                    self._clear(tr, now)
            return tr.state

    def _clear(self, tr: _Tracker, now: float) -> None:
        tr.state = replace(tr.state, active=False, cleared_at=now)
        tr.raise_since = None
        self._event(tr, "cleared", now)

    def acknowledge(self, name: str, now: float | None = None) -> bool:
        """Acknowledge an active fault; a latched fault whose condition has cleared clears now.

        ``now`` defaults to ``time.monotonic()``. Returns False for an unknown or inactive fault.
        """
        if now is None:
            now = time.monotonic()
        with self._lock:
            tr = self._faults.get(name)
            if tr is None or not tr.state.active:
                return False
            if not tr.state.acknowledged:
                tr.state = replace(tr.state, acknowledged=True, acknowledged_at=now)
                self._event(tr, "acknowledged", now)
            if tr.spec.latch and tr.condition_clear:
                self._clear(tr, now)
            return True

    # ---- readers -------------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        """Increases on every raise, clear, acknowledgement or registration."""
        return self._version

    def get(self, name: str) -> FaultState | None:
        with self._lock:
            tr = self._faults.get(name)
            return None if tr is None else tr.state

    def states(self) -> dict[str, FaultState]:
        with self._lock:
            return {name: tr.state for name, tr in self._faults.items()}

    def active(self) -> list[FaultState]:
        """Active faults, most severe first, then oldest first."""
        rank = {"critical": 0, "warning": 1, "info": 2}
        with self._lock:
            act = [tr.state for tr in self._faults.values() if tr.state.active]
        return sorted(act, key=lambda s: (rank[s.severity], s.raised_at or 0.0))

    def history(self) -> list[FaultEvent]:
        """Recent raise/clear/acknowledge events, oldest first (bounded)."""
        with self._lock:
            return list(self._history)

    def demand(self) -> Demand | None:
        """The strongest mode change demanded by any active fault (``"safe"`` > ``"stow"`` > None)."""
        best: Demand | None = None
        for st in self.active():
            if _DEMAND_RANK[st.demands] > _DEMAND_RANK[best]:
                best = st.demands
        return best

    def counters(self) -> dict[str, int]:
        with self._lock:
            c = self._counters
            return {
                "updates": c.updates,
                "unknown_fault": c.unknown_fault,
                "nan_values": c.nan_values,
                **{f"events_{k}": v for k, v in c.events.items()},
            }
