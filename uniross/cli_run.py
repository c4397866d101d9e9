"""``uniross run`` (the service, optionally on the built-in simulated vehicle) and ``uniross sim``."""

from __future__ import annotations

import logging
import secrets
import threading
import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from uniross.cli_options import BitrateOpt, ChannelOpt, ConfigOpt, FdOpt, InterfaceOpt, bus_overrides
from uniross.config import ServiceSettings, load_settings

log = logging.getLogger("uniross")


def build_app(settings: ServiceSettings) -> tuple[Any, Any]:
    """The service and its FastAPI app (not started)."""
    from telemetry.api.app import create_app
    from uniross.service import Service
    from uniross.service_view import ServiceView

    service = Service(settings)
    return service, create_app(ServiceView(service), settings.api)


def run(
    interface: InterfaceOpt = None,
    channel: ChannelOpt = None,
    bitrate: BitrateOpt = None,
    fd: FdOpt = False,
    config: ConfigOpt = None,
    sim: Annotated[bool, typer.Option("--sim", help="run the built-in simulated vehicle in the process")] = False,
    serial: Annotated[str | None, typer.Option("--serial", help="pyserial URL/device of the SSC firmware link")] = None,
    host: Annotated[str | None, typer.Option(help="HTTP listen address")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port")] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="open the dashboard in a browser")] = False,
    sim_control_port: Annotated[int | None, typer.Option(help="HTTP control port of the embedded simulator")] = None,
    record: Annotated[Path | None, typer.Option(help="record the raw bus (.blf .asc .log .csv .db .mf4)")] = None,
    record_max_bytes: Annotated[int, typer.Option(help="rotate the recording at this size (0: never)")] = 0,
    replay: Annotated[Path | None, typer.Option(help="replay this recording through the live service")] = None,
    speed: Annotated[float, typer.Option(help="replay speed (1.0 = real time)")] = 1.0,
) -> None:
    """Run the service: CAN + serial link -> hot loop -> store -> modes, REST/WebSocket/metrics and dashboard."""
    from telemetry.api.settings import hash_token

    overrides: dict[str, object] = {}
    bus = bus_overrides(interface, channel, bitrate, fd)
    if bus:
        overrides["bus"] = bus
    settings = load_settings(config, **overrides)
    if serial is not None:
        settings.serial.url = serial
    if record is not None:
        settings.record, settings.record_max_bytes, settings.dbc_filters = record, record_max_bytes, False
    if replay is not None:
        settings.replay, settings.replay_speed = replay, speed
    if sim:
        settings.sim.embedded = True
    if sim_control_port is not None:
        settings.sim.control_port = sim_control_port
    if host is not None:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    demo_token = None
    if settings.sim.embedded and not settings.api.engineer_token_hashes:
        demo_token = secrets.token_urlsafe(16)
        settings.api.engineer_token_hashes = [hash_token(demo_token)]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    service, app = build_app(settings)
    url = f"http://{settings.server.host}:{settings.server.port}/"
    server = uvicorn.Server(uvicorn.Config(app, host=settings.server.host, port=settings.server.port,
                                           log_level="warning", ws="websockets-sansio",
                                           ws_ping_interval=None))
    with service:
        source = f"replay of {settings.replay}" if settings.replay else str(service.bus_config.resolve())
        typer.echo(f"UniROSS service on {source} — dashboard {url}")
        if demo_token:
            typer.echo(f"demo engineer token (enter it in the dashboard to command modes): {demo_token}")
        if open_browser:
            threading.Timer(1.0, lambda: webbrowser.open(url)).start()
        server.run()


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    from vehicle_sim.cli import sim

    app.command("sim")(sim)
