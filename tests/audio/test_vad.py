"""VADs on the shared speech, on digital silence and on low noise."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tests.audio.conftest import speech
from voxgate.audio.frame import AudioFrame
from voxgate.audio.vad import SileroVad, VoiceActivityDetector, WebRtcVad, find_silero_model
from voxgate.audio.wav import frames_from_pcm

try:
    _MODEL, _FLAVOUR = find_silero_model()
except FileNotFoundError as exc:
    _MODEL, _FLAVOUR, _MISSING = None, "", str(exc)
else:
    _MISSING = ""

needs_silero = pytest.mark.skipif(_MODEL is None, reason=f"Silero model missing: {_MISSING}")
needs_8k_silero = pytest.mark.skipif(
    _FLAVOUR != "silero", reason="8 kHz needs silero_vad.onnx from the silero-vad wheel"
)

Factory = Callable[[int], VoiceActivityDetector]
DETECTORS: list[tuple[str, Factory]] = [
    ("webrtc", lambda rate: WebRtcVad(2)),
    ("silero", lambda rate: SileroVad(rate)),
]


def _probs(vad: VoiceActivityDetector, pcm: np.ndarray, rate: int) -> np.ndarray:
    return np.array([vad.process(f) for f in frames_from_pcm(pcm, rate)])


def _skip_unavailable(kind: str, rate: int) -> None:
    if kind == "silero" and _MODEL is None:
        pytest.skip(f"Silero model missing: {_MISSING}")
    if kind == "silero" and rate == 8000 and _FLAVOUR != "silero":
        pytest.skip("8 kHz needs silero_vad.onnx from the silero-vad wheel")


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize(("kind", "factory"), DETECTORS)
@pytest.mark.parametrize("utterance", ["opening_hours.piper", "cancel.espeak"])
def test_speech_detected_and_surrounding_silence_not(
    kind: str, factory: Factory, rate: int, utterance: str
) -> None:
    _skip_unavailable(kind, rate)
    words = speech(utterance, rate)
    gap = np.zeros(rate, dtype=np.int16)
    probs = _probs(factory(rate), np.concatenate([gap, words, gap]), rate)
    lead, body = probs[:45], probs[50 : 50 + len(words) * 50 // rate]
    loud = np.array([f.rms_dbfs() > -35 for f in frames_from_pcm(words, rate)][: body.shape[0]])
    assert float(lead.max()) < 0.5
    assert float(np.mean(body[loud] > 0.5)) > 0.8  # loud speech frames are speech
    assert float(probs[-35:].max()) < 0.5  # back to silence after the utterance


@pytest.mark.parametrize(("kind", "factory"), DETECTORS)
def test_low_noise_is_not_speech(kind: str, factory: Factory) -> None:
    _skip_unavailable(kind, 16000)
    rng = np.random.default_rng(1)
    noise = np.rint(rng.normal(0, 30, 16000 * 3)).astype(np.int16)  # about -60 dBFS
    probs = _probs(factory(16000), noise, 16000)
    assert float(np.mean(probs > 0.5)) < 0.05


def test_webrtc_handles_all_rates_and_frame_lengths() -> None:
    vad = WebRtcVad(3)
    for rate in (8000, 16000, 32000, 48000):
        for ms in (10, 20, 30, 40):
            frame = AudioFrame.silence(rate, ms)
            assert vad.process(frame) == 0.0
    with pytest.raises(ValueError, match="resample"):
        vad.process(AudioFrame.silence(44100))


@needs_silero
def test_silero_state_is_per_stream_and_reset_restores_it() -> None:
    words = speech("opening_hours.piper", 16000)
    frames = list(frames_from_pcm(words, 16000))[:60]
    a, b = SileroVad(16000), SileroVad(16000)
    first = []
    for f in frames:  # another stream interleaved on another object does not disturb it
        first.append(a.process(f))
        b.process(AudioFrame.silence(16000))
    alone = [SileroVad(16000).process(f) for f in frames[:1]]
    assert alone[0] == pytest.approx(first[0], abs=1e-5)
    a.reset()
    again = [a.process(f) for f in frames]
    assert np.allclose(first, again, atol=1e-5)


@needs_silero
@needs_8k_silero
def test_silero_window_sizes() -> None:
    assert SileroVad(16000).window == 512
    assert SileroVad(8000).window == 256
    with pytest.raises(ValueError, match="8000 or 16000"):
        SileroVad(48000)


def test_missing_model_error_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from voxgate.audio import vad

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps silero-vad"):
        vad.find_silero_model()


def test_faster_whisper_v6_model_when_present() -> None:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or spec.origin is None:
        pytest.skip("faster-whisper not installed")
    path = Path(spec.origin).parent / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    gap = np.zeros(16000, dtype=np.int16)
    pcm = np.concatenate([gap, speech("opening_hours.piper", 16000), gap])
    probs = _probs(SileroVad(16000, model_path=path), pcm, 16000)
    assert float(probs[:45].max()) < 0.5
    assert float(probs.max()) > 0.9
    with pytest.raises(ValueError, match="16 kHz only"):
        SileroVad(8000, model_path=path)
