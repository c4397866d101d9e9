"""Pipeline transmission: the OBC's messages at their DBC cycle times, and at once when their content changes."""

from __future__ import annotations

from collections.abc import Mapping

from firmware_bridge.dbc_database import default_database
from modes import Mode
from uniross.pipeline import Pipeline, PipelineConfig


class RecordingGate:
    """Collects what the pipeline hands to the command gate (the real gate is tested on a bus elsewhere)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, float | int]]] = []

    def send(self, name: str, values: Mapping[str, float | int]) -> None:
        self.sent.append((name, dict(values)))


def test_cyclic_and_on_change_transmission() -> None:
    gate = RecordingGate()
    pipeline = Pipeline(default_database(), PipelineConfig(serial_required=False), gate=gate, now=0.0)
    for k in range(20):  # 1 s at 20 Hz, nothing received: stowed, startup grace
        pipeline.control_step(k * 0.05)
    names = [n for n, _ in gate.sent]
    assert names.count("OBC_Heartbeat") == 20 and names.count("OBC_Setpoints") == 20  # 50 ms messages
    assert names.count("OBC_ModeCommand") == 10  # 100 ms message, content unchanged
    gate.sent.clear()
    pipeline.control_step(6.0)  # past the start-up grace with no inputs: SAFE, a changed mode command goes out now
    pipeline.control_step(6.05)
    mode_cmds = [v for n, v in gate.sent if n == "OBC_ModeCommand"]
    assert pipeline.machine.state is Mode.SAFE
    assert mode_cmds and mode_cmds[0]["RequestedMode"] == int(Mode.SAFE)
