"""`uniross mode` against the real service over real HTTP: accepted, refused with the interlocks, and 401/403."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from telemetry.api.app import create_app
from telemetry.api.server import ServerThread
from telemetry.api.settings import hash_token
from uniross.config import load_settings
from uniross.service import Service
from uniross.service_view import ServiceView

ENGINEER, OPERATOR = "engineer-token-for-tests", "operator-token-for-tests"
UNIROSS = str(Path(sys.executable).with_name("uniross"))


@pytest.fixture(scope="module")
def api_url() -> Iterator[tuple[str, Service]]:
    settings = load_settings()
    settings.sim.embedded = True
    settings.api.engineer_token_hashes = [hash_token(ENGINEER)]
    settings.api.operator_token_hashes = [hash_token(OPERATOR)]
    with Service(settings) as svc, ServerThread(create_app(ServiceView(svc), settings.api)) as url:
        deadline = time.time() + 5
        while not svc.pipeline.inputs_seen and time.time() < deadline:
            time.sleep(0.05)
        yield url, svc


def mode(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([UNIROSS, "mode", *args, "--url", url], capture_output=True, text=True, timeout=60)


def test_refused_request_lists_the_failed_interlocks(api_url: tuple[str, Service]) -> None:
    url, _ = api_url
    result = mode(url, "SNOW", "--token", ENGINEER)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "refused" in result.stdout and "snow_attachment_mounted" in result.stdout


def test_operator_may_not_command_and_no_token_is_401(api_url: tuple[str, Service]) -> None:
    url, _ = api_url
    forbidden = mode(url, "SWEEPER", "--token", OPERATOR)
    assert forbidden.returncode == 2 and "403" in forbidden.stdout + forbidden.stderr
    missing = mode(url, "SWEEPER", "--token", "wrong")
    assert missing.returncode == 2 and "401" in missing.stdout + missing.stderr


def test_accepted_request_starts_the_transition(api_url: tuple[str, Service]) -> None:
    url, svc = api_url
    result = mode(url, "SWEEPER", "--token", ENGINEER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepted" in result.stdout
    assert svc.pipeline.machine.state.name in ("TO_SWEEPER", "SWEEPER")
