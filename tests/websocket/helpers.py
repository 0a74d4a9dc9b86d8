"""Test helpers: a real uvicorn server on loopback, test apps, and a Twilio simulator."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from voxgate.api.app import create_app
from voxgate.audio.frame import AudioFrame, Pcm16
from voxgate.audio.g711 import ulaw_encode
from voxgate.audio.wav import read_wav
from voxgate.calls.manager import CallManager
from voxgate.calls.router import CallApp, Router, RouteRule
from voxgate.calls.session import CallEvent, CallSession, MarkPlayed
from voxgate.config import load_settings
from voxgate.websocket.config import WebSocketSettings
from voxgate.websocket.fastpath import media_ws_protocol

TOKEN = "test-token-123"
AUDIO = Path(__file__).resolve().parents[3] / "shared" / "audio"
if not AUDIO.is_dir():
    AUDIO = Path("/work/shared/audio")


def clip(name: str = "yes.piper.8k.wav") -> Pcm16:
    pcm, rate = read_wav(AUDIO / name)
    assert rate == 8000
    return pcm


def tone(seconds: float, rate: int = 8000, freq: float = 440.0, level: float = 0.3) -> Pcm16:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype(np.int16)


def frames(pcm: Pcm16, rate: int = 8000, ms: int = 20) -> list[AudioFrame]:
    n = rate * ms // 1000
    return [AudioFrame(pcm[i : i + n], rate) for i in range(0, len(pcm) - n + 1, n)]


# --- apps ----------------------------------------------------------------------------


@dataclass
class Recorder:
    sessions: list[CallSession] = field(default_factory=list)
    audio: dict[str, list[AudioFrame]] = field(default_factory=dict)
    events: dict[str, list[CallEvent]] = field(default_factory=dict)
    started: asyncio.Event = field(default_factory=asyncio.Event)


class EchoApp:
    """Copies caller audio back; records what it got."""

    name = "echo"

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    async def run(self, session: CallSession) -> None:
        self.rec.sessions.append(session)
        self.rec.audio[session.call_id] = got = []
        self.rec.started.set()
        async for frame in session.audio():
            got.append(frame)
            session.sink.write(frame)


class ScriptedAgent:
    """Speaks three clauses with a mark after each; clears on caller speech (barge-in)."""

    name = "scripted"

    def __init__(self, rec: Recorder, clauses: Sequence[tuple[str, float]]) -> None:
        self.rec = rec
        self.clauses = clauses
        self.barged_in = asyncio.Event()

    async def run(self, session: CallSession) -> None:
        self.rec.sessions.append(session)
        self.rec.audio[session.call_id] = heard = []
        self.rec.events[session.call_id] = events = []
        self.rec.started.set()
        rate = session.sink.sample_rate
        for name, seconds in self.clauses:
            for frame in frames(tone(seconds, rate), rate):
                session.sink.write(frame)
            session.sink.mark(name)

        async def listen() -> None:
            loud = 0
            async for frame in session.audio():
                heard.append(frame)
                loud = loud + 1 if frame.rms_dbfs() > -40 else 0
                if loud >= 5 and not self.barged_in.is_set():
                    session.sink.clear()
                    self.barged_in.set()

        task = asyncio.create_task(listen())
        async for event in session.events():
            events.append(event)
        await task


def played(events: Sequence[CallEvent]) -> list[str]:
    return [e.name for e in events if isinstance(e, MarkPlayed)]


# --- server --------------------------------------------------------------------------


def make_app(
    apps: dict[str, CallApp], rules: Sequence[RouteRule] = (), **ws: Any
) -> tuple[FastAPI, CallManager]:
    settings = load_settings()
    settings.auth.api_tokens = [SecretStr(TOKEN)]
    object.__setattr__(settings, "websocket", WebSocketSettings(**ws))
    factories = {kind: (lambda rule, app=app: app) for kind, app in apps.items()}
    manager = CallManager(Router(list(rules), factories))  # type: ignore[arg-type]
    return create_app(settings, manager), manager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve(
    app: Any, ws_max_size: int = 1 << 20, fast: bool = True, **config: Any
) -> AsyncIterator[int]:
    """Run ``app`` under uvicorn on a free loopback port for the duration of the block.

    ``fast``: with the media fast path, as ``voxgate serve`` runs it (``/twilio/media``
    outside ASGI); ``False`` serves every socket through the ASGI routes."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    ws: Any = media_ws_protocol(app) if fast else "websockets-sansio"
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", lifespan="off", ws_max_size=ws_max_size, ws=ws, **config
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        sock.close()


# --- a Twilio stand-in -----------------------------------------------------------------


def start_msg(stream_sid: str = "MZ1", call_sid: str = "CA1", **params: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "accountSid": "AC1",
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": params,
            },
            "streamSid": stream_sid,
        }
    )


def media_msg(seq: int, chunk: int, payload: bytes, stream_sid: str = "MZ1") -> str:
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(chunk * 20),
                "payload": base64.b64encode(payload).decode(),
            },
            "streamSid": stream_sid,
        }
    )


class TwilioPlayback:
    """Twilio's side of playback: buffers received media, plays it at real time, echoes marks
    when the play head reaches them, and on ``clear`` empties the buffer and echoes every
    pending mark at once (what Twilio does)."""

    def __init__(self) -> None:
        self.queued_s = 0.0
        self.received_media = 0
        self.marks_received: list[str] = []
        self.clears = 0
        self.to_echo: list[str] = []
        self._pending: list[tuple[float, str]] = []  # (audio position, name)
        self._position = 0.0  # seconds of audio received in total
        self._played = 0.0

    def on_message(self, msg: dict[str, Any]) -> None:
        event = msg["event"]
        if event == "media":
            self.received_media += 1
            self._position += len(base64.b64decode(msg["media"]["payload"])) / 8000
        elif event == "mark":
            self.marks_received.append(msg["mark"]["name"])
            self._pending.append((self._position, msg["mark"]["name"]))
        elif event == "clear":
            self.clears += 1
            self._played = self._position
            self.to_echo.extend(name for _, name in self._pending)
            self._pending.clear()

    def advance(self, seconds: float) -> None:
        self._played = min(self._position, self._played + seconds)
        while self._pending and self._pending[0][0] <= self._played + 1e-9:
            self.to_echo.append(self._pending.pop(0)[1])


def mulaw_chunks(pcm: Pcm16) -> list[bytes]:
    return [ulaw_encode(pcm[i : i + 160]) for i in range(0, len(pcm) - 159, 160)]
