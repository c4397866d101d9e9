"""A synthetic trial: plausible UniROSS bus traffic (every DBC message at its cycle time, packed by `CanPacker`).

Used by the tests, the offline-decode benchmark and the docs of the field tools; it is not a vehicle simulation
(``vehicle_sim`` is). The trial drives TRANSPORT -> SWEEPER (with one clog: the suction vacuum rises far above
what the fan speed predicts, the signature of a blocked hose) -> TRANSPORT, and the engine raises one DM1 DTC
half way, so that a report over it has something to say.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

import can
from cantools.database.can import Database

from firmware_bridge.dbc_database import all_message_info
from firmware_bridge.j1939 import with_source
from firmware_bridge.packer import CanPacker
from modes import Mode

ENGINE_SA = 0x00
SSC_SA = 0x80
OBC_SA = 0x27
EVENT_ONLY = ("TP_CM_BAM", "TP_DT_BAM")  # transport protocol frames have no cycle: not generated here



@dataclass(frozen=True)
class TrialPlan:
    """Time line (seconds from ``t0``) of the synthetic trial."""

    duration: float = 60.0
    sweeper_from: float = 10.0
    sweeper_to: float = 50.0
    clog_from: float = 30.0
    clog_to: float = 36.0
    dtc_from: float = 20.0
    dtc_spn: int = 110
    dtc_fmi: int = 16
    t0: float = 1_700_000_000.0


def _sender_address(senders: list[str]) -> int:
    if "SSC" in senders:
        return SSC_SA
    if "OBC" in senders:
        return OBC_SA
    return ENGINE_SA


def signal_values(name: str, t: float, plan: TrialPlan) -> dict[str, float | int]:
    """The physical values of message ``name`` at trial time ``t`` (unlisted signals are 0)."""
    sweeping = plan.sweeper_from <= t < plan.sweeper_to
    clogged = sweeping and plan.clog_from <= t < plan.clog_to
    fan = 2400.0 if sweeping else 0.0
    if name == "CCVS1":
        return {"WheelBasedVehicleSpeed": 4.0 if sweeping else 30.0 + 0.25 * (t % 20), "ParkingBrakeSwitch": 0}
    if name == "EEC1":
        return {"EngSpeed": 1500.0 if sweeping else 900.0, "ActualEngPercentTorque": 40}
    if name == "ET1":
        return {"EngCoolantTemp": 80 + int(t) % 10}
    if name == "VEP1":
        return {"BatteryPotential_PowerInput1": 27.5, "KeyswitchBatteryPotential": 27.5}
    if name == "DM1":
        if t >= plan.dtc_from:
            return {"AmberWarningLampStatus": 1, "DTC1_SPN_Low": plan.dtc_spn & 0xFFFF,
                    "DTC1_SPN_High": plan.dtc_spn >> 16, "DTC1_FMI": plan.dtc_fmi, "DTC1_OccurrenceCount": 1}
        return {}
    if name == "SSC_Suction":
        pressure = -6500.0 if clogged else (-2600.0 if sweeping else 0.0)
        return {"SuctionFanSpeed": fan, "SuctionPressure": pressure, "FanDrivePressure": 200 if sweeping else 0,
                "NozzleHeight": 20 if sweeping else 200, "SuctionFanState": 2 if sweeping else 0,
                "NozzleLowered": int(sweeping)}
    if name == "SSC_Brushes":
        return {"LeftBrushSpeed": 120 if sweeping else 0, "RightBrushSpeed": 120 if sweeping else 0,
                "LeftBrushLowered": int(sweeping), "RightBrushLowered": int(sweeping)}
    if name == "SSC_HopperWater":
        return {"HopperFillLevel": min(100.0, 10.0 + 0.8 * max(0.0, min(t, plan.sweeper_to) - plan.sweeper_from)),
                "RearDoorClosed": 1, "WaterTankLevel": 80.0}
    if name == "SSC_Equipment":
        return {"SweeperHeadMounted": 1, "CabModeSelector": 2 if sweeping else 1}
    if name == "SSC_Status":
        return {"SscActiveMode": int(Mode.SWEEPER if sweeping else Mode.TRANSPORT), "HeartbeatOk": 1,
                "ActuatorsEnabled": int(sweeping), "SscFaultCode": 7 if clogged else 0}
    if name == "SSC_Diag":
        return {"DiagPage": 0, "FirmwareMajor": 1, "FirmwareMinor": 4, "FirmwarePatch": 2}
    if name == "OBC_ModeCommand":
        return {"RequestedMode": int(Mode.SWEEPER if sweeping else Mode.TRANSPORT), "RequestSource": 1}
    if name == "OBC_Setpoints":
        return {"FanSpeedSetpoint": fan, "NozzleCmd": int(sweeping), "BrushesCmd": int(sweeping),
                "WaterCmd": int(sweeping)}
    return {}


def trial_messages(db: Database, plan: TrialPlan | None = None) -> Iterator[can.Message]:
    """All frames of the trial in time order (each periodic message at its ``GenMsgCycleTime``)."""
    plan = plan or TrialPlan()
    packers = {sa: CanPacker(db) for sa in (ENGINE_SA, SSC_SA, OBC_SA)}
    heap: list[tuple[float, str, int]] = []
    for info in all_message_info(db).values():
        if info.cycle_time_s and info.name not in EVENT_ONLY:
            heap.append((0.0, info.name, _sender_address(info.message.senders)))
    heapq.heapify(heap)
    cycles = {info.name: info.cycle_time_s or 0.0 for info in all_message_info(db).values()}
    while heap:
        t, name, sa = heapq.heappop(heap)
        if t >= plan.duration:
            continue
        packer = packers[sa]
        msg = packer.make_message(name, signal_values(name, t, plan), timestamp=plan.t0 + t)
        if packer.info(name).is_j1939:
            msg.arbitration_id = with_source(msg.arbitration_id, sa)
        msg.channel = "can0"
        yield msg
        heapq.heappush(heap, (round(t + cycles[name], 6), name, sa))


def frames_per_second(db: Database) -> float:
    """Frames per second of the synthetic traffic (sum of 1 / cycle time)."""
    return sum(1.0 / info.cycle_time_s for info in all_message_info(db).values()
               if info.cycle_time_s and info.name not in EVENT_ONLY)
