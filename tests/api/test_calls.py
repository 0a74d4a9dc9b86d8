"""REST calls API on both real databases (SQLite file, PostgreSQL server) with seeded records.

``seed`` is shared with the browser test: a handful of calls that cover every filter, turns
with full stage timelines, transcripts with confidence, network intervals and recordings.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import SecretStr
from sqlalchemy import update

from tests.servers import PostgresServer
from voxgate.agent.records import TurnRecord
from voxgate.api.app import create_app
from voxgate.audio.wav import write_wav
from voxgate.calls.manager import CallManager
from voxgate.calls.router import Router
from voxgate.calls.session import CallSession, UnsupportedControl
from voxgate.config import Settings, load_settings
from voxgate.observability.metrics import REGISTRY
from voxgate.observability.records import CallRecords
from voxgate.observability.schema import TurnRow

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def timeline(index: int, text: str, stages_ms: tuple[float, ...], playback_ms: float = 60) -> dict[str, Any]:
    """A TurnRecord timeline (as the observer stores it) from stage durations in ms."""
    endpointing, stt, ttft, clause, tts, overhead = (v / 1000 for v in stages_ms)
    t = 10.0 + 20 * index
    end = t + endpointing
    turn = TurnRecord(
        index, user_text=text, agent_text="Sure.", heard_text="Sure.",
        speech_start=t - 1.5, speech_end=t, endpoint=end, stt_final=end + stt,
        llm_start=end + stt, llm_first_token=end + stt + ttft,
        tts_start=end + stt + ttft + clause, tts_first_audio=end + stt + ttft + clause + tts,
        first_audio_out=end + stt + ttft + clause + tts + overhead,
        first_audio_played=end + stt + ttft + clause + tts + overhead + playback_ms / 1000,
    )
    out = turn.to_dict()
    out["stages_ms"] = {
        k: (None if v is None else round(v * 1000, 1)) for k, v in turn.stages().items()
    }
    return out


async def _call(
    records: CallRecords,
    rec_dir: Path,
    call_id: str,
    *,
    edge: str,
    route: str,
    start: datetime,
    reason: str | None,
    turns: list[tuple[float, ...]],
    cost: float = 0.0,
    recorded: bool = False,
    seconds: float = 60.0,
    rng: random.Random | None = None,
) -> None:
    rng = rng or random.Random(call_id)
    await records.start_call(
        call_id, edge=edge, caller=f"+1555{rng.randrange(10**7):07d}", callee="100",
        route=route, codec="PCMU", started_at=start,
    )
    await records.update_call(call_id, answered_at=start + timedelta(seconds=1))
    for i, stages in enumerate(turns):
        tl = timeline(i, f"question number {i + 1}", stages)
        v2v = tl["stages_ms"]["voice_to_voice"]
        interrupted = i == 2
        await records.add_turn(call_id, i, tl, voice_to_voice_ms=v2v, interrupted=interrupted,
                               completed=not interrupted)
        async with records.engine.begin() as conn:  # spread turns over the call's time
            await conn.execute(
                update(TurnRow)
                .where(TurnRow.call_id == call_id, TurnRow.index == i)
                .values(created_at=start + timedelta(seconds=5 + 15 * i))
            )
        await records.add_transcript(call_id, "caller", f"question number {i + 1}", is_final=False,
                                     confidence=None, offset_s=4.0 + 15 * i)
        await records.add_transcript(call_id, "caller", f"Question number {i + 1}?",
                                     confidence=round(0.55 + 0.2 * i, 2), offset_s=4.5 + 15 * i)
        await records.add_transcript(call_id, "agent", "Sure.", offset_s=5.5 + 15 * i)
    await records.add_event(call_id, "dtmf", {"digit": "5"}, offset_s=8.0)
    for k in range(int(seconds // 5)):
        await records.add_network_stats(
            call_id, offset_s=5.0 * (k + 1), packets=250, loss_pct=round(rng.uniform(0, 4), 2),
            jitter_ms=round(rng.uniform(2, 25), 1), jb_delay_ms=round(rng.uniform(30, 90), 1),
            underruns=rng.randrange(3), concealed_ms=round(rng.uniform(0, 80), 1),
        )
    if recorded:
        rels = {t: f"{start:%Y-%m-%d}/{call_id}.{t}.wav" for t in ("caller", "agent")}
        for track, rel in rels.items():
            (rec_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            tone = (3000 * np.sin(np.arange(8000 * 2) * (0.05 if track == "caller" else 0.09)))
            write_wav(rec_dir / rel, tone.astype(np.int16), 8000)
        await records.update_call(call_id, recording_caller=rels["caller"],
                                  recording_agent=rels["agent"])
    if reason is not None:
        await records.end_call(call_id, reason, ended_at=start + timedelta(seconds=seconds),
                               cost_usd=cost, cost_detail={"total": cost})


async def seed(records: CallRecords, rec_dir: Path, extra: int = 0) -> datetime:
    """Five fixed calls (see asserts below) plus ``extra`` random ones over the last day."""
    now = datetime.now(UTC).replace(microsecond=0)
    base = now - timedelta(hours=2)
    fast, slow = (250, 40, 180, 90, 110, 20), (600, 120, 450, 200, 180, 40)
    await _call(records, rec_dir, "call_a1", edge="sip", route="receptionist", start=base,
                reason="caller_hangup", turns=[fast, fast, slow], cost=0.06, recorded=True)
    await _call(records, rec_dir, "call_b2", edge="websocket", route="reminders",
                start=base + timedelta(minutes=10), reason="app_error", turns=[slow, fast],
                cost=0.03, seconds=30)
    await _call(records, rec_dir, "call_c3", edge="webrtc", route="receptionist",
                start=base + timedelta(minutes=30), reason="completed", turns=[fast], cost=0.0)
    await _call(records, rec_dir, "call_d4", edge="sip", route="receptionist",
                start=now - timedelta(minutes=1), reason=None, turns=[])
    await _call(records, rec_dir, "call_e5", edge="sip", route="sales",
                start=now - timedelta(days=3), reason="no_route", turns=[], seconds=0)
    rng = random.Random(7)
    reasons = ["completed"] * 6 + ["caller_hangup"] * 6 + ["media_timeout", "app_error", "no_route"]
    for i in range(extra):
        start = now - timedelta(minutes=rng.uniform(5, 23 * 60))
        turns = [
            tuple(v * rng.uniform(0.6, 1.8) for v in (fast if rng.random() < 0.7 else slow))
            for _ in range(rng.randrange(1, 6))
        ]
        await _call(records, rec_dir, f"call_x{i:03d}", edge=rng.choice(["sip", "webrtc", "websocket"]),
                    route=rng.choice(["receptionist", "reminders"]), start=start,
                    reason=rng.choice(reasons), turns=turns, cost=round(rng.uniform(0.01, 0.2), 4),
                    seconds=rng.uniform(20, 300), rng=rng)
    return now


def make_settings(rec_dir: Path) -> Settings:
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    settings.records.recordings_dir = rec_dir
    return settings


@pytest.fixture(params=["sqlite", "postgresql"])
async def records(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CallRecords]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = await server.new_database()
    recs = await CallRecords.open(url, node_id="test-node")
    yield recs
    await recs.close()


@pytest.fixture
def manager() -> CallManager:
    return CallManager(Router([], {}, None))


@pytest.fixture
async def client(
    records: CallRecords, manager: CallManager, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    rec_dir = tmp_path / "rec"
    await seed(records, rec_dir)
    app = create_app(make_settings(rec_dir), manager)
    app.state.records = records
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def ids(body: dict[str, Any]) -> list[str]:
    return [c["id"] for c in body["calls"]]


async def test_list_filters(client: httpx.AsyncClient) -> None:
    async def q(**params: Any) -> list[str]:
        r = await client.get("/v1/calls", params=params, headers=AUTH)
        assert r.status_code == 200, r.text
        return ids(r.json())

    assert await q() == ["call_d4", "call_c3", "call_b2", "call_a1", "call_e5"]
    assert await q(edge="sip") == ["call_d4", "call_a1", "call_e5"]
    assert await q(route="reminders") == ["call_b2"]
    assert await q(end_reason="app_error") == ["call_b2"]
    assert set(await q(min_latency_ms=1000)) == {"call_a1", "call_b2"}
    assert await q(active="true") == ["call_d4"]
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert "call_e5" not in await q(since=since)
    until = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    assert await q(until=until) == ["call_e5"]
    assert await q(limit=2, offset=1) == ["call_c3", "call_b2"]
    row = (await client.get("/v1/calls", params={"edge": "sip"}, headers=AUTH)).json()["calls"][1]
    assert row["has_recording"] is True and row["latency_max_ms"] > row["latency_p50_ms"]


async def test_detail(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/calls/call_a1", headers=AUTH)
    assert r.status_code == 200
    call = r.json()
    assert call["end_reason"] == "caller_hangup" and call["turn_count"] == 3
    assert [t["index"] for t in call["turns"]] == [0, 1, 2]
    assert call["turns"][2]["interrupted"] is True
    assert call["turns"][0]["timeline"]["stages_ms"]["endpointing"] == pytest.approx(250)
    assert call["turns"][0]["voice_to_voice_ms"] == pytest.approx(690)
    finals = [e for e in call["transcript"] if e["is_final"] and e["speaker"] == "caller"]
    assert [e["confidence"] for e in finals] == [0.55, 0.75, 0.95]
    assert call["events"][0] == {"kind": "dtmf", "data": {"digit": "5"}, "offset_s": 8.0}
    assert len(call["network"]) == 12 and call["network"][0]["offset_s"] == 5.0
    assert call["recordings"] == {
        "caller": "/v1/calls/call_a1/recording/caller",
        "agent": "/v1/calls/call_a1/recording/agent",
    }
    assert call["live"] is False and call["live_status"] is None
    unrecorded = (await client.get("/v1/calls/call_b2", headers=AUTH)).json()
    assert unrecorded["recordings"] == {"caller": None, "agent": None}
    assert (await client.get("/v1/calls/nope", headers=AUTH)).status_code == 404


async def test_recording_is_served_by_id_with_auth_only(
    client: httpx.AsyncClient, records: CallRecords, tmp_path: Path
) -> None:
    url = "/v1/calls/call_a1/recording/caller"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers={"Authorization": "Bearer nope"})).status_code == 401
    r = await client.get(url, headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content[:4] == b"RIFF" and "no-store" in r.headers["cache-control"]
    part = await client.get(url, headers={**AUTH, "Range": "bytes=0-11"})
    assert part.status_code == 206 and part.content == r.content[:12]
    assert (await client.get("/v1/calls/call_b2/recording/agent", headers=AUTH)).status_code == 404
    assert (await client.get("/v1/calls/call_a1/recording/mixed", headers=AUTH)).status_code == 422
    links = await client.get("/v1/calls/call_a1/recording", headers=AUTH)
    assert links.json()["agent"] == "/v1/calls/call_a1/recording/agent"
    # A tampered row pointing outside the recordings directory is refused.
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF-secret")
    await records.update_call("call_b2", recording_caller="../secret.wav",
                              recording_agent=str(secret))
    for track in ("caller", "agent"):
        resp = await client.get(f"/v1/calls/call_b2/recording/{track}", headers=AUTH)
        assert resp.status_code == 404 and b"secret" not in resp.content
    traversal = await client.get("/v1/calls/..%2F..%2Fsecret/recording/caller", headers=AUTH)
    assert traversal.status_code in (404, 422)


async def test_overview(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/stats/overview", headers=AUTH)
    assert r.status_code == 200, r.text
    o = r.json()
    # Window = last 24 h: a1, b2, c3, d4 (e5 started 3 days ago).
    assert o["calls"] == 4 and o["turns"] == 6 and o["turns_completed"] == 5
    assert o["turn_completion_rate"] == pytest.approx(5 / 6, abs=1e-4)
    latencies = sorted([690.0] * 4 + [1590.0] * 2)
    assert o["p50_ms"] == pytest.approx(float(np.percentile(latencies, 50)))
    assert o["p95_ms"] == pytest.approx(float(np.percentile(latencies, 95)))
    reasons = {x["reason"]: (x["count"], x["failure"]) for x in o["end_reasons"]}
    assert reasons == {"caller_hangup": (1, False), "app_error": (1, True),
                       "completed": (1, False), "active": (1, False)}
    assert o["failed_calls"] == 1
    assert o["call_minutes"] == pytest.approx(2.5)  # 60 + 30 + 60 s of ended calls
    assert o["cost_per_minute"] == pytest.approx(0.09 / 2.5)
    assert sum(b["turns"] for b in o["latency"]) == 6 and len(o["latency"]) >= 2
    assert o["bucket_s"] == 1800
    sip = (await client.get("/v1/stats/overview", params={"edge": "sip"}, headers=AUTH)).json()
    assert sip["calls"] == 2 and sip["turns"] == 3
    alias = await client.get("/v1/metrics/summary", headers=AUTH)
    assert alias.status_code == 200 and alias.json()["calls"] == 4
    empty = await client.get("/v1/stats/overview", params={"since": "2030-01-02T00:00:00Z",
                                                         "until": "2030-01-01T00:00:00Z"},
                           headers=AUTH)
    assert empty.status_code == 200 and empty.json()["calls"] == 0  # an empty window


async def test_live_calls_from_the_manager(
    client: httpx.AsyncClient, manager: CallManager
) -> None:
    session = CallSession("sip", _Sink(), UnsupportedControl("sip"), 8000, route="receptionist",
                          caller="alice", call_id="call_d4")
    ghost = CallSession("webrtc", _Sink(), UnsupportedControl("webrtc"), 48000, route="other",
                        call_id="call_live_only")
    manager.calls.update({"call_d4": session, "call_live_only": ghost})
    body = (await client.get("/v1/calls", headers=AUTH)).json()
    assert {c["id"] for c in body["live"]} == {"call_d4", "call_live_only"}
    assert next(c for c in body["calls"] if c["id"] == "call_d4")["live"] is True
    sip_only = (await client.get("/v1/calls", params={"edge": "sip"}, headers=AUTH)).json()
    assert [c["id"] for c in sip_only["live"]] == ["call_d4"]
    detail = (await client.get("/v1/calls/call_d4", headers=AUTH)).json()
    assert detail["live_status"]["caller"] == "alice" and detail["live"] is True
    ghost_detail = (await client.get("/v1/calls/call_live_only", headers=AUTH)).json()
    assert ghost_detail["edge"] == "webrtc" and ghost_detail["turns"] == []
    overview = (await client.get("/v1/stats/overview", headers=AUTH)).json()
    assert overview["active_calls"] == 2


class _Sink:
    sample_rate = 8000

    def write(self, frame: Any) -> None: ...
    def clear(self) -> None: ...
    def mark(self, name: str) -> None: ...


# --- auth and validation (SQLite only: they do not depend on the database) -----------------


@pytest.fixture
async def sqlite_client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    records = await CallRecords.open(f"sqlite+aiosqlite:///{tmp_path}/r.db")
    await seed(records, tmp_path / "rec")
    app = create_app(make_settings(tmp_path / "rec"))
    app.state.records = records
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await records.close()


ENDPOINTS = [
    "/v1/calls",
    "/v1/calls/call_a1",
    "/v1/calls/call_a1/recording",
    "/v1/calls/call_a1/recording/caller",
    "/v1/calls/call_a1/recording/agent",
    "/v1/stats/overview",
    "/v1/metrics/summary",
]


async def test_every_endpoint_needs_a_valid_token(sqlite_client: httpx.AsyncClient) -> None:
    for url in ENDPOINTS:
        assert (await sqlite_client.get(url)).status_code == 401, url
        bad = await sqlite_client.get(url, headers={"Authorization": "Bearer wrong"})
        assert bad.status_code == 401 and "wrong" not in bad.text
        wrong_cookie = {"Cookie": "voxgate_token=wrong"}
        assert (await sqlite_client.get(url, headers=wrong_cookie)).status_code == 401
        assert (await sqlite_client.get(url, headers=AUTH)).status_code == 200, url
        assert (await sqlite_client.get(url, params={"token": TOKEN})).status_code == 200
    cookie = await sqlite_client.get("/v1/calls", headers={"Cookie": f"voxgate_token={TOKEN}"})
    assert cookie.status_code == 200


def _rejections() -> float:
    return REGISTRY.get_sample_value("voxgate_parser_rejections_total", {"protocol": "http"}) or 0.0


async def test_validation_errors_are_422_and_counted(sqlite_client: httpx.AsyncClient) -> None:
    before = _rejections()
    for params in ({"limit": 0}, {"limit": "many"}, {"since": "yesterday"},
                   {"min_latency_ms": -5}, {"active": "perhaps"}):
        r = await sqlite_client.get("/v1/calls", params=params, headers=AUTH)
        assert r.status_code == 422 and r.json()["error"] == "invalid request", params
    r = await sqlite_client.get("/v1/stats/overview", params={"bucket_s": 1}, headers=AUTH)
    assert r.status_code == 422
    long_id = "x" * 65
    assert (await sqlite_client.get(f"/v1/calls/{long_id}", headers=AUTH)).status_code == 422
    assert _rejections() - before == 7


async def test_without_a_records_database(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/v1/calls", headers=AUTH)).json()["calls"] == []
        o = (await c.get("/v1/stats/overview", headers=AUTH)).json()
        assert o["calls"] == 0 and o["turn_completion_rate"] is None and o["latency"] == []
        assert (await c.get("/v1/calls/x", headers=AUTH)).status_code == 404
        assert (await c.get("/v1/calls/x/recording/caller", headers=AUTH)).status_code == 404


async def test_openapi_documents_the_endpoints(sqlite_client: httpx.AsyncClient) -> None:
    spec = (await sqlite_client.get("/openapi.json")).json()
    for path in ("/v1/calls", "/v1/calls/{call_id}", "/v1/calls/{call_id}/recording/{track}",
                 "/v1/stats/overview"):
        assert "get" in spec["paths"][path], path
    assert "CallDetail" in spec["components"]["schemas"]
    assert not any(p.startswith("/dashboard") for p in spec["paths"])
