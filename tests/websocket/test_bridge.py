"""The bridge to external apps, over real loopback sockets, with the voxgate.client SDK."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from tests.websocket.helpers import (
    TOKEN,
    TwilioPlayback,
    clip,
    frames,
    make_app,
    media_msg,
    mulaw_chunks,
    serve,
    start_msg,
    tone,
)
from voxgate.audio.frame import AudioFrame
from voxgate.calls.manager import CallManager
from voxgate.calls.router import Router, RouteRule
from voxgate.calls.session import CallSession, MarkPlayed, UnsupportedControl
from voxgate.client import AppCall, CallerAudio, Dtmf
from voxgate.client import MarkPlayed as AppMarkPlayed
from voxgate.client import serve as app_serve
from voxgate.websocket.bridge import bridge_factory
from voxgate.websocket.config import WebSocketSettings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "external_app" / "repeat_app.py"


def load_example() -> object:
    spec = importlib.util.spec_from_file_location("repeat_app", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class InstantSink:
    """A sink that 'plays' instantly: marks are reported as soon as they are set."""

    def __init__(self, rate: int) -> None:
        self.sample_rate = rate
        self.session: CallSession | None = None
        self.written: list[AudioFrame] = []
        self.marks: list[str] = []
        self.clears = 0

    def write(self, frame: AudioFrame) -> None:
        self.written.append(frame)

    def clear(self) -> None:
        self.clears += 1

    def mark(self, name: str) -> None:
        self.marks.append(name)
        assert self.session is not None
        self.session.feed_event(MarkPlayed(name))


def local_session(rate: int = 16000) -> tuple[CallSession, InstantSink]:
    sink = InstantSink(rate)
    session = CallSession(
        edge="local",
        sink=sink,
        control=UnsupportedControl("local"),
        sample_rate=rate,
        caller="+1555",
        callee="ext",
    )
    sink.session = session
    return session, sink


async def test_twilio_caller_through_bridge_to_example_app() -> None:
    """Twilio -> /twilio/media -> route ws:// -> bridge (Twilio protocol) -> repeat app."""
    example = load_example()
    async with app_serve(example.repeat, port=0) as app_server:  # type: ignore[attr-defined]
        app_port = app_server.sockets[0].getsockname()[1]
        rule = RouteRule(app=f"ws://127.0.0.1:{app_port}/", protocol="twilio", name="ext")
        app, manager = make_app({})
        manager.router = Router([rule], {"websocket": bridge_factory(WebSocketSettings())})
        caller = np.concatenate([clip(), np.zeros(8000, np.int16)])
        chunks = mulaw_chunks(caller)
        playback = TwilioPlayback()
        received = bytearray()
        async with (
            serve(app) as port,
            connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws,
        ):

            async def reader() -> None:
                async for raw in ws:
                    msg = json.loads(raw)
                    playback.on_message(msg)
                    if msg["event"] == "media":
                        received.extend(base64.b64decode(msg["media"]["payload"]))

            task = asyncio.create_task(reader())
            await ws.send(start_msg())
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            seq = 1
            for i, chunk in enumerate(chunks, start=1):
                seq += 1
                await ws.send(media_msg(seq, i, chunk))
                await asyncio.sleep(max(0.0, t0 + i * 0.02 - loop.time()))
            # Let the reply arrive and "play", echoing its mark.
            for _ in range(200):
                playback.advance(0.05)
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
                if "repeat-1" in playback.marks_received and not playback._pending:
                    break
                await asyncio.sleep(0.05)
            await ws.send(
                json.dumps({"event": "stop", "sequenceNumber": str(seq + 1), "streamSid": "MZ1"})
            )
            await asyncio.wait_for(task, 5)
        assert playback.marks_received == ["repeat-1"]
        # The app repeated the utterance: about the clip's length came back (mu-law 8 kHz).
        speech = len(clip()) / 8000
        assert speech * 0.8 < len(received) / 8000 < speech + 1.0
        await asyncio.sleep(0.1)
        assert not manager.calls


async def test_native_bridge_audio_marks_dtmf_and_hangup() -> None:
    seen: list[object] = []

    async def app(call: AppCall) -> None:
        seen.append(call)
        async for event in call:
            seen.append(event)
            if (
                isinstance(event, CallerAudio)
                and sum(isinstance(e, CallerAudio) for e in seen) == 5
            ):
                await call.send_audio(tone(0.1, call.sample_rate))
                await call.mark("m1")
                await call.transcript("agent", "hello")
            if isinstance(event, AppMarkPlayed):
                await call.hangup("done talking")
                return

    async with app_serve(app, port=0, protocol="native") as server:
        port = server.sockets[0].getsockname()[1]
        manager = CallManager(
            Router(
                [RouteRule(app=f"ws://127.0.0.1:{port}/", protocol="native", name="ext")],
                {"websocket": bridge_factory(WebSocketSettings())},
            )
        )
        session, sink = local_session(16000)
        task = await manager.start(session)
        session.feed_event(
            __import__("voxgate.calls.session", fromlist=["DtmfReceived"]).DtmfReceived("4")
        )
        for frame in frames(tone(0.5, 16000), 16000):
            session.feed_audio(frame)
            await asyncio.sleep(0.005)
        await asyncio.wait_for(task, 10)
    call = seen[0]
    assert isinstance(call, AppCall) and call.sample_rate == 16000 and call.caller == "+1555"
    assert Dtmf("4") in seen
    assert AppMarkPlayed("m1") in seen
    assert sink.marks == ["m1"]
    assert sum(f.num_samples for f in sink.written) == 1600  # 0.1 s at 16 kHz
    assert session.end_reason == "done talking"


async def test_app_drop_reconnects_and_replays_buffered_audio() -> None:
    connections: list[list[dict[str, object]]] = []
    first_dropped = asyncio.Event()

    async def flaky(ws: ServerConnection) -> None:
        got: list[dict[str, object]] = []
        connections.append(got)
        async for raw in ws:
            got.append(json.loads(raw))
            media = [m for m in got if m["event"] == "media"]
            if len(connections) == 1 and len(media) == 10:
                first_dropped.set()
                ws.transport.abort()  # the app crashes mid-call
                return

    async with ws_serve(flaky, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        manager = CallManager(
            Router(
                [RouteRule(app=f"ws://127.0.0.1:{port}/", protocol="twilio", name="ext")],
                {"websocket": bridge_factory(WebSocketSettings(bridge_backoff_initial_s=0.2))},
            )
        )
        session, _ = local_session(8000)
        task = await manager.start(session)
        total = 60
        for frame in frames(tone(total * 0.02, 8000), 8000):
            session.feed_audio(frame)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        session.end("caller_hangup")
        await asyncio.wait_for(task, 10)
    assert len(connections) == 2
    second = connections[1]
    start = next(m for m in second if m["event"] == "start")
    assert start["start"]["customParameters"]["voxgate_reconnect"] == "1"  # type: ignore[index]
    media_first = sum(m["event"] == "media" for m in connections[0])
    media_second = sum(m["event"] == "media" for m in second)
    # Everything the first connection did not take was buffered and replayed.
    assert media_first + media_second >= total - 2
    assert second[-1]["event"] == "stop"
    assert session.end_reason == "caller_hangup"


async def test_unreachable_app_apologises_and_ends_app_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = WebSocketSettings(
        bridge_reconnect_limit_s=0.5, bridge_backoff_initial_s=0.05, bridge_backoff_max_s=0.1
    )
    secret = "Bearer very-secret-value"
    manager = CallManager(
        Router(
            [RouteRule(app="ws://127.0.0.1:9/nothing?token=abc", name="ext", auth_header=secret)],
            {"websocket": bridge_factory(settings)},
        )
    )
    session, sink = local_session(16000)
    task = await manager.start(session)
    await asyncio.wait_for(task, 10)
    assert session.end_reason == "app_unreachable"
    assert sink.marks == ["voxgate-apology"]
    played_s = sum(f.num_samples for f in sink.written) / 16000
    assert 1.0 < played_s < 1.5  # the three-beep tone
    assert secret not in caplog.text
    # The bridge redacts the URL's query (tokens live there). (calls.manager logs rule.app
    # verbatim; that is outside this package.)
    ours = "".join(r.getMessage() for r in caplog.records if r.name.startswith("voxgate.websocket"))
    assert "unreachable" in ours and "token=abc" not in ours


async def test_auth_header_is_sent_and_enforced(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    calls: list[AppCall] = []

    async def app(call: AppCall) -> None:
        calls.append(call)
        async for _ in call:
            pass

    settings = WebSocketSettings(bridge_reconnect_limit_s=0.3, bridge_backoff_initial_s=0.05)
    async with app_serve(app, port=0, auth_header="Bearer right") as server:
        port = server.sockets[0].getsockname()[1]
        for header, expected in (
            ("Bearer wrong", "app_unreachable"),
            ("Bearer right", "caller_hangup"),
        ):
            manager = CallManager(
                Router(
                    [RouteRule(app=f"ws://127.0.0.1:{port}/", name="ext", auth_header=header)],
                    {"websocket": bridge_factory(settings)},
                )
            )
            session, _ = local_session(8000)
            task = await manager.start(session)
            if expected == "caller_hangup":
                for _ in range(100):
                    if calls:
                        break
                    await asyncio.sleep(0.02)
                session.end("caller_hangup")
            await asyncio.wait_for(task, 10)
            assert session.end_reason == expected
    assert len(calls) == 1
    assert "Bearer right" not in caplog.text and "Bearer wrong" not in caplog.text
