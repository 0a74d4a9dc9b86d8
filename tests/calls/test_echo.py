"""The echo app and the direct audio hand-off (``CallSession.listen``) it is built on."""

from __future__ import annotations

import asyncio

import numpy as np

from voxgate.audio.frame import AudioFrame
from voxgate.calls.echo import EchoApp, echo_factory
from voxgate.calls.manager import CallManager
from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.router import Router, RouteRule
from voxgate.calls.session import CallSession, UnsupportedControl
from voxgate.config import RouteSettings


def frame(value: int) -> AudioFrame:
    return AudioFrame(np.full(160, value, dtype=np.int16), 8000)


def new_session() -> CallSession:
    return CallSession(
        edge="local", sink=PlayoutBuffer(8000), control=UnsupportedControl("local"), sample_rate=8000
    )


def test_listen_delivers_queued_frames_first_then_direct() -> None:
    async def main() -> None:
        s = new_session()
        s.feed_audio(frame(1))
        s.feed_audio(frame(2))
        got: list[int] = []
        s.listen(lambda f: got.append(int(f.samples[0])))
        assert got == [1, 2]
        s.feed_audio(frame(3))
        assert got == [1, 2, 3]  # no queue, no task switch: delivered inside feed_audio
        assert s.received_frames == 3 and s.dropped_frames == 0

    asyncio.run(main())


def test_listener_that_raises_ends_only_its_call() -> None:
    async def main() -> None:
        bad, good = new_session(), new_session()

        def explode(f: AudioFrame) -> None:
            raise ValueError("app bug")

        got: list[AudioFrame] = []
        bad.listen(explode)
        good.listen(got.append)
        bad.feed_audio(frame(1))  # must not propagate into the edge
        good.feed_audio(frame(1))
        assert bad.ended and bad.end_reason == "app_error"
        assert not good.ended and len(got) == 1
        bad.feed_audio(frame(2))  # after the end: ignored
        assert bad.received_frames == 1

    asyncio.run(main())


def test_listen_after_end_keeps_end_marker_for_audio_consumers() -> None:
    async def main() -> None:
        s = new_session()
        s.end("hangup")
        s.listen(lambda f: None)
        frames = [f async for f in s.audio()]
        assert frames == []

    asyncio.run(main())


def test_echo_route_plays_caller_audio_back_bit_exact() -> None:
    async def main() -> None:
        router = Router([RouteRule(app="echo", callee="echo-test")], {"echo": echo_factory})
        manager = CallManager(router)
        s = new_session()
        s.callee = "echo-test"
        task = await manager.start(s)
        await asyncio.sleep(0.01)
        sent = [frame(v) for v in (5, -7, 1234)]
        for f in sent:
            s.feed_audio(f)
        sink = s.sink
        assert isinstance(sink, PlayoutBuffer)
        out = []
        for _ in sent:
            pcm, _marks = sink.pull()
            assert pcm is not None
            out.append(pcm.copy())
        assert [int(o[0]) for o in out] == [5, -7, 1234]
        s.end("caller_hangup")
        await asyncio.wait_for(task, 2)
        assert s.route == "echo"

    asyncio.run(main())


def test_echo_app_name_and_config() -> None:
    assert EchoApp().name == "echo"
    assert RouteSettings(app="echo").app == "echo"
