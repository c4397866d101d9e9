"""REST contracts of the telemetry API, served by real uvicorn over the REAL service (`uniross.service.Service`
seen through `ServiceView`) with the simulated vehicle on a python-can virtual bus and the firmware simulator on a pty.

Read-only tests share one service per module; tests that change the vehicle or the mode get a fresh one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from telemetry.api.testing import ENGINEER_TOKEN, RunningApi, running_api, wait_for

ENGINEER = RunningApi.bearer(ENGINEER_TOKEN)


@pytest.fixture(scope="module")
def api() -> Iterator[RunningApi]:
    with running_api() as running:
        yield running


@pytest.fixture()
def fresh() -> Iterator[RunningApi]:
    """A service of its own, for tests that change the simulated vehicle or the mode."""
    with running_api() as running:
        yield running


def client_for(api: RunningApi) -> httpx.Client:
    return httpx.Client(base_url=api.base_url, timeout=5.0)


@pytest.fixture()
def client(api: RunningApi) -> Iterator[httpx.Client]:
    with client_for(api) as c:
        yield c


def strict_json(text: str) -> object:
    def no_constant(name: str) -> object:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constant)


def snapshot(c: httpx.Client) -> dict[str, dict[str, Any]]:
    return {s["key"]: s for s in c.get("/api/v1/snapshot").json()["signals"]}


# ---- signals -------------------------------------------------------------------------------------------------
def test_snapshot_has_the_dbc_and_serial_signals_with_units_validity_and_age(
    client: httpx.Client, api: RunningApi
) -> None:
    body = client.get("/api/v1/snapshot").json()
    by_key = {s["key"]: s for s in body["signals"]}
    assert set(by_key) == set(api.service.signal_keys())
    speed = by_key["CCVS1.WheelBasedVehicleSpeed"]
    assert speed["unit"] == "km/h" and speed["valid"] is True and speed["value"] == 0  # parked demo truck
    suction = by_key["SSC_Suction.SuctionPressure"]
    assert suction["unit"] == "Pa" and suction["valid"] is True and -200 < suction["value"] <= 0  # fan idle
    assert by_key["EEC1.EngSpeed"]["unit"] == "rpm" and by_key["EEC1.EngSpeed"]["value"] > 400  # engine running
    serial = by_key["serial.suction_pressure"]
    assert serial["unit"] == "Pa" and serial["valid"] is True and 0 <= serial["age_s"] < 1.0
    assert math.isclose(serial["timestamp"] + serial["age_s"], body["now"], abs_tol=0.5)


def test_never_received_and_non_finite_values_are_null_and_invalid(client: httpx.Client) -> None:
    signals = strict_json(client.get("/api/v1/snapshot").text)["signals"]  # type: ignore[index]
    by_key = {s["key"]: s for s in signals}
    # the OBC's own transmit messages are in the DBC but never received: no value yet
    heartbeat = by_key["OBC_Heartbeat.ObcState"]
    assert heartbeat["value"] is None and heartbeat["valid"] is False and heartbeat["age_s"] is None
    assert all(s["valid"] is False for s in signals if s["value"] is None)


def test_history_of_serial_suction_pressure_is_decimated_and_within_range(
    client: httpx.Client, api: RunningApi
) -> None:
    url = "/api/v1/signals/serial.suction_pressure/history"

    def history() -> dict[str, Any] | None:
        body = client.get(url, params={"t0": api.service.now() - 30, "max_points": 5000}).json()
        return body if len(body["t"]) > 20 else None  # the serial stream is stored at the telemetry rate

    full = wait_for(history, 3.0, "serial history")
    now = api.service.now()
    assert full["unit"] == "Pa" and len(full["t"]) == len(full["v"])
    assert full["t"] == sorted(full["t"]) and all(now - 30 <= t <= now for t in full["t"])
    r = client.get(url, params={"t0": now - 30, "t1": now, "max_points": 4})
    assert r.status_code == 200
    body = r.json()
    assert 0 < len(body["t"]) == len(body["v"]) <= 4
    assert all(now - 30 <= t <= now for t in body["t"])


def test_history_unknown_key_is_404_and_bad_range_is_422(client: httpx.Client) -> None:
    r = client.get("/api/v1/signals/NoSuch.Signal/history")
    assert r.status_code == 404 and r.json()["code"] == "unknown_signal"
    r = client.get("/api/v1/signals/serial.fan_speed/history", params={"t0": 10, "t1": 5})
    assert r.status_code == 422 and "t0" in r.json()["message"]
    r = client.get("/api/v1/signals/serial.fan_speed/history", params={"max_points": 1})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "max_points"]


# ---- faults --------------------------------------------------------------------------------------------------
def test_healthy_truck_has_no_faults_and_unknown_ack_is_404(client: httpx.Client) -> None:
    assert client.get("/api/v1/faults").json() == {"active": [], "recent": [], "dtcs": []}
    r = client.post("/api/v1/faults/no_such_fault/ack", headers=ENGINEER)
    assert r.status_code == 404


def test_dm1_dtcs_of_the_vehicle_are_listed_and_cleared(fresh: RunningApi) -> None:
    with client_for(fresh) as c:
        fresh.set_vehicle(dtcs=[{"spn": 110, "fmi": 0, "occurrence": 3}, {"spn": 100, "fmi": 1, "occurrence": 1}])
        dtcs = wait_for(lambda: c.get("/api/v1/faults").json()["dtcs"], 5.0, "DM1 DTCs")
        assert {(d["spn"], d["fmi"], d["occurrence_count"]) for d in dtcs} == {(110, 0, 3), (100, 1, 1)}
        assert all(d["source_address"] == 0 for d in dtcs)  # the engine ECU sends DM1
        assert dtcs[0]["lamps"]["amber_warning"] == 1
        fresh.set_vehicle(dtcs=[])
        wait_for(lambda: not c.get("/api/v1/faults").json()["dtcs"], 5.0, "DTCs cleared")


# ---- modes ---------------------------------------------------------------------------------------------------
def test_mode_status_has_the_interlock_table(client: httpx.Client) -> None:
    body = client.get("/api/v1/mode").json()
    assert body["state"] == "TRANSPORT" and body["cab_selector"] == "REMOTE" and body["transition_step"] is None
    lights = {i["name"]: i for i in body["interlocks"]}
    assert lights["SWEEPER.engine_running"]["ok"] is True and lights["SWEEPER.sweeper_head_mounted"]["ok"] is True
    assert lights["SNOW.snow_attachment_mounted"]["ok"] is False  # the demo truck carries the sweeper head
    assert all(isinstance(i["ok"], bool) and i["text"] for i in body["interlocks"])


def test_snow_refused_with_the_real_reason_and_audited_with_the_user(client: httpx.Client) -> None:
    r = client.post("/api/v1/mode", json={"target": "SNOW", "acknowledge": False}, headers=ENGINEER)
    assert r.status_code == 409
    body = r.json()
    assert body["accepted"] is False and body["state"] == "TRANSPORT"
    assert "snow_attachment_mounted" in {reason["name"] for reason in body["reasons"]}
    assert all(reason["name"] and reason["text"] for reason in body["reasons"])
    events = client.get("/api/v1/mode/events", params={"limit": 5}).json()["events"]
    assert events[0]["kind"] == "refused" and events[0]["reasons"] == body["reasons"]
    assert events[0]["source"] == "remote" and events[0]["user"].startswith("engineer")
    # the audit trail shows the state the truck stayed in, and what was asked for
    assert [(e["kind"], e["state"], e["target"]) for e in events[:2]] == [
        ("refused", "TRANSPORT", "SNOW"), ("request", "TRANSPORT", "SNOW")]
    assert client.get("/api/v1/mode").json()["last_refusal"]["reasons"] == body["reasons"]


def test_sweeper_sequence_runs_and_a_clog_fault_is_acknowledged(fresh: RunningApi) -> None:
    with client_for(fresh) as c:
        r = c.post("/api/v1/mode", json={"target": "SWEEPER"}, headers=ENGINEER)
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": True, "state": "TO_SWEEPER", "reasons": []}
        status = c.get("/api/v1/mode").json()
        assert status["state"] == "TO_SWEEPER" and status["target"] == "SWEEPER" and status["transition_step"]
        accepted = next(e for e in c.get("/api/v1/mode/events").json()["events"] if e["kind"] == "accepted")
        assert (accepted["state"], accepted["target"]) == ("TO_SWEEPER", "SWEEPER")
        fresh.wait_state("SWEEPER")
        snap = snapshot(c)
        assert snap["SSC_Suction.SuctionFanSpeed"]["value"] > 2000 and snap["serial.fan_speed"]["value"] > 2000
        # a blocked hose: the hot loop's clog diagnosis raises a named fault
        fresh.set_vehicle(clog=0.9)
        active = wait_for(lambda: c.get("/api/v1/faults").json()["active"], 6.0, "the clog fault")
        assert [f["name"] for f in active] == ["suction_clog"]
        assert active[0]["acknowledged"] is False and active[0]["severity"] == "warning" and active[0]["text"]
        r = c.post("/api/v1/faults/suction_clog/ack", headers=ENGINEER)
        assert r.status_code == 200 and r.json() == {"name": "suction_clog", "acknowledged": True}
        assert c.get("/api/v1/faults").json()["active"][0]["acknowledged"] is True


def test_safe_is_left_only_by_an_acknowledged_request(fresh: RunningApi) -> None:
    with client_for(fresh) as c:
        fresh.set_vehicle(e_stop=True)
        fresh.wait_state("SAFE", timeout=3.0)
        r = c.post("/api/v1/mode", json={"target": "TRANSPORT"}, headers=ENGINEER)
        assert r.status_code == 409 and r.json()["state"] == "SAFE"
        assert {x["name"] for x in r.json()["reasons"]} == {"safe_requires_acknowledge"}
        r = c.post("/api/v1/mode", json={"target": "TRANSPORT", "acknowledge": True}, headers=ENGINEER)
        assert r.status_code == 409 and "emergency_stop" in {x["name"] for x in r.json()["reasons"]}
        fresh.set_vehicle(e_stop=False)

        def acknowledged_exit() -> dict[str, Any] | None:
            resp = c.post("/api/v1/mode", json={"target": "TRANSPORT", "acknowledge": True}, headers=ENGINEER)
            return resp.json() if resp.status_code == 200 else None

        accepted = wait_for(acknowledged_exit, 5.0, "acknowledged exit")
        assert accepted["state"] in {"TO_TRANSPORT", "TRANSPORT"}
        fresh.wait_state("TRANSPORT")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"target": "PARTY"}, "body.target"),
        ({}, "body.target"),
        ({"target": "SNOW", "acknowledge": "maybe"}, "body.acknowledge"),
        ({"target": "SNOW", "extra": 1}, "body.extra"),
        ([1, 2], "body"),
    ],
)
def test_bad_mode_bodies_are_422_with_a_clear_message(client: httpx.Client, body: object, where: str) -> None:
    r = client.post("/api/v1/mode", json=body, headers=ENGINEER)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error" and where in r.json()["message"]


def test_malformed_json_is_422(client: httpx.Client) -> None:
    headers = {**ENGINEER, "content-type": "application/json"}
    r = client.post("/api/v1/mode", content=b"{not json", headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


# ---- health --------------------------------------------------------------------------------------------------
def test_health_counters_probes_and_detail(client: httpx.Client) -> None:
    health = client.get("/api/v1/health").json()
    bus = health["bus"]
    assert bus["alive"] is True and bus["frames_total"] > 0 and bus["frames_per_s"] > 20
    assert 0 < bus["bus_load_pct"] < 100 and bus["decoder_rejects"] == {}
    assert bus["errors"]["bus_off"] == 0 and bus["errors"]["checksum"] == 0
    messages = {m["name"]: m for m in bus["messages"]}
    assert messages["CCVS1"]["valid"] is True and messages["SSC_Suction"]["last_rx_age_s"] < 0.5
    assert health["serial"]["connected"] is True and health["serial"]["counters"]["frames"] > 0
    loop = health["loop"]
    assert loop["cycles"] > 0 and loop["budget_s"] == pytest.approx(0.05) and loop["thread_alive"] is True
    assert loop["cycle_p50_s"] <= loop["cycle_p99_s"] <= loop["cycle_max_s"]
    live = client.get("/healthz").json()
    assert live["alive"] is True and live["loop_thread_alive"] is True and live["now"] > 0
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "reasons": []}


def test_probes_fail_with_reasons_when_bus_silent_and_loop_dead() -> None:
    # the real service on a bus nobody talks on, its threads never started
    with running_api(sim=False, start=False) as idle, client_for(idle) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        reasons = r.json()["reasons"]
        assert "no CAN traffic received" in reasons and "control loop not running" in reasons
        r = c.get("/healthz")
        assert r.status_code == 503 and r.json()["loop_thread_alive"] is False


# ---- documents -----------------------------------------------------------------------------------------------
def test_openapi_is_versioned_and_declares_errors(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["version"] in spec["info"]["title"]
    post_mode = spec["paths"]["/api/v1/mode"]["post"]["responses"]
    assert {"200", "401", "403", "409", "422"} <= set(post_mode)
    assert "ErrorBody" in spec["components"]["schemas"]


def test_dashboard_is_served(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and 'id="mode-state"' in r.text
    assert "http://" not in r.text and "https://" not in r.text  # nothing fetched from the internet
