"""The WebRTC edge against an aiortc client in the same loop: signaling, audio both ways,
events, codecs and every teardown path. The browser tests (test_browser.py) repeat the
important ones against Chromium."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from fastapi import FastAPI
from pydantic import SecretStr

from voxgate.api.app import create_app
from voxgate.calls.manager import CallManager
from voxgate.config import load_settings
from voxgate.webrtc._ice import IcePolicy, apply_policy
from voxgate.webrtc._peer import WebRtcOptions
from voxgate.webrtc.edge import edge_of

from .apps import GreeterApp, Received, ToneTrack, manager_for, manager_without_route, wait_for

TOKEN = "t0ken-for-webrtc"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOOPBACK = IcePolicy(addresses=("127.0.0.1",))


def make_app(manager: CallManager, **options: Any) -> FastAPI:
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    app = create_app(settings, manager)
    app.state.webrtc_options = WebRtcOptions(ice=LOOPBACK, **options)
    return app


@pytest.fixture
async def client_factory() -> AsyncIterator[Any]:
    made: list[httpx.AsyncClient] = []

    def make(app: FastAPI) -> httpx.AsyncClient:
        c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


class Caller:
    """An aiortc 'browser': mic tone, data channel, receives the agent's audio."""

    def __init__(self, codecs: tuple[str, ...] = ()) -> None:
        self.pc = RTCPeerConnection()  # iceServers default is irrelevant: loopback policy below
        self.mic = ToneTrack()
        self.received = Received()
        self.events: list[dict[str, Any]] = []
        transceiver = self.pc.addTransceiver(self.mic, direction="sendrecv")
        if codecs:
            caps = RTCRtpSender.getCapabilities("audio").codecs
            transceiver.setCodecPreferences([c for c in caps if c.mimeType in codecs])
        self.channel = self.pc.createDataChannel("events")
        self.channel.on("message", lambda m: self.events.append(json.loads(m)))
        self.pc.on("track", lambda t: asyncio.ensure_future(self.received.consume(t)))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def call(self, http: httpx.AsyncClient) -> dict[str, Any]:
        # The client needs loopback candidates too: same helper as the server.
        apply_policy(self.pc, LOOPBACK)
        sdp = await self.offer()
        r = await http.post("/webrtc/offer", json={"sdp": sdp, "type": "offer"}, headers=AUTH)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return answer

    def kinds(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_]


async def test_signaling_requires_token(client_factory: Any) -> None:
    http = client_factory(make_app(manager_for(GreeterApp())))
    r = await http.post("/webrtc/offer", json={"sdp": "v=0", "type": "offer"})
    assert r.status_code == 401
    r = await http.post(
        "/webrtc/hangup", json={"call_id": "x"}, headers={"Authorization": "Bearer no"}
    )
    assert r.status_code == 401


async def test_bad_offers_are_400(client_factory: Any) -> None:
    http = client_factory(make_app(manager_for(GreeterApp())))
    r = await http.post("/webrtc/offer", json={"sdp": "v=0\r\n", "type": "offer"}, headers=AUTH)
    assert r.status_code == 400 and "audio" in r.json()["detail"]
    r = await http.post("/webrtc/offer", json={"sdp": "x", "type": "answer"}, headers=AUTH)
    assert r.status_code == 400
    garbage = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nnonsense\r\n"
    r = await http.post("/webrtc/offer", json={"sdp": garbage, "type": "offer"}, headers=AUTH)
    assert r.status_code == 400


async def test_offer_without_common_codec_is_400(client_factory: Any) -> None:
    http = client_factory(make_app(manager_for(GreeterApp())))
    caller = Caller(codecs=("audio/PCMA",))
    apply_policy(caller.pc, LOOPBACK)
    r = await http.post("/webrtc/offer", json={"sdp": await caller.offer()}, headers=AUTH)
    assert r.status_code == 400
    await caller.pc.close()


async def test_no_route_is_404(client_factory: Any) -> None:
    http = client_factory(make_app(manager_without_route()))
    caller = Caller()
    apply_policy(caller.pc, LOOPBACK)
    r = await http.post(
        "/webrtc/offer", json={"sdp": await caller.offer(), "room": "other"}, headers=AUTH
    )
    assert r.status_code == 404
    await caller.pc.close()


async def test_call_carries_audio_events_and_marks_then_caller_hangs_up(
    client_factory: Any,
) -> None:
    greeter = GreeterApp(greeting_ms=600)
    app = make_app(manager_for(greeter))
    http = client_factory(app)
    caller = Caller()
    answer = await caller.call(http)
    assert answer["codec"].lower().startswith("opus/48000")
    assert "a=candidate:" in answer["sdp"] and "127.0.0.1" in answer["sdp"]
    assert "stun.l.google.com" not in answer["sdp"]

    await wait_for(lambda: caller.received.first_loud.is_set())  # greeting heard
    await wait_for(lambda: greeter.max_rms > 0.1)  # caller's tone reached the app
    await wait_for(lambda: "greeting" in greeter.marks)
    await wait_for(lambda: any(not e["speaking"] for e in caller.kinds("speaking")))
    assert caller.kinds("transcript")[0]["text"] == "Hello!"  # published before the channel opened
    assert [e["speaking"] for e in caller.kinds("speaking")][:2] == [True, False]
    session = greeter.sessions[0]
    assert session.edge == "webrtc" and session.sample_rate == 16000

    r = await http.post("/webrtc/hangup", json={"call_id": answer["call_id"]}, headers=AUTH)
    assert r.json() == {"call_id": answer["call_id"], "reason": "caller_hangup"}
    assert session.end_reason == "caller_hangup"
    assert edge_of(app).calls == {}
    await wait_for(lambda: caller.pc.connectionState == "closed")
    r = await http.post("/webrtc/hangup", json={"call_id": answer["call_id"]}, headers=AUTH)
    assert r.status_code == 404


async def test_pcmu_fallback_carries_audio(client_factory: Any) -> None:
    greeter = GreeterApp()
    http = client_factory(make_app(manager_for(greeter)))
    caller = Caller(codecs=("audio/PCMU",))
    answer = await caller.call(http)
    assert answer["codec"] == "PCMU/8000"
    await wait_for(lambda: caller.received.first_loud.is_set())
    await wait_for(lambda: greeter.max_rms > 0.1)
    await caller.pc.close()
    await wait_for(lambda: greeter.sessions[0].ended)
    assert greeter.sessions[0].end_reason == "caller_hangup"


async def test_data_channel_hangup_message(client_factory: Any) -> None:
    greeter = GreeterApp()
    http = client_factory(make_app(manager_for(greeter)))
    caller = Caller()
    await caller.call(http)
    await wait_for(lambda: caller.channel.readyState == "open")
    caller.channel.send(json.dumps({"type": "hangup"}))
    await wait_for(lambda: bool(greeter.sessions) and greeter.sessions[0].ended)
    assert greeter.sessions[0].end_reason == "caller_hangup"
    await caller.pc.close()


async def test_agent_hangup_closes_the_peer_connection(client_factory: Any) -> None:
    greeter = GreeterApp(greeting_ms=300, hangup_after_greeting=True)
    http = client_factory(make_app(manager_for(greeter)))
    caller = Caller()
    await caller.call(http)
    await wait_for(lambda: caller.pc.connectionState == "closed")
    assert greeter.sessions[0].end_reason == "agent_hangup"
    ended = caller.kinds("call")[-1]
    assert ended["state"] == "ended" and ended["reason"] == "agent_hangup"


async def test_silent_network_ends_call_with_media_timeout(client_factory: Any) -> None:
    greeter = GreeterApp()
    http = client_factory(make_app(manager_for(greeter), media_timeout_s=0.6))
    caller = Caller()
    await caller.call(http)
    await wait_for(lambda: greeter.frames > 5)
    caller.mic.stall()
    await wait_for(lambda: greeter.sessions[0].ended)
    assert greeter.sessions[0].end_reason == "media_timeout"
    await caller.pc.close()


async def test_never_connected_ends_as_ice_failed(client_factory: Any) -> None:
    greeter = GreeterApp()
    http = client_factory(make_app(manager_for(greeter), connect_timeout_s=0.5))
    caller = Caller()
    apply_policy(caller.pc, LOOPBACK)
    r = await http.post("/webrtc/offer", json={"sdp": await caller.offer()}, headers=AUTH)
    assert r.status_code == 200  # ...but the answer is never applied: no ICE checks arrive
    await wait_for(lambda: bool(greeter.sessions) and greeter.sessions[0].ended)
    assert greeter.sessions[0].end_reason == "ice_failed"
    await caller.pc.close()


async def test_unsupported_controls_say_why(client_factory: Any) -> None:
    greeter = GreeterApp()
    http = client_factory(make_app(manager_for(greeter)))
    caller = Caller()
    await caller.call(http)
    await wait_for(lambda: bool(greeter.sessions))
    control = greeter.sessions[0].control
    for action in (
        control.transfer("+15550100"),
        control.hold(),
        control.unhold(),
        control.send_dtmf("1"),
    ):
        with pytest.raises(NotImplementedError, match="not supported on webrtc calls: "):
            await action
    await control.hangup("test_done")
    assert greeter.sessions[0].end_reason == "test_done"
    await caller.pc.close()


async def test_talk_page_is_public_and_self_contained(client_factory: Any) -> None:
    http = client_factory(make_app(manager_for(GreeterApp())))
    page = await http.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/webrtc/static/talk.js", "/webrtc/static/talk.css"):
        assert asset in page.text
        assert (await http.get(asset)).status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no external URL
    assert (await http.get("/webrtc/static/../edge.py")).status_code == 404
