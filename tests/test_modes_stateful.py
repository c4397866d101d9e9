"""Property test: random request / disturbance / time sequences against the mode machine and a plant model.

After every machine call the DESIGN.md "Modes" rules are checked by an oracle that reads only the inputs,
the outputs and the audit trail (not the machine's internals):
- fan setpoint > 300 rpm never together with an auger/rotor setpoint > 0; measured likewise;
- a transition into a working mode starts only at <= 5 km/h (and, on equipment change, < 0.5 km/h with the
  parking brake set); SWEEPER <-> SNOW never direct (every transition is an allowed edge);
- stale input / heartbeat or serial link lost / e-stop / fault demanding SAFE -> SAFE in that same step;
- a transition step never outlives its timeout; SAFE outputs are the stowed setpoints;
- SAFE is left only by an acknowledged request with every cause gone;
- SWEEPER above 25 km/h for more than 2 s -> no longer SWEEPER.
Example count: UNIROSS_MODES_EXAMPLES (default 2000, about 20 s).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from modes import (
    DEFAULT_TIMEOUTS_S,
    SAFETY_INPUT_MESSAGES,
    STOWED,
    CabSelector,
    EventKind,
    Mode,
    ModeInputs,
    ModeMachine,
    PloughPosition,
    RequestDecision,
)
from modes.testing import ACTUATORS, ActuatorPlant, healthy_inputs

EXAMPLES = int(os.environ.get("UNIROSS_MODES_EXAMPLES", "2000"))
ALLOWED = {
    Mode.TRANSPORT: {Mode.TO_SWEEPER, Mode.TO_SNOW, Mode.SAFE},
    Mode.TO_SWEEPER: {Mode.SWEEPER, Mode.TO_TRANSPORT, Mode.SAFE},
    Mode.SWEEPER: {Mode.TO_TRANSPORT, Mode.SAFE},
    Mode.TO_SNOW: {Mode.SNOW, Mode.TO_TRANSPORT, Mode.SAFE},
    Mode.SNOW: {Mode.TO_TRANSPORT, Mode.SAFE},
    Mode.TO_TRANSPORT: {Mode.TRANSPORT, Mode.SAFE},
    Mode.SAFE: {Mode.TRANSPORT, Mode.TO_TRANSPORT},
}
ENGAGED = {Mode.TO_SWEEPER: Mode.SWEEPER, Mode.TO_SNOW: Mode.SNOW}
COVERAGE: Counter[str] = Counter()

DISTURBANCES: dict[str, st.SearchStrategy[Any]] = {
    "stale": st.sampled_from(sorted(SAFETY_INPUT_MESSAGES)),
    "ssc_heartbeat_ok": st.sampled_from([False, None]),
    "serial_link_alive": st.just(False),
    "emergency_stop": st.sampled_from([True, None]),
    "critical_dtc_active": st.sampled_from([True, None]),
    "fault_demands": st.sampled_from(["stow", "safe"]),
    "engine_speed_rpm": st.sampled_from([0.0, None]),
    "hopper_raised": st.just(True),
    "tipping_active": st.just(True),
    "rear_door_closed": st.just(False),
    "hopper_fill_pct": st.sampled_from([94.0, 96.0, None]),
    "sweeper_head_mounted": st.sampled_from([False, None]),
    "snow_attachment_mounted": st.sampled_from([False, None]),
}
#: measured values a sensor glitch (or a hand-turned auger) may report, overriding the plant
GLITCHES: dict[str, st.SearchStrategy[Any]] = {
    "fan_speed_rpm": st.sampled_from([900.0, None]),
    "auger_speed_rpm": st.sampled_from([60.0, None]),
    "rotor_speed_rpm": st.sampled_from([300.0, None]),
    "plough_position": st.sampled_from([PloughPosition.FLOAT, None]),
    "nozzle_height_mm": st.just(None),
}


def oracle_safe_causes(i: ModeInputs) -> bool:
    return bool(
        i.stale
        or i.ssc_heartbeat_ok is not True
        or not i.serial_link_alive
        or i.emergency_stop is not False
        or any(d == "safe" for _, d in i.fault_demands)
    )


class ModeMachineModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = ModeMachine()
        self.plant = ActuatorPlant()
        self.env = healthy_inputs(cab_selector=CabSelector.REMOTE)
        self.t = 0.0
        self.inputs = self.plant.feedback(self.env)
        self.out = self.m.step(self.inputs, self.t)
        self.last_seq = 0
        self.state = self.out.state
        self.step_key: tuple[Any, ...] | None = None
        self.step_since = 0.0
        self.over_since: float | None = None
        self.last_working: Mode | None = None
        self.ack_allowed = False
        self.glitches: dict[str, Any] = {}

    # ------------------------------------------------------------ driving
    def tick(self, dt: float) -> None:
        self.plant.advance(self.out.setpoints, dt)
        self.t += dt
        self.inputs = replace(self.plant.feedback(self.env), **self.glitches)
        before = self.m.state
        self.out = self.m.step(self.inputs, self.t)
        self.check_step(before)
        self.check_common()

    def set_env(self, **changes: Any) -> None:
        self.env = replace(self.env, **changes)
        self.tick(0.05)

    @rule(n=st.integers(1, 40), dt=st.sampled_from([0.05, 0.25, 1.0]))
    def advance(self, n: int, dt: float) -> None:
        for _ in range(n):
            self.tick(dt)

    @rule()
    def settle(self) -> None:
        """Let a running transition finish (or time out)."""
        for _ in range(120):
            if self.m.state not in (Mode.TO_SWEEPER, Mode.TO_SNOW, Mode.TO_TRANSPORT):
                break
            self.tick(0.25)

    @rule(speed=st.sampled_from([0.0, 0.0, 0.3, 4.9, 5.0, 5.5, 12.0, 25.0, 26.0, 60.0, None]))
    def speed(self, speed: float | None) -> None:
        self.set_env(vehicle_speed_kmh=speed)

    @rule(on=st.sampled_from([True, True, False, None]))
    def parking_brake(self, on: bool | None) -> None:
        self.set_env(parking_brake_set=on)

    @rule(selector=st.sampled_from([*CabSelector, None]))
    def cab_selector(self, selector: CabSelector | None) -> None:
        self.set_env(cab_selector=selector)

    @rule(
        mode=st.sampled_from([Mode.TRANSPORT, Mode.SWEEPER, Mode.SNOW, Mode.SWEEPER, Mode.SNOW, Mode.SAFE]),
        source=st.sampled_from(["remote", "remote", "remote", "cab"]),
        acknowledge=st.booleans(),
    )
    def request(self, mode: Mode, source: str, acknowledge: bool) -> None:
        target = mode
        before = self.m.state
        self.ack_allowed = (
            acknowledge
            and target is Mode.TRANSPORT
            and not oracle_safe_causes(self.inputs)
            and (source == "cab" or self.inputs.cab_selector is CabSelector.REMOTE)
        )
        decision = self.m.request(target, source, self.t, acknowledge=acknowledge)
        self.check_decision(before, target, source, decision)
        self.check_common()
        self.ack_allowed = False
        self.tick(0.05)

    @rule(kind=st.sampled_from(sorted(DISTURBANCES)), data=st.data())
    def disturb(self, kind: str, data: st.DataObject) -> None:
        value = data.draw(DISTURBANCES[kind])
        if kind == "stale":
            self.set_env(stale=self.env.stale | {value})
        elif kind == "fault_demands":
            self.set_env(fault_demands=frozenset({("diag", value)}))
        else:
            self.set_env(**{kind: value})

    @rule(actuator=st.sampled_from(ACTUATORS))
    def stuck(self, actuator: str) -> None:
        self.plant.stuck.add(actuator)
        self.tick(0.05)

    @rule(field=st.sampled_from(sorted(GLITCHES)), data=st.data())
    def glitch(self, field: str, data: st.DataObject) -> None:
        self.glitches[field] = data.draw(GLITCHES[field])
        self.tick(0.05)

    @rule()
    def heal(self) -> None:
        self.plant.stuck.clear()
        self.glitches.clear()
        keep = {f: getattr(self.env, f) for f in ("vehicle_speed_kmh", "parking_brake_set", "cab_selector")}
        self.env = healthy_inputs(**keep)
        self.tick(0.05)

    # ------------------------------------------------------------ oracle
    def check_decision(self, before: Mode, target: Mode, source: str, decision: RequestDecision) -> None:
        if source == "remote" and self.inputs.cab_selector is not CabSelector.REMOTE:
            assert not decision.accepted and decision.reason_names == ("cab_selector_not_remote",)
        if not decision.accepted:
            assert decision.reasons and self.m.state is before

    def check_step(self, before: Mode) -> None:
        i, out = self.inputs, self.out
        if oracle_safe_causes(i):
            assert out.state is Mode.SAFE, "SAFE cause not acted on in the same step"
        if before is Mode.SWEEPER and not (i.vehicle_speed_kmh is not None and i.vehicle_speed_kmh <= 25.0):
            if self.over_since is None:
                self.over_since = self.t
            elif self.t - self.over_since > 2.0:
                assert out.state is not Mode.SWEEPER, "SWEEPER above 25 km/h for more than 2 s"
        else:
            self.over_since = None
        sp = out.setpoints
        snow_turning = not all(v is not None and v < 20.0 for v in (i.auger_speed_rpm, i.rotor_speed_rpm))
        fan_running = not (i.fan_speed_rpm is not None and i.fan_speed_rpm < 300.0)
        assert not (snow_turning and sp.fan_speed_rpm > 0.0), "fan commanded while auger/rotor turn"
        assert not (fan_running and (sp.auger_speed_rpm > 0.0 or sp.rotor_speed_rpm > 0.0)), "snow cmd, fan on"
        if out.state in (Mode.SAFE, Mode.TRANSPORT):
            assert sp == STOWED
        elif out.state is Mode.SWEEPER:
            assert sp.auger_speed_rpm == sp.rotor_speed_rpm == 0.0 and sp.nozzle_cmd == 1 and sp.fan_speed_rpm > 300
        elif out.state is Mode.SNOW:
            assert sp.fan_speed_rpm == 0.0 and sp.plough_cmd == PloughPosition.LOWERED

    def check_common(self) -> None:
        out, i = self.out, self.inputs
        state = self.m.state
        sp = out.setpoints
        assert not (sp.fan_speed_rpm > 300.0 and (sp.auger_speed_rpm > 0.0 or sp.rotor_speed_rpm > 0.0))
        if not self.glitches:  # measured: holds whenever the sensors tell the truth (stuck actuators included)
            assert not (
                (i.fan_speed_rpm or 0.0) > 300.0
                and ((i.auger_speed_rpm or 0.0) > 20.0 or (i.rotor_speed_rpm or 0.0) > 20.0)
            ), "fan and snow equipment measured running together"
        # audit trail: every transition an allowed edge, engagement only when allowed, SAFE left only by ack
        new = [e for e in self.m.events if e.seq > self.last_seq]
        if new:
            self.last_seq = new[-1].seq
        for e in new:
            if e.kind is not EventKind.TRANSITION:
                continue
            assert e.to_state is not None and e.to_state in ALLOWED[e.from_state], (e.from_state, e.to_state)
            assert e.from_state is self.state
            self.state = e.to_state
            COVERAGE[e.to_state.name] += 1
            if e.to_state in ENGAGED:
                working = ENGAGED[e.to_state]
                assert i.vehicle_speed_kmh is not None and i.vehicle_speed_kmh <= 5.0
                if working is not self.last_working:
                    assert i.vehicle_speed_kmh < 0.5 and i.parking_brake_set is True
                assert i.engine_speed_rpm is not None and i.engine_speed_rpm > 400.0
                self.last_working = working
            if e.from_state in (Mode.SWEEPER, Mode.TO_SWEEPER) and e.to_state is Mode.TO_TRANSPORT:
                COVERAGE[f"stow:{e.reason}"] += 1
            if e.from_state is Mode.SAFE:
                assert self.ack_allowed, "SAFE left without acknowledge or with a cause present"
                COVERAGE["safe_left"] += 1
        assert self.state is state
        # no step outlives its timeout
        status = self.m.status()
        key = (state, status.sequence, status.step_index)
        if key != self.step_key:
            self.step_key, self.step_since = key, self.t
        if status.step_name is not None:
            assert self.t - self.step_since <= DEFAULT_TIMEOUTS_S[status.step_name], "step outlived its timeout"
        assert (status.step_name is not None) == (state in (Mode.TO_SWEEPER, Mode.TO_SNOW, Mode.TO_TRANSPORT))


def test_mode_machine_rules_hold_under_random_operation() -> None:
    COVERAGE.clear()
    run_state_machine_as_test(
        ModeMachineModel,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            derandomize=True,
        ),
    )
    # the run must actually have exercised the machine, not only refusals
    print(dict(COVERAGE))
    for reached in ("SWEEPER", "SNOW", "SAFE", "TO_TRANSPORT", "TRANSPORT", "safe_left"):
        assert COVERAGE[reached] >= max(5, EXAMPLES // 100), (reached, dict(COVERAGE))
    assert COVERAGE["stow:overspeed"] >= 1 and COVERAGE["stow:hopper_raised"] >= 1, dict(COVERAGE)
