"""CAN bus I/O: bus configuration (python-can semantics), opening a bus, DBC-derived ID filters, bus load estimate.

`BusConfig` only holds what the caller gave explicitly; `BusConfig.resolve()` fills the rest the way python-can
does (`can.rc`, the `CAN_INTERFACE` / `CAN_CHANNEL` / `CAN_BITRATE` / `CAN_CONFIG` environment, then
`~/can.conf`, `/etc/can.conf`, `~/.can`, `~/.canrc` or `can.ini`) and finally the UniROSS defaults
(``virtual`` interface on channel ``uniross``). Which bus is used is decided by configuration only.

The receiving thread lives in `firmware_bridge.bus_reader`.
"""

from __future__ import annotations

from typing import Any

import can
import numpy as np
import numpy.typing as npt
from cantools.database.can import Database
from pydantic import BaseModel, ConfigDict, Field

from firmware_bridge.dbc_database import all_message_info

DEFAULT_INTERFACE = "virtual"
DEFAULT_CHANNEL = "uniross"
DEFAULT_BITRATE = 250_000

J1939_PGN_MASK = 0x03FF_FF00  # EDP, DP, PF, PS: priority and source address are free
EXTENDED_ID_MASK = 0x1FFF_FFFF
STANDARD_ID_MASK = 0x7FF

CanFilter = dict[str, int | bool]


class BusConfig(BaseModel):
    """One python-can bus. ``None`` means "not given": python-can's config sources or the defaults decide.

    ``extra`` holds any further python-can keyword (e.g. ``{"rx_queue_size": 1000}`` for ``virtual``,
    ``{"port": 50000}`` ...); its keys are passed to ``can.Bus`` as they are.
    """

    model_config = ConfigDict(extra="forbid")

    interface: str | None = None
    channel: str | int | None = None
    bitrate: int | None = None
    fd: bool | None = None
    data_bitrate: int | None = None
    receive_own_messages: bool | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    context: str | None = None  # python-can config section / env suffix (CAN_INTERFACE_<context>, [context])

    def explicit(self) -> dict[str, Any]:
        given = self.model_dump(exclude={"extra", "context"}, exclude_none=True)
        return {**self.extra, **given}

    def resolve(self) -> dict[str, Any]:
        """The keyword arguments for ``can.Bus``: explicit values, then python-can's sources, then defaults."""
        sources: list[dict[str, Any]] = [
            self.explicit(),
            dict(can.rc),
            can.util.load_environment_config(self.context),
            can.util.load_environment_config(),
            can.util.load_file_config(section=self.context or "default"),
            can.util.load_file_config(),
            {"interface": DEFAULT_INTERFACE, "channel": DEFAULT_CHANNEL},
        ]
        merged: dict[str, Any] = {}
        for source in sources:
            if "bustype" in source and not source.get("interface"):
                source = {**source, "interface": source["bustype"]}
            for key, value in source.items():
                if key != "bustype" and key not in merged and value is not None:
                    merged[key] = value
        # load_config casts strings ("250000" -> 250000) and validates the interface name.
        return dict(can.util.load_config(config=merged))

    @property
    def effective_bitrate(self) -> int:
        bitrate = self.resolve().get("bitrate")
        return int(bitrate) if bitrate else DEFAULT_BITRATE


def open_bus(config: BusConfig, filters: list[CanFilter] | None = None) -> can.BusABC:
    """Open the configured bus and apply ``filters`` (kernel/hardware side where the interface can, else
    python-can filters in software)."""
    bus = can.Bus(**config.resolve())
    if filters:
        bus.set_filters(filters)  # type: ignore[arg-type]
    return bus


def dbc_filters(db: Database, senders: set[str] | None = None) -> list[CanFilter]:
    """ID filters passing every message of ``db`` (only those sent by ``senders`` nodes, if given).

    J1939 messages match on their PGN bits (EDP, DP, PF, PS) so any priority and any source address pass;
    other messages match their exact identifier.
    """
    filters: list[CanFilter] = []
    seen: set[tuple[int, int, bool]] = set()
    for info in all_message_info(db).values():
        message = info.message
        if senders is not None and not senders.intersection(message.senders):
            continue
        extended = bool(message.is_extended_frame)
        if info.is_j1939:
            key = (message.frame_id & J1939_PGN_MASK, J1939_PGN_MASK, True)
        else:
            key = (message.frame_id, EXTENDED_ID_MASK if extended else STANDARD_ID_MASK, extended)
        if key not in seen:
            seen.add(key)
            filters.append({"can_id": key[0], "can_mask": key[1], "extended": key[2]})
    return filters


def frame_bits(dlc: npt.NDArray[np.uint8], is_extended: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Bits on the wire per classic CAN frame including the worst-case bit stuffing estimate
    (Davis/Tindell: ``8n + g + 13 + floor((g + 8n - 1) / 4)``, g = 34 standard / 54 extended) and the
    3-bit interframe space."""
    n8 = dlc.astype(np.int64) * 8
    g = np.where(is_extended, 54, 34)
    return n8 + g + 13 + (g + n8 - 1) // 4


def bus_load(bits: int, seconds: float, bitrate: int) -> float:
    """Fraction of the bus occupied by ``bits`` over ``seconds`` at ``bitrate``."""
    if seconds <= 0 or bitrate <= 0:
        return 0.0
    return bits / (seconds * bitrate)
