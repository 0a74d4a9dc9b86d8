"""PCM16 mono WAV files: test fixtures, prompts and call recordings.

Uses the stdlib ``wave`` module (PCM only, which is all voxgate reads or writes). Input is
normalised to what the rest of voxgate expects: mono int16 at the file's rate; other sample
widths are rejected with a clear error rather than converted, since a silent conversion of
8-bit or float audio usually hides a wrong file.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from os import PathLike

import numpy as np

from voxgate.audio.frame import FRAME_MS, AudioFrame, Pcm16

StrPath = str | PathLike[str]


class WavFormatError(ValueError):
    """A WAV file voxgate cannot read: not PCM, or not 16-bit."""


def read_wav(path: StrPath) -> tuple[Pcm16, int]:
    """Samples and rate of a 16-bit PCM WAV file; multi-channel files are averaged to mono."""
    try:
        with wave.open(str(path), "rb") as wav:
            width = wav.getsampwidth()
            channels = wav.getnchannels()
            rate = wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except wave.Error as exc:  # e.g. WAVE_FORMAT_IEEE_FLOAT, or not a RIFF file
        raise WavFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width != 2:
        raise WavFormatError(
            f"{path}: {8 * width}-bit samples; voxgate reads 16-bit PCM WAV only "
            f"(convert with e.g. `sox in.wav -b 16 out.wav`)"
        )
    samples = np.frombuffer(data, dtype="<i2").astype(np.int16)
    if channels > 1:
        usable = samples.shape[0] - samples.shape[0] % channels
        mixed = samples[:usable].reshape(-1, channels).astype(np.int32).mean(axis=1)
        samples = np.rint(mixed).astype(np.int16)
    return samples, rate


def write_wav(path: StrPath, pcm: Pcm16, rate: int) -> None:
    """Write PCM16 mono samples as a WAV file."""
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise TypeError(f"write_wav takes 1-D int16 samples, got {pcm.dtype} {pcm.shape}")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype("<i2", copy=False).tobytes())


def frames_from_pcm(
    pcm: Pcm16, rate: int, frame_ms: int = FRAME_MS, start_time: float = 0.0
) -> Iterator[AudioFrame]:
    """Cut samples into consecutive frames of ``frame_ms``; the last is padded with silence.

    Frames carry consecutive ``sequence`` numbers and ``timestamp = start_time + offset``, so
    a file can stand in for a live stream in tests and benchmarks.
    """
    size = rate * frame_ms // 1000
    if size <= 0:
        raise ValueError(f"frame_ms={frame_ms} gives no samples at {rate} Hz")
    for seq, start in enumerate(range(0, pcm.shape[0], size)):
        chunk = pcm[start : start + size]
        if chunk.shape[0] < size:
            chunk = np.concatenate([chunk, np.zeros(size - chunk.shape[0], dtype=np.int16)])
        yield AudioFrame(chunk, rate, timestamp=start_time + start / rate, sequence=seq)
