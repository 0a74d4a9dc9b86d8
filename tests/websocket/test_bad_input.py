"""Misbehaving peers get a close code with a reason, are counted, and hurt no other call."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from tests.websocket.helpers import (
    TOKEN,
    EchoApp,
    Recorder,
    frames,
    make_app,
    media_msg,
    serve,
    start_msg,
    tone,
)
from voxgate.calls.session import CallSession
from voxgate.observability.metrics import PARSER_REJECTIONS


def rejections() -> float:
    return PARSER_REJECTIONS.labels(protocol="websocket")._value.get()


async def closed_with(ws: ClientConnection) -> tuple[int | None, str | None]:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code, ws.close_reason


@pytest.mark.parametrize(
    ("messages", "code", "reason"),
    [
        (["this is not json"], 1007, "not JSON"),
        ([start_msg(), '{"event":"teleport","streamSid":"MZ1"}'], 1008, "unknown event"),
        ([media_msg(2, 1, b"x")], 1008, "not allowed"),  # media before start
        ([start_msg(), '{"event":"media","streamSid":"MZ1","media":{}}'], 1007, "media.payload"),
        (
            [start_msg(), '{"event":"media","streamSid":"MZ1","media":{"payload":"%%%"}}'],
            1007,
            "base64",
        ),
        ([start_msg(), b"\x00\x01"], 1003, "binary"),
        ([start_msg(), "x" * 70000], 1009, "over 65536"),
    ],
)
@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "asgi"])
async def test_bad_input_closes_with_code_and_reason(
    messages: list[str | bytes], code: int, reason: str, fast: bool
) -> None:
    app, _ = make_app({"agent": EchoApp(Recorder())})
    before = rejections()
    async with (
        serve(app, fast=fast) as port,
        connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws,
    ):
        for m in messages:
            await ws.send(m)
        got_code, got_reason = await closed_with(ws)
    assert got_code == code and reason in (got_reason or "")
    assert rejections() == before + 1


async def test_over_size_frame_rejected_by_the_server_limit() -> None:
    """Frames over uvicorn's ws_max_size never reach the app: the protocol layer sends 1009."""
    app, _ = make_app({"agent": EchoApp(Recorder())})
    async with (
        serve(app, ws_max_size=100_000) as port,
        connect(f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}") as ws,
    ):
        await ws.send(start_msg())
        await ws.send("x" * 200_000)
        code, _ = await closed_with(ws)
    assert code == 1009


async def test_one_misbehaving_stream_does_not_disturb_another() -> None:
    rec = Recorder()
    app, manager = make_app({"agent": EchoApp(rec)}, max_dropped_frames=20, rate_burst_s=0.5)
    async with serve(app) as port:
        url = f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}"
        async with connect(url) as good, connect(url) as bad:
            await good.send(start_msg("MZgood", "CAgood"))
            await bad.send(start_msg("MZbad", "CAbad"))
            # The bad one floods 10 s of audio at once: far faster than real time.
            for i in range(500):
                await bad.send(media_msg(i + 2, i + 1, b"\x00" * 160, "MZbad"))
            bad_code, bad_reason = await closed_with(bad)
            # The good one still gets every frame echoed.
            for i in range(10):
                await good.send(media_msg(i + 2, i + 1, bytes([i]) * 160, "MZgood"))
            echoed = [json.loads(await asyncio.wait_for(good.recv(), 5)) for _ in range(10)]
            await good.send('{"event":"stop","streamSid":"MZgood"}')
            good_code, _ = await closed_with(good)
    assert (bad_code, bad_reason) == (4029, "audio faster than real time")
    assert good_code == 1000
    assert all(m["streamSid"] == "MZgood" for m in echoed)
    reasons = {s.metadata["stream_sid"]: s.end_reason for s in rec.sessions}
    assert reasons == {"MZbad": "too_fast", "MZgood": "caller_hangup"}
    bad_session = next(s for s in rec.sessions if s.metadata["stream_sid"] == "MZbad")
    # Only the burst allowance (0.5 s = 25 frames) got through before drops began.
    assert len(rec.audio[bad_session.call_id]) <= 26
    assert not manager.calls


class Talker:
    """An app that writes a long reply at once, faster than any network drains it."""

    name = "talker"

    def __init__(self) -> None:
        self.sessions: list[CallSession] = []

    async def run(self, session: CallSession) -> None:
        self.sessions.append(session)
        for frame in frames(tone(600.0), 8000):
            session.sink.write(frame)
        await session.wait_ended()


async def test_client_that_never_reads_is_closed_and_bounded() -> None:
    talker = Talker()
    app, manager = make_app({"agent": talker}, send_queue_max_messages=200)
    async with serve(app) as port:
        url = f"ws://127.0.0.1:{port}/twilio/media?token={TOKEN}"
        # max_queue=1: the client library stops reading from the socket after one frame.
        async with connect(url, max_queue=1) as lazy:
            await lazy.send(start_msg())
            for _ in range(200):
                if talker.sessions and talker.sessions[0].ended:
                    break
                await asyncio.sleep(0.05)
            session = talker.sessions[0]
            assert session.end_reason == "send_overflow"
            lazy.transport.abort()
    assert not manager.calls


async def test_native_edge_requires_token_and_echoes_pcm() -> None:
    rec = Recorder()
    app, _ = make_app({"agent": EchoApp(rec)})
    async with serve(app) as port:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(f"ws://127.0.0.1:{port}/v1/stream"):
                pass
        assert info.value.response.status_code == 403
        url = f"ws://127.0.0.1:{port}/v1/stream?token={TOKEN}"
        async with connect(url) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "hello",
                        "version": 1,
                        "formats": [{"encoding": "pcm16", "sample_rate": 16000}],
                        "call": {"caller": "browser", "callee": "demo"},
                    }
                )
            )
            ready = json.loads(await ws.recv())
            assert ready["type"] == "ready" and ready["format"]["sample_rate"] == 16000
            pcm = tone(0.04, 16000)
            await ws.send(pcm.tobytes())
            back = b""
            while len(back) < pcm.nbytes:
                back += await asyncio.wait_for(ws.recv(), 5)  # type: ignore[operator]
            assert np.array_equal(np.frombuffer(back, "<i2"), pcm)
            await ws.send('{"type":"stop","reason":"done"}')
            code, _ = await closed_with(ws)
        assert code == 1000
    assert rec.sessions[0].end_reason == "done"
    assert rec.sessions[0].sample_rate == 16000 and rec.sessions[0].callee == "demo"
