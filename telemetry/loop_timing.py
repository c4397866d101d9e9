"""Per-call timing of a real-time loop: fixed-memory percentiles, a log histogram, deadline misses.

Owns :class:`LoopTimer`. Durations go into a preallocated window (percentiles over the most recent calls) and
into a cumulative histogram with log-spaced bins from 1 us to 1 s; calls longer than the cycle budget count as
deadline misses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

HIST_EDGES_S = np.logspace(-6, 0, 25)
"""Histogram bin edges in seconds (1 us .. 1 s, 4 bins per decade); the last bin also takes longer calls."""


class LoopTimer:
    """Records call durations; thread-safe snapshot via :meth:`summary`."""

    def __init__(self, budget_s: float, window: int = 2048) -> None:
        self.budget_s = budget_s
        self._window = np.zeros(window)
        self._n = 0
        self._hist = np.zeros(HIST_EDGES_S.size + 1, dtype=np.int64)
        self._misses = 0
        self._total_s = 0.0
        self._max_s = 0.0
        self._last_s = 0.0
        self._lock = threading.Lock()

    def record(self, duration_s: float) -> None:
        with self._lock:
            self._window[self._n % self._window.size] = duration_s
            self._n += 1
            self._hist[int(np.searchsorted(HIST_EDGES_S, duration_s, side="right"))] += 1
            self._total_s += duration_s
            self._max_s = max(self._max_s, duration_s)
            self._last_s = duration_s
            if duration_s > self.budget_s:
                self._misses += 1

    @contextmanager
    def measure(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record(time.perf_counter() - start)

    def recent_percentile(self, q: float, calls: int) -> float:
        """Percentile ``q`` (0..100, seconds) of the last ``calls`` durations (fewer if fewer were recorded)."""
        with self._lock:
            n = min(self._n, self._window.size, calls)
            if n == 0:
                return 0.0
            end = self._n % self._window.size
            idx = (np.arange(end - n, end)) % self._window.size
            recent = self._window[idx].copy()
        return float(np.percentile(recent, q))

    def summary(self) -> dict[str, Any]:
        """Counts, mean/p50/p90/p99/max (us, percentiles over the recent window), misses, histogram."""
        with self._lock:
            n = self._n
            recent = self._window[: min(n, self._window.size)].copy()
            hist = self._hist.copy()
            misses, total, mx, last = self._misses, self._total_s, self._max_s, self._last_s
        p50, p90, p99 = (np.percentile(recent, [50, 90, 99]) * 1e6) if n else (0.0, 0.0, 0.0)
        return {
            "calls": n,
            "budget_us": self.budget_s * 1e6,
            "deadline_misses": misses,
            "last_us": last * 1e6,
            "mean_us": (total / n * 1e6) if n else 0.0,
            "p50_us": float(p50),
            "p90_us": float(p90),
            "p99_us": float(p99),
            "max_us": mx * 1e6,
            "histogram": {"edges_us": (HIST_EDGES_S * 1e6).tolist(), "counts": hist.tolist()},
        }
