"""The running service: owns the threads and the I/O around the pure `Pipeline`.

- the CAN reader thread (python-can bus from the settings) hands frame batches over a bounded queue;
- the serial firmware link (optional) hands sample batches;
- the control loop thread runs at ``control_rate_hz``: drains both, feeds the pipeline, runs one control step
  (mode machine) and sends setpoints, mode command and the heartbeat through the command gate; so a hung loop
  stops the heartbeat and the SSC stops its actuators on its own;
- with ``sim.embedded`` the simulated vehicle (CAN + serial firmware on a pty) runs inside the process (demo).

`ServiceView` (uniross.service_view) exposes it to the API.

Clock: the service clock is wall-clock time (``time.time``), because CAN frame timestamps (kernel or python-can)
and recordings are wall-clock; every timeout compares like with like. A wall-clock step (NTP) can at worst make
inputs look stale for one cycle, which drives the machine to SAFE: the safe direction.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware_bridge.bus_reader import CanReader
from firmware_bridge.can_bus import BusConfig, dbc_filters
from firmware_bridge.command_gate import CommandGate
from firmware_bridge.dbc_database import load_database
from firmware_bridge.serial_link import SerialLink
from firmware_bridge.serial_link.messages import CHANNEL_NAMES
from firmware_bridge.serial_link.receiver import FirmwareRecordEvent, LinkEvent, LinkEventKind
from uniross.config import ServiceSettings
from uniross.pipeline import Pipeline, PipelineConfig
from uniross.recording import Recorder, SampleRecorder

log = logging.getLogger("uniross.service")

#: firmware record severity (DEBUG..CRITICAL = 0..4) -> logging level
_FIRMWARE_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.CRITICAL}

#: reception timeouts are scaled by this when the simulated vehicle runs inside the service's process (see config)
EMBEDDED_SIM_TIMEOUT_SCALE = 3.0


class Service:
    """Lifecycle: ``start()`` / ``stop()`` (or ``with``). Thread-safe read access goes through `ServiceView`."""

    def __init__(self, settings: ServiceSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.db = load_database(settings.dbc)
        bus = settings.bus.model_dump(exclude_none=True)
        self.embedded_sim: Any = None
        self.sim_control: Any = None
        self.firmware_sim: Any = None
        self._sim_thread: threading.Thread | None = None
        if settings.sim.embedded and "interface" not in bus:
            bus.update(interface="virtual", channel=f"uniross-{uuid.uuid4().hex[:8]}")
        self.bus_config = BusConfig(**bus)
        self.reader: Any
        if settings.replay is not None:
            from uniross.replay_feed import ReplayFeed

            self.reader = ReplayFeed(settings.replay, settings.replay_speed)
            self.clock = clock = self.reader.clock
        else:
            self.reader = CanReader(self.bus_config, dbc_filters(self.db) if settings.dbc_filters else None)
        self.gate = CommandGate(self.reader, self.db, settings.source_address)
        self.recorder: Recorder | None = None
        if settings.record is not None:
            self.recorder = Recorder(settings.record, max_bytes=settings.record_max_bytes,
                                     max_seconds=settings.record_max_seconds)
        serial_url = settings.serial.url
        if settings.sim.embedded:
            serial_url = self._start_embedded_sim(serial_url)
        self.pipeline = Pipeline(
            self.db,
            PipelineConfig(
                control_period_s=1.0 / settings.control_rate_hz,
                serial_required=settings.serial.required and serial_url is not None,
                history_depth=settings.history_depth,
                check_timeout_scale=settings.check_timeout_scale or (EMBEDDED_SIM_TIMEOUT_SCALE
                                                                     if settings.sim.embedded else 1.0),
            ),
            gate=self.gate,
            now=clock(),
        )
        self.link: SerialLink | None = None
        if serial_url is not None:
            self.link = SerialLink(serial_url, baudrate=settings.serial.baudrate,
                                   link_timeout=settings.serial.link_timeout_s, clock=clock, start=False)
        self.link_events: deque[LinkEvent | FirmwareRecordEvent] = deque(maxlen=256)
        self.sample_recorder: SampleRecorder | None = None
        if settings.record is not None and self.link is not None:
            self.sample_recorder = SampleRecorder(Path(settings.record).with_suffix(".usmp"), CHANNEL_NAMES)
        self.cycles = 0
        self.overruns = 0
        self.started_at = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loop_error: str | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def _start_embedded_sim(self, serial_url: str | None) -> str | None:
        """Run the simulated vehicle in a thread of this process on the service's bus; with no serial URL
        configured, its firmware simulator serves the link on a pty. Returns the serial URL to open."""
        from vehicle_sim.runner import run_simulator

        ready = threading.Event()
        started: dict[str, Any] = {}

        def on_ready(vehicle: Any, control: Any, firmware: Any) -> None:
            started.update(vehicle=vehicle, control=control, firmware=firmware)
            ready.set()

        self._sim_stop = threading.Event()
        self._sim_thread = threading.Thread(
            target=run_simulator,
            args=(self.bus_config,),
            kwargs={"control_port": self.settings.sim.control_port, "serial_url": "pty" if serial_url is None else None,
                    "scenario": self.settings.sim.scenario, "stop_event": self._sim_stop, "on_ready": on_ready},
            name="embedded-sim",
            daemon=True,
        )
        self._sim_thread.start()
        if not ready.wait(10.0):
            raise RuntimeError("the embedded simulated vehicle did not start")
        self.embedded_sim = started["vehicle"]
        self.sim_control = started["control"]
        self.firmware_sim = started["firmware"]
        firmware = started["firmware"]
        return serial_url if firmware is None else str(firmware.link_url)

    def start(self) -> Service:
        self.reader.start()
        if self.link is not None:
            self.link.start()
        self._thread = threading.Thread(target=self._run, name="control-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.link is not None:
            self.link.close()
        self.reader.close()
        for recorder in (self.recorder, self.sample_recorder):
            if recorder is not None:
                recorder.close()
        if self._sim_thread is not None:
            self._sim_stop.set()
            self._sim_thread.join(timeout)

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def loop_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- the control loop ------------------------------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.settings.control_rate_hz
        next_due = self.clock()
        while not self._stop.is_set():
            try:
                self.cycle(self.clock())
            except Exception as exc:  # never let the loop die; the heartbeat stops only if we hang
                self.loop_error = f"{type(exc).__name__}: {exc}"
                log.exception("control cycle failed")
            self.cycles += 1
            next_due += period
            delay = next_due - self.clock()
            if delay < 0:
                self.overruns += 1
                next_due = self.clock()  # no burst of catch-up cycles
                continue
            self._stop.wait(delay)

    def _on_link_event(self, event: LinkEvent | FirmwareRecordEvent) -> None:
        """Serial link state changes and the firmware's own LOG/FAULT records: kept (bounded) and logged."""
        self.link_events.append(event)
        if isinstance(event, LinkEvent):
            level = logging.INFO if event.kind is LinkEventKind.LINK_UP else logging.WARNING
            log.log(level, "serial link %s: %s", event.kind.value, event.reason)
            return
        record = event.record
        kind = f"fault {record.code} {'raised' if record.active else 'cleared'}" if record.is_fault else "log"
        log.log(_FIRMWARE_LEVELS.get(record.severity, logging.WARNING), "SSC firmware %s: %s", kind, record.text)

    def cycle(self, now: float) -> None:
        """One control cycle: everything received since the last one, then the mode machine and the commands."""
        for batch in self.reader.get_batches(timeout=0.0):
            if self.recorder is not None:
                self.recorder.submit_batch(batch)  # queued; the writer thread does the I/O
            self.pipeline.ingest_frames(batch, now)
        if self.link is not None:
            for samples in self.link.drain_samples():
                if self.sample_recorder is not None:
                    self.sample_recorder.submit_samples(samples)
                self.pipeline.ingest_samples(samples, now)
            for event in self.link.drain_events():
                self._on_link_event(event)
            self.pipeline.set_serial_alive(self.link.is_alive(now))
        self.pipeline.control_step(now)
