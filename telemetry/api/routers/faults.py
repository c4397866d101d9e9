"""Faults: active/recent faults with decoded DM1 DTCs, and acknowledgement (engineer)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path

from telemetry.api.auth import Engineer, Reader
from telemetry.api.deps import READ_ERRORS, Service, errors
from telemetry.api.models import FaultAck, Faults

router = APIRouter(tags=["faults"])


@router.get("/faults", response_model=Faults, responses=READ_ERRORS, summary="Active and recent faults, DM1 DTCs")
def get_faults(service: Service, _: Reader) -> Faults:
    return Faults.model_validate(service.faults())


@router.post(
    "/faults/{name}/ack",
    response_model=FaultAck,
    responses=errors(401, 403, 404, 422),
    summary="Acknowledge a fault (engineer)",
)
def ack_fault(service: Service, who: Engineer, name: str = Path(min_length=1, max_length=128)) -> FaultAck:
    if not service.acknowledge_fault(name, who.user):
        raise HTTPException(404, detail={"code": "unknown_fault", "message": f"no fault {name!r}"})
    return FaultAck(name=name, acknowledged=True)
