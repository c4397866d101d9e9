"""Physics of the simulated vehicle, stepped deterministically (no threads, no bus)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vehicle_sim.physics import (
    FAN_RUNNING,
    HEARTBEAT_TIMEOUT_S,
    MODE_SAFE,
    MODE_SWEEPER,
    PLOUGH_FLOAT,
    PLOUGH_LOWERED,
    PLOUGH_RAISED,
    VehiclePhysics,
)

DT = 0.01


def run(p: VehiclePhysics, seconds: float, t0: float, *, heartbeat: bool = True) -> float:
    """Step ``seconds`` from ``t0`` with a heartbeat every 50 ms; returns the end time."""
    t = t0
    for k in range(round(seconds / DT)):
        t = t0 + (k + 1) * DT
        if heartbeat and k % 5 == 0:
            p.heartbeat(t)
        p.step(DT, t)
    return t


def time_until(
    p: VehiclePhysics, t0: float, cond: Callable[[], bool], limit: float = 20.0, heartbeat: bool = True
) -> float:
    t = t0
    while t - t0 < limit:
        t = run(p, DT, t, heartbeat=heartbeat)
        if cond():
            return t - t0
    raise AssertionError("condition never met")


def test_no_heartbeat_no_actuators() -> None:
    p = VehiclePhysics()
    p.commands.fan_setpoint = 3000
    run(p, 1.0, 0.0, heartbeat=False)
    assert not p.state.heartbeat_ok and not p.state.actuators_enabled
    assert p.state.fan_rpm == 0.0
    assert p.state.active_mode == MODE_SAFE


def test_fan_spin_up_and_affinity_law() -> None:
    p = VehiclePhysics()
    p.commands.fan_setpoint = 3000
    spin_up = time_until(p, 0.0, lambda: p.state.fan_rpm >= 0.95 * 3000)
    assert 5.0 <= spin_up <= 8.0
    t = run(p, 3.0, spin_up)
    assert p.state.fan_state == FAN_RUNNING
    truth = p.truth()
    assert truth["fan_speed"] == pytest.approx(3000, abs=5)
    assert truth["suction_pressure"] == pytest.approx(-3500, rel=0.02)
    assert set(truth) == {"suction_pressure", "fan_speed", "fan_drive_pressure", "nozzle_dp"}
    # half speed: a quarter of the pressure (fan affinity law)
    p.commands.fan_setpoint = 1500
    run(p, 8.0, t)
    assert p.truth()["suction_pressure"] == pytest.approx(-3500 / 4, rel=0.03)


def test_clog_deepens_vacuum_and_collapses_airflow() -> None:
    p = VehiclePhysics()
    p.commands.fan_setpoint = 2500
    t = run(p, 10.0, 0.0)
    free = p.truth()
    p.inputs.clog = 0.8
    run(p, 0.1, t)
    clogged = p.truth()
    assert clogged["suction_pressure"] < free["suction_pressure"] * 1.5
    assert clogged["nozzle_dp"] < 0.1 * free["nozzle_dp"]
    assert clogged["fan_drive_pressure"] < free["fan_drive_pressure"]


def test_heartbeat_loss_stops_actuators_within_300ms() -> None:
    p = VehiclePhysics()
    p.commands.fan_setpoint = 2000
    p.commands.brushes_on = True
    p.commands.requested_mode = MODE_SWEEPER
    t = run(p, 5.0, 0.0)
    assert p.state.actuators_enabled and p.state.active_mode == MODE_SWEEPER
    last_beat = p.commands.last_heartbeat
    assert last_beat is not None
    lost = time_until(p, t, lambda: not p.state.heartbeat_ok, heartbeat=False) + t - last_beat
    assert HEARTBEAT_TIMEOUT_S < lost <= HEARTBEAT_TIMEOUT_S + 2 * DT
    assert not p.state.actuators_enabled
    assert p.state.active_mode == MODE_SAFE
    rpm = p.state.fan_rpm
    run(p, 1.0, t + lost, heartbeat=False)
    assert p.state.fan_rpm < rpm - 300  # coasting down
    assert p.watchdog_trips == 1


def test_stalled_watchdog_trips_despite_heartbeat() -> None:
    p = VehiclePhysics()
    t = run(p, 0.5, 0.0)
    assert p.state.heartbeat_ok
    p.stall_watchdog(t, 0.5)
    t = run(p, 0.2, t)
    assert not p.state.heartbeat_ok
    run(p, 0.5, t)
    assert p.state.heartbeat_ok


def test_nozzle_travel_time_and_refused_step() -> None:
    p = VehiclePhysics()
    p.commands.nozzle_lower = True
    travel = time_until(p, 0.0, lambda: p.nozzle_lowered)
    assert 2.0 <= travel <= 3.0
    q = VehiclePhysics()
    q.inputs.refuse_step = "nozzle"
    q.commands.nozzle_lower = True
    run(q, 5.0, 0.0)
    assert not q.nozzle_lowered


def test_plough_travel_and_float() -> None:
    p = VehiclePhysics()
    p.inputs.snow_attachment_mounted = True
    p.commands.plough_cmd = PLOUGH_LOWERED
    travel = time_until(p, 0.0, lambda: p.state.plough_reported == PLOUGH_LOWERED)
    assert 2.5 <= travel <= 3.5
    p.commands.plough_cmd = PLOUGH_FLOAT
    t = run(p, 0.1, travel)
    assert p.state.plough_reported == PLOUGH_FLOAT
    p.commands.plough_cmd = PLOUGH_RAISED
    assert 2.5 <= time_until(p, t, lambda: p.state.plough_reported == PLOUGH_RAISED) <= 3.5


def test_hopper_fills_while_sweeping_and_empties_when_tipped() -> None:
    p = VehiclePhysics(fill_rate_pct_s=2.0)
    p.inputs.parking_brake = False
    p.inputs.speed_target_kmh = 8.0
    p.commands.fan_setpoint = 3000
    p.commands.nozzle_lower = True
    start = p.state.hopper_fill_pct
    t = run(p, 15.0, 0.0)
    assert p.state.speed_kmh == pytest.approx(8.0)
    assert p.state.hopper_fill_pct > start + 5.0
    p.inputs.speed_target_kmh = 0.0
    p.inputs.parking_brake = True
    p.inputs.hopper_raise = True
    p.inputs.rear_door_closed = False
    t = run(p, 1.0, t)
    assert p.hopper_raised and p.tipping
    run(p, 30.0, t)
    assert p.state.hopper_fill_pct == 0.0


def test_engine_warms_and_e_stop_disables() -> None:
    p = VehiclePhysics()
    cold = p.state.coolant_c
    t = run(p, 30.0, 0.0)
    assert p.state.coolant_c > cold + 5
    assert p.state.battery_v > 27.5
    p.inputs.e_stop = True
    run(p, 0.05, t)
    assert not p.state.actuators_enabled
    assert p.state.interlocks & 1
