"""SerialLink against the firmware simulator on a real pty pair, a TCP socket and loop://."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from firmware_bridge.serial_link import (
    CHANNEL_NAMES,
    PROTOCOL_MAJOR,
    CommandId,
    CommandOutcome,
    CommandStatus,
    FirmwareRecordEvent,
    HelloReply,
    LinkEvent,
    LinkEventKind,
    LinkState,
    Message,
    SampleBatch,
    SampleBatchMessage,
    SerialLink,
    Severity,
    encode_message,
)
from vehicle_sim.firmware_sim import FirmwareSimulator

TRUTH = {"suction_pressure": -3500.0, "fan_speed": 2400.0, "fan_drive_pressure": 140.0, "nozzle_dp": 550.0}


def open_link(url: str, max_batches: int = 1000) -> SerialLink:
    return SerialLink(url, link_timeout=0.25, reconnect_backoff=(0.02, 0.2), max_batches=max_batches)


def wait_until(cond: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


class Collector:
    """Accumulates what a link delivers (the consumer polls, as the hot loop does)."""

    def __init__(self, link: SerialLink) -> None:
        self.link = link
        self.batches: list[SampleBatch] = []
        self.events: list[object] = []

    def poll(self) -> None:
        self.batches += self.link.drain_samples()
        self.events += self.link.drain_events()

    def link_events(self, kind: LinkEventKind) -> list[LinkEvent]:
        self.poll()
        return [e for e in self.events if isinstance(e, LinkEvent) and e.kind is kind]

    def wait_batches(self, n: int) -> list[SampleBatch]:
        start = len(self.batches)

        def enough() -> bool:
            self.poll()
            return len(self.batches) - start >= n

        wait_until(enough)
        return self.batches[start:]


@pytest.fixture
def sim() -> Iterator[FirmwareSimulator]:
    with FirmwareSimulator("pty", truth=lambda: TRUTH, seed=3) as simulator:
        yield simulator


@pytest.fixture
def link(sim: FirmwareSimulator) -> Iterator[SerialLink]:
    with open_link(sim.link_url) as serial_link:
        wait_until(serial_link.is_alive)
        yield serial_link


def quiet(sim: FirmwareSimulator, col: Collector, batches: int = 3) -> None:
    """Wait until all requested faults are applied and a few clean batches went through."""
    wait_until(lambda: sim.pending_faults() == 0)
    col.wait_batches(batches)


def test_handshake_and_samples_arrive_as_contiguous_arrays(sim: FirmwareSimulator, link: SerialLink) -> None:
    col = Collector(link)
    assert link.state is LinkState.UP
    assert isinstance(link.firmware, HelloReply) and link.firmware.sample_rate_hz == 1000
    assert col.link_events(LinkEventKind.LINK_UP)
    batches = col.wait_batches(15)
    for prev, cur in itertools.pairwise(batches):
        assert cur.first_index == prev.next_index and not cur.gap_before
        assert cur.host_time >= prev.host_time
    samples = np.concatenate([b.samples for b in batches], axis=1)
    assert batches[0].channels == CHANNEL_NAMES and samples.dtype == np.float64 and samples.shape[0] == 4
    for row, name in enumerate(CHANNEL_NAMES):
        std = float(np.std(samples[row]))
        assert abs(float(np.mean(samples[row])) - TRUTH[name]) < 0.3 * std + 1.0
        assert std > 0  # sensor noise is present
    counters = link.counters()
    assert counters["lost_frames"] == counters["crc_errors"] == counters["lost_samples"] == 0


def test_commands_ack_and_nak(sim: FirmwareSimulator, link: SerialLink) -> None:
    ping = link.send_command(CommandId.PING)
    assert ping.outcome is CommandOutcome.ACK and ping.ok and ping.status == CommandStatus.OK
    assert ping.attempts == 1 and len(ping.data) == 4
    unknown = link.send_command(0x7777)
    assert unknown.outcome is CommandOutcome.NAK and unknown.status == CommandStatus.UNKNOWN_COMMAND
    bad = link.send_command(CommandId.SET_STREAMING, b"")
    assert bad.outcome is CommandOutcome.NAK and bad.status == CommandStatus.BAD_PAYLOAD
    counters = link.counters()
    assert (counters["cmd_acks"], counters["cmd_naks"]) == (1, 2)


def test_command_retry_then_timeout(sim: FirmwareSimulator, link: SerialLink) -> None:
    sim.ignore_commands(2)
    retried = link.send_command(CommandId.CLEAR_FAULTS, timeout=0.3, retries=2)
    assert retried.outcome is CommandOutcome.ACK and retried.attempts == 3
    assert sim.executed_commands.count((CommandId.CLEAR_FAULTS, b"")) == 1
    sim.ignore_commands(3)
    lost = link.send_command(CommandId.PING, timeout=0.05, retries=2)
    assert lost.outcome is CommandOutcome.TIMEOUT and lost.attempts == 3 and lost.latency_s >= 0.15
    assert sim.injected()["ignored_commands"] == 5
    counters = link.counters()
    assert (counters["cmd_retries"], counters["cmd_timeouts"]) == (4, 1)


def test_stall_gives_link_lost_then_link_up_and_a_flagged_gap(sim: FirmwareSimulator, link: SerialLink) -> None:
    col = Collector(link)
    col.wait_batches(2)
    mark = len(col.batches)
    before = link.counters()
    sim.stall(0.6)
    wait_until(lambda: col.link_events(LinkEventKind.LINK_LOST))
    lost = col.link_events(LinkEventKind.LINK_LOST)[0]
    assert "no frame from the firmware" in lost.reason and not link.is_alive()
    assert len(col.link_events(LinkEventKind.LINK_UP)) == 1
    wait_until(lambda: len(col.link_events(LinkEventKind.LINK_UP)) == 2)
    assert link.is_alive()
    col.wait_batches(3)
    since = col.batches[mark:]
    assert sum(b.gap_before for b in since) == 1  # exactly the first batch after the stall
    after = link.counters()
    assert after["lost_samples"] - before["lost_samples"] == sim.injected()["stall_lost_samples"] > 0
    assert after["lost_frames"] == before["lost_frames"]  # a hung firmware sends nothing: no sequence gap


def test_counters_match_injected_faults_exactly(sim: FirmwareSimulator, link: SerialLink) -> None:
    col = Collector(link)
    col.wait_batches(2)
    base = link.counters()
    sim.drop_frames(5)
    quiet(sim, col)
    mid = link.counters()
    assert mid["lost_frames"] - base["lost_frames"] == 5
    assert mid["lost_samples"] - base["lost_samples"] == sim.injected()["dropped_samples"] == 100
    assert mid["crc_errors"] == base["crc_errors"]
    sim.corrupt_crc(7)
    quiet(sim, col)
    end = link.counters()
    injected = sim.injected()
    assert end["crc_errors"] - mid["crc_errors"] == injected["corrupted_frames"] == 7
    assert end["lost_frames"] - mid["lost_frames"] == 7  # a frame refused for its CRC is a lost frame too
    assert end["lost_samples"] - mid["lost_samples"] == injected["corrupted_samples"]
    flagged = sum(b.gap_before for b in col.batches)
    assert flagged == end["sample_gaps"] - base["sample_gaps"] > 0
    assert end["internal_errors"] == 0 and end["cobs_errors"] == base["cobs_errors"]


def test_noise_between_frames_is_discarded_without_losing_frames(sim: FirmwareSimulator, link: SerialLink) -> None:
    col = Collector(link)
    col.wait_batches(2)
    base = link.counters()
    for n in (1, 300, 2000):
        sim.inject_noise_bytes(n)
    quiet(sim, col)
    end = link.counters()
    assert end["discarded_bytes"] - base["discarded_bytes"] == sim.injected()["noise_nonzero_bytes"]
    assert end["lost_frames"] == base["lost_frames"] and end["lost_samples"] == base["lost_samples"]


def test_firmware_log_and_fault_records_become_events(sim: FirmwareSimulator, link: SerialLink) -> None:
    col = Collector(link)
    sim.log("boot complete", code=1)
    sim.fault(0x42, "fan drive overpressure", severity=Severity.CRITICAL)

    def records() -> list[FirmwareRecordEvent]:
        col.poll()
        return [e for e in col.events if isinstance(e, FirmwareRecordEvent)]

    wait_until(lambda: len(records()) == 2)
    log, fault = (e.record for e in records())
    assert (log.is_fault, log.text, log.code) == (False, "boot complete", 1)
    assert (fault.is_fault, fault.active, fault.code, fault.severity) == (True, True, 0x42, Severity.CRITICAL)


def test_reconnect_after_device_disappears(sim: FirmwareSimulator, link: SerialLink) -> None:
    col = Collector(link)
    col.wait_batches(1)
    mark = len(col.batches)
    sim.unplug()
    wait_until(lambda: col.link_events(LinkEventKind.LINK_LOST))
    assert "device disconnected" in col.link_events(LinkEventKind.LINK_LOST)[0].reason
    wait_until(lambda: link.counters()["open_failures"] >= 2)  # retried with backoff while the device is away
    assert link.state is LinkState.DISCONNECTED and link.send_command(1).outcome is CommandOutcome.LINK_DOWN
    sim.replug()
    wait_until(lambda: len(col.link_events(LinkEventKind.LINK_UP)) == 2)
    assert link.counters()["reconnects"] == 1
    col.wait_batches(2)
    gaps = [b for b in col.batches[mark:] if b.gap_before]
    assert len(gaps) == 1  # samples produced while unplugged are lost, never stitched
    assert link.send_command(CommandId.PING).ok


def test_version_mismatch_is_refused_with_a_clear_error() -> None:
    with (
        FirmwareSimulator("pty", protocol_major=PROTOCOL_MAJOR + 1) as sim,
        open_link(sim.link_url) as link,
    ):
        col = Collector(link)
        wait_until(lambda: col.link_events(LinkEventKind.INCOMPATIBLE))
        assert link.state is LinkState.INCOMPATIBLE and not link.is_alive()
        assert link.error is not None
        assert f"{PROTOCOL_MAJOR + 1}.0" in link.error and "major versions differ" in link.error
        time.sleep(0.1)
        col.poll()
        assert col.batches == [] and link.counters()["version_errors"] > 0
        assert link.send_command(CommandId.PING).outcome is CommandOutcome.LINK_DOWN


def test_socket_url_with_reconnect() -> None:
    with FirmwareSimulator("tcp://127.0.0.1:0", truth=lambda: TRUTH) as sim:
        assert sim.link_url.startswith("socket://127.0.0.1:")
        with open_link(sim.link_url) as link:
            col = Collector(link)
            wait_until(link.is_alive)
            col.wait_batches(3)
            assert link.send_command(CommandId.PING).ok
            sim.unplug()
            wait_until(lambda: col.link_events(LinkEventKind.LINK_LOST))
            sim.replug()
            wait_until(lambda: len(col.link_events(LinkEventKind.LINK_UP)) == 2)
            col.wait_batches(2)


def _fw(msg: Message, seq: int) -> bytes:
    return encode_message(msg, seq, from_firmware=True)


def _batch(first: int, n: int = 10) -> SampleBatchMessage:
    return SampleBatchMessage.from_physical((0, 1, 2, 3), first, np.zeros((4, n)))


def test_loop_url_echo_gaps_and_overrun() -> None:
    with open_link("loop://", max_batches=3) as link:
        wait_until(lambda: link.counters()["echo_frames"] >= 2)  # our own HELLO/heartbeat come back: ignored
        assert link.state is LinkState.CONNECTING
        assert link.write_raw(_fw(HelloReply(1000, (0, 1, 2, 3), "loop-fw"), 0))
        wait_until(lambda: link.state is LinkState.UP)
        # 8 batches of 10 samples; seq 5 and indices 40..49 are missing
        stream = b"".join(_fw(_batch(10 * i), i + 1) for i in range(9) if i != 4)
        assert link.write_raw(stream)
        wait_until(lambda: link.counters()["rx_frames"] >= 9)
        batches = link.drain_samples()
        counters = link.counters()
        assert [b.first_index for b in batches] == [60, 70, 80]  # 5 oldest dropped by the bounded queue
        assert batches[0].gap_before and not batches[1].gap_before
        assert (counters["overruns"], counters["overrun_samples"]) == (5, 50)
        assert (counters["lost_frames"], counters["lost_samples"], counters["sample_gaps"]) == (1, 10, 1)


def test_bad_url_raises_and_close_leaves_no_thread() -> None:
    with pytest.raises(ValueError):
        SerialLink("nosuchscheme://x")
    link = SerialLink("loop://")
    wait_until(lambda: link.counters()["tx_frames"] > 0)
    link.close()
    assert not any(t.name.startswith("serial-link") for t in threading.enumerate())


def test_failing_truth_gives_invalid_samples_not_a_dead_firmware() -> None:
    def broken() -> dict[str, float]:
        raise RuntimeError("physics crashed")

    with FirmwareSimulator("pty", truth=broken) as sim, open_link(sim.link_url) as link:
        wait_until(link.is_alive)
        batches = Collector(link).wait_batches(3)
        assert all(np.isnan(b.samples).all() for b in batches)
        assert sim.stats()["truth_errors"] >= 3 and link.counters()["internal_errors"] == 0
