"""BatchDecoder: decode a FrameBatch of raw CAN frames into per-message NumPy signal columns.

Owns frame-to-message matching (exact id, then J1939 PGN whatever the source address), reject counting, the
per-message decode plan (bit extraction in :mod:`firmware_bridge.bit_extract`, value conversion in
:mod:`firmware_bridge.signal_plan`), multiplexing, and the J1939 not-available / error flags.

Values are bit-identical to ``cantools`` ``Message.decode(data, decode_choices=False)`` (scaling on):
- frames shorter than the message length are rejected (``wrong_dlc``), as cantools raises ``DecodeError``; longer
  frames are decoded from their first ``length`` bytes, as cantools does (``allow_excess=True`` by default);
- a frame whose multiplexer value selects no defined branch is rejected (``bad_multiplexer``): cantools raises;
- multiplexed signals absent from a frame are NaN in a float64 column (ints up to 2**53 are exact there) and
  ``False`` in ``present``; a multiplexed int signal whose range exceeds 2**53 keeps its int column, 0 when absent;
- choices are never applied (raw numbers).
Messages the plan cannot express (container messages, signals outside the message length, odd float widths)
are decoded frame by frame through cantools itself, so any DBC decodes correctly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import can
import numpy as np
import numpy.typing as npt
from cantools.database.can import Database, Message, Signal

from firmware_bridge.bit_extract import BitField, FieldExtractor
from firmware_bridge.dbc_database import ROLE_VALUE, signal_role
from firmware_bridge.frame_batch import FrameBatch
from firmware_bridge.j1939 import pgn_array, pgn_of
from firmware_bridge.signal_plan import Kind, SignalPlan, plan_signal, python_values, raw_floats

REJECT_REASONS = (
    "unknown_id",
    "wrong_dlc",
    "remote_frame",
    "error_frame",
    "id_type_mismatch",
    "bad_multiplexer",
    "decode_error",
)
_EXT_FLAG = np.uint32(0x80000000)
BoolArray = npt.NDArray[np.bool_]


@dataclass
class DecodedMessage:
    """The frames of one message in a batch, in arrival order, as columns (docs/architecture.md)."""

    name: str
    timestamp: npt.NDArray[np.float64]
    source_address: npt.NDArray[np.uint8]
    arbitration_id: npt.NDArray[np.uint32]
    raw_data: npt.NDArray[np.uint8]
    signals: dict[str, np.ndarray]
    present: dict[str, BoolArray] = field(default_factory=dict)
    j1939_na: dict[str, BoolArray] = field(default_factory=dict)
    j1939_error: dict[str, BoolArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.timestamp.shape[0])

    def is_present(self, name: str) -> BoolArray:
        mask = self.present.get(name)
        return np.ones(len(self), dtype=bool) if mask is None else mask

    def physical(self, name: str) -> npt.NDArray[np.float64]:
        """Signal as float64 with NaN where absent (multiplexing) or J1939 not-available / error."""
        values = np.array(self.signals[name], dtype=np.float64)
        for masks in (self.j1939_na, self.j1939_error):
            mask = masks.get(name)
            if mask is not None:
                values[mask] = np.nan
        present = self.present.get(name)
        if present is not None:
            values[~present] = np.nan
        return values

    def select(self, keep: BoolArray | npt.NDArray[np.intp]) -> DecodedMessage:
        """The same message restricted to some frames (mask or indices)."""

        def pick(d: Mapping[str, np.ndarray]) -> dict[str, Any]:
            return {k: v[keep] for k, v in d.items()}

        return DecodedMessage(
            name=self.name,
            timestamp=self.timestamp[keep],
            source_address=self.source_address[keep],
            arbitration_id=self.arbitration_id[keep],
            raw_data=self.raw_data[keep],
            signals=pick(self.signals),
            present=pick(self.present),
            j1939_na=pick(self.j1939_na),
            j1939_error=pick(self.j1939_error),
        )


@dataclass
class DecodedBatch:
    """All decoded messages of one FrameBatch plus reject counts per reason."""

    messages: dict[str, DecodedMessage]
    rejects: dict[str, int]

    @property
    def n_decoded(self) -> int:
        return sum(len(m) for m in self.messages.values())


def empty_rejects() -> dict[str, int]:
    return dict.fromkeys(REJECT_REASONS, 0)


@dataclass(frozen=True)
class _MuxNode:
    """A multiplexer with defined branches: ``branches[id]`` lists the tree below that id."""

    name: str
    branches: dict[int, list[str | _MuxNode]]


def _tree(nodes: Sequence[Any]) -> list[str | _MuxNode]:
    out: list[str | _MuxNode] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        else:
            for mux_name, branches in node.items():
                out.append(_MuxNode(mux_name, {int(k): _tree(v) for k, v in branches.items()}))
    return out


class _MessagePlan:
    """Precompiled decode of one message: extraction, conversion groups, mux tree, J1939 flag thresholds."""

    def __init__(self, message: Message, db: Database, j1939: bool) -> None:
        self.message = message
        self.name = message.name
        self.length = message.length
        self.j1939 = j1939
        signals = list(message.signals)
        self.plans = [plan_signal(s) for s in signals]
        fields = [BitField(s.start, s.length, s.byte_order == "big_endian") for s in signals]
        self.fallback = (
            message.is_container
            or any(f.end_byte > message.length for f in fields)
            or any(p.kind is Kind.PY and s.conversion.is_float for s, p in zip(signals, self.plans, strict=True))
        )
        # J1939 not-available / error flags (docs/can_protocol.md) on unsigned integer Value signals of >= 4 bits:
        # top = raw >> max(length - 8, 0); flagged = top >= first reserved value; error = top == error value.
        na_flag = [
            j1939 and signal_role(s, db) == ROLE_VALUE and not s.is_signed and not s.conversion.is_float
            and s.length >= 4
            for s in signals
        ]
        # Extraction row order [float, float+NA, identity+NA, int+NA, int, identity, others] keeps each group's rows
        # contiguous (slices, no gathers) when all fields share one extraction window class.
        def group(i: int) -> int:
            p = self.plans[i]
            if p.kind is Kind.F_INT:
                return 1 if na_flag[i] else 0
            if p.kind is Kind.I64:
                if p.identity:
                    return 2 if na_flag[i] else 5
                return 3 if na_flag[i] else 4
            return 6

        order = sorted(range(len(signals)), key=group)
        extractor = FieldExtractor([fields[i] for i in order])
        self.extractor = extractor
        self.rows = [0] * len(signals)
        for pos, i in enumerate(order):
            self.rows[i] = extractor.row_of[pos]
        self.signals = signals
        self.any_signed = any(s.is_signed for s in signals)
        self.signed_bits = np.zeros((len(signals), 1), dtype=np.uint64)
        for i, s in enumerate(signals):
            if s.is_signed:
                self.signed_bits[self.rows[i], 0] = np.uint64(1 << (s.length - 1))
        self.tree = _tree(message.signal_tree) if message.is_multiplexed() else []
        self.muxed = {s.name for s in signals if s.multiplexer_signal is not None}

        def rows_of(members: list[int]) -> slice | npt.NDArray[np.intp]:
            rows = sorted(range(len(members)), key=lambda j: self.rows[members[j]])
            members[:] = [members[j] for j in rows]
            r = [self.rows[i] for i in members]
            if r and r == list(range(r[0], r[0] + len(r))):
                return slice(r[0], r[0] + len(r))
            return np.array(r, dtype=np.intp)

        # Columns by kind: identity ints are rows of the sign-extended matrix; scaled ints and floats from ints
        # are each computed for all their signals in one 2-D operation; rarer kinds one signal at a time.
        kinds = list(enumerate(self.plans))
        self.id_items = [(signals[i].name, self.rows[i]) for i, p in kinds if p.kind is Kind.I64 and p.identity]
        i64 = [i for i, p in kinds if p.kind is Kind.I64 and not p.identity]
        self.i64_rows = rows_of(i64)
        self.i64_names = [signals[i].name for i in i64]
        self.i64_k = np.array([[self.plans[i].k] for i in i64], dtype=np.int64)
        self.i64_any_k = any(self.plans[i].k != 1 for i in i64)
        self.i64_off = np.array([[self.plans[i].off] for i in i64], dtype=np.int64)
        fint = [i for i, p in kinds if p.kind is Kind.F_INT]
        self.f_rows = rows_of(fint)
        self.f_names = [signals[i].name for i in fint]
        self.f_k = np.array([[self.plans[i].k] for i in fint], dtype=np.int64)
        self.f_any_k = any(self.plans[i].k != 1 for i in fint)
        self.f_s = np.array([[self.plans[i].fs] for i in fint], dtype=np.float64)
        self.f_o = np.array([[self.plans[i].fo] for i in fint], dtype=np.float64)
        self.other = [(signals[i], p, self.rows[i]) for i, p in kinds if p.kind not in (Kind.I64, Kind.F_INT)]
        flagged = [i for i in range(len(signals)) if na_flag[i]]
        self.na_rows = rows_of(flagged)
        self.na_names = [signals[i].name for i in flagged]
        self.na_shift = np.array([[max(signals[i].length - 8, 0)] for i in flagged], dtype=np.uint64)
        self.na_first = np.array([[0xFB if signals[i].length >= 8 else (1 << signals[i].length) - 2]
                                  for i in flagged], dtype=np.uint64)
        self.na_err = np.array([[0xFE if signals[i].length >= 8 else (1 << signals[i].length) - 2]
                                for i in flagged], dtype=np.uint64)

    # -- decode ---------------------------------------------------------------------------------------------
    def decode(
        self, rows: npt.NDArray[np.uint8], ts: npt.NDArray[np.float64], ids: npt.NDArray[np.uint32],
        sa: npt.NDArray[np.uint8], rejects: dict[str, int],
    ) -> DecodedMessage | None:
        if self.fallback:
            return self._decode_fallback(rows, ts, ids, sa, rejects)
        raw = self.extractor.extract(rows)
        # Two's complement sign extension of every row at once (sign bit 0 for unsigned rows: unchanged).
        signed = ((raw ^ self.signed_bits) - self.signed_bits if self.any_signed else raw).view(np.int64)
        columns: dict[str, np.ndarray] = {name: signed[row] for name, row in self.id_items}
        if self.i64_names:
            if self.i64_any_k:
                x = signed[self.i64_rows] * self.i64_k
                np.add(x, self.i64_off, out=x)
            else:
                x = signed[self.i64_rows] + self.i64_off
            columns.update(zip(self.i64_names, x, strict=True))
        if self.f_names:
            src = signed[self.f_rows]
            if self.f_any_k:
                src = src * self.f_k
            f = src.astype(np.float64)
            np.multiply(f, self.f_s, out=f)
            np.add(f, self.f_o, out=f)
            columns.update(zip(self.f_names, f, strict=True))
        for s, p, row in self.other:
            columns[s.name] = _convert_other(s, p, raw[row], signed[row])
        na: dict[str, BoolArray] = {}
        err: dict[str, BoolArray] = {}
        if self.na_names:
            top = raw[self.na_rows] >> self.na_shift
            err_m = top == self.na_err
            na_m = top >= self.na_first
            np.logical_xor(na_m, err_m, out=na_m)  # error values are inside the flagged range
            na = dict(zip(self.na_names, na_m, strict=True))
            err = dict(zip(self.na_names, err_m, strict=True))
        msg = DecodedMessage(self.name, ts, sa, ids, rows, columns, {}, na, err)
        if self.tree:
            msg = self._apply_mux(msg, rejects)
        return msg

    def _apply_mux(self, msg: DecodedMessage, rejects: dict[str, int]) -> DecodedMessage:
        n = len(msg)
        present: dict[str, BoolArray] = {}
        bad = np.zeros(n, dtype=bool)

        def walk(nodes: list[str | _MuxNode], cond: BoolArray) -> None:
            for node in nodes:
                name = node if isinstance(node, str) else node.name
                if name in self.muxed:
                    present[name] = present[name] | cond if name in present else cond
                if isinstance(node, _MuxNode):
                    values, usable = _mux_numbers(msg.signals[node.name])
                    defined = np.zeros(n, dtype=bool)
                    for mux_id, sub in node.branches.items():
                        selected = values == mux_id
                        defined |= selected
                        walk(sub, cond & selected & usable)
                    bad[cond & ~(defined & usable)] = True

        walk(self.tree, np.ones(n, dtype=bool))
        for name in self.muxed:
            present.setdefault(name, np.zeros(n, dtype=bool))
        msg.present = present
        if bad.any():
            rejects["bad_multiplexer"] += int(bad.sum())
            msg = msg.select(~bad)
        for i, s in enumerate(self.signals):
            if s.name not in self.muxed:
                continue
            absent = ~msg.present[s.name]
            col = msg.signals[s.name]
            to_float = col.dtype != np.float64 and self.plans[i].float_exact
            col = col.astype(np.float64) if to_float else col.copy()
            col[absent] = np.nan if col.dtype == np.float64 else 0
            msg.signals[s.name] = col
        return msg

    def _decode_fallback(
        self, rows: npt.NDArray[np.uint8], ts: npt.NDArray[np.float64], ids: npt.NDArray[np.uint32],
        sa: npt.NDArray[np.uint8], rejects: dict[str, int],
    ) -> DecodedMessage | None:
        results: list[dict[str, Any]] = []
        keep = np.zeros(len(ts), dtype=bool)
        for i in range(len(ts)):
            try:
                decoded = self.message.decode(rows[i].tobytes(), decode_choices=False)
            except Exception:  # cantools raises several types; every one is a reject, never a crash
                rejects["decode_error"] += 1
                continue
            assert isinstance(decoded, dict)
            results.append(decoded)
            keep[i] = True
        columns: dict[str, np.ndarray] = {}
        present: dict[str, BoolArray] = {}
        for s, p in zip(self.signals, self.plans, strict=True):
            mask = np.array([s.name in r for r in results], dtype=bool)
            values = [r.get(s.name, 0) for r in results]
            if p.int_result and not (s.name in self.muxed and p.float_exact):
                columns[s.name] = _int_column(values)
            else:
                col = np.array(values, dtype=np.float64)
                col[~mask] = np.nan
                columns[s.name] = col
            if s.name in self.muxed or not mask.all():
                present[s.name] = mask
        return DecodedMessage(self.name, ts[keep], sa[keep], ids[keep], rows[keep], columns, present)


def _int_column(values: list[Any]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        try:
            return np.array(values, dtype=np.uint64)
        except OverflowError:
            out = np.empty(len(values), dtype=object)
            out[:] = values
            return out


def _mux_numbers(column: np.ndarray) -> tuple[npt.NDArray[np.int64], BoolArray]:
    """cantools' ``int(value)`` of a multiplexer column and which frames have a usable number."""
    if column.dtype == np.float64:
        ok = np.isfinite(column) & (np.abs(column) < 2.0**63)
        return np.where(ok, np.trunc(column), 0).astype(np.int64), ok
    if column.dtype == np.uint64:
        ok = column <= np.uint64((1 << 63) - 1)
        return column.astype(np.int64), ok
    if column.dtype == object:
        ok = np.array([-(1 << 63) <= v < (1 << 63) for v in column], dtype=bool)
        return np.array([v if o else 0 for v, o in zip(column, ok, strict=True)], dtype=np.int64), ok
    return column.astype(np.int64, copy=False), np.ones(column.shape[0], dtype=bool)


def _convert_other(signal: Signal, p: SignalPlan, raw: npt.NDArray[np.uint64],
                   signed: npt.NDArray[np.int64]) -> np.ndarray:
    """Columns of the rarer kinds (uint64 ints, 64-bit unsigned raw to float, float signals, Python fallback)."""
    if p.kind is Kind.U64:
        return raw * np.uint64(p.k) + np.uint64(p.off)
    if p.kind is Kind.F_U64:
        return raw.astype(np.float64) * p.fs + p.fo
    if p.kind is Kind.F_RAW:
        x = raw_floats(raw, signal.length)
        return x if p.identity else x * p.fs + p.fo
    return python_values(signal, p, raw, signed)


class IdTable:
    """Vectorized ``uint32 key -> index`` lookup: a collision-free multiplicative hash found at construction.

    ``lookup`` costs a multiply, a shift, two gathers and a compare per frame, whatever the number of keys.
    """

    def __init__(self, mapping: dict[int, int]) -> None:
        keys = sorted(mapping)
        self.empty = not keys
        bits = max(2, (len(keys) - 1).bit_length() + 2)
        rnd = np.random.default_rng(0x1939)
        while not self.empty:
            for _ in range(200):
                mult = int(rnd.integers(1, 1 << 32)) | 1
                slots = [((k * mult) & 0xFFFFFFFF) >> (32 - bits) for k in keys]
                if len(set(slots)) == len(keys):
                    break
            else:
                bits += 1
                continue
            break
        else:
            mult, slots = 1, []
        self.mult = np.uint32(mult)
        self.shift = np.uint32(32 - bits)
        # Empty slots hold a key that hashes elsewhere, so nothing can match them.
        self.keys = np.full(1 << bits, keys[0] if keys else 0, dtype=np.uint32)
        self.index = np.full(1 << bits, -1, dtype=np.int16)
        for key, slot in zip(keys, slots, strict=True):
            self.keys[slot] = key
            self.index[slot] = mapping[key]

    def lookup(self, wanted: npt.NDArray[np.uint32]) -> npt.NDArray[np.int16]:
        if self.empty:
            return np.full(wanted.shape[0], -1, dtype=np.int16)
        slot = (wanted * self.mult) >> self.shift
        return np.where(self.keys[slot] == wanted, self.index[slot], np.int16(-1))


class BatchDecoder:
    """Decodes FrameBatches for every message of a cantools database.

    ``j1939``: ``None`` treats messages with protocol ``j1939`` and extended ids as J1939 (PGN matching from any
    source address, NA/error flags); ``True`` treats every extended-id message so; ``False`` matches exact ids only.
    A frame matches by exact id (extended flag included) first, then, if extended, by J1939 PGN.
    """

    def __init__(self, db: Database, *, j1939: bool | None = None) -> None:
        self.db = db
        self._plans: list[_MessagePlan] = []
        exact: dict[int, int] = {}
        by_pgn: dict[int, int] = {}
        for message in db.messages:
            is_j1939 = message.is_extended_frame and (message.protocol == "j1939" if j1939 is None else j1939)
            index = len(self._plans)
            self._plans.append(_MessagePlan(message, db, is_j1939))
            key = message.frame_id | (0x80000000 if message.is_extended_frame else 0)
            exact.setdefault(key, index)
            if is_j1939:
                by_pgn.setdefault(pgn_of(message.frame_id), index)
        self._exact = IdTable(exact)
        self._by_pgn = IdTable(by_pgn)
        self._lengths = np.array([p.length for p in self._plans] + [0], dtype=np.int64)  # [-1]: rejected frames
        self._max_length = max((p.length for p in self._plans), default=0)
        self._j1939 = np.array([p.j1939 for p in self._plans], dtype=bool)
        self._by_name = {p.name: p for p in self._plans}

    @property
    def message_names(self) -> list[str]:
        return [p.name for p in self._plans]

    def match(self, batch: FrameBatch, rejects: dict[str, int]) -> npt.NDArray[np.int16]:
        """Plan index of every frame (-1: rejected, counted in ``rejects``)."""
        ids = batch.arbitration_id.astype(np.uint32, copy=False)
        ext = batch.is_extended.astype(bool, copy=False)
        keys = ids | (ext.astype(np.uint32) << np.uint32(31))
        index = self._exact.lookup(keys)
        missing = index < 0
        if not self._by_pgn.empty and missing.any():
            cand = np.flatnonzero(missing & ext)
            if len(cand):
                index[cand] = self._by_pgn.lookup(pgn_array(ids[cand]))
                missing = index < 0
        bad_frame = batch.is_error | batch.is_remote
        if bad_frame.any():
            rejects["error_frame"] += int(batch.is_error.sum())
            rejects["remote_frame"] += int((batch.is_remote & ~batch.is_error).sum())
            index[bad_frame] = -1
            missing &= ~bad_frame
        if missing.any():
            flipped = self._exact.lookup(keys[missing] ^ _EXT_FLAG) >= 0
            rejects["id_type_mismatch"] += int(flipped.sum())
            rejects["unknown_id"] += int((~flipped).sum())
        if len(batch) and int(batch.dlc.min()) < self._max_length:
            short = batch.dlc.astype(np.int64) < self._lengths[index]
            short &= index >= 0
            if short.any():
                rejects["wrong_dlc"] += int(short.sum())
                index[short] = -1
        return index

    def decode(self, batch: FrameBatch) -> DecodedBatch:
        rejects = empty_rejects()
        messages: dict[str, DecodedMessage] = {}
        n = len(batch)
        if n == 0:
            return DecodedBatch(messages, rejects)
        index = self.match(batch, rejects)
        order = np.argsort(index, kind="stable")  # radix sort on int16: one O(n) pass, arrival order kept
        counts = np.bincount(index + 1, minlength=len(self._plans) + 1)
        bounds = np.cumsum(counts)
        start = int(counts[0])
        order = order[start:]
        data = _gather_rows(batch.data, order)
        ts = batch.timestamp[order]
        ids = batch.arbitration_id[order].astype(np.uint32, copy=False)
        sa = (ids & np.uint32(0xFF)).astype(np.uint8)
        no_sa = np.zeros(len(order), dtype=np.uint8)
        with np.errstate(over="ignore", invalid="ignore"):  # inf / NaN results are what cantools gives too
            for plan_index in np.flatnonzero(counts[1:]).tolist():
                lo, hi = int(bounds[plan_index]) - start, int(bounds[plan_index + 1]) - start
                plan = self._plans[plan_index]
                decoded = plan.decode(data[lo:hi], ts[lo:hi], ids[lo:hi], (sa if plan.j1939 else no_sa)[lo:hi],
                                      rejects)
                if decoded is not None and len(decoded):
                    messages[plan.name] = decoded
        return DecodedBatch(messages, rejects)

    def decode_one(self, message: can.Message) -> tuple[str, dict[str, int | float]] | None:
        """One python-can frame to ``(message name, {signal: value})`` (absent multiplexed signals omitted);
        None when the frame is rejected."""
        decoded = self.decode(FrameBatch.from_messages([message]))
        for name, msg in decoded.messages.items():
            plan = self._by_name[name]
            values: dict[str, int | float] = {}
            for signal_plan in plan.plans:
                key = signal_plan.name
                if msg.is_present(key)[0]:
                    value = msg.signals[key][0]
                    value = value.item() if isinstance(value, np.generic) else value
                    values[key] = int(value) if signal_plan.int_result else value
            return name, values
        return None



def _gather_rows(data: npt.NDArray[np.uint8], order: npt.NDArray[np.intp]) -> npt.NDArray[np.uint8]:
    """``data[order]`` (at least 8 bytes wide), gathering whole rows as single machine words when possible."""
    width = data.shape[1]
    if width < 8:
        data = np.pad(data, ((0, 0), (0, 8 - width)))
        width = 8
    if width % 8 == 0 and data.flags.c_contiguous:
        words = data.view(np.uint64)
        picked = words[order] if width == 8 else words.reshape(-1, width // 8)[order]
        return picked.view(np.uint8).reshape(-1, width)
    return data[order]
