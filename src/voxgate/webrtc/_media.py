"""Audio between aiortc tracks and a ``CallSession``: inbound conversion, paced playout.

Inbound: aiortc decodes Opus to 48 kHz *stereo* s16 frames (PCMU to 8 kHz mono). The core
wants mono PCM16 in exact 20 ms frames. We convert with PyAV's ``AudioResampler``
(libswresample): aiortc already hands us ``av.AudioFrame``s, and one C call downmixes,
resamples and re-frames to exactly 20 ms (``frame_size``) with no Python FIFO and no burst
latency (soxr's HQ stream filter releases output in ~100 ms bursts, see
``voxgate.audio.resample``).

The session rate is 16 kHz by default: every embedded STT and VAD runs at 16 kHz, so 48 kHz
would triple the per-frame cost of every stage above the edge for no gain in what they hear.

Outbound: :class:`PlayoutTrack` is the ``MediaStreamTrack`` aiortc's RTP sender pulls from.
It paces itself to real time (aiortc sends whatever ``recv`` returns immediately), pulls one
20 ms frame per tick from a :class:`~voxgate.calls.playout.PlayoutBuffer` (silence when idle),
and reports the marks a pull reached.

For Opus calls the track hands aiortc ready-made packets (``av.Packet``) encoded on the event
loop by ``voxgate.audio.opus`` at the playout rate, mono, 32 kbps. aiortc would otherwise
resample every frame to 48 kHz stereo, encode it at 96 kbps in its thread-pool executor, and
compute an RTP audio level in Python: the executor hop is a GIL hand-off per frame per call,
which under load shows up as late packets (see bench/RESULTS.md). For PCMU, frames go to
aiortc's G.711 encoder, which resamples to 8 kHz itself.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from voxgate.audio.frame import FRAME_MS, AudioFrame
from voxgate.audio.opus import OpusEncoder
from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.session import CallSession, MarkPlayed

log = logging.getLogger(__name__)


class InboundConverter:
    """aiortc/PyAV audio frames of any rate and layout -> mono PCM16 20 ms ``AudioFrame``s."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = sample_rate * FRAME_MS // 1000
        self._resampler = av.AudioResampler(
            format="s16", layout="mono", rate=sample_rate, frame_size=self.frame_samples
        )
        self._sequence = 0

    def convert(self, frame: av.AudioFrame, now: float) -> list[AudioFrame]:
        out: list[AudioFrame] = []
        for converted in self._resampler.resample(frame):
            samples = converted.to_ndarray().reshape(-1).astype(np.int16, copy=False)
            out.append(AudioFrame(samples, self.sample_rate, now, self._sequence))
            self._sequence += 1
        return out


async def pump_inbound(
    track: MediaStreamTrack,
    session: CallSession,
    on_frame: Callable[[float], None] | None = None,
) -> None:
    """Feed a remote audio track into the session until the track or the call ends.

    ``on_frame`` gets the monotonic arrival time of every decoded frame (the edge's media
    watchdog uses it to notice a network that went silent).
    """
    converter = InboundConverter(session.sample_rate)
    while not session.ended:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        now = time.monotonic()
        if on_frame is not None:
            on_frame(now)
        if not isinstance(frame, av.AudioFrame):
            continue
        for converted in converter.convert(frame, now):
            session.feed_audio(converted)


class PlayoutTrack(MediaStreamTrack):
    """The agent's voice as an aiortc track: real-time paced pulls from a ``PlayoutBuffer``.

    ``on_marks`` receives the marks each pull reached; ``on_speaking`` is told when playout
    starts and (after ``hangover_ms`` of idle, so a short gap between two TTS chunks does
    not flicker the page's "agent speaking" light) when it stops.
    """

    kind = "audio"

    def __init__(
        self,
        buffer: PlayoutBuffer,
        on_marks: Callable[[list[str]], None],
        on_speaking: Callable[[bool], None] | None = None,
        hangover_ms: int = 200,
    ) -> None:
        super().__init__()
        self.buffer = buffer
        self.sample_rate = buffer.sample_rate
        self.frame_samples = buffer.frame_samples
        self._on_marks = on_marks
        self._on_speaking = on_speaking
        self._hangover_frames = max(1, hangover_ms // FRAME_MS)
        self._idle_frames = 0
        self._speaking = False
        self._time_base = fractions.Fraction(1, self.sample_rate)
        self._silence = np.zeros((1, self.frame_samples), dtype=np.int16)
        self._start: float | None = None
        self._pts = 0
        self.frames_sent = 0
        self.late_frames = 0
        """Frames produced more than one frame period after their due time (CPU starved)."""
        self.first_audio_at: float | None = None
        """Monotonic time the first non-idle frame left the buffer (benchmarks read it)."""
        self._opus: OpusEncoder | None = None

    def encode_opus(self, bitrate: int = 32000) -> None:
        """Send pre-encoded Opus packets from now on (call once Opus is negotiated)."""
        self._opus = OpusEncoder(self.sample_rate, bitrate=bitrate)

    async def recv(self) -> av.AudioFrame | av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            due = self._start + self._pts / self.sample_rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -FRAME_MS / 1000:
                self.late_frames += 1  # a full frame behind: the far end's jitter buffer pays
            if delay < -0.2:
                # The loop stalled for longer than a jitter buffer absorbs: re-anchor instead
                # of bursting the backlog out at wire speed.
                self._start = loop.time() - self._pts / self.sample_rate
        pcm, marks = self.buffer.pull()
        self._track_speaking(pcm is not None)
        if marks:
            self._on_marks(marks)
        data = self._silence if pcm is None else pcm.reshape(1, -1)
        out: av.AudioFrame | av.Packet[Any]
        if self._opus is not None:
            out = av.Packet(self._opus.encode(data[0]))
        else:
            out = av.AudioFrame.from_ndarray(data, format="s16", layout="mono")
            out.sample_rate = self.sample_rate
        out.pts = self._pts
        out.time_base = self._time_base
        self._pts += self.frame_samples
        self.frames_sent += 1
        return out

    def _track_speaking(self, playing: bool) -> None:
        if playing:
            self._idle_frames = 0
            if self.first_audio_at is None:
                self.first_audio_at = time.monotonic()
            if not self._speaking:
                self._speaking = True
                if self._on_speaking is not None:
                    self._on_speaking(True)
            return
        if self._speaking:
            self._idle_frames += 1
            if self._idle_frames >= self._hangover_frames:
                self._speaking = False
                if self._on_speaking is not None:
                    self._on_speaking(False)


def marks_to_session(session: CallSession) -> Callable[[list[str]], None]:
    def report(marks: list[str]) -> None:
        for name in marks:
            session.feed_event(MarkPlayed(name))

    return report
