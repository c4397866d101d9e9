"""FrameBatch: many raw CAN frames as NumPy columns, the unit of work between the bus reader and the codec."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

import can
import numpy as np
import numpy.typing as npt

_DATA = attrgetter("data")
_IS_FD = attrgetter("is_fd")
_TIMESTAMP = attrgetter("timestamp")
_ID = attrgetter("arbitration_id")
_EXTENDED = attrgetter("is_extended_id")
_REMOTE = attrgetter("is_remote_frame")
_ERROR = attrgetter("is_error_frame")

CLASSIC_WIDTH = 8
FD_WIDTH = 64


@dataclass
class FrameBatch:
    """N frames: ``timestamp`` f64, ``arbitration_id`` u32, ``is_extended`` bool, ``dlc`` u8 (bytes),
    ``data`` u8[N, W] (W = 8, or 64 when any frame is CAN FD; unused bytes are 0), ``is_remote``/``is_error``."""

    timestamp: npt.NDArray[np.float64]
    arbitration_id: npt.NDArray[np.uint32]
    is_extended: npt.NDArray[np.bool_]
    dlc: npt.NDArray[np.uint8]
    data: npt.NDArray[np.uint8]
    is_remote: npt.NDArray[np.bool_]
    is_error: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.timestamp.shape[0])

    @classmethod
    def empty(cls, width: int = CLASSIC_WIDTH) -> FrameBatch:
        return cls.from_arrays(np.zeros(0), np.zeros(0, np.uint32), np.zeros((0, width), np.uint8))

    @classmethod
    def from_arrays(
        cls,
        timestamp: npt.ArrayLike,
        arbitration_id: npt.ArrayLike,
        data: npt.NDArray[np.uint8],
        dlc: npt.ArrayLike | None = None,
        is_extended: npt.ArrayLike | None = None,
    ) -> FrameBatch:
        ts = np.asarray(timestamp, dtype=np.float64)
        ids = np.asarray(arbitration_id, dtype=np.uint32)
        n = ts.shape[0]
        data = np.ascontiguousarray(data, dtype=np.uint8)
        if data.ndim != 2:  # a flat buffer of n equal rows (reshape(0, -1) is ambiguous, so 2-D stays as is)
            data = data.reshape(n, -1)
        return cls(
            timestamp=ts,
            arbitration_id=ids,
            is_extended=(ids > 0x7FF) if is_extended is None else np.asarray(is_extended, dtype=bool),
            dlc=np.full(n, data.shape[1], np.uint8) if dlc is None else np.asarray(dlc, dtype=np.uint8),
            data=data,
            is_remote=np.zeros(n, dtype=bool),
            is_error=np.zeros(n, dtype=bool),
        )

    @classmethod
    def from_messages(cls, messages: Sequence[can.Message]) -> FrameBatch:
        """Columns from python-can messages (the cost the live path pays per frame): one C-level pass per column
        (``map`` + ``attrgetter``), and the payloads joined in one go when every frame fills the width."""
        n = len(messages)
        payloads = list(map(_DATA, messages))
        dlc = np.fromiter(map(len, payloads), dtype=np.uint8, count=n)
        width = FD_WIDTH if any(map(_IS_FD, messages)) else CLASSIC_WIDTH
        if n and int(dlc.min()) == width and int(dlc.max()) == width:
            data = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(n, width).copy()
        else:
            buf = bytearray(n * width)
            for i, payload in enumerate(payloads):
                chunk = payload[:width]
                buf[i * width : i * width + len(chunk)] = chunk
            data = np.frombuffer(bytes(buf), dtype=np.uint8).reshape(n, width).copy()
            dlc = np.minimum(dlc, width).astype(np.uint8)
        return cls(
            timestamp=np.fromiter(map(_TIMESTAMP, messages), dtype=np.float64, count=n),
            arbitration_id=np.fromiter(map(_ID, messages), dtype=np.uint32, count=n),
            is_extended=np.fromiter(map(_EXTENDED, messages), dtype=bool, count=n),
            dlc=dlc,
            data=data,
            is_remote=np.fromiter(map(_REMOTE, messages), dtype=bool, count=n),
            is_error=np.fromiter(map(_ERROR, messages), dtype=bool, count=n),
        )

    def to_messages(self) -> list[can.Message]:
        """python-can messages again (for log writers); off the hot path."""
        return [
            can.Message(
                timestamp=float(t), arbitration_id=int(i), is_extended_id=bool(x), data=bytes(row[:n]),
                is_fd=n > CLASSIC_WIDTH, is_remote_frame=bool(r), is_error_frame=bool(e), dlc=int(n),
            )
            for t, i, x, row, n, r, e in zip(
                self.timestamp, self.arbitration_id, self.is_extended, self.data, self.dlc, self.is_remote,
                self.is_error, strict=True,
            )
        ]

    def select(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> FrameBatch:
        return FrameBatch(
            timestamp=self.timestamp[mask],
            arbitration_id=self.arbitration_id[mask],
            is_extended=self.is_extended[mask],
            dlc=self.dlc[mask],
            data=self.data[mask],
            is_remote=self.is_remote[mask],
            is_error=self.is_error[mask],
        )

    @classmethod
    def concatenate(cls, batches: Sequence[FrameBatch]) -> FrameBatch:
        if not batches:
            return cls.empty()
        width = max(b.data.shape[1] for b in batches)
        datas = [np.pad(b.data, ((0, 0), (0, width - b.data.shape[1]))) for b in batches]
        return cls(
            timestamp=np.concatenate([b.timestamp for b in batches]),
            arbitration_id=np.concatenate([b.arbitration_id for b in batches]),
            is_extended=np.concatenate([b.is_extended for b in batches]),
            dlc=np.concatenate([b.dlc for b in batches]),
            data=np.concatenate(datas),
            is_remote=np.concatenate([b.is_remote for b in batches]),
            is_error=np.concatenate([b.is_error for b in batches]),
        )
