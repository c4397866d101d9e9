"""Vectorized raw bit-field extraction from CAN payload columns, with cantools' bit numbering.

Owns the layout half of the batch codec: where a signal's bits sit (Intel / Motorola, cantools start-bit
convention) and how to pull them out of ``uint8[n, W]`` payloads as ``uint64`` raw values for many frames at once.

- Intel (little endian): raw = (payload as little-endian integer >> start) & mask.
- Motorola (big endian): cantools' ``start`` is the MSB in sawtooth numbering; the network (MSB-first) bit index
  is ``8 * (start // 8) + 7 - start % 8`` and raw = (payload as big-endian integer >> (8*len - sb - length)) & mask.

Signals lying wholly in bytes 0..7 ("window 0") are extracted together in two 2-D shift/mask operations from one
``uint64`` view of the first 8 bytes (and its byteswap for Motorola). Signals elsewhere (CAN FD, long messages)
are read from their own 8-byte window plus, when they straddle 9 bytes, one extra byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

U64 = np.dtype("<u8")


def network_start(start: int) -> int:
    """cantools' Motorola start bit (sawtooth numbering) as an MSB-first network bit index."""
    return 8 * (start // 8) + 7 - start % 8


def field_mask(length: int) -> int:
    return (1 << length) - 1


@dataclass(frozen=True)
class BitField:
    """One signal's position: cantools ``start``/``length``/``byte_order``."""

    start: int
    length: int
    big_endian: bool

    @property
    def first_bit(self) -> int:
        """Index of the lowest payload bit in sequential numbering (LE) or network numbering (BE)."""
        return network_start(self.start) if self.big_endian else self.start

    @property
    def end_byte(self) -> int:
        """One past the last payload byte the field touches."""
        return (self.first_bit + self.length - 1) // 8 + 1

    @property
    def in_window0(self) -> bool:
        return self.first_bit + self.length <= 64


class FieldExtractor:
    """Precompiled extraction of several bit fields into one ``uint64[k, n]`` matrix (row i = field i).

    Fields are reordered internally (Intel window-0, Motorola window-0, others); ``row_of`` maps the caller's field
    index to its row.
    """

    def __init__(self, fields: list[BitField]) -> None:
        order = sorted(
            range(len(fields)),
            key=lambda i: (0 if fields[i].in_window0 and not fields[i].big_endian else
                           1 if fields[i].in_window0 else 2),
        )
        self.fields = [fields[i] for i in order]
        self.row_of = {orig: row for row, orig in enumerate(order)}
        le = [f for f in self.fields if f.in_window0 and not f.big_endian]
        be = [f for f in self.fields if f.in_window0 and f.big_endian]
        self._n_le = len(le)
        self._n_be = len(be)
        self._le_shift = np.array([[f.start] for f in le], dtype=np.uint64)
        self._le_mask = np.array([[field_mask(f.length)] for f in le], dtype=np.uint64)
        self._be_shift = np.array([[64 - f.first_bit - f.length] for f in be], dtype=np.uint64)
        self._be_mask = np.array([[field_mask(f.length)] for f in be], dtype=np.uint64)
        self._others = self.fields[self._n_le + self._n_be :]
        self.min_width = max((f.end_byte for f in self.fields), default=0)

    def extract(self, rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
        """Raw values ``uint64[k, n]`` of all fields for payload rows ``uint8[n, W]``."""
        n = rows.shape[0]
        out = np.empty((len(self.fields), n), dtype=np.uint64)
        if self._n_le or self._n_be:
            v = _window(rows, 0)
            if self._n_le:
                dst = out[: self._n_le]
                np.right_shift(v[None, :], self._le_shift, out=dst)
                np.bitwise_and(dst, self._le_mask, out=dst)
            if self._n_be:
                dst = out[self._n_le : self._n_le + self._n_be]
                np.right_shift(v.byteswap()[None, :], self._be_shift, out=dst)
                np.bitwise_and(dst, self._be_mask, out=dst)
        if self._others:
            padded = rows
            need = max(f.first_bit // 8 + 9 for f in self._others)
            if rows.shape[1] < need:
                padded = np.zeros((n, need), dtype=np.uint8)
                padded[:, : rows.shape[1]] = rows
            base = self._n_le + self._n_be
            for j, f in enumerate(self._others):
                out[base + j] = extract_field(padded, f)
        return out


def _window(rows: npt.NDArray[np.uint8], byte0: int) -> npt.NDArray[np.uint64]:
    """Bytes ``byte0 .. byte0+7`` of every row as one little-endian ``uint64`` (zero past the row end)."""
    n, width = rows.shape
    if width - byte0 >= 8:
        chunk = rows[:, byte0 : byte0 + 8]
        if not chunk.flags.c_contiguous:
            chunk = np.ascontiguousarray(chunk)
    else:
        chunk = np.zeros((n, 8), dtype=np.uint8)
        chunk[:, : max(width - byte0, 0)] = rows[:, byte0:]
    return chunk.view(U64).reshape(n)


def extract_field(rows: npt.NDArray[np.uint8], f: BitField) -> npt.NDArray[np.uint64]:
    """Raw ``uint64[n]`` of one field anywhere in the payload (``rows`` at least ``first_bit // 8 + 9`` wide,
    or covering the field)."""
    first = f.first_bit
    byte0, r = divmod(first, 8)
    mask = np.uint64(field_mask(f.length))
    w = _window(rows, byte0)
    extra = r + f.length - 64  # > 0: the field reaches into a 9th byte
    if not f.big_endian:
        raw = w >> np.uint64(r)
        if extra > 0:
            raw |= rows[:, byte0 + 8].astype(np.uint64) << np.uint64(64 - r)
        return raw & mask
    w = w.byteswap()
    if extra <= 0:
        return (w >> np.uint64(64 - r - f.length)) & mask
    tail = rows[:, byte0 + 8].astype(np.uint64) >> np.uint64(8 - extra)
    return ((w << np.uint64(extra)) | tail) & mask
