"""Small in-test CallApps and aiortc client helpers for the WebRTC edge tests."""

from __future__ import annotations

import asyncio
import fractions
from collections.abc import Callable

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from voxgate.audio.frame import AudioFrame
from voxgate.calls.manager import CallManager
from voxgate.calls.router import Router, RouteRule
from voxgate.calls.session import CallSession, MarkPlayed
from voxgate.webrtc import events


def tone(rate: int, ms: int, hz: float = 440.0, level: float = 0.3) -> AudioFrame:
    t = np.arange(rate * ms // 1000) / rate
    pcm = (level * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return AudioFrame(pcm, rate)


class GreeterApp:
    """Greets with a tone (marked), publishes a transcript, measures the caller's energy.

    With ``hangup_after_greeting`` it hangs up once the greeting mark comes back, the way an
    agent ends a call after its goodbye.
    """

    name = "greeter"

    def __init__(self, greeting_ms: int = 1000, hangup_after_greeting: bool = False) -> None:
        self.greeting_ms = greeting_ms
        self.hangup_after_greeting = hangup_after_greeting
        self.sessions: list[CallSession] = []
        self.max_rms = 0.0
        self.frames = 0
        self.marks: list[str] = []
        self.caller_rms: list[float] = []

    async def run(self, session: CallSession) -> None:
        self.sessions.append(session)
        session.sink.write(tone(session.sink.sample_rate, self.greeting_ms))
        session.sink.mark("greeting")
        events.publish(
            session, {"type": "transcript", "role": "agent", "text": "Hello!", "final": True}
        )
        audio = asyncio.create_task(self._listen(session))
        async for event in session.events():
            if isinstance(event, MarkPlayed):
                self.marks.append(event.name)
                if self.hangup_after_greeting:
                    await session.control.hangup()
        await audio

    async def _listen(self, session: CallSession) -> None:
        async for frame in session.audio():
            assert frame.sample_rate == session.sample_rate
            assert frame.num_samples == session.sample_rate // 50
            self.frames += 1
            x = frame.samples.astype(np.float64) / 32768.0
            rms = float(np.sqrt(np.mean(x * x)))
            self.caller_rms.append(rms)
            self.max_rms = max(self.max_rms, rms)


def manager_for(app: object) -> CallManager:
    return CallManager(Router([], {"agent": lambda rule: app}))  # type: ignore[dict-item]


def manager_without_route() -> CallManager:
    return CallManager(
        Router(
            [RouteRule(app="agent", callee="known")],
            {"agent": lambda r: GreeterApp()},
            default=None,
        )
    )  # type: ignore[dict-item]


class ToneTrack(MediaStreamTrack):
    """A 48 kHz stereo 300 Hz tone paced in real time, like a browser microphone.

    ``stall()`` makes it stop producing frames, so no RTP leaves: a network that went quiet.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start: float | None = None
        self._stalled = asyncio.Event()
        t = np.arange(960) / 48000
        mono = (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
        self._pcm = np.repeat(mono, 2).reshape(1, -1)

    def stall(self) -> None:
        self._stalled.set()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._stalled.is_set():
            await asyncio.Event().wait()
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        delay = self._start + self._pts / 48000 - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.AudioFrame.from_ndarray(self._pcm, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._pts += 960
        return frame


class Received:
    """Collects the RMS of audio a client peer connection receives."""

    def __init__(self) -> None:
        self.max_rms = 0.0
        self.frames = 0
        self.first_loud = asyncio.Event()

    async def consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            x = frame.to_ndarray().astype(np.float64) / 32768.0
            rms = float(np.sqrt(np.mean(x * x)))
            self.frames += 1
            self.max_rms = max(self.max_rms, rms)
            if rms > 0.05:
                self.first_loud.set()


async def wait_for(predicate: Callable[[], object], limit_s: float = 10.0) -> None:
    """Poll ``predicate()`` until true (tests assert outcomes, never durations)."""
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110 (the states polled have no events to await)
            await asyncio.sleep(0.02)


__all__ = [
    "GreeterApp",
    "Received",
    "RTCPeerConnection",
    "ToneTrack",
    "manager_for",
    "tone",
    "wait_for",
]
