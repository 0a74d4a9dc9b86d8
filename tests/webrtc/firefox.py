"""Headless Debian Firefox ESR driven over WebDriver BiDi (its built-in remote protocol).

Playwright's stock-Firefox channel (``channel="moz-firefox"``) sends BiDi commands Firefox ESR
does not implement (``emulation.setMediaFeaturesOverride``), and Playwright's own Firefox
build cannot be downloaded here, so this speaks the few BiDi commands a test needs over one
WebSocket: new session, navigate, evaluate (with user activation). Fake microphone: Firefox's
``media.navigator.streams.fake`` (a tone); loopback ICE candidates need
``media.peerconnection.ice.loopback``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

FIREFOX = Path("/usr/bin/firefox-esr")

needs_firefox = pytest.mark.skipif(
    not FIREFOX.exists(),
    reason="needs Debian firefox-esr at /usr/bin/firefox-esr (apt-get install firefox-esr)",
)

PREFS: dict[str, object] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    "media.autoplay.blocking_policy": 0,
    # Stay on loopback: no update checks, telemetry, captive-portal probes, remote settings.
    "app.update.enabled": False,
    "app.normandy.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "captivedetect.canonicalURL": "",
    "extensions.update.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "browser.newtabpage.enabled": False,
    "browser.startup.homepage_override.mstone": "ignore",
}


class BidiPage:
    def __init__(self, ws: Any, context: str) -> None:
        self._ws = ws
        self._context = context
        self._ids = itertools.count(10)

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return await _command(self._ws, next(self._ids), method, params)

    async def goto(self, url: str) -> None:
        await self.send(
            "browsingContext.navigate", {"context": self._context, "url": url, "wait": "complete"}
        )

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JS (awaiting promises, as a user gesture); returns the JSON-decoded value."""
        result = await self.send(
            "script.evaluate",
            {
                "expression": f"(async () => JSON.stringify(await ({expression})))()",
                "target": {"context": self._context},
                "awaitPromise": True,
                "userActivation": True,
            },
        )
        if result.get("type") == "exception":
            raise RuntimeError(f"page error: {result['exceptionDetails'].get('text')}")
        value = result["result"].get("value")
        return None if value is None else json.loads(value)

    async def wait_for(self, expression: str, limit_s: float = 15.0) -> None:
        async with asyncio.timeout(limit_s):
            while not await self.evaluate(expression):  # noqa: ASYNC110 (polling the page)
                await asyncio.sleep(0.05)

    async def screenshot(self, path: Path) -> None:
        import base64

        shot = await self.send("browsingContext.captureScreenshot", {"context": self._context})
        path.write_bytes(base64.b64decode(shot["data"]))  # noqa: ASYNC240 (tiny test artifact)


async def _command(ws: Any, id_: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps({"id": id_, "method": method, "params": params}))
    while True:
        msg = json.loads(await ws.recv())
        if msg.get("id") != id_:
            continue  # events
        if msg.get("type") == "error":
            raise RuntimeError(f"{method}: {msg.get('error')}: {msg.get('message')}")
        result: dict[str, Any] = msg["result"]
        return result


def _write_profile(profile: Path) -> None:
    profile.mkdir(parents=True, exist_ok=True)
    prefs = "".join(f'user_pref("{k}", {json.dumps(v)});\n' for k, v in PREFS.items())
    (profile / "user.js").write_text(prefs)


@contextlib.asynccontextmanager
async def firefox(profile: Path) -> AsyncIterator[BidiPage]:
    _write_profile(profile)
    proc = await asyncio.create_subprocess_exec(
        str(FIREFOX), "--headless", "--no-remote", "--profile", str(profile),
        "--remote-debugging-port", "0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            while True:
                line = (await proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("firefox exited before its remote agent started")
                found = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
                if found:
                    break
        drain = asyncio.create_task(_drain(proc.stderr))
        async with websockets.connect(found.group(1) + "/session", max_size=None) as ws:
            await _command(ws, 1, "session.new", {"capabilities": {}})
            tree = await _command(ws, 2, "browsingContext.getTree", {})
            yield BidiPage(ws, tree["contexts"][0]["context"])
            with contextlib.suppress(Exception):
                await _command(ws, 3, "browser.close", {})
        drain.cancel()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # our own child, by its pid
        await proc.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
