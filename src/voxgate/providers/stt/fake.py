"""A scriptable streaming STT for fast, deterministic agent-pipeline tests (no model).

It cannot hear: the words come from a script, the audio only drives timing. Usage::

    stt = FakeSTT(["Book me a cleaning on Tuesday", "Yes please"], partial_every_ms=300)
    stream = stt.stream()
    for frame in frames: stream.push_frame(frame)   # partials: one more word every 300 ms of audio
    stream.flush()                                  # final: "Book me a cleaning on Tuesday"
    async for t in stream: ...

Contract shared with ``WhisperSTT`` (so pipeline tests transfer): every ``flush()`` produces
exactly one final ``Transcript`` (text may be ``""`` when the script is exhausted), after the
partials of that utterance; word timings and ``start``/``end`` are seconds of audio pushed to
the stream. Each ``stream()`` starts the script from its first utterance. Items in the script
may be ``FakeUtterance`` to set a confidence; ``repeat=True`` cycles through the script
instead of running out. Timing: ``final_latency`` seconds between
``flush()`` and the final. Failures: ``fault=Fault(...)``, where ``after`` counts transcripts
of the stream (per-stream arming, ``times`` counts streams). Inspection: ``streams`` holds every
stream opened; each has ``frames``, ``audio_seconds``, ``sample_rates`` and ``closed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from voxgate.audio.frame import AudioFrame
from voxgate.providers._fault import Fault, FaultState, trigger
from voxgate.providers.base import Transcript, WordTiming


@dataclass(frozen=True, slots=True)
class FakeUtterance:
    text: str
    confidence: float = 0.9


class FakeSTTStream:
    """One stream of ``FakeSTT``; implements ``voxgate.providers.base.STTStream``."""

    def __init__(self, owner: FakeSTT, fault: Fault | None) -> None:
        self._owner = owner
        self._fault = fault
        self._queue: asyncio.Queue[tuple[Transcript, float] | None] = asyncio.Queue()
        self._index = 0
        self._utt_start = 0.0
        self._since_partial = 0.0
        self._partial_words = 0
        self.frames = 0
        self.audio_seconds = 0.0
        self.sample_rates: set[int] = set()
        self.closed = False

    def _current(self) -> FakeUtterance | None:
        script = self._owner.utterances
        if self._owner.repeat and script:
            return script[self._index % len(script)]
        return script[self._index] if self._index < len(script) else None

    def push_frame(self, frame: AudioFrame) -> None:
        if self.closed:
            return
        self.frames += 1
        self.sample_rates.add(frame.sample_rate)
        self.audio_seconds += frame.duration
        self._since_partial += frame.duration
        every = self._owner.partial_every_ms / 1000.0
        utt = self._current()
        if utt is None or every <= 0 or self._since_partial < every:
            return
        self._since_partial = 0.0
        words = utt.text.split()
        if self._partial_words < len(words):
            self._partial_words += 1
            text = " ".join(words[: self._partial_words])
            partial = Transcript(text, False, None, (), self._utt_start, self.audio_seconds)
            self._queue.put_nowait((partial, 0.0))

    def flush(self) -> None:
        if self.closed:
            return
        utt = self._current()
        self._index += 1
        start, end = self._utt_start, self.audio_seconds
        text = utt.text if utt else ""
        words = text.split()
        step = (end - start) / len(words) if words else 0.0
        timings = tuple(
            WordTiming(w, start + i * step, start + (i + 1) * step, utt.confidence if utt else None)
            for i, w in enumerate(words)
        )
        final = Transcript(text, True, utt.confidence if utt else None, timings, start, end)
        self._queue.put_nowait((final, self._owner.final_latency))
        self._utt_start = self.audio_seconds
        self._since_partial = 0.0
        self._partial_words = 0

    async def __aiter__(self) -> AsyncIterator[Transcript]:
        produced = 0
        await trigger(self._fault, produced)
        while (item := await self._queue.get()) is not None:
            transcript, delay = item
            if delay:
                await asyncio.sleep(delay)
            yield transcript
            produced += 1
            await trigger(self._fault, produced)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)


class FakeSTT:
    """Implements ``voxgate.providers.base.StreamingSTT`` from a script; see module docstring."""

    def __init__(
        self,
        utterances: Sequence[FakeUtterance | str] = (),
        *,
        sample_rate: int = 16000,
        partial_every_ms: int = 300,
        final_latency: float = 0.0,
        fault: Fault | None = None,
        name: str = "fake-stt",
        repeat: bool = False,
    ) -> None:
        self.name = name
        self.repeat = repeat
        self.sample_rate = sample_rate
        self.utterances = [FakeUtterance(u) if isinstance(u, str) else u for u in utterances]
        self.partial_every_ms = partial_every_ms
        self.final_latency = final_latency
        self._fault = FaultState(fault)
        self.streams: list[FakeSTTStream] = []

    def stream(self, *, language: str | None = None) -> FakeSTTStream:
        s = FakeSTTStream(self, self._fault.arm())
        self.streams.append(s)
        return s
