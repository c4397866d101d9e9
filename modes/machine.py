"""`ModeMachine`: the UniROSS mode state machine. Pure logic, no I/O, deterministic given `now`.

States TRANSPORT, SWEEPER, SNOW, SAFE and the transition states TO_SWEEPER, TO_SNOW, TO_TRANSPORT (DBC
`Mode` numbering). Each control cycle the service calls `step(inputs, now)`; requests from the engineer's
API go through `request(...)`; cab selector changes arrive inside the inputs and are arbitrated in `step()`.
Order inside `step()`: SAFE causes first (so a stale input, lost heartbeat/serial link, e-stop or a fault
demanding SAFE is acted on in the very cycle that sees it), then the cab request, then running-mode
supervision (stow demands), then the running sequence (confirm / timeout), then the setpoint guard.
The rules are in /work/shared/DESIGN.md "Modes" and docs/modes.md.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from modes.arbitration import CabArbiter
from modes.config import ModeConfig
from modes.inputs import ModeInputs
from modes.interlocks import InterlockRegistry, InterlockResult, snow_stowed, sweeper_stowed
from modes.sequences import SEQUENCE_STATES, SequenceId, Step, build_sequences, stow_sequence_for
from modes.supervision import OverspeedTimer, cause_text, guard, safe_causes, stow_reasons
from modes.types import (
    FAMILY,
    REQUESTABLE,
    SOURCE_CODES,
    STOWED,
    CommandSource,
    EventKind,
    Mode,
    ModeEvent,
    ModeOutputs,
    Refusal,
    RequestDecision,
    Setpoints,
)

_ENGAGE_SEQUENCE = {Mode.SWEEPER: SequenceId.TO_SWEEPER, Mode.SNOW: SequenceId.TO_SNOW}
_SUPERVISED = frozenset({Mode.SWEEPER, Mode.TO_SWEEPER, Mode.SNOW, Mode.TO_SNOW})


def _refusal(name: str, text: str) -> tuple[Refusal, ...]:
    return (Refusal(name, text),)


@dataclass(frozen=True, slots=True)
class ModeStatus:
    state: Mode
    since: float
    sequence: SequenceId | None
    step_index: int | None
    step_name: str | None
    step_started: float | None
    safe_causes: tuple[str, ...]  # latched causes while in SAFE, else ()
    live_safe_causes: tuple[str, ...]
    last_refusal: RequestDecision | None
    last_working_mode: Mode | None
    cab_selector: int | None
    interlocks: dict[str, tuple[InterlockResult, ...]]  # "SWEEPER" / "SNOW" -> engagement interlocks now

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.name,
            "since": self.since,
            "sequence": None if self.sequence is None else self.sequence.value,
            "step_index": self.step_index,
            "step_name": self.step_name,
            "step_started": self.step_started,
            "safe_causes": [{"name": c, "text": cause_text(c)} for c in self.safe_causes],
            "live_safe_causes": [{"name": c, "text": cause_text(c)} for c in self.live_safe_causes],
            "last_refusal": None if self.last_refusal is None else self.last_refusal.to_dict(),
            "last_working_mode": None if self.last_working_mode is None else self.last_working_mode.name,
            "cab_selector": self.cab_selector,
            "interlocks": {
                target: [{"name": r.name, "description": r.description, "ok": r.ok} for r in results]
                for target, results in self.interlocks.items()
            },
        }


class ModeMachine:
    """The mode state machine. Not thread-safe: call `step`/`request`/`status` from one thread (or lock)."""

    def __init__(self, config: ModeConfig | None = None, *, initial: Mode = Mode.TRANSPORT, now: float = 0.0):
        if initial not in (Mode.TRANSPORT, Mode.SAFE):
            raise ValueError("the machine starts in TRANSPORT or SAFE")
        self.config = config or ModeConfig()
        self.interlocks = InterlockRegistry(self.config)
        self.sequences: dict[SequenceId, tuple[Step, ...]] = build_sequences(self.config)
        self.events: deque[ModeEvent] = deque(maxlen=self.config.event_log_size)
        self._event_seq = 0
        self._pending: deque[ModeEvent] = deque(maxlen=self.config.event_log_size)
        self._arbiter = CabArbiter()
        self._overspeed = OverspeedTimer()
        self._inputs: ModeInputs | None = None
        self._state: Mode = initial
        self._since = now
        self._sequence: SequenceId | None = None
        self._step_index = 0
        self._step_started = now
        self._setpoints: Setpoints = STOWED
        self._latched: tuple[str, ...] = ("requested:startup",) if initial is Mode.SAFE else ()
        self._last_working: Mode | None = None
        self._last_refusal: RequestDecision | None = None
        self._source = CommandSource.SAFETY
        self._fault_ack_until = float("-inf")
        self.guard_trips = 0

    # ------------------------------------------------------------------ public API
    @property
    def state(self) -> Mode:
        return self._state

    def step(self, inputs: ModeInputs, now: float) -> ModeOutputs:
        """One control cycle: supervise, arbitrate, sequence; returns the setpoints and mode command."""
        self._inputs = inputs
        causes = safe_causes(inputs)
        if causes and self._state is not Mode.SAFE:
            self._enter_safe(now, causes, "safety")
        cab_target = self._arbiter.poll(inputs.cab_selector)
        if cab_target is not None:
            self._handle_request(cab_target, "cab", now, acknowledge=False)
        overspeed_s = self._overspeed.update(
            self._state in (Mode.SWEEPER, Mode.TO_SWEEPER),
            inputs.vehicle_speed_kmh,
            self.config.sweep_max_speed_kmh,
            now,
        )
        if self._state in _SUPERVISED:
            reasons = stow_reasons(inputs, self._state, self.config, overspeed_s)
            if reasons:
                self._emit(now, EventKind.STOW, "safety", self._state, Mode.TO_TRANSPORT, ",".join(reasons))
                self._start_stow(now, "safety", reasons[0])
        self._advance_sequence(inputs, now)
        setpoints, violations = guard(self._setpoints, inputs, self.config)
        if violations:
            self.guard_trips += 1
            self._enter_safe(now, tuple(f"invariant:{v}" for v in violations), "safety")
            setpoints = self._setpoints
        events = tuple(self._pending)
        self._pending.clear()
        step = self._current_step()
        return ModeOutputs(
            setpoints=setpoints,
            state=self._state,
            requested_mode=self._state,
            request_source=self._source,
            fault_ack=now < self._fault_ack_until,
            step_index=None if step is None else self._step_index,
            step_name=None if step is None else step.name,
            events=events,
        )

    def request(self, target: Mode, source: str, now: float, acknowledge: bool = False) -> RequestDecision:
        """A mode request from the cab ("cab") or the engineer's API ("remote").

        Leaving SAFE needs `acknowledge=True`, target TRANSPORT and every SAFE cause gone.
        """
        return self._handle_request(Mode(target), source, now, acknowledge)

    def status(self) -> ModeStatus:
        step = self._current_step()
        return ModeStatus(
            state=self._state,
            since=self._since,
            sequence=self._sequence,
            step_index=None if step is None else self._step_index,
            step_name=None if step is None else step.name,
            step_started=None if step is None else self._step_started,
            safe_causes=self._latched if self._state is Mode.SAFE else (),
            live_safe_causes=("no_inputs",) if self._inputs is None else safe_causes(self._inputs),
            last_refusal=self._last_refusal,
            last_working_mode=self._last_working,
            cab_selector=None if self._arbiter.selector is None else int(self._arbiter.selector),
            interlocks={
                target.name: self.interlocks.evaluate(
                    target, self._inputs, equipment_change=self._equipment_change(target)
                )
                for target in (Mode.SWEEPER, Mode.SNOW)
            },
        )

    # ------------------------------------------------------------------ requests
    def _handle_request(self, target: Mode, source: str, now: float, acknowledge: bool) -> RequestDecision:
        before = self._state
        self._emit(
            now,
            EventKind.REQUEST,
            source,
            before,
            target,
            "request",
            {"target": target.name, "acknowledge": acknowledge},
        )
        reasons, note = self._decide(target, source, now, acknowledge)
        decision = RequestDecision(not reasons, target, source, now, reasons, note)
        if reasons:
            self._last_refusal = decision
            self._emit(
                now,
                EventKind.REFUSED,
                source,
                before,
                target,
                ",".join(decision.reason_names),
                {"reasons": [{"name": r.name, "text": r.text} for r in reasons]},
            )
        else:
            self._emit(now, EventKind.ACCEPTED, source, before, target, note or "accepted", {"state": self._state.name})
        return decision

    def _decide(self, target: Mode, source: str, now: float, acknowledge: bool) -> tuple[tuple[Refusal, ...], str]:
        """Refusal reasons (empty: accepted, and the transition has been started) and a note."""
        inputs = self._inputs
        refusal = CabArbiter.source_refusal(source, None if inputs is None else inputs.cab_selector)
        if refusal is not None:
            return (refusal,), ""
        if target not in REQUESTABLE:
            return _refusal("not_requestable", f"{target.name} is a transition state, not a mode to request"), ""
        if target is Mode.SAFE:
            if self._state is not Mode.SAFE:
                self._enter_safe(now, (f"requested:{source}",), source)
            return (), "SAFE entered on request"
        if self._state is Mode.SAFE:
            return self._leave_safe(target, source, now, acknowledge)
        if target is Mode.TRANSPORT:
            if self._state in (Mode.TRANSPORT, Mode.TO_TRANSPORT):
                return (), "already stowed or stowing"
            self._start_stow(now, source, f"requested:{source}")
            return (), ""
        if self._state in FAMILY[target]:
            return (), f"already {self._state.name}"
        if self._state is Mode.TO_TRANSPORT:
            return _refusal("stowing_in_progress", "equipment is being stowed; request again in TRANSPORT"), ""
        if self._state is not Mode.TRANSPORT:
            return _refusal(
                "must_pass_through_transport", f"{self._state.name} -> {target.name} must pass through TRANSPORT"
            ), ""
        if inputs is None:
            return _refusal("no_inputs", "no inputs seen yet"), ""
        failed = self.interlocks.failed(target, inputs, equipment_change=self._equipment_change(target))
        if failed:
            return tuple(Refusal(lock.name, lock.description) for lock in failed), ""
        self._last_working = target
        self._start_sequence(_ENGAGE_SEQUENCE[target], now, source, f"requested:{source}")
        return (), ""

    def _leave_safe(self, target: Mode, source: str, now: float, acknowledge: bool) -> tuple[tuple[Refusal, ...], str]:
        if not acknowledge:
            return _refusal("safe_requires_acknowledge", "SAFE is left only by an acknowledged request"), ""
        if target is not Mode.TRANSPORT:
            return _refusal("safe_exit_only_to_transport", "SAFE is left only towards TRANSPORT"), ""
        if self._inputs is None:
            return _refusal("no_inputs", "no inputs seen yet"), ""
        live = safe_causes(self._inputs)
        if live:
            return tuple(Refusal(c, cause_text(c)) for c in live), ""
        cleared = self._latched
        self._latched = ()
        self._fault_ack_until = now + self.config.fault_ack_hold_s
        stowed = (
            sweeper_stowed(self._inputs, self.config)
            and snow_stowed(self._inputs, self.config)
            and (self._inputs.water_spray_active is False)
        )
        self._emit(
            now,
            EventKind.SAFE_LEFT,
            source,
            Mode.SAFE,
            Mode.TRANSPORT if stowed else Mode.TO_TRANSPORT,
            "acknowledged",
            {"cleared": list(cleared), "stowed": stowed},
        )
        if stowed:
            self._set_state(Mode.TRANSPORT, now, source, "acknowledged, equipment stowed")
        else:
            self._start_sequence(SequenceId.SAFE_TO_TRANSPORT, now, source, "acknowledged, stowing")
        return (), "SAFE acknowledged"

    def _equipment_change(self, target: Mode) -> bool:
        return self._last_working is not target

    # ------------------------------------------------------------------ transitions
    def _set_state(self, state: Mode, now: float, source: str, reason: str) -> None:
        if state is self._state:
            return
        self._emit(now, EventKind.TRANSITION, source, self._state, state, reason)
        self._state = state
        self._since = now
        self._source = SOURCE_CODES.get(source, CommandSource.SAFETY)

    def _enter_safe(self, now: float, causes: tuple[str, ...], source: str) -> None:
        self._emit(
            now,
            EventKind.SAFE_ENTERED,
            source,
            self._state,
            Mode.SAFE,
            ",".join(causes),
            {"causes": [{"name": c, "text": cause_text(c)} for c in causes]},
        )
        self._latched = causes
        self._sequence = None
        self._setpoints = STOWED
        self._set_state(Mode.SAFE, now, source, causes[0])

    def _start_stow(self, now: float, source: str, reason: str) -> None:
        self._start_sequence(stow_sequence_for(self._state), now, source, reason)

    def _start_sequence(self, seq: SequenceId, now: float, source: str, reason: str) -> None:
        self._sequence = seq
        self._step_index = 0
        self._set_state(SEQUENCE_STATES[seq][0], now, source, reason)
        self._start_step(now)

    def _start_step(self, now: float) -> None:
        step = self._current_step()
        assert step is not None
        self._step_started = now
        self._setpoints = step.apply(self._setpoints)

    def _current_step(self) -> Step | None:
        if self._sequence is None:
            return None
        return self.sequences[self._sequence][self._step_index]

    def _advance_sequence(self, inputs: ModeInputs, now: float) -> None:
        step = self._current_step()
        if step is None or self._sequence is None:
            return
        if step.confirmed(inputs):
            self._emit(
                now,
                EventKind.STEP_DONE,
                "safety",
                self._state,
                None,
                step.name,
                {"step_index": self._step_index, "took_s": now - self._step_started},
            )
            self._step_index += 1
            if self._step_index < len(self.sequences[self._sequence]):
                self._start_step(now)
                return
            done = SEQUENCE_STATES[self._sequence][1]
            self._sequence = None
            self._set_state(done, now, _source_name(self._source), "sequence complete")
            return
        if now - self._step_started > step.timeout_s:
            self._emit(
                now,
                EventKind.STEP_TIMEOUT,
                "safety",
                self._state,
                Mode.SAFE,
                step.name,
                {
                    "step_index": self._step_index,
                    "timeout_s": step.timeout_s,
                    "unconfirmed": [c.describe() for c in step.confirm if not c.holds(inputs)],
                },
            )
            self._enter_safe(now, (f"step_timeout:{step.name}",), "safety")

    # ------------------------------------------------------------------ events
    def _emit(
        self,
        now: float,
        kind: EventKind,
        source: str,
        from_state: Mode,
        to_state: Mode | None,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        self._event_seq += 1
        event = ModeEvent(now, kind, source, from_state, to_state, reason, details or {}, self._event_seq)
        self.events.append(event)
        self._pending.append(event)


def _source_name(code: CommandSource) -> str:
    return {CommandSource.CAB: "cab", CommandSource.REMOTE: "remote"}.get(code, "safety")
