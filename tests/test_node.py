"""The assembled node end to end: a caller over the Twilio edge reaches the default agent,
and the call lands in the records database (transcript, turn timeline, end reason) and in
Prometheus, with the conversation stored for resumption."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
from prometheus_client import generate_latest
from websockets.asyncio.client import connect

from tests.agent.fakes import providers
from tests.websocket.helpers import TwilioPlayback, clip, media_msg, mulaw_chunks, serve, start_msg
from voxgate.config import load_settings
from voxgate.node import Node
from voxgate.observability.metrics import REGISTRY
from voxgate.providers.tts.fake import FakeTTS

ANSWER = "We open at ten on Saturday."
TOKEN = "node-test-token"


async def test_twilio_call_through_the_node_is_recorded(tmp_path: Path) -> None:
    settings = load_settings(
        auth={"api_tokens": [TOKEN]},
        sip={"enabled": False},
        records={
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/records.db",
            "recordings_dir": str(tmp_path / "rec"),
        },
        observability={"recording": True},
    )
    fake = providers(
        ["What time do you open on Saturday?"],
        {"saturday": ANSWER},
        tts=FakeTTS(sample_rate=16000, seconds_per_char=0.02),
    )
    node = await Node.create(settings, providers=fake)
    caller = np.concatenate(
        [np.zeros(8000 * 2, np.int16), clip("opening_hours.piper.8k.wav"), np.zeros(8000 * 4, np.int16)]
    )
    playback = TwilioPlayback()
    try:
        async with (
            serve(node.app) as port,
            connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws,
        ):

            async def reader() -> None:
                async for raw in ws:
                    playback.on_message(json.loads(raw))

            task = asyncio.create_task(reader())
            await ws.send(start_msg(From="+15550001", To="+15550002"))
            loop = asyncio.get_running_loop()
            t0, seq = loop.time(), 1
            for i, chunk in enumerate(mulaw_chunks(caller), start=1):
                seq += 1
                await ws.send(media_msg(seq, i, chunk))
                playback.advance(0.04)
                for name in playback.to_echo:
                    seq += 1
                    mark = {"event": "mark", "sequenceNumber": str(seq), "streamSid": "MZ1",
                            "mark": {"name": name}}
                    await ws.send(json.dumps(mark))
                playback.to_echo.clear()
                await asyncio.sleep(max(0.0, t0 + i * 0.02 - loop.time()))
            await ws.send(json.dumps({"event": "stop", "sequenceNumber": str(seq + 1), "streamSid": "MZ1"}))
            await asyncio.wait_for(task, 10)
        for _ in range(100):  # the call's end is recorded after the socket closes
            calls = await node.records.list_calls()
            if calls and calls[0]["ended_at"]:
                break
            await asyncio.sleep(0.05)
        call = await node.records.get_call(calls[0]["id"])
    finally:
        await node.stop()

    assert call is not None
    assert call["edge"] == "websocket" and call["route"] == "default"
    assert call["codec"] == "PCMU/8000"
    assert call["end_reason"] and call["turn_count"] == 1
    said = [(t["speaker"], t["text"]) for t in call["transcript"]]
    assert ("caller", "What time do you open on Saturday?") in said
    assert ("agent", ANSWER) in said
    timeline = call["turns"][0]["timeline"]
    assert timeline["heard_text"] == ANSWER
    assert timeline["stages_ms"]["voice_to_voice"] is not None
    assert call["recording_caller"] and call["recording_agent"]
    assert (tmp_path / "rec" / call["recording_caller"]).stat().st_size > 44
    text = generate_latest(REGISTRY).decode()
    assert 'voxgate_calls_total{edge="websocket"' in text
    assert "voxgate_voice_to_voice_seconds_count" in text


async def test_route_to_the_named_receptionist_agent(tmp_path: Path) -> None:
    from voxgate.apps import AgentApp
    from voxgate.calls.playout import PlayoutBuffer
    from voxgate.calls.session import CallSession, UnsupportedControl

    settings = load_settings(
        sip={"enabled": False},
        records={
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/records.db",
            "recordings_dir": str(tmp_path / "rec"),
        },
        routes=[{"app": "agent:receptionist", "callee": "dental*", "name": "clinic"}],
    )
    node = await Node.create(settings, providers=providers([], {}))
    try:
        def resolve(callee: str) -> AgentApp:
            session = CallSession(edge="sip", sink=PlayoutBuffer(8000),
                                  control=UnsupportedControl("sip"), sample_rate=8000, callee=callee)
            _, app = node.manager.router.resolve(session)
            assert isinstance(app, AgentApp)
            return app

        clinic, plain = resolve("dental-line"), resolve("other")
        assert clinic.providers.knowledge is not None and clinic.settings.name == "receptionist"
        assert plain.providers.knowledge is None
        assert (tmp_path / "appointments.db").exists()
    finally:
        await node.stop()
