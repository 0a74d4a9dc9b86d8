"""Calls from headless Chromium (fake microphone) to the edge: the real interop tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from voxgate.api.app import create_app
from voxgate.config import load_settings
from voxgate.webrtc._ice import IcePolicy
from voxgate.webrtc._peer import WebRtcOptions
from voxgate.webrtc.edge import edge_of

from .apps import GreeterApp, manager_for, wait_for
from .browser import ARTIFACTS, chromium, kill_chromium, needs_chromium, serve, speech_then_silence

pytestmark = [needs_chromium, pytest.mark.interop]

TOKEN = "browser-t0ken"


def make_app(greeter: GreeterApp, **options: Any) -> Any:
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    app = create_app(settings, manager_for(greeter))
    app.state.webrtc_options = WebRtcOptions(ice=IcePolicy(addresses=("127.0.0.1",)), **options)
    return app


@pytest.fixture
def mic(tmp_path: Path) -> Path:
    return speech_then_silence("opening_hours.piper.16k.wav", 3.0, tmp_path / "mic.wav")


async def page_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate("() => JSON.parse(JSON.stringify(window.voxgate))")
    return state


async def start_call(page: Any, base: str, query: str = "") -> None:
    await page.goto(f"{base}/?token={TOKEN}&raw=1{query}")
    await page.click("#call")
    await page.wait_for_function("() => window.voxgate.state === 'connected'", timeout=15000)


async def test_chromium_call_greeting_caller_audio_and_hangup(mic: Path) -> None:
    greeter = GreeterApp(greeting_ms=1500)
    app = make_app(greeter)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with serve(app) as base, chromium(mic) as browser:
        page = await browser.new_page()
        await start_call(page, base)
        # The greeting arrives as real audio energy in the received track (WebAudio RMS).
        await page.wait_for_function("() => window.voxgate.maxRemoteRms > 0.05", timeout=10000)
        # The fake microphone's speech reaches the server as 16 kHz frames with energy...
        await wait_for(lambda: greeter.max_rms > 0.03)
        # ...and its silence as silence: it is the file we played, not noise.
        await wait_for(
            lambda: len(greeter.caller_rms) > 150 and min(greeter.caller_rms[-50:]) < 0.003, 15
        )
        await page.wait_for_selector("#transcript li.agent")
        state = await page_state(page)
        assert state["codec"].lower().startswith("opus/48000")
        assert state["firstAudioMs"] is not None and state["transcript"][0]["text"] == "Hello!"
        assert any(e["type"] == "speaking" for e in state["events"])
        await page.screenshot(path=str(ARTIFACTS / "chromium_call_connected.png"))
        session = greeter.sessions[0]
        await page.click("#hangup")
        await wait_for(lambda: session.ended)
        assert session.end_reason == "caller_hangup"
        await page.wait_for_function("() => window.voxgate.state === 'ended'")
        await page.screenshot(path=str(ARTIFACTS / "chromium_call_ended.png"))
        await wait_for(lambda: not edge_of(app).calls)


async def test_chromium_pcmu_fallback(mic: Path) -> None:
    greeter = GreeterApp()
    async with serve(make_app(greeter)) as base, chromium(mic) as browser:
        page = await browser.new_page()
        await start_call(page, base, "&codec=pcmu")
        await page.wait_for_function("() => window.voxgate.maxRemoteRms > 0.05", timeout=10000)
        await wait_for(lambda: greeter.max_rms > 0.03)
        assert (await page_state(page))["codec"] == "PCMU/8000"
        # Mute: the track keeps sending (no media timeout) but only silence reaches the app.
        await page.click("#mute")
        muted_from = len(greeter.caller_rms) + 10  # frames already in flight
        await wait_for(lambda: len(greeter.caller_rms) > muted_from + 300, 20)  # > one mic loop
        assert max(greeter.caller_rms[muted_from:]) < 0.003
        assert not greeter.sessions[0].ended
        await page.click("#mute")
        unmuted_from = len(greeter.caller_rms) + 10
        await wait_for(lambda: max(greeter.caller_rms[unmuted_from:], default=0.0) > 0.03, 20)
        await page.close()  # closing the tab is a hang-up too
        await wait_for(lambda: greeter.sessions[0].ended)
        assert greeter.sessions[0].end_reason == "caller_hangup"


async def test_agent_hangup_shows_on_the_page(mic: Path) -> None:
    greeter = GreeterApp(greeting_ms=500, hangup_after_greeting=True)
    async with serve(make_app(greeter)) as base, chromium(mic) as browser:
        page = await browser.new_page()
        await start_call(page, base)
        await page.wait_for_function(
            "() => window.voxgate.reason === 'agent_hangup'", timeout=10000
        )
        assert greeter.sessions[0].end_reason == "agent_hangup"
        assert "agent_hangup" in (await page.text_content("#status") or "")


async def test_killed_browser_ends_call_with_media_timeout(mic: Path) -> None:
    greeter = GreeterApp()
    app = make_app(greeter, media_timeout_s=1.5)
    async with serve(app) as base, chromium(mic) as browser:
        page = await browser.new_page()
        await start_call(page, base)
        await wait_for(lambda: greeter.frames > 10)
        assert kill_chromium() > 0  # no goodbye: no DTLS close, no data channel close
        await wait_for(lambda: greeter.sessions[0].ended)
        assert greeter.sessions[0].end_reason == "media_timeout"
        assert browser is not None
