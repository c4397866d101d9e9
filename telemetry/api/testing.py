"""Test/bench support: a service + app + real uvicorn server on a loopback port, with known tokens."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from telemetry.api.app import create_app
from telemetry.api.inmemory import InMemoryTelemetryService
from telemetry.api.server import ServerThread
from telemetry.api.service_port import TelemetryService
from telemetry.api.settings import ApiSettings, hash_token

ENGINEER_TOKEN = "engineer-test-token-4f1c0a"
OPERATOR_TOKEN = "operator-test-token-9b22e7"


@dataclass(frozen=True)
class RunningApi:
    base_url: str
    service: TelemetryService
    app: FastAPI
    settings: ApiSettings

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/api/v1/stream"

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def test_settings(**overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "engineer_token_hashes": [hash_token(ENGINEER_TOKEN)],
        "operator_token_hashes": [hash_token(OPERATOR_TOKEN)],
        **overrides,
    }
    return ApiSettings.model_validate(values)


@contextmanager
def running_api(
    warmup_s: float = 0.2,
    service: InMemoryTelemetryService | None = None,
    send_buffer_bytes: int | None = None,
    **settings_overrides: Any,
) -> Iterator[RunningApi]:
    """Serve `service` (default: in-memory with the demo feed, started) by uvicorn on 127.0.0.1:<free port>."""
    if service is None:
        service = InMemoryTelemetryService()
        service.start(demo_feed=True)
    settings = test_settings(**settings_overrides)
    app = create_app(service, settings)
    try:
        with ServerThread(app, send_buffer_bytes=send_buffer_bytes) as base_url:
            time.sleep(warmup_s)
            yield RunningApi(base_url, service, app, settings)
    finally:
        service.stop()
