"""Signals: snapshot of every key and the decimated history of one key."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query

from telemetry.api.auth import Reader
from telemetry.api.deps import READ_ERRORS, Service, errors
from telemetry.api.models import History, Signal, Snapshot

router = APIRouter(tags=["signals"])

DEFAULT_WINDOW_S = 60.0


@router.get("/snapshot", response_model=Snapshot, responses=READ_ERRORS, summary="Latest value of every signal")
def get_snapshot(service: Service, _: Reader) -> Snapshot:
    now = service.now()
    signals = [Signal.model_validate(view) for view in service.snapshot()]
    return Snapshot(now=now, signals=signals)


@router.get(
    "/signals/{key}/history",
    response_model=History,
    responses=errors(401, 404, 422),
    summary="Decimated history of one signal",
)
def get_history(
    key: str,
    service: Service,
    _: Reader,
    t0: Annotated[float | None, Query(description="Start (service clock s); default t1 - 60 s", allow_inf_nan=False)]
    = None,
    t1: Annotated[float | None, Query(description="End (service clock s); default now", allow_inf_nan=False)] = None,
    max_points: Annotated[int, Query(ge=2, le=20000, description="Decimate to at most this many points")] = 1000,
) -> History:
    end = service.now() if t1 is None else t1
    start = end - DEFAULT_WINDOW_S if t0 is None else t0
    if start > end:
        raise HTTPException(422, detail={"code": "validation_error", "message": "t0 must not be after t1"})
    try:
        view = service.history(key, start, end, max_points)
    except KeyError:
        raise HTTPException(404, detail={"code": "unknown_signal", "message": f"no signal {key!r}"}) from None
    t = np.asarray(view.t, dtype=np.float64)
    v = np.asarray(view.v, dtype=np.float64)
    v_list: list[float | None] = [x if np.isfinite(x) else None for x in v.tolist()]
    return History(key=view.key, unit=view.unit, t0=start, t1=end, t=t.tolist(), v=v_list)
