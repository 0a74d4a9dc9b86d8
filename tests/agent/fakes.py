"""Shared helpers for pipeline tests: synthetic caller audio, an energy VAD, fake providers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from voxgate.agent.inbound import Vad
from voxgate.agent.pipeline import AgentProviders
from voxgate.audio.frame import AudioFrame, Pcm16
from voxgate.providers.base import LLM, TTS
from voxgate.providers.llm.fake import FakeLLM, FakeReply
from voxgate.providers.stt.fake import FakeSTT, FakeUtterance
from voxgate.providers.tts.fake import FakeTTS


class EnergyVad:
    """Speech = louder than -40 dBFS: exact on synthetic audio, so tests stay deterministic."""

    def process(self, frame: AudioFrame) -> float:
        return 1.0 if frame.rms_dbfs() > -40.0 else 0.0


def speech(ms: int, rate: int = 16000, seed: int = 0) -> Pcm16:
    """A voice-like signal (harmonics with a syllable-rate envelope) that never drops to silence."""
    n = rate * ms // 1000
    t = np.arange(n) / rate
    rng = np.random.default_rng(seed)
    f0 = 120 + 20 * rng.random()
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    env = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 4 * t))
    return (4000 * env * x).astype(np.int16)


def silence(ms: int, rate: int = 16000) -> Pcm16:
    return np.zeros(rate * ms // 1000, dtype=np.int16)


def providers(
    stt: Sequence[FakeUtterance | str],
    llm: Mapping[str, FakeReply | str] | LLM,
    *,
    default: str = "Sorry, I did not catch that.",
    tts: TTS | None = None,
    final_latency: float = 0.0,
    vad: type[Vad] = EnergyVad,
) -> AgentProviders:
    return AgentProviders(
        stt=FakeSTT(stt, final_latency=final_latency),
        llm=FakeLLM.from_rules(llm, default=default) if isinstance(llm, Mapping) else llm,
        tts=tts or FakeTTS(sample_rate=24000, seconds_per_char=0.05),
        vad_factory=vad,
    )
