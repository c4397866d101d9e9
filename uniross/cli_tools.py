"""Field-engineer commands: ``monitor``, ``mode``, ``record``, ``replay``, ``decode``, ``report``.

Registered on the ``uniross`` typer app by `uniross.cli` through `register`. Bad log files end with their
`LogFormatError` message and exit code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from uniross.cli_options import BitrateOpt, ChannelOpt, ConfigOpt, FdOpt, InterfaceOpt, bus_overrides
from uniross.log_reader import LogFormatError

if TYPE_CHECKING:
    from cantools.database.can import Database

    from firmware_bridge.can_bus import BusConfig
    from uniross.config import ServiceSettings

EXIT_BAD_INPUT = 2
EXIT_REFUSED = 1

LogArg = Annotated[Path, typer.Argument(help="CAN log file (.blf, .asc, .log candump, .csv, .db, .mf4, .trc)")]
DbcOpt = Annotated[Path | None, typer.Option("--dbc", help="DBC file (default: the configured / bundled UniROSS DBC)")]

_err = Console(stderr=True)
_out = Console()


def _settings(
    config: Path | None, interface: str | None, channel: str | None, bitrate: int | None, fd: bool
) -> ServiceSettings:
    from uniross.config import load_settings

    bus = bus_overrides(interface, channel, bitrate, fd)
    return load_settings(config, **({"bus": bus} if bus else {}))


def _bus_config(
    config: Path | None, interface: str | None, channel: str | None, bitrate: int | None, fd: bool
) -> BusConfig:
    from firmware_bridge.can_bus import BusConfig

    bus = _settings(config, interface, channel, bitrate, fd).bus
    return BusConfig(interface=bus.interface, channel=bus.channel, bitrate=bus.bitrate, fd=bus.fd or None,
                     data_bitrate=bus.data_bitrate)


def _database(dbc: Path | None, config: Path | None = None) -> Database:
    from firmware_bridge.dbc_database import default_database, load_database

    if dbc is not None:
        return load_database(dbc)
    if config is not None:
        return load_database(_settings(config, None, None, None, False).dbc)
    return default_database()


def _fail(exc: Exception) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(EXIT_BAD_INPUT)


def monitor(
    interface: InterfaceOpt = None, channel: ChannelOpt = None, bitrate: BitrateOpt = None, fd: FdOpt = False,
    config: ConfigOpt = None, dbc: DbcOpt = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    once: Annotated[bool, typer.Option("--once", help="collect --duration (1 s) of traffic, print one table")] = False,
) -> None:
    """Live table of decoded signals with message validity (Ctrl-C to quit)."""
    from uniross.monitor import run_monitor

    run_monitor(_bus_config(config, interface, channel, bitrate, fd), _database(dbc, config), duration=duration,
                once=once, console=_out)


def mode(
    target: Annotated[str, typer.Argument(help="TRANSPORT, SWEEPER, SNOW or SAFE")],
    url: Annotated[str, typer.Option(help="service base URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="UNIROSS_TOKEN", help="engineer API token")] = None,
    ack: Annotated[bool, typer.Option("--ack", help="acknowledge SAFE / latched faults")] = False,
    timeout: Annotated[float, typer.Option(help="HTTP timeout in seconds")] = 5.0,
) -> None:
    """Request a mode through the service's HTTP API; prints the decision or the refusal reasons."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(f"{url.rstrip('/')}/api/v1/mode", json={"target": target.upper(), "acknowledge": ack},
                              headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise _fail(RuntimeError(f"cannot reach {url}: {exc}")) from exc
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    if response.status_code == 409:
        detail = body.get("detail", body) if isinstance(body, dict) else body
        reasons = detail.get("reasons", detail) if isinstance(detail, dict) else detail
        _out.print(f"[bold red]refused[/]: {target.upper()}")
        for reason in reasons if isinstance(reasons, list) else [reasons]:
            if isinstance(reason, dict) and "name" in reason:
                reason = f"{reason['name']}: {reason.get('text', '')}"
            _out.print(f"  - {reason}", highlight=False)
        raise typer.Exit(EXIT_REFUSED)
    if response.status_code >= 400:
        raise _fail(RuntimeError(f"HTTP {response.status_code}: {body}"))
    _out.print(f"[bold green]accepted[/]: {target.upper()}  {body}", highlight=False)


def record(
    output: Annotated[Path, typer.Option("-o", "--output", help="log file; the suffix picks the format")],
    interface: InterfaceOpt = None, channel: ChannelOpt = None, bitrate: BitrateOpt = None, fd: FdOpt = False,
    config: ConfigOpt = None,
    max_bytes: Annotated[int, typer.Option(help="rotate to a new file after this many bytes (0: never)")] = 0,
    max_seconds: Annotated[float, typer.Option(help="rotate to a new file after this many seconds (0: never)")] = 0.0,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds (default: Ctrl-C)")] = None,
) -> None:
    """Record the raw bus to BLF, ASC, candump .log, CSV, SQLite .db or MF4 (by suffix), with rotation."""
    from firmware_bridge.can_bus import open_bus
    from uniross.recording import Recorder, record_bus

    try:
        recorder = Recorder(output, max_bytes=max_bytes, max_seconds=max_seconds)
    except (ValueError, OSError, ImportError) as exc:
        raise _fail(exc) from exc
    bus = open_bus(_bus_config(config, interface, channel, bitrate, fd))
    try:
        record_bus(bus, recorder, duration=duration)
    except KeyboardInterrupt:
        pass
    finally:
        bus.shutdown()
        recorder.close()
    c = recorder.counters()
    _out.print(f"recorded {c['written_items']} frames to {', '.join(map(str, recorder.files))}; "
               f"dropped {c['dropped_items']}, write errors {c['write_errors']}", highlight=False)
    if c["write_errors"]:
        raise typer.Exit(EXIT_REFUSED)


def replay(
    log: LogArg,
    speed: Annotated[float, typer.Option(help="1.0 real time, 2.0 twice as fast, 0 as fast as possible")] = 0.0,
    to_bus: Annotated[bool, typer.Option("--to-bus", help="send the frames on a bus instead of the pipeline")] = False,
    interface: InterfaceOpt = None, channel: ChannelOpt = None, bitrate: BitrateOpt = None, fd: FdOpt = False,
    config: ConfigOpt = None, dbc: DbcOpt = None,
) -> None:
    """Replay a recording through the pipeline (codec, checks, hot loop, modes) or onto a bus."""
    from uniross.replay import replay_pipeline, replay_to_bus

    try:
        if to_bus:
            from firmware_bridge.can_bus import open_bus

            bus = open_bus(_bus_config(config, interface, channel, bitrate, fd))
            try:
                sent = replay_to_bus(log, bus, speed=speed)
            finally:
                bus.shutdown()
            _out.print(f"sent {sent} frames")
            return
        result = replay_pipeline(log, _database(dbc, config), speed=speed)
    except LogFormatError as exc:
        raise _fail(exc) from exc
    _out.print(f"{result.frames} frames, {result.control_steps} control steps")
    for t, state in result.mode_events:
        _out.print(f"  {t:.3f}  {state}")


def decode(
    log: LogArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="output folder")] = Path("decoded"),
    fmt: Annotated[str, typer.Option("--format", help="csv, parquet or mf4")] = "csv",
    dbc: DbcOpt = None, config: ConfigOpt = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Decode a recording into one table per message (CSV, Parquet or MF4)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from uniross.export import export_log

    db = _database(dbc, config)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} frames"),
                      TimeElapsedColumn(), console=_err, disable=not progress) as bar:
            task = bar.add_task(f"decoding {log.name}", total=None)
            result = export_log(log, output, db, fmt, progress=lambda n: bar.advance(task, n))
    except (LogFormatError, ValueError, ImportError) as exc:
        raise _fail(exc) from exc
    s = result.stats
    _out.print(f"{s.frames} frames, {s.decoded} decoded, rejects {dict(s.rejects) or 'none'}; "
               f"{len(result.files)} files in {output}", highlight=False)


def report(
    log: LogArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="output folder")] = Path("report"),
    dbc: DbcOpt = None, config: ConfigOpt = None,
    plots: Annotated[bool, typer.Option(help="write signals.png")] = True,
) -> None:
    """Trial summary: time per mode, faults, clog events, key-signal statistics, plots (Markdown + HTML)."""
    from uniross.report import write_report

    try:
        result = write_report(log, output, _database(dbc, config), plots=plots)
    except LogFormatError as exc:
        raise _fail(exc) from exc
    _out.print(f"report of {result.duration_s:.1f} s ({result.frames} frames): {output / 'report.html'}")
    for key, totals in result.mode_time_s.items():
        _out.print(f"  {key}: " + ", ".join(f"{m} {s:.1f} s" for m, s in sorted(totals.items())), highlight=False)
    _out.print(f"  DTCs {len(result.dtcs)}, SSC faults {len(result.ssc_faults)}, clog events {len(result.clog_events)}")


def register(app: typer.Typer) -> None:
    for command in (monitor, mode, record, replay, decode, report):
        app.command(command.__name__)(command)
