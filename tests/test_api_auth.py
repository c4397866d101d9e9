"""Roles and bearer tokens against the real service: 401 (with WWW-Authenticate) / 403 paths, engineer OK and named
in the mode machine's audit trail, settings and hash CLI."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from telemetry.api.auth import main as auth_cli
from telemetry.api.settings import ApiSettings, hash_token
from telemetry.api.testing import ENGINEER_TOKEN, OPERATOR_TOKEN, RunningApi, running_api

MODE_BODY = {"target": "TRANSPORT", "acknowledge": True}


@pytest.fixture(scope="module")
def api() -> Iterator[RunningApi]:
    with running_api() as running:
        yield running


@pytest.fixture(scope="module")
def locked_api() -> Iterator[RunningApi]:
    with running_api(read_requires_auth=True) as running:
        yield running


def test_hash_token_is_sha256_hex() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Bearer not-a-known-token"}, "invalid_token"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "invalid_request"),
        ({"Authorization": "Token abc"}, "invalid_request"),
    ],
)
def test_commands_without_valid_token_are_401(api: RunningApi, headers: dict[str, str], code: str) -> None:
    r = httpx.post(f"{api.base_url}/api/v1/mode", json=MODE_BODY, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer ")
    assert r.json()["code"] == code and r.json()["message"]
    r = httpx.post(f"{api.base_url}/api/v1/faults/anything/ack", headers=headers)
    assert r.status_code == 401


def test_operator_may_read_but_not_command(api: RunningApi) -> None:
    auth = RunningApi.bearer(OPERATOR_TOKEN)
    assert httpx.get(f"{api.base_url}/api/v1/mode", headers=auth).status_code == 200
    r = httpx.post(f"{api.base_url}/api/v1/mode", json=MODE_BODY, headers=auth)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert httpx.post(f"{api.base_url}/api/v1/faults/x/ack", headers=auth).status_code == 403


def test_engineer_commands_and_is_named_in_the_audit_trail(api: RunningApi) -> None:
    # SNOW is refused on the sweeper-equipped demo truck: the refusal is audited without changing the mode
    body = {"target": "SNOW", "acknowledge": False}
    r = httpx.post(f"{api.base_url}/api/v1/mode", json=body, headers=RunningApi.bearer(ENGINEER_TOKEN))
    assert r.status_code == 409 and r.json()["accepted"] is False
    events = httpx.get(f"{api.base_url}/api/v1/mode/events?limit=2").json()["events"]
    assert [e["kind"] for e in events] == ["refused", "request"]
    fingerprint = hash_token(ENGINEER_TOKEN)[:8]
    assert all(e["source"] == "remote" and e["user"] == f"engineer:{fingerprint}" for e in events), events


def test_reads_anonymous_by_default(api: RunningApi) -> None:
    assert httpx.get(f"{api.base_url}/api/v1/snapshot").status_code == 200


def test_read_requires_auth_locks_reads_and_stream(locked_api: RunningApi) -> None:
    url = locked_api.base_url
    r = httpx.get(f"{url}/api/v1/snapshot")
    assert r.status_code == 401 and "www-authenticate" in r.headers
    assert httpx.get(f"{url}/api/v1/snapshot", headers=RunningApi.bearer(OPERATOR_TOKEN)).status_code == 200
    assert httpx.get(f"{url}/healthz").status_code == 200  # probes stay open for the orchestrator
    with pytest.raises(InvalidStatus):
        connect(locked_api.ws_url).close()
    with connect(f"{locked_api.ws_url}?token={OPERATOR_TOKEN}") as ws:
        ws.send(json.dumps({"subscribe": ["serial.fan_speed"]}))
        assert json.loads(ws.recv(timeout=3))["type"] == "subscribed"
    with connect(locked_api.ws_url, additional_headers=RunningApi.bearer(ENGINEER_TOKEN)) as ws:
        ws.send(json.dumps({"subscribe": ["serial.fan_speed"]}))
        assert json.loads(ws.recv(timeout=3))["type"] == "subscribed"


def test_settings_from_env_accept_json_and_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = hash_token("a"), hash_token("b")
    monkeypatch.setenv("UNIROSS_API_ENGINEER_TOKEN_HASHES", f"{a},{b.upper()}")
    monkeypatch.setenv("UNIROSS_API_OPERATOR_TOKEN_HASHES", json.dumps([b]))
    monkeypatch.setenv("UNIROSS_API_READ_REQUIRES_AUTH", "true")
    settings = ApiSettings()
    assert settings.engineer_token_hashes == [a, b] and settings.operator_token_hashes == [b]
    assert settings.read_requires_auth is True
    monkeypatch.setenv("UNIROSS_API_ENGINEER_TOKEN_HASHES", "not-a-hash")
    with pytest.raises(ValidationError, match="SHA-256"):
        ApiSettings()


def test_hash_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert auth_cli(["hash", "--token", "s3cret"]) == 0
    assert capsys.readouterr().out.strip() == hash_token("s3cret")
    assert auth_cli(["new-token"]) == 0
    token_line, hash_line = capsys.readouterr().out.splitlines()
    assert hash_token(token_line.split()[-1]) == hash_line.split()[-1]
