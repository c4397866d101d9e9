"""The monitor table shows the service's own per-message checks: valid, CHECKSUM, COUNTER, TIMEOUT, event."""

from __future__ import annotations

from firmware_bridge.batch_decoder import BatchDecoder
from firmware_bridge.dbc_database import default_database
from firmware_bridge.frame_batch import FrameBatch
from firmware_bridge.packer import CanPacker
from uniross.monitor import MonitorTable

DB = default_database()


def feed(table: MonitorTable, msgs: list, now: float) -> None:  # type: ignore[type-arg]
    table.update(BatchDecoder(DB).decode(FrameBatch.from_messages(msgs)), now)


def frames(n: int, *, counter: int | None = None, corrupt: bool = False, t0: float = 0.0) -> list:  # type: ignore[type-arg]
    packer = CanPacker(DB, 0x80)
    return [packer.make_message("SSC_Suction", {"SuctionFanSpeed": 1000}, timestamp=t0 + i * 0.02, counter=counter,
                                corrupt_checksum=corrupt) for i in range(n)]


def test_states_follow_the_checks() -> None:
    table = MonitorTable(DB)
    feed(table, frames(5), now=0.1)
    assert table.validity("SSC_Suction", 0.1) == "valid"
    assert table.rows["SSC_Suction"].values["SuctionFanSpeed"] == 1000.0
    assert table.validity("SSC_Suction", 0.5) == "TIMEOUT"  # 70 ms timeout for a 20 ms message

    corrupt = MonitorTable(DB)
    feed(corrupt, frames(5), now=0.1)
    feed(corrupt, frames(4, corrupt=True), now=0.15)
    assert corrupt.validity("SSC_Suction", 0.15) == "CHECKSUM"
    assert corrupt.checks.error_counts["checksum"] == 4

    frozen = MonitorTable(DB)
    feed(frozen, frames(8, counter=3), now=0.1)
    assert frozen.validity("SSC_Suction", 0.1) == "COUNTER"


def test_event_messages_and_caption() -> None:
    table = MonitorTable(DB)
    packer = CanPacker(DB)
    feed(table, [packer.make_message("TP_CM_BAM", {"TP_CM_ControlByte": 32, "TP_CM_TotalMessageSize": 14,
                                                   "TP_CM_TotalNumberOfPackets": 2, "TP_CM_MaxPacketsPerCTS": 255,
                                                   "TP_CM_PGN": 0xFECA})], now=1.0)
    feed(table, frames(3, corrupt=True), now=1.0)
    assert table.validity("TP_CM_BAM", 5.0) == "event"
    assert "checksum=3" in str(table.render(1.0).caption)
