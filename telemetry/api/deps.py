"""Shared FastAPI dependencies and OpenAPI error declarations of the routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from telemetry.api.models import ErrorBody
from telemetry.api.service_port import TelemetryService


def get_service(request: Request) -> TelemetryService:
    service: TelemetryService = request.app.state.service
    return service


Service = Annotated[TelemetryService, Depends(get_service)]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries with the shared error body for the given status codes."""
    text = {
        401: "Missing or invalid bearer token",
        403: "Authenticated, but the role may not do this",
        404: "Unknown resource",
        422: "Invalid request (path, query or body)",
        503: "Not ready",
    }
    return {code: {"model": ErrorBody, "description": text.get(code, "Error")} for code in codes}


READ_ERRORS = errors(401)
