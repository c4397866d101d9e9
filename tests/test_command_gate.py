"""CommandGate: sends only the OBC's own messages, packed with counter/checksum from SA 0x27; counts the rest."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import can
import pytest

from firmware_bridge.checksum import message_checksum
from firmware_bridge.command_gate import CommandGate, CommandRefused
from firmware_bridge.dbc_database import all_message_info, default_database
from firmware_bridge.j1939 import pgn_of, source_address


@pytest.fixture
def buses() -> Iterator[tuple[can.BusABC, can.BusABC]]:
    channel = f"gate-{uuid.uuid4().hex[:10]}"
    a = can.Bus(interface="virtual", channel=channel)
    b = can.Bus(interface="virtual", channel=channel)
    yield a, b
    a.shutdown()
    b.shutdown()


def test_sends_own_messages_with_counter_and_checksum(buses: tuple[can.BusABC, can.BusABC]) -> None:
    tx, rx = buses
    db = default_database()
    gate = CommandGate(tx, db)
    assert gate.allowed == {"OBC_Heartbeat", "OBC_Setpoints", "OBC_ModeCommand"}
    for _ in range(3):
        assert gate.send("OBC_Heartbeat", {"ObcState": 1}).ok
    assert gate.send("OBC_Setpoints", {"FanSpeedSetpoint": 2500.0}).ok
    frames = [rx.recv(0.5) for _ in range(4)]
    assert all(f is not None for f in frames)
    info = all_message_info(db)
    counters = []
    for frame in frames:
        assert frame is not None
        assert source_address(frame.arbitration_id) == 0x27
        name = db.get_message_by_frame_id(frame.arbitration_id).name
        pgn = info[name].pgn
        assert pgn == pgn_of(frame.arbitration_id)
        assert frame.data[7] == message_checksum(pgn, frame.data)
        decoded = db.get_message_by_name(name).decode(bytes(frame.data), decode_choices=False)
        assert isinstance(decoded, dict)
        counters.append(decoded["Counter"])
        if name == "OBC_Setpoints":
            assert decoded["FanSpeedSetpoint"] == 2500.0
    assert counters[:3] == [0, 1, 2]
    assert gate.counters()["sent"]["OBC_Heartbeat"] == 3


@pytest.mark.parametrize("name", ["EEC1", "CCVS1", "DM1", "TP_CM_BAM", "SSC_Suction", "SSC_Status", "Nope"])
def test_refuses_foreign_messages(buses: tuple[can.BusABC, can.BusABC], name: str) -> None:
    tx, rx = buses
    gate = CommandGate(tx, default_database())
    with pytest.raises(CommandRefused) as err:
        gate.send(name, {})
    assert err.value.name == name
    assert rx.recv(0.05) is None
    assert gate.counters()["refused"] == {name: 1}


def test_encode_error_is_counted_not_raised(buses: tuple[can.BusABC, can.BusABC]) -> None:
    tx, rx = buses
    gate = CommandGate(tx, default_database())
    result = gate.send("OBC_Setpoints", {"FanSpeedSetpoint": 99999.0})
    assert not result.ok and result.reason is not None and result.reason.startswith("encode_error")
    assert gate.counters()["encode_errors"]["OBC_Setpoints"] == 1
    assert rx.recv(0.05) is None


def test_tx_error_is_counted(buses: tuple[can.BusABC, can.BusABC]) -> None:
    tx, _rx = buses
    gate = CommandGate(tx, default_database())
    tx.shutdown()
    result = gate.send("OBC_Heartbeat", {"ObcState": 1})
    assert not result.ok and result.reason is not None and result.reason.startswith("tx_error")
    counters = gate.counters()
    assert counters["tx_errors"]["OBC_Heartbeat"] == 1
    assert counters["sent"]["OBC_Heartbeat"] == 0
