"""Answering-machine detection from the first seconds of audio, sans-I/O.

People answer with a short word ("Hello?") and then wait; a machine plays a long greeting
and ends it with a beep. So the classifier looks at three things per 20 ms frame: energy
(speech or silence), and tone purity (a beep is one sustained frequency, speech never is):

- a sustained pure tone near 1 kHz (the beep)                  -> MACHINE ("beep")
- continuous speech longer than ``max_greeting_s`` (2.5 s)     -> MACHINE ("long_greeting")
- speech, then ``after_greeting_silence_s`` (0.8 s) of silence -> HUMAN ("short_greeting")
- nothing but silence for ``initial_silence_s``                -> UNKNOWN ("silence")
- no decision after ``max_analysis_s``                         -> UNKNOWN ("timeout")

Pauses shorter than ``after_greeting_silence_s`` are bridged: a greeting's pauses between
phrases do not split it. The decision carries the audio time it was made at, which is
how long the callee waited for us.

:class:`MessageCue` drives the leave-a-message behaviour: once a machine is detected, play
the message after the beep, or after the greeting ends in silence when there is no beep.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["AmdConfig", "AmdDetector", "AmdResult", "MessageCue", "Verdict", "frame_features"]


class Verdict(enum.Enum):
    HUMAN = "human"
    MACHINE = "machine"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class AmdResult:
    verdict: Verdict
    reason: str
    decided_at_s: float
    """Audio time (from the first frame) at which the decision was made."""


@dataclass(frozen=True, slots=True)
class AmdConfig:
    frame_ms: int = 20
    speech_dbfs: float = -40.0
    """Frames louder than this are speech (telephone noise floors sit near -60 dBFS)."""
    max_greeting_s: float = 2.5
    after_greeting_silence_s: float = 0.8
    initial_silence_s: float = 3.5
    max_analysis_s: float = 5.0
    beep_low_hz: float = 800.0
    beep_high_hz: float = 1250.0
    beep_purity: float = 0.75
    """Fraction of a frame's energy in the peak's +-1 FFT bins for it to count as a tone."""
    beep_min_s: float = 0.12
    beep_dbfs: float = -35.0


def frame_features(samples: npt.NDArray[np.int16], sample_rate: int) -> tuple[float, float, float]:
    """(level dBFS, peak frequency Hz, tone purity 0-1) of one frame."""
    x = samples.astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    dbfs = 20.0 * np.log10(rms) if rms > 1e-9 else -120.0
    if rms <= 1e-9:
        return dbfs, 0.0, 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    spectrum[0] = 0.0
    total = float(spectrum.sum())
    peak = int(np.argmax(spectrum))
    near = float(spectrum[max(0, peak - 1) : peak + 2].sum())
    return dbfs, peak * sample_rate / len(x), near / total if total > 0 else 0.0


class _Framer:
    """Cuts arbitrary-length input into fixed frames (edges deliver 20 ms, files do not)."""

    def __init__(self, frame_ms: int) -> None:
        self.frame_ms = frame_ms
        self._rest = np.zeros(0, dtype=np.int16)

    def frames(self, samples: npt.NDArray[np.int16], sample_rate: int) -> list[npt.NDArray[np.int16]]:
        n = sample_rate * self.frame_ms // 1000
        data = np.concatenate([self._rest, samples]) if len(self._rest) else samples
        count = len(data) // n
        self._rest = data[count * n :].copy()
        return [data[i * n : (i + 1) * n] for i in range(count)]


class _ToneRun:
    """Counts consecutive tone frames at a stable frequency (a beep does not glide)."""

    def __init__(self, cfg: AmdConfig) -> None:
        self.cfg = cfg
        self.frames = 0
        self.freq = 0.0

    def update(self, dbfs: float, freq: float, purity: float) -> bool:
        c = self.cfg
        tone = dbfs >= c.beep_dbfs and purity >= c.beep_purity and c.beep_low_hz <= freq <= c.beep_high_hz
        if tone and (self.frames == 0 or abs(freq - self.freq) <= 60.0):
            self.frames += 1
            self.freq = freq
        else:
            self.frames = 1 if tone else 0
            self.freq = freq if tone else 0.0
        return tone

    def sustained(self) -> bool:
        return self.frames * self.cfg.frame_ms >= self.cfg.beep_min_s * 1000


class AmdDetector:
    """Feed caller audio from the answer on; ``feed`` returns the result once decided."""

    def __init__(self, config: AmdConfig | None = None) -> None:
        self.cfg = config or AmdConfig()
        self._framer = _Framer(self.cfg.frame_ms)
        self._tone = _ToneRun(self.cfg)
        self._t = 0.0
        self._speech_start: float | None = None
        self._last_speech: float | None = None
        self.result: AmdResult | None = None

    def feed(self, samples: npt.NDArray[np.int16], sample_rate: int) -> AmdResult | None:
        for frame in self._framer.frames(samples, sample_rate):
            if self.result is not None:
                break
            self._frame(frame, sample_rate)
        return self.result

    @property
    def talking(self) -> bool:
        """The callee is speaking (a greeting in progress), undecided yet."""
        last = self._last_speech
        return self.result is None and last is not None and self._t - last < self.cfg.after_greeting_silence_s

    def _decide(self, verdict: Verdict, reason: str) -> None:
        self.result = AmdResult(verdict, reason, round(self._t, 3))

    def _frame(self, frame: npt.NDArray[np.int16], sample_rate: int) -> None:
        c = self.cfg
        self._t += c.frame_ms / 1000.0
        dbfs, freq, purity = frame_features(frame, sample_rate)
        tone = self._tone.update(dbfs, freq, purity)
        if self._tone.sustained():
            self._decide(Verdict.MACHINE, "beep")
            return
        if dbfs >= c.speech_dbfs and not tone:
            if self._speech_start is None or (
                self._last_speech is not None
                and self._t - self._last_speech >= c.after_greeting_silence_s
            ):
                self._speech_start = self._t - c.frame_ms / 1000.0
            self._last_speech = self._t
            if self._t - self._speech_start > c.max_greeting_s:
                self._decide(Verdict.MACHINE, "long_greeting")
                return
        elif self._last_speech is not None:
            if self._t - self._last_speech >= c.after_greeting_silence_s:
                self._decide(Verdict.HUMAN, "short_greeting")
                return
        elif self._t >= c.initial_silence_s:
            self._decide(Verdict.UNKNOWN, "silence")
            return
        if self._t >= c.max_analysis_s:
            self._decide(Verdict.UNKNOWN, "timeout")


class MessageCue:
    """When to start a voicemail message: after the beep ends, or after the greeting ends
    in ``silence_s`` of silence when the machine has no beep, or at ``max_wait_s``."""

    def __init__(
        self, config: AmdConfig | None = None, silence_s: float = 1.5, max_wait_s: float = 30.0
    ) -> None:
        self.cfg = config or AmdConfig()
        self.silence_s = silence_s
        self.max_wait_s = max_wait_s
        self._framer = _Framer(self.cfg.frame_ms)
        self._tone = _ToneRun(self.cfg)
        self._t = 0.0
        self._beeping = False
        self._quiet_since: float | None = 0.0
        self.cue: str | None = None
        """``"beep"``, ``"silence"`` or ``"timeout"`` once it is time to speak."""

    def feed(self, samples: npt.NDArray[np.int16], sample_rate: int) -> str | None:
        for frame in self._framer.frames(samples, sample_rate):
            if self.cue is not None:
                break
            self._frame(frame, sample_rate)
        return self.cue

    def _frame(self, frame: npt.NDArray[np.int16], sample_rate: int) -> None:
        c = self.cfg
        self._t += c.frame_ms / 1000.0
        dbfs, freq, purity = frame_features(frame, sample_rate)
        tone = self._tone.update(dbfs, freq, purity)
        if self._tone.sustained():
            self._beeping = True
        elif self._beeping and not tone:
            self.cue = "beep"
            return
        if dbfs >= c.speech_dbfs:
            self._quiet_since = None
        elif self._quiet_since is None:
            self._quiet_since = self._t
        if self._quiet_since is not None and not self._beeping and self._t - self._quiet_since >= self.silence_s:
            self.cue = "silence"
        elif self._t >= self.max_wait_s:
            self.cue = "timeout"
