"""Recording the raw CAN bus and the serial sample stream to files, off the control loop.

* `CanLogWriter`: python-can's writers chosen by suffix (``.blf``, ``.asc``, ``.log`` candump, ``.csv``,
  ``.mf4`` with asammdf, ``.trc``, ``.txt``) plus `SqliteFrameWriter` for ``.db`` (python-can's own table layout, so
  ``can.SqliteReader`` reads it; python-can's ``SqliteWriter`` loses frames buffered beyond 500 when stopped), with
  rotation by size and/or time: ``trial.blf``, ``trial_001.blf``, ``trial_002.blf`` ...
* `SampleFileWriter` / `read_sample_file`: the serial samples as a compact binary file (``.usmp``, format below).
* `Recorder` / `SampleRecorder`: a bounded queue and a writer thread in front of those writers. ``submit_*`` never
  blocks: when the writer falls behind the batch is dropped and counted (``counters()``), never silently.

``.usmp`` format (little endian): file header ``b"USMP"``, ``u16`` version (1), ``u32`` JSON length, JSON
``{"channels": [...], "sample_rate_hz": 1000}``; then blocks: ``b"SBLK"``, ``i64`` first_index, ``f64`` host_time,
``u8`` gap_before, 3 pad bytes, ``u32`` n, then ``float32[C, n]`` channel-major (NaN = invalid sample).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar

import can
import numpy as np

from firmware_bridge.frame_batch import FrameBatch
from firmware_bridge.serial_link.receiver import SampleBatch
from uniross.log_reader import LogFormatError, log_suffix

log = logging.getLogger(__name__)

SAMPLE_MAGIC = b"USMP"
SAMPLE_VERSION = 1
BLOCK_MAGIC = b"SBLK"
_FILE_HEADER = struct.Struct("<4sHI")
_BLOCK_HEADER = struct.Struct("<4sqdB3xI")
SAMPLE_RATE_HZ = 1000


class SqliteFrameWriter(can.io.generic.MessageWriter):
    """Frames to an SQLite file in python-can's ``messages`` table layout, committed per `write_batch`."""

    FLUSH_EVERY = 1000

    def __init__(self, path: str | Path, table: str = "messages") -> None:
        self.path = Path(path)
        self._table = table
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (ts REAL, arbitration_id INTEGER, extended INTEGER, "
            "remote INTEGER, error INTEGER, dlc INTEGER, data BLOB)"
        )
        self._insert = f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?)"
        self._pending: list[can.Message] = []

    def write_batch(self, msgs: Sequence[can.Message]) -> None:
        """Insert and commit ``msgs`` (plus any frames buffered by `on_message_received`)."""
        rows = [(m.timestamp, m.arbitration_id, m.is_extended_id, m.is_remote_frame, m.is_error_frame, m.dlc,
                 bytes(m.data)) for m in (*self._pending, *msgs)]
        self._pending = []
        with self._conn:
            self._conn.executemany(self._insert, rows)

    def on_message_received(self, msg: can.Message) -> None:
        """Buffer one frame; committed every `FLUSH_EVERY` frames and on `stop`."""
        self._pending.append(msg)
        if len(self._pending) >= self.FLUSH_EVERY:
            self.write_batch([])

    def file_size(self) -> int:
        return self.path.stat().st_size

    def stop(self) -> None:
        if self._pending:
            self.write_batch([])
        self._conn.close()


def open_writer(path: str | Path) -> can.io.generic.MessageWriter:
    """The writer for ``path`` by its suffix (python-can's, or `SqliteFrameWriter` for ``.db``)."""
    if log_suffix(path) == ".db":
        return SqliteFrameWriter(path)
    return can.Logger(path)


def rotated_name(base: Path, index: int) -> Path:
    """``trial.blf`` -> ``trial_001.blf`` (index 0 is the base name itself)."""
    if index == 0:
        return base
    suffixes = "".join(base.suffixes[-2:]) if base.suffix.lower() == ".gz" else base.suffix
    stem = base.name[: len(base.name) - len(suffixes)]
    return base.with_name(f"{stem}_{index:03d}{suffixes}")


class CanLogWriter:
    """CAN frames to a log file by suffix, rotated to a new file after ``max_bytes`` or ``max_seconds`` (0 = never).

    Not thread-safe: `Recorder` calls it from its writer thread only.
    """

    def __init__(self, path: str | Path, *, max_bytes: int = 0, max_seconds: float = 0.0) -> None:
        self.base = Path(path)
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.files: list[Path] = []
        self._writer: can.io.generic.MessageWriter | None = None
        self._opened_at = 0.0
        self._open_next()

    def _open_next(self) -> None:
        if self._writer is not None:
            self._writer.stop()
        path = rotated_name(self.base, len(self.files))
        self._writer = open_writer(path)
        self.files.append(path)
        self._opened_at = time.monotonic()

    def _size(self) -> int | None:
        size = getattr(self._writer, "file_size", None)
        try:
            return int(size()) if callable(size) else None
        except (OSError, ValueError):
            return None

    def should_rotate(self) -> bool:
        if self.max_seconds > 0 and time.monotonic() - self._opened_at >= self.max_seconds:
            return True
        if self.max_bytes > 0:
            size = self._size()
            return size is not None and size >= self.max_bytes
        return False

    def write(self, msgs: Sequence[can.Message]) -> None:
        if self.should_rotate():
            self._open_next()
        writer = self._writer
        assert writer is not None
        if isinstance(writer, SqliteFrameWriter):
            writer.write_batch(msgs)
            return
        for msg in msgs:
            writer.on_message_received(msg)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None


class SampleFileWriter:
    """Serial `SampleBatch`es to a ``.usmp`` file (format in the module docstring); flushed per block."""

    def __init__(self, path: str | Path, channels: Sequence[str], sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
        self.path = Path(path)
        self.channels = tuple(channels)
        self._file: BinaryIO = self.path.open("wb")
        meta = json.dumps({"channels": list(self.channels), "sample_rate_hz": sample_rate_hz}).encode()
        self._file.write(_FILE_HEADER.pack(SAMPLE_MAGIC, SAMPLE_VERSION, len(meta)) + meta)

    def write(self, batch: SampleBatch) -> None:
        if tuple(batch.channels) != self.channels:
            raise ValueError(f"channels {batch.channels} differ from the file's {self.channels}")
        samples = np.ascontiguousarray(batch.samples, dtype="<f4")
        n = int(samples.shape[1]) if samples.ndim == 2 else 0
        self._file.write(_BLOCK_HEADER.pack(BLOCK_MAGIC, batch.first_index, batch.host_time, batch.gap_before, n))
        self._file.write(samples.tobytes())
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_sample_file(path: str | Path) -> Iterator[SampleBatch]:
    """The blocks of a ``.usmp`` file; a bad header or a cut block raises `LogFormatError` with its byte offset."""
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(_FILE_HEADER.size)
        if len(head) < _FILE_HEADER.size or head[:4] != SAMPLE_MAGIC:
            raise LogFormatError(path, "not a UniROSS sample file (bad magic)", offset=0)
        _magic, version, meta_len = _FILE_HEADER.unpack(head)
        if version != SAMPLE_VERSION:
            raise LogFormatError(path, f"unsupported sample file version {version}", offset=4)
        try:
            meta = json.loads(f.read(meta_len))
            channels = tuple(str(c) for c in meta["channels"])
        except (ValueError, KeyError, TypeError) as exc:
            raise LogFormatError(path, f"bad sample file header: {exc}", offset=_FILE_HEADER.size) from exc
        while True:
            offset = f.tell()
            raw = f.read(_BLOCK_HEADER.size)
            if not raw:
                return
            if len(raw) < _BLOCK_HEADER.size:
                raise LogFormatError(path, "truncated block header", offset=offset)
            magic, first_index, host_time, gap, n = _BLOCK_HEADER.unpack(raw)
            if magic != BLOCK_MAGIC:
                raise LogFormatError(path, "bad block magic", offset=offset)
            nbytes = 4 * n * len(channels)
            payload = f.read(nbytes)
            if len(payload) < nbytes:
                raise LogFormatError(path, f"truncated block ({len(payload)} of {nbytes} sample bytes)", offset=offset)
            samples = np.frombuffer(payload, dtype="<f4").reshape(len(channels), n).astype(np.float64)
            yield SampleBatch(channels, int(first_index), samples, bool(gap), float(host_time))


T = TypeVar("T")


class _QueuedWriter(Generic[T]):
    """A bounded queue drained by one writer thread; full queue = the item is dropped and counted."""

    def __init__(self, name: str, queue_max: int) -> None:
        self._queue: queue.Queue[T | None] = queue.Queue(maxsize=queue_max)
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {
            "submitted_batches": 0, "submitted_items": 0, "written_batches": 0, "written_items": 0,
            "dropped_batches": 0, "dropped_items": 0, "write_errors": 0,
        }
        self._closed = False
        self._failed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _size(self, item: T) -> int:
        raise NotImplementedError

    def _write(self, item: T) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for key, value in deltas.items():
                self._counters[key] += value

    def _submit(self, item: T) -> bool:
        size = self._size(item)
        self._count(submitted_batches=1, submitted_items=size)
        if self._closed or self._failed:
            self._count(dropped_batches=1, dropped_items=size)
            return False
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._count(dropped_batches=1, dropped_items=size)
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            size = self._size(item)
            if self._failed:
                self._count(dropped_batches=1, dropped_items=size)
                continue
            try:
                self._write(item)
            except Exception:  # a full disk must not take the service down: count, log once, drop the rest
                log.exception("recording failed; further data is dropped and counted")
                self._failed = True
                self._count(write_errors=1, dropped_batches=1, dropped_items=size)
                continue
            self._count(written_batches=1, written_items=size)
        try:
            self._finish()
        except Exception:
            log.exception("closing the recording failed")
            self._count(write_errors=1)

    def counters(self) -> dict[str, int]:
        with self._lock:
            out = dict(self._counters)
        out["queue_depth"] = self._queue.qsize()
        return out

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, close the file(s) and join the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("recorder thread did not finish within %.1f s", timeout)


class Recorder(_QueuedWriter[Sequence[can.Message] | FrameBatch]):
    """Raw CAN frames to a (rotating) log file from any thread without blocking it.

    ``counters()``: ``submitted_*``, ``written_*``, ``dropped_*`` (batches and frames = items), ``write_errors``,
    ``queue_depth``, ``files``.
    """

    def __init__(self, path: str | Path, *, max_bytes: int = 0, max_seconds: float = 0.0,
                 queue_max: int = 1024) -> None:
        self.path = Path(path)
        self._log = CanLogWriter(path, max_bytes=max_bytes, max_seconds=max_seconds)
        super().__init__("can-recorder", queue_max)

    def submit_messages(self, msgs: Sequence[can.Message]) -> bool:
        """Queue a batch of frames; False when it was dropped (queue full or recorder closed/failed)."""
        if not msgs:
            return True
        return self._submit(list(msgs))

    def submit_batch(self, batch: FrameBatch) -> bool:
        """Queue a FrameBatch (the service's path): turned back into messages in the writer thread."""
        if len(batch) == 0:
            return True
        return self._submit(batch)

    @property
    def files(self) -> list[Path]:
        return list(self._log.files)

    def counters(self) -> dict[str, int]:
        out = super().counters()
        out["files"] = len(self._log.files)
        return out

    def _size(self, item: Sequence[can.Message] | FrameBatch) -> int:
        return len(item)

    def _write(self, item: Sequence[can.Message] | FrameBatch) -> None:
        self._log.write(item.to_messages() if isinstance(item, FrameBatch) else item)

    def _finish(self) -> None:
        self._log.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SampleRecorder(_QueuedWriter[SampleBatch]):
    """Serial sample batches to a ``.usmp`` file without blocking the caller; items are samples x channels."""

    def __init__(self, path: str | Path, channels: Sequence[str], *, queue_max: int = 1024) -> None:
        self._file = SampleFileWriter(path, channels)
        super().__init__("sample-recorder", queue_max)

    def submit_samples(self, batch: SampleBatch) -> bool:
        return self._submit(batch)

    def _size(self, item: SampleBatch) -> int:
        return int(item.samples.size)

    def _write(self, item: SampleBatch) -> None:
        self._file.write(item)

    def _finish(self) -> None:
        self._file.close()

    def __enter__(self) -> SampleRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_bus(bus: can.BusABC, recorder: Recorder, *, duration: float | None = None, batch_max: int = 256,
               recv_timeout: float = 0.05, stop: threading.Event | None = None) -> dict[str, Any]:
    """Receive from ``bus`` into ``recorder`` until ``duration`` elapses or ``stop`` is set (the CLI's loop)."""
    deadline = None if duration is None else time.monotonic() + duration
    stop = stop or threading.Event()
    pending: list[can.Message] = []
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        msg = bus.recv(recv_timeout)
        if msg is not None:
            pending.append(msg)
        if pending and (msg is None or len(pending) >= batch_max):
            recorder.submit_messages(pending)
            pending = []
    if pending:
        recorder.submit_messages(pending)
    return recorder.counters()


def total_size(paths: Sequence[Path]) -> int:
    return sum(os.path.getsize(p) for p in paths if p.exists())
