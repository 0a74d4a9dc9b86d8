"""The unit of audio that flows between edges, the core and the agent.

Every layer above the edges sees only ``AudioFrame``: PCM16 mono at a known rate, normally
20 ms long. Frames carry the time they were captured and optional per-stage timestamps so
the latency a caller experiences can be attributed to the stage that added it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME_MS = 20
"""Default frame duration in milliseconds across voxgate."""

SUPPORTED_RATES = (8000, 16000, 24000, 32000, 44100, 48000)

Pcm16 = npt.NDArray[np.int16]


@dataclass(slots=True, eq=False)
class AudioFrame:
    """A chunk of PCM16 mono audio.

    ``timestamp`` is the capture time in seconds on the monotonic clock of the edge that
    produced the frame (the arrival time for network audio). ``sequence`` counts frames of one
    stream. ``stamps`` maps a stage name to the time the frame passed it; it stays ``None``
    until a stage stamps it so unstamped frames allocate nothing extra.
    """

    samples: Pcm16
    sample_rate: int
    timestamp: float = 0.0
    sequence: int = 0
    stamps: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.sample_rate not in SUPPORTED_RATES:
            raise ValueError(
                f"sample_rate {self.sample_rate} not supported; use one of {SUPPORTED_RATES}"
            )
        if self.samples.dtype != np.int16 or self.samples.ndim != 1:
            raise ValueError(
                f"samples must be a 1-D int16 array, got {self.samples.dtype} with shape "
                f"{self.samples.shape}"
            )

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return float(self.samples.shape[0]) / self.sample_rate

    @property
    def duration_ms(self) -> float:
        return 1000.0 * float(self.samples.shape[0]) / self.sample_rate

    def stamp(self, stage: str, now: float) -> None:
        """Record that this frame passed ``stage`` at ``now`` (monotonic seconds)."""
        if self.stamps is None:
            self.stamps = {}
        self.stamps[stage] = now

    def to_bytes(self) -> bytes:
        """Little-endian PCM16, the byte layout of WAV files and most wire protocols."""
        return self.samples.astype("<i2", copy=False).tobytes()

    @classmethod
    def from_bytes(
        cls, data: bytes, sample_rate: int, timestamp: float = 0.0, sequence: int = 0
    ) -> AudioFrame:
        if len(data) % 2:
            raise ValueError(f"PCM16 needs an even number of bytes, got {len(data)}")
        samples = np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False)
        return cls(samples, sample_rate, timestamp, sequence)

    @classmethod
    def silence(
        cls,
        sample_rate: int,
        duration_ms: int = FRAME_MS,
        timestamp: float = 0.0,
        sequence: int = 0,
    ) -> AudioFrame:
        return cls(
            np.zeros(sample_rate * duration_ms // 1000, dtype=np.int16),
            sample_rate,
            timestamp,
            sequence,
        )

    def rms_dbfs(self) -> float:
        """Loudness relative to full scale; -inf-like floor of -120 dB for digital silence."""
        if self.samples.shape[0] == 0:
            return -120.0
        x = self.samples.astype(np.float32)
        rms = float(np.sqrt(np.mean(x * x)))
        if rms <= 0.0:
            return -120.0
        return 20.0 * float(np.log10(rms / 32768.0))
