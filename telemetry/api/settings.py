"""API settings (pydantic-settings, env prefix `UNIROSS_API_`) and the token hash scheme.

Tokens are random bearer secrets (make one with `python -m telemetry.api.auth new-token`); the settings hold
only their SHA-256 hex digests, so the configuration never reveals a usable token. An unsalted hash is
sound here because tokens carry >= 128 bits of entropy (no dictionary to attack); they are not passwords.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a bearer token: the form stored in `ApiSettings`."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


HashList = Annotated[list[str], NoDecode]

DEFAULT_METRIC_SIGNALS = (
    "SSC_Suction.SuctionFanSpeed",
    "SSC_Suction.SuctionPressure",
    "serial.fan_speed",
    "serial.suction_pressure",
    "CCVS1.WheelBasedVehicleSpeed",
)


class ApiSettings(BaseSettings):
    """Settings of the telemetry API. Hash lists accept JSON (`["ab12..", ..]`) or comma-separated hex."""

    model_config = SettingsConfigDict(env_prefix="UNIROSS_API_", extra="ignore")

    engineer_token_hashes: HashList = Field(default_factory=list)
    operator_token_hashes: HashList = Field(default_factory=list)
    read_requires_auth: bool = False
    ws_queue_size: int = Field(default=8, ge=1, le=1024, description="Messages buffered per WebSocket client")
    ws_default_rate_hz: float = Field(default=10.0, ge=1.0, le=50.0)
    audit_limit_max: int = Field(default=1000, ge=1)
    metric_signals: tuple[str, ...] = DEFAULT_METRIC_SIGNALS

    @field_validator("engineer_token_hashes", "operator_token_hashes", mode="before")
    @classmethod
    def _parse_hashes(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                value = json.loads(text)
            else:
                value = [part for part in text.split(",") if part.strip()]
        if isinstance(value, (list, tuple)):
            out = []
            for item in value:
                digest = str(item).strip().lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise ValueError("token hashes must be SHA-256 hex digests (64 hex characters)")
                out.append(digest)
            return out
        return value
