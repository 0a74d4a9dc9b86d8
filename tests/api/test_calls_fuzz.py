"""Schemathesis fuzzes the calls API from its own OpenAPI schema (bounded examples).

Checks that no generated request (valid or not) makes a 5xx, and that every response
matches the documented status codes and schemas. Skipped when schemathesis is not installed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.api.test_calls import AUTH, make_settings, seed
from voxgate.api.app import create_app
from voxgate.observability.records import CallRecords

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis to fuzz the API")


async def _seed(url: str, rec_dir: Path) -> None:
    records = await CallRecords.open(url)
    try:
        await seed(records, rec_dir)
    finally:
        await records.close()


def test_calls_api_conforms_to_its_schema(tmp_path: Path) -> None:
    """Every operation: generated requests (valid and invalid) never 5xx, responses match."""
    url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    asyncio.run(_seed(url, tmp_path / "rec"))
    app = create_app(make_settings(tmp_path / "rec"))
    # No pooling: the ASGI test client runs the app on loops of its own, and a pooled
    # aiosqlite connection must not outlive the loop that opened it.
    app.state.records = CallRecords(create_async_engine(url, poolclass=NullPool))
    # POST /v1/calls (dial out) is exercised against real SIP peers in tests/sip; here, with
    # no SIP edge running, it can only answer its documented 503.
    schema = (
        schemathesis.openapi.from_asgi("/openapi.json", app)
        .include(path_regex="^/v1/(calls|stats)")
        .exclude(method="POST", path="/v1/calls")
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5  # list, detail, recordings, stats; plus call control
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        def check(case: Any) -> None:
            case.call_and_validate(headers=AUTH)

        check()
