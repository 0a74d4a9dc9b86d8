"""WAV read/write and framing."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from tests.audio.conftest import AUDIO_DIR
from voxgate.audio.wav import WavFormatError, frames_from_pcm, read_wav, write_wav


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    write_wav(tmp_path / "a.wav", pcm, 16000)
    back, rate = read_wav(tmp_path / "a.wav")
    assert rate == 16000
    assert back.dtype == np.int16 and back.tolist() == pcm.tolist()


def test_stereo_is_downmixed(tmp_path: Path) -> None:
    left = np.array([1000, -2000, 300], dtype=np.int16)
    right = np.array([3000, 2000, 301], dtype=np.int16)
    with wave.open(str(tmp_path / "s.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.stack([left, right], axis=1).astype("<i2").tobytes())
    mono, rate = read_wav(tmp_path / "s.wav")
    assert rate == 8000
    assert mono.tolist() == [2000, 0, 300]  # 300.5 rounds half to even


def test_rejects_8_bit(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "b.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(80))
    with pytest.raises(WavFormatError, match="8-bit"):
        read_wav(tmp_path / "b.wav")


def test_rejects_non_wav(tmp_path: Path) -> None:
    (tmp_path / "x.wav").write_bytes(b"not a riff file at all")
    with pytest.raises(WavFormatError, match="not a PCM WAV"):
        read_wav(tmp_path / "x.wav")


def test_reads_the_shared_speech() -> None:
    path = AUDIO_DIR / "yes.piper.8k.wav"
    if not path.exists():
        pytest.skip(f"{path} not present")
    pcm, rate = read_wav(path)
    assert rate == 8000 and pcm.shape[0] > 1600


def test_frames_cover_the_input_and_pad_the_last() -> None:
    pcm = np.arange(1, 401, dtype=np.int16)  # 50 ms at 8 kHz
    frames = list(frames_from_pcm(pcm, 8000, start_time=10.0))
    assert [f.num_samples for f in frames] == [160, 160, 160]
    assert [f.sequence for f in frames] == [0, 1, 2]
    assert [f.timestamp for f in frames] == pytest.approx([10.0, 10.02, 10.04])
    joined = np.concatenate([f.samples for f in frames])
    assert joined[:400].tolist() == pcm.tolist()
    assert not np.any(joined[400:])


def test_frames_of_exact_multiple_are_not_padded() -> None:
    frames = list(frames_from_pcm(np.ones(640, dtype=np.int16), 16000, frame_ms=20))
    assert len(frames) == 2 and all(f.sample_rate == 16000 for f in frames)
