"""The /twilio/media edge over real sockets: a websockets client behaves like Twilio."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
import websockets
from httpx import ASGITransport, AsyncClient
from websockets.asyncio.client import connect

from tests.websocket.helpers import (
    TOKEN,
    EchoApp,
    Recorder,
    ScriptedAgent,
    TwilioPlayback,
    clip,
    make_app,
    media_msg,
    mulaw_chunks,
    played,
    serve,
    start_msg,
)
from voxgate.audio.g711 import ulaw_decode
from voxgate.calls.session import DtmfReceived
from voxgate.websocket.twilio_edge import stream_token, twilio_signature


async def test_twilio_call_real_time_with_marks_and_barge_in() -> None:
    """connected, start, 20 ms media at real-time pace, marks echoed at playback time, stop.

    The agent speaks three clauses; the caller starts talking during the third, the agent
    clears, and only the clauses actually played come back as MarkPlayed.
    """
    rec = Recorder()
    agent = ScriptedAgent(rec, [("a", 0.3), ("b", 0.3), ("c", 4.0)])
    app, _ = make_app({"agent": agent})
    caller_audio = np.concatenate([np.zeros(8000, np.int16), clip()])
    chunks = mulaw_chunks(caller_audio)
    playback = TwilioPlayback()
    async with serve(app) as port:
        url = f"ws://127.0.0.1:{port}/twilio/media"
        async with connect(url) as ws:

            async def reader() -> None:
                async for raw in ws:
                    msg = json.loads(raw)
                    assert msg["streamSid"] == "MZ1"
                    playback.on_message(msg)

            read_task = asyncio.create_task(reader())
            await ws.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
            await ws.send(start_msg(token=TOKEN, From="+15550001", To="+15550002"))
            seq = 1
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for i, chunk in enumerate(chunks, start=1):
                seq += 1
                await ws.send(media_msg(seq, i, chunk))
                playback.advance(0.02)
                for name in playback.to_echo:
                    seq += 1
                    await ws.send(
                        json.dumps(
                            {
                                "event": "mark",
                                "sequenceNumber": str(seq),
                                "streamSid": "MZ1",
                                "mark": {"name": name},
                            }
                        )
                    )
                playback.to_echo.clear()
                await asyncio.sleep(max(0.0, t0 + i * 0.02 - loop.time()))
            seq += 1
            await ws.send(
                json.dumps({"event": "stop", "sequenceNumber": str(seq), "streamSid": "MZ1"})
            )
            await asyncio.wait_for(read_task, 5)
            assert ws.close_code == 1000
    session = rec.sessions[0]
    assert session.end_reason == "caller_hangup"
    assert session.caller == "+15550001" and session.callee == "+15550002"
    assert "param.token" not in session.metadata
    assert agent.barged_in.is_set()
    assert playback.clears == 1
    assert playback.marks_received == ["a", "b", "c"]
    # "c" was echoed by the clear, as Twilio does, but it was never heard.
    assert played(rec.events[session.call_id]) == ["a", "b"]
    heard = rec.audio[session.call_id]
    assert len(heard) == len(chunks)
    assert np.array_equal(heard[60].samples, ulaw_decode(chunks[60]))
    assert all(f.sample_rate == 8000 and f.num_samples == 160 for f in heard)
    # Agent audio went out at once in 20 ms chunks (Twilio buffers it); the clear cut it.
    assert playback.received_media == 230


def _client(app: object) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://voxgate.test")  # type: ignore[arg-type]


async def test_voice_webhook_returns_twiml_with_stream_token() -> None:
    app, _ = make_app({"agent": EchoApp(Recorder())})
    async with _client(app) as http:
        refused = await http.post("/twilio/voice", data={"CallSid": "CA9"})
        assert refused.status_code == 401
        r = await http.post(
            "/twilio/voice",
            data={"CallSid": "CA9", "From": "+1555", "To": "+1666"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    body = r.text
    assert '<Connect><Stream url="ws://voxgate.test/twilio/media">' in body
    from pydantic import SecretStr

    assert f'<Parameter name="token" value="{stream_token(SecretStr(TOKEN), "CA9")}"/>' in body
    assert TOKEN not in body  # the API token itself never leaves the server
    assert '<Parameter name="From" value="+1555"/>' in body


async def test_voice_webhook_refuses_while_draining() -> None:
    app, _ = make_app({"agent": EchoApp(Recorder())})
    app.state.draining = True
    async with _client(app) as http:
        r = await http.post(
            "/twilio/voice", data={"CallSid": "CA9"}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert r.status_code == 503 and r.headers["retry-after"] == "5"


async def test_voice_webhook_validates_twilio_signature() -> None:
    app, _ = make_app({"agent": EchoApp(Recorder())}, twilio_auth_token="authtok")
    params = {"CallSid": "CA1", "From": "+1555", "To": "+1666", "AccountSid": "AC1"}
    url = "http://voxgate.test/twilio/voice"
    good = twilio_signature("authtok", url, params)
    async with _client(app) as http:
        bad = await http.post(url, data=params, headers={"X-Twilio-Signature": "AAAA"})
        assert bad.status_code == 403
        ok = await http.post(url, data=params, headers={"X-Twilio-Signature": good})
        assert ok.status_code == 200 and "<Stream" in ok.text
        tampered = dict(params, To="+1999")
        r = await http.post(url, data=tampered, headers={"X-Twilio-Signature": good})
        assert r.status_code == 403


def test_signature_matches_twilio_documented_example() -> None:
    # The example from Twilio's security docs (auth token 12345).
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


async def test_stream_accepts_derived_token_and_refuses_without_token() -> None:
    rec = Recorder()
    app, _ = make_app({"agent": EchoApp(rec)})
    from pydantic import SecretStr

    derived = stream_token(SecretStr(TOKEN), "CA7")
    async with serve(app) as port:
        url = f"ws://127.0.0.1:{port}/twilio/media"
        async with connect(url) as ws:
            await ws.send(start_msg(call_sid="CA7", token=derived))
            await ws.send(media_msg(2, 1, b"\xff" * 160))
            await ws.send(json.dumps({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "5"}}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["event"] == "media"
            assert base64.b64decode(reply["media"]["payload"]) == b"\xff" * 160
        async with connect(url) as ws:
            await ws.send(start_msg(call_sid="CA8", token=derived))  # derived for another call
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1008 and ws.close_reason == "unauthorized"
        async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            await ws.send(start_msg(call_sid="CA9"))
            await ws.send(json.dumps({"event": "stop", "streamSid": "MZ1"}))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1000
    assert len(rec.sessions) == 2
    assert rec.sessions[0].end_reason == "caller_disconnected"


async def test_dtmf_becomes_call_event() -> None:
    rec = Recorder()
    agent = ScriptedAgent(rec, [])
    app, _ = make_app({"agent": agent})
    async with (
        serve(app) as port,
        connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws,
    ):
        await ws.send(start_msg())
        await ws.send(
            json.dumps(
                {
                    "event": "dtmf",
                    "sequenceNumber": "2",
                    "streamSid": "MZ1",
                    "dtmf": {"track": "inbound_track", "digit": "7"},
                }
            )
        )
        await ws.send(json.dumps({"event": "stop", "sequenceNumber": "3", "streamSid": "MZ1"}))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    await asyncio.sleep(0.05)
    events = rec.events[rec.sessions[0].call_id]
    assert DtmfReceived("7") in events
