"""Prometheus exposition: a custom Collector that reads the service on every scrape.

Each app owns its own `CollectorRegistry` (no global state, several apps per process in tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from telemetry.api.service_port import TelemetryService
from telemetry.api.stream import StreamHub

MODE_STATES = ("TRANSPORT", "SWEEPER", "SNOW", "SAFE")



class ServiceCollector(Collector):
    """Translates the service's health/mode/fault views and a few key signals into metric families."""

    def __init__(self, service: TelemetryService, hub: StreamHub, signal_keys: Sequence[str]) -> None:
        self._service = service
        self._hub = hub
        self._signal_keys = tuple(signal_keys)

    def collect(self) -> Iterator[Metric]:
        yield from self._bus_and_loop()
        yield from self._mode_and_faults()
        yield from self._signals()
        yield from self._websocket()

    def _bus_and_loop(self) -> Iterator[Metric]:
        health = self._service.health()
        bus, loop = health.bus, health.loop
        yield CounterMetricFamily("uniross_can_frames", "CAN frames received", value=bus.frames_total)
        yield GaugeMetricFamily("uniross_can_frames_per_second", "CAN frame rate", value=bus.frames_per_s)
        yield GaugeMetricFamily("uniross_can_bus_load_percent", "Estimated CAN bus load", value=bus.bus_load_pct)
        errors = CounterMetricFamily("uniross_can_errors", "CAN bus errors per reason", labels=["reason"])
        for reason, count in sorted(bus.errors.items()):
            errors.add_metric([reason], count)
        yield errors
        rejects = CounterMetricFamily("uniross_decoder_rejects", "Frames rejected by the decoder", labels=["reason"])
        for reason, count in sorted(bus.decoder_rejects.items()):
            rejects.add_metric([reason], count)
        yield rejects
        valid = GaugeMetricFamily("uniross_message_valid", "1 when the message is valid", labels=["message"])
        for msg in bus.messages:
            valid.add_metric([msg.name], 1.0 if msg.valid else 0.0)
        yield valid
        serial = CounterMetricFamily("uniross_serial_link", "Serial firmware link counters", labels=["counter"])
        for name, count in sorted(health.serial.counters.items()):
            serial.add_metric([name], count)
        yield serial
        yield GaugeMetricFamily(
            "uniross_serial_link_connected", "1 while the serial link is up", value=float(health.serial.connected)
        )
        cycle = GaugeMetricFamily("uniross_loop_cycle_seconds", "Loop cycle time quantiles", labels=["quantile"])
        cycle.add_metric(["0.5"], loop.cycle_p50_s)
        cycle.add_metric(["0.99"], loop.cycle_p99_s)
        cycle.add_metric(["1"], loop.cycle_max_s)
        yield cycle
        yield GaugeMetricFamily("uniross_loop_budget_seconds", "Control loop cycle budget", value=loop.budget_s)
        yield CounterMetricFamily("uniross_loop_cycles", "Control loop cycles run", value=loop.cycles)
        yield CounterMetricFamily(
            "uniross_loop_deadline_misses", "Cycles that overran the budget", value=loop.deadline_misses
        )

    def _mode_and_faults(self) -> Iterator[Metric]:
        status = self._service.mode_status()
        mode = GaugeMetricFamily("uniross_mode", "1 for the current mode state", labels=["state"])
        states = MODE_STATES if status.state in MODE_STATES else (*MODE_STATES, status.state)
        for state in states:
            mode.add_metric([state], 1.0 if state == status.state else 0.0)
        yield mode
        yield GaugeMetricFamily(
            "uniross_mode_in_transition", "1 during a transition", value=float(bool(status.transition_step))
        )
        failed = sum(1 for i in status.interlocks if not i.ok)
        yield GaugeMetricFamily("uniross_interlocks_failed", "Interlocks currently not satisfied", value=failed)
        faults = self._service.faults()
        active = GaugeMetricFamily("uniross_faults_active", "Active faults per severity", labels=["severity"])
        by_severity: dict[str, int] = {}
        for fault in faults.active:
            by_severity[fault.severity] = by_severity.get(fault.severity, 0) + 1
        for severity, count in sorted(by_severity.items()):
            active.add_metric([severity], count)
        yield active
        yield GaugeMetricFamily("uniross_dtcs_active", "Active DM1 DTCs", value=len(faults.dtcs))

    def _signals(self) -> Iterator[Metric]:
        wanted = set(self._signal_keys)
        family = GaugeMetricFamily("uniross_signal", "Key signal values (NaN when unavailable)", labels=["key", "unit"])
        fresh = GaugeMetricFamily("uniross_signal_valid", "1 when the key signal is valid", labels=["key"])
        for sig in self._service.snapshot():
            if sig.key not in wanted:
                continue
            value = sig.value
            number = float(value) if isinstance(value, (int, float)) else math.nan
            family.add_metric([sig.key, sig.unit], number)
            fresh.add_metric([sig.key], float(sig.valid))
        yield family
        yield fresh

    def _websocket(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("uniross_ws_clients", "Connected WebSocket clients", value=self._hub.client_count)
        yield CounterMetricFamily(
            "uniross_ws_dropped_messages", "WebSocket messages dropped for slow clients",
            value=self._hub.dropped_messages_total(),
        )


def build_registry(service: TelemetryService, hub: StreamHub, signal_keys: Sequence[str]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector(service, hub, signal_keys))
    return registry
