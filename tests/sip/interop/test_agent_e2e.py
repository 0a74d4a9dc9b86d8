"""baresip calls the real agent pipeline (fake STT/LLM/TTS, WebRTC VAD) over SIP: the
caller's question is transcribed and answered, and baresip records the agent's audio."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.sip.apps import manager_for, wait_for
from tests.sip.interop.peers import (
    AUDIO,
    baresip,
    baresip_config,
    edge_options,
    free_port,
    needs_baresip,
    read_pcm16,
    rtp_range,
    running_edge,
    stop_process,
)
from voxgate.agent.pipeline import AgentPipeline, AgentProviders
from voxgate.audio.vad import WebRtcVad
from voxgate.calls.session import CallSession
from voxgate.providers.llm.fake import FakeLLM
from voxgate.providers.stt.fake import FakeSTT
from voxgate.providers.tts.fake import FakeTTS

pytestmark = [pytest.mark.interop, needs_baresip]

QUESTION = "What time do you open on Saturday?"
ANSWER = "We open at ten on Saturday."


class AgentApp:
    name = "agent"

    def __init__(self) -> None:
        self.pipelines: list[AgentPipeline] = []

    async def run(self, session: CallSession) -> None:
        pipeline = AgentPipeline(
            session,
            AgentProviders(
                stt=FakeSTT([QUESTION] * 4),
                llm=FakeLLM.from_rules({"open": ANSWER}, default="Sorry?"),
                tts=FakeTTS(sample_rate=24000, seconds_per_char=0.02),
                vad_factory=lambda: WebRtcVad(2),
            ),
        )
        self.pipelines.append(pipeline)
        await pipeline.run()


def _mic(folder: Path) -> Path:
    """Quiet while the agent greets, the question, then quiet for the answer."""
    with wave.open(str(AUDIO / "opening_hours.piper.8k.wav")) as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    pcm = np.concatenate([np.zeros(8000 * 3, "<i2"), speech, np.zeros(8000 * 8, "<i2")])
    out = folder / "mic.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    return out


async def test_baresip_question_is_answered_by_the_agent(tmp_path: Path) -> None:
    agent = AgentApp()
    cfg = baresip_config(tmp_path, sip_port=free_port(), source_wav=_mic(tmp_path), rtp_ports=rtp_range(20))
    async with running_edge(manager_for(agent), edge_options()) as edge:
        dial = f"/dial sip:agent@127.0.0.1:{edge.transports.port('udp')}"
        async with baresip(cfg, dial, quit_after_s=25) as phone:
            await wait_for(lambda: agent.pipelines, 10)
            pipeline = agent.pipelines[0]
            await wait_for(lambda: pipeline.records and pipeline.records[0].user_text, 20)
            await asyncio.sleep(2.0)  # let the answer play out
            await pipeline.session.control.hangup()
            await wait_for(lambda: not edge.calls, 10)
            await stop_process(phone)
    assert pipeline.records[0].user_text == QUESTION
    assert pipeline.session.end_reason == "agent_hangup"
    found = sorted((tmp_path / "rec").glob("dump-*-dec.wav"))
    assert found
    heard = read_pcm16(found[0])
    # Greeting and answer (FakeTTS speaks tones) reached the phone.
    assert (np.abs(heard) > 2000).sum() > 8000  # over a second of it
