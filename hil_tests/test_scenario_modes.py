"""Scenario: the full mode cycle TRANSPORT -> SWEEPER -> TRANSPORT -> SNOW -> TRANSPORT through the REST API, each
actuator confirmed by the simulated vehicle's CAN feedback, and the speed interlock refusing SWEEPER."""

from __future__ import annotations

import pytest

from hil_tests.scenario_support import Rig, wait_until

pytestmark = pytest.mark.hil


def test_speed_interlock_refuses_sweeper(rig: Rig) -> None:
    rig.back_to_transport()
    rig.sim_set(speed_kmh=20, parking_brake=False)
    wait_until(lambda: (rig.values().get("CCVS1.WheelBasedVehicleSpeed") or 0) > 15 or None, 20, "speed > 15 km/h")
    refused = rig.request_mode("SWEEPER")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert not body["accepted"] and body["state"] == "TRANSPORT"
    assert "speed_engage" in {r["name"] for r in body["reasons"]}, body
    assert rig.events(5)[0]["kind"] == "refused"
    rig.sim_set(speed_kmh=0, parking_brake=True)
    wait_until(lambda: rig.values()["CCVS1.WheelBasedVehicleSpeed"] < 0.5 or None, 30, "vehicle stopped")
    assert rig.state() == "TRANSPORT"


def test_full_mode_cycle(rig: Rig) -> None:
    rig.back_to_transport()
    assert rig.request_mode("SWEEPER").status_code == 200
    rig.wait_state("SWEEPER", 40)
    values = rig.values()
    assert values["SSC_Suction.SuctionFanSpeed"] > 2000 and values["SSC_Suction.NozzleLowered"] == 1, values
    assert values["serial.fan_speed"] > 2000  # the serial stream agrees with CAN
    commands = rig.sim_state()["commands"]
    assert commands["nozzle_lower"] and commands["fan_setpoint"] > 2000, commands  # as the vehicle received them

    assert rig.request_mode("TRANSPORT").status_code == 200
    rig.wait_state("TRANSPORT", 40)
    wait_until(lambda: rig.values()["SSC_Suction.SuctionFanSpeed"] < 300 or None, 20, "fan run down")

    refused = rig.request_mode("SNOW")  # the sweeper head is still mounted
    assert refused.status_code == 409 and "snow_attachment_mounted" in {r["name"] for r in refused.json()["reasons"]}
    rig.sim_set(sweeper_head_mounted=False, snow_attachment_mounted=True)
    wait_until(lambda: rig.request_mode("SNOW").status_code == 200, 10, "SNOW accepted")
    rig.wait_state("SNOW", 40)
    values = rig.values()
    assert values["SSC_Snow.RotorSpeed"] > 100 and values["SSC_Suction.SuctionFanSpeed"] < 300, values

    assert rig.request_mode("TRANSPORT").status_code == 200
    rig.wait_state("TRANSPORT", 40)
    rig.sim_set(sweeper_head_mounted=True, snow_attachment_mounted=False)
    kinds = [e["kind"] for e in rig.events(100)]
    assert kinds.count("accepted") >= 4 and "refused" in kinds, kinds
