"""Early intent: start the LLM on a stable partial transcript, keep it only if it held.

Waiting for the STT final and only then starting the LLM puts the STT and the LLM's time to
first token in series after the caller stops. If the partial transcript has stopped changing
(same words for ``stable_ms``) while the caller is silent, it is usually what the final will
say, so the reply can start speculatively. When the final arrives it is compared with the
text the speculation started from after normalisation (case, punctuation, fillers): equal
means the speculative reply is committed; different means it is discarded before any of it
is played, and the reply is started again on the final.

Pure: the pipeline reports partials and pauses with their times and asks what to do; it owns
the speculative task itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxgate.agent.text import normalize

__all__ = ["EarlyIntent", "IntentConfig"]


@dataclass(frozen=True, slots=True)
class IntentConfig:
    enabled: bool = True
    stable_ms: int = 250
    """How long a partial must stay the same (while the caller is silent) to speculate on."""
    min_words: int = 2
    """Speculating on one word is nearly always wrong; wait for more."""


class EarlyIntent:
    """Tracks one turn's partials; see the module docstring."""

    def __init__(self, config: IntentConfig | None = None) -> None:
        self.config = config or IntentConfig()
        self._norm = ""
        self._since: float | None = None
        self._final = False
        self._speculated_on: str | None = None
        self.started = 0
        self.committed = 0
        self.discarded = 0

    @property
    def speculating_on(self) -> str | None:
        """Normalised text a speculative reply is running on, if any."""
        return self._speculated_on

    def reset(self) -> None:
        """New turn: forget partials and any speculation."""
        self._norm = ""
        self._since = None
        self._final = False
        self._speculated_on = None

    def on_partial(self, text: str, now: float) -> None:
        norm = normalize(text)
        if norm != self._norm:
            self._norm = norm
            self._since = now
            self._final = False

    def on_final(self, text: str, now: float) -> None:
        """Text made only of STT finals (the caller is silent) is as stable as it gets:
        speculable at once."""
        self._norm = normalize(text)
        self._since = now
        self._final = True

    def should_start(self, now: float, silent_since: float | None) -> str | None:
        """Normalised text to speculate on now, or None (also None once already started).

        ``silent_since`` is when the caller went quiet (None while they speak): a partial
        counts as stable only for the time it stayed unchanged *during* that silence, since
        a partial that did not change while the caller kept talking is merely lagging.
        """
        cfg = self.config
        if not cfg.enabled or self._speculated_on is not None or silent_since is None:
            return None
        if self._since is None or len(self._norm.split()) < cfg.min_words:
            return None
        if not self._final and (now - max(self._since, silent_since)) * 1000.0 < cfg.stable_ms:
            return None
        self._speculated_on = self._norm
        self.started += 1
        return self._norm

    def invalidate(self) -> None:
        """The caller spoke again: a running speculation no longer matches the turn."""
        if self._speculated_on is not None:
            self.discarded += 1
        self._speculated_on = None

    def close_turn(self) -> str | None:
        """The turn ended: hand over the text being speculated on (if any) and start afresh.

        The final transcript may arrive after the next turn has begun, so the comparison
        (:meth:`resolve`) takes the handed-over text rather than reading live state.
        """
        spec = self._speculated_on
        self.reset()
        return spec

    def resolve(self, final_text: str, speculated_on: str | None) -> bool:
        """True to commit the speculation for this final, False to discard it (or none ran)."""
        if speculated_on is None:
            return False
        if normalize(final_text) == speculated_on:
            self.committed += 1
            return True
        self.discarded += 1
        return False
