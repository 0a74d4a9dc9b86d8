"""The talk page in headless Firefox ESR: connects, hears the greeting, sends its
microphone, hangs up (driven over WebDriver BiDi, see firefox.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from voxgate.api.app import create_app
from voxgate.config import load_settings
from voxgate.webrtc._ice import IcePolicy
from voxgate.webrtc._peer import WebRtcOptions

from .apps import GreeterApp, manager_for, wait_for
from .browser import ARTIFACTS, serve
from .firefox import firefox, needs_firefox

pytestmark = [needs_firefox, pytest.mark.interop]

TOKEN = "firefox-t0ken"


async def test_firefox_call_greeting_caller_audio_and_hangup(tmp_path: Path) -> None:
    greeter = GreeterApp(greeting_ms=1500)
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    app = create_app(settings, manager_for(greeter))
    app.state.webrtc_options = WebRtcOptions(ice=IcePolicy(addresses=("127.0.0.1",)))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with serve(app) as base, firefox(tmp_path / "profile") as page:
        await page.goto(f"{base}/?token={TOKEN}&raw=1")
        await page.evaluate("document.getElementById('call').click()")
        await page.wait_for("window.voxgate.state === 'connected' || window.voxgate.error")
        assert await page.evaluate("window.voxgate.error") is None
        await page.wait_for("window.voxgate.maxRemoteRms > 0.05")
        await wait_for(lambda: greeter.max_rms > 0.01)
        codec = await page.evaluate("window.voxgate.codec")
        assert codec.lower().startswith("opus/48000")
        await page.wait_for("document.querySelectorAll('#transcript li.agent').length > 0")
        await page.screenshot(ARTIFACTS / "firefox_call_connected.png")
        await page.evaluate("document.getElementById('hangup').click()")
        await wait_for(lambda: greeter.sessions[0].ended)
        assert greeter.sessions[0].end_reason == "caller_hangup"
