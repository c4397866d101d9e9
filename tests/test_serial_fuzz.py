"""Fuzz of the serial receive path: >= 100k random and mutated inputs through parser, decoder and tracker."""

from __future__ import annotations

import contextlib

import numpy as np

from firmware_bridge.serial_link import (
    Command,
    CommandReply,
    FirmwareRecord,
    Frame,
    Heartbeat,
    HelloReply,
    Message,
    ProtocolError,
    SampleBatchMessage,
    StreamParser,
    decode_message,
    encode_message,
)
from firmware_bridge.serial_link.receiver import RxTracker

N_RANDOM = 60_000
N_MUTATED = 60_000


def _valid_stream(rng: np.random.Generator, n_frames: int = 400) -> tuple[bytes, set[bytes]]:
    msgs: list[Message] = [
        Heartbeat(5, 1),
        HelloReply(1000, (0, 1, 2, 3), "fw"),
        Command(1, 2, b"\x01"),
        CommandReply(1, 2, 0, True, b"ok"),
        FirmwareRecord(True, 3, 42, 1000, "fan overcurrent", True),
    ]
    wires = []
    for i in range(n_frames):
        if i % 3:
            values = rng.normal(0, 1000, (4, 20))
            msg: Message = SampleBatchMessage.from_physical((0, 1, 2, 3), i * 20, values)
        else:
            msg = msgs[i % len(msgs)]
        wires.append(encode_message(msg, i, from_firmware=bool(i % 2)))
    return b"".join(wires), {w[1:-1] for w in wires}


def _consume(frames: list[Frame], tracker: RxTracker, now: float) -> None:
    for frame in frames:
        with contextlib.suppress(ProtocolError):
            decode_message(frame)
        tracker.process(frame, now)


def test_random_chunks_never_crash() -> None:
    rng = np.random.default_rng(1)
    lengths = rng.integers(0, 200, N_RANDOM)
    pool = rng.integers(0, 256, int(lengths.sum()), dtype=np.uint8)
    # half of the inputs from a small alphabet: many delimiters and short COBS runs
    pool[: pool.size // 2] %= 8
    data = pool.tobytes()
    parser, tracker = StreamParser(), RxTracker(max_batches=64, max_events=64)
    offset = 0
    for i, n in enumerate(lengths.tolist()):
        _consume(parser.feed(data[offset : offset + n]), tracker, float(i))
        offset += n
    counted = sum(parser.counters()[k] for k in ("cobs_errors", "crc_errors", "runt_frames", "oversize_frames"))
    assert counted > 0  # garbage was seen and counted, not silently swallowed


def test_mutated_valid_streams_never_crash_and_never_forge_frames() -> None:
    rng = np.random.default_rng(2)
    stream, originals = _valid_stream(rng)
    parser, tracker = StreamParser(), RxTracker(max_batches=64, max_events=64)
    starts = rng.integers(0, len(stream) - 1, N_MUTATED)
    sizes = rng.integers(1, 400, N_MUTATED)
    kinds = rng.integers(0, 5, N_MUTATED)
    positions = rng.random(N_MUTATED)
    values = rng.integers(0, 256, N_MUTATED)
    accepted = 0
    for i in range(N_MUTATED):
        piece = bytearray(stream[starts[i] : starts[i] + sizes[i]])
        pos = int(positions[i] * len(piece))
        match kinds[i]:
            case 0 if pos < len(piece):
                piece[pos] ^= 1 << (int(values[i]) & 7)  # bit flip
            case 1:
                piece.insert(pos, int(values[i]))  # inserted byte
            case 2 if pos < len(piece):
                del piece[pos]  # lost byte
            case 3 if pos < len(piece):
                piece[pos] = 0  # spurious delimiter
            case _:
                pass  # clean slice (truncated frames at both ends)
        frames = parser.feed(bytes(piece))
        for frame in frames:
            assert frame.encode()[1:-1] in originals  # no mutation ever passes the CRC as a new frame
        accepted += len(frames)
        _consume(frames, tracker, float(i))
    assert accepted > 0
    assert parser.crc_errors + parser.cobs_errors > 0
