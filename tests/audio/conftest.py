"""Shared helpers for the audio tests: the speech fixtures in /work/shared/audio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soxr

from voxgate.audio.frame import Pcm16
from voxgate.audio.wav import read_wav

AUDIO_DIR = Path(os.environ.get("VOXGATE_TEST_AUDIO", "/work/shared/audio"))


def speech(name: str = "opening_hours.piper", rate: int = 16000) -> Pcm16:
    """A test utterance at ``rate`` (resampled from the 16 kHz file when needed)."""
    tag = "8k" if rate == 8000 else "16k"
    path = AUDIO_DIR / f"{name}.{tag}.wav"
    if not path.exists():
        pytest.skip(f"test speech {path} not present")
    pcm, file_rate = read_wav(path)
    if file_rate != rate:
        pcm = soxr.resample(pcm, file_rate, rate)
    return np.asarray(pcm, dtype=np.int16)


def best_lag_corr(out: Pcm16, ref: Pcm16, max_lag: int) -> tuple[int, float]:
    """Delay of ``out`` behind ``ref`` (0..max_lag) with the highest correlation."""
    best = (0, -1.0)
    a, b = out.astype(np.float64), ref.astype(np.float64)
    for lag in range(max_lag + 1):
        n = min(a.shape[0] - lag, b.shape[0])
        c = float(np.corrcoef(a[lag : lag + n], b[:n])[0, 1])
        if c > best[1]:
            best = (lag, c)
    return best
