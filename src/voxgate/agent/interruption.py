"""Barge-in policy: when does caller speech during the agent's reply stop the agent?

Stopping on every VAD blip makes an agent unusable on a real line: a cough, a door, line
noise or the caller's own "mm-hm" would cut it off mid-sentence. Never stopping makes it
rude. The policy here interrupts once the caller has spoken for ``min_speech_ms`` *and* said
at least ``min_words`` words that are not backchannels, or has simply kept talking for
``long_speech_ms`` (sustained speech is a barge-in even before the STT has words for it).

Pure and sans-I/O: the pipeline feeds per-frame VAD decisions and the caller's transcript
text, and acts on the returned :class:`Interrupt` synchronously, in the same frame handler,
so the sink is cleared within one frame of the decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxgate.agent.text import BACKCHANNELS, substantive_words

__all__ = ["Interrupt", "InterruptionConfig", "InterruptionPolicy"]


@dataclass(frozen=True, slots=True)
class InterruptionConfig:
    enabled: bool = True
    min_speech_ms: int = 300
    """Speech shorter than this never interrupts (coughs, clicks, noise bursts)."""
    min_words: int = 1
    """Non-backchannel words needed together with ``min_speech_ms``; 0 = duration alone."""
    long_speech_ms: int | None = 1000
    """Speech this long interrupts without words (None: words always required)."""
    gap_ms: int = 600
    """Silence that ends one caller utterance; the next one starts counting from zero."""
    backchannels: frozenset[str] = BACKCHANNELS
    frame_ms: int = 20


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Decision to stop the agent; ``onset`` is when the caller's utterance began."""

    at: float
    onset: float
    speech_ms: int
    reason: str
    """"words" or "duration", for the turn record and metrics."""


class InterruptionPolicy:
    """Tracks caller speech while the agent is speaking; see the module docstring."""

    def __init__(self, config: InterruptionConfig | None = None) -> None:
        self.config = config or InterruptionConfig()
        self._agent_speaking = False
        self._speech_ms = 0
        self._silence_ms = 0
        self._onset: float | None = None
        self._text = ""
        self._fired = False

    @property
    def agent_speaking(self) -> bool:
        return self._agent_speaking

    def agent_started(self) -> None:
        """The agent began speaking: caller speech from now on may be a barge-in."""
        if not self._agent_speaking:
            self._agent_speaking = True
            self._clear()

    def agent_stopped(self) -> None:
        """The agent finished or was interrupted: nothing left to interrupt."""
        self._agent_speaking = False
        self._clear()

    def on_text(self, text: str, now: float) -> Interrupt | None:
        """Transcript (partial or final) of the caller's current utterance."""
        self._text = text
        return self._decide(now)

    def update(self, now: float, is_speech: bool) -> Interrupt | None:
        """Feed one frame's VAD decision; returns an Interrupt at most once per utterance."""
        if not self._agent_speaking or not self.config.enabled:
            return None
        frame_ms = self.config.frame_ms
        if is_speech:
            if self._onset is None:
                self._onset = now - frame_ms / 1000.0
            self._speech_ms += frame_ms
            self._silence_ms = 0
            return self._decide(now)
        if self._onset is not None:
            self._silence_ms += frame_ms
            if self._silence_ms >= self.config.gap_ms:
                self._clear()
        return None

    def _clear(self) -> None:
        self._speech_ms = self._silence_ms = 0
        self._onset = None
        self._text = ""
        self._fired = False

    def _decide(self, now: float) -> Interrupt | None:
        cfg = self.config
        if not self._agent_speaking or not cfg.enabled or self._fired or self._onset is None:
            return None
        reason = None
        if self._speech_ms >= cfg.min_speech_ms:
            if cfg.min_words == 0:
                reason = "duration"
            elif len(substantive_words(self._text, cfg.backchannels)) >= cfg.min_words:
                reason = "words"
        if reason is None and cfg.long_speech_ms is not None and self._speech_ms >= cfg.long_speech_ms:
            reason = "duration"
        if reason is None:
            return None
        self._fired = True
        return Interrupt(now, self._onset, self._speech_ms, reason)
