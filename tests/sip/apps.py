"""Small in-test CallApps for the SIP edge tests: echo, tone greeting, recorders, control."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import numpy as np

from voxgate.audio.frame import AudioFrame
from voxgate.calls.manager import CallManager
from voxgate.calls.router import Router
from voxgate.calls.session import CallEvent, CallSession, DtmfReceived, HoldChanged, MarkPlayed


def tone(rate: int, ms: int, hz: float = 440.0, level: float = 0.3) -> AudioFrame:
    t = np.arange(rate * ms // 1000) / rate
    return AudioFrame((level * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16), rate)


def rms(samples: np.ndarray) -> float:
    x = samples.astype(np.float64) / 32768.0
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * rate / samples.size)


class RecordingApp:
    """Base: records caller audio and events; ``act`` runs alongside (greeting, control)."""

    name = "test"

    def __init__(self) -> None:
        self.sessions: list[CallSession] = []
        self.events: list[CallEvent] = []
        self.frames = 0
        self.loud_frames = 0
        self.audio: list[np.ndarray] = []
        self.keep_audio = False
        self.started = asyncio.Event()
        self.errors: list[BaseException] = []

    @property
    def digits(self) -> str:
        return "".join(e.digit for e in self.events if isinstance(e, DtmfReceived))

    @property
    def holds(self) -> list[bool]:
        return [e.on_hold for e in self.events if isinstance(e, HoldChanged)]

    @property
    def marks(self) -> list[str]:
        return [e.name for e in self.events if isinstance(e, MarkPlayed)]

    async def act(self, session: CallSession) -> None:
        return None

    def on_frame(self, session: CallSession, frame: AudioFrame) -> None:
        return None

    async def run(self, session: CallSession) -> None:
        self.sessions.append(session)
        self.started.set()

        async def listen() -> None:
            async for frame in session.audio():
                self.frames += 1
                if np.abs(frame.samples).max(initial=0) > 1000:
                    self.loud_frames += 1
                if self.keep_audio:
                    self.audio.append(frame.samples.copy())
                self.on_frame(session, frame)

        async def watch() -> None:
            async for event in session.events():
                self.events.append(event)

        async def act() -> None:
            try:
                await self.act(session)
            except Exception as exc:  # recorded for the test to assert on
                self.errors.append(exc)

        tasks = [asyncio.create_task(c) for c in (listen(), watch(), act())]
        try:
            await session.wait_ended()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class EchoApp(RecordingApp):
    """Sends every caller frame straight back."""

    name = "echo"

    def on_frame(self, session: CallSession, frame: AudioFrame) -> None:
        session.sink.write(frame)


class ToneApp(RecordingApp):
    """Plays a tone greeting (with a mark); optionally hangs up after it was played."""

    name = "tone"

    def __init__(self, ms: int = 1500, hz: float = 440.0, hangup_after: bool = False) -> None:
        super().__init__()
        self.ms, self.hz, self.hangup_after = ms, hz, hangup_after

    async def act(self, session: CallSession) -> None:
        session.sink.write(tone(session.sink.sample_rate, self.ms, self.hz))
        session.sink.mark("greeting")
        if self.hangup_after:
            while "greeting" not in self.marks:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            await session.control.hangup()


class ControlApp(RecordingApp):
    """Runs ``script(session)`` once the call is up (transfer, hold, DTMF...)."""

    name = "control"

    def __init__(self, script: Callable[[CallSession], Awaitable[None]]) -> None:
        super().__init__()
        self.script = script

    async def act(self, session: CallSession) -> None:
        await self.script(session)


def manager_for(app: object) -> CallManager:
    return CallManager(Router([], {"agent": lambda rule: app}))  # type: ignore[dict-item]


async def wait_for(predicate: Callable[[], object], limit_s: float = 10.0) -> None:
    """Poll until true; tests assert outcomes, never durations."""
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
