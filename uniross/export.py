"""Offline decode of a recording into columns and files: CSV, Parquet (pyarrow) or MF4 (asammdf).

Every format is *one table per message* (wide): columns ``timestamp`` (s, as recorded), ``source_address``, then
the message's signals in DBC order. Values are the batch decoder's (scaled, choices not applied); a signal that
has J1939 not-available/error values or is multiplexed is written as float64 with NaN there (CSV: ``nan``).
Files: ``<out>/<Message>.csv`` / ``<out>/<Message>.parquet``; MF4 is one file ``<out>/<log stem>.mf4`` with one
channel group per message (the group comment is the message name).

The log is read and decoded chunk by chunk (``uniross.log_reader``), so memory stays bounded for CSV and Parquet;
MF4 collects the columns first (asammdf writes a group at once).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from cantools.database.can import Database

from firmware_bridge.batch_decoder import BatchDecoder, DecodedBatch, DecodedMessage
from firmware_bridge.frame_batch import FrameBatch
from uniross.log_reader import DEFAULT_CHUNK, iter_frame_batches

FORMATS = ("csv", "parquet", "mf4")
ProgressFn = Callable[[int], None]


@dataclass
class DecodeStats:
    frames: int = 0
    decoded: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    per_message: Counter[str] = field(default_factory=Counter)

    def add(self, batch: FrameBatch, decoded: DecodedBatch) -> None:
        self.frames += len(batch)
        self.decoded += decoded.n_decoded
        self.rejects.update({k: v for k, v in decoded.rejects.items() if v})
        self.per_message.update({name: len(m) for name, m in decoded.messages.items()})


@dataclass
class ExportResult:
    files: list[Path]
    stats: DecodeStats


def decode_log(
    path: str | Path, db: Database, *, chunk: int = DEFAULT_CHUNK, stats: DecodeStats | None = None,
    progress: ProgressFn | None = None,
) -> Iterator[DecodedBatch]:
    """Decoded chunks of a log file (``progress(frames_in_chunk)`` after each)."""
    decoder = BatchDecoder(db)
    for batch in iter_frame_batches(path, chunk):
        decoded = decoder.decode(batch)
        if stats is not None:
            stats.add(batch, decoded)
        if progress is not None:
            progress(len(batch))
        yield decoded


def message_columns(msg: DecodedMessage) -> dict[str, np.ndarray]:
    """``timestamp``, ``source_address`` and each signal (float64 with NaN where flagged or absent)."""
    cols: dict[str, np.ndarray] = {"timestamp": msg.timestamp, "source_address": msg.source_address}
    for name, values in msg.signals.items():
        flagged = name in msg.present or name in msg.j1939_na or name in msg.j1939_error
        cols[name] = msg.physical(name) if flagged else values
    return cols


def collect_columns(
    path: str | Path, db: Database, messages: set[str] | None = None, *, stats: DecodeStats | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """The whole log as ``{message: {column: array}}`` (only ``messages`` if given)."""
    parts: dict[str, list[dict[str, np.ndarray]]] = {}
    for decoded in decode_log(path, db, stats=stats, progress=progress):
        for name, msg in decoded.messages.items():
            if messages is None or name in messages:
                parts.setdefault(name, []).append(message_columns(msg))
    return {name: {col: np.concatenate([p[col] for p in chunks]) for col in chunks[0]}
            for name, chunks in parts.items()}


class _CsvSink:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: dict[str, tuple[IO[str], Any]] = {}

    def write(self, name: str, cols: dict[str, np.ndarray]) -> None:
        if name not in self.files:
            f = (self.out / f"{name}.csv").open("w", newline="")
            writer = csv.writer(f)
            writer.writerow(list(cols))
            self.files[name] = (f, writer)
        self.files[name][1].writerows(zip(*(c.tolist() for c in cols.values()), strict=True))

    def close(self) -> list[Path]:
        for f, _ in self.files.values():
            f.close()
        return [self.out / f"{name}.csv" for name in self.files]


class _ParquetSink:
    def __init__(self, out: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa, self._pq = pa, pq
        self.out = out
        self.writers: dict[str, Any] = {}

    def write(self, name: str, cols: dict[str, np.ndarray]) -> None:
        table = self._pa.table(cols)
        if name not in self.writers:
            self.writers[name] = self._pq.ParquetWriter(self.out / f"{name}.parquet", table.schema)
        self.writers[name].write_table(table)

    def close(self) -> list[Path]:
        for writer in self.writers.values():
            writer.close()
        return [self.out / f"{name}.parquet" for name in self.writers]


class _Mf4Sink:
    def __init__(self, out: Path, stem: str, db: Database) -> None:
        from asammdf import MDF  # noqa: F401  (fail early when asammdf is missing)

        self.path = out / f"{stem}.mf4"
        self.db = db
        self.parts: dict[str, list[dict[str, np.ndarray]]] = {}

    def write(self, name: str, cols: dict[str, np.ndarray]) -> None:
        self.parts.setdefault(name, []).append(cols)

    def close(self) -> list[Path]:
        from asammdf import MDF, Signal

        mdf = MDF(version="4.10")
        for name, chunks in self.parts.items():
            message = self.db.get_message_by_name(name)
            units = {s.name: s.unit or "" for s in message.signals}
            t = np.concatenate([c["timestamp"] for c in chunks])
            signals = [
                Signal(np.concatenate([c[col] for c in chunks]), t, name=f"{name}.{col}", unit=units.get(col, ""))
                for col in chunks[0] if col != "timestamp"
            ]
            mdf.append(signals, comment=name)
        mdf.save(self.path, overwrite=True)
        mdf.close()
        return [self.path]


def export_log(
    path: str | Path, out_dir: str | Path, db: Database, fmt: str = "csv", *, chunk: int = DEFAULT_CHUNK,
    progress: ProgressFn | None = None,
) -> ExportResult:
    """Decode ``path`` and write one table per message to ``out_dir`` in ``fmt`` (module docstring)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sink: _CsvSink | _ParquetSink | _Mf4Sink
    if fmt == "csv":
        sink = _CsvSink(out)
    elif fmt == "parquet":
        sink = _ParquetSink(out)
    else:
        sink = _Mf4Sink(out, Path(path).name.split(".")[0], db)
    stats = DecodeStats()
    try:
        for decoded in decode_log(path, db, chunk=chunk, stats=stats, progress=progress):
            for name, msg in decoded.messages.items():
                sink.write(name, message_columns(msg))
    finally:
        files = sink.close()
    return ExportResult(files, stats)
