"""Scenario: boot. The service comes up against the simulated vehicle, decodes every message, turns ready, and
counts exactly the frames the simulator sent; can-utils confirm its transmissions and reach it independently."""

from __future__ import annotations

import subprocess
import time

import pytest

from hil_tests.harness import SpawnFn, need_can_utils
from hil_tests.scenario_support import EVENT_MESSAGES, OWN_FRAMES_LOOP_BACK, BusTap, Rig, wait_until

pytestmark = pytest.mark.hil

HEARTBEAT_ID = 0x0CFF2227  # OBC_Heartbeat from source address 0x27


def test_boot_decodes_everything_and_turns_ready(rig: Rig) -> None:
    ready = rig.http.get(rig.api("/readyz"))
    assert ready.status_code == 200 and ready.json()["ready"], ready.text
    health = rig.health()
    assert health["bus"]["decoder_rejects"] == {}, health["bus"]["decoder_rejects"]
    assert health["serial"]["connected"], health["serial"]
    messages = {m["name"]: m for m in health["bus"]["messages"]}
    sent = rig.sim_counters()["sent"]
    cyclic = set(sent) - EVENT_MESSAGES
    assert cyclic <= set(messages), cyclic - set(messages)
    invalid = {name for name in cyclic if not messages[name]["valid"]}
    assert not invalid, {name: messages[name] for name in invalid}
    for name in cyclic:
        m = messages[name]
        assert (m["counter_errors"], m["checksum_errors"]) == (0, 0), m
    values = rig.snapshot()
    for key in ("CCVS1.WheelBasedVehicleSpeed", "EEC1.EngSpeed", "SSC_Suction.SuctionPressure",
                "serial.suction_pressure", "serial.fan_speed.raw"):
        assert values[key]["valid"], values[key]
    assert rig.state() == "TRANSPORT"


def test_every_frame_sent_is_counted(rig: Rig) -> None:
    """Totals read while the simulator is silent (nothing in flight): the service's count grows by exactly what
    the simulator sent in between."""
    with BusTap(rig.bus) as tap:
        time.sleep(0.3)
        totals0 = rig.quiet_totals()
        others0 = tap.others
        time.sleep(3.0)
        totals1 = rig.quiet_totals()
        others1 = tap.others
    sent, received = totals1.sim_sent - totals0.sim_sent, totals1.counted - totals0.counted
    own, others = totals1.own - totals0.own, others1 - others0
    assert sent > 100 and own > 100  # traffic did flow in between, both ways
    assert others == sent  # an independent listener saw exactly what the simulator reported
    # the service's own frames come back to its reader where they loop back (read at the instants of its counts)
    assert received == sent + (own if rig.bus["interface"] in OWN_FRAMES_LOOP_BACK else 0), (received, sent, own)
    errors = rig.health()["bus"]["errors"]
    assert errors.get("overrun_frames", 0) == 0, errors
    rig.back_to_transport()


def test_service_heartbeat_shows_in_candump(rig: Rig, spawn: SpawnFn) -> None:
    need_can_utils(rig.bus)
    candump = spawn(["candump", "-L", f"{rig.bus['channel']},{HEARTBEAT_ID:08X}:1FFFFFFF"], name="candump")
    line = candump.wait_for_log(rf"^\(\d+\.\d+\) \S+ {HEARTBEAT_ID:08X}#([0-9A-F]{{16}})$", timeout=20)
    assert len(bytes.fromhex(line.group(1))) == 8


def test_frame_from_cansend_reaches_the_service(rig: Rig) -> None:
    """A CCVS1 frame from an independent peer with another source address (0x05) is received and counted."""
    need_can_utils(rig.bus)
    before = rig.quiet_totals(hold_s=4.0)  # silent until the second reading, however slow the guest is
    subprocess.run(["cansend", rig.bus["channel"], "18FEF105#0000000000000000"], check=True, timeout=10)
    time.sleep(0.3)
    sent = sum(rig.sim_counters()["sent"].values())
    received = int(rig.health()["bus"]["frames_total"])
    assert sent == before.sim_sent  # still silent: the only new frame is cansend's
    assert received == before.counted + 1
    wait_until(lambda: rig.health()["bus"]["decoder_rejects"] == {} or None, 5, "no decoder rejects")
    rig.back_to_transport()
