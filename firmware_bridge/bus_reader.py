"""CanReader: the receiving thread between the CAN bus and the codec.

It owns the bus: ``recv``s frames, groups them into `FrameBatch`es (at most ``batch_max`` frames or
``batch_period`` seconds after the first frame of a batch) and hands them over through a bounded queue. When the
consumer falls behind, the oldest batch is dropped and its frames are counted as ``overrun_frames``. Bus errors
are counted per reason and the bus is reopened with capped exponential backoff. ``send`` shares the bus with the
thread for the command gate. ``close`` stops and joins the thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import can

from firmware_bridge.can_bus import BusConfig, CanFilter, bus_load, frame_bits, open_bus
from firmware_bridge.frame_batch import FrameBatch

log = logging.getLogger(__name__)

BusFactory = Callable[[BusConfig, list[CanFilter] | None], can.BusABC]

_COUNTER_NAMES = (
    "frames",
    "batches",
    "overrun_frames",
    "overrun_batches",
    "error_frames",
    "bus_errors",
    "bus_off",
    "reopens",
    "reopen_failures",
    "tx_frames",
    "tx_errors",
)


class CanReader:
    """Receive thread with batching, a bounded hand-over queue, error counting and bus reopening.

    The bus is opened in the constructor (a bad configuration raises there); ``start()`` (or ``with``) starts the
    thread. ``bus_factory`` defaults to `open_bus` (tests inject failures through it).
    """

    def __init__(
        self,
        config: BusConfig,
        filters: list[CanFilter] | None = None,
        *,
        batch_max: int = 256,
        batch_period: float = 0.005,
        queue_max: int = 64,
        recv_timeout: float = 0.02,
        backoff_min: float = 0.05,
        backoff_max: float = 2.0,
        load_window: float = 1.0,
        bus_factory: BusFactory = open_bus,
    ) -> None:
        self.config = config
        self.filters = filters
        self.batch_max = batch_max
        self.batch_period = batch_period
        self.recv_timeout = recv_timeout
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.load_window = load_window
        self._bus_factory = bus_factory
        self._bitrate = config.effective_bitrate
        self._queue: queue.Queue[FrameBatch] = queue.Queue(maxsize=queue_max)
        self._counters: dict[str, int] = dict.fromkeys(_COUNTER_NAMES, 0)
        self._errors_by_reason: dict[str, int] = {}
        self._lock = threading.Lock()  # counters, load window, bus swap
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._window: deque[tuple[float, int, int]] = deque()  # (monotonic, frames, bits)
        self._backoff = backoff_min
        self._bus: can.BusABC | None = self._bus_factory(config, filters)

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> CanReader:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="can-reader", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread (joined with ``timeout``) and shut the bus down."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("can-reader thread did not stop within %.1f s", timeout)
        with self._send_lock:
            bus, self._bus = self._bus, None
        if bus is not None:
            self._shutdown(bus)

    def __enter__(self) -> CanReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def bus(self) -> can.BusABC | None:
        """The bus currently open (None while reopening)."""
        return self._bus

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- consumer side ---------------------------------------------------------------------------------------
    def get_batches(self, timeout: float | None = 0.0) -> list[FrameBatch]:
        """All batches waiting, oldest first; waits up to ``timeout`` for the first one (``0``: never waits)."""
        out: list[FrameBatch] = []
        try:
            if timeout:
                out.append(self._queue.get(timeout=timeout))
            else:
                out.append(self._queue.get_nowait())
        except queue.Empty:
            return out
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def send(self, msg: can.Message, timeout: float | None = 0.01) -> None:
        """Transmit on the reader's bus (thread-safe). Raises ``can.CanError`` (counted as ``tx_errors``)."""
        with self._send_lock:
            bus = self._bus
            try:
                if bus is None:
                    raise can.CanOperationError("bus is being reopened")
                bus.send(msg, timeout=timeout)
            except can.CanError:
                self._count("tx_errors")
                raise
        self._count("tx_frames")

    def counters(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = dict(self._counters)
            out["errors_by_reason"] = dict(self._errors_by_reason)
        out["queue_depth"] = self._queue.qsize()
        return out

    def frames_per_second(self) -> float:
        frames, _bits, span = self._window_totals()
        return frames / span if span > 0 else 0.0

    def bus_load(self) -> float:
        """Estimated bus load (0..1) over the last ``load_window`` seconds of received frames."""
        _frames, bits, span = self._window_totals()
        return bus_load(bits, span, self._bitrate)

    # -- thread ----------------------------------------------------------------------------------------------
    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + n

    def _window_totals(self) -> tuple[int, int, float]:
        now = time.monotonic()
        with self._lock:
            self._trim_window(now)
            frames = sum(f for _, f, _ in self._window)
            bits = sum(b for _, _, b in self._window)
        return frames, bits, self.load_window

    def _trim_window(self, now: float) -> None:
        while self._window and self._window[0][0] < now - self.load_window:
            self._window.popleft()

    def _run(self) -> None:
        pending: list[can.Message] = []
        first_at = 0.0
        while not self._stop.is_set():
            bus = self._bus
            if bus is None:
                self._reopen()
                continue
            try:
                msg = bus.recv(self.recv_timeout)
            except can.CanError as exc:
                self._flush(pending)
                pending = []
                self._on_bus_error(exc)
                continue
            except Exception as exc:  # a broken driver must not kill the reader
                self._flush(pending)
                pending = []
                self._on_bus_error(can.CanOperationError(f"{type(exc).__name__}: {exc}"))
                continue
            self._backoff = self.backoff_min
            now = time.monotonic()
            if msg is not None:
                if msg.is_error_frame:
                    self._count("error_frames")
                if not pending:
                    first_at = now
                pending.append(msg)
            if pending and (msg is None or len(pending) >= self.batch_max or now - first_at >= self.batch_period):
                self._flush(pending)
                pending = []
        self._flush(pending)

    def _flush(self, messages: list[can.Message]) -> None:
        if not messages:
            return
        batch = FrameBatch.from_messages(messages)
        bits = int(frame_bits(batch.dlc, batch.is_extended).sum())
        now = time.monotonic()
        with self._lock:
            self._counters["frames"] += len(batch)
            self._counters["batches"] += 1
            self._window.append((now, len(batch), bits))
            self._trim_window(now)
        while True:
            try:
                self._queue.put_nowait(batch)
                return
            except queue.Full:
                try:
                    dropped = self._queue.get_nowait()
                except queue.Empty:
                    continue
                with self._lock:
                    self._counters["overrun_frames"] += len(dropped)
                    self._counters["overrun_batches"] += 1

    def _on_bus_error(self, exc: can.CanError) -> None:
        reason = "bus_off" if isinstance(exc, can.CanOperationError) else "bus_errors"
        self._count(reason)
        with self._lock:
            key = type(exc).__name__
            self._errors_by_reason[key] = self._errors_by_reason.get(key, 0) + 1
        log.warning("CAN %s: %s; reopening", reason, exc)
        with self._send_lock:
            bus, self._bus = self._bus, None
        if bus is not None:
            self._shutdown(bus)

    def _reopen(self) -> None:
        delay = self._backoff
        self._backoff = min(self._backoff * 2.0, self.backoff_max)
        if self._stop.wait(delay):
            return
        try:
            bus = self._bus_factory(self.config, self.filters)
        except Exception as exc:  # CanInitializationError, OSError, ...: retry later
            self._count("reopen_failures")
            log.warning("CAN reopen failed (next try in %.2f s): %s", self._backoff, exc)
            return
        with self._send_lock:
            self._bus = bus
        self._count("reopens")

    @staticmethod
    def _shutdown(bus: can.BusABC) -> None:
        try:
            bus.shutdown()
        except Exception as exc:
            log.debug("bus shutdown failed: %s", exc)
