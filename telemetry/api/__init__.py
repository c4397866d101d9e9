"""Telemetry API: FastAPI REST + WebSocket + Prometheus + dashboard over the `TelemetryService` port."""

from telemetry.api.app import create_app
from telemetry.api.service_port import TelemetryService
from telemetry.api.settings import ApiSettings, hash_token

__all__ = ["ApiSettings", "TelemetryService", "create_app", "hash_token"]
