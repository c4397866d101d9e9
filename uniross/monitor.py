"""A live terminal table of decoded CAN signals (like ``cantools monitor``, over the batch codec).

`MonitorTable` keeps the latest value of every signal and, per message, the frame count, rate, age and validity
from the same opendbc-style checks the service runs (``firmware_bridge.message_checks``: rolling counter, CRC-8
checksum, timeout, ``docs/can_protocol.md``): ``valid``, ``TIMEOUT``, ``COUNTER``, ``CHECKSUM``, ``starting``;
event messages without a cycle time are shown as ``event``. Frames failing their checksum are counted, not shown.
It renders a rich `Table`. `run_monitor` reads a bus with `CanReader` and refreshes a rich `Live`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from cantools.database.can import Database
from rich.console import Console
from rich.live import Live
from rich.table import Table

from firmware_bridge.batch_decoder import BatchDecoder, DecodedBatch
from firmware_bridge.can_bus import BusConfig
from firmware_bridge.dbc_database import all_message_info
from firmware_bridge.message_checks import ValidityTracker


@dataclass
class _MessageRow:
    frames: int = 0
    first_rx: float = 0.0
    last_rx: float = 0.0
    source_address: int = 0
    values: dict[str, float] = field(default_factory=dict)


class MonitorTable:
    """Latest decoded values and validity per message."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.info = all_message_info(db)
        self.rows: dict[str, _MessageRow] = {}
        self.rejects: dict[str, int] = {}
        self.checks = ValidityTracker(db)
        self.units = {(m.name, s.name): s.unit or "" for m in db.messages for s in m.signals}

    def update(self, decoded: DecodedBatch, now: float) -> None:
        for reason, count in decoded.rejects.items():
            if count:
                self.rejects[reason] = self.rejects.get(reason, 0) + count
        decoded = self.checks.update(decoded, now)
        for name, msg in decoded.messages.items():
            row = self.rows.setdefault(name, _MessageRow(first_rx=now))
            row.frames += len(msg)
            row.last_rx = now
            row.source_address = int(msg.source_address[-1])
            for signal in msg.signals:
                value = msg.physical(signal)[-1]
                if np.isfinite(value):
                    row.values[signal] = float(value)
                else:
                    row.values.pop(signal, None)

    def validity(self, name: str, now: float) -> str:
        if self.info[name].timeout_s is None:
            return "event"
        self.checks.check_timeouts(now)
        state = self.checks.states()[name]
        if state.valid:
            return "valid"
        if state.timed_out:
            return "TIMEOUT"
        if not state.checksum_ok:
            return "CHECKSUM"
        if not state.counter_ok:
            return "COUNTER"
        return "starting"  # fresh, but fewer good frames than the recovery hysteresis needs

    def render(self, now: float) -> Table:
        table = Table(title="UniROSS CAN monitor", expand=True)
        for column in ("message", "SA", "frames", "rate/s", "age s", "state", "signals"):
            table.add_column(column, no_wrap=column != "signals")
        for name in sorted(self.rows):
            row = self.rows[name]
            span = row.last_rx - row.first_rx
            rate = (row.frames - 1) / span if span > 0 else 0.0
            state = self.validity(name, now)
            style = {"valid": "green", "event": "cyan"}.get(state, "bold red")
            signals = "  ".join(f"{s}={v:g}{self.units.get((name, s), '')}" for s, v in row.values.items())
            table.add_row(name, f"0x{row.source_address:02X}", str(row.frames), f"{rate:.1f}",
                          f"{now - row.last_rx:.2f}", f"[{style}]{state}[/]", signals)
        counts = {**{k: v for k, v in self.rejects.items() if v},
                  **{k: v for k, v in self.checks.error_counts.items() if v}}
        if counts:
            table.caption = "rejects / check failures: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        return table


def run_monitor(config: BusConfig, db: Database, *, duration: float | None = None, once: bool = False,
                console: Console | None = None, refresh_hz: float = 4.0) -> MonitorTable:
    """Monitor the bus until ``duration`` elapses or Ctrl-C; ``once``: collect ``duration`` (default 1 s) of traffic
    and print one table."""
    from firmware_bridge.bus_reader import CanReader

    console = console or Console()
    decoder = BatchDecoder(db)
    table = MonitorTable(db)
    if once and duration is None:
        duration = 1.0
    deadline = None if duration is None else time.monotonic() + duration
    with CanReader(config) as reader:
        def poll() -> None:
            for batch in reader.get_batches(timeout=1.0 / refresh_hz):
                table.update(decoder.decode(batch), time.monotonic())

        try:
            if once:
                while deadline is not None and time.monotonic() < deadline:
                    poll()
                console.print(table.render(time.monotonic()))
                return table
            with Live(table.render(time.monotonic()), console=console, refresh_per_second=refresh_hz) as live:
                while deadline is None or time.monotonic() < deadline:
                    poll()
                    live.update(table.render(time.monotonic()))
        except KeyboardInterrupt:
            pass
    return table
