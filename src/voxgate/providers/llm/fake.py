"""A scriptable LLM for fast, deterministic agent-pipeline tests (no model, no network).

How to script it (compare LiveKit Agents' ``fake_llm``):

- a list of replies, used in order, one per ``chat()`` call (the last one repeats)::

      llm = FakeLLM(["Hello! How can I help?", FakeReply(tool_calls=[
          ToolCall("call_1", "book_appointment", '{"day": "Tuesday", "time": "15:00"}')])])

- rules keyed by a substring of the last user message (case-insensitive), with a default::

      llm = FakeLLM.from_rules({"book": "Which day?", "human": FakeReply(tool_calls=[...])},
                               default="Sorry?")

- or any ``Callable[[messages, tools], FakeReply | str]`` for full control.

Timing: ``ttft`` (seconds before the first event) and ``token_delay`` (between text deltas);
text is streamed word by word (each delta is one word plus its trailing space), so barge-in
tests can cancel mid-reply. Failures: ``fault=Fault(...)`` (see ``voxgate.providers._fault``).
``tool_choice`` is honoured the way a real model is held to it: a script function is given
the tools the choice allows (none for ``"none"``, the one named tool), and scripted tool
calls the choice forbids are not emitted (``"none"``: none; a named tool: only that tool's).

Inspection: ``calls`` holds every (messages, tools offered) received, ``tool_choices`` the
``tool_choice`` of each, ``cancelled`` counts replies
closed before their end (barge-in), ``failed`` those ended by a fault, ``completed`` those
streamed to the end.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from voxgate.providers._fault import Fault, FaultState, trigger
from voxgate.providers.base import (
    ChatMessage,
    LLMEvent,
    TextDelta,
    ToolCall,
    ToolChoice,
    ToolSchema,
    Usage,
    check_tool_choice,
)


@dataclass(frozen=True, slots=True)
class FakeReply:
    """One scripted reply: text streamed first, then tool calls, then usage."""

    text: str = ""
    tool_calls: Sequence[ToolCall] = field(default_factory=tuple)


Script = (
    Sequence[FakeReply | str]
    | Callable[[Sequence[ChatMessage], Sequence[ToolSchema]], FakeReply | str]
)


def _as_reply(r: FakeReply | str) -> FakeReply:
    return FakeReply(text=r) if isinstance(r, str) else r


def _split_words(text: str) -> list[str]:
    """Word-sized deltas that concatenate back to ``text`` exactly."""
    return re.findall(r"\S+\s*|\s+", text)


class FakeLLM:
    """Implements ``voxgate.providers.base.LLM`` from a script; see the module docstring."""

    def __init__(
        self,
        script: Script = ("OK.",),
        *,
        ttft: float = 0.0,
        token_delay: float = 0.0,
        fault: Fault | None = None,
        name: str = "fake-llm",
    ) -> None:
        self.name = name
        self._script = script
        self.ttft = ttft
        self.token_delay = token_delay
        self._fault = FaultState(fault)
        self.calls: list[tuple[list[ChatMessage], list[ToolSchema]]] = []
        self.tool_choices: list[ToolChoice] = []
        self.cancelled = 0
        self.failed = 0
        self.completed = 0

    @classmethod
    def from_rules(
        cls,
        rules: Mapping[str, FakeReply | str],
        *,
        default: FakeReply | str = "Sorry, I did not catch that.",
        ttft: float = 0.0,
        token_delay: float = 0.0,
        fault: Fault | None = None,
        name: str = "fake-llm",
    ) -> FakeLLM:
        """Reply with the first rule whose key occurs in the last user message."""
        lowered = {k.lower(): v for k, v in rules.items()}

        def pick(messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]) -> FakeReply | str:
            last = next((m.content for m in reversed(messages) if m.role == "user"), "")
            for key, reply in lowered.items():
                if key in last.lower():
                    return reply
            return default

        return cls(pick, ttft=ttft, token_delay=token_delay, fault=fault, name=name)

    def _next_reply(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSchema]
    ) -> FakeReply:
        if callable(self._script):
            return _as_reply(self._script(messages, tools))
        if not self._script:
            return FakeReply()
        index = min(len(self.calls) - 1, len(self._script) - 1)
        return _as_reply(self._script[index])

    def chat(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[LLMEvent]:
        choice = check_tool_choice(tool_choice, tools)
        self.calls.append((list(messages), list(tools)))
        self.tool_choices.append(choice)
        allowed = [t for t in tools if choice == "auto" or t.name == choice]
        reply = self._next_reply(messages, allowed)
        if len(allowed) != len(tools) or choice == "none":
            names = {t.name for t in allowed}
            reply = FakeReply(reply.text, tuple(c for c in reply.tool_calls if c.name in names))
        return self._stream(reply, self._fault.arm(), sum(len(m.content) for m in messages) // 4)

    async def _stream(
        self, reply: FakeReply, fault: Fault | None, prompt_tokens: int
    ) -> AsyncIterator[LLMEvent]:
        produced = 0
        try:
            if self.ttft:
                await asyncio.sleep(self.ttft)
            await trigger(fault, produced)
            for i, word in enumerate(_split_words(reply.text)):
                if i and self.token_delay:
                    await asyncio.sleep(self.token_delay)
                yield TextDelta(word)
                produced += 1
                await trigger(fault, produced)
            for call in reply.tool_calls:
                yield call
                produced += 1
                await trigger(fault, produced)
            yield Usage(prompt_tokens, produced)
        except (GeneratorExit, asyncio.CancelledError):
            self.cancelled += 1
            raise
        except Exception:
            self.failed += 1
            raise
        else:
            self.completed += 1
