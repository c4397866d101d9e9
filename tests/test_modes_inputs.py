"""ModeInputs.from_snapshot: store keys -> fields, missing/NA/garbage -> None (fail safe)."""

import math

import pytest

from modes import SIGNAL_MAP, CabSelector, ModeInputs, PloughPosition


def full_snapshot() -> dict[str, object]:
    return {
        "CCVS1.WheelBasedVehicleSpeed": 3.5,
        "CCVS1.ParkingBrakeSwitch": 1,
        "EEC1.EngSpeed": 812.5,
        "SSC_Suction.SuctionFanSpeed": 2400.25,
        "SSC_Suction.NozzleLowered": 1,
        "SSC_Suction.NozzleHeight": 17.0,
        "SSC_Brushes.LeftBrushLowered": 1,
        "SSC_Brushes.RightBrushLowered": 0,
        "SSC_Brushes.LeftBrushSpeed": 110.0,
        "SSC_Brushes.RightBrushSpeed": 0.0,
        "SSC_Brushes.WaterSprayActive": 1,
        "SSC_HopperWater.HopperFillLevel": 42.4,
        "SSC_HopperWater.HopperRaised": 0,
        "SSC_HopperWater.TippingActive": 0,
        "SSC_HopperWater.RearDoorClosed": 1,
        "SSC_Snow.AugerSpeed": 0.0,
        "SSC_Snow.RotorSpeed": 0.0,
        "SSC_Snow.PloughPosition": 2,
        "SSC_Equipment.SweeperHeadMounted": 1,
        "SSC_Equipment.SnowAttachmentMounted": 0,
        "SSC_Equipment.EmergencyStop": 0,
        "SSC_Equipment.CabModeSelector": 4,
        "SSC_Status.HeartbeatOk": 1,
    }


def test_every_field_is_read_from_its_store_key() -> None:
    i = ModeInputs.from_snapshot(full_snapshot(), [], critical_dtc_active=False, serial_link_alive=True)
    assert i.vehicle_speed_kmh == 3.5
    assert i.parking_brake_set is True
    assert i.engine_speed_rpm == 812.5
    assert i.fan_speed_rpm == 2400.25
    assert i.nozzle_lowered is True and i.nozzle_height_mm == 17.0
    assert i.left_brush_lowered is True and i.right_brush_lowered is False
    assert i.left_brush_speed_rpm == 110.0 and i.right_brush_speed_rpm == 0.0
    assert i.water_spray_active is True
    assert i.hopper_fill_pct == 42.4 and i.hopper_raised is False and i.tipping_active is False
    assert i.rear_door_closed is True
    assert i.auger_speed_rpm == 0.0 and i.rotor_speed_rpm == 0.0
    assert i.plough_position is PloughPosition.FLOAT
    assert i.sweeper_head_mounted is True and i.snow_attachment_mounted is False
    assert i.emergency_stop is False
    assert i.cab_selector is CabSelector.REMOTE
    assert i.ssc_heartbeat_ok is True
    assert i.critical_dtc_active is False and i.serial_link_alive is True
    assert i.stale == frozenset() and i.fault_demands == frozenset()


def test_signal_map_keys_exist_in_the_dbc() -> None:
    cantools = pytest.importorskip("cantools")
    db = cantools.database.load_file("dbc/uniross.dbc")
    for key, _kind in SIGNAL_MAP.values():
        message, signal = key.split(".")
        assert signal in {s.name for s in db.get_message_by_name(message).signals}, key


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, "garbage", object(), [1]])
def test_missing_or_garbage_values_become_none(bad: object) -> None:
    values = full_snapshot()
    for key in values:
        values[key] = bad
    i = ModeInputs.from_snapshot(values, [], critical_dtc_active=None, serial_link_alive=False)
    for name in SIGNAL_MAP:
        assert getattr(i, name) is None, name


def test_absent_keys_become_none() -> None:
    i = ModeInputs.from_snapshot({}, [], critical_dtc_active=False, serial_link_alive=True)
    assert all(getattr(i, name) is None for name in SIGNAL_MAP)


@pytest.mark.parametrize("raw", [2, 3, 0.5, -1])
def test_j1939_error_and_not_available_states_become_none(raw: float) -> None:
    values = full_snapshot()
    values["SSC_Equipment.EmergencyStop"] = raw
    values["CCVS1.ParkingBrakeSwitch"] = raw
    i = ModeInputs.from_snapshot(values, [], critical_dtc_active=False, serial_link_alive=True)
    assert i.emergency_stop is None and i.parking_brake_set is None


@pytest.mark.parametrize(("raw", "expected"), [(0, CabSelector.OFF), (4, CabSelector.REMOTE), (5, None), (15, None)])
def test_selector_codes_outside_the_table_become_none(raw: int, expected: CabSelector | None) -> None:
    values = full_snapshot()
    values["SSC_Equipment.CabModeSelector"] = raw
    i = ModeInputs.from_snapshot(values, [], critical_dtc_active=False, serial_link_alive=True)
    assert i.cab_selector is expected


def test_plough_not_available_becomes_none() -> None:
    values = full_snapshot()
    values["SSC_Snow.PloughPosition"] = 3
    i = ModeInputs.from_snapshot(values, [], critical_dtc_active=False, serial_link_alive=True)
    assert i.plough_position is None


def test_stale_and_fault_demands_are_kept_unknown_demand_reads_safe() -> None:
    i = ModeInputs.from_snapshot(
        full_snapshot(),
        ["SSC_Suction", "CCVS1"],
        critical_dtc_active=True,
        serial_link_alive=True,
        fault_demands=[("clog", "stow"), ("fan_imbalance", "bogus")],  # type: ignore[list-item]
    )
    assert i.stale == frozenset({"SSC_Suction", "CCVS1"})
    assert i.fault_demands == frozenset({("clog", "stow"), ("fan_imbalance", "safe")})
    assert i.critical_dtc_active is True
