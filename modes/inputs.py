"""`ModeInputs`: the snapshot of vehicle and superstructure values the mode machine decides on.

Every value is optional: `None` means missing, not available (J1939 NA/error), NaN or garbage, and every
predicate that reads a missing value fails (fail safe). `from_snapshot()` maps signal-store keys
(`"<Message>.<Signal>"`) into the dataclass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from modes.types import CabSelector, PloughPosition

#: CAN messages whose validity (timeout, counter, checksum) the machine needs: a stale one drives SAFE.
#: These are the received messages of `dbc/uniross.dbc` with `SafetyRelevant` = `Yes`.
SAFETY_INPUT_MESSAGES = frozenset(
    {
        "EEC1",
        "CCVS1",
        "SSC_Suction",
        "SSC_Brushes",
        "SSC_HopperWater",
        "SSC_Snow",
        "SSC_Equipment",
        "SSC_Status",
    }
)

FaultDemand = Literal["stow", "safe"]
_Kind = Literal["float", "state", "selector", "plough"]

#: field name -> (signal-store key, how to read it)
SIGNAL_MAP: dict[str, tuple[str, _Kind]] = {
    "vehicle_speed_kmh": ("CCVS1.WheelBasedVehicleSpeed", "float"),
    "parking_brake_set": ("CCVS1.ParkingBrakeSwitch", "state"),
    "engine_speed_rpm": ("EEC1.EngSpeed", "float"),
    "fan_speed_rpm": ("SSC_Suction.SuctionFanSpeed", "float"),
    "nozzle_lowered": ("SSC_Suction.NozzleLowered", "state"),
    "nozzle_height_mm": ("SSC_Suction.NozzleHeight", "float"),
    "left_brush_lowered": ("SSC_Brushes.LeftBrushLowered", "state"),
    "right_brush_lowered": ("SSC_Brushes.RightBrushLowered", "state"),
    "left_brush_speed_rpm": ("SSC_Brushes.LeftBrushSpeed", "float"),
    "right_brush_speed_rpm": ("SSC_Brushes.RightBrushSpeed", "float"),
    "water_spray_active": ("SSC_Brushes.WaterSprayActive", "state"),
    "hopper_fill_pct": ("SSC_HopperWater.HopperFillLevel", "float"),
    "hopper_raised": ("SSC_HopperWater.HopperRaised", "state"),
    "tipping_active": ("SSC_HopperWater.TippingActive", "state"),
    "rear_door_closed": ("SSC_HopperWater.RearDoorClosed", "state"),
    "auger_speed_rpm": ("SSC_Snow.AugerSpeed", "float"),
    "rotor_speed_rpm": ("SSC_Snow.RotorSpeed", "float"),
    "plough_position": ("SSC_Snow.PloughPosition", "plough"),
    "sweeper_head_mounted": ("SSC_Equipment.SweeperHeadMounted", "state"),
    "snow_attachment_mounted": ("SSC_Equipment.SnowAttachmentMounted", "state"),
    "emergency_stop": ("SSC_Equipment.EmergencyStop", "state"),
    "cab_selector": ("SSC_Equipment.CabModeSelector", "selector"),
    "ssc_heartbeat_ok": ("SSC_Status.HeartbeatOk", "state"),
}


def _number(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _read(value: object, kind: _Kind) -> float | bool | CabSelector | PloughPosition | None:
    number = _number(value)
    if number is None:
        return None
    if kind == "float":
        return number
    if not number.is_integer():
        return None
    code = int(number)
    if kind == "state":  # J1939 2-bit state: 0 off, 1 on, 2 error, 3 not available
        return {0: False, 1: True}.get(code)
    if kind == "selector":
        return CabSelector(code) if code in CabSelector._value2member_map_ else None
    return PloughPosition(code) if code in PloughPosition._value2member_map_ else None


@dataclass(frozen=True, slots=True)
class ModeInputs:
    """One control cycle's view of the vehicle. Missing values are `None` and fail every interlock."""

    vehicle_speed_kmh: float | None = None
    parking_brake_set: bool | None = None
    engine_speed_rpm: float | None = None
    fan_speed_rpm: float | None = None
    nozzle_lowered: bool | None = None
    nozzle_height_mm: float | None = None
    left_brush_lowered: bool | None = None
    right_brush_lowered: bool | None = None
    left_brush_speed_rpm: float | None = None
    right_brush_speed_rpm: float | None = None
    water_spray_active: bool | None = None
    hopper_fill_pct: float | None = None
    hopper_raised: bool | None = None
    tipping_active: bool | None = None
    rear_door_closed: bool | None = None
    auger_speed_rpm: float | None = None
    rotor_speed_rpm: float | None = None
    plough_position: PloughPosition | None = None
    sweeper_head_mounted: bool | None = None
    snow_attachment_mounted: bool | None = None
    emergency_stop: bool | None = None
    cab_selector: CabSelector | None = None
    ssc_heartbeat_ok: bool | None = None
    critical_dtc_active: bool | None = None
    serial_link_alive: bool = False
    #: names of safety-relevant messages that are not valid (timed out, counter or checksum failing)
    stale: frozenset[str] = field(default_factory=frozenset)
    #: active diagnostic faults demanding a mode change: (fault name, "stow" | "safe")
    fault_demands: frozenset[tuple[str, FaultDemand]] = field(default_factory=frozenset)

    @classmethod
    def from_snapshot(
        cls,
        values: Mapping[str, object],
        stale: Iterable[str],
        *,
        critical_dtc_active: bool | None,
        serial_link_alive: bool,
        fault_demands: Iterable[tuple[str, FaultDemand]] = (),
    ) -> ModeInputs:
        """Build the inputs from signal-store values keyed `"<Message>.<Signal>"`.

        `fault_demands`: any demand other than "stow" is read as "safe".
        `stale`: the safety-relevant messages (see `SAFETY_INPUT_MESSAGES`) whose `MessageValidity.valid` is
        False; every name given is taken as safety-relevant (fail safe). Absent keys, None, NaN, infinities,
        non-numbers and out-of-table codes all become None. `critical_dtc_active` None means unknown (fails
        the `no_critical_dtc` interlock).
        """
        fields = {name: _read(values.get(key), kind) for name, (key, kind) in SIGNAL_MAP.items()}
        # an unknown demand is read as "safe" (fail safe)
        demands: frozenset[tuple[str, FaultDemand]] = frozenset(
            (str(name), "stow" if demand == "stow" else "safe") for name, demand in fault_demands
        )
        return cls(
            **fields,  # type: ignore[arg-type]
            critical_dtc_active=critical_dtc_active,
            serial_link_alive=bool(serial_link_alive),
            stale=frozenset(stale),
            fault_demands=demands,
        )
