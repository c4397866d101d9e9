"""Scenarios: the initial cab/environment inputs of the simulated vehicle and its drive cycle (speed profile).

A drive cycle is a list of segments ``(duration_s, target_speed_kmh, parking_brake)`` played in a loop. Setting the
speed through the control server switches the vehicle to ``controlled`` (no profile).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vehicle_sim.physics import CAB_REMOTE, CAB_SNOW, CAB_SWEEPER, CAB_TRANSPORT, Inputs, VehiclePhysics


@dataclass(frozen=True)
class Segment:
    duration_s: float
    speed_kmh: float
    parking_brake: bool = False


@dataclass
class DriveCycle:
    segments: list[Segment]
    repeat: bool = True

    @property
    def length_s(self) -> float:
        return sum(s.duration_s for s in self.segments)

    def at(self, elapsed: float) -> Segment:
        length = self.length_s
        if length <= 0:
            return Segment(0.0, 0.0, True)
        t = elapsed % length if self.repeat else min(elapsed, length - 1e-9)
        for segment in self.segments:
            if t < segment.duration_s:
                return segment
            t -= segment.duration_s
        return self.segments[-1]


@dataclass
class Scenario:
    name: str
    inputs: dict[str, object] = field(default_factory=dict)
    cycle: DriveCycle | None = None

    def setup(self, physics: VehiclePhysics) -> None:
        with physics.lock:
            physics.inputs = Inputs(**self.inputs)  # type: ignore[arg-type]

    def apply(self, physics: VehiclePhysics, elapsed: float) -> None:
        """Drive the speed profile (nothing for a controlled scenario)."""
        if self.cycle is None:
            return
        segment = self.cycle.at(elapsed)
        with physics.lock:
            physics.inputs.speed_target_kmh = segment.speed_kmh
            physics.inputs.parking_brake = segment.parking_brake


STATIONARY = Segment(10.0, 0.0, True)
SCENARIOS: dict[str, Scenario] = {
    "idle": Scenario("idle", {"cab_selector": CAB_TRANSPORT}),
    "remote": Scenario("remote", {"cab_selector": CAB_REMOTE}),
    "drive": Scenario(
        "drive",
        {"cab_selector": CAB_TRANSPORT},
        DriveCycle([STATIONARY, Segment(30.0, 40.0), Segment(20.0, 15.0), Segment(5.0, 0.0), STATIONARY]),
    ),
    "sweep": Scenario(
        "sweep",
        {"cab_selector": CAB_SWEEPER},
        DriveCycle([STATIONARY, Segment(60.0, 6.0), Segment(5.0, 0.0), STATIONARY]),
    ),
    "snow": Scenario(
        "snow",
        {"cab_selector": CAB_SNOW, "sweeper_head_mounted": False, "snow_attachment_mounted": True},
        DriveCycle([STATIONARY, Segment(60.0, 15.0), Segment(5.0, 0.0), STATIONARY]),
    ),
    "controlled": Scenario("controlled", {"cab_selector": CAB_REMOTE}),
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r} (one of {', '.join(SCENARIOS)})") from None
