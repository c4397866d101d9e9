"""`create_app(service, settings)`: REST under /api/v1, WebSocket stream, /metrics, probes and the dashboard."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from telemetry.api.auth import AuthError, Role, bearer_token, resolve_token
from telemetry.api.metrics import build_registry
from telemetry.api.models import API_VERSION
from telemetry.api.routers import faults, health, mode, signals
from telemetry.api.service_port import TelemetryService
from telemetry.api.settings import ApiSettings
from telemetry.api.stream import StreamHub

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PREFIX = "/api/v1"


def _error(status: int, code: str, message: str, errs: list[dict[str, Any]] | None = None, **kw: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"code": code, "message": message, "errors": errs or []}, **kw)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if isinstance(detail, dict) and "code" in detail:
        return _error(exc.status_code, str(detail["code"]), str(detail.get("message", "")), headers=exc.headers)
    return _error(exc.status_code, f"http_{exc.status_code}", str(detail), headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errs = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    message = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errs) or "invalid request"
    return _error(422, "validation_error", message, errs)


def create_app(service: TelemetryService, settings: ApiSettings | None = None) -> FastAPI:
    """Build the API for one service. Each app owns its own stream hub and Prometheus registry."""
    settings = settings or ApiSettings.model_validate({})
    hub_holder: dict[str, StreamHub] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = StreamHub(service, settings.ws_queue_size, settings.ws_default_rate_hz)
        hub_holder["hub"] = hub
        app.state.hub = hub
        hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(
        title=f"UniROSS telemetry API v{API_VERSION}",
        version=API_VERSION,
        description=(
            "Onboard telemetry and control API of the UniROSS sweeper / snow-clearing truck. Reads may be anonymous "
            "(unless `read_requires_auth`); commands need an engineer bearer token. WebSocket stream: "
            f"`{PREFIX}/stream` (see docs/api.md)."
        ),
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = settings
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for module in (signals, faults, mode, health):
        app.include_router(module.router, prefix=PREFIX)
    app.include_router(health.probes)

    registry_holder: dict[str, Any] = {}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        registry = registry_holder.get("registry")
        if registry is None:
            hub = hub_holder.get("hub") or StreamHub(service, settings.ws_queue_size, settings.ws_default_rate_hz)
            registry = registry_holder["registry"] = build_registry(service, hub, settings.metric_signals)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.websocket(f"{PREFIX}/stream")
    async def stream(websocket: WebSocket) -> None:
        # browsers cannot set headers on a WebSocket: accept `?token=` too
        try:
            token = bearer_token(websocket.headers.get("authorization")) or websocket.query_params.get("token")
        except AuthError:
            token = None
            who = None
        else:
            who = resolve_token(token, settings)
        if who is None or (settings.read_requires_auth and who.role < Role.OPERATOR):
            await websocket.close(code=1008, reason="missing or invalid token")
            return
        await websocket.accept()
        await hub_holder["hub"].serve(websocket)

    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True, check_dir=False), name="dashboard")
    return app
