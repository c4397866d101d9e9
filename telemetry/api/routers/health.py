"""Health: detailed bus/link/loop health, liveness (`/healthz`) and readiness (`/readyz`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from telemetry.api.auth import Reader
from telemetry.api.deps import READ_ERRORS, Service
from telemetry.api.models import Health, Liveness, Readiness

router = APIRouter(tags=["health"])
probes = APIRouter(tags=["probes"])


@router.get("/health", response_model=Health, responses=READ_ERRORS, summary="Bus, serial link and loop health")
def get_health(service: Service, _: Reader) -> Health:
    return Health.model_validate(service.health())


@probes.get(
    "/healthz",
    response_model=Liveness,
    responses={503: {"model": Liveness, "description": "Control loop thread dead"}},
    summary="Liveness: process and control loop thread",
)
def healthz(service: Service) -> Liveness | JSONResponse:
    body = Liveness(now=service.now(), alive=True, loop_thread_alive=service.alive())
    if not body.loop_thread_alive:
        return JSONResponse(status_code=503, content=body.model_dump())
    return body


@probes.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready; `reasons` says why"}},
    summary="Readiness: bus alive and loop within budget",
)
def readyz(service: Service) -> Readiness | JSONResponse:
    ok, reasons = service.ready()
    body = Readiness(ready=ok, reasons=list(reasons))
    if not ok:
        return JSONResponse(status_code=503, content=body.model_dump())
    return body
