"""Scenario: faults injected into the simulated vehicle, seen by the service as separate processes on the bus:
message dropout -> SAFE (audited), frozen counter and bad checksum counted exactly, DM1 with several DTCs (BAM),
bus-off and recovery, the serial firmware link stalled -> SAFE and recovery, and the service killed (SIGKILL):
the vehicle's own heartbeat watchdog stops the actuators, and a restarted service comes back cleanly.

Timeouts are asserted against the rig's (scaled) supervision timeouts: see ``scenario_support.RigTiming``."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from hil_tests.scenario_support import Rig, wait_until

pytestmark = pytest.mark.hil

INJECTED = 5
CONTROL_CYCLE_S = 0.05
#: HTTP request to the simulator, its scheduler, and the other processes on the guest's one CPU
SLACK_S = 0.4


def _acknowledge_safe(rig: Rig) -> None:
    rig.back_to_transport()
    assert rig.state() == "TRANSPORT"


def test_message_dropout_drives_safe(rig: Rig) -> None:
    rig.back_to_transport()
    injected = time.time()
    rig.sim_fault("silent", message="SSC_Suction", duration=1.5)
    rig.wait_state("SAFE", timeout=5)
    safe = next(e for e in rig.events(50) if e["kind"] == "safe_entered")
    assert "stale:SSC_Suction" in safe["text"], safe
    # SSC_Suction's (scaled) reception timeout + one 50 ms control cycle + HTTP and scheduling slack
    limit = rig.timing.reception_timeout("SSC_Suction") + CONTROL_CYCLE_S + SLACK_S
    assert safe["timestamp"] - injected < limit, (safe["timestamp"] - injected, limit)
    assert rig.messages()["SSC_Suction"]["timeouts"] >= 1
    # SAFE holds after the cause is gone until an acknowledged request
    wait_until(lambda: rig.messages()["SSC_Suction"]["valid"] or None, 10, "SSC_Suction valid again")
    assert rig.request_mode("TRANSPORT").status_code == 409
    _acknowledge_safe(rig)


@pytest.mark.parametrize(("kind", "counter"), [("freeze_counter", "counter_errors"),
                                                ("corrupt_checksum", "checksum_errors")])
def test_counter_and_checksum_faults_are_counted_exactly(rig: Rig, kind: str, counter: str) -> None:
    rig.back_to_transport()
    before = rig.messages()["SSC_Suction"][counter]
    injected_before = rig.sim_counters()["injected"][kind].get("SSC_Suction", 0)
    rig.sim_fault(kind, message="SSC_Suction", count=INJECTED)
    wait_until(lambda: rig.sim_counters()["injected"][kind].get("SSC_Suction", 0) - injected_before == INJECTED
               or None, 10, "fault injected")
    time.sleep(0.3)
    # freeze_counter: each repeated counter is one error; corrupt_checksum: each bad frame is one error (the
    # counter gap the removed frames leave is counted under counter_errors, not here)
    assert rig.messages()["SSC_Suction"][counter] - before == INJECTED
    # five in a row fill the leaky bucket past its limit: the message was invalid, the service went SAFE
    assert any(e["kind"] == "safe_entered" for e in rig.events(10)), rig.events(10)
    _acknowledge_safe(rig)


def test_dm1_with_several_dtcs_shows_on_faults(rig: Rig) -> None:
    rig.back_to_transport()
    dtcs = [{"spn": 110, "fmi": 0, "occurrence": 3}, {"spn": 100, "fmi": 1, "occurrence": 1},
            {"spn": 520200, "fmi": 31, "occurrence": 2}]
    rig.sim_set(dtcs=dtcs)
    try:
        shown = wait_until(lambda: {(d["spn"], d["fmi"], d["occurrence_count"])
                                    for d in rig.get("/api/v1/faults")["dtcs"]} or None, 10, "DTCs on /faults")
        assert shown == {(d["spn"], d["fmi"], d["occurrence"]) for d in dtcs}
        assert rig.sim_counters()["sent"].get("TP_CM_BAM", 0) >= 1  # three DTCs need the multi-packet BAM
    finally:
        rig.sim_set(dtcs=[])
    wait_until(lambda: not rig.get("/api/v1/faults")["dtcs"] or None, 10, "DTCs cleared")


def test_bus_off_and_recovery(rig: Rig) -> None:
    rig.back_to_transport()
    rig.sim_fault("bus_off", duration=1.0)
    rig.wait_state("SAFE", timeout=5)
    stale = next(e for e in rig.events(50) if e["kind"] == "safe_entered")["text"]
    assert "stale:" in stale
    rig.wait_inputs_valid(15)  # the node is back: every message valid again
    _acknowledge_safe(rig)


def test_serial_link_stall_drives_safe_and_recovers(rig: Rig) -> None:
    rig.back_to_transport()
    link_timeout = rig.timing.link_timeout_s
    stalls = rig.sim_serial()["injected"]["stalls"]
    injected = time.time()
    rig.sim_stall_serial(link_timeout + 1.0)
    rig.wait_state("SAFE", timeout=link_timeout + 5)
    safe = next(e for e in rig.events(50) if e["kind"] == "safe_entered")
    assert "serial_link_lost" in safe["text"], safe  # the cause is the serial link, not a CAN message
    assert "stale:SSC" not in safe["text"] and "stale:CCVS1" not in safe["text"], safe
    # the link's timeout (no frame from the firmware) + one control cycle + slack
    limit = link_timeout + CONTROL_CYCLE_S + SLACK_S
    assert safe["timestamp"] - injected < limit, (safe["timestamp"] - injected, limit)
    assert not rig.health()["serial"]["connected"]
    assert rig.sim_serial()["injected"]["stalls"] == stalls + 1
    assert rig.request_mode("TRANSPORT").status_code == 409  # SAFE holds until acknowledged
    # the firmware answers again: the link comes back up on its own, then an acknowledged TRANSPORT
    wait_until(lambda: rig.health()["serial"]["connected"] or None, link_timeout + 15, "serial link up again")
    _acknowledge_safe(rig)
    assert rig.values()["serial.fan_speed"] is not None


def test_service_killed_vehicle_watchdog_stops_and_restart_is_clean(rig: Rig) -> None:
    rig.back_to_transport()
    assert rig.request_mode("SWEEPER").status_code == 200
    rig.wait_state("SWEEPER", 40)
    assert rig.sim_state()["state"]["actuators_enabled"]
    service = rig.service
    assert service is not None
    trips = rig.sim_counters()["watchdog_trips"]
    killed = time.monotonic()
    os.killpg(service.pid, signal.SIGKILL)

    def tripped() -> dict[str, Any] | None:
        state: dict[str, Any] = rig.sim_state()["state"]
        return None if state["heartbeat_ok"] else state

    state = wait_until(tripped, 2.0, "the vehicle's heartbeat watchdog", interval=0.02)
    assert time.monotonic() - killed < 0.5 + 0.2  # 300 ms watchdog + polling and HTTP slack
    assert not state["actuators_enabled"]
    assert rig.sim_counters()["watchdog_trips"] == trips + 1
    service.stop()
    rig.start_service()
    rig.wait_inputs_valid(60)
    # a restarted service never resumes the old working mode. It starts in TRANSPORT, or, when its first control
    # steps run before the SSC has seen its heartbeat again (the guest's slow CPU), in SAFE for the SSC's own
    # report of the watchdog trip: the vehicle's fault, acknowledged like any SAFE
    mode = rig.state()
    assert mode in ("TRANSPORT", "SAFE"), mode
    if mode == "SAFE":
        causes = [e["text"] for e in rig.events(50) if e["kind"] == "safe_entered"]
        assert causes and all(c == "ssc_heartbeat_lost" for c in causes), causes
    wait_until(lambda: rig.sim_state()["state"]["heartbeat_ok"] or None, 10, "heartbeat back at the vehicle")
    commands = rig.sim_state()["commands"]  # what the vehicle now receives from the new service: stowed, stopped
    assert commands["fan_setpoint"] == 0 and not commands["nozzle_lower"], commands
    _acknowledge_safe(rig)
