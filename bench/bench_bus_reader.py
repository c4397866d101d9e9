"""Benchmark: CanReader (recv thread + FrameBatch + queue) against a bare ``bus.recv`` loop on the virtual bus.

Prints frames/s for both and the ratio reader/baseline (1.0 = the batching costs nothing over reading).
"""

from __future__ import annotations

import time
import uuid

import can

from firmware_bridge.bus_reader import CanReader
from firmware_bridge.can_bus import BusConfig

N = 50_000


def _fill(channel: str) -> can.BusABC:
    tx = can.Bus(interface="virtual", channel=channel)
    return tx


def baseline() -> float:
    channel = uuid.uuid4().hex
    rx = can.Bus(interface="virtual", channel=channel)
    tx = _fill(channel)
    msg = can.Message(arbitration_id=0x18FF1080, data=bytes(8))
    for _ in range(N):
        tx.send(msg)
    t0 = time.perf_counter()
    got = 0
    while got < N and rx.recv(0.5) is not None:
        got += 1
    elapsed = time.perf_counter() - t0
    rx.shutdown()
    tx.shutdown()
    return got / elapsed


def reader() -> float:
    channel = uuid.uuid4().hex
    r = CanReader(BusConfig(interface="virtual", channel=channel), queue_max=100_000)
    tx = _fill(channel)
    msg = can.Message(arbitration_id=0x18FF1080, data=bytes(8))
    for _ in range(N):
        tx.send(msg)
    t0 = time.perf_counter()
    r.start()
    got = 0
    while got < N:
        batches = r.get_batches(timeout=0.5)
        if not batches:
            break
        got += sum(len(b) for b in batches)
    elapsed = time.perf_counter() - t0
    r.close()
    tx.shutdown()
    return got / elapsed


def main() -> None:
    base = baseline()
    ours = reader()
    print(f"bare recv loop: {base:,.0f} frames/s")
    print(f"CanReader:      {ours:,.0f} frames/s (batches handed to the consumer)")
    print(f"ratio reader/baseline: {ours / base:.2f}")


if __name__ == "__main__":
    main()
