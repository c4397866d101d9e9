"""Pydantic models at the API edge: responses, request bodies and error bodies (with OpenAPI examples).

The service returns the frozen dataclasses of `service_port`; these models validate them
(`from_attributes=True`) and make them JSON-safe (NaN / inf become `null`).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

API_VERSION = "1.0.0"


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        return _finite_or_none(value.item())
    return value


JsonScalar = Annotated[float | int | bool | str | None, BeforeValidator(_finite_or_none)]
JsonFloat = Annotated[float | None, BeforeValidator(_finite_or_none)]


class _View(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Signal(_View):
    key: str = Field(examples=["SSC_Suction.SuctionPressure"])
    value: JsonScalar = Field(description="Latest value; null when not available (J1939 NA/error, NaN)")
    unit: str = Field(examples=["Pa"])
    valid: bool
    timestamp: float = Field(description="Service clock (s)")
    age_s: float


class Snapshot(BaseModel):
    now: float = Field(description="Service clock (s) when the snapshot was taken")
    signals: list[Signal]


class History(BaseModel):
    key: str
    unit: str
    t0: float
    t1: float
    t: list[float]
    v: list[JsonFloat]


class Fault(_View):
    name: str = Field(examples=["suction_hose_clog"])
    severity: str = Field(examples=["warning"])
    active: bool
    acknowledged: bool
    raised_at: JsonFloat
    cleared_at: float | None = None
    text: str = ""


class Dtc(_View):
    source_address: int = Field(ge=0, le=255, examples=[0])
    spn: int = Field(examples=[110])
    fmi: int = Field(examples=[16])
    occurrence_count: int
    lamps: dict[str, int] = Field(examples=[{"protect": 0, "amber_warning": 1, "red_stop": 0, "malfunction": 0}])


class Faults(_View):
    active: list[Fault]
    recent: list[Fault]
    dtcs: list[Dtc]


class FaultAck(BaseModel):
    name: str
    acknowledged: bool


class Reason(_View):
    name: str = Field(examples=["vehicle_speed"])
    text: str = Field(examples=["vehicle speed 12.0 km/h > 5.0 km/h"])


class Interlock(_View):
    name: str
    ok: bool
    text: str


class ModeTarget(StrEnum):
    TRANSPORT = "TRANSPORT"
    SWEEPER = "SWEEPER"
    SNOW = "SNOW"


class ModeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"target": "SWEEPER", "acknowledge": False}]}
    )

    target: ModeTarget
    acknowledge: bool = Field(False, description="Also acknowledge SAFE (engineer acknowledgement)")


class ModeDecision(_View):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "accepted": False,
                    "state": "TRANSPORT",
                    "reasons": [{"name": "parking_brake", "text": "parking brake not set"}],
                }
            ]
        },
    )

    accepted: bool
    state: str
    reasons: list[Reason]


class ModeStatus(_View):
    state: str = Field(examples=["TRANSPORT"])
    since: float
    cab_selector: str = Field(examples=["REMOTE"])
    interlocks: list[Interlock]
    transition_step: str | None = None
    target: str | None = None
    last_refusal: ModeDecision | None = None


class AuditEvent(_View):
    timestamp: float
    kind: str = Field(examples=["refused"])
    source: str = Field(examples=["remote"])
    text: str
    state: str = Field(examples=["TRANSPORT"],
                       description="The machine's state after the event; a refused request leaves it unchanged")
    user: str | None = None
    reasons: list[Reason] = []
    target: str | None = Field(None, examples=["SNOW"],
                               description="Requested mode of request / accepted / refused events, else null")


class AuditEvents(BaseModel):
    events: list[AuditEvent]


class MessageHealth(_View):
    name: str
    valid: bool
    timed_out: bool
    counter_ok: bool
    checksum_ok: bool
    last_rx_age_s: JsonFloat
    counter_errors: int
    checksum_errors: int
    timeouts: int


class BusHealth(_View):
    alive: bool
    frames_total: int
    frames_per_s: JsonFloat
    bus_load_pct: JsonFloat
    errors: dict[str, int]
    decoder_rejects: dict[str, int]
    messages: list[MessageHealth]


class SerialLinkHealth(_View):
    connected: bool
    counters: dict[str, int]


class LoopTiming(_View):
    cycles: int
    cycle_p50_s: JsonFloat
    cycle_p99_s: JsonFloat
    cycle_max_s: JsonFloat
    budget_s: float
    deadline_misses: int
    thread_alive: bool


class Health(_View):
    bus: BusHealth
    serial: SerialLinkHealth
    loop: LoopTiming


class Liveness(BaseModel):
    now: float = Field(description="Service clock (s): lets a client align its clock cheaply")
    alive: bool
    loop_thread_alive: bool


class Readiness(BaseModel):
    ready: bool
    reasons: list[str]


class ErrorBody(BaseModel):
    """Every non-2xx answer except a refused mode request (409 carries a `ModeDecision`)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"code": "unauthorized", "message": "missing bearer token", "errors": []}]}
    )

    code: str
    message: str
    errors: list[dict[str, Any]] = []
