"""End-of-turn detection: VAD silence combined with how complete the words so far look.

Silence alone is a poor endpoint: a fixed 500 ms cuts callers off when they pause to think
("I'd like to book an appointment for ... next Tuesday"), and a fixed 1.2 s makes every answer
feel slow. So the silence needed to end a turn depends on the transcript: short when the
words look finished (terminal punctuation, no dangling conjunction), long when they look
unfinished ("and", "to", "the", a trailing comma), in between when there are no words yet.

Sans-I/O in the aioquic/h11 style: the pipeline feeds one VAD decision per audio frame with
the time it was processed, plus transcript text when it arrives, and gets events back.
Durations are counted in audio frames (not wall time), so network jitter in frame arrival
does not stretch or shrink a pause, and tests are exact.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voxgate.agent.text import words

__all__ = [
    "Completeness",
    "EndOfTurn",
    "Pause",
    "SpeechStarted",
    "SpeechStopped",
    "TurnAbandoned",
    "TurnConfig",
    "TurnDetector",
    "TurnEvent",
    "completeness",
]


class Completeness(enum.Enum):
    COMPLETE = "complete"
    UNKNOWN = "unknown"
    INCOMPLETE = "incomplete"


CONTINUATION_WORDS: frozenset[str] = frozenset(
    {
        "and", "or", "but", "so", "because", "to", "the", "a", "an", "of", "for", "with", "at",
        "in", "on", "my", "your", "our", "their", "his", "her", "is", "are", "was", "were",
        "if", "that", "then", "from", "about", "into", "than", "um", "uh", "er", "like",
        "which", "who", "when", "where", "also", "plus", "maybe", "i'm", "i'd", "i", "we",
        "by", "as", "this", "these", "some", "any", "very", "really", "just",
    }
)
"""A last word from this set means the sentence is not over, whatever the punctuation says
(Whisper-style engines put a full stop after almost everything)."""


def completeness(text: str) -> Completeness:
    """Classify how finished a (partial) transcript looks; see the module docstring."""
    stripped = text.strip()
    if not stripped:
        return Completeness.UNKNOWN
    if stripped.endswith((",", "-", "\u2026", "...", ":", ";")):
        return Completeness.INCOMPLETE
    ws = words(stripped)
    if ws and ws[-1] in CONTINUATION_WORDS:
        return Completeness.INCOMPLETE
    if stripped.endswith((".", "?", "!")):
        return Completeness.COMPLETE
    return Completeness.UNKNOWN


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """Silence thresholds in milliseconds of audio; see the module docstring for why three."""

    min_silence_ms: int = 500
    """Silence that ends a turn whose words look complete."""
    unknown_silence_ms: int = 800
    """Silence that ends a turn when the words say neither (no text yet, no punctuation)."""
    max_silence_ms: int = 1200
    """Silence that ends a turn whose words look unfinished."""
    pause_ms: int = 200
    """Silence after which a ``Pause`` is reported (STT flush, early intent, backchannel)."""
    min_speech_ms: int = 120
    """A turn with less speech than this is noise (a click, a cough) and is abandoned."""
    speech_start_ms: int = 40
    """Consecutive speech needed to count as (re)starting speech, so one noisy frame in a
    pause does not restart the silence count."""
    frame_ms: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.min_silence_ms <= self.unknown_silence_ms <= self.max_silence_ms:
            raise ValueError(
                "need 0 < min_silence_ms <= unknown_silence_ms <= max_silence_ms, got "
                f"{self.min_silence_ms}/{self.unknown_silence_ms}/{self.max_silence_ms}"
            )
        if self.frame_ms <= 0:
            raise ValueError(f"frame_ms must be positive, got {self.frame_ms}")

    def silence_for(self, level: Completeness) -> int:
        if level is Completeness.COMPLETE:
            return self.min_silence_ms
        if level is Completeness.INCOMPLETE:
            return self.max_silence_ms
        return self.unknown_silence_ms


# --- events (frozen dataclasses; compare h11's events) ---------------------------------


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Caller speech (re)started; ``resumed`` when it continues a turn after a pause."""

    at: float
    resumed: bool


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """Silence began; ``at`` is the caller's end of speech as far as the VAD knows."""

    at: float


@dataclass(frozen=True, slots=True)
class Pause:
    """Silence has lasted ``TurnConfig.pause_ms``: a natural point to flush the STT."""

    at: float
    speech_end: float


@dataclass(frozen=True, slots=True)
class EndOfTurn:
    """The caller has finished; ``at`` is when it was decided."""

    at: float
    speech_start: float
    speech_end: float
    speech_ms: int
    completeness: Completeness


@dataclass(frozen=True, slots=True)
class TurnAbandoned:
    """The "turn" was too little speech to be one (noise); nothing to answer."""

    at: float


TurnEvent = SpeechStarted | SpeechStopped | Pause | EndOfTurn | TurnAbandoned


class _State(enum.Enum):
    IDLE = "idle"  # no turn in progress
    SPEAKING = "speaking"
    SILENT = "silent"  # in a turn, caller silent


class TurnDetector:
    """One caller's turn-taking state; see the module docstring."""

    def __init__(self, config: TurnConfig | None = None) -> None:
        self.config = config or TurnConfig()
        self._state = _State.IDLE
        self._run_ms = 0  # consecutive speech while not yet counted as speaking
        self._run_start = 0.0
        self._silence_ms = 0
        self._speech_ms = 0
        self._speech_start = 0.0
        self._speech_end = 0.0
        self._paused = False
        self._text = ""

    @property
    def in_turn(self) -> bool:
        return self._state is not _State.IDLE

    @property
    def caller_speaking(self) -> bool:
        return self._state is _State.SPEAKING

    @property
    def silent_since(self) -> float | None:
        """Caller's end of speech while a turn is paused; None when speaking or idle."""
        return self._speech_end if self._state is _State.SILENT else None

    @property
    def text(self) -> str:
        return self._text

    def required_silence_ms(self) -> int:
        """Silence that would end the current turn, given the words so far."""
        return self.config.silence_for(completeness(self._text))

    def set_text(self, text: str, now: float) -> list[TurnEvent]:
        """Latest transcript of the whole turn so far; may end the turn at once."""
        self._text = text
        return self._check_end(now)

    def update(self, now: float, is_speech: bool) -> list[TurnEvent]:
        """Feed one frame's VAD decision; ``now`` is when the frame was processed."""
        cfg = self.config
        events: list[TurnEvent] = []
        if is_speech:
            if self._run_ms == 0:
                self._run_start = now - cfg.frame_ms / 1000.0
            self._run_ms += cfg.frame_ms
            if self._state is _State.SPEAKING:
                self._speech_ms += cfg.frame_ms
            elif self._run_ms >= cfg.speech_start_ms:
                resumed = self._state is _State.SILENT
                if not resumed:
                    self._speech_start = self._run_start
                    self._speech_ms = 0
                    self._text = ""
                self._speech_ms += self._run_ms
                self._state = _State.SPEAKING
                self._silence_ms = 0
                self._paused = False
                events.append(SpeechStarted(self._run_start, resumed))
            elif self._state is _State.SILENT:
                self._silence_ms += cfg.frame_ms  # a blip not (yet) counted as speech
                events.extend(self._check_end(now))
            return events
        self._run_ms = 0
        if self._state is _State.IDLE:
            return events
        if self._state is _State.SPEAKING:
            self._state = _State.SILENT
            self._speech_end = now - cfg.frame_ms / 1000.0
            self._silence_ms = cfg.frame_ms
            events.append(SpeechStopped(self._speech_end))
        else:
            self._silence_ms += cfg.frame_ms
        if not self._paused and self._silence_ms >= cfg.pause_ms:
            self._paused = True
            events.append(Pause(now, self._speech_end))
        events.extend(self._check_end(now))
        return events

    def reset(self) -> None:
        """Forget the current turn (e.g. the call was put on hold)."""
        self._state = _State.IDLE
        self._run_ms = self._silence_ms = self._speech_ms = 0
        self._paused = False
        self._text = ""

    def _check_end(self, now: float) -> list[TurnEvent]:
        if self._state is not _State.SILENT:
            return []
        if self._silence_ms < self.required_silence_ms():
            return []
        if self._speech_ms < self.config.min_speech_ms:
            self.reset()
            return [TurnAbandoned(now)]
        event = EndOfTurn(
            now, self._speech_start, self._speech_end, self._speech_ms, completeness(self._text)
        )
        self.reset()
        return [event]
