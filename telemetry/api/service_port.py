"""The one narrow port between the telemetry API and the running service.

`TelemetryService` lists exactly what `telemetry.api` needs from the service (the lead's
`uniross.service` implements it). Every method returns plain frozen dataclasses from this module,
never store or machine internals; the API validates them into pydantic models at the edge.

Rules for implementers:
- Every method is synchronous, thread-safe and quick (a lock and a copy): the API calls the read methods
  from a worker thread or the asyncio loop at up to 50 Hz, and nothing here may wait on the control loop's cycle.
- Times are seconds on the service clock (`now()`): wall-clock `time.time()` (epoch seconds) in the service, because
  CAN frame timestamps and recordings are wall-clock (`uniross.service`); a replay uses the recording's clock.
- Values may be NaN (J1939 "not available"); the API turns NaN/inf into JSON `null`.
- Commands (`request_mode`, `acknowledge_fault`) are only called for an authenticated engineer; `user` is the
  role name plus a short token fingerprint, for the audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Scalar = float | int | bool | str | None


@dataclass(frozen=True, slots=True)
class SignalView:
    """Latest value of one signal key (`Message.Signal`, `serial.<ch>`, `serial.<ch>.raw`, `diag.<name>`)."""

    key: str
    value: Scalar
    unit: str
    valid: bool
    timestamp: float  # service clock of the sample
    age_s: float  # now - timestamp


@dataclass(frozen=True, slots=True)
class HistoryView:
    """Samples of one key in [t0, t1], decimated to at most `max_points` (same length `t` and `v`)."""

    key: str
    unit: str
    t: Sequence[float] | npt.NDArray[np.float64]
    v: Sequence[float] | npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SignalUpdate:
    """One changed key for streaming: latest (coalesced) value since the caller's sequence number."""

    key: str
    t: float
    value: Scalar
    valid: bool


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """Answer of `changes_since`: `seq` is the sequence number to pass next time."""

    seq: int
    updates: Sequence[SignalUpdate]


@dataclass(frozen=True, slots=True)
class FaultView:
    """One named fault of the FaultManager."""

    name: str
    severity: str  # "info" | "warning" | "critical" (free text accepted)
    active: bool
    acknowledged: bool
    raised_at: float
    cleared_at: float | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class DtcView:
    """One decoded DM1 diagnostic trouble code of one source address."""

    source_address: int
    spn: int
    fmi: int
    occurrence_count: int
    lamps: dict[str, int] = field(default_factory=dict)  # protect / amber_warning / red_stop / malfunction: 0..3


@dataclass(frozen=True, slots=True)
class FaultsView:
    """Active faults, recently cleared ones (newest first) and the active DM1 DTCs."""

    active: Sequence[FaultView]
    recent: Sequence[FaultView]
    dtcs: Sequence[DtcView]


@dataclass(frozen=True, slots=True)
class Reason:
    """One failed interlock or refusal reason: machine-readable `name`, human `text`."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class InterlockView:
    """One interlock of the mode machine, evaluated now."""

    name: str
    ok: bool
    text: str


@dataclass(frozen=True, slots=True)
class ModeDecision:
    """Answer to a mode request: `state` is the machine state after the request."""

    accepted: bool
    state: str
    reasons: Sequence[Reason] = ()


@dataclass(frozen=True, slots=True)
class ModeStatusView:
    """Mode machine status: state, transition step (None when settled), cab selector and interlocks."""

    state: str
    since: float
    cab_selector: str
    interlocks: Sequence[InterlockView]
    transition_step: str | None = None
    target: str | None = None
    last_refusal: ModeDecision | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the mode machine's audit trail.

    `state` is the machine's state as the event left it: for a request or a refusal the state it stayed in (never
    the requested mode), for an accepted request the state the request started, for a transition the new state.
    `target` is the requested mode of request / refused / accepted events (None for the others)."""

    timestamp: float
    kind: str  # "request", "accepted", "refused", "transition", "step_done", "safe_entered", ...
    source: str  # "cab" | "remote" | "safety" | ...
    text: str
    state: str
    user: str | None = None
    reasons: Sequence[Reason] = ()
    target: str | None = None


@dataclass(frozen=True, slots=True)
class MessageHealth:
    """Per-message validity (see firmware_bridge.message_checks.MessageValidity)."""

    name: str
    valid: bool
    timed_out: bool
    counter_ok: bool
    checksum_ok: bool
    last_rx_age_s: float | None
    counter_errors: int
    checksum_errors: int
    timeouts: int


@dataclass(frozen=True, slots=True)
class BusHealth:
    """CAN bus health: rates and counters per reason."""

    alive: bool
    frames_total: int
    frames_per_s: float
    bus_load_pct: float
    errors: dict[str, int]
    decoder_rejects: dict[str, int]
    messages: Sequence[MessageHealth]


@dataclass(frozen=True, slots=True)
class SerialLinkHealth:
    """Serial firmware link: connection state and counters (frames, crc_errors, lost_seq, overruns, ...)."""

    connected: bool
    counters: dict[str, int]


@dataclass(frozen=True, slots=True)
class LoopTiming:
    """Control loop timing: cycle time quantiles against the budget."""

    cycles: int
    cycle_p50_s: float
    cycle_p99_s: float
    cycle_max_s: float
    budget_s: float
    deadline_misses: int
    thread_alive: bool


@dataclass(frozen=True, slots=True)
class HealthView:
    bus: BusHealth
    serial: SerialLinkHealth
    loop: LoopTiming


@runtime_checkable
class TelemetryService(Protocol):
    """What the telemetry API needs from the service. All methods synchronous, thread-safe and fast."""

    def now(self) -> float:
        """Service clock (epoch seconds, `time.time()`), the clock of every timestamp returned here."""
        ...

    def snapshot(self) -> Sequence[SignalView]:
        """Latest value of every known signal key."""
        ...

    def signal_keys(self) -> Sequence[str]:
        """All known signal keys."""
        ...

    def history(self, key: str, t0: float, t1: float, max_points: int) -> HistoryView:
        """Samples of `key` with t0 <= t <= t1, decimated to <= max_points. Raises KeyError for an unknown key."""
        ...

    def changes_since(self, seq: int) -> ChangeBatch:
        """Latest value of every key changed after sequence `seq` (0 = everything). Never blocks."""
        ...

    def faults(self) -> FaultsView:
        """Active and recent faults plus active DM1 DTCs."""
        ...

    def acknowledge_fault(self, name: str, user: str) -> bool:
        """Acknowledge fault `name`; False when no such fault exists."""
        ...

    def mode_status(self) -> ModeStatusView:
        """Mode machine status with the interlock table."""
        ...

    def audit_events(self, limit: int) -> Sequence[AuditEvent]:
        """The newest `limit` audit events, newest first."""
        ...

    def request_mode(self, target: str, acknowledge: bool, user: str) -> ModeDecision:
        """Engineer request through the API (`target` is TRANSPORT, SWEEPER or SNOW); refusals carry reasons."""
        ...

    def health(self) -> HealthView:
        """Bus, serial link and loop timing health."""
        ...

    def ready(self) -> tuple[bool, Sequence[str]]:
        """(ready, reasons not ready): ready once the bus is alive and the loop runs within its budget."""
        ...

    def alive(self) -> bool:
        """True while the control loop thread is alive."""
        ...
