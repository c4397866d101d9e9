"""run_simulator: wires physics, the CAN node, the HTTP control server and (with ``serial_url``) the serial firmware
simulator, and blocks until ``duration`` elapsed or ``stop_event`` is set (Ctrl-C also stops it)."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from firmware_bridge.can_bus import BusConfig
from vehicle_sim.can_node import SimulatedVehicle
from vehicle_sim.control import ControlServer
from vehicle_sim.physics import VehiclePhysics
from vehicle_sim.scenarios import get_scenario

log = logging.getLogger(__name__)


def start_firmware_simulator(serial_url: str, physics: VehiclePhysics) -> Any:
    """The serial firmware simulator fed by ``physics.truth`` (so serial samples and CAN agree)."""
    from vehicle_sim.firmware_sim import FirmwareSimulator

    return FirmwareSimulator(serial_url, truth=physics.truth)


def run_simulator(
    bus_config: BusConfig,
    *,
    duration: float | None = None,
    control_port: int | None = None,
    serial_url: str | None = None,
    scenario: str = "idle",
    stop_event: threading.Event | None = None,
    seed: int | None = 0,
    on_ready: Any = None,
) -> dict[str, Any]:
    """Run the simulated vehicle; returns its final counters.

    ``control_port`` 0 picks a free port; ``on_ready(vehicle, control_server | None, firmware | None)`` is called
    once everything runs (the CLI prints the control URL and serial link URL from it).
    """
    stop = stop_event or threading.Event()
    physics = VehiclePhysics(seed=seed)
    vehicle = SimulatedVehicle(bus_config, physics, scenario=get_scenario(scenario))
    control: ControlServer | None = None
    firmware: Any = None
    try:
        vehicle.start()
        if serial_url is not None:
            firmware = start_firmware_simulator(serial_url, physics)
            log.info("serial firmware simulator on %s", firmware.link_url)
        if control_port is not None:
            control = ControlServer(vehicle, control_port, firmware=firmware).start()
            log.info("simulator control server on %s", control.url)
        if on_ready is not None:
            on_ready(vehicle, control, firmware)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait(duration)
    finally:
        if firmware is not None:
            firmware.close()
        if control is not None:
            control.close()
        vehicle.close()
    return vehicle.counters()
