"""The sensor hot loop: serial sample batches and decoded CAN batches in, store and faults updated.

Owns :class:`HotLoop`. It is the single writer of the :class:`~telemetry.signal_store.SignalStore` and of the
diagnostic faults in the :class:`~telemetry.faults.FaultManager`. It never raises on bad input: empty batches,
shape mismatches, NaNs, unknown channels, index jumps and internal errors are counted in
:meth:`HotLoop.counters`; a failed serial block resets the filters so the next one starts a clean segment.

Inputs are duck-typed (:class:`SampleBatchLike`, :class:`DecodedBatchLike`) so that this module does not depend
on ``firmware_bridge``.

Serial sample times: sample index ``k`` is stamped ``k / fs + offset``, the offset being the smallest
``host_time - last_index / fs`` seen (the least transport delay; it may creep up by ``CLOCK_DRIFT_ALLOWANCE`` of
elapsed time to follow the firmware's clock drift), so stamps never lie in the future and keep the firmware's
sample spacing; shifted forward if needed so that time never runs backwards. The filtered
value stored for a sample is the causal filter output at that time (it includes the Hampel delay of ``k``
samples and the Butterworth group delay). After a gap a NaN point is stored just before the first new sample of
every serial key so that plots break instead of joining the two segments.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from telemetry.diagnostics import (
    SUCTION_SERIES_UNITS,
    DiagnosticsConfig,
    HopperTrend,
    SuctionDiagnostics,
    fault_specs,
)
from telemetry.faults import FaultManager
from telemetry.filters import ChannelFilters, ChannelResult, FilterBankConfig
from telemetry.loop_timing import LoopTimer
from telemetry.ring_buffer import FloatArray
from telemetry.signal_store import SignalStore

#: how fast the sample-time offset may grow (s per s): covers a firmware clock up to 100 ppm slow
CLOCK_DRIFT_ALLOWANCE = 1e-4


class SampleBatchLike(Protocol):
    """What the loop reads from ``firmware_bridge.serial_link.SampleBatch``."""

    @property
    def channels(self) -> tuple[str, ...]: ...
    @property
    def first_index(self) -> int: ...
    @property
    def samples(self) -> Any: ...  # float64[C, N]
    @property
    def gap_before(self) -> bool: ...
    @property
    def host_time(self) -> float: ...


class DecodedMessageLike(Protocol):
    """What the loop reads from ``firmware_bridge.batch_decoder.DecodedMessage``."""

    @property
    def timestamp(self) -> Any: ...  # float64[n]
    @property
    def signals(self) -> Mapping[str, Any]: ...
    def physical(self, name: str) -> Any: ...


class DecodedBatchLike(Protocol):
    @property
    def messages(self) -> Mapping[str, DecodedMessageLike]: ...


class HotLoopConfig(BaseModel):
    """Configuration of the hot loop (filters, diagnostics, timing, history depth)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filters: FilterBankConfig = FilterBankConfig()
    diagnostics: DiagnosticsConfig = DiagnosticsConfig()
    units: dict[str, str] = Field(
        default_factory=lambda: {
            "suction_pressure": "Pa", "fan_speed": "rpm", "fan_drive_pressure": "bar", "nozzle_dp": "Pa",
        }
    )
    cycle_budget_s: float = Field(default=0.002, gt=0.0, description="per-call budget; longer = deadline miss")
    serial_history_depth: int = Field(default=3000, ge=1, description="samples per serial/diag key")
    timing_window: int = Field(default=2048, ge=16)


class HotLoop:
    """Runs filters and diagnostics on every batch and writes the results to the store and the faults."""

    def __init__(self, store: SignalStore, faults: FaultManager, config: HotLoopConfig | None = None) -> None:
        self.store = store
        self.faults = faults
        self.config = config or HotLoopConfig()
        cfg = self.config
        for spec in fault_specs(cfg.diagnostics):
            faults.register(spec)
        depth = cfg.serial_history_depth
        for ch in cfg.filters.channels:
            unit = cfg.units.get(ch, "")
            store.register(f"serial.{ch}", unit=unit, depth=depth)
            store.register(f"serial.{ch}.raw", unit=unit, depth=depth)
        self._diag_keys = [f"diag.{name}" for name in SUCTION_SERIES_UNITS]
        for key, unit in zip(self._diag_keys, SUCTION_SERIES_UNITS.values(), strict=True):
            store.register(key, unit=unit, depth=depth)
        for name, unit in (("hopper_fill_rate_pct_s", "%/s"), ("hopper_time_to_full_s", "s")):
            store.register(f"diag.{name}", unit=unit, depth=depth)
        self._filters: ChannelFilters | None = None
        self._suction = SuctionDiagnostics(cfg.diagnostics)
        self._hopper = HopperTrend(cfg.diagnostics)
        self._expected_index: int | None = None
        self._last_sample_time = -math.inf
        self._time_offset: float | None = None
        self._offset_index = 0
        self._offset_host_time = 0.0
        self._message_valid: dict[str, bool] = {}
        self._message_keys: dict[str, list[str]] = {}
        self._counters: Counter[str] = Counter()
        self._last_error = ""
        self._timers = {
            "process_samples": LoopTimer(cfg.cycle_budget_s, cfg.timing_window),
            "process_can": LoopTimer(cfg.cycle_budget_s, cfg.timing_window),
        }

    # ---- serial ------------------------------------------------------------------------------------------
    def process_samples(self, batch: SampleBatchLike, now: float) -> None:
        """Filter one serial sample batch, update diagnostics, store and faults. Never raises."""
        with self._timers["process_samples"].measure():
            try:
                self._process_samples(batch, now)
            except Exception as exc:  # a bad batch must not stop the loop
                self._error("process_samples", exc)
                self._filters = None
                self._expected_index = None

    def _process_samples(self, batch: SampleBatchLike, now: float) -> None:
        c = self._counters
        c["sample_batches"] += 1
        samples = np.asarray(batch.samples, dtype=np.float64)
        channels = tuple(batch.channels)
        if samples.ndim != 2 or samples.shape[0] != len(channels):
            c["bad_shape"] += 1
            return
        n = samples.shape[1]
        if n == 0:
            c["empty_batch"] += 1
            return
        first = int(batch.first_index)
        restart = bool(batch.gap_before)
        if self._filters is None or self._filters.channels != channels:
            if self._filters is not None:
                c["channel_set_changed"] += 1
            self._filters = ChannelFilters(self.config.filters, channels)
            restart = True
        elif not restart and self._expected_index is not None and first != self._expected_index:
            c["index_discontinuity"] += 1
            restart = True
        if batch.gap_before:
            c["gaps"] += 1
        self._expected_index = first + n
        if self._filters.unknown:
            c["unknown_channel"] += len(self._filters.unknown)

        results = self._filters.process(samples, first, restart)
        fs = self.config.filters.sample_rate_hz
        times = self._sample_times(first, n, float(batch.host_time), fs)
        if times[0] <= self._last_sample_time:
            c["time_shifted"] += 1
            times += self._last_sample_time + 1.0 / fs - times[0]
        break_marker = restart and self._last_sample_time > -math.inf
        self._last_sample_time = float(times[-1])

        by_decimation: dict[int, list[str]] = {}
        for name, res in results.items():
            c["nonfinite_samples"] += res.nonfinite
            c["spikes_rejected"] += res.spikes
            by_decimation.setdefault(self.config.filters.channels[name].decimation, []).append(name)
        for names in by_decimation.values():
            self._store_serial([results[n] for n in names], names, times, break_marker)
        self._run_suction_diagnostics(results, times, restart, break_marker, now)

    def _append_block(
        self, keys: list[str], t: FloatArray, values: FloatArray, valid: list[bool] | bool, break_before: bool
    ) -> None:
        if t.size == 0:
            return
        if break_before:
            self.store.append_block(keys, t[:1] - 1e-6, np.full((len(keys), 1), math.nan), valid=False)
        self.store.append_block(keys, t, values, valid)

    def _store_serial(
        self, res: list[ChannelResult], names: list[str], times: FloatArray, break_before: bool
    ) -> None:
        """Store the decimated filtered and raw streams of channels that share one decimation."""
        idx = res[0].decimated_at
        keys = [f"serial.{n}" for n in names] + [f"serial.{n}.raw" for n in names]
        values = np.vstack([r.filtered[idx] for r in res] + [r.raw[idx] for r in res])
        # A filtered value is valid unless the block held non-finite input that the filter bridged.
        valid = [r.nonfinite == 0 for r in res] + [True] * len(res)
        self._append_block(keys, times[idx], values, valid, break_before)

    def _run_suction_diagnostics(
        self, results: Mapping[str, ChannelResult], times: FloatArray, restart: bool, brk: bool, now: float
    ) -> None:
        out = self._suction.process(results, restart)
        if out is None:
            self._counters["diag_input_missing"] += 1
            return
        t = times[results[self.config.diagnostics.fan_channel].decimated_at]
        self._append_block(self._diag_keys, t, np.vstack([out.series[n] for n in SUCTION_SERIES_UNITS]), True, brk)
        for fault, value in out.fault_inputs.items():
            self.faults.update(fault, value, now)

    def _sample_times(self, first: int, n: int, host_time: float, fs: float) -> np.ndarray:
        """Host times of samples ``first .. first+n-1``: ``index / fs + offset``, where the offset tracks the
        smallest transport delay seen (a batch can only arrive after its last sample was taken), so stamps never
        lie in the future; it may grow by ``CLOCK_DRIFT_ALLOWANCE`` of elapsed time to follow firmware clock drift."""
        last_index = first + n - 1
        candidate = host_time - last_index / fs
        prev = self._time_offset
        if prev is None or first < self._offset_index:  # first batch, or the firmware counter restarted
            offset = candidate
        else:
            offset = min(prev + CLOCK_DRIFT_ALLOWANCE * max(0.0, host_time - self._offset_host_time), candidate)
        self._time_offset, self._offset_index, self._offset_host_time = offset, first, host_time
        return (first + np.arange(n)) / fs + offset

    # ---- CAN ---------------------------------------------------------------------------------------------
    def process_can(
        self, decoded: DecodedBatchLike, validity: Mapping[str, bool] | None, now: float
    ) -> None:
        """Store every decoded signal (``Message.Signal``) with its message validity; hopper trend. Never raises."""
        with self._timers["process_can"].measure():
            try:
                self._process_can(decoded, validity, now)
            except Exception as exc:
                self._error("process_can", exc)

    def _process_can(self, decoded: DecodedBatchLike, validity: Mapping[str, bool] | None, now: float) -> None:
        c = self._counters
        c["can_batches"] += 1
        for msg_name, msg in decoded.messages.items():
            try:
                self._store_message(msg_name, msg, True if validity is None else validity.get(msg_name, True))
            except Exception as exc:
                self._error("can_message", exc)
        if validity is not None:
            self.apply_validity(validity)
        hopper = decoded.messages.get(self.config.diagnostics.hopper_message)
        if hopper is not None:
            self._run_hopper(hopper, now)

    def _store_message(self, msg_name: str, msg: DecodedMessageLike, valid: bool) -> None:
        ts = np.asarray(msg.timestamp, dtype=np.float64)
        if ts.size == 0:
            self._counters["empty_message"] += 1
            return
        keys = self._message_keys.setdefault(msg_name, [])
        present_masks: Mapping[str, Any] = getattr(msg, "present", None) or {}
        if self._message_valid.get(msg_name, valid) != valid:  # also the keys this batch does not carry (mux pages)
            for key in keys:
                self.store.set_valid(key, valid)
        for sig in msg.signals:
            key = f"{msg_name}.{sig}"
            values = np.asarray(msg.physical(sig), dtype=np.float64)
            if values.shape != ts.shape:
                self._counters["bad_shape"] += 1
                continue
            sig_ts = ts
            present = present_masks.get(sig)
            if present is not None:  # multiplexed: only the frames that carried this signal's page
                sig_ts, values = ts[present], values[present]
                if sig_ts.size == 0:
                    continue
            if self.store.append(key, sig_ts, values, valid=valid) and key not in keys:
                keys.append(key)
        self._message_valid[msg_name] = valid

    def apply_validity(self, validity: Mapping[str, bool]) -> None:
        """Propagate validity changes of messages that did not arrive in this batch (e.g. timed out)."""
        for msg_name, valid in validity.items():
            if self._message_valid.get(msg_name) == valid:
                continue
            self._message_valid[msg_name] = valid
            for key in self._message_keys.get(msg_name, ()):
                self.store.set_valid(key, valid)

    def _run_hopper(self, msg: DecodedMessageLike, now: float) -> None:
        dcfg = self.config.diagnostics
        if dcfg.hopper_signal not in msg.signals:
            self._counters["diag_input_missing"] += 1
            return
        ts = np.asarray(msg.timestamp, dtype=np.float64)
        level = np.asarray(msg.physical(dcfg.hopper_signal), dtype=np.float64)
        est = self._hopper.update(ts, level)
        if est is None:
            return
        t = ts[-1:]
        self.store.append("diag.hopper_fill_rate_pct_s", t, np.array([est.rate_pct_per_s]))
        self.store.append("diag.hopper_time_to_full_s", t, np.array([est.time_to_full_s]))
        self.faults.update("hopper_full", est.level_pct, now)
        self.faults.update("hopper_filling", est.time_to_full_s, now)

    # ---- introspection -------------------------------------------------------------------------------
    def _error(self, where: str, exc: Exception) -> None:
        self._counters[f"error_{where}"] += 1
        self._last_error = f"{where}: {type(exc).__name__}: {exc}"

    def counters(self) -> dict[str, int]:
        """Event and bad-input counters (all start at 0 and only grow)."""
        return dict(self._counters)

    @property
    def last_error(self) -> str:
        return self._last_error

    def timing(self) -> dict[str, Any]:
        """Per-entry-point call timing (see :meth:`telemetry.loop_timing.LoopTimer.summary`)."""
        return {name: timer.summary() for name, timer in self._timers.items()}
