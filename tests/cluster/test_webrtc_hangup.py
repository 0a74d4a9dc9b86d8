"""The talk page's ``POST /webrtc/hangup`` reaches a WebRTC call owned by another node (with
``server.workers > 1``: another worker of the node), over a real redis-server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from tests.cluster.helpers import RecordingControl, hold_manager
from tests.servers import RedisServer
from voxgate.api.app import create_app
from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.session import CallSession
from voxgate.cluster.config import ClusterSettings
from voxgate.cluster.wiring import ClusterServices, start_cluster
from voxgate.config import load_settings
from voxgate.observability.records import CallRecords

TOKEN = "t0ken-for-webrtc-hangup"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def call_on(edge: Literal["sip", "webrtc"]) -> tuple[CallSession, RecordingControl]:
    control = RecordingControl()
    session = CallSession(edge=edge, sink=PlayoutBuffer(8000), control=control, sample_rate=8000)
    control.session = session
    return session, control


async def test_webrtc_hangup_is_forwarded_to_the_owner(
    redis_server: RedisServer, tmp_path: Path, prefix: str
) -> None:
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    db = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    apps: list[FastAPI] = []
    services: list[ClusterServices] = []
    records: list[CallRecords] = []
    try:
        for name in ("w0", "w1"):
            rec = await CallRecords.open(db, node_id=name)
            app = create_app(settings, hold_manager())
            cfg = ClusterSettings(redis_url=redis_server.url, node_id=name, key_prefix=prefix)
            services.append(await start_cluster(app, cfg, app.state.manager, rec))
            apps.append(app)
            records.append(rec)
        webrtc, control = call_on("webrtc")
        sip, sip_control = call_on("sip")
        await apps[0].state.manager.start(webrtc)
        await apps[0].state.manager.start(sip)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(apps[1]), base_url="http://b"
        ) as b:
            body = {"call_id": webrtc.call_id}
            assert (await b.post("/webrtc/hangup", json=body)).status_code == 401
            # Not a WebRTC call: the route's own answer, as on the owner.
            other = await b.post("/webrtc/hangup", json={"call_id": sip.call_id}, headers=AUTH)
            assert other.status_code == 404 and not sip_control.actions
            r = await b.post("/webrtc/hangup", json=body, headers=AUTH)
            assert r.status_code == 200, r.text
            assert r.json() == {"call_id": webrtc.call_id, "reason": "caller_hangup", "node": "w0"}
            assert await asyncio.wait_for(webrtc.wait_ended(), 5) == "caller_hangup"
            assert control.actions == [("hangup", "caller_hangup")]
            gone = await b.post("/webrtc/hangup", json={"call_id": "nope"}, headers=AUTH)
            assert gone.status_code == 404
            assert (await b.post("/webrtc/hangup", content=b"[1]", headers=AUTH)).status_code == 422
        sip.end("test_over")
    finally:
        for s in services:
            await s.close()
        for rec in records:
            await rec.close()
