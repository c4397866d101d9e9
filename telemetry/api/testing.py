"""Test/bench support: the REAL service (`uniross.service.Service`, by default with the embedded simulated vehicle
on a python-can virtual bus and the serial firmware simulator on a pty) seen through `ServiceView`, served by
`create_app` on real uvicorn at a free loopback port, with known engineer/operator tokens.

`running_api()` yields a `RunningApi` once `/readyz` would answer 200 and every safety-relevant input has been
valid (the mode machine has left its start-up hold), so tests meet the service as a user would.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from telemetry.api.app import create_app
from telemetry.api.server import ServerThread
from telemetry.api.service_port import TelemetryService
from telemetry.api.settings import ApiSettings, hash_token
from uniross.config import ServiceSettings, SimSettings, load_settings
from uniross.service import Service
from uniross.service_view import ServiceView

ENGINEER_TOKEN = "engineer-test-token-4f1c0a"
OPERATOR_TOKEN = "operator-test-token-9b22e7"

T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, poll_s: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy (returned); AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll_s)


@dataclass(frozen=True)
class RunningApi:
    base_url: str
    service: TelemetryService  # what the API sees (the ServiceView)
    backend: Service  # the real service behind it
    app: FastAPI
    settings: ApiSettings

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/api/v1/stream"

    @property
    def vehicle(self) -> Any:
        """The embedded simulated vehicle (`vehicle_sim.can_node.SimulatedVehicle`); None without `sim`."""
        return self.backend.embedded_sim

    def set_vehicle(self, **inputs: Any) -> dict[str, Any]:
        """Change the simulated vehicle's inputs (`vehicle_sim.control.apply_settings` keys)."""
        from vehicle_sim.control import apply_settings

        if self.vehicle is None:
            raise RuntimeError("no embedded simulated vehicle")
        return apply_settings(self.vehicle, inputs)

    def wait_state(self, *states: str, timeout: float = 25.0) -> str:
        """Wait until the mode machine is in one of `states`; returns it."""
        try:
            return wait_for(lambda: s if (s := self.service.mode_status().state) in states else None, timeout,
                            f"mode {states}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; mode status now {self.service.mode_status()}") from None

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def test_settings(**overrides: Any) -> ApiSettings:
    """API settings with the known engineer and operator tokens (plus `overrides`)."""
    values: dict[str, Any] = {
        "engineer_token_hashes": [hash_token(ENGINEER_TOKEN)],
        "operator_token_hashes": [hash_token(OPERATOR_TOKEN)],
        **overrides,
    }
    return ApiSettings.model_validate(values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def service_settings(sim: bool = True, **api_overrides: Any) -> ServiceSettings:
    """Service settings for tests: embedded simulated vehicle (or a silent private virtual bus), test tokens."""
    settings = load_settings(api=test_settings(**api_overrides), sim=SimSettings(embedded=sim))
    if not sim:  # a bus nobody else talks on, no serial link
        settings.bus.interface, settings.bus.channel = "virtual", f"uniross-silent-{time.monotonic_ns()}"
        settings.serial.url = None
    return settings


@contextmanager
def running_api(
    *,
    sim: bool = True,
    start: bool = True,
    ready_timeout: float = 10.0,
    send_buffer_bytes: int | None = None,
    **api_overrides: Any,
) -> Iterator[RunningApi]:
    """Serve the real service by uvicorn on 127.0.0.1:<free port>.

    `sim`: run the simulated vehicle in-process; `start=False` leaves the service's threads stopped (probes fail);
    `api_overrides` go to `ApiSettings` (e.g. `read_requires_auth=True`, `ws_queue_size=4`).
    """
    settings = service_settings(sim, **api_overrides)
    backend = Service(settings)
    view = ServiceView(backend)
    app = create_app(view, settings.api)
    try:
        if start:
            backend.start()
        with ServerThread(app, send_buffer_bytes=send_buffer_bytes) as base_url:
            if start and sim:
                wait_for(lambda: view.ready()[0], ready_timeout, "the service to become ready")
                wait_for(lambda: backend.pipeline.inputs_seen, ready_timeout, "every safety-relevant input")
            yield RunningApi(base_url, view, backend, app, settings.api)
    finally:
        backend.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def spawned_service(ready_timeout: float = 30.0) -> Iterator[str]:
    """`uniross run --sim` in its own process (no GIL shared with the caller) with the test tokens; yields its
    base URL once `/readyz` answers 200."""
    port = free_port()
    env = {
        **os.environ,
        "UNIROSS_API_ENGINEER_TOKEN_HASHES": json.dumps([hash_token(ENGINEER_TOKEN)]),
        "UNIROSS_API_OPERATOR_TOKEN_HASHES": json.dumps([hash_token(OPERATOR_TOKEN)]),
    }
    cmd = [sys.executable, "-m", "uniross.cli", "run", "--sim", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"service exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"service not ready within {ready_timeout:g} s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
