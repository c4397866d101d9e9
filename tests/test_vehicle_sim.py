"""The simulated vehicle talking to an OBC-side codec over python-can's virtual bus (short real-time runs)."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
import uuid
from collections.abc import Iterator, Mapping

import can
import pytest
from cantools.database.can import Message

from firmware_bridge.can_bus import BusConfig
from firmware_bridge.checksum import message_checksum
from firmware_bridge.command_gate import CommandGate
from firmware_bridge.dbc_database import all_message_info, default_database
from firmware_bridge.dm1 import Dm1Assembler
from firmware_bridge.frame_batch import FrameBatch
from firmware_bridge.j1939 import pgn_of, source_address
from firmware_bridge.packer import CanPacker
from vehicle_sim.can_node import SimulatedVehicle
from vehicle_sim.physics import Dtc, VehiclePhysics

DB = default_database()
INFO = all_message_info(DB)
BY_PGN: dict[int, Message] = {i.pgn: i.message for i in INFO.values() if i.pgn is not None}
SOURCE = {"ENGINE": 0x00, "SSC": 0x80}


class Obc:
    """Test-side OBC: receives everything, beats and sends setpoints through a CommandGate every 50 ms."""

    def __init__(self, channel: str) -> None:
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.gate = CommandGate(self.bus, DB)
        self.frames: list[can.Message] = []
        self.last_beat = 0.0

    def pump(
        self,
        seconds: float,
        *,
        heartbeat: bool = True,
        setpoints: Mapping[str, float] | None = None,
        mode: int | None = None,
    ) -> list[can.Message]:
        got: list[can.Message] = []
        end = time.monotonic() + seconds
        next_tx = time.monotonic()
        while (now := time.monotonic()) < end:
            if now >= next_tx:
                if heartbeat:
                    self.gate.send("OBC_Heartbeat", {"ObcState": 1})
                    self.last_beat = time.time()
                if setpoints is not None:
                    self.gate.send("OBC_Setpoints", setpoints)
                if mode is not None:
                    self.gate.send("OBC_ModeCommand", {"RequestedMode": mode})
                next_tx += 0.05
            msg = self.bus.recv(max(0.0, min(next_tx, end) - time.monotonic()))
            if msg is not None:
                got.append(msg)
        self.frames.extend(got)
        return got


def of(frames: list[can.Message], name: str) -> list[can.Message]:
    pgn = INFO[name].pgn
    return [f for f in frames if not f.is_error_frame and pgn_of(f.arbitration_id) == pgn]


def decode(frame: can.Message) -> dict[str, float]:
    decoded = BY_PGN[pgn_of(frame.arbitration_id)].decode(bytes(frame.data), decode_choices=False)
    assert isinstance(decoded, dict)
    return {k: float(v) for k, v in decoded.items() if isinstance(v, int | float)}


def crc_ok(frame: can.Message) -> bool:
    pgn = pgn_of(frame.arbitration_id)
    return bool(frame.data[7] == message_checksum(pgn, frame.data))


@pytest.fixture
def channel() -> str:
    return f"sim-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def obc(channel: str) -> Iterator[Obc]:
    o = Obc(channel)
    yield o
    o.bus.shutdown()


@pytest.fixture
def vehicle(channel: str, obc: Obc) -> Iterator[SimulatedVehicle]:
    sim = SimulatedVehicle(BusConfig(interface="virtual", channel=channel), VehiclePhysics(seed=1)).start()
    yield sim
    sim.close()


def test_every_message_at_its_cycle_time_with_valid_counter_and_checksum(vehicle: SimulatedVehicle, obc: Obc) -> None:
    duration = 1.25
    frames = obc.pump(duration)
    assert set(vehicle.cyclic) == {"EEC1", "CCVS1", "ET1", "VEP1", "DM1"} | {n for n in INFO if n.startswith("SSC_")}
    for name, period in vehicle.cyclic.items():
        mine = of(frames, name)
        node = INFO[name].message.senders[0]
        assert all(source_address(f.arbitration_id) == SOURCE[node] for f in mine), name
        if period >= 1.0:
            assert 1 <= len(mine) <= 2, name
        else:
            assert abs(len(mine) - duration / period) <= 2, (name, len(mine))
            intervals = [b.timestamp - a.timestamp for a, b in itertools.pairwise(mine)]
            assert statistics.mean(intervals) == pytest.approx(period, rel=0.1), name
            assert statistics.median(intervals) == pytest.approx(period, abs=0.01), name
        values = [decode(f) for f in mine]  # every frame decodes with cantools
        info = INFO[name]
        if info.checksum_signal is not None:
            assert all(crc_ok(f) for f in mine), name
            counters = [int(v["Counter"]) for v in values]
            assert all((b - a) % 16 == 1 for a, b in itertools.pairwise(counters)), name
    pages = [int(decode(f)["DiagPage"]) for f in of(frames, "SSC_Diag")]
    assert pages == list(range(len(pages)))
    assert vehicle.counters()["rx"]["OBC_Heartbeat"] >= 20


def test_fan_follows_setpoint_sent_as_obc_setpoints(vehicle: SimulatedVehicle, obc: Obc) -> None:
    start = time.time()
    frames = obc.pump(2.4, setpoints={"FanSpeedSetpoint": 600.0})
    suction = [(f.timestamp - start, decode(f)) for f in of(frames, "SSC_Suction")]
    reached = next(t for t, v in suction if v["SuctionFanSpeed"] >= 570.0)
    assert 1.2 <= reached <= 2.2  # rate-limited spin-up (450 rpm/s) then first-order approach
    ramp = [v["SuctionFanSpeed"] for t, v in suction if 0.3 <= t <= 0.8]
    assert all(b >= a - 10 for a, b in itertools.pairwise(ramp))  # monotonic ramp up to noise
    end = suction[-1][1]
    assert end["SuctionFanSpeed"] == pytest.approx(600.0, abs=15)
    assert end["SuctionPressure"] == pytest.approx(-3500.0 * (600.0 / 3000.0) ** 2, abs=60)
    assert vehicle.physics.truth()["fan_speed"] == pytest.approx(600.0, abs=15)


def test_heartbeat_loss_stops_actuators_within_300ms(vehicle: SimulatedVehicle, obc: Obc) -> None:
    frames = obc.pump(0.5, setpoints={"FanSpeedSetpoint": 1000.0, "BrushesCmd": 1})
    assert all(decode(f)["HeartbeatOk"] == 1 for f in of(frames, "SSC_Status")[-2:])
    last_beat = obc.last_beat
    frames = obc.pump(0.7, heartbeat=False)
    status = [(f.timestamp, decode(f)) for f in of(frames, "SSC_Status")]
    first_lost = next(t for t, v in status if v["HeartbeatOk"] == 0)
    assert 0.3 <= first_lost - last_beat <= 0.3 + 0.1 + 0.08  # watchdog + one SSC_Status cycle + jitter
    lost = [v for t, v in status if t >= first_lost]
    assert all(v["ActuatorsEnabled"] == 0 and v["SscActiveMode"] == 3 for v in lost)
    fan = [decode(f)["SuctionFanSpeed"] for f in of(frames, "SSC_Suction") if f.timestamp > first_lost + 0.1]
    assert fan[-1] < fan[0]  # coasting down


def test_ssc_echoes_requested_mode(vehicle: SimulatedVehicle, obc: Obc) -> None:
    frames = obc.pump(0.45, mode=1)
    assert decode(of(frames, "SSC_Status")[-1])["SscActiveMode"] == 1


def test_corrupt_checksum_exact_count(vehicle: SimulatedVehicle, obc: Obc) -> None:
    obc.pump(0.1)
    vehicle.inject("corrupt_checksum", message="SSC_Suction", count=5)
    frames = of(obc.pump(0.4), "SSC_Suction")
    assert sum(not crc_ok(f) for f in frames) == 5
    assert vehicle.counters()["injected"]["corrupt_checksum"] == {"SSC_Suction": 5}
    counters = [int(decode(f)["Counter"]) for f in frames]
    assert all((b - a) % 16 == 1 for a, b in itertools.pairwise(counters))


def test_drop_exact_count(vehicle: SimulatedVehicle, obc: Obc) -> None:
    obc.pump(0.15)
    vehicle.inject("drop", message="SSC_Brushes", count=3)
    obc.pump(0.45)
    frames = of(obc.frames, "SSC_Brushes")
    counters = [int(decode(f)["Counter"]) for f in frames]
    missing = sum((b - a) % 16 - 1 for a, b in itertools.pairwise(counters))
    assert missing == 3
    assert vehicle.counters()["injected"]["drop"] == {"SSC_Brushes": 3}


def test_freeze_counter_exact_count(vehicle: SimulatedVehicle, obc: Obc) -> None:
    obc.pump(0.15)
    vehicle.inject("freeze_counter", message="SSC_Snow", count=4)
    obc.pump(0.45)
    frames = of(obc.frames, "SSC_Snow")
    assert all(crc_ok(f) for f in frames)
    counters = [int(decode(f)["Counter"]) for f in frames]
    steps = [(b - a) % 16 for a, b in itertools.pairwise(counters)]
    assert steps.count(0) == 4
    assert steps.count(1) == len(steps) - 4
    assert vehicle.counters()["injected"]["freeze_counter"] == {"SSC_Snow": 4}


def test_silent_one_message_for_a_duration(vehicle: SimulatedVehicle, obc: Obc) -> None:
    obc.pump(0.1)
    vehicle.inject("silent", message="SSC_Suction", duration=0.3)
    obc.pump(0.6)
    frames = obc.frames
    suction_ts = [f.timestamp for f in of(frames, "SSC_Suction")]
    eec1_ts = [f.timestamp for f in of(frames, "EEC1")]
    assert max(b - a for a, b in itertools.pairwise(suction_ts)) >= 0.28
    assert max(b - a for a, b in itertools.pairwise(eec1_ts)) < 0.06
    silenced = vehicle.counters()["injected"]["silent"]
    assert list(silenced) == ["SSC_Suction"] and 13 <= silenced["SSC_Suction"] <= 16


def test_bus_off_silences_the_node_and_sends_error_frames(vehicle: SimulatedVehicle, obc: Obc) -> None:
    obc.pump(0.1)
    vehicle.inject("bus_off", duration=0.3)
    obc.pump(0.6)
    frames = obc.frames
    assert sum(f.is_error_frame for f in frames) == 3
    data = [f.timestamp for f in frames if not f.is_error_frame]
    assert max(b - a for a, b in itertools.pairwise(data)) >= 0.28
    counters = vehicle.counters()
    assert counters["error_frames_sent"] == 3
    assert counters["injected"]["bus_off"]["SSC_Suction"] in (14, 15, 16)


def test_stall_watchdog_and_clog(vehicle: SimulatedVehicle, obc: Obc) -> None:
    obc.pump(0.3, setpoints={"FanSpeedSetpoint": 400.0})
    vehicle.inject("stall_watchdog", duration=0.3)
    vehicle.inject("clog", level=0.9, duration=0.2)
    frames = obc.pump(0.15, setpoints={"FanSpeedSetpoint": 400.0})
    assert decode(of(frames, "SSC_Status")[-1])["HeartbeatOk"] == 0
    assert vehicle.physics.inputs.clog == 0.9
    obc.pump(0.35, setpoints={"FanSpeedSetpoint": 400.0})
    assert vehicle.physics.inputs.clog == 0.0
    injected = vehicle.counters()["injected"]
    assert injected["stall_watchdog"] == {"*": 1} and injected["clog"] == {"*": 1}


def test_dm1_single_dtc(vehicle: SimulatedVehicle, obc: Obc) -> None:
    with vehicle.physics.lock:
        vehicle.physics.inputs.dtcs = [Dtc(spn=110 + (3 << 16), fmi=0, occurrence=2)]
    dm1 = of(obc.pump(1.1), "DM1")
    assert dm1
    v = decode(dm1[-1])
    assert int(v["DTC1_SPN_Low"]) + (int(v["DTC1_SPN_High"]) << 16) == 110 + (3 << 16)
    assert v["DTC1_FMI"] == 0 and v["DTC1_OccurrenceCount"] == 2 and v["AmberWarningLampStatus"] == 1


def test_dm1_several_dtcs_as_bam(vehicle: SimulatedVehicle, obc: Obc) -> None:
    codes = [Dtc(spn=110, fmi=0, occurrence=1), Dtc(spn=190, fmi=2, occurrence=3), Dtc(spn=524000, fmi=31)]
    with vehicle.physics.lock:
        vehicle.physics.inputs.dtcs = list(codes)
    frames = obc.pump(1.15)
    cm, dt = of(frames, "TP_CM_BAM"), of(frames, "TP_DT_BAM")
    assert len(cm) >= 1 and len(dt) >= 2
    assert all(source_address(f.arbitration_id) == 0x00 for f in cm + dt)
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise([cm[-1], *dt[-2:]])]
    assert all(g >= 0.045 for g in gaps)  # J1939-21 BAM packet spacing
    assembler = Dm1Assembler()
    assembler.feed(FrameBatch.from_messages(frames), time.monotonic())
    report = assembler.active_dtcs()[0x00]
    assert [(d.spn, d.fmi, d.oc) for d in report.dtcs] == [(c.spn, c.fmi, c.occurrence) for c in codes]
    assert report.lamps.amber_warning == 1
    assert assembler.counts["completed"] >= 1 and assembler.aborted == 0


def test_rejects_bad_obc_frames(vehicle: SimulatedVehicle, obc: Obc) -> None:
    obc.pump(0.2)
    packer = CanPacker(DB, 0x27)
    obc.bus.send(packer.make_message("OBC_Setpoints", {"FanSpeedSetpoint": 3000.0}, corrupt_checksum=True))
    foreign = CanPacker(DB, 0x55).make_message("OBC_Setpoints", {"FanSpeedSetpoint": 3000.0})
    obc.bus.send(foreign)
    obc.pump(0.1)
    rejects = vehicle.counters()["rx_rejects"]
    assert rejects == {"checksum": 1, "wrong_source": 1}
    assert vehicle.physics.commands.fan_setpoint == 0.0
    # a heartbeat with a frozen counter is stale: the SSC's watchdog trips
    stale = CanPacker(DB, 0x27)
    end = time.monotonic() + 0.6
    while time.monotonic() < end:
        obc.bus.send(stale.make_message("OBC_Heartbeat", {"ObcState": 1}, counter=7))
        time.sleep(0.05)
    assert not vehicle.physics.state.heartbeat_ok
    assert vehicle.counters()["rx_rejects"]["counter_frozen"] >= 10


def test_close_leaves_no_thread(channel: str) -> None:
    names = {"sim-scheduler", "sim-receiver"}
    before = [t for t in threading.enumerate() if t.name in names]
    sim = SimulatedVehicle(BusConfig(interface="virtual", channel=channel)).start()
    assert len([t for t in threading.enumerate() if t.name in names]) == len(before) + 2
    sim.close()
    assert [t for t in threading.enumerate() if t.name in names] == before
