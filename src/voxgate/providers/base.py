"""The three provider protocols the agent runtime talks to: STT, LLM, TTS.

Kept tiny on purpose (compare LiveKit Agents' capabilities + adapters): anything that can
stream transcripts, tokens or audio fits, whether it runs in-process or behind an HTTP API.
Streaming and cancellation are part of the contract because barge-in must stop work in
flight: closing an iterator (or cancelling the task that iterates it) stops the provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from voxgate.audio.frame import AudioFrame, Pcm16
from voxgate.errors import VoxgateError


class ProviderError(VoxgateError):
    """A provider failed (crashed, refused, returned garbage); fallback chains catch this."""


class ProviderTimeout(ProviderError):
    """A provider did not produce its first output within its deadline."""


# --- STT -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WordTiming:
    word: str
    start: float
    """Seconds from the start of the stream's audio."""
    end: float
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    """A partial (may still change) or final (will not change) hypothesis for one utterance."""

    text: str
    is_final: bool
    confidence: float | None = None
    words: tuple[WordTiming, ...] = ()
    start: float | None = None
    """Seconds from the start of the stream's audio where the utterance began."""
    end: float | None = None


class STTStream(Protocol):
    """One caller's audio going in, transcripts coming out, for the life of a call."""

    def push_frame(self, frame: AudioFrame) -> None:
        """Queue audio; never blocks (decoding happens off the event loop)."""
        ...

    def flush(self) -> None:
        """End of the current utterance: emit a final transcript for what was pushed."""
        ...

    def __aiter__(self) -> AsyncIterator[Transcript]: ...

    async def aclose(self) -> None: ...


class StreamingSTT(Protocol):
    name: str
    sample_rate: int
    """Rate the engine wants; callers resample before ``push_frame``."""

    def stream(self, *, language: str | None = None) -> STTStream: ...


# --- LLM -----------------------------------------------------------------------------

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str
    """JSON text as the model produced it; validated by the tool registry, not here."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSchema:
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


LLMEvent = TextDelta | ToolCall | Usage

ToolChoice = str
"""What the reply may do with the offered tools: ``"auto"`` (the model decides), ``"none"``
(answer in words, no tool call) or the name of one offered tool (call exactly that tool).

A choice instead of a narrower tool list, because the tool list is part of the prompt: a
local model with a prompt cache (llama.cpp) re-reads everything after the first changed
token, so offering one tool instead of seven costs ~1.5 s and back ~5 s on two cores
(bench/tool_calls.py). The tools stay the same for the whole call; the choice is enforced
by decoding (or by the hosted API's own ``tool_choice``)."""


def check_tool_choice(choice: ToolChoice, tools: Sequence[ToolSchema]) -> ToolChoice:
    """``choice`` if it is valid for ``tools``; a ``ValueError`` naming the problem otherwise
    (a caller bug, not a provider failure: fallback chains must not switch provider on it)."""
    if choice in ("auto", "none"):
        return choice
    names = [t.name for t in tools]
    if choice not in names:
        raise ValueError(f"tool_choice {choice!r} is not an offered tool (offered: {names})")
    return choice


class LLM(Protocol):
    name: str

    def chat(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[LLMEvent]:
        """Stream the reply. Closing the iterator early cancels generation.

        ``tool_choice`` (see ``ToolChoice``): ``"none"`` never yields a ``ToolCall``; a tool
        name yields a call of that tool (or fails); ``ValueError`` for a name not in ``tools``.
        """
        ...


# --- TTS -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Synthesized audio tagged with the text it speaks, so heard text can be tracked."""

    pcm: Pcm16
    sample_rate: int
    text: str
    """The words this chunk speaks (may be empty for trailing audio of a clause)."""


class TTS(Protocol):
    name: str
    sample_rate: int

    def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        """Stream audio for one chunk of text. Closing the iterator early cancels synthesis."""
        ...
