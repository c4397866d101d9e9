"""Block filters for the 1 kHz serial channels: spike rejection, low-pass, decimation.

Owns the per-channel filter configuration and the stateful filter banks. Every filter carries its state
between blocks, so the output of a signal cut into blocks is identical to the output of the whole signal
in one call, whatever the block sizes (tested with hypothesis against whole-signal references).

Pipeline per channel (all channels of one configuration are filtered together as a C x N block):

1. NaN hold: non-finite samples are replaced by the channel's last finite sample (so a NaN never enters,
   and never poisons, the recursive filter state). They are counted by the caller.
2. Spike rejection: causal Hampel filter with a fixed delay of ``k = hampel_half_window`` samples. The
   output at input index ``i`` is the Hampel decision for input ``i - k`` over the window
   ``[i - 2k, i]``: the centre sample is replaced by the window median when
   ``|x - median| > threshold * max(1.4826 * MAD, hampel_floor)``. State = the trailing ``2k`` samples.
   A step that lasts more than ``k`` samples passes unchanged (only delayed by ``k``).
3. Low-pass: Butterworth, second-order sections (``scipy.signal.butter(output="sos")``) run with
   ``sosfilt`` and its ``zi`` carried between blocks. It is also the anti-alias filter for step 4.
4. Decimation: keep the samples whose firmware sample index is a multiple of the decimation factor. The
   phase is tied to the firmware counter, so it is kept across blocks and stays on the same grid after a gap.

Start and gap (``gap_before``): every state is re-initialised from the first sample of the new segment:
the Hampel window is filled with ``x0`` and the low-pass state is ``sosfilt_zi(sos) * x0`` (steady state at
``x0``, no ringing). Samples on both sides of a gap are never filtered together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import signal

FloatArray = npt.NDArray[np.float64]

MAD_TO_SIGMA = 1.4826
"""Scale factor from the median absolute deviation to the standard deviation of a normal distribution."""


class ChannelFilterConfig(BaseModel):
    """Filter settings of one serial channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cutoff_hz: float = Field(default=10.0, gt=0.0, description="Butterworth low-pass cut-off")
    order: int = Field(default=4, ge=1, le=10, description="Butterworth order")
    hampel_half_window: int = Field(default=3, ge=0, le=50, description="k: window 2k+1, delay k samples")
    hampel_threshold: float = Field(default=3.0, gt=0.0, description="n sigma (sigma = 1.4826 * MAD)")
    hampel_floor: float = Field(default=0.0, ge=0.0, description="lower bound of sigma, physical units")
    decimation: int = Field(default=20, ge=1, le=10_000, description="1 kHz -> 50 Hz with 20")


class FilterBankConfig(BaseModel):
    """Sample rate and the filter settings of every known serial channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_rate_hz: float = Field(default=1000.0, gt=0.0)
    channels: dict[str, ChannelFilterConfig] = Field(
        default_factory=lambda: {
            "suction_pressure": ChannelFilterConfig(hampel_floor=5.0),
            "fan_speed": ChannelFilterConfig(hampel_floor=2.0),
            "fan_drive_pressure": ChannelFilterConfig(hampel_floor=0.5),
            "nozzle_dp": ChannelFilterConfig(hampel_floor=2.0),
        }
    )

    @model_validator(mode="after")
    def _check_anti_alias(self) -> FilterBankConfig:
        for name, cfg in self.channels.items():
            out_nyquist = 0.5 * self.sample_rate_hz / cfg.decimation
            if cfg.cutoff_hz >= out_nyquist:
                raise ValueError(
                    f"channel {name!r}: cutoff {cfg.cutoff_hz} Hz must be below the decimated Nyquist "
                    f"frequency {out_nyquist} Hz"
                )
        return self


@dataclass(frozen=True, slots=True)
class FilterOutput:
    """Result of one block through a :class:`FilterBank` (arrays are C x N unless noted)."""

    despiked: FloatArray
    """Hampel output (delayed by k samples), full rate."""
    filtered: FloatArray
    """Low-pass output, full rate."""
    decimated_at: npt.NDArray[np.intp]
    """Column indices (into the block) of the samples kept by decimation."""
    nonfinite: npt.NDArray[np.int64]
    """Per channel: how many input samples were not finite (held at the last finite value)."""
    spikes: npt.NDArray[np.int64]
    """Per channel: how many samples the Hampel filter replaced."""


def hampel_decide(windows: FloatArray, threshold: float, floor: float) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Hampel decision for windows of odd length on the last axis: (output centre values, replaced mask)."""
    k = windows.shape[-1] // 2
    centre = windows[..., k]
    # Odd window length: the median is the k-th order statistic (np.partition is much cheaper than np.median).
    med = np.partition(windows, k, axis=-1)[..., k]
    mad = np.partition(np.abs(windows - med[..., None]), k, axis=-1)[..., k]
    scale = np.maximum(MAD_TO_SIGMA * mad, floor)
    replaced = np.abs(centre - med) > threshold * scale
    return np.where(replaced, med, centre), replaced


class FilterBank:
    """Filters C channels that share one :class:`ChannelFilterConfig`, block by block, state carried."""

    def __init__(self, config: ChannelFilterConfig, sample_rate_hz: float, n_channels: int) -> None:
        self.config = config
        self.n_channels = n_channels
        self.sos: FloatArray = np.asarray(
            signal.butter(config.order, config.cutoff_hz, btype="low", fs=sample_rate_hz, output="sos"),
            dtype=np.float64,
        )
        self._zi_unit: FloatArray = signal.sosfilt_zi(self.sos)  # (n_sections, 2)
        self._hist_len = 2 * config.hampel_half_window
        self._hampel_hist: FloatArray = np.zeros((n_channels, self._hist_len))
        self._zi: FloatArray = np.zeros((self.sos.shape[0], n_channels, 2))
        self._last_finite: FloatArray = np.full(n_channels, np.nan)
        self._initialised = False

    def reset(self) -> None:
        """Forget all state: the next block starts a new segment."""
        self._initialised = False
        self._last_finite[:] = np.nan

    def _hold_nonfinite(self, x: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        finite = np.isfinite(x)
        bad = (~finite).sum(axis=1).astype(np.int64)
        if not bad.any():
            self._last_finite = x[:, -1].copy()
            return x, bad
        n = x.shape[1]
        idx = np.where(finite, np.arange(n), -1)
        np.maximum.accumulate(idx, axis=1, out=idx)
        # No finite sample yet in this block: use the last finite one of earlier blocks, else the first
        # finite one of this block, else 0.
        first_finite = np.where(finite.any(axis=1), finite.argmax(axis=1), -1)
        fill = self._last_finite.copy()
        rows = np.arange(x.shape[0])
        take_first = ~np.isfinite(fill) & (first_finite >= 0)
        fill[take_first] = x[rows[take_first], first_finite[take_first]]
        fill[~np.isfinite(fill)] = 0.0
        held = np.where(idx >= 0, x[rows[:, None], np.maximum(idx, 0)], fill[:, None])
        self._last_finite = held[:, -1].copy()
        return held, bad

    def _start_segment(self, x0: FloatArray) -> None:
        self._hampel_hist = np.repeat(x0[:, None], self._hist_len, axis=1)
        self._zi = self._zi_unit[:, None, :] * x0[None, :, None]
        self._initialised = True

    def process(self, block: FloatArray, first_index: int, restart: bool) -> FilterOutput:
        """Filter a C x N block whose first sample has firmware index ``first_index``.

        ``restart`` starts a new segment (after a gap): no state crosses it.
        """
        x, nonfinite = self._hold_nonfinite(np.asarray(block, dtype=np.float64))
        n = x.shape[1]
        if restart or not self._initialised:
            self._start_segment(x[:, 0])
        cfg = self.config
        if self._hist_len:
            ext = np.concatenate((self._hampel_hist, x), axis=1)
            windows = sliding_window_view(ext, self._hist_len + 1, axis=1)
            despiked, replaced = hampel_decide(windows, cfg.hampel_threshold, cfg.hampel_floor)
            self._hampel_hist = ext[:, -self._hist_len :].copy()
            spikes = replaced.sum(axis=1).astype(np.int64)
        else:
            despiked, spikes = x, np.zeros(self.n_channels, dtype=np.int64)
        filtered, self._zi = signal.sosfilt(self.sos, despiked, axis=1, zi=self._zi)
        decimated_at = np.flatnonzero((first_index + np.arange(n)) % cfg.decimation == 0)
        return FilterOutput(despiked, filtered, decimated_at, nonfinite, spikes)


class ChannelFilters:
    """Filters a fixed tuple of named channels, grouping channels of equal configuration into one bank.

    Channels without a configuration are not filtered; :attr:`unknown` lists them.
    """

    def __init__(self, config: FilterBankConfig, channels: Sequence[str]) -> None:
        self.config = config
        self.channels = tuple(channels)
        self.unknown = tuple(c for c in self.channels if c not in config.channels)
        groups: dict[ChannelFilterConfig, list[int]] = {}
        for row, name in enumerate(self.channels):
            if name in config.channels:
                groups.setdefault(config.channels[name], []).append(row)
        self.groups: list[tuple[npt.NDArray[np.intp], FilterBank]] = [
            (np.asarray(rows, dtype=np.intp), FilterBank(cfg, config.sample_rate_hz, len(rows)))
            for cfg, rows in groups.items()
        ]

    def reset(self) -> None:
        for _, bank in self.groups:
            bank.reset()

    def process(self, samples: FloatArray, first_index: int, restart: bool) -> dict[str, ChannelResult]:
        """Filter a C x N block (rows in :attr:`channels` order); returns results of known channels."""
        out: dict[str, ChannelResult] = {}
        for rows, bank in self.groups:
            res = bank.process(samples[rows], first_index, restart)
            for j, row in enumerate(rows):
                out[self.channels[row]] = ChannelResult(
                    raw=samples[row],
                    despiked=res.despiked[j],
                    filtered=res.filtered[j],
                    decimated_at=res.decimated_at,
                    nonfinite=int(res.nonfinite[j]),
                    spikes=int(res.spikes[j]),
                )
        return out


@dataclass(frozen=True, slots=True)
class ChannelResult:
    """One channel's view of a :class:`FilterOutput` (1-D arrays of the block length)."""

    raw: FloatArray
    despiked: FloatArray
    filtered: FloatArray
    decimated_at: npt.NDArray[np.intp]
    nonfinite: int
    spikes: int

