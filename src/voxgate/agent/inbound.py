"""Caller audio as the agent needs it: 16 kHz, exact 20 ms frames, each with a VAD score.

Edges deliver 8 kHz (phone), 16 kHz or 48 kHz (WebRTC); VAD and STT want one rate. The
resampler is chosen for latency, not only quality: every millisecond it holds back delays the
end-of-speech decision, which the caller hears as response time. Upsampling (8 -> 16 kHz)
uses soxr's "QQ" cubic filter, which streams sample-for-sample (no aliasing can arise going
up); downsampling uses "LQ", which is anti-aliased and holds back about one frame. A FIFO
then re-cuts the output into exact frames because soxr emits uneven chunk sizes.

Synchronous and cheap (tens of microseconds per frame): it runs inside the frame handler.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from voxgate.audio.frame import AudioFrame, Pcm16
from voxgate.audio.resample import StreamResampler

__all__ = ["AGENT_RATE", "InboundAudio", "Vad"]

AGENT_RATE = 16000


class Vad(Protocol):
    """Structural twin of ``voxgate.audio.vad.VoiceActivityDetector`` (process only)."""

    def process(self, frame: AudioFrame) -> float: ...


class InboundAudio:
    """Resample + re-frame + VAD for one caller stream."""

    def __init__(self, vad: Vad, *, rate: int = AGENT_RATE, frame_ms: int = 20) -> None:
        self.vad = vad
        self.rate = rate
        self.frame_samples = rate * frame_ms // 1000
        self._resampler: StreamResampler | None = None
        self._fifo: Pcm16 = np.zeros(0, dtype=np.int16)
        self._sequence = 0

    def _resample(self, frame: AudioFrame) -> Pcm16:
        if frame.sample_rate == self.rate:
            return frame.samples
        rs = self._resampler
        if rs is None or rs.in_rate != frame.sample_rate:
            up = frame.sample_rate < self.rate
            rs = StreamResampler(frame.sample_rate, self.rate, "QQ" if up else "LQ")
            self._resampler = rs
        return rs.process(frame.samples)

    def process(self, frame: AudioFrame) -> list[tuple[AudioFrame, float]]:
        """Frames at ``rate`` (usually exactly one) with their speech probability."""
        pcm = self._resample(frame)
        if self._fifo.shape[0] == 0 and pcm.shape[0] == self.frame_samples:
            chunks = [pcm]  # fast path: no re-framing needed
        else:
            buf = np.concatenate([self._fifo, pcm]) if self._fifo.shape[0] else pcm
            n = buf.shape[0] // self.frame_samples
            chunks = [buf[i * self.frame_samples : (i + 1) * self.frame_samples] for i in range(n)]
            self._fifo = buf[n * self.frame_samples :].copy()
        out: list[tuple[AudioFrame, float]] = []
        for chunk in chunks:
            f = AudioFrame(chunk, self.rate, frame.timestamp, self._sequence)
            self._sequence += 1
            out.append((f, self.vad.process(f)))
        return out
