"""CAN I/O on python-can's virtual bus: config resolution, DBC filters, CanReader batching/overrun/reopen/close."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import can
import numpy as np
import pytest

from firmware_bridge.bus_reader import CanReader
from firmware_bridge.can_bus import BusConfig, CanFilter, dbc_filters, frame_bits, open_bus
from firmware_bridge.dbc_database import default_database
from firmware_bridge.j1939 import with_source
from firmware_bridge.packer import CanPacker


@pytest.fixture
def channel() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def config(channel: str) -> BusConfig:
    return BusConfig(interface="virtual", channel=channel)


@pytest.fixture
def tx(channel: str) -> Iterator[can.BusABC]:
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


def _frame(i: int, can_id: int = 0x18FF1080) -> can.Message:
    return can.Message(arbitration_id=can_id, is_extended_id=True, data=bytes([i & 0xFF] * 8))


def _wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "can-reader"]


def test_config_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CAN_INTERFACE", "CAN_CHANNEL", "CAN_BITRATE", "CAN_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(can.util, "CONFIG_FILES", [])
    resolved = BusConfig().resolve()
    assert resolved["interface"] == "virtual"
    assert resolved["channel"] == "uniross"
    monkeypatch.setenv("CAN_CHANNEL", "from-env")
    monkeypatch.setenv("CAN_BITRATE", "500000")
    resolved = BusConfig().resolve()
    assert resolved["channel"] == "from-env"
    assert resolved["bitrate"] == 500000
    assert BusConfig().effective_bitrate == 500000
    # explicit values win over the environment; extra keys pass through
    resolved = BusConfig(channel="explicit", extra={"rx_queue_size": 10}).resolve()
    assert resolved["channel"] == "explicit"
    assert resolved["rx_queue_size"] == 10


def test_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("CAN_INTERFACE", "CAN_CHANNEL", "CAN_BITRATE", "CAN_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    rc = tmp_path / "canrc"
    rc.write_text("[default]\ninterface = virtual\nchannel = from-file\nbitrate = 1000000\n")
    monkeypatch.setattr(can.util, "CONFIG_FILES", [str(rc)])
    resolved = BusConfig().resolve()
    assert resolved["channel"] == "from-file"
    assert resolved["bitrate"] == 1000000
    monkeypatch.setenv("CAN_CHANNEL", "env-wins")
    assert BusConfig().resolve()["channel"] == "env-wins"


def test_dbc_filters_pass_any_source_and_drop_others(config: BusConfig, tx: can.BusABC) -> None:
    db = default_database()
    filters = dbc_filters(db)
    assert all(f["extended"] is True for f in filters)
    bus = open_bus(config, filters)
    try:
        packer = CanPacker(db)
        suction = packer.make_message("SSC_Suction", {})
        for sa in (0x80, 0x42):
            tx.send(can.Message(arbitration_id=with_source(suction.arbitration_id, sa), data=suction.data))
        # same PGN, other priority: passes; foreign PGN and an 11-bit id: dropped
        tx.send(can.Message(arbitration_id=(suction.arbitration_id & ~(7 << 26)) | (3 << 26), data=suction.data))
        tx.send(can.Message(arbitration_id=0x18FEEE77 ^ 0x100, data=bytes(8)))  # PGN 65263, not in the DBC
        tx.send(can.Message(arbitration_id=0x123, is_extended_id=False, data=bytes(8)))
        got = []
        while (msg := bus.recv(0.05)) is not None:
            got.append(msg.arbitration_id)
        assert got == [
            with_source(suction.arbitration_id, 0x80),
            with_source(suction.arbitration_id, 0x42),
            (suction.arbitration_id & ~(7 << 26)) | (3 << 26),
        ]
    finally:
        bus.shutdown()


def test_dbc_filters_by_sender() -> None:
    db = default_database()
    obc = dbc_filters(db, senders={"OBC"})
    assert len(obc) == 3
    assert len(dbc_filters(db)) == len(db.messages)


def test_reader_batches_frames(config: BusConfig, tx: can.BusABC) -> None:
    with CanReader(config, batch_max=16, batch_period=0.05) as reader:
        for i in range(100):
            tx.send(_frame(i))
        assert _wait_for(lambda: reader.counters()["frames"] == 100)
        batches = reader.get_batches(timeout=0.5)
        assert sum(len(b) for b in batches) == 100
        assert max(len(b) for b in batches) <= 16
        data0 = np.concatenate([b.data[:, 0] for b in batches])
        assert list(data0) == [i & 0xFF for i in range(100)]
        assert reader.frames_per_second() > 0
        assert 0 < reader.bus_load() < 1


def test_get_batches_waits_then_returns_empty(config: BusConfig) -> None:
    with CanReader(config) as reader:
        t0 = time.monotonic()
        assert reader.get_batches(timeout=0.1) == []
        assert time.monotonic() - t0 >= 0.09


def test_queue_overrun_drops_oldest_and_counts(config: BusConfig, tx: can.BusABC) -> None:
    with CanReader(config, batch_max=10, batch_period=1.0, queue_max=3) as reader:
        for i in range(100):
            tx.send(_frame(i))
        assert _wait_for(lambda: reader.counters()["frames"] == 100)
        counters = reader.counters()
        batches = reader.get_batches()
        kept = sum(len(b) for b in batches)
        assert len(batches) == 3
        assert kept + counters["overrun_frames"] == 100
        assert counters["overrun_frames"] == 70
        # the newest frames are the ones kept
        assert batches[-1].data[-1, 0] == 99


def test_reopen_after_bus_shut_down_under_reader(config: BusConfig, tx: can.BusABC) -> None:
    with CanReader(config, backoff_min=0.02) as reader:
        bus = reader.bus
        assert bus is not None
        bus.shutdown()  # the bus goes away under the reader
        assert _wait_for(lambda: reader.counters()["reopens"] == 1)
        counters = reader.counters()
        assert counters["bus_off"] == 1
        assert counters["errors_by_reason"] == {"CanOperationError": 1}
        tx.send(_frame(7))
        assert _wait_for(lambda: reader.counters()["frames"] == 1)
        assert reader.get_batches(timeout=0.5)[0].data[0, 0] == 7


def test_reopen_backoff_is_exponential_and_capped(config: BusConfig) -> None:
    attempts: list[float] = []

    def flaky_factory(cfg: BusConfig, filters: list[CanFilter] | None) -> can.BusABC:
        attempts.append(time.monotonic())
        if len(attempts) == 1 or len(attempts) >= 7:
            return open_bus(cfg, filters)
        raise can.CanInitializationError("adapter unplugged")

    with CanReader(config, bus_factory=flaky_factory, backoff_min=0.01, backoff_max=0.04) as reader:
        assert reader.bus is not None
        reader.bus.shutdown()
        assert _wait_for(lambda: reader.counters()["reopens"] == 1, timeout=3.0)
        counters = reader.counters()
    assert counters["reopen_failures"] == 5
    gaps = np.diff(attempts[1:])  # attempt 2.. are reopen tries after waits of 0.02, 0.04, 0.04, ...
    expected = [0.02, 0.04, 0.04, 0.04, 0.04]
    assert len(gaps) == len(expected)
    for gap, want in zip(gaps, expected, strict=True):
        assert want * 0.9 <= gap < want + 0.05


def test_error_frames_counted(config: BusConfig, tx: can.BusABC) -> None:
    with CanReader(config) as reader:
        tx.send(can.Message(is_error_frame=True, arbitration_id=0x40, data=bytes(8)))
        tx.send(_frame(1))
        assert _wait_for(lambda: reader.counters()["frames"] == 2)
        assert reader.counters()["error_frames"] == 1
        batch = reader.get_batches(timeout=0.5)[0]
        assert batch.is_error.tolist() == [True, False]


def test_send_shares_the_bus_and_counts_tx_errors(config: BusConfig, tx: can.BusABC) -> None:
    reader = CanReader(config).start()
    reader.send(_frame(3))
    got = tx.recv(0.5)
    assert got is not None and got.data[0] == 3
    reader.close()
    with pytest.raises(can.CanError):
        reader.send(_frame(4))
    counters = reader.counters()
    assert counters["tx_frames"] == 1
    assert counters["tx_errors"] == 1


def test_close_leaves_no_thread(config: BusConfig) -> None:
    before = len(_reader_threads())
    readers = [CanReader(config).start() for _ in range(3)]
    assert len(_reader_threads()) == before + 3
    for reader in readers:
        reader.close(timeout=1.0)
    assert len(_reader_threads()) == before
    assert all(not r.running for r in readers)


def test_frame_bits_estimate() -> None:
    bits = frame_bits(np.array([8, 8, 0], np.uint8), np.array([True, False, True]))
    assert bits.tolist() == [160, 135, 80]  # worst-case stuffing, incl. interframe space
