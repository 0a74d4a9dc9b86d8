"""Times at the edge of the calendar: a bad query parameter (422, counted), never a 500.

Found by the schemathesis fuzz (``0001-01-01T00:00:00+08:01`` has no UTC equivalent)."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from voxgate.api.app import create_app
from voxgate.config import load_settings
from voxgate.observability.metrics import PARSER_REJECTIONS

TOKEN = "t0ken-for-dates"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_time_with_no_utc_equivalent_is_a_422() -> None:
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    app = create_app(settings)
    counter = PARSER_REJECTIONS.labels(protocol="http")
    before = counter._value.get()
    early = "0001-01-01T00:00:00+08:01"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        for name in ("since", "until"):
            r = await c.get("/v1/stats/overview", params={name: early}, headers=AUTH)
            assert r.status_code == 422, r.text
            assert r.json()["details"][0]["loc"] == ["query", name]
        ok = await c.get(
            "/v1/stats/overview", params={"until": "2026-01-01T00:00:00+08:00"}, headers=AUTH
        )
        assert ok.status_code == 200
    assert counter._value.get() == before + 2
