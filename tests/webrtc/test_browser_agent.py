"""Chromium talks to the real agent pipeline (fake STT/LLM/TTS, real WebRTC VAD): the
caller's question appears on the page and is answered with audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from voxgate.agent.pipeline import AgentProviders
from voxgate.api.app import create_app
from voxgate.audio.vad import WebRtcVad
from voxgate.calls.manager import CallManager
from voxgate.calls.router import Router
from voxgate.config import load_settings
from voxgate.providers.llm.fake import FakeLLM
from voxgate.providers.stt.fake import FakeSTT
from voxgate.providers.tts.fake import FakeTTS
from voxgate.webrtc._ice import IcePolicy
from voxgate.webrtc._peer import WebRtcOptions

from .agent_bridge import AgentApp
from .apps import wait_for
from .browser import ARTIFACTS, chromium, needs_chromium, serve, speech_then_silence

pytestmark = [needs_chromium, pytest.mark.interop]

TOKEN = "agent-t0ken"
QUESTION = "What time do you open on Saturday?"
ANSWER = "We open at ten on Saturday."


def mic_wav(tmp: Path) -> Path:
    """Quiet while the agent greets, then the question, then quiet for the answer (loops)."""
    import wave

    speech = speech_then_silence("opening_hours.piper.16k.wav", 5.0, tmp / "q.wav")
    with wave.open(str(speech)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    pcm = np.concatenate([np.zeros(16000 * 2, dtype="<i2"), pcm])
    out = tmp / "mic.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return out


def agent_app() -> AgentApp:
    return AgentApp(
        AgentProviders(
            stt=FakeSTT([QUESTION] * 6),
            llm=FakeLLM.from_rules({"open": ANSWER}, default="Sorry?"),
            tts=FakeTTS(sample_rate=24000, seconds_per_char=0.02),
            vad_factory=lambda: WebRtcVad(2),
        )
    )


async def test_chromium_question_is_transcribed_and_answered(tmp_path: Path) -> None:
    agent = agent_app()
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    app = create_app(settings, CallManager(Router([], {"agent": lambda rule: agent})))
    app.state.webrtc_options = WebRtcOptions(ice=IcePolicy(addresses=("127.0.0.1",)))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with serve(app) as base, chromium(mic_wav(tmp_path)) as browser:
        page = await browser.new_page()
        await page.goto(f"{base}/?token={TOKEN}&raw=1")
        await page.click("#call")
        await page.wait_for_function("() => window.voxgate.state === 'connected'", timeout=15000)
        # Greeting heard, question transcribed on the page, answer text and answer audio.
        await page.wait_for_selector("#transcript li.caller", timeout=20000)
        await page.wait_for_function(
            f"() => window.voxgate.transcript.some(t => t.role === 'agent' && t.text === {ANSWER!r})",
            timeout=20000,
        )
        # Both measures of the first turn land on one row: heard at the page, agent-reported.
        await page.wait_for_function(
            "() => window.voxgate.turns.some(t => t.heardMs !== undefined && t.reportedMs !== undefined)",
            timeout=20000,
        )
        state: dict[str, Any] = await page.evaluate(
            "() => JSON.parse(JSON.stringify(window.voxgate))"
        )
        await page.screenshot(path=str(ARTIFACTS / "chromium_agent_turn.png"))
        roles = [t["role"] for t in state["transcript"]]
        assert roles[:3] == ["agent", "caller", "agent"]
        assert state["transcript"][1]["text"] == QUESTION
        pipeline = agent.pipelines[0]
        assert pipeline.records and pipeline.records[0].user_text == QUESTION
        session = pipeline.session
        await page.click("#hangup")
        await wait_for(lambda: session.ended)
        assert session.end_reason == "caller_hangup"
