"""The agent pipeline on fake providers answering a Twilio stream end to end, over sockets."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from websockets.asyncio.client import connect

from tests.agent.fakes import providers
from tests.websocket.helpers import (
    TOKEN,
    TwilioPlayback,
    clip,
    make_app,
    media_msg,
    mulaw_chunks,
    serve,
    start_msg,
)
from voxgate.agent.config import AgentSettings
from voxgate.agent.pipeline import AgentPipeline
from voxgate.calls.session import CallSession
from voxgate.providers.tts.fake import FakeTTS

ANSWER = "We open at ten on Saturday."


class AgentApp:
    name = "agent"

    def __init__(self) -> None:
        self.pipelines: list[AgentPipeline] = []

    async def run(self, session: CallSession) -> None:
        p = providers(
            ["What time do you open on Saturday?"],
            {"saturday": ANSWER},
            tts=FakeTTS(sample_rate=16000, seconds_per_char=0.02),
        )
        pipeline = AgentPipeline(session, p, AgentSettings())
        self.pipelines.append(pipeline)
        await pipeline.run()


async def test_agent_answers_a_twilio_caller() -> None:
    agent = AgentApp()
    app, _ = make_app({"agent": agent})
    playback = TwilioPlayback()
    # Greeting time, the question at real-time pace, then silence for the endpoint.
    caller = np.concatenate(
        [
            np.zeros(8000 * 2, np.int16),
            clip("opening_hours.piper.8k.wav"),
            np.zeros(8000 * 4, np.int16),
        ]
    )
    chunks = mulaw_chunks(caller)
    async with (
        serve(app) as port,
        connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws,
    ):

        async def reader() -> None:
            async for raw in ws:
                playback.on_message(json.loads(raw))

        task = asyncio.create_task(reader())
        await ws.send(start_msg(From="+15550001", To="+15550002"))
        loop = asyncio.get_running_loop()
        t0, seq = loop.time(), 1
        for i, chunk in enumerate(chunks, start=1):
            seq += 1
            await ws.send(media_msg(seq, i, chunk))
            playback.advance(0.04)  # the simulated phone plays twice as fast: a shorter test
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
        await ws.send(
            json.dumps({"event": "stop", "sequenceNumber": str(seq + 1), "streamSid": "MZ1"})
        )
        await asyncio.wait_for(task, 10)
    (pipeline,) = agent.pipelines
    assert pipeline.errors == []
    assert pipeline.transcript == [
        ("assistant", AgentSettings().greeting),
        ("user", "What time do you open on Saturday?"),
        ("assistant", ANSWER),
    ]
    (record,) = pipeline.records
    assert record.heard_text == ANSWER  # known only from the echoed marks
    assert playback.marks_received and playback.clears == 0
    assert playback.received_media > 0
