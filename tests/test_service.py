"""End-to-end: the real service (CAN reader, codec, checks, hot loop, store, mode machine, command gate, serial link)
against the simulated vehicle on a python-can ``virtual`` bus and a real pty serial link, in one process."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from uniross.config import load_settings
from uniross.service import Service
from uniross.service_view import ServiceView
from vehicle_sim.control import apply_settings


@pytest.fixture
def service() -> Iterator[tuple[Service, ServiceView]]:
    settings = load_settings()
    settings.sim.embedded = True
    svc = Service(settings)
    with svc:
        yield svc, ServiceView(svc)


def wait_for(predicate, timeout: float, what) -> float:  # type: ignore[no-untyped-def]
    start = time.time()
    while time.time() - start < timeout:
        if predicate():
            return time.time() - start
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")


def wait_state(view: ServiceView, state: str, timeout: float = 25.0) -> float:
    return wait_for(lambda: view.mode_status().state == state, timeout,
                    lambda: f"mode {state}: {view.mode_status()}, loop {view.health().loop}, "
                            f"error {view.service.loop_error}, events {view.audit_events(8)}")


def test_boot_decodes_everything_and_turns_ready(service: tuple[Service, ServiceView]) -> None:
    svc, view = service
    wait_for(lambda: view.ready()[0], 5.0, "readyz")
    wait_for(lambda: svc.pipeline.inputs_seen, 5.0, "all safety-relevant inputs valid")
    time.sleep(3.5)  # 1 s messages (ET1, VEP1, DM1, SSC_Diag) need 3 good frames to be valid
    health = view.health()
    assert health.serial.connected
    assert not health.bus.decoder_rejects, health.bus.decoder_rejects
    invalid = {m.name for m in health.bus.messages if not m.valid}
    assert invalid <= {"TP_CM_BAM", "TP_DT_BAM"}, invalid  # event messages, no cycle time
    snap = {s.key: s for s in view.snapshot()}
    for key in ("CCVS1.WheelBasedVehicleSpeed", "EEC1.EngSpeed", "SSC_Suction.SuctionPressure", "SSC_Diag.FanRunHours",
                "serial.suction_pressure", "serial.fan_speed.raw", "diag.airflow_m3s"):
        assert snap[key].valid and snap[key].age_s < 5.0, snap[key]  # SSC_Diag pages: 4 s round robin
    assert view.mode_status().state == "TRANSPORT"
    assert svc.gate.counters()["sent"]["OBC_Heartbeat"] > 10


def test_full_mode_cycle_against_the_simulated_vehicle(service: tuple[Service, ServiceView]) -> None:
    svc, view = service
    wait_for(lambda: svc.pipeline.inputs_seen, 5.0, "inputs")
    assert view.request_mode("SWEEPER", False, "test").accepted
    wait_state(view, "SWEEPER")
    snap = {s.key: s.value for s in view.snapshot()}
    assert snap["SSC_Suction.SuctionFanSpeed"] > 2000 and snap["SSC_Suction.NozzleLowered"] == 1
    assert snap["serial.fan_speed"] > 2000  # the serial stream agrees with CAN
    assert view.request_mode("TRANSPORT", False, "test").accepted
    wait_state(view, "TRANSPORT")
    # changing equipment: the SNOW request is refused while the sweeper head is mounted and no snow attachment
    refused = view.request_mode("SNOW", False, "test")
    assert not refused.accepted and "snow_attachment_mounted" in {r.name for r in refused.reasons}
    apply_settings(svc.embedded_sim, {"sweeper_head_mounted": False, "snow_attachment_mounted": True})
    wait_for(lambda: view.request_mode("SNOW", False, "test").accepted, 3.0, "SNOW accepted")
    wait_state(view, "SNOW")
    snap = {s.key: s.value for s in view.snapshot()}
    assert snap["SSC_Snow.RotorSpeed"] > 100 and snap["SSC_Suction.SuctionFanSpeed"] < 300
    assert view.request_mode("TRANSPORT", False, "test").accepted
    wait_state(view, "TRANSPORT")
    kinds = [e.kind for e in view.audit_events(200)]
    assert kinds.count("accepted") >= 4 and "refused" in kinds


def test_refused_step_confirmation_times_out_to_safe(service: tuple[Service, ServiceView]) -> None:
    svc, view = service
    wait_for(lambda: svc.pipeline.inputs_seen, 5.0, "inputs")
    apply_settings(svc.embedded_sim, {"refuse_step": "nozzle"})
    assert view.request_mode("SWEEPER", False, "test").accepted
    elapsed = wait_state(view, "SAFE", timeout=15.0)
    assert elapsed > 1.0  # the nozzle step's own timeout, not an immediate refusal
    events = view.audit_events(50)
    assert any(e.kind == "step_timeout" for e in events), events
    # SAFE is left only by an acknowledged request once the cause is gone
    assert not view.request_mode("TRANSPORT", False, "test").accepted
    apply_settings(svc.embedded_sim, {"refuse_step": None})
    wait_for(lambda: view.request_mode("TRANSPORT", True, "test").accepted, 10.0, "acknowledged exit from SAFE")
    wait_state(view, "TRANSPORT")


def test_can_timeout_drives_safe_within_one_control_cycle(service: tuple[Service, ServiceView]) -> None:
    svc, view = service
    wait_for(lambda: svc.pipeline.inputs_seen, 5.0, "inputs")
    assert view.request_mode("SWEEPER", False, "test").accepted
    wait_state(view, "SWEEPER")
    injected = time.time()
    svc.embedded_sim.inject("silent", message="SSC_Suction", duration=2.0)
    wait_state(view, "SAFE", timeout=3.0)
    safe = next(e for e in view.audit_events(50) if e.kind == "safe_entered")
    assert "stale:SSC_Suction" in safe.text, safe
    # SSC_Suction timeout (70 ms x the embedded simulator's scale) + at most one 50 ms control cycle + slack
    timeout = 0.07 * svc.pipeline.checks.timeout_scale
    assert svc.pipeline.checks.timeout_scale == 3.0
    assert safe.timestamp - injected < timeout + 0.05 + 0.15
    assert next(m for m in view.health().bus.messages if m.name == "SSC_Suction").timeouts >= 1


def test_firmware_records_and_link_events_reach_the_service(
    service: tuple[Service, ServiceView], caplog: pytest.LogCaptureFixture
) -> None:
    svc, _ = service
    wait_for(lambda: svc.pipeline.inputs_seen, 5.0, "inputs")
    caplog.set_level("INFO", logger="uniross.service")
    svc.firmware_sim.fault(17, "fan drive pressure sensor out of range")
    svc.firmware_sim.log("nozzle calibrated")
    wait_for(lambda: sum(1 for e in svc.link_events if hasattr(e, "record")) >= 2, 3.0, "firmware records")
    records = [e.record for e in svc.link_events if hasattr(e, "record")]
    assert any(r.is_fault and r.code == 17 and r.active for r in records)
    assert any(not r.is_fault and r.text == "nozzle calibrated" for r in records)
    assert any(e.kind.value == "link_up" for e in svc.link_events if hasattr(e, "kind"))
    assert "SSC firmware fault 17 raised: fan drive pressure sensor out of range" in caplog.text
