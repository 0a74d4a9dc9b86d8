"""Agent settings as a validated pydantic model; the app-wide config embeds ``AgentSettings``.

The defaults are the receptionist that answers a call out of the box. Timing knobs mirror
the pure policies' dataclasses (``TurnConfig`` & co.) and convert to them, so the policies
stay free of pydantic and the config file stays one flat, documented place.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voxgate.agent.backchannel import BackchannelConfig
from voxgate.agent.chunker import ChunkerConfig
from voxgate.agent.intent import IntentConfig
from voxgate.agent.interruption import InterruptionConfig
from voxgate.agent.text import BACKCHANNELS
from voxgate.agent.turns import TurnConfig

__all__ = [
    "AgentSettings",
    "BackchannelSettings",
    "InterruptionSettings",
    "TurnSettings",
]

RECEPTIONIST_PROMPT = (
    "You are the friendly phone receptionist of Bright Smile Dental. Answer in one or two "
    "short spoken sentences, no lists, no markdown. Opening hours: Monday to Friday 9 am to "
    "5 pm, Saturday 10 am to 2 pm, closed Sunday. You can book, move and cancel "
    "appointments and check orders. If you do not know something, say so and offer to "
    "transfer the caller to a human."
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TurnSettings(_Model):
    min_silence_ms: int = Field(500, gt=0, description="silence ending a complete-looking turn")
    unknown_silence_ms: int = Field(800, gt=0, description="silence when the words say neither")
    max_silence_ms: int = Field(1200, gt=0, description="silence ending an unfinished-looking turn")
    pause_ms: int = Field(200, gt=0, description="pause that flushes the STT segment")
    min_speech_ms: int = Field(120, ge=0, description="less speech than this is noise")
    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> TurnSettings:
        if not self.min_silence_ms <= self.unknown_silence_ms <= self.max_silence_ms:
            raise ValueError("need min_silence_ms <= unknown_silence_ms <= max_silence_ms")
        return self

    def to_config(self) -> TurnConfig:
        return TurnConfig(
            min_silence_ms=self.min_silence_ms,
            unknown_silence_ms=self.unknown_silence_ms,
            max_silence_ms=self.max_silence_ms,
            pause_ms=self.pause_ms,
            min_speech_ms=self.min_speech_ms,
        )


class InterruptionSettings(_Model):
    enabled: bool = True
    min_speech_ms: int = Field(300, ge=0)
    min_words: int = Field(1, ge=0)
    long_speech_ms: int | None = Field(1000, ge=0)
    backchannels: list[str] = Field(default_factory=lambda: sorted(BACKCHANNELS))

    def to_config(self) -> InterruptionConfig:
        return InterruptionConfig(
            enabled=self.enabled,
            min_speech_ms=self.min_speech_ms,
            min_words=self.min_words,
            long_speech_ms=self.long_speech_ms,
            backchannels=frozenset(w.lower() for w in self.backchannels),
        )


class BackchannelSettings(_Model):
    enabled: bool = False
    min_talk_s: float = Field(4.0, ge=0.0)
    min_interval_s: float = Field(6.0, ge=0.0)
    phrases: list[str] = Field(default_factory=lambda: ["Mm-hm.", "I see.", "Okay."])

    def to_config(self) -> BackchannelConfig:
        return BackchannelConfig(
            enabled=self.enabled,
            min_talk_s=self.min_talk_s,
            min_interval_s=self.min_interval_s,
            phrases=tuple(self.phrases) or ("Mm-hm.",),
        )


class AgentSettings(_Model):
    """One in-process agent (the default: a dental-practice receptionist)."""

    name: str = "receptionist"
    system_prompt: str = RECEPTIONIST_PROMPT
    greeting: str = "Hello, thank you for calling Bright Smile Dental. How can I help you?"
    resume_greeting: str = "Welcome back. How can I help you?"
    farewell: str = "Thank you for calling. Goodbye!"
    goodbye_phrases: list[str] = Field(
        default_factory=lambda: ["goodbye", "good bye", "bye", "that's all", "that is all"]
    )
    error_message: str = "Sorry, I'm having trouble right now. Could you say that again?"
    language: str | None = "en"
    max_history_messages: int = Field(40, ge=2)
    early_intent: bool = True
    intent_stable_ms: int = Field(250, ge=0)
    prewarm_llm: bool | None = None
    """At call start, let the LLM read the system prompt while the greeting plays (worth it
    for an embedded model with a prompt cache; an extra request for a hosted one). None
    (default): on when the LLM says it keeps a prompt cache (``prompt_cache = True``, the
    embedded llama.cpp model), off otherwise."""
    hangup_after_farewell_s: float = Field(10.0, gt=0.0)
    """Hang up this long after the farewell started even if its playback was never confirmed."""
    turn: TurnSettings = Field(default_factory=TurnSettings)
    interruption: InterruptionSettings = Field(default_factory=InterruptionSettings)
    backchannel: BackchannelSettings = Field(default_factory=BackchannelSettings)
    chunker_first_min_chars: int = Field(5, ge=1)
    chunker_min_chars: int = Field(40, ge=1)
    chunker_first_max_words: int = Field(6, ge=0)
    """Cut a first sentence that has no early comma after this many words (0: never)."""

    def intent_config(self) -> IntentConfig:
        return IntentConfig(enabled=self.early_intent, stable_ms=self.intent_stable_ms)

    def chunker_config(self) -> ChunkerConfig:
        return ChunkerConfig(
            first_min_chars=self.chunker_first_min_chars,
            min_chars=self.chunker_min_chars,
            first_max_words=self.chunker_first_max_words,
        )
