"""Scenario: faults injected into the simulated vehicle, seen by the service as separate processes on the bus:
message dropout -> SAFE (audited), frozen counter and bad checksum counted exactly, DM1 with several DTCs (BAM),
bus-off and recovery, and the service killed (SIGKILL): the vehicle's own heartbeat watchdog stops the actuators,
and a restarted service comes back cleanly."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from hil_tests.scenario_support import Rig, wait_until

pytestmark = pytest.mark.hil

INJECTED = 5


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
    # SSC_Suction timeout (70 ms) + one 50 ms control cycle, plus HTTP and scheduling slack between processes
    assert safe["timestamp"] - injected < 0.5, safe["timestamp"] - injected
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
    assert rig.state() == "TRANSPORT"  # a restarted service starts in TRANSPORT, never in the old working mode
    wait_until(lambda: rig.sim_state()["state"]["heartbeat_ok"] or None, 10, "heartbeat back at the vehicle")
