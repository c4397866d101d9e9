"""Prometheus /metrics: the custom collector reads the real service on scrape; one registry per app."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from telemetry.api.testing import RunningApi, running_api


def scrape(api: RunningApi) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = httpx.get(f"{api.base_url}/metrics").text
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_metrics_reflect_the_service() -> None:
    with running_api() as api, running_api() as other:  # two apps in one process: separate registries
        with connect(api.ws_url) as ws:
            ws.send(json.dumps({"subscribe": ["serial.*"]}))
            ws.recv(timeout=3)
            m = scrape(api)
        assert m["uniross_ws_clients"][0][1] == 1
        assert m["uniross_can_frames_total"][0][1] > 0
        assert m["uniross_loop_cycles_total"][0][1] > 0
        assert "uniross_loop_deadline_misses_total" in m
        states = {labels["state"]: v for labels, v in m["uniross_mode"]}
        assert sum(states.values()) == 1 and {"TRANSPORT", "SWEEPER", "SNOW", "SAFE"} <= set(states)
        assert states[httpx.get(f"{api.base_url}/api/v1/mode").json()["state"]] == 1
        signals = {labels["key"]: v for labels, v in m["uniross_signal"]}
        rest = {s["key"]: s["value"] for s in httpx.get(f"{api.base_url}/api/v1/snapshot").json()["signals"]}
        assert signals["CCVS1.WheelBasedVehicleSpeed"] == rest["CCVS1.WheelBasedVehicleSpeed"] == 0  # parked
        assert abs(signals["SSC_Suction.SuctionPressure"] - rest["SSC_Suction.SuctionPressure"]) < 50  # fan idle
        assert set(signals) == set(api.settings.metric_signals)
        quantiles = {labels["quantile"]: v for labels, v in m["uniross_loop_cycle_seconds"]}
        assert 0 < quantiles["0.5"] <= quantiles["0.99"] <= quantiles["1"]
        assert scrape(other)["uniross_ws_clients"][0][1] == 0
