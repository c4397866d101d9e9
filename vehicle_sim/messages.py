"""Signal values of every message the simulated chassis and SSC send, read off the physics state.

One function per message; `message_values` dispatches by name. Values are physical (cantools scaling) and are
clipped to the DBC range by the caller's packer (``strict`` encode would reject out-of-range noise).
"""

from __future__ import annotations

from collections.abc import Callable

from vehicle_sim.physics import VehiclePhysics

FIRMWARE_VERSION = (1, 4, 2)
DIAG_PAGES = 4

Values = dict[str, float | int]


def _b(flag: bool) -> int:
    return 1 if flag else 0


def eec1(p: VehiclePhysics, _page: int) -> Values:
    s = p.state
    return {
        "EngTorqueMode": 0,
        "DriversDemandEngPercentTorque": round(s.engine_torque_pct),
        "ActualEngPercentTorque": round(s.engine_torque_pct),
        "EngSpeed": s.engine_rpm,
        "SrcAddrssOfCtrllngDvcForEngCtrl": 0,
        "EngStarterMode": 0,
        "EngDemandPercentTorque": round(s.engine_torque_pct),
    }


def ccvs1(p: VehiclePhysics, _page: int) -> Values:
    s, i = p.state, p.inputs
    return {
        "ParkingBrakeSwitch": _b(i.parking_brake),
        "WheelBasedVehicleSpeed": s.speed_kmh,
        "BrakeSwitch": _b(i.brake_pedal),
        "TwoSpeedAxleSwitch": 3,
        "CruiseCtrlPauseSwitch": 3,
        "ParkBrakeReleaseInhibitRq": 3,
        "CruiseCtrlActive": 0,
        "CruiseCtrlEnableSwitch": 0,
        "ClutchSwitch": 0,
    }


def et1(p: VehiclePhysics, _page: int) -> Values:
    s = p.state
    return {
        "EngCoolantTemp": round(s.coolant_c),
        "EngFuelTemp1": round(15.0 + 0.3 * (s.coolant_c - 15.0)),
        "EngOilTemp1": s.oil_c,
        "EngTurboOilTemp": s.oil_c + 5.0,
        "EngIntercoolerTemp": 35,
        "EngIntercoolerThermostatOpening": 40.0,
    }


def vep1(p: VehiclePhysics, _page: int) -> Values:
    s = p.state
    return {
        "NetBatteryCurrent": 5 if p.inputs.engine_running else -8,
        "AlternatorCurrent": round(s.alternator_a),
        "ChargingSystemPotential": s.battery_v + 0.2 if p.inputs.engine_running else 0.0,
        "BatteryPotential_PowerInput1": s.battery_v,
        "KeyswitchBatteryPotential": s.battery_v - 0.1,
    }


def ssc_suction(p: VehiclePhysics, _page: int) -> Values:
    s = p.state
    sensors = p.measured()
    return {
        "SuctionFanSpeed": sensors["fan_speed"],
        "SuctionPressure": round(sensors["suction_pressure"]),
        "FanDrivePressure": sensors["fan_drive_pressure"],
        "NozzleHeight": round(s.nozzle_height_mm),
        "SuctionFanState": s.fan_state,
        "NozzleLowered": _b(p.nozzle_lowered),
    }


def ssc_brushes(p: VehiclePhysics, _page: int) -> Values:
    s = p.state
    lowered = _b(s.brush_pos >= 0.99)
    return {
        "LeftBrushSpeed": round(s.brush_rpm),
        "RightBrushSpeed": round(s.brush_rpm),
        "LeftBrushLowered": lowered,
        "RightBrushLowered": lowered,
        "WaterSprayActive": _b(s.spraying),
    }


def ssc_hopper_water(p: VehiclePhysics, _page: int) -> Values:
    s, i = p.state, p.inputs
    return {
        "HopperFillLevel": s.hopper_fill_pct,
        "HopperRaised": _b(p.hopper_raised),
        "TippingActive": _b(p.tipping),
        "RearDoorClosed": _b(i.rear_door_closed),
        "WaterTankLevel": s.water_tank_pct,
        "WaterPumpPressure": s.water_pump_bar,
    }


def ssc_snow(p: VehiclePhysics, _page: int) -> Values:
    s = p.state
    return {
        "AugerSpeed": s.auger_rpm,
        "RotorSpeed": s.rotor_rpm,
        "PloughPosition": s.plough_reported,
        "ChuteAngle": round(s.chute_deg),
    }


def ssc_equipment(p: VehiclePhysics, _page: int) -> Values:
    i = p.inputs
    return {
        "SweeperHeadMounted": _b(i.sweeper_head_mounted),
        "SnowAttachmentMounted": _b(i.snow_attachment_mounted),
        "EmergencyStop": _b(i.e_stop),
        "CabModeSelector": i.cab_selector,
    }


def ssc_status(p: VehiclePhysics, _page: int) -> Values:
    s = p.state
    return {
        "SscActiveMode": s.active_mode,
        "TransitionStep": 0,
        "InterlockFlags": s.interlocks,
        "SscFaultCode": s.fault_code,
        "HeartbeatOk": _b(s.heartbeat_ok),
        "ActuatorsEnabled": _b(s.actuators_enabled),
    }


def ssc_diag(p: VehiclePhysics, page: int) -> Values:
    s = p.state
    page %= DIAG_PAGES
    if page == 0:
        major, minor, patch = FIRMWARE_VERSION
        return {"DiagPage": 0, "FirmwareMajor": major, "FirmwareMinor": minor, "FirmwarePatch": patch}
    hours = {1: ("FanRunHours", s.fan_hours), 2: ("SweepRunHours", s.sweep_hours), 3: ("SnowRunHours", s.snow_hours)}
    name, value = hours[page]
    return {"DiagPage": page, name: value}


BUILDERS: dict[str, Callable[[VehiclePhysics, int], Values]] = {
    "EEC1": eec1,
    "CCVS1": ccvs1,
    "ET1": et1,
    "VEP1": vep1,
    "SSC_Suction": ssc_suction,
    "SSC_Brushes": ssc_brushes,
    "SSC_HopperWater": ssc_hopper_water,
    "SSC_Snow": ssc_snow,
    "SSC_Equipment": ssc_equipment,
    "SSC_Status": ssc_status,
    "SSC_Diag": ssc_diag,
}


def message_values(name: str, physics: VehiclePhysics, page: int = 0) -> Values:
    with physics.lock:
        return BUILDERS[name](physics, page)
