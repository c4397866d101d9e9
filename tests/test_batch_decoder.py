"""BatchDecoder against cantools: our DBC and randomly generated DBCs, J1939 matching, NA flags, rejects."""

from __future__ import annotations

import math
import random
import struct
from collections import OrderedDict
from typing import Any

import can
import numpy as np
import pytest
from cantools.database.can import Database, Message, Signal
from cantools.database.conversion import BaseConversion
from cantools.typechecking import Choices
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.batch_decoder import BatchDecoder, DecodedMessage
from firmware_bridge.bit_extract import network_start
from firmware_bridge.dbc_database import default_database
from firmware_bridge.frame_batch import FrameBatch
from firmware_bridge.j1939 import make_id, pgn_of, with_source
from firmware_bridge.packer import CanPacker

DB = default_database()
DECODER = BatchDecoder(DB)


def _decode(message: Message, data: bytes) -> dict[str, Any]:
    decoded = message.decode(data, decode_choices=False)
    assert isinstance(decoded, dict)
    return decoded


def _same_value(ours: Any, ref: int | float, column: np.ndarray) -> bool:
    """Bit-identical: ints exact (int column, or a float column holding it exactly), floats bit for bit."""
    if isinstance(ref, bool) or not isinstance(ref, int | float):
        return False
    if isinstance(ref, int):
        if column.dtype.kind in "iuO":
            return int(ours) == ref
        return column.dtype == np.float64 and abs(ref) <= 2**53 and float(ours) == ref
    if column.dtype != np.float64:
        return False
    if math.isnan(ref):
        return math.isnan(float(ours))
    return struct.pack("<d", float(ours)) == struct.pack("<d", ref)


def assert_matches_cantools(message: Message, decoder: BatchDecoder, data: np.ndarray, dlc: np.ndarray,
                            is_extended: bool | None = None) -> int:
    """Decode ``data`` as frames of ``message``; every frame cantools accepts must come out identical, every frame
    it refuses must be rejected. Returns the number of accepted frames."""
    n = data.shape[0]
    ext = message.is_extended_frame if is_extended is None else is_extended
    batch = FrameBatch.from_arrays(np.arange(n) * 1e-3, np.full(n, message.frame_id), data, dlc=dlc,
                                   is_extended=np.full(n, ext))
    out = decoder.decode(batch)
    refs: list[dict[str, Any]] = []
    for i in range(n):
        try:
            refs.append(_decode(message, bytes(data[i, : dlc[i]])))
        except Exception:
            continue
    assert sum(out.rejects.values()) == n - len(refs), out.rejects
    if not refs:
        assert message.name not in out.messages
        return 0
    got = out.messages[message.name]
    assert len(got) == len(refs)
    for i, ref in enumerate(refs):
        for signal in message.signals:
            present = bool(got.is_present(signal.name)[i])
            assert present == (signal.name in ref), (signal.name, i)
            if present:
                column = got.signals[signal.name]
                assert _same_value(column[i], ref[signal.name], column), (
                    message.name, signal.name, column[i], ref[signal.name], column.dtype)
    return len(refs)


# -- our DBC -----------------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_message_of_our_dbc_matches_cantools_on_random_payloads(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for message in DB.messages:
        data = rng.integers(0, 256, (40, 8), dtype=np.uint8)
        if message.is_multiplexed():
            data[:30, 0] = rng.integers(0, 4, 30)  # mostly defined DiagPage values, some undefined ones
        assert_matches_cantools(message, DECODER, data, np.full(40, 8))


def test_packer_payloads_decode_to_the_packed_values() -> None:
    packer = CanPacker(DB, source_address=0x80)
    frames = [packer.make_message("SSC_Suction", {"SuctionFanSpeed": 2400.25, "SuctionPressure": -3500,
                                                  "FanDrivePressure": 180, "NozzleHeight": 40}, timestamp=t)
              for t in range(5)]
    out = DECODER.decode(FrameBatch.from_messages(frames))
    msg = out.messages["SSC_Suction"]
    assert msg.signals["SuctionFanSpeed"].tolist() == [2400.25] * 5
    assert msg.signals["SuctionPressure"].tolist() == [-3500] * 5
    assert msg.signals["SuctionPressure"].dtype == np.int64
    assert msg.signals["Counter"].tolist() == [0, 1, 2, 3, 4]
    assert msg.source_address.tolist() == [0x80] * 5


# -- random DBCs -------------------------------------------------------------------------------------------------
def _occupied(start: int, length: int, big_endian: bool) -> list[int]:
    if not big_endian:
        return list(range(start, start + length))
    first = network_start(start)
    return [8 * (n // 8) + 7 - n % 8 for n in range(first, first + length)]


def _random_conversion(rnd: random.Random, is_float: bool, choices: Choices | None) -> BaseConversion:
    scale = rnd.choice([1, 1, 2, -3, 7, 1.0, 0.5, 0.1, 0.05, 0.125, -0.25, 1e-3, 3.3, 2**40, -(2**33),
                        rnd.uniform(-100, 100)])
    offset = rnd.choice([0, 0, -125, 40, 2**62, -(2**62), 0.5, -273.15, -0.0, 1e-9, rnd.uniform(-1e6, 1e6)])
    return BaseConversion.factory(scale=scale, offset=offset, choices=choices, is_float=is_float)


def _place(rnd: random.Random, used: set[int], nbits: int, length: int) -> tuple[int, bool] | None:
    for _ in range(30):
        big = rnd.random() < 0.5
        start = rnd.randrange(nbits)
        bits = _occupied(start, length, big)
        if all(0 <= b < nbits for b in bits) and not used.intersection(bits):
            used.update(bits)
            return start, big
    return None


def random_message(rnd: random.Random, frame_id: int, extended: bool) -> Message:
    length = rnd.choice([1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 12, 16, 20, 24, 32, 48, 64])
    nbits = 8 * length
    used: set[int] = set()
    signals: list[Signal] = []

    def add(name: str, **kw: Any) -> Signal | None:
        is_float = kw.pop("is_float", False)
        bits = kw.pop("length")
        where = _place(rnd, used, nbits, bits)
        if where is None:
            return None
        choices = kw.pop("choices", None)
        sig = Signal(name, where[0], bits, "big_endian" if where[1] else "little_endian",
                     is_signed=kw.pop("is_signed", False),
                     conversion=kw.pop("conversion", None) or _random_conversion(rnd, is_float, choices), **kw)
        signals.append(sig)
        return sig

    mux = None
    if rnd.random() < 0.35:
        ids = rnd.sample(range(4), rnd.randint(1, 3))
        # A named mux value counts as a branch even without signals under it.
        choice_ids: Choices | None = OrderedDict({3: "THREE"}) if rnd.random() < 0.5 else None
        mux = add("Mux", length=2, is_multiplexer=True,
                  conversion=BaseConversion.factory(1, 0, choices=choice_ids))
        if mux is not None:
            for j in range(rnd.randint(1, 4)):
                add(f"M{j}", length=rnd.randint(1, 24), is_signed=rnd.random() < 0.4, multiplexer_signal="Mux",
                    multiplexer_ids=rnd.sample(ids, rnd.randint(1, len(ids))))
            if rnd.random() < 0.5:  # nested multiplexer under Mux == ids[0]
                inner = add("Inner", length=1, is_multiplexer=True, multiplexer_signal="Mux",
                            multiplexer_ids=[ids[0]], conversion=BaseConversion.factory(1, 0))
                if inner is not None:
                    add("N0", length=rnd.randint(1, 16), multiplexer_signal="Inner", multiplexer_ids=[0])
                    add("N1", length=rnd.randint(1, 16), multiplexer_signal="Inner", multiplexer_ids=[1])
    for j in range(rnd.randint(1, 8)):
        kind = rnd.random()
        if kind < 0.15:
            add(f"F{j}", length=rnd.choice([32, 64]), is_float=True)
        elif kind < 0.25:
            identity = BaseConversion.factory(1, 0) if rnd.random() < 0.4 else None
            add(f"W{j}", length=rnd.choice([57, 63, 64, 64]), is_signed=rnd.random() < 0.5, conversion=identity)
        else:
            add(f"S{j}", length=rnd.randint(1, 40), is_signed=rnd.random() < 0.4)
    return Message(frame_id, f"Msg{frame_id:x}", length, signals, is_extended_frame=extended, is_fd=length > 8,
                   strict=True)


def _payloads(rnd: np.random.Generator, message: Message, n: int) -> tuple[np.ndarray, np.ndarray]:
    width = 8 if message.length <= 8 else 64
    data = rnd.integers(0, 256, (n, width), dtype=np.uint8)
    dlc = np.full(n, message.length)
    # Some longer frames (cantools trims them), some shorter ones (rejected), bytes past the dlc are zero.
    longer = rnd.random(n) < 0.1
    dlc[longer] = np.minimum(width, message.length + rnd.integers(0, 8, int(longer.sum())))
    shorter = rnd.random(n) < 0.05
    dlc[shorter] = rnd.integers(0, message.length, int(shorter.sum()))
    data[np.arange(width)[None, :] >= dlc[:, None]] = 0
    return data, dlc


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_random_dbcs_decode_identically_to_cantools(seed: int) -> None:
    rnd = random.Random(seed)
    extended = rnd.random() < 0.5
    frame_id = rnd.randrange(0x20000000 if extended else 0x800)
    message = random_message(rnd, frame_id, extended)
    decoder = BatchDecoder(Database(messages=[message]))
    data, dlc = _payloads(np.random.default_rng(seed), message, 150)
    assert_matches_cantools(message, decoder, data, dlc)


def test_random_dbcs_exercise_every_conversion_path() -> None:
    """The random generator reaches the exact-int, uint64, float, float-signal and Python fallback paths."""
    from firmware_bridge.signal_plan import Kind, plan_signal

    seen = set()
    for seed in range(300):
        rnd = random.Random(seed)
        for s in random_message(rnd, 0x100, False).signals:
            seen.add(plan_signal(s).kind)
    assert seen == set(Kind)


def test_a_message_with_many_messages_and_mixed_frames() -> None:
    rnd = random.Random(7)
    messages = [random_message(rnd, 0x100 + i, False) for i in range(6)]
    messages += [random_message(rnd, 0x18FF0000 + i, True) for i in range(6)]
    decoder = BatchDecoder(Database(messages=messages))
    rng = np.random.default_rng(7)
    for message in messages:
        data, dlc = _payloads(rng, message, 60)
        assert_matches_cantools(message, decoder, data, dlc)


# -- J1939 -------------------------------------------------------------------------------------------------------
def test_j1939_frames_match_by_pgn_from_any_source_address() -> None:
    eec1 = DB.get_message_by_name("EEC1")
    setpoints = DB.get_message_by_name("OBC_Setpoints")  # PDU2 proprietary-B
    ids = [with_source(eec1.frame_id, sa) for sa in (0x00, 0x01, 0xEE)]
    ids += [with_source(setpoints.frame_id, sa) for sa in (0x27, 0x28)]
    ids.append(make_id(pgn_of(eec1.frame_id), 0x05, prio=3))  # other priority
    data = np.tile(np.arange(8, dtype=np.uint8), (len(ids), 1))
    out = DECODER.decode(FrameBatch.from_arrays(np.arange(len(ids)), ids, data))
    assert out.messages["EEC1"].source_address.tolist() == [0x00, 0x01, 0xEE, 0x05]
    assert out.messages["OBC_Setpoints"].source_address.tolist() == [0x27, 0x28]
    assert sum(out.rejects.values()) == 0
    ref = _decode(eec1, bytes(range(8)))
    assert out.messages["EEC1"].signals["EngSpeed"].tolist() == [ref["EngSpeed"]] * 4


def test_pdu1_pgn_ignores_the_destination_address() -> None:
    pdu1 = Message(make_id(0xEF00, 0x27, destination=0x80), "Prop_A", 8,
                   [Signal("Value", 0, 16, conversion=BaseConversion.factory(0.5, 0))],
                   is_extended_frame=True, protocol="j1939")
    decoder = BatchDecoder(Database(messages=[pdu1]))
    ids = [make_id(0xEF00, 0x27, destination=da) for da in (0x80, 0x00, 0xFF)]
    out = decoder.decode(FrameBatch.from_arrays(np.zeros(3), ids, np.zeros((3, 8), np.uint8)))
    assert len(out.messages["Prop_A"]) == 3


def _eec1(values: dict[str, int]) -> DecodedMessage:
    eec1 = DB.get_message_by_name("EEC1")
    data = eec1.encode(values, scaling=False, padding=True, strict=False)
    out = DECODER.decode(FrameBatch.from_arrays([0.0], [eec1.frame_id], np.frombuffer(data, np.uint8)[None, :]))
    return out.messages["EEC1"]


@pytest.mark.parametrize(
    ("raw", "na", "error"),
    [(0xFFFF, True, False), (0xFE12, False, True), (0xFB00, True, False), (0xFAFF, False, False), (0, False, False)],
)
def test_j1939_16_bit_not_available_and_error(raw: int, na: bool, error: bool) -> None:
    base = {s.name: 0 for s in DB.get_message_by_name("EEC1").signals}
    msg = _eec1({**base, "EngSpeed": raw})
    assert bool(msg.j1939_na["EngSpeed"][0]) is na
    assert bool(msg.j1939_error["EngSpeed"][0]) is error
    assert msg.signals["EngSpeed"][0] == raw * 0.125  # the value column keeps cantools' number
    assert math.isnan(msg.physical("EngSpeed")[0]) is (na or error)


def test_j1939_4_bit_flags_and_roles_without_flags() -> None:
    base = {s.name: 0 for s in DB.get_message_by_name("EEC1").signals}
    msg = _eec1({**base, "EngTorqueMode": 0xF, "EngStarterMode": 0xE})
    assert msg.j1939_na["EngTorqueMode"][0] and not msg.j1939_error["EngTorqueMode"][0]
    assert msg.j1939_error["EngStarterMode"][0] and not msg.j1939_na["EngStarterMode"][0]
    ccvs = DECODER.decode(FrameBatch.from_arrays([0.0], [DB.get_message_by_name("CCVS1").frame_id],
                                                 np.full((1, 8), 0xFF, np.uint8))).messages["CCVS1"]
    assert "ParkingBrakeSwitch" not in ccvs.j1939_na  # 2-bit states keep their raw value
    assert ccvs.physical("ParkingBrakeSwitch")[0] == 3
    assert ccvs.j1939_na["WheelBasedVehicleSpeed"][0]
    suction = DB.get_message_by_name("SSC_Suction")
    frame = FrameBatch.from_arrays([0.0], [suction.frame_id], np.full((1, 8), 0xFF, np.uint8))
    got = DECODER.decode(frame).messages["SSC_Suction"]
    assert "Counter" not in got.j1939_na and "Checksum" not in got.j1939_na
    assert got.j1939_na["SuctionFanSpeed"][0]
    status = DB.get_message_by_name("SSC_Status")
    out = DECODER.decode(FrameBatch.from_arrays([0.0], [status.frame_id], np.full((1, 8), 0xFF, np.uint8)))
    assert "InterlockFlags" not in out.messages["SSC_Status"].j1939_na  # Raw role


def test_no_j1939_flags_on_non_j1939_messages() -> None:
    msg = Message(0x123, "Std", 8, [Signal("Speed", 0, 16)], is_extended_frame=False)
    decoder = BatchDecoder(Database(messages=[msg]))
    out = decoder.decode(FrameBatch.from_arrays([0.0], [0x123], np.full((1, 8), 0xFF, np.uint8)))
    assert out.messages["Std"].j1939_na == {}
    assert out.messages["Std"].source_address.tolist() == [0]


# -- rejects -----------------------------------------------------------------------------------------------------
def test_rejects_are_counted_per_reason_and_never_raise() -> None:
    std = Message(0x123, "Std", 4, [Signal("A", 0, 8)], is_extended_frame=False)
    db = Database(messages=[std, *DB.messages])
    decoder = BatchDecoder(db)
    eec1 = DB.get_message_by_name("EEC1").frame_id
    frames = [
        can.Message(arbitration_id=0x7AB, is_extended_id=False, data=bytes(8)),  # unknown
        can.Message(arbitration_id=0x18FFAA00, data=bytes(8)),  # unknown PGN
        can.Message(arbitration_id=eec1, data=bytes(7)),  # short
        can.Message(arbitration_id=eec1, is_remote_frame=True, dlc=8),
        can.Message(arbitration_id=eec1, is_error_frame=True, data=bytes(8)),
        can.Message(arbitration_id=0x123, is_extended_id=True, data=bytes(8)),  # id type mismatch
        can.Message(arbitration_id=0x123, is_extended_id=False, data=bytes([5, 1, 2, 3, 4, 5])),  # longer: ok
        can.Message(arbitration_id=eec1, data=bytes(8)),
    ]
    out = decoder.decode(FrameBatch.from_messages(frames))
    assert out.rejects["unknown_id"] == 2
    assert out.rejects["wrong_dlc"] == 1
    assert out.rejects["remote_frame"] == 1
    assert out.rejects["error_frame"] == 1
    assert out.rejects["id_type_mismatch"] == 1
    assert out.messages["Std"].signals["A"].tolist() == [5]
    assert len(out.messages["EEC1"]) == 1


def test_undefined_multiplexer_value_is_rejected_like_cantools() -> None:
    diag = DB.get_message_by_name("SSC_Diag")
    data = np.zeros((3, 8), np.uint8)
    data[:, 0] = [0, 9, 1]
    data[:, 1] = 7
    out = DECODER.decode(FrameBatch.from_arrays(np.arange(3), [diag.frame_id] * 3, data))
    got = out.messages["SSC_Diag"]
    assert out.rejects["bad_multiplexer"] == 1
    assert got.present["FirmwareMajor"].tolist() == [True, False]
    assert got.signals["FirmwareMajor"][0] == 7 and math.isnan(got.signals["FirmwareMajor"][1])
    assert got.signals["FanRunHours"][1] == _decode(diag, bytes(data[2]))["FanRunHours"]


def test_empty_batch() -> None:
    out = DECODER.decode(FrameBatch.empty())
    assert out.messages == {} and set(out.rejects.values()) == {0}


def test_decode_one_gives_cantools_values() -> None:
    packer = CanPacker(DB)
    frame = packer.make_message("CCVS1", {"WheelBasedVehicleSpeed": 12.5, "ParkingBrakeSwitch": 1})
    result = DECODER.decode_one(frame)
    assert result is not None
    name, values = result
    assert name == "CCVS1"
    assert values == DB.decode_message(frame.arbitration_id, bytes(frame.data), decode_choices=False)
    assert DECODER.decode_one(can.Message(arbitration_id=0x1, is_extended_id=False, data=bytes(8))) is None


def test_can_fd_frames_of_a_64_byte_message() -> None:
    sigs = [Signal("Head", 0, 8), Signal("Far", 400, 32, is_signed=True),
            Signal("Moto", 470, 20, byte_order="big_endian", conversion=BaseConversion.factory(0.1, -5))]
    msg = Message(0x321, "Fd", 64, sigs, is_extended_frame=False, is_fd=True)
    decoder = BatchDecoder(Database(messages=[msg]))
    data, dlc = _payloads(np.random.default_rng(3), msg, 50)
    assert assert_matches_cantools(msg, decoder, data, dlc) > 0
