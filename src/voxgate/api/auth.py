"""Bearer-token checks for the REST API and WebSocket endpoints.

Tokens are compared in constant time and never logged. WebSocket clients that cannot set
headers (browsers) may pass ``?token=`` instead; the value is still never echoed back.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from fastapi import HTTPException, Request, WebSocket, status
from pydantic import SecretStr

from voxgate.observability.metrics import HTTP_AUTH_FAILURES


def token_ok(candidate: str | None, tokens: Sequence[SecretStr]) -> bool:
    if not candidate:
        return False
    given = candidate.encode()
    ok = False
    for token in tokens:
        # Check every token so timing does not reveal which one (or how many) matched.
        ok |= hmac.compare_digest(given, token.get_secret_value().encode())
    return ok


def _from_headers(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def request_token(request: Request | WebSocket) -> str | None:
    token = _from_headers(request.headers.get("authorization"))
    if token is None:
        token = request.query_params.get("token")
    if token is None:
        token = request.cookies.get("voxgate_token")
    return token


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries a configured token."""
    tokens: Sequence[SecretStr] = request.app.state.settings.auth.api_tokens
    if not token_ok(request_token(request), tokens):
        HTTP_AUTH_FAILURES.labels(surface="http").inc()
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid token",
            headers={"WWW-Authenticate": "Bearer"},
        )


def websocket_token_ok(websocket: WebSocket) -> bool:
    tokens: Sequence[SecretStr] = websocket.app.state.settings.auth.api_tokens
    if token_ok(request_token(websocket), tokens):
        return True
    HTTP_AUTH_FAILURES.labels(surface="websocket").inc()
    return False
