"""How one signal's raw ``uint64`` turns into the value cantools returns, decided once per signal.

cantools (45) computes ``conversion.raw_to_scaled(raw, decode_choices=False)`` on Python numbers: an
``IdentityConversion`` returns the raw value itself, ``LinearIntegerConversion`` gives exact Python ints
(``raw * scale + offset``), ``LinearConversion`` gives floats with Python's operand promotion
(``int * float`` converts the int to the nearest double first; ``int * int`` stays exact). This module reproduces
that with NumPy in the same operation order so the floats are bit-identical, chooses an integer dtype that holds
the exact result (``int64``, else ``uint64``, else Python ints in an ``object`` column), and falls back to
calling cantools per value when a conversion does not behave like one of the known classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from cantools.database.can import Signal

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
U64_MAX = (1 << 64) - 1
FLOAT_EXACT_INT = 1 << 53
FLOAT_BITS = {16: np.float16, 32: np.float32, 64: np.float64}


class Kind(Enum):
    I64 = "i64"  # exact int in int64: int_raw * k + off
    U64 = "u64"  # exact int in uint64 (unsigned raw, non-negative scale/offset)
    F_INT = "f_int"  # float from an int64 raw: float(int_raw * k) * fs + fo
    F_U64 = "f_u64"  # float from a 64-bit unsigned raw: float(raw) * fs + fo
    F_RAW = "f_raw"  # IEEE float signal: x or x * fs + fo
    PY = "py"  # anything else: cantools' own conversion per value


@dataclass(frozen=True)
class SignalPlan:
    name: str
    kind: Kind
    signed: bool
    length: int
    k: int = 1
    off: int = 0
    fs: float = 1.0
    fo: float = 0.0
    identity: bool = False
    int_result: bool = True
    lo: int = 0  # range of the exact result (int kinds)
    hi: int = 0

    @property
    def float_exact(self) -> bool:
        """An int result that a float64 column holds exactly (used for multiplexed signals, absent = NaN)."""
        return self.int_result and self.lo >= -FLOAT_EXACT_INT and self.hi <= FLOAT_EXACT_INT


def _raw_range(signal: Signal) -> tuple[int, int]:
    if signal.is_signed:
        return -(1 << (signal.length - 1)), (1 << (signal.length - 1)) - 1
    return 0, (1 << signal.length) - 1


def _is_number(value: object) -> bool:
    return type(value) in (int, float)


def _same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        return (a == b and math.copysign(1.0, a) == math.copysign(1.0, b)) or (math.isnan(a) and math.isnan(b))
    return a == b


def plan_signal(signal: Signal) -> SignalPlan:
    conv = signal.conversion
    scale, offset = conv.scale, conv.offset
    py = SignalPlan(signal.name, Kind.PY, signal.is_signed, signal.length)
    if not (_is_number(scale) and _is_number(offset)):
        return py
    if conv.is_float:
        return _plan_float_raw(signal, scale, offset, py)
    lo, hi = _raw_range(signal)
    probes = [0, 1, 3, lo, hi, (lo + hi) // 2]
    results = [conv.raw_to_scaled(p, False) for p in probes]
    if all(type(r) is int for r in results):
        if not (isinstance(scale, int) and isinstance(offset, int)):
            return py
        if any(r != p * scale + offset for p, r in zip(probes, results, strict=True)):
            return py
        ends = sorted((lo * scale + offset, hi * scale + offset))
        prods = (lo * scale, hi * scale)
        if all(I64_MIN <= v <= I64_MAX for v in (*ends, *prods, lo, hi)):
            return SignalPlan(signal.name, Kind.I64, signal.is_signed, signal.length, k=scale, off=offset,
                              lo=ends[0], hi=ends[1], identity=scale == 1 and offset == 0)
        if lo >= 0 and scale >= 0 and offset >= 0 and ends[1] <= U64_MAX:
            return SignalPlan(signal.name, Kind.U64, signal.is_signed, signal.length, k=scale, off=offset,
                              lo=ends[0], hi=ends[1], identity=scale == 1 and offset == 0)
        return SignalPlan(signal.name, Kind.PY, signal.is_signed, signal.length, lo=ends[0], hi=ends[1])
    if not all(type(r) is float for r in results):
        return py
    if isinstance(scale, int):
        k, fs = scale, 1.0
        expect = [float(p * scale) * fs + float(offset) for p in probes]
    else:
        k, fs = 1, scale
        expect = [float(p) * fs + float(offset) for p in probes]
    if not all(_same(e, r) for e, r in zip(expect, results, strict=True)):
        return py
    fits = all(I64_MIN <= v <= I64_MAX for v in (lo * k, hi * k, lo, hi))
    if fits:
        return SignalPlan(signal.name, Kind.F_INT, signal.is_signed, signal.length, k=k, fs=fs,
                          fo=float(offset), int_result=False)
    if k == 1:
        return SignalPlan(signal.name, Kind.F_U64, signal.is_signed, signal.length, fs=fs, fo=float(offset),
                          int_result=False)
    return SignalPlan(signal.name, Kind.PY, signal.is_signed, signal.length, int_result=False)


def _plan_float_raw(signal: Signal, scale: float, offset: float, py: SignalPlan) -> SignalPlan:
    if signal.length not in FLOAT_BITS:
        return py
    conv = signal.conversion
    probes = [1.5, -2.25, 0.1, -0.0, 1e300]
    results = [conv.raw_to_scaled(p, False) for p in probes]
    plan = SignalPlan(signal.name, Kind.F_RAW, signal.is_signed, signal.length, int_result=False, identity=True)
    if not all(_same(p, r) for p, r in zip(probes, results, strict=True)):
        plan = SignalPlan(signal.name, Kind.F_RAW, signal.is_signed, signal.length, int_result=False,
                          fs=float(scale), fo=float(offset))
        expect = [p * plan.fs + plan.fo for p in probes]
        if not all(_same(e, r) for e, r in zip(expect, results, strict=True)):
            return SignalPlan(signal.name, Kind.PY, signal.is_signed, signal.length, int_result=False)
    return plan


def raw_floats(raw: np.ndarray, length: int) -> np.ndarray:
    """IEEE bit patterns (``uint64``) of a ``length``-bit float signal as float64 values."""
    ftype = FLOAT_BITS[length]
    itype = np.dtype(f"<u{length // 8}")
    return raw.astype(itype).view(ftype).astype(np.float64)


def python_values(signal: Signal, plan: SignalPlan, raw_u: np.ndarray, raw_i: np.ndarray) -> np.ndarray:
    """Exact cantools conversion value by value (rare signals: > 64-bit results, unusual conversions)."""
    conv = signal.conversion
    if signal.conversion.is_float:
        src = raw_floats(raw_u, signal.length).tolist() if signal.length in FLOAT_BITS else []
    else:
        src = (raw_i if signal.is_signed else raw_u).tolist()
    values: list[Any] = [conv.raw_to_scaled(v, False) for v in src]
    if values and all(type(v) is float for v in values):
        return np.array(values, dtype=np.float64)
    if values and all(type(v) is int for v in values):
        lo, hi = min(values), max(values)
        if lo >= I64_MIN and hi <= I64_MAX:
            return np.array(values, dtype=np.int64)
        if lo >= 0 and hi <= U64_MAX:
            return np.array(values, dtype=np.uint64)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
