"""`ServiceView`: the service seen through the API's narrow port (`telemetry.api.service_port.TelemetryService`).

Every method takes a lock-and-copy snapshot of the pipeline's state and returns the port's plain dataclasses; none
waits for the control loop.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from modes import CabSelector, EventKind, Mode, ModeEvent
from modes.sequences import SEQUENCE_STATES
from telemetry.api.service_port import (
    AuditEvent,
    BusHealth,
    ChangeBatch,
    DtcView,
    FaultsView,
    FaultView,
    HealthView,
    HistoryView,
    InterlockView,
    LoopTiming,
    MessageHealth,
    ModeDecision,
    ModeStatusView,
    Reason,
    SerialLinkHealth,
    SignalUpdate,
    SignalView,
)
from uniross.service import Service

#: /readyz: the loop is "within budget" while its p99 cycle time is under this share of the period
READY_P99_SHARE = 0.8
#: ... over the most recent cycles (5 s at 20 Hz), so slow start-up cycles do not hold readiness back for long
READY_WINDOW_CYCLES = 100
_BUS_ERROR_COUNTERS = ("error_frames", "bus_errors", "bus_off", "reopens", "reopen_failures", "overrun_frames",
                       "tx_errors")
#: the modes an engineer may request (transition states and SAFE are the machine's own)
_REQUESTABLE = frozenset({Mode.TRANSPORT, Mode.SWEEPER, Mode.SNOW})
#: audit events about a request: their `to_state` is the requested mode
_REQUEST_KINDS = frozenset({EventKind.REQUEST, EventKind.REFUSED, EventKind.ACCEPTED})
#: requesting users remembered per audit event (the machine's own log is bounded too)
_MAX_USERS = 1000


def _lamps(lamps: Any) -> dict[str, int]:
    if isinstance(lamps, dict):
        return {str(k): int(v) for k, v in lamps.items()}
    if is_dataclass(lamps) and not isinstance(lamps, type):
        return {k: int(v) for k, v in asdict(lamps).items() if isinstance(v, int)}
    return {}


class ServiceView:
    """Implements `TelemetryService` over a running `Service`."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.pipeline = service.pipeline
        self._users: OrderedDict[int, str] = OrderedDict()  # audit event seq -> API user who caused it
        self._users_lock = threading.Lock()

    def now(self) -> float:
        return self.service.clock()

    # ---- signals ---------------------------------------------------------------------------------------------
    def snapshot(self) -> Sequence[SignalView]:
        now = self.now()
        return [
            SignalView(key=k, value=s.value, unit=s.unit, valid=s.valid, timestamp=s.timestamp,
                       age_s=now - s.timestamp if math.isfinite(s.timestamp) else math.inf)
            for k, s in self.pipeline.store.snapshot().items()
        ]

    def signal_keys(self) -> Sequence[str]:
        return self.pipeline.store.keys()

    def history(self, key: str, t0: float, t1: float, max_points: int) -> HistoryView:
        store = self.pipeline.store
        unit = store.unit(key)
        if unit is None:
            raise KeyError(key)
        t, v = store.history(key, t0, t1, max_points)
        return HistoryView(key=key, unit=unit, t=t, v=v)

    def changes_since(self, seq: int) -> ChangeBatch:
        store = self.pipeline.store
        new_seq, keys = store.changed_since(seq)
        samples = store.snapshot(keys)
        return ChangeBatch(
            seq=new_seq,
            updates=[SignalUpdate(key=k, t=s.timestamp, value=s.value, valid=s.valid) for k, s in samples.items()],
        )

    # ---- faults ----------------------------------------------------------------------------------------------
    def faults(self) -> FaultsView:
        manager = self.pipeline.faults

        def view(f: Any) -> FaultView:
            return FaultView(name=f.name, severity=str(f.severity), active=f.active, acknowledged=f.acknowledged,
                             raised_at=f.raised_at if f.raised_at is not None else math.nan,
                             cleared_at=f.cleared_at, text=f.description)

        states = manager.states().values()
        active = [view(f) for f in states if f.active]
        recent = sorted((view(f) for f in states if not f.active and f.raised_at is not None),
                        key=lambda f: f.cleared_at or 0.0, reverse=True)
        dtcs = [
            DtcView(source_address=sa, spn=d.spn, fmi=d.fmi, occurrence_count=d.oc, lamps=_lamps(report.lamps))
            for sa, report in sorted(self.pipeline.dm1.active_dtcs().items())
            for d in report.dtcs
        ]
        return FaultsView(active=active, recent=recent, dtcs=dtcs)

    def acknowledge_fault(self, name: str, user: str) -> bool:
        return self.pipeline.faults.acknowledge(name, self.now())

    # ---- modes -----------------------------------------------------------------------------------------------
    def mode_status(self) -> ModeStatusView:
        with self.pipeline.machine_lock:
            status = self.pipeline.machine.status()
        interlocks = [
            InterlockView(name=f"{target}.{r.name}", ok=r.ok, text=r.description)
            for target, results in status.interlocks.items()
            for r in results
        ]
        interlocks += [InterlockView(name=f"SAFE.{c}", ok=False, text=c) for c in status.live_safe_causes]
        last = status.last_refusal
        return ModeStatusView(
            state=status.state.name,
            since=status.since,
            cab_selector=_selector_name(status.cab_selector),
            interlocks=interlocks,
            transition_step=status.step_name,
            target=None if status.sequence is None else SEQUENCE_STATES[status.sequence][1].name,
            last_refusal=None if last is None else _decision(last, status.state.name),
        )

    def audit_events(self, limit: int) -> Sequence[AuditEvent]:
        with self.pipeline.machine_lock:
            events = list(self.pipeline.machine.events)[-limit:] if limit > 0 else []
        with self._users_lock:
            users = {e.seq: self._users[e.seq] for e in events if e.seq in self._users}
        return [
            AuditEvent(timestamp=e.t, kind=e.kind.value, source=e.source, text=e.reason, state=_state_after(e),
                       user=users.get(e.seq, e.details.get("user")),
                       reasons=[Reason(name=str(r.get("name")), text=str(r.get("text")))
                                for r in e.details.get("reasons", []) if isinstance(r, dict)],
                       target=e.to_state.name if e.kind in _REQUEST_KINDS and e.to_state is not None else None)
            for e in reversed(events)
        ]

    def request_mode(self, target: str, acknowledge: bool, user: str) -> ModeDecision:
        mode = Mode.__members__.get(target.upper())
        if mode not in _REQUESTABLE:
            return ModeDecision(accepted=False, state=self.pipeline.machine.state.name,
                                reasons=[Reason("unknown_target", f"unknown target mode {target!r}")])
        machine = self.pipeline.machine
        with self.pipeline.machine_lock:  # the request and the events it logged, attributed to `user`
            before = machine.events[-1].seq if machine.events else 0
            decision = machine.request(mode, "remote", self.now(), acknowledge)
            state = machine.state.name
            caused = [e.seq for e in machine.events if e.seq > before]
        with self._users_lock:
            for seq in caused:
                self._users[seq] = user
            while len(self._users) > _MAX_USERS:
                self._users.popitem(last=False)
        return _decision(decision, state)

    # ---- health ----------------------------------------------------------------------------------------------
    def health(self) -> HealthView:
        svc = self.service
        now = self.now()
        reader = svc.reader.counters()
        errors = {k: int(reader.get(k, 0)) for k in _BUS_ERROR_COUNTERS}
        errors.update({f"reason:{k}": int(v) for k, v in dict(reader.get("errors_by_reason", {})).items()})
        errors.update(self.pipeline.checks.error_counts)
        messages = [
            MessageHealth(name=name, valid=s.valid, timed_out=s.timed_out, counter_ok=s.counter_ok,
                          checksum_ok=s.checksum_ok,
                          last_rx_age_s=None if s.last_rx is None or not math.isfinite(s.last_rx) else now - s.last_rx,
                          counter_errors=s.counter_errors, checksum_errors=s.checksum_errors, timeouts=s.timeouts)
            for name, s in sorted(self.pipeline.checks.states().items())
        ]
        bus = BusHealth(
            alive=svc.reader.running and svc.reader.frames_per_second() > 0,
            frames_total=int(reader.get("frames", 0)),
            frames_per_s=svc.reader.frames_per_second(),
            bus_load_pct=100.0 * svc.reader.bus_load(),
            errors=errors,
            decoder_rejects=dict(self.pipeline.rejects),
            messages=messages,
        )
        link = svc.link
        serial = SerialLinkHealth(connected=bool(link is not None and link.is_alive(now)),
                                  counters={} if link is None else link.counters())
        return HealthView(bus=bus, serial=serial, loop=self._loop_timing())

    def _loop_timing(self) -> LoopTiming:
        timing = self.pipeline.control_timer.summary()
        return LoopTiming(
            cycles=self.service.cycles,
            cycle_p50_s=float(timing["p50_us"]) * 1e-6,
            cycle_p99_s=float(timing["p99_us"]) * 1e-6,
            cycle_max_s=float(timing["max_us"]) * 1e-6,
            budget_s=self.pipeline.config.control_period_s,
            deadline_misses=int(timing.get("deadline_misses", 0)) + self.service.overruns,
            thread_alive=self.service.loop_alive,
        )

    def ready(self) -> tuple[bool, Sequence[str]]:
        reasons: list[str] = []
        health = self.health()
        if not health.loop.thread_alive:
            reasons.append("control loop not running")
        if not health.bus.alive:
            reasons.append("no CAN traffic received")
        if health.loop.cycles < 2:
            reasons.append("control loop has not cycled yet")
        else:
            p99 = self.pipeline.control_timer.recent_percentile(99.0, READY_WINDOW_CYCLES)
            if p99 > READY_P99_SHARE * health.loop.budget_s:
                reasons.append(f"control loop p99 over the last {READY_WINDOW_CYCLES} cycles {p99 * 1e3:.1f} ms "
                               f"over {READY_P99_SHARE:.0%} of its {health.loop.budget_s * 1e3:.0f} ms budget")
        return (not reasons, reasons)

    def alive(self) -> bool:
        return self.service.loop_alive


def _state_after(event: ModeEvent) -> str:
    """The machine's state once `event` happened: a request's `to_state` is its target, not a state it reached."""
    if event.kind is EventKind.ACCEPTED:
        state = event.details.get("state")  # the state the accepted request started (e.g. TO_SWEEPER)
        return str(state) if state else event.from_state.name
    if event.kind in _REQUEST_KINDS:
        return event.from_state.name
    return (event.to_state or event.from_state).name


def _decision(decision: Any, state: str) -> ModeDecision:
    return ModeDecision(accepted=decision.accepted, state=state,
                        reasons=[Reason(name=r.name, text=r.text) for r in decision.reasons])


def _selector_name(code: int | None) -> str:
    if code is None:
        return "UNKNOWN"
    member = CabSelector._value2member_map_.get(int(code))
    return member.name if member is not None else f"CODE_{code}"
