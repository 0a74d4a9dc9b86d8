"""Voice activity detection behind one small protocol.

Two detectors with different costs (measured, see ``embedded-models.md`` and
``bench/codecs.py``): WebRTC's GMM VAD at a few microseconds per frame, a coarse first gate;
Silero's neural VAD through onnxruntime at tens of microseconds per 32 ms window, accurate
enough for end-of-turn decisions. Both turn 20 ms :class:`AudioFrame`\\ s into a speech
probability; turning probabilities into turns is the agent's job (pure state machines there).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from voxgate.audio.frame import AudioFrame


class VoiceActivityDetector(Protocol):
    """Per-stream detector: keeps the state of one audio stream."""

    def process(self, frame: AudioFrame) -> float:
        """Speech probability (0..1) for the audio up to the end of ``frame``."""
        ...

    def reset(self) -> None:
        """Forget the stream (start of a new call or after a long gap)."""
        ...


class WebRtcVad:
    """WebRTC VAD (``webrtcvad-wheels``): a yes/no per 10, 20 or 30 ms frame.

    ``aggressiveness`` 0-3: higher rejects more non-speech (and more quiet speech). Frames of
    other lengths are cut into 10 ms pieces and the share of speech pieces returned.
    """

    RATES = (8000, 16000, 32000, 48000)

    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        if not 0 <= aggressiveness <= 3:
            raise ValueError(f"aggressiveness must be 0-3, got {aggressiveness}")
        self.aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)

    def process(self, frame: AudioFrame) -> float:
        rate = frame.sample_rate
        if rate not in self.RATES:
            raise ValueError(f"WebRTC VAD takes {self.RATES} Hz, got {rate}; resample first")
        n = frame.num_samples
        data = frame.to_bytes()
        if n * 1000 in (10 * rate, 20 * rate, 30 * rate):
            return 1.0 if self._vad.is_speech(data, rate) else 0.0
        step = rate // 100
        pieces = n // step
        if pieces == 0:
            return 0.0
        hits = sum(
            bool(self._vad.is_speech(data[2 * i * step : 2 * (i + 1) * step], rate))
            for i in range(pieces)
        )
        return hits / pieces

    def reset(self) -> None:
        # The C state adapts its noise model over time; a fresh object is the only reset.
        import webrtcvad

        self._vad = webrtcvad.Vad(self.aggressiveness)


def find_silero_model() -> tuple[Path, str]:
    """Path and flavour (``"silero"`` or ``"v6"``) of a Silero VAD ONNX model.

    Looks in the ``silero-vad`` wheel without importing it (its ``__init__`` imports torch),
    then in faster-whisper's bundled ``assets/silero_vad_v6.onnx`` (16 kHz only).
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            path = Path(location) / "data" / "silero_vad.onnx"
            if path.is_file():
                return path, "silero"
    spec = importlib.util.find_spec("faster_whisper")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "assets" / "silero_vad_v6.onnx"
        if path.is_file():
            return path, "v6"
    raise FileNotFoundError(
        "Silero VAD model not found: install it with `pip install --no-deps silero-vad` "
        "(the wheel carries silero_vad/data/silero_vad.onnx; --no-deps avoids torch) or "
        "install faster-whisper, which bundles assets/silero_vad_v6.onnx"
    )


@lru_cache(maxsize=4)
def _session(path: str) -> Any:
    """One onnxruntime session per model file, shared by every stream of the process.

    ``run`` is thread-safe and the recurrent state lives in each :class:`SileroVad`, so
    sharing saves the load time and memory per call. One thread per run: VAD runs per frame
    on a machine shared with codecs and models, where intra-op threads only add contention.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


class SileroVad:
    """Silero VAD (ONNX) for one stream at 8 or 16 kHz.

    The model scores windows of 512 samples at 16 kHz (256 at 8 kHz), each preceded by the
    last 64 (32) samples of the previous window as context, and carries a recurrent state
    between windows. 20 ms frames do not divide into windows, so samples are buffered:
    :meth:`process` runs every window completed by the frame and returns the probability of
    the latest window (the previous value when the frame completed none).
    """

    def __init__(self, sample_rate: int = 16000, model_path: str | Path | None = None) -> None:
        if model_path is None:
            path, flavour = find_silero_model()
        else:
            path = Path(model_path)
            flavour = "v6" if "v6" in path.name else "silero"
        if sample_rate not in (8000, 16000):
            raise ValueError(f"Silero VAD takes 8000 or 16000 Hz, got {sample_rate}")
        if flavour == "v6" and sample_rate != 16000:
            raise ValueError(
                f"{path.name} (faster-whisper's copy) is 16 kHz only; install silero-vad "
                "(`pip install --no-deps silero-vad`) for 8 kHz"
            )
        self.sample_rate = sample_rate
        self.model_path = path
        self._flavour = flavour
        self._session = _session(str(path))
        self.window = 512 if sample_rate == 16000 else 256
        self._context_len = 64 if sample_rate == 16000 else 32
        self._sr = np.array(sample_rate, dtype=np.int64)
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(self._context_len, dtype=np.float32)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._prob = 0.0

    def process(self, frame: AudioFrame) -> float:
        if frame.sample_rate != self.sample_rate:
            raise ValueError(
                f"SileroVad set up for {self.sample_rate} Hz got a {frame.sample_rate} Hz frame"
            )
        samples = frame.samples.astype(np.float32) / 32768.0
        pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        w = self.window
        start = 0
        while pending.shape[0] - start >= w:
            self._prob = self._run(pending[start : start + w])
            start += w
        self._pending = pending[start:].copy()
        return self._prob

    def _run(self, window: npt.NDArray[np.float32]) -> float:
        x = np.concatenate([self._context, window])[None, :]
        self._context = window[-self._context_len :].copy()
        if self._flavour == "v6":
            probs, self._h, self._c = self._session.run(
                None, {"input": x, "h": self._h, "c": self._c}
            )
            return float(np.asarray(probs).reshape(-1)[-1])
        out, self._state = self._session.run(
            None, {"input": x, "state": self._state, "sr": self._sr}
        )
        return float(np.asarray(out).reshape(-1)[0])

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self._context[:] = 0.0
        self._state[:] = 0.0
        self._h[:] = 0.0
        self._c[:] = 0.0
        self._prob = 0.0
