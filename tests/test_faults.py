"""Tests of telemetry.faults: hysteresis, minimum durations, latching, acknowledgement, history bounds."""

from __future__ import annotations

import math

import pytest

from telemetry.faults import FaultManager, FaultSpec


def clog_spec(**kw) -> FaultSpec:
    base = dict(
        name="clog", severity="warning", raise_threshold=1.0, clear_threshold=0.5,
        raise_after_s=2.0, clear_after_s=1.0, demands="stow",
    )
    base.update(kw)
    return FaultSpec(**base)


def feed(fm: FaultManager, name: str, values_at: list[tuple[float, float]]) -> list[bool]:
    return [fm.update(name, v, t).active for t, v in values_at]


def test_minimum_duration_before_raise_and_clear():
    fm = FaultManager([clog_spec()])
    # 1.9 s above threshold, then a dip below it: never raised.
    assert not any(feed(fm, "clog", [(t / 10, 1.5) for t in range(20)]))
    fm.update("clog", 0.8, 2.0)  # between thresholds: restarts the raise timer
    assert not any(feed(fm, "clog", [(2.5 + t / 4, 1.5) for t in range(8)]))  # 2.5 .. 4.25
    st = fm.update("clog", 1.5, 4.5)
    assert st is not None and st.active and st.raised_at == 4.5
    # Clear needs 1 s below the clear threshold.
    assert fm.update("clog", 0.4, 5.0).active
    assert fm.update("clog", 0.4, 5.75).active
    st = fm.update("clog", 0.4, 6.0)
    assert not st.active and st.cleared_at == 6.0


def test_hysteresis_band_neither_raises_nor_clears():
    fm = FaultManager([clog_spec(raise_after_s=0.0, clear_after_s=0.0)])
    assert fm.update("clog", 1.0, 0.0).active
    # Values between clear (0.5) and raise (1.0) keep it active indefinitely.
    assert all(feed(fm, "clog", [(1 + t, 0.6) for t in range(50)]))
    assert not fm.update("clog", 0.49, 60.0).active
    # ... and keep it inactive.
    assert not any(feed(fm, "clog", [(61 + t, 0.9) for t in range(50)]))


def test_below_direction_and_nan_restarts_timers():
    spec = FaultSpec("low_fill", "info", raise_threshold=10.0, clear_threshold=20.0, raise_after_s=1.0,
                     direction="below")
    fm = FaultManager([spec])
    fm.update("low_fill", 5.0, 0.0)
    fm.update("low_fill", math.nan, 0.5)
    assert not fm.update("low_fill", 5.0, 1.2).active  # timer restarted at 1.2
    assert fm.update("low_fill", 5.0, 2.2).active
    assert fm.counters()["nan_values"] == 1


def test_latched_fault_needs_acknowledge():
    fm = FaultManager([clog_spec(raise_after_s=0, clear_after_s=0, latch=True, severity="critical", demands="safe")])
    fm.update("clog", 2.0, 0.0)
    assert fm.demand() == "safe"
    assert fm.update("clog", 0.0, 1.0).active  # condition gone, still latched
    assert fm.acknowledge("clog", 2.0)
    st = fm.get("clog")
    assert st is not None and not st.active and st.acknowledged and st.cleared_at == 2.0
    assert fm.demand() is None
    assert [e.kind for e in fm.history()] == ["raised", "acknowledged", "cleared"]


def test_acknowledge_before_clear_then_clears_when_condition_goes():
    fm = FaultManager([clog_spec(raise_after_s=0, clear_after_s=0, latch=True)])
    fm.update("clog", 2.0, 0.0)
    assert fm.acknowledge("clog", 0.5)
    assert fm.update("clog", 2.0, 1.0).active
    assert not fm.update("clog", 0.1, 2.0).active
    assert not fm.acknowledge("clog", 3.0)  # nothing active
    assert not fm.acknowledge("nope", 3.0)


def test_active_ordering_demand_and_bounded_history():
    specs = [
        clog_spec(name="a", severity="info", demands=None, raise_after_s=0, clear_after_s=0),
        clog_spec(name="b", severity="critical", demands="safe", raise_after_s=0, clear_after_s=0),
        clog_spec(name="c", severity="warning", demands="stow", raise_after_s=0, clear_after_s=0),
    ]
    fm = FaultManager(specs, history_len=10)
    fm.update("a", 2, 0.0)
    fm.update("c", 2, 1.0)
    assert fm.demand() == "stow"
    fm.update("b", 2, 2.0)
    assert [s.name for s in fm.active()] == ["b", "c", "a"]
    assert fm.demand() == "safe"
    for i in range(1000):
        fm.update("a", 0 if i % 2 else 2, 3.0 + i)
    assert len(fm.history()) == 10
    assert fm.get("a").raise_count == 500  # raised at t=0, then at every even i >= 2
    assert fm.update("unknown", 1.0, 0.0) is None
    assert fm.counters()["unknown_fault"] == 1


def test_spec_validation():
    with pytest.raises(ValueError):
        clog_spec(clear_threshold=2.0)
    with pytest.raises(ValueError):
        FaultSpec("x", "info", 1.0, 0.5, direction="below")
