"""Chromium talks to the agent on the embedded offline models (Whisper tiny.en, Qwen 0.5B,
Piper, Silero VAD): a spoken question is transcribed on the page and answered aloud."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from voxgate.agent.pipeline import AgentProviders
from voxgate.api.app import create_app
from voxgate.calls.manager import CallManager
from voxgate.calls.router import Router
from voxgate.config import load_settings
from voxgate.webrtc._ice import IcePolicy
from voxgate.webrtc._peer import WebRtcOptions

from .agent_bridge import AgentApp
from .apps import wait_for
from .browser import ARTIFACTS, chromium, needs_chromium, serve, speech_then_silence

pytestmark = [needs_chromium, pytest.mark.interop, pytest.mark.models]

TOKEN = "models-t0ken"


def embedded() -> AgentProviders:
    from voxgate.audio.vad import SileroVad
    from voxgate.providers.models import ModelNotFoundError
    from voxgate.providers.registry import load_embedded

    try:
        loaded = load_embedded()
    except (ModelNotFoundError, ImportError) as exc:
        pytest.skip(f"embedded models not installed: {exc}")
    assert loaded.stt is not None and loaded.llm is not None and loaded.tts is not None
    return AgentProviders(loaded.stt, loaded.llm, loaded.tts, lambda: SileroVad(16000))


def mic(tmp: Path) -> Path:
    """Silence during the greeting, the question once, then a long quiet for the answer."""
    q = speech_then_silence("opening_hours.piper.16k.wav", 25.0, tmp / "q.wav")
    with wave.open(str(q)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    out = tmp / "mic.wav"
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.concatenate([np.zeros(16000 * 7, dtype="<i2"), pcm]).tobytes())
    return out


async def test_chromium_talks_to_embedded_agent(tmp_path: Path) -> None:
    providers = await asyncio.to_thread(embedded)
    agent = AgentApp(providers)
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    app = create_app(settings, CallManager(Router([], {"agent": lambda rule: agent})))
    app.state.webrtc_options = WebRtcOptions(ice=IcePolicy(addresses=("127.0.0.1",)))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with serve(app) as base, chromium(mic(tmp_path)) as browser:
        page = await browser.new_page()
        await page.goto(f"{base}/?token={TOKEN}&raw=1")
        await page.click("#call")
        await page.wait_for_function("() => window.voxgate.state === 'connected'", timeout=15000)
        await page.wait_for_function("() => window.voxgate.maxRemoteRms > 0.02", timeout=30000)
        await page.wait_for_function(
            # Whisper tiny sometimes hears "Saturday" as "set your day": any of the question's
            # content words shows the caller was transcribed.
            "() => window.voxgate.transcript.some(t => t.role === 'caller'"
            " && /saturday|open|time/i.test(t.text))",
            timeout=60000,
        )
        await page.wait_for_function(
            "() => { const t = window.voxgate.transcript; const i = t.findIndex(x => x.role === 'caller');"
            " return i >= 0 && t.slice(i + 1).some(x => x.role === 'agent' && x.text.length > 0); }",
            timeout=90000,
        )
        await page.wait_for_function(
            "() => window.voxgate.turns.some(t => t.heardMs !== undefined)", timeout=60000
        )
        state: dict[str, Any] = await page.evaluate(
            "() => JSON.parse(JSON.stringify(window.voxgate))"
        )
        await page.screenshot(path=str(ARTIFACTS / "chromium_embedded_agent.png"))
        print("embedded agent over WebRTC:", state["transcript"], state["turns"])
        session = agent.pipelines[0].session
        await page.click("#hangup")
        await wait_for(lambda: session.ended)
        assert session.end_reason == "caller_hangup"
