"""Bearer-token authentication and roles (engineer > operator > reader) as FastAPI dependencies.

`Authorization: Bearer <token>`; the token's SHA-256 is compared with every configured hash using
`hmac.compare_digest` (no early exit). Missing/invalid -> 401 with `WWW-Authenticate: Bearer`; an
authenticated operator sending a command -> 403. CLI: `python -m telemetry.api.auth hash|new-token`.
"""

from __future__ import annotations

import argparse
import enum
import hmac
import secrets
import sys
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from telemetry.api.settings import ApiSettings, hash_token


class Role(enum.IntEnum):
    ANONYMOUS = 0
    OPERATOR = 1
    ENGINEER = 2


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    fingerprint: str  # first 8 hex of the token hash, for the audit trail

    @property
    def user(self) -> str:
        return f"{self.role.name.lower()}:{self.fingerprint}" if self.fingerprint else self.role.name.lower()


class AuthError(HTTPException):
    """401/403 with a JSON error body; 401 carries the WWW-Authenticate challenge."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        headers = {"WWW-Authenticate": f'Bearer realm="uniross", error="{code}"'} if status_code == 401 else None
        super().__init__(status_code=status_code, detail={"code": code, "message": message}, headers=headers)


def _matches(digest: str, hashes: list[str]) -> bool:
    found = False
    for candidate in hashes:  # no early exit: time does not depend on which entry matched
        found |= hmac.compare_digest(digest, candidate)
    return found


def resolve_token(token: str | None, settings: ApiSettings) -> Principal | None:
    """Role of a presented token; None when a token was given but matches nothing."""
    if not token:
        return Principal(Role.ANONYMOUS, "")
    digest = hash_token(token)
    if _matches(digest, settings.engineer_token_hashes):
        return Principal(Role.ENGINEER, digest[:8])
    if _matches(digest, settings.operator_token_hashes):
        return Principal(Role.OPERATOR, digest[:8])
    return None


def bearer_token(authorization: str | None) -> str | None:
    """Token from an `Authorization` header value; raises 401 on a malformed header."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "invalid_request", "Authorization header must be 'Bearer <token>'")
    return token.strip()


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def principal(request: Request, settings: Annotated[ApiSettings, Depends(get_settings)]) -> Principal:
    """The caller's principal; 401 for an invalid token (an absent token is anonymous)."""
    who = resolve_token(bearer_token(request.headers.get("authorization")), settings)
    if who is None:
        raise AuthError(401, "invalid_token", "bearer token not recognised")
    return who


def require_reader(
    who: Annotated[Principal, Depends(principal)], settings: Annotated[ApiSettings, Depends(get_settings)]
) -> Principal:
    if settings.read_requires_auth and who.role < Role.OPERATOR:
        raise AuthError(401, "missing_token", "this endpoint needs a bearer token")
    return who


def require_engineer(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if who.role == Role.ANONYMOUS:
        raise AuthError(401, "missing_token", "commands need an engineer bearer token")
    if who.role < Role.ENGINEER:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail={"code": "forbidden", "message": "only an engineer may send commands"}
        )
    return who


Reader = Annotated[Principal, Depends(require_reader)]
Engineer = Annotated[Principal, Depends(require_engineer)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m telemetry.api.auth", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_hash = sub.add_parser("hash", help="print the SHA-256 of a token read from stdin (or --token)")
    p_hash.add_argument("--token", help="token (prefer stdin so it stays out of shell history)")
    sub.add_parser("new-token", help="print a new random token and its hash")
    args = parser.parse_args(argv)
    if args.cmd == "new-token":
        token = secrets.token_urlsafe(32)
        print(f"token: {token}\nhash:  {hash_token(token)}")
        return 0
    token = args.token if args.token is not None else sys.stdin.readline().strip()
    if not token:
        parser.error("empty token")
    print(hash_token(token))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
