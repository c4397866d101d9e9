"""The one-way data pipeline of the service, with no thread or I/O of its own:

frame batches -> batch decoder -> per-message checks -> DM1 assembly -> hot loop -> signal store -> mode machine,
and the mode machine's outputs back through the command gate (the only transmitter).

The live service, a paced replay and the offline replay all drive this same object; the caller owns the clock
(``now``) and the order of calls, which keeps it deterministic under test.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cantools.database.can import Database

from firmware_bridge.batch_decoder import BatchDecoder, DecodedBatch
from firmware_bridge.dm1 import Dm1Assembler
from firmware_bridge.frame_batch import FrameBatch
from firmware_bridge.message_checks import ValidityTracker
from modes import SIGNAL_MAP, STOWED, CommandSource, Mode, ModeInputs, ModeMachine, ModeOutputs
from telemetry.faults import FaultManager
from telemetry.hot_loop import HotLoop, HotLoopConfig, SampleBatchLike
from telemetry.loop_timing import LoopTimer
from telemetry.signal_store import SignalStore

#: the mode machine's inputs, read from the store once per control cycle
_MODE_KEYS = tuple(key for key, _ in SIGNAL_MAP.values())
SERIAL_LINK_INPUT = "serial_link"
OWN_NODE = "OBC"
#: a DM1 report older than this is not known any more (DM1 is broadcast every second)
DM1_STALE_S = 3.0


class Transmitter(Protocol):
    """What the pipeline needs of the command gate."""

    def send(self, name: str, values: Mapping[str, float | int]) -> Any: ...


@dataclass
class PipelineConfig:
    control_period_s: float = 0.05
    #: a lost serial link is a stale safety-relevant input
    serial_required: bool = True
    #: DM1 DTCs with these SPNs are critical (besides any DTC reported with the red stop lamp on)
    critical_spns: frozenset[int] = field(default_factory=frozenset)
    history_depth: int = 6000
    #: after start, the machine waits this long for every safety-relevant input to become valid before a missing
    #: one counts as stale (SAFE); meanwhile everything stays stowed and stopped
    startup_grace_s: float = 5.0
    #: multiplies every DBC reception timeout (>= 1)
    check_timeout_scale: float = 1.0
    hot_loop: HotLoopConfig = field(default_factory=HotLoopConfig)


class Pipeline:
    """Wires codec, checks, hot loop, store and mode machine; see the module docstring."""

    def __init__(
        self,
        db: Database,
        config: PipelineConfig | None = None,
        *,
        gate: Transmitter | None = None,
        now: float = 0.0,
    ) -> None:
        self.db = db
        self.config = config or PipelineConfig()
        self.decoder = BatchDecoder(db)
        self.checks = ValidityTracker(db, own_node=OWN_NODE, timeout_scale=self.config.check_timeout_scale)
        self.dm1 = Dm1Assembler()
        self.store = SignalStore(default_depth=self.config.history_depth)
        self.store.register_can_database(db)
        self.faults = FaultManager()
        self.hot_loop = HotLoop(self.store, self.faults, self.config.hot_loop)
        self.machine = ModeMachine(now=now)
        self.gate = gate
        self.control_timer = LoopTimer(self.config.control_period_s, 2048)
        self.rejects: Counter[str] = Counter()
        self.frames_in = 0
        self.last_outputs: ModeOutputs | None = None
        self.serial_alive = not self.config.serial_required
        self.started_at = now
        self.inputs_seen = False  # every safety-relevant input was valid at least once (end of startup)
        self.machine_lock = threading.Lock()  # API requests arrive from other threads
        self._cycle_s = {m.name: m.cycle_time / 1000.0 for m in db.messages if m.cycle_time}
        self._last_tx: dict[str, tuple[float, dict[str, float | int]]] = {}

    # ---- data in ---------------------------------------------------------------------------------------------
    def ingest_frames(self, batch: FrameBatch, now: float) -> DecodedBatch:
        """Decode one frame batch, check it, and hand what passed to the hot loop and the store."""
        self.frames_in += len(batch)
        decoded = self.decoder.decode(batch)
        self.rejects.update({k: v for k, v in decoded.rejects.items() if v})
        decoded = self.checks.update(decoded, now)
        self.dm1.feed(decoded, now)
        self.hot_loop.process_can(decoded, self._validity(), now)
        return decoded

    def ingest_samples(self, batch: SampleBatchLike, now: float) -> None:
        self.hot_loop.process_samples(batch, now)

    def set_serial_alive(self, alive: bool) -> None:
        self.serial_alive = alive or not self.config.serial_required

    # ---- control ---------------------------------------------------------------------------------------------
    def control_step(self, now: float) -> ModeOutputs:
        """One control cycle: timeouts, mode machine, and the OBC's messages through the gate."""
        with self.control_timer.measure():
            self.checks.check_timeouts(now)
            self.dm1.expire(now)
            self.hot_loop.apply_validity(self._validity())
            inputs = self.mode_inputs(now)
            if not self.inputs_seen:
                self.inputs_seen = not inputs.stale
            with self.machine_lock:
                if self.inputs_seen or now - self.started_at > self.config.startup_grace_s:
                    outputs = self.machine.step(inputs, now)
                else:
                    outputs = self._startup_outputs()
            self.last_outputs = outputs
            if self.gate is not None:
                self._transmit("OBC_Setpoints", outputs.setpoint_signals(), now)
                self._transmit("OBC_ModeCommand", outputs.mode_command_signals(), now)
                self._transmit("OBC_Heartbeat", {"ObcState": _obc_state(outputs.state)}, now)
        return outputs

    def _transmit(self, name: str, values: Mapping[str, float | int], now: float) -> None:
        """Send ``name`` at its DBC cycle time, and at once when its content changes (cyclic + on change, as J1939
        command messages do); never faster than the control loop."""
        assert self.gate is not None
        cycle = self._cycle_s.get(name)
        last = self._last_tx.get(name)
        changed = last is None or last[1] != values
        # half a control period of tolerance so a 50 ms message goes out every 50 ms cycle despite jitter
        due = last is None or cycle is None or now - last[0] >= cycle - 0.5 * self.config.control_period_s
        if changed or due:
            self.gate.send(name, values)
            self._last_tx[name] = (now, dict(values))

    def _startup_outputs(self) -> ModeOutputs:
        """While starting up: everything stowed and stopped, the machine not stepped (nothing latched)."""
        state = self.machine.state
        return ModeOutputs(setpoints=STOWED, state=state, requested_mode=state, request_source=CommandSource.SAFETY,
                           fault_ack=False, step_index=None, step_name=None, events=())

    def mode_inputs(self, now: float) -> ModeInputs:
        snapshot = self.store.snapshot(_MODE_KEYS)
        values = {k: (s.value if s.valid else None) for k, s in snapshot.items()}
        stale = set(self.checks.stale_safety_relevant(now))
        if not self.serial_alive:
            stale.add(SERIAL_LINK_INPUT)
        demands = [(f.name, f.demands) for f in self.faults.active() if f.demands]
        return ModeInputs.from_snapshot(
            values,
            stale,
            critical_dtc_active=self.critical_dtc_active(now),
            serial_link_alive=self.serial_alive,
            fault_demands=demands,
        )

    def critical_dtc_active(self, now: float) -> bool | None:
        """True if any source reports a DTC with the red stop lamp on or a critical SPN; None while DM1 from the
        engine is not known (fails the interlock: fail safe)."""
        reports = [r for r in self.dm1.active_dtcs().values() if now - r.timestamp <= DM1_STALE_S]
        if not reports:
            return None
        for report in reports:
            if report.dtcs and report.lamps.red_stop == 1:
                return True
            if any(d.spn in self.config.critical_spns for d in report.dtcs):
                return True
        return False

    # ---- views -----------------------------------------------------------------------------------------------
    def _validity(self) -> dict[str, bool]:
        return {name: state.valid for name, state in self.checks.states().items()}

    def counters(self) -> dict[str, Any]:
        return {
            "frames_in": self.frames_in,
            "rejects": dict(self.rejects),
            "checks": self.checks.error_counts,
            "dm1": dict(self.dm1.counts),
            "hot_loop": self.hot_loop.counters(),
            "guard_trips": self.machine.guard_trips,
        }


def _obc_state(state: Mode) -> int:
    """OBC_Heartbeat.ObcState: 1 RUNNING, 3 SAFE."""
    return 3 if state is Mode.SAFE else 1

