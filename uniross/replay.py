"""Replay of a recording: as FrameBatches paced by their timestamps, through the live pipeline, or onto a bus.

* `ReplaySource(path, speed)`: FrameBatches of at most ``batch_period`` seconds of recording each; ``speed`` 1.0 is
  real time, 2.0 twice as fast, 0 as fast as possible. The service's ``run --replay`` feeds these to its pipeline.
* `replay_pipeline`: the recording through `uniross.pipeline.Pipeline` (codec, checks, DM1, hot loop, store, mode
  machine) with the recording's own timestamps as the clock and a control step every control period: the mode
  transitions the machine makes are returned as events. Deterministic: the same frames give the same events.
* `replay_to_bus`: the frames onto a python-can bus with ``can.MessageSync`` semantics (paced by timestamps).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import can
import numpy as np
from cantools.database.can import Database

from firmware_bridge.frame_batch import FrameBatch
from uniross.log_reader import DEFAULT_CHUNK, iter_frame_batches, iter_messages


class _Pacer:
    """Sleeps until recording time ``t`` is due: ``(t - t_first) / speed`` after the first call."""

    def __init__(self, speed: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._origin: tuple[float, float] | None = None

    def wait(self, t: float) -> None:
        if self.speed <= 0:
            return
        if self._origin is None:
            self._origin = (t, self._clock())
            return
        due = self._origin[1] + (t - self._origin[0]) / self.speed
        delay = due - self._clock()
        if delay > 0:
            self._sleep(delay)


class ReplaySource:
    """FrameBatches of a recording, each spanning at most ``batch_period`` s of recording time, paced by ``speed``."""

    def __init__(self, path: str | Path, speed: float = 0.0, *, batch_period: float = 0.02,
                 chunk: int = DEFAULT_CHUNK, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 = as fast as possible)")
        self.path = Path(path)
        self.speed = speed
        self.batch_period = batch_period
        self.chunk = chunk
        self._pacer = _Pacer(speed, clock, sleep)
        self.frames = 0

    def __iter__(self) -> Iterator[FrameBatch]:
        for chunk in iter_frame_batches(self.path, self.chunk):
            if len(chunk) == 0:
                continue
            slot = np.floor((chunk.timestamp - chunk.timestamp[0]) / self.batch_period).astype(np.int64)
            bounds = np.flatnonzero(np.diff(slot)) + 1
            for part in np.split(np.arange(len(chunk)), bounds):
                batch = chunk.select(part)
                self._pacer.wait(float(batch.timestamp[-1]))
                self.frames += len(batch)
                yield batch


@dataclass
class ReplayResult:
    frames: int = 0
    control_steps: int = 0
    mode_events: list[tuple[float, str]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)
    final_signals: dict[str, float] = field(default_factory=dict)


def replay_pipeline(path: str | Path, db: Database, *, speed: float = 0.0, serial_required: bool = False,
                    on_batch: Callable[[Any, float], None] | None = None) -> ReplayResult:
    """Feed the recording through a fresh `Pipeline` (module docstring); ``on_batch(pipeline, now)`` per batch."""
    from uniross.pipeline import Pipeline, PipelineConfig

    config = PipelineConfig(serial_required=serial_required)
    period = config.control_period_s
    pipeline: Pipeline | None = None
    result = ReplayResult()
    next_step = 0.0
    last_state: str | None = None
    for batch in ReplaySource(path, speed, batch_period=period):
        now = float(batch.timestamp[-1])
        if pipeline is None:
            pipeline = Pipeline(db, config, now=float(batch.timestamp[0]))
            next_step = float(batch.timestamp[0]) + period
        pipeline.ingest_frames(batch, now)
        while next_step <= now:
            outputs = pipeline.control_step(next_step)
            result.control_steps += 1
            state = outputs.state.name
            if state != last_state:
                result.mode_events.append((round(next_step, 6), state))
                last_state = state
            next_step += period
        if on_batch is not None:
            on_batch(pipeline, now)
    if pipeline is not None:
        result.frames = pipeline.frames_in
        result.counters = pipeline.counters()
        snapshot = pipeline.store.snapshot()
        result.final_signals = {k: float(s.value) for k, s in snapshot.items()
                                if isinstance(s.value, int | float) and s.valid}
    return result


def replay_to_bus(path: str | Path, bus: can.BusABC, *, speed: float = 1.0,
                  clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """Send every frame of the recording on ``bus`` paced by its timestamps (``speed`` 0: back to back)."""
    pacer = _Pacer(speed, clock, sleep)
    sent = 0
    for msg in iter_messages(path):
        pacer.wait(msg.timestamp)
        bus.send(msg)
        sent += 1
    return sent
