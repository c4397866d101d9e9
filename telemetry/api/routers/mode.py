"""Mode: status with interlocks, audit trail, and engineer mode requests (409 with reasons when refused)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from telemetry.api.auth import Engineer, Reader
from telemetry.api.deps import READ_ERRORS, Service, errors
from telemetry.api.models import AuditEvent, AuditEvents, ModeDecision, ModeRequest, ModeStatus

router = APIRouter(tags=["mode"])

REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": ModeDecision, "description": "Request refused; `reasons` lists the failed interlocks"}
}


@router.get("/mode", response_model=ModeStatus, responses=READ_ERRORS, summary="Mode state and interlocks")
def get_mode(service: Service, _: Reader) -> ModeStatus:
    return ModeStatus.model_validate(service.mode_status())


@router.get("/mode/events", response_model=AuditEvents, responses=errors(401, 422), summary="Mode audit trail")
def get_mode_events(
    service: Service, _: Reader, request: Request, limit: Annotated[int, Query(ge=1, le=100_000)] = 100
) -> AuditEvents:
    limit = min(limit, request.app.state.settings.audit_limit_max)
    return AuditEvents(events=[AuditEvent.model_validate(e) for e in service.audit_events(limit)])


@router.post(
    "/mode",
    response_model=ModeDecision,
    responses={**errors(401, 403, 422), **REFUSED},
    summary="Request a mode change (engineer)",
)
def post_mode(body: ModeRequest, service: Service, who: Engineer) -> ModeDecision | JSONResponse:
    decision = ModeDecision.model_validate(service.request_mode(body.target.value, body.acknowledge, who.user))
    if not decision.accepted:
        return JSONResponse(status_code=409, content=decision.model_dump(mode="json"))
    return decision
