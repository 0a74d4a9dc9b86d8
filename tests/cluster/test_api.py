"""HTTP surface: campaigns (JSON and CSV upload, on SQLite and PostgreSQL) and call control
sent to one node's API for a call owned by another, over a real redis-server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.cluster.fakes import ScriptedDialer
from tests.cluster.helpers import hold_manager, local_call
from tests.servers import PostgresServer, RedisServer
from voxgate.api.app import create_app
from voxgate.cluster.config import ClusterSettings
from voxgate.cluster.wiring import start_cluster
from voxgate.config import Settings, load_settings
from voxgate.observability.records import CallRecords

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings() -> Settings:
    s = load_settings()
    s.auth.api_tokens = [SecretStr(TOKEN)]
    return s


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return await server.new_database()


async def wait_done(client: httpx.AsyncClient, cid: str) -> dict[str, Any]:
    for _ in range(500):  # bounded
        r = await client.get(f"/v1/campaigns/{cid}", headers=AUTH)
        assert r.status_code == 200
        if r.json()["status"] == "completed":
            return dict(r.json())
        await asyncio.sleep(0.02)
    raise AssertionError(r.json()["progress"])


async def test_campaign_api_single_node(db_url: str) -> None:
    records = await CallRecords.open(db_url, node_id="solo")
    app = create_app(settings(), hold_manager())
    dialer = ScriptedDialer({"+15550002": ["busy", "completed"], "+15550003": ["voicemail"]})
    services = await start_cluster(app, ClusterSettings(node_id="solo"), app.state.manager,
                                   records, dialer)  # fmt: skip
    services.worker.poll_s = 0.01  # type: ignore[union-attr]
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
            assert (await client.post("/v1/campaigns", json={})).status_code == 401
            bad = {"app": "ws://elsewhere.example/x", "contacts": [{"phone": "+15550001"}]}
            r = await client.post("/v1/campaigns", json=bad, headers=AUTH)
            assert r.status_code == 422 and "not a configured route" in r.text
            body = {"name": "json", "contacts": [{"phone": "+15550001", "name": "Ann"},
                                                 {"phone": "+15550002"}, {"phone": "+15550003"},
                                                 {"phone": "+15550004"}],
                    "window": "00:00-24:00", "cps": 100, "retry_backoff_s": 0.05,
                    "dnc": ["+1 555 0004"]}  # fmt: skip
            r = await client.post("/v1/campaigns", json=body, headers=AUTH)
            assert r.status_code == 201, r.text
            assert r.json()["contacts"] == 4 and r.json()["queued"] == 3
            detail = await wait_done(client, r.json()["id"])
            outcomes = {c["phone"]: (c["outcome"], c["attempts"]) for c in detail["contacts"]}
            assert outcomes == {"+15550001": ("completed", 1), "+15550002": ("completed", 2),
                                "+15550003": ("voicemail", 1), "+15550004": ("dnc", 0)}  # fmt: skip
            assert detail["progress"]["attempts"] == 4 and detail["progress"]["done"] == 4

            csv = "phone,name,timezone,plan\n+15550010,Bo,Europe/Paris,gold\n+15550011,Cy,,\n"
            r = await client.post("/v1/campaigns", headers=AUTH, files={"contacts": ("c.csv", csv)},
                                  data={"spec": json.dumps({"window": "00:00-24:00", "cps": 100})})  # fmt: skip
            assert r.status_code == 201, r.text
            detail = await wait_done(client, r.json()["id"])
            bo = detail["contacts"][0]
            assert (bo["timezone"], bo["variables"], bo["outcome"]) == ("Europe/Paris", {"plan": "gold"}, "completed")
            listing = (await client.get("/v1/campaigns", headers=AUTH)).json()
            assert len(listing) == 2 and all(c["status"] == "completed" for c in listing)

            bad = await client.post("/v1/campaigns", headers=AUTH, json={"contacts": [{"phone": "x y"}]})
            assert bad.status_code == 422
            bad_csv = await client.post("/v1/campaigns", headers=AUTH, files={"contacts": ("c.csv", "name\nA\n")})
            assert bad_csv.status_code == 422 and "phone column" in bad_csv.text
            assert (await client.get("/v1/campaigns/nope", headers=AUTH)).status_code == 404
            assert (await client.post(f"/v1/campaigns/{r.json()['id']}/cancel", headers=AUTH)).status_code == 409
    finally:
        await services.close()
        await records.close()


async def test_campaigns_without_records_are_503() -> None:
    app = create_app(settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        assert (await client.get("/v1/campaigns", headers=AUTH)).status_code == 503
        assert (await client.get("/v1/cluster/nodes", headers=AUTH)).json() == []


@pytest.mark.interop
async def test_control_through_another_nodes_api(redis_server: RedisServer, tmp_path: Path, prefix: str) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    apps, services, records = [], [], []
    try:
        for name in ("a", "b"):
            rec = await CallRecords.open(db, node_id=name)
            app = create_app(settings(), hold_manager())
            cfg = ClusterSettings(redis_url=redis_server.url, node_id=name, key_prefix=prefix,
                                  heartbeat_s=0.2, heartbeat_timeout_s=1.0)  # fmt: skip
            services.append(await start_cluster(app, cfg, app.state.manager, rec))
            apps.append(app)
            records.append(rec)
        session, control = local_call()
        await apps[0].state.manager.start(session)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(apps[1]), base_url="http://b") as b:
            assert (await b.post(f"/v1/calls/{session.call_id}/hold")).status_code == 401
            r = await b.post(f"/v1/calls/{session.call_id}/dtmf", json={"digits": "42"}, headers=AUTH)
            assert r.status_code == 200 and r.json()["node"] == "a"
            bad = await b.post(f"/v1/calls/{session.call_id}/dtmf", json={"digits": "x"}, headers=AUTH)
            assert bad.status_code == 422
            r = await b.post(f"/v1/calls/{session.call_id}/transfer", json={"target": "sip:desk@127.0.0.1"},
                             headers=AUTH)  # fmt: skip
            assert r.status_code == 202 and r.json()["node"] == "a"
            assert await asyncio.wait_for(session.wait_ended(), 5) == "transferred"
            assert control.actions == [("dtmf", "42"), ("transfer", "sip:desk@127.0.0.1")]
            nodes = (await b.get("/v1/cluster/nodes", headers=AUTH)).json()
            assert {n["node_id"] for n in nodes} == {"a", "b"}
            gone = await b.post("/v1/calls/call_unknown/hangup", headers=AUTH)
            assert gone.status_code == 404
    finally:
        for s in services:
            await s.close()
        for r in records:
            await r.close()
