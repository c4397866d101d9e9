"""ModeMachine: transitions, step timeouts, SAFE entry/exit, supervision, arbitration, events."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from modes import (
    DEFAULT_TIMEOUTS_S,
    SEQUENCE_STEPS,
    STOWED,
    CabSelector,
    CommandSource,
    EventKind,
    Mode,
    ModeConfig,
    ModeInputs,
    ModeMachine,
    ModeOutputs,
    PloughPosition,
    RequestDecision,
    SequenceId,
    Setpoints,
)
from modes.testing import healthy_inputs, ideal_feedback

DT = 0.0625  # 1/16 s: exact in binary, so tick times add up without rounding


class Rig:
    """A machine, a clock and a baseline; feedback follows the setpoints ideally unless given."""

    def __init__(self, config: ModeConfig | None = None, **base: Any) -> None:
        self.m = ModeMachine(config)
        self.base = healthy_inputs(**base)
        self.t = 0.0
        self.out = self.m.step(self.base, self.t)

    def feedback(self, **changes: Any) -> ModeInputs:
        return replace(ideal_feedback(self.out.setpoints, self.base), **changes)

    def tick(self, dt: float = DT, inputs: ModeInputs | None = None, **changes: Any) -> ModeOutputs:
        self.t += dt
        self.out = self.m.step(inputs if inputs is not None else self.feedback(**changes), self.t)
        return self.out

    def run_until(self, state: Mode, limit_s: float = 60.0, **changes: Any) -> list[str]:
        """Tick until `state`; returns the step names seen on the way."""
        seen: list[str] = []
        end = self.t + limit_s
        while self.out.state is not state:
            assert self.t < end, f"stuck in {self.out.state.name}"
            self.tick(**changes)
            if self.out.step_name and (not seen or seen[-1] != self.out.step_name):
                seen.append(self.out.step_name)
        return seen

    def ask(self, target: Mode, source: str = "remote", acknowledge: bool = False) -> RequestDecision:
        return self.m.request(target, source, self.t, acknowledge=acknowledge)

    def engage(self, target: Mode) -> None:
        assert self.ask(target).accepted
        self.run_until(target)

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.m.events]


def enter_sequence(rig: Rig, seq: SequenceId) -> None:
    """Bring the rig into `seq` at its first step."""
    if seq is SequenceId.TO_SWEEPER:
        assert rig.ask(Mode.SWEEPER).accepted
    elif seq is SequenceId.TO_SNOW:
        assert rig.ask(Mode.SNOW).accepted
    elif seq is SequenceId.SWEEPER_TO_TRANSPORT:
        rig.engage(Mode.SWEEPER)
        assert rig.ask(Mode.TRANSPORT).accepted
    elif seq is SequenceId.SNOW_TO_TRANSPORT:
        rig.engage(Mode.SNOW)
        assert rig.ask(Mode.TRANSPORT).accepted
    else:
        rig.engage(Mode.SWEEPER)
        working = rig.feedback()
        assert rig.tick(inputs=replace(working, emergency_stop=True)).state is Mode.SAFE
        rig.tick(inputs=working)  # e-stop released, equipment still out
        assert rig.ask(Mode.TRANSPORT, acknowledge=True).accepted
    assert rig.m.status().sequence is seq and rig.m.status().step_index == 0


# ---------------------------------------------------------------- sequences
@pytest.mark.parametrize("seq", list(SequenceId))
def test_sequence_runs_its_steps_in_order(seq: SequenceId) -> None:
    rig = Rig()
    enter_sequence(rig, seq)
    final = Mode.SWEEPER if seq is SequenceId.TO_SWEEPER else Mode.SNOW if seq is SequenceId.TO_SNOW else Mode.TRANSPORT
    seen = list(dict.fromkeys([SEQUENCE_STEPS[seq][0], *rig.run_until(final)]))
    assert seen == list(dict.fromkeys(SEQUENCE_STEPS[seq]))
    done = [e.reason for e in rig.m.events if e.kind is EventKind.STEP_DONE][-len(SEQUENCE_STEPS[seq]) :]
    assert done == list(SEQUENCE_STEPS[seq])


def test_to_sweeper_commands_actuators_one_step_at_a_time() -> None:
    rig = Rig()
    rig.ask(Mode.SWEEPER)
    snapshots: dict[str, Setpoints] = {}
    while rig.out.state is not Mode.SWEEPER:
        rig.tick()
        if rig.out.step_name:
            snapshots.setdefault(rig.out.step_name, rig.out.setpoints)
    assert snapshots["lower_brushes"] == replace(STOWED, nozzle_cmd=1, brushes_cmd=1)
    assert snapshots["water_on"] == replace(STOWED, nozzle_cmd=1, brushes_cmd=1, water_cmd=1)
    assert snapshots["fan_ramp_up"].fan_speed_rpm == 2400.0
    assert rig.out.setpoints == replace(STOWED, nozzle_cmd=1, brushes_cmd=1, water_cmd=1, fan_speed_rpm=2400.0)


def test_to_snow_and_back_commands() -> None:
    rig = Rig()
    rig.engage(Mode.SNOW)
    assert rig.out.setpoints == replace(
        STOWED, plough_cmd=PloughPosition.LOWERED, auger_speed_rpm=250.0, rotor_speed_rpm=1500.0
    )
    rig.ask(Mode.TRANSPORT)
    rig.run_until(Mode.TRANSPORT)
    assert rig.out.setpoints == STOWED


def test_fan_step_waits_for_ten_percent_band() -> None:
    rig = Rig()
    enter_sequence(rig, SequenceId.TO_SWEEPER)
    rig.run_until(Mode.TO_SWEEPER)
    while rig.out.step_name != "fan_ramp_up":
        rig.tick()
    for _ in range(10):
        assert rig.tick(fan_speed_rpm=2400.0 * 0.89).step_name == "fan_ramp_up"
    assert rig.tick(fan_speed_rpm=2400.0 * 0.91).state is Mode.SWEEPER


def _step_cases() -> list[tuple[SequenceId, int]]:
    return [(seq, k) for seq, names in SEQUENCE_STEPS.items() for k in range(len(names))]


@pytest.mark.parametrize(("seq", "index"), _step_cases())
def test_each_step_timeout_drives_safe_in_that_cycle(seq: SequenceId, index: int) -> None:
    rig = Rig()
    enter_sequence(rig, seq)
    while rig.m.status().step_index != index:
        rig.tick()
    status = rig.m.status()
    step = rig.m.sequences[seq][index]
    assert status.step_started is not None
    deadline = status.step_started + DEFAULT_TIMEOUTS_S[step.name]
    # the actuator does not confirm: its feedback fields go missing
    stuck: dict[str, Any] = {c.field: None for c in step.confirm}
    while rig.t + DT <= deadline:
        assert rig.tick(**stuck).state is status.state
    out = rig.tick(**stuck)
    assert rig.t > deadline
    assert out.state is Mode.SAFE and out.setpoints == STOWED
    assert any(e.kind is EventKind.STEP_TIMEOUT and e.reason == step.name for e in out.events)
    assert rig.m.status().safe_causes == (f"step_timeout:{step.name}",)


def test_step_timeouts_are_configurable() -> None:
    rig = Rig(ModeConfig(step_timeouts_s={"lower_nozzle": 0.2}))
    rig.ask(Mode.SWEEPER)
    rig.tick(nozzle_lowered=False)
    rig.tick(nozzle_lowered=False)
    rig.tick(nozzle_lowered=False)
    assert rig.tick(nozzle_lowered=False).state is Mode.SAFE
    with pytest.raises(ValueError):
        ModeMachine(ModeConfig(step_timeouts_s={"no_such_step": 1.0}))


def test_a_stuck_old_value_times_out_like_a_missing_one() -> None:
    rig = Rig()
    rig.ask(Mode.SNOW)
    for _ in range(80):  # 80 * 1/16 s = 5.0 s: not yet beyond the timeout
        assert rig.tick(plough_position=PloughPosition.RAISED).state is Mode.TO_SNOW
    assert rig.tick(plough_position=PloughPosition.RAISED).state is Mode.SAFE  # 5.0 s timeout exceeded


# ---------------------------------------------------------------- SAFE entry
SAFE_TRIGGERS: dict[str, dict[str, Any]] = {
    "stale": {"stale": frozenset({"SSC_Suction"})},
    "heartbeat_lost": {"ssc_heartbeat_ok": False},
    "heartbeat_na": {"ssc_heartbeat_ok": None},
    "serial_link_lost": {"serial_link_alive": False},
    "estop": {"emergency_stop": True},
    "estop_na": {"emergency_stop": None},
    "fault_safe": {"fault_demands": frozenset({("fan_imbalance", "safe")})},
}


def _reach(rig: Rig, state: Mode) -> None:
    if state is Mode.TRANSPORT:
        return
    if state in (Mode.TO_SWEEPER, Mode.TO_SNOW):
        rig.ask(Mode.SWEEPER if state is Mode.TO_SWEEPER else Mode.SNOW)
        rig.tick()
    elif state in (Mode.SWEEPER, Mode.SNOW):
        rig.engage(state)
    else:
        rig.engage(Mode.SWEEPER)
        rig.ask(Mode.TRANSPORT)
        rig.tick()
    assert rig.out.state is state


@pytest.mark.parametrize("trigger", sorted(SAFE_TRIGGERS))
@pytest.mark.parametrize(
    "state", [Mode.TRANSPORT, Mode.TO_SWEEPER, Mode.SWEEPER, Mode.TO_SNOW, Mode.SNOW, Mode.TO_TRANSPORT]
)
def test_safety_trigger_drives_safe_in_the_same_step(trigger: str, state: Mode) -> None:
    rig = Rig()
    _reach(rig, state)
    out = rig.tick(**SAFE_TRIGGERS[trigger])
    assert out.state is Mode.SAFE
    assert out.setpoints == STOWED
    assert out.requested_mode is Mode.SAFE and out.request_source is CommandSource.SAFETY
    entered = [e for e in out.events if e.kind is EventKind.SAFE_ENTERED]
    assert len(entered) == 1 and entered[0].from_state is state


def test_safe_setpoints_stop_and_raise_everything() -> None:
    assert STOWED.signals() == {
        "FanSpeedSetpoint": 0.0,
        "NozzleCmd": 0,
        "BrushesCmd": 0,
        "WaterCmd": 0,
        "PloughCmd": 0,
        "AugerSpeedSetpoint": 0.0,
        "RotorSpeedSetpoint": 0.0,
    }


def test_requesting_safe_enters_it_and_needs_acknowledge() -> None:
    rig = Rig()
    rig.engage(Mode.SNOW)
    assert rig.ask(Mode.SAFE).accepted
    assert rig.m.state is Mode.SAFE and rig.tick().setpoints == STOWED
    assert rig.ask(Mode.TRANSPORT).reason_names == ("safe_requires_acknowledge",)


# ---------------------------------------------------------------- SAFE exit
def test_safe_is_left_only_by_acknowledge_with_cause_gone() -> None:
    rig = Rig()
    rig.engage(Mode.SWEEPER)
    rig.tick(emergency_stop=True)
    assert rig.m.state is Mode.SAFE
    rig.tick(emergency_stop=True)
    assert rig.ask(Mode.TRANSPORT).reason_names == ("safe_requires_acknowledge",)
    assert rig.ask(Mode.TRANSPORT, acknowledge=True).reason_names == ("emergency_stop",)
    assert rig.ask(Mode.SWEEPER, acknowledge=True).reason_names == ("safe_exit_only_to_transport",)
    for _ in range(100):  # SAFE holds by itself, cause gone or not
        assert rig.tick().state is Mode.SAFE
    assert rig.m.status().safe_causes == ("emergency_stop",)
    decision = rig.ask(Mode.TRANSPORT, acknowledge=True)
    assert decision.accepted
    assert rig.m.state is Mode.TRANSPORT  # ideal feedback of SAFE setpoints: everything stowed
    out = rig.tick()
    assert out.fault_ack and out.mode_command_signals() == {"RequestedMode": 0, "RequestSource": 1, "FaultAck": 1}
    rig.tick(dt=1.0)
    assert not rig.out.fault_ack
    assert EventKind.SAFE_LEFT in rig.kinds()


def test_safe_exit_into_stow_sequence_when_equipment_is_out() -> None:
    rig = Rig()
    enter_sequence(rig, SequenceId.SAFE_TO_TRANSPORT)
    assert rig.m.state is Mode.TO_TRANSPORT
    rig.run_until(Mode.TRANSPORT)


def test_latched_cause_is_cleared_by_acknowledge() -> None:
    rig = Rig()
    rig.ask(Mode.SWEEPER)
    while rig.m.state is not Mode.SAFE:
        rig.tick(nozzle_lowered=None)
    assert rig.ask(Mode.TRANSPORT, acknowledge=True).accepted
    assert rig.m.status().safe_causes == ()


def test_remote_acknowledge_needs_the_selector_on_remote() -> None:
    rig = Rig(cab_selector=CabSelector.TRANSPORT)
    rig.tick(serial_link_alive=False)
    rig.tick()
    decision = rig.ask(Mode.TRANSPORT, acknowledge=True)
    assert decision.reason_names == ("cab_selector_not_remote",)
    assert rig.m.request(Mode.TRANSPORT, "cab", rig.t, acknowledge=True).accepted


def test_acknowledge_lists_every_live_cause() -> None:
    rig = Rig()
    rig.tick(stale=frozenset({"CCVS1", "EEC1"}), serial_link_alive=False)
    decision = rig.ask(Mode.TRANSPORT, acknowledge=True)
    assert decision.reason_names == ("stale:CCVS1", "stale:EEC1", "serial_link_lost")
    assert all(r.text for r in decision.reasons)


def test_machine_can_start_in_safe() -> None:
    m = ModeMachine(initial=Mode.SAFE)
    assert m.step(healthy_inputs(), 0.0).state is Mode.SAFE
    assert m.request(Mode.TRANSPORT, "remote", 0.1, acknowledge=True).accepted
    with pytest.raises(ValueError):
        ModeMachine(initial=Mode.SWEEPER)


# ---------------------------------------------------------------- supervision
def test_sweeper_overspeed_for_more_than_two_seconds_stows() -> None:
    rig = Rig()
    rig.engage(Mode.SWEEPER)
    rig.tick(vehicle_speed_kmh=26.0)
    start = rig.t
    while rig.t + DT <= start + 2.0:
        assert rig.tick(vehicle_speed_kmh=26.0).state is Mode.SWEEPER
    out = rig.tick(vehicle_speed_kmh=26.0)
    assert out.state is Mode.TO_TRANSPORT
    assert any(e.kind is EventKind.STOW and "overspeed" in e.reason for e in out.events)


def test_overspeed_timer_restarts_when_speed_drops() -> None:
    rig = Rig()
    rig.engage(Mode.SWEEPER)
    for _ in range(3):
        for _ in range(30):  # 1.5 s above
            assert rig.tick(vehicle_speed_kmh=30.0).state is Mode.SWEEPER
        rig.tick(vehicle_speed_kmh=25.0)  # at the limit is allowed
    for _ in range(34):
        rig.tick(vehicle_speed_kmh=None)  # unknown speed counts as over the limit
    assert rig.out.state is Mode.TO_TRANSPORT


def test_sweeper_speed_at_working_pace_is_fine() -> None:
    rig = Rig()
    rig.engage(Mode.SWEEPER)
    for _ in range(200):
        assert rig.tick(vehicle_speed_kmh=18.0, parking_brake_set=False).state is Mode.SWEEPER


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"hopper_raised": True}, "hopper_raised"),
        ({"tipping_active": True}, "tipping_active"),
        ({"critical_dtc_active": True}, "critical_dtc"),
        ({"fault_demands": frozenset({("clog", "stow")})}, "fault:clog"),
        ({"engine_speed_rpm": 0.0}, "engine_not_running"),
        ({"sweeper_head_mounted": False}, "sweeper_head_not_mounted"),
    ],
)
@pytest.mark.parametrize("state", [Mode.TO_SWEEPER, Mode.SWEEPER])
def test_sweeper_stow_triggers(changes: dict[str, Any], reason: str, state: Mode) -> None:
    rig = Rig()
    _reach(rig, state)
    out = rig.tick(**changes)
    assert out.state is Mode.TO_TRANSPORT
    stow = [e for e in out.events if e.kind is EventKind.STOW]
    assert stow and reason in stow[0].reason.split(",")
    assert rig.m.status().sequence is SequenceId.SWEEPER_TO_TRANSPORT


def test_snow_stow_trigger_and_hopper_does_not_matter_in_snow() -> None:
    rig = Rig()
    rig.engage(Mode.SNOW)
    assert rig.tick(hopper_raised=True, vehicle_speed_kmh=45.0).state is Mode.SNOW
    assert rig.tick(snow_attachment_mounted=False).state is Mode.TO_TRANSPORT
    assert rig.m.status().sequence is SequenceId.SNOW_TO_TRANSPORT


# ---------------------------------------------------------------- requests and interlocks
def test_engagement_refused_above_5_kmh_with_failed_interlocks() -> None:
    rig = Rig()
    rig.engage(Mode.SWEEPER)
    rig.ask(Mode.TRANSPORT)
    rig.run_until(Mode.TRANSPORT)
    rig.tick(vehicle_speed_kmh=5.5, parking_brake_set=False)
    decision = rig.ask(Mode.SWEEPER)
    assert not decision.accepted and decision.reason_names == ("speed_engage",)
    assert rig.m.state is Mode.TRANSPORT
    assert rig.m.status().last_refusal == decision
    rig.tick(vehicle_speed_kmh=5.0, parking_brake_set=False)
    assert rig.ask(Mode.SWEEPER).accepted  # same equipment again: no standstill needed


def test_first_engagement_and_equipment_change_need_standstill_and_parking_brake() -> None:
    rig = Rig(parking_brake_set=False, vehicle_speed_kmh=2.0)
    assert rig.ask(Mode.SWEEPER).reason_names == ("stationary", "parking_brake_set")
    rig.base = replace(rig.base, parking_brake_set=True, vehicle_speed_kmh=0.0)
    rig.tick()
    rig.engage(Mode.SWEEPER)
    rig.ask(Mode.TRANSPORT)
    rig.run_until(Mode.TRANSPORT)
    rig.tick(parking_brake_set=False)
    assert rig.ask(Mode.SNOW).reason_names == ("parking_brake_set",)
    rig.tick(parking_brake_set=True, vehicle_speed_kmh=0.4)
    assert rig.ask(Mode.SNOW).accepted


@pytest.mark.parametrize(
    ("start", "target"),
    [(Mode.SWEEPER, Mode.SNOW), (Mode.TO_SWEEPER, Mode.SNOW), (Mode.SNOW, Mode.SWEEPER), (Mode.TO_SNOW, Mode.SWEEPER)],
)
def test_sweeper_snow_never_direct(start: Mode, target: Mode) -> None:
    rig = Rig()
    _reach(rig, start)
    decision = rig.ask(target)
    assert decision.reason_names == ("must_pass_through_transport",)
    assert rig.m.state is start


def test_working_request_while_stowing_is_refused() -> None:
    rig = Rig()
    _reach(rig, Mode.TO_TRANSPORT)
    assert rig.ask(Mode.SWEEPER).reason_names == ("stowing_in_progress",)


def test_transport_request_aborts_an_engagement() -> None:
    rig = Rig()
    _reach(rig, Mode.TO_SWEEPER)
    assert rig.ask(Mode.TRANSPORT).accepted
    assert rig.m.status().sequence is SequenceId.SWEEPER_TO_TRANSPORT
    rig.run_until(Mode.TRANSPORT)


def test_repeated_requests_are_idempotent_and_transition_states_not_requestable() -> None:
    rig = Rig()
    assert rig.ask(Mode.TRANSPORT).accepted and rig.m.state is Mode.TRANSPORT
    _reach(rig, Mode.TO_SNOW)
    assert rig.ask(Mode.SNOW).accepted and rig.m.state is Mode.TO_SNOW
    assert rig.ask(Mode.TO_SWEEPER).reason_names == ("not_requestable",)
    assert rig.m.request(Mode.SNOW, "bogus", rig.t).reason_names == ("unknown_source",)


def test_request_before_any_inputs_is_refused() -> None:
    m = ModeMachine()
    assert m.request(Mode.SWEEPER, "cab", 0.0).reason_names == ("no_inputs",)
    assert m.request(Mode.SWEEPER, "remote", 0.0).reason_names == ("cab_selector_not_remote",)


# ---------------------------------------------------------------- arbitration through step()
def test_cab_selector_changes_are_cab_requests_and_win() -> None:
    rig = Rig(cab_selector=CabSelector.TRANSPORT)
    assert rig.ask(Mode.SWEEPER).reason_names == ("cab_selector_not_remote",)
    out = rig.tick(cab_selector=CabSelector.SWEEPER)
    assert out.state is Mode.TO_SWEEPER and out.request_source is CommandSource.CAB
    requests = [e for e in out.events if e.kind is EventKind.REQUEST]
    assert [e.source for e in requests] == ["remote", "cab"]  # the refused remote one, then the cab's
    rig.base = replace(rig.base, cab_selector=CabSelector.SWEEPER)
    rig.run_until(Mode.SWEEPER)
    out = rig.tick(cab_selector=CabSelector.OFF)  # OFF stows
    assert out.state is Mode.TO_TRANSPORT


def test_selector_first_value_does_not_engage() -> None:
    rig = Rig(cab_selector=CabSelector.SWEEPER)
    for _ in range(5):
        assert rig.tick().state is Mode.TRANSPORT


def test_remote_requests_when_selector_on_remote_and_cab_takes_back() -> None:
    rig = Rig(cab_selector=CabSelector.REMOTE)
    rig.engage(Mode.SWEEPER)
    out = rig.tick(cab_selector=CabSelector.TRANSPORT)
    assert out.state is Mode.TO_TRANSPORT and out.request_source is CommandSource.CAB
    assert rig.ask(Mode.SWEEPER).reason_names == ("cab_selector_not_remote",)


def test_cab_request_in_safe_is_refused_and_logged() -> None:
    rig = Rig(cab_selector=CabSelector.TRANSPORT)
    out = rig.tick(cab_selector=CabSelector.SNOW, emergency_stop=True)
    assert out.state is Mode.SAFE
    refused = [e for e in out.events if e.kind is EventKind.REFUSED]
    assert refused[0].source == "cab" and refused[0].reason == "safe_requires_acknowledge"


# ---------------------------------------------------------------- invariant guard
def test_fan_never_commanded_while_auger_measured_running() -> None:
    rig = Rig()
    rig.ask(Mode.SWEEPER)
    while rig.out.step_name != "fan_ramp_up":
        rig.tick()
    out = rig.tick(auger_speed_rpm=60.0)
    assert out.state is Mode.SAFE and out.setpoints.fan_speed_rpm == 0.0
    assert rig.m.guard_trips == 1
    assert rig.m.status().safe_causes == ("invariant:fan_cmd_while_snow_turning",)


def test_snow_never_commanded_while_fan_measured_running() -> None:
    rig = Rig()
    rig.ask(Mode.SNOW)
    while rig.out.step_name != "auger_up":
        rig.tick()
    out = rig.tick(fan_speed_rpm=900.0)
    assert out.state is Mode.SAFE and out.setpoints.auger_speed_rpm == 0.0


# ---------------------------------------------------------------- events and status
def test_events_are_bounded_ordered_and_reported_once() -> None:
    rig = Rig(ModeConfig(event_log_size=8))
    assert rig.out.events == ()
    for _ in range(10):
        assert rig.ask(Mode.TRANSPORT).accepted  # request + accepted: 2 events each
    assert [e.seq for e in rig.m.events] == list(range(13, 21))
    out = rig.tick()
    assert [e.seq for e in out.events] == list(range(13, 21))  # pending events are bounded the same way
    assert rig.tick().events == ()


def test_every_request_has_request_and_decision_events() -> None:
    rig = Rig()
    rig.ask(Mode.SWEEPER)
    rig.ask(Mode.SNOW)
    kinds = [(e.kind, e.source) for e in rig.m.events]
    assert kinds[:4] == [
        (EventKind.REQUEST, "remote"),
        (EventKind.TRANSITION, "remote"),
        (EventKind.ACCEPTED, "remote"),
        (EventKind.REQUEST, "remote"),
    ]
    refused = rig.m.events[-1]
    assert refused.kind is EventKind.REFUSED and refused.from_state is Mode.TO_SWEEPER
    assert refused.details["reasons"][0]["name"] == "must_pass_through_transport"


def test_status_is_json_serialisable_and_shows_interlocks() -> None:
    rig = Rig(rear_door_closed=False)
    status = rig.m.status()
    doc = json.loads(json.dumps(status.to_dict()))
    assert doc["state"] == "TRANSPORT"
    door = [r for r in doc["interlocks"]["SWEEPER"] if r["name"] == "rear_door_closed"]
    assert door == [{"name": "rear_door_closed", "description": "hopper rear door closed", "ok": False}]
    assert all(r["ok"] for r in doc["interlocks"]["SNOW"])
    json.dumps([e.to_dict() for e in rig.m.events])


def test_outputs_pack_into_the_dbc_messages() -> None:
    cantools = pytest.importorskip("cantools")
    db = cantools.database.load_file("dbc/uniross.dbc")
    rig = Rig()
    rig.engage(Mode.SNOW)
    for name, values in (
        ("OBC_Setpoints", rig.out.setpoint_signals()),
        ("OBC_ModeCommand", rig.out.mode_command_signals()),
    ):
        msg = db.get_message_by_name(name)
        data = msg.encode({**values, "Counter": 0, "Checksum": 0})
        decoded = msg.decode(data, decode_choices=False)
        assert {k: decoded[k] for k in values} == pytest.approx(values)


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        ModeConfig(fan_setpoint_rpm=200.0)
    with pytest.raises(ValueError):
        ModeConfig(rotor_setpoint_rpm=1505.0)
    with pytest.raises(ValueError):
        ModeConfig(step_timeouts_s={"lower_nozzle": 0.0})
