"""`InMemoryTelemetryService`: a small, honest implementation of the API port for development and tests.

It composes the real `SignalStore`, `FaultManager` and `ModeMachine` with its own control thread (steps the
mode machine from the store at `cycle_s`, timed by `LoopTimer`) and an optional demo feeder that writes a
parked, sweeper-equipped truck with live suction/fan signals. It has no CAN bus: `record_frames()` lets a
caller account bus traffic. The production implementation is `uniross.service`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from modes.inputs import SAFETY_INPUT_MESSAGES, ModeInputs
from modes.machine import ModeMachine
from modes.types import Mode
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
    ModeDecision,
    ModeStatusView,
    Reason,
    SerialLinkHealth,
    SignalUpdate,
    SignalView,
)
from telemetry.faults import FaultManager, FaultState
from telemetry.loop_timing import LoopTimer
from telemetry.signal_store import SignalStore

CAB_NAMES = {0: "OFF", 1: "TRANSPORT", 2: "SWEEPER", 3: "SNOW", 4: "REMOTE"}


def fault_view(state: FaultState) -> FaultView:
    return FaultView(
        name=state.name,
        severity=state.severity,
        active=state.active,
        acknowledged=state.acknowledged,
        raised_at=state.raised_at if state.raised_at is not None else math.nan,
        cleared_at=state.cleared_at,
        text=state.description,
    )


def decision_view(accepted: bool, state: Mode, reasons: Sequence[object]) -> ModeDecision:
    return ModeDecision(accepted, state.name, tuple(Reason(r.name, r.text) for r in reasons))  # type: ignore[attr-defined]


class InMemoryTelemetryService:
    """Implements `telemetry.api.service_port.TelemetryService` over in-process objects."""

    def __init__(
        self,
        store: SignalStore | None = None,
        faults: FaultManager | None = None,
        machine: ModeMachine | None = None,
        *,
        cycle_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store or SignalStore()
        self.fault_manager = faults or FaultManager()
        self.clock = clock
        self.machine = machine or ModeMachine(now=clock())
        self.cycle_s = cycle_s
        self.timer = LoopTimer(budget_s=cycle_s)
        self.dtcs: list[DtcView] = []
        self.serial_counters: dict[str, int] = {"frames": 0, "crc_errors": 0, "lost_seq": 0}
        self._lock = threading.Lock()  # guards the mode machine
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._frames = 0
        self._frame_times: deque[tuple[float, int]] = deque(maxlen=64)
        self.bus_errors: dict[str, int] = {}
        self.decoder_rejects: dict[str, int] = {}
        self._rng = np.random.default_rng(1)

    # ---- lifecycle ----------------------------------------------------------------------------------
    def start(self, demo_feed: bool = False) -> None:
        if demo_feed:
            self._demo_write(self.clock())  # the first control cycle already sees a complete vehicle
            self._spawn(self._demo_loop, "demo-feed")
        self._spawn(self._control_loop, "control-loop")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)

    def record_frames(self, count: int, now: float | None = None) -> None:
        self._frames += count
        self._frame_times.append((self.clock() if now is None else now, self._frames))

    # ---- control loop -------------------------------------------------------------------------------
    def _inputs(self) -> ModeInputs:
        snap = self.store.snapshot()
        values = {k: (s.value if s.valid else None) for k, s in snap.items()}
        invalid = {k.partition(".")[0] for k, s in snap.items() if not s.valid}
        stale = SAFETY_INPUT_MESSAGES & invalid
        return ModeInputs.from_snapshot(
            values,
            stale,
            critical_dtc_active=any(d.lamps.get("red_stop", 0) == 1 for d in self.dtcs),
            serial_link_alive=True,
            fault_demands=[(f.name, f.demands) for f in self.fault_manager.active() if f.demands],
        )

    def step(self, now: float) -> None:
        """One control cycle (also callable directly from tests)."""
        with self.timer.measure():
            inputs = self._inputs()
            with self._lock:
                self.machine.step(inputs, now)

    def _control_loop(self) -> None:
        next_t = self.clock()
        while not self._stop.is_set():
            self.step(self.clock())
            next_t += self.cycle_s
            self._stop.wait(max(0.0, next_t - self.clock()))

    def _demo_loop(self) -> None:
        while not self._stop.wait(0.02):
            self._demo_write(self.clock())

    def _demo_write(self, now: float) -> None:
        """A parked truck with the sweeper head mounted, selector on REMOTE, fan idling with noise."""
        rng = self._rng
        static = {
            "CCVS1.WheelBasedVehicleSpeed": 0.0, "CCVS1.ParkingBrakeSwitch": 1, "EEC1.EngSpeed": 750.0,
            "SSC_Equipment.SweeperHeadMounted": 1, "SSC_Equipment.SnowAttachmentMounted": 0,
            "SSC_Equipment.EmergencyStop": 0, "SSC_Equipment.CabModeSelector": 4, "SSC_Status.HeartbeatOk": 1,
            "SSC_HopperWater.HopperFillLevel": 42.0, "SSC_HopperWater.HopperRaised": 0,
            "SSC_HopperWater.TippingActive": 0, "SSC_HopperWater.RearDoorClosed": 1, "SSC_Suction.NozzleLowered": 0,
            "SSC_Suction.NozzleHeight": 120.0, "SSC_Brushes.LeftBrushLowered": 0, "SSC_Brushes.RightBrushLowered": 0,
            "SSC_Brushes.LeftBrushSpeed": 0.0, "SSC_Brushes.RightBrushSpeed": 0.0, "SSC_Brushes.WaterSprayActive": 0,
            "SSC_Snow.AugerSpeed": 0.0, "SSC_Snow.RotorSpeed": 0.0, "SSC_Snow.PloughPosition": 0,
        }
        units = {"CCVS1.WheelBasedVehicleSpeed": "km/h", "EEC1.EngSpeed": "rpm"}
        fan = 1500.0 + 200.0 * math.sin(now / 3.0)
        suction = -2500.0 - 0.0011 * fan * fan / 2.0
        for key, value in static.items():
            self.store.set(key, float(value), now, unit=units.get(key, ""))
        self.store.set("SSC_Suction.SuctionFanSpeed", round(fan * 4) / 4, now, unit="rpm")
        self.store.set("SSC_Suction.SuctionPressure", round(suction), now, unit="Pa")
        self.store.set("serial.fan_speed.raw", fan + rng.normal(0, 25), now, unit="rpm")
        self.store.set("serial.fan_speed", fan, now, unit="rpm")
        self.store.set("serial.suction_pressure.raw", suction + rng.normal(0, 60), now, unit="Pa")
        self.store.set("serial.suction_pressure", suction, now, unit="Pa")
        self.record_frames(18, now)

    # ---- TelemetryService -------------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    def snapshot(self) -> list[SignalView]:
        now = self.clock()
        return [
            SignalView(s.key, s.value, s.unit, s.valid, s.timestamp, now - s.timestamp)
            for s in self.store.snapshot().values()
        ]

    def signal_keys(self) -> list[str]:
        return self.store.keys()

    def history(self, key: str, t0: float, t1: float, max_points: int) -> HistoryView:
        unit = self.store.unit(key)
        if unit is None:
            raise KeyError(key)
        t, v = self.store.history(key, t0, t1, max_points)
        return HistoryView(key, unit, t, v)

    def changes_since(self, seq: int) -> ChangeBatch:
        version, keys = self.store.changed_since(seq)
        snap = self.store.snapshot(keys)
        return ChangeBatch(version, [SignalUpdate(s.key, s.timestamp, s.value, s.valid) for s in snap.values()])

    def faults(self) -> FaultsView:
        active = [fault_view(s) for s in self.fault_manager.active()]
        recent = sorted(
            (fault_view(s) for s in self.fault_manager.states().values() if not s.active and s.cleared_at is not None),
            key=lambda f: f.cleared_at or 0.0,
            reverse=True,
        )
        return FaultsView(active, recent, list(self.dtcs))

    def acknowledge_fault(self, name: str, user: str) -> bool:
        return self.fault_manager.acknowledge(name, self.clock())

    def mode_status(self) -> ModeStatusView:
        with self._lock:
            st = self.machine.status()
        seen: dict[str, InterlockView] = {}
        for results in st.interlocks.values():
            for r in results:
                if r.name not in seen or not r.ok:
                    seen[r.name] = InterlockView(r.name, r.ok, r.description)
        last = st.last_refusal
        return ModeStatusView(
            state=st.state.name,
            since=st.since,
            cab_selector=CAB_NAMES.get(st.cab_selector, "UNKNOWN") if st.cab_selector is not None else "UNKNOWN",
            interlocks=list(seen.values()),
            transition_step=st.step_name,
            target=None if st.sequence is None else str(st.sequence.value),
            last_refusal=None if last is None else decision_view(False, st.state, last.reasons),
        )

    def audit_events(self, limit: int) -> list[AuditEvent]:
        with self._lock:
            events = list(self.machine.events)[-limit:]
        out = []
        for e in reversed(events):
            reasons = tuple(Reason(r["name"], r["text"]) for r in e.details.get("reasons", ()))
            to = "" if e.to_state is None else f" -> {e.to_state.name}"
            out.append(AuditEvent(e.t, e.kind.value, e.source, f"{e.from_state.name}{to}: {e.reason}",
                                  e.from_state.name, e.details.get("user"), reasons))
        return out

    def request_mode(self, target: str, acknowledge: bool, user: str) -> ModeDecision:
        with self._lock:
            decision = self.machine.request(Mode[target], "remote", self.clock(), acknowledge)
            state = self.machine.state
        return decision_view(decision.accepted, state, decision.reasons)

    def health(self) -> HealthView:
        now = self.clock()
        fps = 0.0
        if len(self._frame_times) >= 2:
            (t_a, n_a), (t_b, n_b) = self._frame_times[0], self._frame_times[-1]
            fps = (n_b - n_a) / (t_b - t_a) if t_b > t_a else 0.0
        last_rx = self._frame_times[-1][0] if self._frame_times else None
        summary = self.timer.summary()
        bus = BusHealth(
            alive=last_rx is not None and now - last_rx < 0.5,
            frames_total=self._frames,
            frames_per_s=fps,
            bus_load_pct=fps * 128 / 250_000 * 100,  # ~128 bit per extended 8-byte frame at 250 kbit/s
            errors=dict(self.bus_errors),
            decoder_rejects=dict(self.decoder_rejects),
            messages=[],
        )
        loop = LoopTiming(
            cycles=summary["calls"],
            cycle_p50_s=summary["p50_us"] * 1e-6,
            cycle_p99_s=summary["p99_us"] * 1e-6,
            cycle_max_s=summary["max_us"] * 1e-6,
            budget_s=self.cycle_s,
            deadline_misses=summary["deadline_misses"],
            thread_alive=self.alive(),
        )
        return HealthView(bus, SerialLinkHealth(connected=True, counters=dict(self.serial_counters)), loop)

    def ready(self) -> tuple[bool, list[str]]:
        health = self.health()
        reasons = []
        if not health.bus.alive:
            reasons.append("bus: no frames in the last 0.5 s")
        if not health.loop.thread_alive:
            reasons.append("loop: control thread not running")
        elif health.loop.cycle_p99_s > health.loop.budget_s:
            reasons.append(f"loop: p99 cycle {health.loop.cycle_p99_s * 1e3:.2f} ms over budget")
        return not reasons, reasons

    def alive(self) -> bool:
        return any(t.name == "control-loop" and t.is_alive() for t in self._threads)
