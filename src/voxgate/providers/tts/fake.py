"""A scriptable TTS for fast, deterministic agent-pipeline tests (no model).

It speaks a pure tone: non-silent (so VAD, echo and playback-progress logic see "speech"),
deterministic, and long in proportion to the text, so "how much of the reply was heard"
can be computed in tests. Usage::

    tts = FakeTTS(sample_rate=16000, seconds_per_char=0.06, chunk_ms=200, ttfb=0.05)
    async for chunk in tts.synthesize("Hello there. How are you?"):
        ...  # AudioChunk(pcm, 16000, text) per sentence piece

The text is split into sentences as ``PiperTTS`` splits it (``tts._text``); each sentence gives ``ceil(duration / chunk_ms)`` chunks,
the first tagged with the sentence text and the rest with ``""`` (the ``AudioChunk``
contract). Timing: ``ttfb`` before the first chunk, ``realtime_factor`` x the chunk's audio
duration before each later chunk (0 = as fast as possible). Failures: ``fault=Fault(...)``.
Inspection: ``requests`` (every text asked for), ``cancelled``, ``failed``, ``completed``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import numpy as np

from voxgate.audio.frame import Pcm16
from voxgate.providers._fault import Fault, FaultState, trigger
from voxgate.providers.base import AudioChunk
from voxgate.providers.tts._text import split_sentences

__all__ = ["FakeTTS", "split_sentences"]


class FakeTTS:
    """Implements ``voxgate.providers.base.TTS`` with a tone; see the module docstring."""

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        seconds_per_char: float = 0.06,
        chunk_ms: int = 200,
        ttfb: float = 0.0,
        realtime_factor: float = 0.0,
        tone_hz: float = 440.0,
        amplitude: int = 8000,
        fault: Fault | None = None,
        name: str = "fake-tts",
    ) -> None:
        self.name = name
        self.sample_rate = sample_rate
        self.seconds_per_char = seconds_per_char
        self.chunk_ms = chunk_ms
        self.ttfb = ttfb
        self.realtime_factor = realtime_factor
        self.tone_hz = tone_hz
        self.amplitude = amplitude
        self._fault = FaultState(fault)
        self.requests: list[str] = []
        self.cancelled = 0
        self.failed = 0
        self.completed = 0

    def duration_of(self, text: str) -> float:
        """Seconds of audio this fake produces for ``text`` (for assertions)."""
        return sum(len(s) for s in split_sentences(text)) * self.seconds_per_char

    def _tone(self, start_sample: int, n: int) -> Pcm16:
        t = (np.arange(start_sample, start_sample + n, dtype=np.float64)) / self.sample_rate
        return (self.amplitude * np.sin(2 * np.pi * self.tone_hz * t)).astype(np.int16)

    def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        self.requests.append(text)
        return self._stream(text, self._fault.arm())

    async def _stream(self, text: str, fault: Fault | None) -> AsyncIterator[AudioChunk]:
        produced = 0
        position = 0
        chunk_samples = self.sample_rate * self.chunk_ms // 1000
        try:
            if self.ttfb:
                await asyncio.sleep(self.ttfb)
            await trigger(fault, produced)
            for sentence in split_sentences(text):
                total = round(len(sentence) * self.seconds_per_char * self.sample_rate)
                for i in range(max(1, math.ceil(total / chunk_samples))):
                    n = max(0, min(chunk_samples, total - i * chunk_samples))
                    if produced and self.realtime_factor:
                        await asyncio.sleep(self.realtime_factor * n / self.sample_rate)
                    yield AudioChunk(
                        self._tone(position, n), self.sample_rate, sentence if i == 0 else ""
                    )
                    position += n
                    produced += 1
                    await trigger(fault, produced)
        except (GeneratorExit, asyncio.CancelledError):
            self.cancelled += 1
            raise
        except Exception:
            self.failed += 1
            raise
        else:
            self.completed += 1
