"""Real-browser harness: uvicorn on a free loopback port, headless Debian Chromium with a
fake microphone, driven by Playwright (async, in the test's own event loop so the test can
inspect the server's call objects directly). Recipe documented in tests/interop/README.md."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI

CHROMIUM = Path("/usr/bin/chromium")
AUDIO = Path("/work/shared/audio")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "webrtc"

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian chromium at /usr/bin/chromium (apt-get install chromium; "
    "`make test` installs it via scripts/install_peers.sh)",
)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


def speech_then_silence(name: str, silence_s: float, out: Path) -> Path:
    """A fake-mic WAV: one utterance, then quiet (Chromium loops the file)."""
    with wave.open(str(AUDIO / name)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    pcm = np.concatenate([pcm, np.zeros(int(rate * silence_s), dtype="<i2")])
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 (uvicorn exposes only a flag)
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def chromium(mic_wav: Path) -> AsyncIterator[Any]:
    """A browser (Playwright gives it a fresh, empty profile directory)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={mic_wav}"],
        )
        try:
            yield browser
        finally:
            with contextlib.suppress(Exception):
                await browser.close()


def chromium_pids() -> list[int]:
    """Chromium processes descended from this test process (ours to kill, by id)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents[int(entry.name)] = ppid
        names[int(entry.name)] = comm
    me = os.getpid()

    def descends(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            pid = parents.get(pid, 0)
            if pid == me:
                return True
            seen += 1
        return False

    return [p for p, n in names.items() if "chrom" in n and descends(p)]


def kill_chromium() -> int:
    pids = chromium_pids()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)
