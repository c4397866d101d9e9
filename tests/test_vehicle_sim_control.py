"""The simulator's HTTP control server (JSON over 127.0.0.1) and run_simulator's wiring."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from firmware_bridge.can_bus import BusConfig
from vehicle_sim.can_node import SimulatedVehicle
from vehicle_sim.control import ControlServer
from vehicle_sim.runner import run_simulator


def call(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def server() -> Iterator[ControlServer]:
    vehicle = SimulatedVehicle(BusConfig(interface="virtual", channel=f"ctl-{uuid.uuid4().hex[:8]}")).start()
    srv = ControlServer(vehicle).start()
    yield srv
    srv.close()
    vehicle.close()


def test_set_and_state(server: ControlServer) -> None:
    status, body = call(
        server.url + "/set", {"speed_kmh": 12, "parking_brake": False, "e_stop": True, "cab_selector": 4}
    )
    assert status == 200
    assert body["applied"]["speed_target_kmh"] == 12
    time.sleep(0.3)
    status, state = call(server.url + "/state")
    assert status == 200
    assert state["inputs"]["e_stop"] is True and state["inputs"]["cab_selector"] == 4
    assert 0.5 < state["state"]["speed_kmh"] < 12
    assert state["scenario"] == "controlled"
    assert set(state["truth"]) == {"suction_pressure", "fan_speed", "fan_drive_pressure", "nozzle_dp"}


def test_set_dtcs_and_refuse_step(server: ControlServer) -> None:
    status, _ = call(
        server.url + "/set", {"dtcs": [{"spn": 110, "fmi": 0}, {"spn": 190, "fmi": 2}], "refuse_step": "nozzle"}
    )
    assert status == 200
    assert [d.spn for d in server.vehicle.physics.inputs.dtcs] == [110, 190]
    assert server.vehicle.physics.inputs.refuse_step == "nozzle"


@pytest.mark.parametrize(
    "body", [{"bogus": 1}, {"e_stop": "yes"}, {"cab_selector": 9}, {"refuse_step": "warp_drive"}, {"dtcs": [{}]}]
)
def test_bad_settings_are_400(server: ControlServer, body: dict[str, Any]) -> None:
    status, answer = call(server.url + "/set", body)
    assert status == 400 and "error" in answer


def test_fault_and_counters(server: ControlServer) -> None:
    status, _ = call(server.url + "/fault", {"kind": "corrupt_checksum", "message": "SSC_Suction", "count": 5})
    assert status == 200
    assert call(server.url + "/fault", {"kind": "drop", "message": "NoSuchMessage", "count": 1})[0] == 400
    assert call(server.url + "/fault", {"kind": "meteor", "message": "SSC_Suction"})[0] == 400
    time.sleep(0.25)
    status, counters = call(server.url + "/counters")
    assert status == 200
    assert counters["injected"]["corrupt_checksum"] == {"SSC_Suction": 5}
    assert counters["sent"]["SSC_Suction"] >= 10
    assert call(server.url + "/nowhere")[0] == 404


def test_run_simulator_blocks_until_stopped() -> None:
    stop = threading.Event()
    ready: list[ControlServer] = []
    result: dict[str, Any] = {}

    def run() -> None:
        result.update(
            run_simulator(
                BusConfig(interface="virtual", channel=f"run-{uuid.uuid4().hex[:8]}"),
                control_port=0,
                scenario="drive",
                stop_event=stop,
                on_ready=lambda vehicle, control, firmware: ready.append(control),
            )
        )

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 2
    while not ready and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ready, "simulator did not come up"
    assert call(ready[0].url + "/state")[1]["scenario"] == "drive"
    time.sleep(0.2)
    stop.set()
    thread.join(3)
    assert not thread.is_alive()
    assert result["sent"]["EEC1"] >= 5


def test_serial_routes_without_firmware_are_409(server: ControlServer) -> None:
    assert call(server.url + "/serial/stall", {"seconds": 1})[0] == 409
    assert call(server.url + "/serial")[0] == 409


def test_serial_stall_stops_the_firmware_simulator() -> None:
    stop = threading.Event()
    ready: list[tuple[ControlServer, Any]] = []
    thread = threading.Thread(target=run_simulator, kwargs={
        "bus_config": BusConfig(interface="virtual", channel=f"stall-{uuid.uuid4().hex[:8]}"),
        "control_port": 0, "serial_url": "pty", "stop_event": stop,
        "on_ready": lambda vehicle, control, firmware: ready.append((control, firmware))})
    thread.start()
    try:
        deadline = time.monotonic() + 3
        while not ready and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready, "simulator did not come up"
        control, firmware = ready[0]
        for bad in ({"seconds": 0}, {"seconds": -1}, {"seconds": 3600}, {}):
            assert call(control.url + "/serial/stall", bad)[0] == 400, bad
        time.sleep(0.1)
        assert call(control.url + "/serial/stall", {"seconds": 0.4}) == (200, {"stalled_s": 0.4})
        time.sleep(0.05)  # a batch being written when the stall began may still go out
        during = firmware.stats()["batches_sent"]
        time.sleep(0.25)
        assert firmware.stats()["batches_sent"] == during  # nothing sent while stalled
        time.sleep(0.3)
        status, serial = call(control.url + "/serial")
        assert status == 200 and serial["injected"]["stalls"] == 1
        assert serial["injected"]["stall_lost_samples"] > 0
        assert serial["stats"]["batches_sent"] > during  # sending again after the stall
    finally:
        stop.set()
        thread.join(3)
