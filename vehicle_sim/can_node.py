"""SimulatedVehicle: the chassis ECUs (via the FMS gateway, SA 0x00) and the SSC (SA 0x80) on one CAN bus.

One scheduler thread keeps a monotonic schedule (a heap of due times, ``time.sleep``/``Event.wait`` to the next
one): the physics step, every cyclic message of the DBC that is not the OBC's at its ``GenMsgCycleTime`` (SSC_Diag
pages round robin), DM1 every second (single frame for at most one DTC, BAM TP.CM + TP.DT with 50 ms between packets
for more) and the scenario's drive cycle. A receive thread decodes the OBC's messages, checks their source address,
checksum and counter, and feeds the physics (setpoints, requested mode, heartbeat). Faults from `FaultInjector`
act on the frames about to be sent; everything sent, rejected and injected is counted.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import can
from cantools.database.can import Database, Message

from firmware_bridge.can_bus import BusConfig, dbc_filters, open_bus
from firmware_bridge.checksum import CHECKSUM_BYTE, message_checksum
from firmware_bridge.dbc_database import MessageInfo, all_message_info, default_database
from firmware_bridge.dm1 import Dm1Lamps, encode_dm1
from firmware_bridge.dm1 import Dtc as Dm1Dtc
from firmware_bridge.j1939 import pgn_of, source_address
from firmware_bridge.packer import CanPacker
from vehicle_sim.faults import ALL, FRAME_FAULTS, FaultInjector, FaultSpecError
from vehicle_sim.messages import BUILDERS, Values, message_values
from vehicle_sim.physics import Dtc, VehiclePhysics
from vehicle_sim.scenarios import Scenario

log = logging.getLogger(__name__)

OBC_NODE = "OBC"
DM1_NAME = "DM1"
DM1_PERIOD_S = 1.0
BAM_PACKET_GAP_S = 0.05  # J1939-21: 50..200 ms between the packets of a BAM
PHYSICS_DT_S = 0.01
BUS_OFF_ERROR_FRAMES = 3


def decode_numeric(message: Message, data: bytes) -> dict[str, float]:
    """Raw-choice decode of a frame as plain numbers (every signal of this DBC is numeric)."""
    decoded = message.decode(data, decode_choices=False)
    assert isinstance(decoded, dict)
    return {k: float(v) for k, v in decoded.items() if isinstance(v, int | float)}


def node_addresses(db: Database) -> dict[str, int]:
    """Source address per node from the DBC attribute ``NmStationAddress``."""
    out: dict[str, int] = {}
    for node in db.nodes:
        attrs = node.dbc.attributes if node.dbc is not None else {}
        if "NmStationAddress" in attrs:
            out[node.name] = int(attrs["NmStationAddress"].value)
    return out


def dm1_frames(dtcs: list[Dtc], source_address: int) -> list[can.Message]:
    """The frames of one DM1 transmission (`firmware_bridge.dm1.encode_dm1`: single frame for at most one DTC,
    else BAM TP.CM + TP.DT); the amber warning lamp is on while any DTC is active."""
    lamps = Dm1Lamps(amber_warning=1 if dtcs else 0)
    codes = [Dm1Dtc(d.spn, d.fmi, d.occurrence) for d in dtcs]
    frames = encode_dm1(lamps, codes, source_address=source_address)
    return [can.Message(arbitration_id=can_id, is_extended_id=True, data=data) for can_id, data in frames]


@dataclass(order=True)
class _Task:
    due: float
    seq: int
    period: float | None = field(compare=False)
    run: Callable[[float], None] = field(compare=False)


@dataclass
class _RxState:
    last_counter: dict[str, int] = field(default_factory=dict)


class SimulatedVehicle:
    """Chassis + SSC node on a CAN bus. ``start()`` runs it, ``close()`` stops and joins its threads."""

    def __init__(
        self,
        bus_or_config: can.BusABC | BusConfig,
        physics: VehiclePhysics | None = None,
        *,
        db: Database | None = None,
        scenario: Scenario | None = None,
        physics_dt: float = PHYSICS_DT_S,
        bam_packet_gap: float = BAM_PACKET_GAP_S,
    ) -> None:
        self.db = db or default_database()
        self.physics = physics or VehiclePhysics()
        self.scenario = scenario
        self.faults = FaultInjector()
        self.physics_dt = physics_dt
        self.bam_packet_gap = bam_packet_gap
        self._info: dict[str, MessageInfo] = all_message_info(self.db)
        addresses = node_addresses(self.db)
        self._addresses = addresses
        self._obc_address = addresses.get(OBC_NODE, 0x27)
        self._packers = {node: CanPacker(self.db, sa) for node, sa in addresses.items()}
        self._owns_bus = isinstance(bus_or_config, BusConfig)
        if isinstance(bus_or_config, BusConfig):
            self.bus: can.BusABC = open_bus(bus_or_config, dbc_filters(self.db, senders={OBC_NODE}))
        else:
            self.bus = bus_or_config
        self.cyclic: dict[str, float] = {
            m.name: m.cycle_time / 1000.0
            for m in self.db.messages
            if m.cycle_time and OBC_NODE not in m.senders and (m.name in BUILDERS or m.name == DM1_NAME)
        }
        self._obc_by_pgn: dict[int, Message] = {
            info.pgn: info.message
            for info in self._info.values()
            if OBC_NODE in info.message.senders and info.pgn is not None
        }
        self._ranges = {
            m.name: {s.name: (s.minimum, s.maximum) for s in m.signals if s.minimum is not None}
            for m in self.db.messages
        }
        self._lock = threading.Lock()
        self._last_data: dict[str, bytes] = {}
        self._diag_page = 0
        self.sent: dict[str, int] = {}
        self.tx_errors: dict[str, int] = {}
        self.send_times: dict[str, list[float]] = {}
        self.rx: dict[str, int] = {}
        self.rx_rejects: dict[str, int] = {}
        self.rx_counter_jumps: dict[str, int] = {}
        self.error_frames_sent = 0
        self._rx_state = _RxState()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._heap: list[_Task] = []
        self._seq = itertools.count()
        self._started_at = 0.0
        self.keep_send_times = 2000

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> SimulatedVehicle:
        if self._threads:
            return self
        now = time.monotonic()
        self._started_at = now
        if self.scenario is not None:
            self.scenario.setup(self.physics)
        self._schedule(now, self.physics_dt, self._step_physics)
        for k, (name, period) in enumerate(sorted(self.cyclic.items())):
            offset = (k * 0.0017) % min(period, 0.02)  # stagger the first frames, no burst at t0
            task = self._send_dm1 if name == DM1_NAME else self._make_sender(name)
            self._schedule(now + offset, period, task)
        for target, name in ((self._scheduler, "sim-scheduler"), (self._receiver, "sim-receiver")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        if self._owns_bus:
            self.bus.shutdown()

    def __enter__(self) -> SimulatedVehicle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fault injection -------------------------------------------------------------------------------------
    def inject(
        self,
        kind: str,
        *,
        message: str | None = None,
        count: int | None = None,
        duration: float | None = None,
        level: float = 1.0,
    ) -> None:
        """Inject a fault: frame faults (drop, silent, freeze_counter, corrupt_checksum, bus_off), ``clog``
        (``level`` 0..1, for ``duration`` if given) or ``stall_watchdog`` (for ``duration``, default 1 s)."""
        now = time.monotonic()
        if message is not None and message != ALL and message not in self.cyclic:
            raise FaultSpecError(f"unknown message {message!r}")
        if kind in FRAME_FAULTS:
            self.faults.add(kind, now, message=message, count=count, duration=duration)
            if kind == "bus_off":
                self._send_error_frames()
        elif kind == "clog":
            with self.physics.lock:
                self.physics.inputs.clog = min(1.0, max(0.0, level))
            self.faults.count_event("clog")
            if duration is not None:
                self._schedule(now + duration, None, self._clear_clog)
        elif kind == "stall_watchdog":
            self.physics.stall_watchdog(now, 1.0 if duration is None else duration)
            self.faults.count_event("stall_watchdog")
        else:
            raise FaultSpecError(f"unknown fault kind {kind!r}")

    def _clear_clog(self, _now: float) -> None:
        with self.physics.lock:
            self.physics.inputs.clog = 0.0

    def _send_error_frames(self) -> None:
        """Error frames where the interface can send them (virtual: yes; SocketCAN: no, counted as tx error)."""
        for _ in range(BUS_OFF_ERROR_FRAMES):
            try:
                self.bus.send(can.Message(is_error_frame=True, arbitration_id=0x40, data=bytes(8)))
            except (can.CanError, ValueError, OSError):
                return
            self.error_frames_sent += 1

    # -- counters --------------------------------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sent": dict(self.sent),
                "tx_errors": dict(self.tx_errors),
                "rx": dict(self.rx),
                "rx_rejects": dict(self.rx_rejects),
                "rx_counter_jumps": dict(self.rx_counter_jumps),
                "error_frames_sent": self.error_frames_sent,
                "injected": self.faults.snapshot(),
                "active_faults": self.faults.active(time.monotonic()),
                "watchdog_trips": self.physics.watchdog_trips,
            }

    def _bump(self, table: dict[str, int], key: str) -> None:
        with self._lock:
            table[key] = table.get(key, 0) + 1

    # -- scheduler -------------------------------------------------------------------------------------------
    def _schedule(self, due: float, period: float | None, run: Callable[[float], None]) -> None:
        with self._lock:
            heapq.heappush(self._heap, _Task(due, next(self._seq), period, run))

    def _scheduler(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                task = self._heap[0] if self._heap else None
            if task is None:
                self._stop.wait(0.01)
                continue
            delay = task.due - time.monotonic()
            if delay > 0:
                # short waits with time.sleep (finer than Event.wait), long ones interruptible
                if delay > 0.05:
                    self._stop.wait(delay - 0.02)
                    continue
                time.sleep(delay)
            with self._lock:
                task = heapq.heappop(self._heap)
            now = time.monotonic()
            try:
                task.run(now)
            except Exception:
                log.exception("simulator task failed")
            if task.period is not None:
                due = task.due + task.period
                if due < now - task.period:  # fell behind (debugger, overload): resynchronise, no burst
                    due = now + task.period
                self._schedule(due, task.period, task.run)

    def _step_physics(self, now: float) -> None:
        if self.scenario is not None:
            self.scenario.apply(self.physics, now - self._started_at)
        self.physics.step(self.physics_dt, now)

    def _make_sender(self, name: str) -> Callable[[float], None]:
        node = self._info[name].message.senders[0]
        packer = self._packers[node]

        def send(now: float) -> None:
            page = 0
            if name == "SSC_Diag":
                page, self._diag_page = self._diag_page, self._diag_page + 1
            values = self._clip(name, message_values(name, self.physics, page))
            self._transmit(name, packer, values, now)

        return send

    def _clip(self, name: str, values: Values) -> Values:
        ranges = self._ranges[name]
        out: Values = {}
        for key, value in values.items():
            lo, hi = ranges.get(key, (None, None))
            if lo is not None and value < lo:
                value = lo
            if hi is not None and value > hi:
                value = hi
            out[key] = value
        return out

    def _transmit(self, name: str, packer: CanPacker, values: Values, now: float) -> None:
        action = self.faults.action(name, now)
        if not action.send:
            if action.lost:
                packer.next_counter(name)
            return
        counter = self._last_counter(name) if action.freeze else None
        msg = packer.make_message(name, values, counter=counter, corrupt_checksum=action.corrupt_checksum)
        self._send(name, msg, now)

    def _last_counter(self, name: str) -> int | None:
        info = self._info[name]
        data = self._last_data.get(name)
        if info.counter_signal is None or data is None:
            return None
        return int(decode_numeric(info.message, data)[info.counter_signal])

    def _send(self, name: str, msg: can.Message, now: float) -> None:
        try:
            self.bus.send(msg, timeout=0.01)
        except can.CanError as exc:
            log.debug("tx %s failed: %s", name, exc)
            self._bump(self.tx_errors, name)
            return
        with self._lock:
            self._last_data[name] = bytes(msg.data)
            self.sent[name] = self.sent.get(name, 0) + 1
            times = self.send_times.setdefault(name, [])
            times.append(now)
            if len(times) > self.keep_send_times:
                del times[: len(times) - self.keep_send_times]

    def _send_dm1(self, now: float) -> None:
        with self.physics.lock:
            dtcs = list(self.physics.inputs.dtcs)
        node = self._info[DM1_NAME].message.senders[0]
        frames = dm1_frames(dtcs, self._addresses.get(node, 0x00))
        first, rest = frames[0], frames[1:]
        self._send_dm1_frame(first, now)
        for k, frame in enumerate(rest, start=1):
            self._schedule(now + k * self.bam_packet_gap, None, functools.partial(self._send_dm1_frame, frame))

    def _send_dm1_frame(self, frame: can.Message, now: float) -> None:  # one frame of DM1 or of its BAM
        name = self._name_of(frame.arbitration_id) or DM1_NAME
        if self.faults.action(DM1_NAME, now).send:
            self._send(name, frame, now)

    def _name_of(self, can_id: int) -> str | None:
        pgn = pgn_of(can_id)
        return next((i.name for i in self._info.values() if i.pgn == pgn), None)

    # -- receiver --------------------------------------------------------------------------------------------
    def _receiver(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.bus.recv(0.05)
            except can.CanError as exc:
                self._bump(self.rx_rejects, "bus_error")
                log.debug("rx failed: %s", exc)
                self._stop.wait(0.05)
                continue
            if msg is not None:
                self._on_frame(msg, time.monotonic())

    def _on_frame(self, msg: can.Message, now: float) -> None:
        if msg.is_error_frame or msg.is_remote_frame or not msg.is_extended_id:
            return
        message = self._obc_by_pgn.get(pgn_of(msg.arbitration_id))
        if message is None:
            return  # another node's traffic
        reason = self._check(message, msg)
        if reason is not None:
            self._bump(self.rx_rejects, reason)
            return
        self._bump(self.rx, message.name)
        self._apply(message.name, decode_numeric(message, bytes(msg.data)), now)

    def _check(self, message: Message, msg: can.Message) -> str | None:
        info = self._info[message.name]
        data = bytes(msg.data)
        if source_address(msg.arbitration_id) != self._obc_address:
            return "wrong_source"
        if len(data) != message.length:
            return "wrong_dlc"
        crc_checked = info.pgn is not None and info.checksum_signal is not None
        if crc_checked and data[CHECKSUM_BYTE] != message_checksum(info.pgn or 0, data):
            return "checksum"
        if info.counter_signal is not None:
            counter = int(decode_numeric(message, data)[info.counter_signal])
            previous = self._rx_state.last_counter.get(message.name)
            self._rx_state.last_counter[message.name] = counter
            if previous is not None and counter == previous:
                return "counter_frozen"  # a repeated counter is stale data, never a valid heartbeat
            if previous is not None and counter != (previous + 1) & 0xF:
                self._bump(self.rx_counter_jumps, message.name)  # counted, frame still used (one drop tolerated)
        return None

    def _apply(self, name: str, values: dict[str, float], now: float) -> None:
        physics = self.physics
        if name == "OBC_Heartbeat":
            physics.heartbeat(now)
            return
        with physics.lock:
            c = physics.commands
            if name == "OBC_Setpoints":
                c.fan_setpoint = float(values["FanSpeedSetpoint"])
                c.nozzle_lower = values["NozzleCmd"] == 1
                c.brushes_on = values["BrushesCmd"] == 1
                c.water_on = values["WaterCmd"] == 1
                c.plough_cmd = int(values["PloughCmd"]) if values["PloughCmd"] in (0, 1, 2) else 0
                c.auger_setpoint = float(values["AugerSpeedSetpoint"])
                c.rotor_setpoint = float(values["RotorSpeedSetpoint"])
            elif name == "OBC_ModeCommand":
                c.requested_mode = int(values["RequestedMode"])
