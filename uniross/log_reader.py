"""Reading CAN log files (every python-can format) into `FrameBatch` chunks, with clear errors for bad files.

Formats: whatever ``can.LogReader`` reads (``.blf``, ``.asc``, ``.log`` candump, ``.csv``, ``.db`` SQLite, ``.mf4``
with asammdf, ``.trc``, and their ``.gz`` variants). Text formats are read through a line-counting wrapper so that
a malformed line is reported by number; binary formats report the byte offset the reader had reached.

candump logs (``candump -l``: ``(1700000000.123456) can0 0CFF1080#1027546F00000058``) have a vectorised fast path:
the file is read in blocks, one compiled regular expression splits the lines and NumPy turns the hex columns into
integers. A block with anything the fast path does not handle (CAN FD ``##``, remote ``R``, stray text) is parsed
again line by line with python-can's `CanutilsLogReader`, which either reads it or yields the failing line number.

Every failure surfaces as `LogFormatError(path, reason, line=..., offset=...)`, never as the reader's traceback.
"""

from __future__ import annotations

import gc
import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import can
import numpy as np
import numpy.typing as npt
from can.io.player import MESSAGE_READERS

from firmware_bridge.frame_batch import CLASSIC_WIDTH, FrameBatch

DEFAULT_CHUNK = 65_536
FAST_BLOCK_BYTES = 8 << 20
CAN_ERR_FLAG = 0x2000_0000
TEXT_SUFFIXES = frozenset({".asc", ".log", ".csv", ".trc"})
ASC_END = "End TriggerBlock"

_CANDUMP_LINE = re.compile(
    rb"^\((\d+(?:\.\d*)?)\) [^\s]+ ([0-9A-Fa-f]{3}|[0-9A-Fa-f]{8})#((?:[0-9A-Fa-f]{2}){0,8})(?: [RTrt])?\r?$",
    re.MULTILINE,
)
_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
    _HEX[ord(chr(_c).upper())] = _i


class LogFormatError(Exception):
    """A log file that cannot be read: where (line number for text formats, byte offset for binary ones) and why."""

    def __init__(self, path: str | Path, reason: str, *, line: int | None = None, offset: int | None = None) -> None:
        self.path = Path(path)
        self.reason = reason
        self.line = line
        self.offset = offset
        where = f"line {line}" if line is not None else (f"byte offset {offset}" if offset is not None else "")
        super().__init__(f"{self.path}{': ' + where if where else ''}: {reason}")


def log_suffix(path: str | Path) -> str:
    """The format suffix of ``path`` (``.blf``, ``.log`` ...), ignoring a trailing ``.gz``."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


class _LineCounter:
    """A text stream that counts the lines handed out, so that a reader's error can name its line."""

    def __init__(self, raw: IO[str]) -> None:
        self._raw = raw
        self.line = 0
        self.last_nonblank = ""
        self.unterminated = False

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        text = self.readline()
        if not text:
            raise StopIteration
        return text

    def readline(self, size: int | None = -1) -> str:
        text = self._raw.readline(-1 if size is None else size)
        if text:
            self.line += 1
            self.unterminated = not text.endswith("\n")
            if text.strip():
                self.last_nonblank = text
        return text

    def close(self) -> None:
        self._raw.close()


def _reader_error(path: Path, exc: BaseException, counter: _LineCounter | None, raw: IO[Any] | None) -> LogFormatError:
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if counter is not None:
        return LogFormatError(path, reason, line=counter.line)
    offset: int | None = None
    if raw is not None and not raw.closed and not isinstance(exc, LogFormatError):
        try:
            offset = raw.tell()
        except (OSError, ValueError):
            offset = None
    return LogFormatError(path, reason, offset=offset)


def iter_messages(path: str | Path) -> Iterator[can.Message]:
    """python-can messages of any supported log file; errors become `LogFormatError`."""
    path = Path(path)
    if not path.is_file():
        raise LogFormatError(path, "no such file")
    suffix = log_suffix(path)
    reader_cls = MESSAGE_READERS.get(suffix)
    if reader_cls is None:
        raise LogFormatError(path, f"unsupported log format {suffix!r} (supported: {', '.join(MESSAGE_READERS)})")
    compressed = path.suffix.lower() == ".gz"
    counter: _LineCounter | None = None
    raw: IO[Any] | None = None
    try:
        if compressed or suffix in (".db", ".mf4"):
            reader: Any = can.LogReader(path)
        elif suffix in TEXT_SUFFIXES:
            counter = _LineCounter(path.open("r", encoding="utf-8", errors="strict", newline=None))
            options = {"relative_timestamp": False} if suffix == ".asc" else {}
            reader = reader_cls(counter, **options)  # type: ignore[arg-type]
        else:
            raw = path.open("rb")
            reader = reader_cls(raw)  # type: ignore[arg-type]
    except Exception as exc:
        error = _reader_error(path, exc, counter, raw)
        _close(raw, counter)
        raise error from exc
    try:
        _check_complete(path, reader)
        for msg in reader:
            if not (msg.is_remote_frame or msg.is_error_frame or msg.is_fd) and msg.dlc != len(msg.data):
                raise ValueError(f"frame declares {msg.dlc} data bytes but holds {len(msg.data)}")
            yield msg
        if counter is not None and counter.unterminated:
            raise LogFormatError(path, "truncated last line (no line terminator)", line=counter.line)
        if suffix == ".asc" and counter is not None and counter.last_nonblank.strip() != ASC_END:
                raise LogFormatError(path, f"truncated ASC file: last line is not {ASC_END!r}", line=counter.line)
    except LogFormatError:
        raise
    except Exception as exc:  # python-can readers raise anything from ValueError to struct.error
        raise _reader_error(path, exc, counter, raw) from exc
    finally:
        _close(raw, counter)
        reader.stop()


def _close(raw: IO[Any] | None, counter: _LineCounter | None) -> None:
    if raw is not None:
        raw.close()
    if counter is not None:
        counter.close()


def _check_complete(path: Path, reader: Any) -> None:
    """A BLF whose header announces more bytes than the file holds was cut short."""
    declared = getattr(reader, "file_size", 0) if isinstance(reader, can.BLFReader) else 0
    actual = path.stat().st_size
    if declared and declared > actual:
        raise LogFormatError(path, f"truncated BLF file: header announces {declared} bytes", offset=actual)


def batches_from_messages(messages: Iterable[can.Message], chunk: int = DEFAULT_CHUNK) -> Iterator[FrameBatch]:
    """Group python-can messages into FrameBatches of at most ``chunk`` frames."""
    pending: list[can.Message] = []
    for msg in messages:
        pending.append(msg)
        if len(pending) >= chunk:
            yield FrameBatch.from_messages(pending)
            pending = []
    if pending:
        yield FrameBatch.from_messages(pending)


def _hex_columns(fields: list[bytes], width: int) -> npt.NDArray[np.uint8]:
    """Nibbles of right-padded hex strings as a uint8 [N, width] array (255 where a character is not hex)."""
    packed = np.array(fields, dtype=f"S{width}")
    return _HEX[packed.view(np.uint8).reshape(len(fields), width)]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a block creates ~10^5 short-lived tuples (halves the parse time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_candump_block(block: bytes) -> FrameBatch | None:
    """Vectorised parse of complete candump lines; None when some line needs the slow path (FD, remote, junk)."""
    with _gc_paused():
        matches = _CANDUMP_LINE.findall(block)
        lines = block.splitlines()
        if len(matches) != len(lines) - lines.count(b""):
            return None
        return _candump_columns(matches) if matches else FrameBatch.empty()


def _candump_columns(matches: list[tuple[bytes, bytes, bytes]]) -> FrameBatch:
    n = len(matches)
    stamps, ids, datas = zip(*matches, strict=True)
    timestamp = np.array(stamps, dtype="S32").astype(np.float64)
    id_nibbles = _hex_columns([i.rjust(8, b"0") for i in ids], 8).astype(np.uint32)
    can_id = np.zeros(n, dtype=np.uint32)
    for k in range(8):
        can_id = (can_id << np.uint32(4)) | id_nibbles[:, k]
    lengths = np.fromiter((len(d) for d in datas), dtype=np.uint8, count=n) // 2
    nib = _hex_columns(list(datas), 2 * CLASSIC_WIDTH)
    nib[nib == 255] = 0  # right padding of short payloads
    data = ((nib[:, 0::2] << 4) | nib[:, 1::2]).astype(np.uint8)
    is_error = (can_id & CAN_ERR_FLAG) != 0
    batch = FrameBatch.from_arrays(
        timestamp,
        can_id & np.uint32(0x1FFF_FFFF),
        data,
        dlc=lengths,
        is_extended=np.fromiter((len(i) == 8 for i in ids), dtype=bool, count=n),
    )
    batch.is_error = is_error
    return batch


def _iter_candump_fast(path: Path, chunk: int, block_bytes: int) -> Iterator[FrameBatch]:
    first_line = 1
    with path.open("rb") as f:
        tail = b""
        while True:
            data = f.read(block_bytes)
            buf = tail + data
            if not data:
                if buf.strip():
                    line = first_line + buf.count(b"\n")
                    raise LogFormatError(path, "truncated last line (no line terminator)", line=line)
                block, tail = buf, b""
            else:
                cut = buf.rfind(b"\n")
                if cut < 0:
                    tail = buf
                    continue
                block, tail = buf[: cut + 1], buf[cut + 1 :]
            if block:
                batch = parse_candump_block(block)
                if batch is None:
                    batch = _slow_candump_block(path, block, first_line, chunk)
                yield from _split(batch, chunk)
                first_line += block.count(b"\n")
            if not data:
                return


def _slow_candump_block(path: Path, block: bytes, first_line: int, chunk: int) -> FrameBatch:
    """Line-by-line parse of one block with python-can's reader; errors name the line in the file."""
    counter = _LineCounter(io.StringIO(block.decode("utf-8", errors="replace")))
    messages: list[can.Message] = []
    try:
        for msg in can.CanutilsLogReader(counter):  # type: ignore[arg-type]
            if not msg.is_error_frame and msg.dlc != len(msg.data) and not msg.is_remote_frame:
                raise ValueError(f"odd number of hex digits in data field ({msg.dlc} bytes declared)")
            messages.append(msg)
    except Exception as exc:
        raise LogFormatError(path, f"{type(exc).__name__}: {exc}", line=first_line + counter.line - 1) from exc
    return FrameBatch.from_messages(messages) if messages else FrameBatch.empty()


def _split(batch: FrameBatch, chunk: int) -> Iterator[FrameBatch]:
    for start in range(0, len(batch), chunk):
        yield batch.select(np.arange(start, min(start + chunk, len(batch))))


def iter_frame_batches(
    path: str | Path, chunk: int = DEFAULT_CHUNK, *, fast: bool = True, block_bytes: int = FAST_BLOCK_BYTES
) -> Iterator[FrameBatch]:
    """FrameBatches of at most ``chunk`` frames from any supported log, in file order.

    ``fast`` enables the vectorised candump parser for uncompressed ``.log`` files.
    """
    path = Path(path)
    if fast and path.suffix.lower() == ".log":
        if not path.is_file():
            raise LogFormatError(path, "no such file")
        yield from _iter_candump_fast(path, chunk, block_bytes)
        return
    yield from batches_from_messages(iter_messages(path), chunk)


def read_frame_batch(path: str | Path, *, fast: bool = True) -> FrameBatch:
    """The whole log as one FrameBatch."""
    return FrameBatch.concatenate(list(iter_frame_batches(path, fast=fast)))
