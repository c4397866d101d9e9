"""Codec of the serial firmware protocol: framing, CRC, message round trips and parser properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from cobs import cobs
from crccheck.crc import Crc32
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from firmware_bridge.serial_link import (
    CHANNELS,
    MAX_ENCODED_SIZE,
    MAX_PAYLOAD_SIZE,
    Command,
    CommandReply,
    FirmwareRecord,
    Frame,
    Heartbeat,
    Hello,
    HelloReply,
    ProtocolError,
    SampleBatchMessage,
    SampleEncoding,
    StreamParser,
    crc32,
    decode_message,
    encode_frame,
    encode_message,
)
from firmware_bridge.serial_link.messages import MAX_TEXT_BYTES

u8, u16, u32 = (st.integers(0, 2**bits - 1) for bits in (8, 16, 32))
texts = st.text(max_size=MAX_TEXT_BYTES // 4)
channel_sets = st.sets(st.sampled_from([spec.id for spec in CHANNELS]), min_size=1).map(lambda s: tuple(sorted(s)))


@st.composite
def sample_batches(draw: st.DrawFn) -> SampleBatchMessage:
    ids = draw(channel_sets)
    encoding = draw(st.sampled_from(list(SampleEncoding)))
    dtype = np.dtype("<i2") if encoding == SampleEncoding.INT16_SCALED else np.dtype("<f4")
    max_n = (MAX_PAYLOAD_SIZE - 12) // (len(ids) * dtype.itemsize)
    n = draw(st.integers(1, max_n))
    raw = draw(hnp.arrays(dtype, (len(ids), n)))
    return SampleBatchMessage(ids, draw(st.integers(0, 2**64 - 1)), encoding, raw)


messages = st.one_of(
    st.builds(Hello, texts),
    st.builds(HelloReply, u16, channel_sets, texts),
    st.builds(Heartbeat, u32, u8),
    sample_batches(),
    st.builds(Command, u16, u16, st.binary(max_size=256)),
    st.builds(CommandReply, u16, u16, u8, st.booleans(), st.binary(max_size=256)),
    st.builds(FirmwareRecord, st.booleans(), u8, u16, u32, texts, st.booleans()),
)


def feed_in_pieces(parser: StreamParser, data: bytes, cuts: list[int]) -> list[Frame]:
    edges = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    return [f for a, b in itertools.pairwise(edges) for f in parser.feed(data[a:b])]


def test_crc_is_crc32_ieee_802_3() -> None:
    # check value of the CRC catalogue for CRC-32/ISO-HDLC, and an independent implementation
    assert crc32(b"123456789") == 0xCBF43926
    data = bytes(range(256)) * 3
    assert crc32(data) == Crc32.calc(data)


def test_frame_layout_follows_the_spec() -> None:
    wire = encode_frame(0x10, 0x1234, b"\x01\x02", from_firmware=True, major=1, minor=2)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    body = cobs.decode(wire[1:-1])
    assert body[:4] == bytes([0x12, 0x90, 0x34, 0x12])  # version 1.2, type 0x10 | firmware bit, seq LE
    assert body[4:6] == b"\x01\x02"
    assert int.from_bytes(body[6:], "little") == Crc32.calc(body[:6])


@settings(max_examples=300, deadline=None)
@given(messages, u16, st.booleans(), st.integers(0, 15), st.integers(0, 15))
def test_encode_decode_is_identity(msg, seq: int, from_fw: bool, major: int, minor: int) -> None:
    wire = encode_message(msg, seq, from_firmware=from_fw, major=major, minor=minor)
    parser = StreamParser()
    (frame,) = parser.feed(wire)
    assert (frame.seq, frame.from_firmware, frame.major, frame.minor) == (seq, from_fw, major, minor)
    assert frame.msg_type == msg.MSG_TYPE
    assert decode_message(frame) == msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=8))
def test_parser_never_raises_and_yields_only_crc_valid_frames(data: bytes, cuts: list[int]) -> None:
    for frame in feed_in_pieces(StreamParser(), data, cuts):
        # the frame's bytes, CRC included, really were on the wire: a frame with a bad CRC cannot come out
        assert frame.encode()[1:-1] in data


@settings(max_examples=200, deadline=None)
@given(st.lists(messages, min_size=1, max_size=5), st.binary(max_size=300), st.lists(st.integers(0, 5000)))
def test_resync_after_garbage_and_chunking_invariance(msgs, garbage: bytes, cuts: list[int]) -> None:
    stream = garbage + b"".join(encode_message(m, i, from_firmware=True) for i, m in enumerate(msgs))
    whole = StreamParser()
    expected = whole.feed(stream)
    # every message after the garbage is recovered, in order
    assert [decode_message(f) for f in expected[-len(msgs) :]] == msgs
    chunked = StreamParser()
    assert feed_in_pieces(chunked, stream, cuts) == expected
    assert chunked.counters() == whole.counters()


@pytest.mark.parametrize("piece", [1, 7, MAX_ENCODED_SIZE + 5])
def test_oversize_frame_counted_and_dropped(piece: int) -> None:
    good = encode_message(Heartbeat(1), 0, from_firmware=True)
    stream = b"\x00" + b"\x55" * (MAX_ENCODED_SIZE + 1) + good + good
    parser = StreamParser()
    frames = [f for i in range(0, len(stream), piece) for f in parser.feed(stream[i : i + piece])]
    assert [decode_message(f) for f in frames] == [Heartbeat(1), Heartbeat(1)]
    assert parser.oversize_frames == 1
    assert parser.discarded_bytes == MAX_ENCODED_SIZE + 1


def test_largest_frame_passes_and_larger_payload_refused() -> None:
    wire = encode_frame(0x30, 1, b"\xff" * MAX_PAYLOAD_SIZE, from_firmware=True)
    assert len(wire) - 2 <= MAX_ENCODED_SIZE
    assert len(StreamParser().feed(wire)) == 1
    with pytest.raises(ProtocolError):
        encode_frame(0x30, 1, b"\xff" * (MAX_PAYLOAD_SIZE + 1), from_firmware=True)


def test_parser_counts_each_reject_reason() -> None:
    good = encode_message(Heartbeat(7), 3, from_firmware=True)
    body = bytearray(cobs.decode(good[1:-1]))
    body[-1] ^= 1
    bad_crc = b"\x00" + cobs.encode(bytes(body)) + b"\x00"
    runt = b"\x00" + cobs.encode(b"\x11\x22") + b"\x00"
    bad_cobs = b"\x00\x05\x01\x00"  # code byte promises 4 more bytes
    parser = StreamParser()
    frames = parser.feed(bad_crc + runt + bad_cobs + good)
    assert [decode_message(f) for f in frames] == [Heartbeat(7)]
    assert (parser.crc_errors, parser.runt_frames, parser.cobs_errors) == (1, 1, 1)


def test_int16_encoding_scales_saturates_and_marks_invalid() -> None:
    values = np.array([[-4200.4, np.nan, 1e9], [2600.1, 0.0, -1e9]])
    msg = SampleBatchMessage.from_physical((0, 1), 5, values)
    phys = msg.physical()
    assert phys[0, 0] == -4200.0 and np.isnan(phys[0, 1]) and phys[0, 2] == 32767 * CHANNELS[0].scale
    assert phys[1, 0] == 2600.0 and phys[1, 2] == -32767 * CHANNELS[1].scale
    again = SampleBatchMessage.unpack(msg.pack())
    assert again == msg


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # too short
        bytes([0x10, 0, 1, 0]) + bytes(8) + bytes(2),  # reserved channel bit
        bytes([0x01, 7, 1, 0]) + bytes(8) + bytes(2),  # unknown encoding
        bytes([0x01, 0, 2, 0]) + bytes(8) + bytes(2),  # 2 samples announced, 1 present
        bytes([0x01, 0, 0, 0]) + bytes(8),  # zero samples
    ],
)
def test_malformed_sample_batch_raises_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        SampleBatchMessage.unpack(payload)


def test_unknown_message_type_raises_protocol_error() -> None:
    (frame,) = StreamParser().feed(encode_frame(0x7E, 0, b"", from_firmware=True))
    with pytest.raises(ProtocolError):
        decode_message(frame)
