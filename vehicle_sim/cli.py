"""``uniross sim``: run the simulated vehicle (typer command function; ``python -m vehicle_sim`` runs it too)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from firmware_bridge.can_bus import BusConfig
from uniross.cli_options import BitrateOpt, ChannelOpt, InterfaceOpt
from vehicle_sim.runner import run_simulator
from vehicle_sim.scenarios import SCENARIOS


def sim(
    interface: InterfaceOpt = None,
    channel: ChannelOpt = None,
    bitrate: BitrateOpt = None,
    duration: Annotated[float | None, typer.Option(help="seconds to run (default: until Ctrl-C)")] = None,
    control_port: Annotated[
        int | None, typer.Option(help="HTTP control server port on 127.0.0.1 (0: any free)")
    ] = None,
    serial: Annotated[
        str | None, typer.Option(help='serial firmware simulator: "pty", "tcp://HOST:PORT" or a port')
    ] = None,
    scenario: Annotated[str, typer.Option(help=f"one of {', '.join(SCENARIOS)}")] = "idle",
) -> None:
    """Simulated truck: chassis ECUs and superstructure controller on CAN (+ SSC firmware on serial)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {scenario!r} (one of {', '.join(SCENARIOS)})")
    config = BusConfig(interface=interface, channel=channel, bitrate=bitrate)

    def ready(vehicle: Any, control: Any, firmware: Any) -> None:
        typer.echo(f"simulator on {config.resolve()['interface']}:{config.resolve()['channel']}", err=True)
        if control is not None:
            typer.echo(f"control: {control.url}", err=True)
        if firmware is not None:
            typer.echo(f"serial: {firmware.link_url}", err=True)

    counters = run_simulator(
        config, duration=duration, control_port=control_port, serial_url=serial, scenario=scenario, on_ready=ready
    )
    typer.echo(f"sent: {counters['sent']}", err=True)


def main() -> None:
    typer.run(sim)
