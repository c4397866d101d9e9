"""Serve the API and dashboard over the in-memory demo service (no CAN bus needed).

`python -m telemetry.api.demo --port 8000` prints an engineer token for the dashboard's mode buttons.
"""

from __future__ import annotations

import argparse
import secrets

import uvicorn

from telemetry.api.app import create_app
from telemetry.api.inmemory import InMemoryTelemetryService
from telemetry.api.settings import ApiSettings, hash_token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m telemetry.api.demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--token", default=None, help="engineer token (default: a random one, printed)")
    args = parser.parse_args(argv)
    token = args.token or secrets.token_urlsafe(16)
    service = InMemoryTelemetryService()
    service.start(demo_feed=True)
    settings = ApiSettings.model_validate({"engineer_token_hashes": [hash_token(token)]})
    print(f"dashboard http://{args.host}:{args.port}/  engineer token: {token}", flush=True)
    try:
        uvicorn.run(create_app(service, settings), host=args.host, port=args.port, log_level="warning",
                    ws="websockets-sansio", ws_ping_interval=None)
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
