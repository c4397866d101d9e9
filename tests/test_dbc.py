"""The UniROSS DBC: strict load, the messages/signals of ../shared/DESIGN.md, J1939 positions, roles, timing."""

from __future__ import annotations

import pytest

from firmware_bridge.dbc_database import (
    DEFAULT_DBC,
    ROLE_CHECKSUM,
    ROLE_COUNTER,
    ROLE_RAW,
    ROLE_VALUE,
    all_message_info,
    load_database,
    signal_role,
)
from firmware_bridge.j1939 import pgn_of, source_address

DB = load_database(DEFAULT_DBC, strict=True)
INFO = all_message_info(DB)

# (message, signal, start, length, scale, offset, SPN)
J1939_SIGNALS = [
    ("EEC1", "EngSpeed", 24, 16, 0.125, 0, 190),
    ("EEC1", "ActualEngPercentTorque", 16, 8, 1, -125, 513),
    ("CCVS1", "WheelBasedVehicleSpeed", 8, 16, 1 / 256, 0, 84),
    ("CCVS1", "ParkingBrakeSwitch", 2, 2, 1, 0, 70),
    ("CCVS1", "BrakeSwitch", 28, 2, 1, 0, 597),
    ("ET1", "EngCoolantTemp", 0, 8, 1, -40, 110),
    ("VEP1", "BatteryPotential_PowerInput1", 32, 16, 0.05, 0, 168),
    ("DM1", "ProtectLampStatus", 0, 2, 1, 0, 987),
    ("DM1", "AmberWarningLampStatus", 2, 2, 1, 0, 624),
    ("DM1", "RedStopLampStatus", 4, 2, 1, 0, 623),
    ("DM1", "MalfunctionIndicatorLampStatus", 6, 2, 1, 0, 1213),
]


def test_loads_strict_and_all_signals_are_intel_unsigned() -> None:
    expected = {"EEC1", "CCVS1", "ET1", "VEP1", "DM1", "TP_CM_BAM", "TP_DT_BAM", "SSC_Diag", *SUPERSTRUCTURE}
    assert expected <= {m.name for m in DB.messages}
    for message in DB.messages:
        assert message.is_extended_frame and message.length == 8 and message.protocol == "j1939"
        for signal in message.signals:
            assert signal.byte_order == "little_endian" and not signal.is_signed


@pytest.mark.parametrize(
    ("name", "pgn"),
    [("EEC1", 61444), ("CCVS1", 65265), ("ET1", 65262), ("VEP1", 65271), ("DM1", 65226), ("TP_CM_BAM", 60416),
     ("TP_DT_BAM", 60160)],
)
def test_chassis_pgns(name: str, pgn: int) -> None:
    message = DB.get_message_by_name(name)
    assert pgn_of(message.frame_id) == pgn == INFO[name].pgn
    assert source_address(message.frame_id) == 0x00


@pytest.mark.parametrize(("message", "signal", "start", "length", "scale", "offset", "spn"), J1939_SIGNALS)
def test_spn_positions_and_scalings(message: str, signal: str, start: int, length: int, scale: float,
                                    offset: float, spn: int) -> None:
    s = DB.get_message_by_name(message).get_signal_by_name(signal)
    assert (s.start, s.length, s.scale, s.offset, s.spn) == (start, length, scale, offset, spn)


def test_dm1_dtc_layout() -> None:
    dm1 = DB.get_message_by_name("DM1")
    layout = {s.name: (s.start, s.length) for s in dm1.signals if s.name.startswith("DTC1")}
    assert layout == {"DTC1_SPN_Low": (16, 16), "DTC1_FMI": (32, 5), "DTC1_SPN_High": (37, 3),
                      "DTC1_OccurrenceCount": (40, 7), "DTC1_SPN_ConversionMethod": (47, 1)}
    assert all(signal_role(dm1.get_signal_by_name(n), DB) == ROLE_RAW for n in layout)


SUPERSTRUCTURE = {
    # name: (sender SA, cycle ms, signals that must exist)
    "SSC_Suction": (0x80, 20, {"SuctionFanSpeed", "SuctionPressure", "FanDrivePressure", "NozzleHeight"}),
    "SSC_Brushes": (0x80, 50, {"LeftBrushSpeed", "RightBrushSpeed", "LeftBrushLowered", "RightBrushLowered"}),
    "SSC_HopperWater": (0x80, 100, {"HopperFillLevel", "HopperRaised", "TippingActive", "RearDoorClosed",
                                    "WaterTankLevel", "WaterPumpPressure"}),
    "SSC_Snow": (0x80, 50, {"AugerSpeed", "RotorSpeed", "PloughPosition", "ChuteAngle"}),
    "SSC_Equipment": (0x80, 100, {"SweeperHeadMounted", "SnowAttachmentMounted", "CabModeSelector",
                                  "EmergencyStop"}),
    "SSC_Status": (0x80, 100, {"SscActiveMode", "TransitionStep", "InterlockFlags", "SscFaultCode"}),
    "OBC_ModeCommand": (0x27, 100, {"RequestedMode"}),
    "OBC_Setpoints": (0x27, 50, {"FanSpeedSetpoint", "NozzleCmd", "BrushesCmd", "AugerSpeedSetpoint",
                                 "RotorSpeedSetpoint", "PloughCmd"}),
    "OBC_Heartbeat": (0x27, 50, {"ObcState"}),
}


@pytest.mark.parametrize("name", sorted(SUPERSTRUCTURE))
def test_superstructure_messages(name: str) -> None:
    sa, cycle, signals = SUPERSTRUCTURE[name]
    message = DB.get_message_by_name(name)
    info = INFO[name]
    assert source_address(message.frame_id) == sa
    assert info.pgn is not None and 0xFF00 <= info.pgn <= 0xFFFF  # proprietary B
    assert message.cycle_time == cycle
    assert signals <= {s.name for s in message.signals}
    # Every safety-relevant body message carries the counter and checksum of docs/can_protocol.md.
    assert info.safety_relevant
    counter = message.get_signal_by_name("Counter")
    checksum = message.get_signal_by_name("Checksum")
    assert (counter.start, counter.length, checksum.start, checksum.length) == (52, 4, 56, 8)
    assert (info.counter_signal, info.checksum_signal) == ("Counter", "Checksum")
    assert signal_role(counter, DB) == ROLE_COUNTER and signal_role(checksum, DB) == ROLE_CHECKSUM
    assert info.timeout_s == pytest.approx(max(3 * cycle / 1000, cycle / 1000 + 0.05))


def test_suction_timeout_is_70_ms_and_chassis_safety_flags() -> None:
    assert INFO["SSC_Suction"].timeout_s == pytest.approx(0.07)
    assert INFO["EEC1"].safety_relevant and INFO["CCVS1"].safety_relevant
    assert not INFO["ET1"].safety_relevant and INFO["TP_CM_BAM"].timeout_s is None


def _choices(message: str, signal: str) -> dict[int, str]:
    choices = DB.get_message_by_name(message).get_signal_by_name(signal).choices
    assert choices is not None
    return {int(k): str(v) for k, v in choices.items()}


def test_value_tables_and_roles() -> None:
    selector = set(_choices("SSC_Equipment", "CabModeSelector").values())
    assert selector >= {"OFF", "TRANSPORT", "SWEEPER", "SNOW", "REMOTE"}
    assert _choices("SSC_Snow", "PloughPosition") == {0: "RAISED", 1: "LOWERED", 2: "FLOAT", 3: "NOT_AVAILABLE"}
    assert set(_choices("SSC_Status", "SscActiveMode").values()) >= {"TRANSPORT", "SWEEPER", "SNOW", "SAFE"}
    assert signal_role(DB.get_message_by_name("EEC1").get_signal_by_name("EngSpeed"), DB) == ROLE_VALUE
    assert signal_role(DB.get_message_by_name("SSC_Status").get_signal_by_name("InterlockFlags"), DB) == ROLE_RAW


def test_diag_pages_are_multiplexed() -> None:
    diag = DB.get_message_by_name("SSC_Diag")
    assert diag.is_multiplexed()
    assert diag.get_signal_by_name("FanRunHours").multiplexer_ids == [1]
