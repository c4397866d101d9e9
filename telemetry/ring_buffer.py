"""Fixed-memory ring buffer of (timestamp, value) float64 pairs, plus min/max decimation.

Owns the history storage of the signal store. Memory is preallocated once (``2 * depth * 8`` bytes) and never
grows: appending more than ``depth`` samples overwrites the oldest. Appends are whole NumPy columns copied in at
most two slices. Timestamps must not decrease; samples older than the newest stored one are dropped and counted
(:attr:`RingBuffer.dropped_out_of_order`) so that range queries can binary-search.

Not thread-safe by itself: :class:`telemetry.signal_store.SignalStore` holds the lock.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class RingBuffer:
    """Preallocated circular history of one signal."""

    __slots__ = ("_n", "_t", "_v", "_write", "depth", "dropped_out_of_order")

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.depth = depth
        self._t: FloatArray = np.full(depth, np.nan)
        self._v: FloatArray = np.full(depth, np.nan)
        self._write = 0  # next slot to write
        self._n = 0  # number of valid samples (<= depth)
        self.dropped_out_of_order = 0

    @property
    def nbytes(self) -> int:
        return self._t.nbytes + self._v.nbytes

    def __len__(self) -> int:
        return self._n

    def last_time(self) -> float:
        return float(self._t[self._write - 1]) if self._n else -np.inf

    def append(self, t: FloatArray, v: FloatArray) -> int:
        """Append equal-length columns (timestamps non-decreasing); returns how many samples were stored."""
        t = np.asarray(t, dtype=np.float64).ravel()
        v = np.asarray(v, dtype=np.float64).ravel()
        n = t.size
        if n != v.size:
            raise ValueError("timestamp and value columns differ in length")
        if n == 0:
            return 0
        # Fast path: in order (NaN compares False, so it also takes the slow path).
        if not (t[0] >= self.last_time() and (n == 1 or bool((t[1:] >= t[:-1]).all()))):
            # Keep the samples that are finite, not older than what is stored and not older than any earlier
            # sample of this column.
            ok = np.isfinite(t) & (t >= np.maximum.accumulate(np.where(np.isfinite(t), t, -np.inf)))
            ok &= t >= self.last_time()
            self.dropped_out_of_order += int(n - ok.sum())
            t, v = t[ok], v[ok]
            n = t.size
            if n == 0:
                return 0
        w = self._write
        if n == 1:
            self._t[w] = t[0]
            self._v[w] = v[0]
        else:
            if n > self.depth:
                t, v = t[-self.depth :], v[-self.depth :]
                n = self.depth
            first = min(n, self.depth - w)
            self._t[w : w + first] = t[:first]
            self._v[w : w + first] = v[:first]
            rest = n - first
            if rest:
                self._t[:rest] = t[first:]
                self._v[:rest] = v[first:]
        self._write = (w + n) % self.depth
        self._n = min(self._n + n, self.depth)
        return n

    def _ordered_segments(self) -> tuple[tuple[FloatArray, FloatArray], ...]:
        if self._n < self.depth:
            return ((self._t[: self._n], self._v[: self._n]),)
        w = self._write
        return ((self._t[w:], self._v[w:]), (self._t[:w], self._v[:w]))

    def range(self, t0: float, t1: float) -> tuple[FloatArray, FloatArray]:
        """Copies of the samples with ``t0 <= t <= t1``, oldest first (binary search + memcpy)."""
        ts: list[FloatArray] = []
        vs: list[FloatArray] = []
        for seg_t, seg_v in self._ordered_segments():
            a = int(np.searchsorted(seg_t, t0, side="left"))
            b = int(np.searchsorted(seg_t, t1, side="right"))
            if b > a:
                ts.append(seg_t[a:b])
                vs.append(seg_v[a:b])
        if not ts:
            return np.empty(0), np.empty(0)
        return np.concatenate(ts), np.concatenate(vs)


def minmax_decimate(t: FloatArray, v: FloatArray, max_points: int) -> tuple[FloatArray, FloatArray]:
    """Reduce to at most ``max_points`` samples keeping each bucket's minimum and maximum sample.

    The series is cut into ``max_points // 2`` equal-count buckets; from each bucket the samples holding the
    minimum and the maximum value are kept, in time order (one sample when they coincide). Extremes, such as
    spikes, therefore stay visible on a plot. NaN samples (gaps) are only kept from buckets that hold nothing
    else. ``max_points < 2`` keeps the last sample.
    """
    n = t.size
    if n <= max_points:
        return t, v
    if max_points < 2:
        return t[-1:], v[-1:]
    buckets = max_points // 2
    width = -(-n // buckets)  # ceil
    buckets = -(-n // width)
    pad = buckets * width - n
    nan = np.isnan(v)
    lo = np.concatenate((np.where(nan, np.inf, v), np.full(pad, np.inf))).reshape(buckets, width)
    hi = np.concatenate((np.where(nan, -np.inf, v), np.full(pad, -np.inf))).reshape(buckets, width)
    base = np.arange(buckets) * width
    idx = np.concatenate((base + lo.argmin(axis=1), base + hi.argmax(axis=1)))
    idx = np.unique(np.minimum(idx, n - 1))
    return t[idx], v[idx]
