"""When to say "mm-hm" while the caller talks at length.

A caller explaining something for ten seconds to total silence starts asking "hello, are you
there?". Human listeners acknowledge at short pauses in long speech, sparingly. This policy
proposes a short acknowledgement after ``min_talk_s`` of caller talk, at a pause of
``pause_min_ms``..``pause_max_ms`` (well below the end-of-turn silence, so it never competes
with the reply), and at most once every ``min_interval_s``.

Pure and sans-I/O like the other policies: per-frame VAD decisions in, a phrase (or None)
out. Off by default: acknowledgements that land badly are worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BackchannelConfig", "BackchannelPolicy"]


@dataclass(frozen=True, slots=True)
class BackchannelConfig:
    enabled: bool = False
    min_talk_s: float = 4.0
    """Caller talk (speech plus short pauses) before the first acknowledgement."""
    pause_min_ms: int = 200
    pause_max_ms: int = 400
    min_interval_s: float = 6.0
    reset_silence_ms: int = 1000
    """Silence after which the caller's talk counts as over (talk time restarts)."""
    phrases: tuple[str, ...] = ("Mm-hm.", "I see.", "Okay.")
    frame_ms: int = 20


class BackchannelPolicy:
    """See the module docstring; call :meth:`update` once per caller frame."""

    def __init__(self, config: BackchannelConfig | None = None) -> None:
        self.config = config or BackchannelConfig()
        self._talk_start: float | None = None
        self._silence_ms = 0
        self._last_at: float | None = None
        self._offered_in_pause = False
        self._next_phrase = 0
        self.suppressed = False
        """Set by the pipeline while the agent speaks: no acknowledgements over its own voice."""

    def update(self, now: float, is_speech: bool) -> str | None:
        cfg = self.config
        if is_speech:
            if self._talk_start is None:
                self._talk_start = now - cfg.frame_ms / 1000.0
            self._silence_ms = 0
            self._offered_in_pause = False
            return None
        if self._talk_start is None:
            return None
        self._silence_ms += cfg.frame_ms
        if self._silence_ms >= cfg.reset_silence_ms:
            self._talk_start = None
            return None
        if not cfg.enabled or self.suppressed or self._offered_in_pause:
            return None
        if not cfg.pause_min_ms <= self._silence_ms <= cfg.pause_max_ms:
            return None
        talk_s = now - self._silence_ms / 1000.0 - self._talk_start
        if talk_s < cfg.min_talk_s:
            return None
        if self._last_at is not None and now - self._last_at < cfg.min_interval_s:
            return None
        self._offered_in_pause = True
        self._last_at = now
        phrase = cfg.phrases[self._next_phrase % len(cfg.phrases)]
        self._next_phrase += 1
        return phrase
