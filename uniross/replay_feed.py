"""ReplayFeed: a recording standing in for the CAN reader of a running service (``uniross run --replay``), and the
replay clock that makes the whole service live in the recording's time.

The feed thread paces `ReplaySource` batches by their timestamps into a bounded queue that the control loop drains
exactly as it drains the live reader; the service's clock follows the recording, so timeouts, ages and the mode
machine see the trial as it happened. Commands the mode machine sends go nowhere (counted): a replay never
transmits.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any

import can

from firmware_bridge.frame_batch import FrameBatch
from uniross.log_reader import LogFormatError, iter_frame_batches
from uniross.replay import ReplaySource


def first_timestamp(path: Path) -> float:
    """Timestamp of the recording's first frame (raises `LogFormatError` for an empty or unreadable log)."""
    for batch in iter_frame_batches(path, 1024):
        if len(batch):
            return float(batch.timestamp[0])
    raise LogFormatError(path, "the recording holds no frame")


class ReplayClock:
    """Recording time: ``t_first + (monotonic() - start) * speed`` once started."""

    def __init__(self, t_first: float, speed: float) -> None:
        if speed <= 0:
            raise ValueError("a live replay needs a speed > 0 (use `uniross replay` for as-fast-as-possible)")
        self.t_first = t_first
        self.speed = speed
        self._start = time.monotonic()

    def __call__(self) -> float:
        return self.t_first + (time.monotonic() - self._start) * self.speed


class ReplayFeed:
    """Duck-types the parts of `CanReader` the service uses (get_batches, send, counters, rates, lifecycle)."""

    def __init__(self, path: str | Path, speed: float = 1.0, *, queue_max: int = 256) -> None:
        self.path = Path(path)
        self.clock = ReplayClock(first_timestamp(self.path), speed)
        self._source = ReplaySource(self.path, speed)
        self._queue: queue.Queue[FrameBatch] = queue.Queue(maxsize=queue_max)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._frames = 0
        self._discarded_tx = 0
        self.finished = False
        self.error: str | None = None
        self._rate_window: list[tuple[float, int]] = []

    def start(self) -> ReplayFeed:
        self._thread = threading.Thread(target=self._run, name="replay-feed", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for batch in self._source:
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.1)  # back-pressure, never a silent drop
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
                self._frames += len(batch)
        except Exception as exc:  # a corrupt log: reported on the health page, the service keeps serving
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.finished = True

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def get_batches(self, timeout: float | None = 0.0) -> list[FrameBatch]:
        out: list[FrameBatch] = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        self._discarded_tx += 1

    def counters(self) -> dict[str, Any]:
        return {"frames": self._frames, "replay_discarded_tx": self._discarded_tx,
                "queue_depth": self._queue.qsize(), "finished": int(self.finished)}

    def frames_per_second(self) -> float:
        now = time.monotonic()
        self._rate_window = [(t, n) for t, n in self._rate_window if now - t <= 1.0] + [(now, self._frames)]
        (t0, n0), (t1, n1) = self._rate_window[0], self._rate_window[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def bus_load(self) -> float:
        return 0.0
