"""CanPacker: rolling counter mod 16, checksum that verifies, payloads cantools decodes back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from firmware_bridge.checksum import batch_checksums, message_checksum
from firmware_bridge.dbc_database import default_database
from firmware_bridge.j1939 import source_address
from firmware_bridge.packer import CanPacker

DB = default_database()


def _decode(name: str, data: bytes) -> dict[str, Any]:
    decoded = DB.decode_message(name, data, decode_choices=False)
    assert isinstance(decoded, dict)
    return decoded


def test_counter_increments_mod_16_per_message() -> None:
    packer = CanPacker(DB)
    counters = [_decode("OBC_Heartbeat", packer.pack("OBC_Heartbeat", {"ObcState": 1}))["Counter"]
                for _ in range(20)]
    assert counters == [i % 16 for i in range(20)]
    other = _decode("OBC_Setpoints", packer.pack("OBC_Setpoints", {}))
    assert other["Counter"] == 0  # each message has its own counter


def test_counter_override_for_fault_injection() -> None:
    packer = CanPacker(DB)
    data = packer.pack("SSC_Status", {"SscActiveMode": 1}, counter=7)
    assert _decode("SSC_Status", data)["Counter"] == 7


@pytest.mark.parametrize("name", ["SSC_Suction", "SSC_Status", "OBC_ModeCommand", "OBC_Heartbeat"])
def test_checksum_verifies_and_detects_corruption(name: str) -> None:
    packer = CanPacker(DB)
    info = packer.info(name)
    assert info.pgn is not None
    good = packer.pack(name, {})
    bad = packer.pack(name, {}, corrupt_checksum=True)
    assert good[7] == message_checksum(info.pgn, good)
    assert bad[7] != message_checksum(info.pgn, bad)
    rows = np.frombuffer(good + bad, dtype=np.uint8).reshape(2, 8)
    assert (batch_checksums(info.pgn, rows) == rows[:, 7]).tolist() == [True, False]


def test_crc_check_value() -> None:
    from crccheck.crc import Crc8SaeJ1850

    assert Crc8SaeJ1850.calc(b"123456789") == 0x4B


def test_cantools_decodes_what_the_packer_makes() -> None:
    packer = CanPacker(DB, source_address=0x27)
    values = {"FanSpeedSetpoint": 2500.0, "NozzleCmd": 1, "BrushesCmd": 1, "WaterCmd": 0, "PloughCmd": 0,
              "AugerSpeedSetpoint": 125.5, "RotorSpeedSetpoint": 1200}
    frame = packer.make_message("OBC_Setpoints", values, timestamp=1.5)
    assert frame.is_extended_id and source_address(frame.arbitration_id) == 0x27 and frame.timestamp == 1.5
    decoded = DB.decode_message(frame.arbitration_id, bytes(frame.data), decode_choices=False)
    assert isinstance(decoded, dict)
    for key, value in values.items():
        assert decoded[key] == value


def test_multiplexed_message_packs_the_selected_page() -> None:
    packer = CanPacker(DB)
    data = packer.pack("SSC_Diag", {"DiagPage": 1, "FanRunHours": 1234.5})
    decoded = _decode("SSC_Diag", data)
    assert decoded == {"DiagPage": 1, "FanRunHours": 1234.5}


def test_source_address_applies_to_j1939_frames() -> None:
    frame = CanPacker(DB, source_address=0x81).make_message("SSC_Suction", {})
    assert source_address(frame.arbitration_id) == 0x81
