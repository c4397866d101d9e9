"""REST contracts of the telemetry API against a real uvicorn server on a loopback port."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import pytest

from telemetry.api.testing import ENGINEER_TOKEN, RunningApi, running_api
from telemetry.faults import FaultSpec


@pytest.fixture(scope="module")
def api() -> Iterator[RunningApi]:
    with running_api() as running:
        yield running


@pytest.fixture()
def client(api: RunningApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, timeout=5.0) as c:
        yield c


def test_snapshot_lists_every_store_key_with_unit_validity_and_age(client: httpx.Client, api: RunningApi) -> None:
    body = client.get("/api/v1/snapshot").json()
    by_key = {s["key"]: s for s in body["signals"]}
    assert set(by_key) == set(api.service.signal_keys())
    fan = by_key["serial.fan_speed"]
    assert fan["unit"] == "rpm" and fan["valid"] is True
    assert 1000 < fan["value"] < 2000
    assert 0 <= fan["age_s"] < 1.0
    assert math.isclose(fan["timestamp"] + fan["age_s"], body["now"], abs_tol=0.5)


def test_snapshot_turns_nan_into_null(client: httpx.Client, api: RunningApi) -> None:
    api.service.store.set("diag.test_nan", math.nan, api.service.now(), unit="")  # type: ignore[attr-defined]
    sig = {s["key"]: s for s in client.get("/api/v1/snapshot").json()["signals"]}["diag.test_nan"]
    assert sig["value"] is None and sig["valid"] is False


def test_history_is_decimated_and_within_range(client: httpx.Client, api: RunningApi) -> None:
    now = api.service.now()
    r = client.get("/api/v1/signals/serial.fan_speed/history", params={"t0": now - 30, "t1": now, "max_points": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["unit"] == "rpm" and len(body["t"]) == len(body["v"]) and 0 < len(body["t"]) <= 4
    assert all(now - 30 <= t <= now for t in body["t"])


def test_history_unknown_key_is_404_and_bad_range_is_422(client: httpx.Client) -> None:
    r = client.get("/api/v1/signals/NoSuch.Signal/history")
    assert r.status_code == 404 and r.json()["code"] == "unknown_signal"
    r = client.get("/api/v1/signals/serial.fan_speed/history", params={"t0": 10, "t1": 5})
    assert r.status_code == 422 and "t0" in r.json()["message"]
    r = client.get("/api/v1/signals/serial.fan_speed/history", params={"max_points": 1})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "max_points"]


def test_faults_active_ack_and_unknown(client: httpx.Client, api: RunningApi) -> None:
    fm = api.service.fault_manager  # type: ignore[attr-defined]
    fm.register(FaultSpec("suction_hose_clog", "warning", 0.8, 0.5, description="suction hose blocked"))
    fm.update("suction_hose_clog", 0.95, api.service.now())
    body = client.get("/api/v1/faults").json()
    assert [f["name"] for f in body["active"]] == ["suction_hose_clog"]
    assert body["active"][0]["acknowledged"] is False and body["active"][0]["text"] == "suction hose blocked"
    auth = RunningApi.bearer(ENGINEER_TOKEN)
    r = client.post("/api/v1/faults/suction_hose_clog/ack", headers=auth)
    assert r.status_code == 200 and r.json() == {"name": "suction_hose_clog", "acknowledged": True}
    assert client.get("/api/v1/faults").json()["active"][0]["acknowledged"] is True
    assert client.post("/api/v1/faults/no_such_fault/ack", headers=auth).status_code == 404


def test_mode_status_has_interlock_table(client: httpx.Client) -> None:
    body = client.get("/api/v1/mode").json()
    assert body["state"] in {"TRANSPORT", "SWEEPER", "SNOW", "SAFE", "TO_SWEEPER", "TO_SNOW", "TO_TRANSPORT"}
    assert body["cab_selector"] == "REMOTE"
    names = {i["name"] for i in body["interlocks"]}
    assert {"engine_running", "speed_engage"} <= names
    assert all(isinstance(i["ok"], bool) and i["text"] for i in body["interlocks"])


def test_mode_request_refused_is_409_with_reasons_and_audited(client: httpx.Client) -> None:
    auth = RunningApi.bearer(ENGINEER_TOKEN)
    # the demo truck has no snow attachment: SNOW must be refused with that interlock named
    r = client.post("/api/v1/mode", json={"target": "SNOW", "acknowledge": False}, headers=auth)
    assert r.status_code == 409
    body = r.json()
    assert body["accepted"] is False and body["reasons"]
    assert all(reason["name"] and reason["text"] for reason in body["reasons"])
    events = client.get("/api/v1/mode/events", params={"limit": 5}).json()["events"]
    assert events[0]["kind"] == "refused" and events[0]["reasons"] == body["reasons"]
    assert client.get("/api/v1/mode").json()["last_refusal"]["reasons"] == body["reasons"]


def test_mode_request_accepted(client: httpx.Client) -> None:
    auth = RunningApi.bearer(ENGINEER_TOKEN)
    r = client.post("/api/v1/mode", json={"target": "SWEEPER"}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] is True and r.json()["state"] in {"TO_SWEEPER", "SWEEPER"}
    assert client.get("/api/v1/mode").json()["state"] in {"TO_SWEEPER", "SWEEPER", "SAFE"}


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
    r = client.post("/api/v1/mode", json=body, headers=RunningApi.bearer(ENGINEER_TOKEN))
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error" and where in r.json()["message"]


def test_malformed_json_is_422(client: httpx.Client) -> None:
    headers = {**RunningApi.bearer(ENGINEER_TOKEN), "content-type": "application/json"}
    r = client.post("/api/v1/mode", content=b"{not json", headers=headers)
    assert r.status_code == 422 and r.json()["code"] == "validation_error"


def test_health_probes_and_detail(client: httpx.Client) -> None:
    health = client.get("/api/v1/health").json()
    assert health["bus"]["alive"] is True and health["bus"]["frames_total"] > 0
    assert health["loop"]["cycles"] > 0 and health["loop"]["budget_s"] > 0
    assert health["loop"]["cycle_p50_s"] <= health["loop"]["cycle_p99_s"]
    live = client.get("/healthz").json()
    assert live["alive"] is True and live["loop_thread_alive"] is True and live["now"] > 0
    assert client.get("/readyz").status_code == 200


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


def test_probes_fail_with_reasons_when_bus_silent_and_loop_dead() -> None:
    from telemetry.api.inmemory import InMemoryTelemetryService

    idle = InMemoryTelemetryService()  # never started: no loop thread, no frames
    with running_api(service=idle, warmup_s=0.0) as running, httpx.Client(base_url=running.base_url) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["ready"] is False and any("bus" in reason for reason in r.json()["reasons"])
        r = c.get("/healthz")
        assert r.status_code == 503 and r.json()["loop_thread_alive"] is False
