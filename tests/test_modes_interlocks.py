"""Each engagement interlock passes on a healthy truck and fails on the input it guards (incl. missing)."""

from dataclasses import replace
from typing import Any

import pytest

from modes import InterlockRegistry, Mode, ModeConfig, PloughPosition
from modes.testing import healthy_inputs

REGISTRY = InterlockRegistry(ModeConfig())
LOCKS = {lock.name: lock for lock in REGISTRY.all()}

# interlock name -> input changes that must make it fail
FAILING: dict[str, list[dict[str, Any]]] = {
    "speed_engage": [{"vehicle_speed_kmh": 5.01}, {"vehicle_speed_kmh": 40.0}, {"vehicle_speed_kmh": None}],
    "engine_running": [{"engine_speed_rpm": 400.0}, {"engine_speed_rpm": 0.0}, {"engine_speed_rpm": None}],
    "no_critical_dtc": [{"critical_dtc_active": True}, {"critical_dtc_active": None}],
    "inputs_fresh": [
        {"stale": frozenset({"CCVS1"})},
        {"ssc_heartbeat_ok": False},
        {"ssc_heartbeat_ok": None},
        {"serial_link_alive": False},
    ],
    "no_emergency_stop": [{"emergency_stop": True}, {"emergency_stop": None}],
    "no_fault_demand": [
        {"fault_demands": frozenset({("clog", "stow")})},
        {"fault_demands": frozenset({("x", "safe")})},
    ],
    "stationary": [{"vehicle_speed_kmh": 0.5}, {"vehicle_speed_kmh": 3.0}, {"vehicle_speed_kmh": None}],
    "parking_brake_set": [{"parking_brake_set": False}, {"parking_brake_set": None}],
    "sweeper_head_mounted": [{"sweeper_head_mounted": False}, {"sweeper_head_mounted": None}],
    "hopper_lowered": [
        {"hopper_raised": True},
        {"tipping_active": True},
        {"hopper_raised": None},
        {"tipping_active": None},
    ],
    "rear_door_closed": [{"rear_door_closed": False}, {"rear_door_closed": None}],
    "hopper_not_full": [{"hopper_fill_pct": 95.0}, {"hopper_fill_pct": 99.6}, {"hopper_fill_pct": None}],
    "snow_equipment_stowed": [
        {"auger_speed_rpm": 20.0},
        {"rotor_speed_rpm": 500.0},
        {"rotor_speed_rpm": None},
        {"plough_position": PloughPosition.LOWERED},
        {"plough_position": PloughPosition.FLOAT},
        {"plough_position": None},
    ],
    "snow_attachment_mounted": [{"snow_attachment_mounted": False}, {"snow_attachment_mounted": None}],
    "sweeper_equipment_stowed": [
        {"fan_speed_rpm": 50.0},
        {"fan_speed_rpm": None},
        {"nozzle_lowered": True},
        {"left_brush_lowered": True},
        {"right_brush_lowered": None},
    ],
}

# values at the passing side of each threshold
PASSING_EDGES: dict[str, dict[str, Any]] = {
    "speed_engage": {"vehicle_speed_kmh": 5.0},
    "stationary": {"vehicle_speed_kmh": 0.49},
    "engine_running": {"engine_speed_rpm": 400.125},
    "hopper_not_full": {"hopper_fill_pct": 94.8},
    "snow_equipment_stowed": {"auger_speed_rpm": 19.9, "rotor_speed_rpm": 19.9},
    "sweeper_equipment_stowed": {"fan_speed_rpm": 49.9},
}


def test_every_interlock_has_failing_cases() -> None:
    assert set(FAILING) == set(LOCKS)


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_interlock_passes_on_healthy_truck(name: str) -> None:
    assert LOCKS[name].holds(healthy_inputs())


@pytest.mark.parametrize(("name", "changes"), [(n, c) for n, cases in FAILING.items() for c in cases])
def test_interlock_fails_on_its_input(name: str, changes: dict[str, Any]) -> None:
    inputs = healthy_inputs(**changes)
    assert not LOCKS[name].holds(inputs)
    # and only interlocks that read a changed input fail: the failure is attributed to the right name
    failed = {lock.name for lock in REGISTRY.all() if not lock.holds(inputs)}
    assert name in failed


@pytest.mark.parametrize("name", sorted(PASSING_EDGES))
def test_interlock_passes_at_threshold_edge(name: str) -> None:
    assert LOCKS[name].holds(healthy_inputs(**PASSING_EDGES[name]))


def test_registry_groups_per_target() -> None:
    sweeper = {lock.name for lock in REGISTRY.for_target(Mode.SWEEPER, equipment_change=False)}
    snow = {lock.name for lock in REGISTRY.for_target(Mode.SNOW, equipment_change=False)}
    common = {
        "speed_engage",
        "engine_running",
        "no_critical_dtc",
        "inputs_fresh",
        "no_emergency_stop",
        "no_fault_demand",
    }
    assert sweeper == common | {
        "sweeper_head_mounted",
        "hopper_lowered",
        "rear_door_closed",
        "hopper_not_full",
        "snow_equipment_stowed",
    }
    assert snow == common | {"snow_attachment_mounted", "sweeper_equipment_stowed"}
    change = {lock.name for lock in REGISTRY.for_target(Mode.SNOW, equipment_change=True)}
    assert change == snow | {"stationary", "parking_brake_set"}
    with pytest.raises(ValueError):
        REGISTRY.for_target(Mode.TRANSPORT, equipment_change=False)


def test_failed_lists_every_failing_interlock() -> None:
    inputs = healthy_inputs(vehicle_speed_kmh=8.0, rear_door_closed=False, parking_brake_set=False)
    names = [lock.name for lock in REGISTRY.failed(Mode.SWEEPER, inputs, equipment_change=True)]
    assert names == ["speed_engage", "stationary", "parking_brake_set", "rear_door_closed"]
    assert [lock.name for lock in REGISTRY.failed(Mode.SWEEPER, inputs, equipment_change=False)] == [
        "speed_engage",
        "rear_door_closed",
    ]


def test_thresholds_follow_config() -> None:
    reg = InterlockRegistry(ModeConfig(engage_max_speed_kmh=3.0, hopper_full_pct=80.0))
    locks = {lock.name: lock for lock in reg.all()}
    assert not locks["speed_engage"].holds(healthy_inputs(vehicle_speed_kmh=4.0))
    assert not locks["hopper_not_full"].holds(healthy_inputs(hopper_fill_pct=85.0))
    assert "3 km/h" in locks["speed_engage"].description


def test_evaluate_without_inputs_fails_everything() -> None:
    results = REGISTRY.evaluate(Mode.SNOW, None, equipment_change=False)
    assert results and not any(r.ok for r in results)
    healthy = replace(healthy_inputs())
    assert all(r.ok for r in REGISTRY.evaluate(Mode.SNOW, healthy, equipment_change=True))
