"""Shared CLI options: python-can style bus options (-i/-c/-b/--fd) and the config file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

InterfaceOpt = Annotated[
    str | None, typer.Option("-i", "--interface", help="python-can interface (socketcan, virtual, udp_multicast, ...)")
]
ChannelOpt = Annotated[str | None, typer.Option("-c", "--channel", help="python-can channel (vcan0, can0, ...)")]
BitrateOpt = Annotated[int | None, typer.Option("-b", "--bitrate", help="bitrate in bit/s")]
FdOpt = Annotated[bool, typer.Option("--fd", help="CAN FD")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML config file (see README)")]


def bus_overrides(interface: str | None, channel: str | None, bitrate: int | None, fd: bool) -> dict[str, object]:
    """The non-empty bus options as a ``bus`` settings override."""
    bus: dict[str, object] = {k: v for k, v in (("interface", interface), ("channel", channel), ("bitrate", bitrate))
                              if v is not None}
    if fd:
        bus["fd"] = True
    return bus
