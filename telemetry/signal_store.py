"""Signal store: latest value, validity, unit, timestamp and bounded history of every signal.

Owns the shared state between the hot loop (the single writer) and its readers (mode machine, API, CLI).
Keys follow docs/architecture.md: ``Message.Signal``, ``serial.<channel>``, ``serial.<channel>.raw``,
``diag.<name>``.

Concurrency: one writer, many readers, one :class:`threading.Lock`. Under the lock the writer does O(1) work
per key plus a memcpy of the appended column; readers copy arrays (latest values, a time range) and do all
formatting and decimation outside the lock.

Memory is bounded under any load: at most ``max_keys`` keys (writes to further unknown keys are dropped and
counted), each with a preallocated :class:`~telemetry.ring_buffer.RingBuffer` of fixed depth.

Change tracking: every write bumps a global sequence number :attr:`SignalStore.version` and stamps it on the
keys it touched; :meth:`SignalStore.changed_since` returns the keys stamped after a given sequence, which is how
the WebSocket pushes only what changed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from telemetry.ring_buffer import FloatArray, RingBuffer, minmax_decimate

DEFAULT_DEPTH = 3000
"""Default history depth per key: 60 s at 50 Hz."""


@dataclass(frozen=True, slots=True)
class SignalSample:
    """Latest state of one signal."""

    key: str
    value: float
    unit: str
    valid: bool
    timestamp: float
    seq: int


class _DbcSignal(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def unit(self) -> str | None: ...


class _DbcMessage(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def signals(self) -> Iterable[_DbcSignal]: ...


class _DbcDatabase(Protocol):
    @property
    def messages(self) -> Iterable[_DbcMessage]: ...


class SignalStore:
    """Latest values and ring-buffer history keyed by signal name."""

    def __init__(self, default_depth: int = DEFAULT_DEPTH, max_keys: int = 1024) -> None:
        if default_depth < 1 or max_keys < 1:
            raise ValueError("default_depth and max_keys must be >= 1")
        self.default_depth = default_depth
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self._names: list[str] = []
        self._units: list[str] = []
        self._buffers: list[RingBuffer] = []
        self._value: FloatArray = np.full(max_keys, np.nan)
        self._time: FloatArray = np.full(max_keys, np.nan)
        self._valid: npt.NDArray[np.bool_] = np.zeros(max_keys, dtype=bool)
        self._seq: npt.NDArray[np.int64] = np.zeros(max_keys, dtype=np.int64)
        self._version = 0
        self.dropped_unknown_keys = 0

    # ---- registration --------------------------------------------------------------------------------
    def register(self, key: str, unit: str = "", depth: int | None = None) -> bool:
        """Declare a key (idempotent; a later call may set the unit). False when ``max_keys`` is reached."""
        with self._lock:
            return self._register_locked(key, unit, depth) is not None

    def _register_locked(self, key: str, unit: str, depth: int | None) -> int | None:
        kid = self._ids.get(key)
        if kid is not None:
            if unit:
                self._units[kid] = unit
            return kid
        if len(self._names) >= self.max_keys:
            return None
        kid = len(self._names)
        self._ids[key] = kid
        self._names.append(key)
        self._units.append(unit)
        self._buffers.append(RingBuffer(depth or self.default_depth))
        return kid

    def register_can_database(self, database: _DbcDatabase, depth: int | None = None) -> int:
        """Register ``Message.Signal`` keys with units for every signal of a cantools database."""
        n = 0
        for msg in database.messages:
            for sig in msg.signals:
                n += self.register(f"{msg.name}.{sig.name}", unit=sig.unit or "", depth=depth)
        return n

    # ---- writer --------------------------------------------------------------------------------------
    def append(
        self,
        key: str,
        t: FloatArray,
        v: FloatArray,
        valid: bool = True,
        unit: str = "",
    ) -> bool:
        """Append columns of samples to ``key`` (registered on first use with the default depth).

        The key's latest value becomes the last appended sample; it is valid when ``valid`` is true and the
        value is finite. Returns False when the key could not be registered (store full) or nothing was stored.
        """
        t = np.asarray(t, dtype=np.float64).ravel()
        v = np.asarray(v, dtype=np.float64).ravel()
        with self._lock:
            stored = self._append_locked(key, t, v, valid, unit)
            if stored:
                self._version += 1
                self._seq[self._ids[key]] = self._version
            return stored

    def append_block(
        self, keys: Sequence[str], t: FloatArray, values: FloatArray, valid: Sequence[bool] | bool = True
    ) -> int:
        """Append row ``i`` of the K x n ``values`` to ``keys[i]``, all at timestamps ``t`` (one lock, one
        version step). Returns the number of keys that stored something."""
        t = np.asarray(t, dtype=np.float64).ravel()
        values = np.asarray(values, dtype=np.float64)
        valids = [valid] * len(keys) if isinstance(valid, bool) else list(valid)
        if values.shape != (len(keys), t.size) or len(valids) != len(keys):
            raise ValueError("values must be len(keys) x len(t), valid one per key")
        stored = 0
        with self._lock:
            self._version += 1
            for i, key in enumerate(keys):
                if self._append_locked(key, t, values[i], valids[i], ""):
                    self._seq[self._ids[key]] = self._version
                    stored += 1
        return stored

    def _append_locked(self, key: str, t: FloatArray, v: FloatArray, valid: bool, unit: str) -> bool:
        kid = self._ids.get(key)
        if kid is None or unit:
            kid = self._register_locked(key, unit, None)
            if kid is None:
                self.dropped_unknown_keys += 1
                return False
        if self._buffers[kid].append(t, v) == 0:
            return False
        last_v = float(v[-1])
        self._value[kid] = last_v
        self._time[kid] = float(t[-1])
        self._valid[kid] = valid and math.isfinite(last_v)
        return True

    def set(self, key: str, value: float, timestamp: float, valid: bool = True, unit: str = "") -> bool:
        """Append one sample (convenience over :meth:`append`)."""
        return self.append(key, np.array([timestamp]), np.array([value]), valid=valid, unit=unit)

    def set_valid(self, key: str, valid: bool) -> None:
        """Change only the validity of a key's latest value (e.g. its CAN message timed out)."""
        with self._lock:
            kid = self._ids.get(key)
            if kid is None:
                return
            new = valid and math.isfinite(self._value[kid])
            if new != self._valid[kid]:
                self._valid[kid] = new
                self._version += 1
                self._seq[kid] = self._version

    # ---- readers -------------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._version

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def unit(self, key: str) -> str | None:
        with self._lock:
            kid = self._ids.get(key)
            return None if kid is None else self._units[kid]

    def latest(self, key: str) -> SignalSample | None:
        with self._lock:
            kid = self._ids.get(key)
            if kid is None:
                return None
            return SignalSample(
                key, float(self._value[kid]), self._units[kid], bool(self._valid[kid]),
                float(self._time[kid]), int(self._seq[kid]),
            )

    def snapshot(self, keys: Iterable[str] | None = None) -> dict[str, SignalSample]:
        """Latest sample of every key (or of the given keys; unknown ones are skipped)."""
        with self._lock:
            n = len(self._names)
            names = list(self._names)
            units = list(self._units)
            ids = dict(self._ids)
            value = self._value[:n].copy()
            time_ = self._time[:n].copy()
            valid = self._valid[:n].copy()
            seq = self._seq[:n].copy()
        wanted = range(n) if keys is None else [ids[k] for k in keys if k in ids]
        return {
            names[i]: SignalSample(
                names[i], float(value[i]), units[i], bool(valid[i]), float(time_[i]), int(seq[i])
            )
            for i in wanted
        }

    def changed_since(self, seq: int) -> tuple[int, list[str]]:
        """``(current version, keys written or re-validated after sequence seq)``."""
        with self._lock:
            n = len(self._names)
            changed = np.flatnonzero(self._seq[:n] > seq)
            version = self._version
            names = self._names
            return version, [names[i] for i in changed]

    def history(
        self, key: str, t0: float = -math.inf, t1: float = math.inf, max_points: int | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Samples of ``key`` with ``t0 <= t <= t1``, oldest first, reduced to at most ``max_points`` by
        min/max decimation (see :func:`telemetry.ring_buffer.minmax_decimate`). Unknown key: empty arrays.
        """
        with self._lock:
            kid = self._ids.get(key)
            if kid is None:
                return np.empty(0), np.empty(0)
            t, v = self._buffers[kid].range(t0, t1)
        if max_points is not None:
            t, v = minmax_decimate(t, v, max_points)
        return t, v

    def nbytes(self) -> int:
        """Bytes held by the history buffers and the latest-value tables (constant after registration)."""
        with self._lock:
            hist = sum(b.nbytes for b in self._buffers)
        return hist + self._value.nbytes + self._time.nbytes + self._valid.nbytes + self._seq.nbytes

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {
                "keys": len(self._names),
                "dropped_unknown_keys": self.dropped_unknown_keys,
                "dropped_out_of_order": sum(b.dropped_out_of_order for b in self._buffers),
            }
