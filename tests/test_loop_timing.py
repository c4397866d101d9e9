"""LoopTimer: recent-window percentiles (readiness) against the whole-window summary."""

from __future__ import annotations

from telemetry.loop_timing import LoopTimer


def test_recent_percentile_forgets_slow_start_up_cycles() -> None:
    timer = LoopTimer(budget_s=0.05, window=2048)
    assert timer.recent_percentile(99, 100) == 0.0
    for _ in range(50):
        timer.record(0.2)  # slow start-up
    for _ in range(300):
        timer.record(0.001)
    assert timer.recent_percentile(99, 100) == 0.001
    assert timer.summary()["p99_us"] > 100_000  # the long window still shows the slow cycles
    assert timer.recent_percentile(99, 400) == 0.2


def test_recent_percentile_wraps_around_the_ring() -> None:
    timer = LoopTimer(budget_s=1.0, window=8)
    for i in range(20):
        timer.record(float(i))
    assert timer.recent_percentile(0, 3) == 17.0 and timer.recent_percentile(100, 3) == 19.0
    assert timer.recent_percentile(0, 100) == 12.0  # only the window's 8 values exist
