"""HTTP surface: health is open, everything else needs a token."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import SecretStr

from voxgate.api.app import create_app
from voxgate.config import load_settings


def client() -> TestClient:
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr("s3cret-token")]
    return TestClient(create_app(settings))


def test_health_is_open() -> None:
    assert client().get("/healthz").json() == {"status": "ok"}


def test_info_requires_token() -> None:
    c = client()
    assert c.get("/v1/info").status_code == 401
    assert c.get("/v1/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = c.get("/v1/info", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and "version" in ok.json()


def test_metrics_require_token_and_export() -> None:
    c = client()
    assert c.get("/metrics").status_code == 401
    body = c.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).text
    assert "voxgate_parser_rejections_total" in body
    assert "voxgate_auth_failures_total" in body


def test_token_never_echoed() -> None:
    c = client()
    r = c.get("/v1/info", params={"token": "guess-123"})
    assert r.status_code == 401 and "guess-123" not in r.text
