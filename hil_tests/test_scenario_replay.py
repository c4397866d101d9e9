"""Scenario: record and replay. can-utils ``candump -l`` records the bus while the simulated vehicle drives a short
sequence; the simulator then falls silent, candump stops, and the recording goes offline through
``uniross.replay.replay_pipeline`` (a fresh `Pipeline`, the recording's own clock). Every signal of every cyclic
message the simulator sent must decode to exactly the value the live service shows (``/api/v1/snapshot``), since
both saw the same last frame of each message.

SocketCAN only (candump); skipped on udp_multicast. candump 2020.11 has no ``-f``: it writes
``candump-<date>.log`` into its working directory (the test's tmp dir). The recording leaves out the service's own
frames (source address 0x27, a candump inverse filter): after the simulator falls silent only those would go on,
and the replay's clock would run past the other messages' timeouts.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from firmware_bridge.dbc_database import default_database
from hil_tests.harness import SpawnFn, need_can_utils
from hil_tests.scenario_support import EVENT_MESSAGES, MEASUREMENTS, OBC_SOURCE, Rig, wait_until
from uniross.pipeline import Pipeline
from uniross.replay import replay_pipeline

pytestmark = pytest.mark.hil

#: frames of these are not a per-message last value (DM1 reports are assembled, not stored as a signal set)
NOT_COMPARED = EVENT_MESSAGES | {"DM1"}


def _recording(directory: Path) -> Path | None:
    logs = sorted(directory.glob("candump-*.log"))
    return logs[0] if logs and logs[0].stat().st_size > 0 else None


def test_recording_replays_to_the_values_the_service_showed(rig: Rig, spawn: SpawnFn, tmp_path: Path) -> None:
    need_can_utils(rig.bus, ("candump",))
    rig.back_to_transport()
    sent0 = rig.sim_counters()["sent"]
    candump = spawn(["candump", "-l", f"{rig.bus['channel']},{OBC_SOURCE:08X}~000000FF"], name="candump", cwd=tmp_path)
    log = wait_until(lambda: _recording(tmp_path), 20, "candump writing its log")
    try:
        rig.sim_set(speed_kmh=6, parking_brake=False)  # the sequence: drive off, values change every frame
        wait_until(lambda: (rig.values().get("CCVS1.WheelBasedVehicleSpeed") or 0) > 2 or None, 20, "moving")
        rig.sim_set(speed_kmh=0)
        time.sleep(0.5)
        rig.sim_fault("silent", duration=4.0)  # the last frame of every message is now recorded and received
        time.sleep(1.0)
        candump.stop()
        live = rig.snapshot()
    finally:
        rig.sim_set(speed_kmh=0, parking_brake=True)
    sent = {name: n - sent0.get(name, 0) for name, n in rig.sim_counters()["sent"].items()}

    pipelines: list[Pipeline] = []
    replayed = replay_pipeline(log, default_database(),
                               on_batch=lambda pipeline, _now: pipelines.append(pipeline) if not pipelines else None)
    recorded_lines = sum(1 for _ in log.open())
    assert replayed.frames == recorded_lines and replayed.frames > 100, (replayed.frames, recorded_lines)
    offline = pipelines[0].store.snapshot()  # every signal's last value, valid or timed out at the log's end

    compared: dict[str, float] = {}
    mismatches: dict[str, tuple[object, object]] = {}
    for message in default_database().messages:
        if message.name in NOT_COMPARED or sent.get(message.name, 0) == 0:
            continue
        for signal in message.signals:
            key = f"{message.name}.{signal.name}"
            if key not in live or key not in offline or math.isnan(offline[key].value):
                continue  # not in the store, or a multiplexed signal whose page the recording did not carry
            value, expected = offline[key].value, live[key]["value"]
            compared[key] = value
            if value != expected:
                mismatches[key] = (value, expected)
    assert not mismatches, mismatches
    names = {key.split(".")[0] for key in compared}
    assert {"SSC_Suction", "CCVS1", "EEC1"} <= names, names
    assert len(compared) >= 30, sorted(compared)
    assert compared["CCVS1.WheelBasedVehicleSpeed"] < 6  # the sequence's end, not its start
    MEASUREMENTS.append(f"HIL replay: {replayed.frames} frames recorded by candump, {len(compared)} signals of "
                        f"{len(names)} messages identical offline and live")
    rig.back_to_transport()
