"""Benchmark of the serial link receive path on one core, against the link's real need.

Builds 10 s of firmware traffic (4 channels x 1 kHz, int16, 20 samples per SAMPLE_BATCH every 20 ms, a HEARTBEAT
every 50 ms) and feeds it in read-sized chunks through (a) the framing parser alone (COBS + CRC-32) and (b) the
full receive path (parser + payload decode + physical float64 conversion + SampleBatch queue). Prints bytes/s and
samples/s and their ratio to what a saturated 921600 baud line needs (92,160 bytes/s) and to the stream's own
rate (4,000 samples/s).
"""

from __future__ import annotations

import time

import numpy as np

from firmware_bridge.serial_link import Heartbeat, SampleBatchMessage, StreamParser, encode_message
from firmware_bridge.serial_link.receiver import RxTracker

SECONDS = 10
RATE_HZ = 1000
BATCH = 20
CHANNELS = (0, 1, 2, 3)
LINE_BYTES_PER_S = 921600 // 10  # 8N1: 10 bits per byte
STREAM_SAMPLES_PER_S = RATE_HZ * len(CHANNELS)
MIN_TIME_S = 1.0


def build_stream() -> tuple[bytes, int]:
    rng = np.random.default_rng(0)
    wires: list[bytes] = []
    seq = 0
    for b in range(SECONDS * RATE_HZ // BATCH):
        values = rng.normal([-4000, 2600, 150, 600], [20, 3, 0.4, 4], (BATCH, 4)).T
        wires.append(
            encode_message(SampleBatchMessage.from_physical(CHANNELS, b * BATCH, values), seq, from_firmware=True)
        )
        seq += 1
        if b % 5 == 4:  # heartbeat every 50 ms
            wires.append(encode_message(Heartbeat(b * BATCH), seq, from_firmware=True))
            seq += 1
    return b"".join(wires), SECONDS * RATE_HZ * len(CHANNELS)


def run(stream: bytes, chunk: int, full: bool) -> tuple[float, int]:
    """Return (seconds per pass, frames per pass), repeating passes for at least MIN_TIME_S."""
    chunks = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    passes, frames, start = 0, 0, time.perf_counter()
    while True:
        parser = StreamParser()
        tracker = RxTracker(max_batches=1 << 20)
        for piece in chunks:
            for frame in parser.feed(piece):
                if full:
                    tracker.process(frame, 0.0)
        if full:
            tracker.batches.drain()
        frames = parser.frames
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_TIME_S:
            return elapsed / passes, frames


def main() -> None:
    stream, samples = build_stream()
    print(f"stream: {SECONDS} s of 4 ch x {RATE_HZ} Hz = {len(stream):,} bytes, {samples:,} samples")
    print(f"need: {LINE_BYTES_PER_S:,} bytes/s (921600 baud, 8N1), {STREAM_SAMPLES_PER_S:,} samples/s")
    header = f"{'path':<22}{'chunk B':>8}{'MB/s':>9}{'frames/s':>12}{'samples/s':>14}{'x line':>9}{'x samples':>11}"
    print(header)
    print("-" * len(header))
    for full in (False, True):
        for chunk in (64, 512, 4096):
            per_pass, frames = run(stream, chunk, full)
            bps = len(stream) / per_pass
            sps = samples / per_pass
            name = "parser+decode+queue" if full else "framing (COBS+CRC)"
            print(
                f"{name:<22}{chunk:>8}{bps / 1e6:>9.2f}{frames / per_pass:>12,.0f}{sps:>14,.0f}"
                f"{bps / LINE_BYTES_PER_S:>9.0f}{sps / STREAM_SAMPLES_PER_S:>11.0f}"
            )


if __name__ == "__main__":
    main()
