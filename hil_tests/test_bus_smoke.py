"""Smoke test of the HIL bus: separate OS processes, and can-utils as independent peers, exchange frames.

Runs on whatever bus ``can_bus_config`` names: vcan0 (host or UML guest) or udp_multicast in a private
network namespace. The can-utils tests need SocketCAN and are skipped on other interfaces.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import can
import pytest

from hil_tests.harness import SpawnFn, need_can_utils

pytestmark = pytest.mark.hil

PEER = Path(__file__).with_name("bus_peer.py")
FRAME_COUNT = 200
STREAM_ID = 0x18FEF127  # J1939-style 29-bit ids with the OBC's source address 0x27
PROBE_ID = 0x18FEF227
DUMP_ID = 0x18FEF327
SEND_ID = 0x18FEF427


def peer_argv(role: str, bus: dict[str, str], *extra: str) -> list[str]:
    return [
        sys.executable,
        str(PEER),
        role,
        "--interface",
        bus["interface"],
        "--channel",
        bus["channel"],
        "--id",
        hex(STREAM_ID),
        "--count",
        str(FRAME_COUNT),
        *extra,
    ]


def test_every_frame_crosses_between_two_processes(spawn: SpawnFn, can_bus_config: dict[str, str]) -> None:
    receiver = spawn(peer_argv("receive", can_bus_config), name="receiver")
    receiver.wait_for_log(r"^READY$", timeout=30)
    sender = spawn(peer_argv("send", can_bus_config), name="sender")

    assert sender.wait(timeout=60) == 0
    assert receiver.wait(timeout=60) == 0
    result = json.loads(receiver.wait_for_log(r"^RESULT (.*)$", timeout=1).group(1))
    assert result["corrupt"] == 0
    assert result["counters"] == list(range(FRAME_COUNT))


def test_frame_from_python_can_shows_in_candump(spawn: SpawnFn, can_bus_config: dict[str, str]) -> None:
    need_can_utils(can_bus_config)
    channel = can_bus_config["channel"]
    candump = spawn(["candump", "-L", f"{channel},{PROBE_ID:08X}:1FFFFFFF,{DUMP_ID:08X}:1FFFFFFF"], name="candump")
    with can.Bus(interface="socketcan", channel=channel) as bus:
        # candump prints nothing when its socket is bound: probe until it echoes one frame back.
        deadline = time.monotonic() + 20
        while f"{PROBE_ID:08X}#" not in candump.log_text():
            assert time.monotonic() < deadline, f"candump never saw a probe frame:\n{candump.log_tail()}"
            bus.send(can.Message(arbitration_id=PROBE_ID, is_extended_id=True, data=b"\x00"))
            time.sleep(0.05)
        bus.send(can.Message(arbitration_id=DUMP_ID, is_extended_id=True, data=bytes.fromhex("0102030405FA")))
        line = candump.wait_for_log(rf"^\(\d+\.\d+\) {channel} {DUMP_ID:08X}#\w*$", timeout=10)
    assert line.group(0).endswith(f"{DUMP_ID:08X}#0102030405FA")
    assert candump.log_text().count(f"{DUMP_ID:08X}#") == 1


def test_frame_from_cansend_reaches_python_can(can_bus_config: dict[str, str]) -> None:
    need_can_utils(can_bus_config)
    channel = can_bus_config["channel"]
    filters = [{"can_id": SEND_ID, "can_mask": 0x1FFFFFFF, "extended": True}]
    with can.Bus(interface="socketcan", channel=channel, can_filters=filters) as bus:
        subprocess.run(["cansend", channel, f"{SEND_ID:08X}#DEADBEEF00C0FFEE"], check=True, timeout=10)
        msg = bus.recv(timeout=10)
    assert msg is not None, "the frame from cansend never arrived"
    assert (msg.arbitration_id, msg.is_extended_id, msg.dlc) == (SEND_ID, True, 8)
    assert bytes(msg.data) == bytes.fromhex("DEADBEEF00C0FFEE")
