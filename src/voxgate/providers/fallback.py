"""Fallback chains: when a provider fails or is too slow, the next one takes the same turn.

Compare LiveKit Agents' ``FallbackAdapter``. One chain per kind (``FallbackLLM``,
``FallbackSTT``, ``FallbackTTS``), each itself an ``LLM`` / ``StreamingSTT`` / ``TTS``, so the
agent pipeline never knows it is talking to a chain.

A provider "fails" when it raises (any exception; ``ProviderError`` is the documented one),
when it produces no first output within ``timeout`` seconds, or when it stalls longer than
``timeout`` between outputs. The next provider then takes over within the same turn, so the
caller never hears more than ``timeout`` of extra silence per failed provider. A provider
that failed is skipped for ``cooldown`` seconds on later turns, so a dead endpoint does not
cost every turn a timeout; after that it is tried first again (recovery without probes).

Policy when a failure comes after output already went out:

- LLM: the next provider gets the same messages. Text the caller may already have heard is
  not repeated: the new reply's text is swallowed while it matches what was already emitted,
  and streaming resumes where it goes beyond that. If the new reply diverges earlier, it is
  emitted whole, which sounds like a speaker correcting themselves ("We open at ni- Sure, we open at 9 am."), the honest
  outcome when the first reply cannot be completed. Tool calls and usage of the failed
  provider are dropped (they are only emitted at the end of a reply).
- TTS: the next provider synthesizes only the text not yet spoken (what follows the pieces
  whose chunks already went out). Chunks carry their own ``sample_rate``; providers in one
  chain may differ, so consumers must honour ``AudioChunk.sample_rate``.
- STT: the chain keeps the audio of the current utterance and of every flushed utterance
  still waiting for its final, and replays it into the next provider's stream, so no words
  are lost; the consumer sees one final per ``flush()`` as usual.

Every switch increments ``switches`` and ``switch_reasons`` and calls ``on_switch`` with a
``SwitchEvent`` (wire it to a Prometheus counter: ``voxgate_provider_fallbacks_total``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar

from voxgate.audio.frame import AudioFrame
from voxgate.providers.base import (
    LLM,
    TTS,
    AudioChunk,
    ChatMessage,
    LLMEvent,
    ProviderError,
    ProviderTimeout,
    StreamingSTT,
    STTStream,
    TextDelta,
    ToolChoice,
    ToolSchema,
    Transcript,
    check_tool_choice,
)

Kind = Literal["llm", "stt", "tts"]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


P = TypeVar("P", bound=_Named)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SwitchEvent:
    kind: Kind
    failed: str
    """Name of the provider that failed."""
    next: str | None
    """Name of the provider taking over (None: none left, the turn fails)."""
    reason: Literal["error", "timeout"]
    error: BaseException | None


SwitchHook = Callable[[SwitchEvent], None]


class _Chain(Generic[P]):
    """Provider order, cooldowns and switch accounting shared by the three chains."""

    kind: Kind

    def __init__(
        self,
        providers: Sequence[P],
        *,
        timeout: float | Sequence[float] = 2.0,
        cooldown: float = 30.0,
        on_switch: SwitchHook | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a fallback chain needs at least one provider")
        self.providers: list[P] = list(providers)
        self.timeouts = (
            [float(timeout)] * len(self.providers)
            if isinstance(timeout, int | float)
            else [float(t) for t in timeout]
        )
        if len(self.timeouts) != len(self.providers):
            raise ValueError("one timeout per provider")
        self.cooldown = cooldown
        self.on_switch = on_switch
        self.switches = 0
        self.switch_reasons: Counter[str] = Counter()
        self._failed_at: dict[int, float] = {}
        self.name = "fallback(" + ",".join(p.name for p in self.providers) + ")"

    def order(self) -> list[int]:
        """Provider indexes to try this turn: healthy ones first, cooling-down ones last."""
        now = time.monotonic()
        healthy = [
            i
            for i in range(len(self.providers))
            if now - self._failed_at.get(i, -1e18) >= self.cooldown
        ]
        cooling = [i for i in range(len(self.providers)) if i not in healthy]
        return healthy + cooling

    def failed(self, index: int, following: int | None, error: BaseException) -> None:
        self._failed_at[index] = time.monotonic()
        reason: Literal["error", "timeout"] = (
            "timeout" if isinstance(error, TimeoutError | ProviderTimeout) else "error"
        )
        self.switches += following is not None
        self.switch_reasons[reason] += 1
        if self.on_switch is not None:
            nxt = self.providers[following].name if following is not None else None
            self.on_switch(SwitchEvent(self.kind, self.providers[index].name, nxt, reason, error))

    def succeeded(self, index: int) -> None:
        self._failed_at.pop(index, None)


async def _next(it: AsyncIterator[T], deadline: float) -> T:
    """The next item of ``it`` within ``deadline`` seconds (``ProviderTimeout`` otherwise)."""
    try:
        return await asyncio.wait_for(anext(it), deadline)
    except TimeoutError as exc:
        raise ProviderTimeout(f"no output within {deadline:.2f} s") from exc


async def _close(it: object) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


class FallbackLLM(_Chain[LLM]):
    """``LLM`` that tries ``providers`` in order within each turn (see the module docstring)."""

    kind: Kind = "llm"

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema] = (),
        *,
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[LLMEvent]:
        check_tool_choice(tool_choice, tools)  # a caller bug: not a reason to switch provider
        emitted = ""  # text already given to the caller
        order = self.order()
        last: BaseException | None = None
        for n, i in enumerate(order):
            it = aiter(self.providers[i].chat(messages, tools, tool_choice=tool_choice))
            skip = emitted  # the part of the new reply the caller already heard
            matched = ""
            try:
                while True:
                    try:
                        event = await _next(it, self.timeouts[i])
                    except StopAsyncIteration:
                        break
                    if isinstance(event, TextDelta) and skip:
                        text = event.text
                        candidate = matched + text
                        if skip.startswith(candidate):
                            matched = candidate
                            if matched == skip:
                                skip = ""
                            continue
                        if candidate.startswith(skip):  # goes beyond what was heard
                            text, skip = candidate[len(skip) :], ""
                        else:  # diverged: the reply restarts, audibly
                            text, skip = candidate, ""
                        if text:
                            emitted += text
                            yield TextDelta(text)
                        continue
                    if isinstance(event, TextDelta):
                        emitted += event.text
                    yield event
                self.succeeded(i)
                return
            except Exception as exc:
                last = exc
                self.failed(i, order[n + 1] if n + 1 < len(order) else None, exc)
            finally:
                await _close(it)
        raise ProviderError(f"{self.name}: every provider failed; last: {last}") from last


class FallbackTTS(_Chain[TTS]):
    """``TTS`` that tries ``providers`` in order per text (see the module docstring)."""

    kind: Kind = "tts"

    def __init__(
        self,
        providers: Sequence[TTS],
        *,
        timeout: float | Sequence[float] = 2.0,
        cooldown: float = 30.0,
        on_switch: SwitchHook | None = None,
    ) -> None:
        super().__init__(providers, timeout=timeout, cooldown=cooldown, on_switch=on_switch)
        self.sample_rate = self.providers[0].sample_rate
        """The first provider's rate; every chunk carries its own, which is authoritative."""

    async def synthesize(self, text: str) -> AsyncIterator[AudioChunk]:
        remaining = text
        order = self.order()
        last: BaseException | None = None
        for n, i in enumerate(order):
            it = aiter(self.providers[i].synthesize(remaining))
            pos = 0
            try:
                while True:
                    try:
                        chunk = await _next(it, self.timeouts[i])
                    except StopAsyncIteration:
                        break
                    if chunk.text:
                        found = remaining.find(chunk.text, pos)
                        if found >= 0:
                            pos = found + len(chunk.text)
                    yield chunk
                self.succeeded(i)
                return
            except Exception as exc:
                last = exc
                remaining = remaining[pos:].lstrip()
                self.failed(i, order[n + 1] if n + 1 < len(order) else None, exc)
                if not remaining.strip():
                    return
            finally:
                await _close(it)
        raise ProviderError(f"{self.name}: every provider failed; last: {last}") from last


class FallbackSTT(_Chain[StreamingSTT]):
    """``StreamingSTT`` whose streams move to the next provider on failure.

    ``timeout`` bounds the wait for a final after ``flush()`` (partials have no deadline:
    silence is legitimate). All providers must accept the frames pushed (engines resample
    internally or share ``sample_rate``).
    """

    kind: Kind = "stt"

    def __init__(
        self,
        providers: Sequence[StreamingSTT],
        *,
        timeout: float | Sequence[float] = 2.0,
        cooldown: float = 30.0,
        on_switch: SwitchHook | None = None,
    ) -> None:
        super().__init__(providers, timeout=timeout, cooldown=cooldown, on_switch=on_switch)
        self.sample_rate = self.providers[0].sample_rate

    def stream(self, *, language: str | None = None) -> FallbackSTTStream:
        return FallbackSTTStream(self, language)


class FallbackSTTStream:
    """One call's stream over a ``FallbackSTT`` chain; implements ``STTStream``."""

    def __init__(self, chain: FallbackSTT, language: str | None) -> None:
        self._chain = chain
        self._language = language
        self._order = chain.order()
        self._pos = 0
        self._current: list[AudioFrame] = []
        self._awaiting: list[list[AudioFrame]] = []  # flushed, final not received yet
        self._out: asyncio.Queue[Transcript | BaseException | None] = asyncio.Queue()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._stream: STTStream = self._open()
        self._pump: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._run(self._stream, self._pos)
        )

    @property
    def _index(self) -> int:
        return self._order[self._pos]

    def _open(self) -> STTStream:
        return self._chain.providers[self._index].stream(language=self._language)

    def push_frame(self, frame: AudioFrame) -> None:
        if self._closed:
            return
        self._current.append(frame)
        self._stream.push_frame(frame)

    def flush(self) -> None:
        if self._closed:
            return
        self._awaiting.append(self._current)
        self._current = []
        self._stream.flush()
        self._arm()

    def _arm(self) -> None:
        if self._timer is None and self._awaiting:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(
                self._chain.timeouts[self._index], self._on_timeout, self._pos
            )

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timeout(self, pos: int) -> None:
        self._timer = None
        if pos == self._pos:
            self._switch(ProviderTimeout("no final within the deadline"))

    async def _run(self, stream: STTStream, pos: int) -> None:
        try:
            async for t in stream:
                if pos != self._pos:
                    return
                if t.is_final and self._awaiting:
                    self._awaiting.pop(0)
                    self._disarm()
                    self._arm()
                    self._chain.succeeded(self._index)
                self._out.put_nowait(t)
        except Exception as exc:
            if pos == self._pos:
                self._switch(exc)

    def _switch(self, error: BaseException) -> None:
        self._disarm()
        old, old_index = self._stream, self._index
        nxt = self._pos + 1 if self._pos + 1 < len(self._order) else None
        self._chain.failed(old_index, self._order[nxt] if nxt is not None else None, error)
        closing = asyncio.get_running_loop().create_task(old.aclose())
        closing.add_done_callback(lambda t: t.cancelled() or t.exception())
        if nxt is None:
            self._pos = len(self._order)
            self._out.put_nowait(ProviderError(f"{self._chain.name}: every provider failed"))
            return
        self._pos = nxt
        self._stream = self._open()
        for utterance in self._awaiting:  # replay what still needs a final
            for frame in utterance:
                self._stream.push_frame(frame)
            self._stream.flush()
        for frame in self._current:
            self._stream.push_frame(frame)
        self._pump = asyncio.get_running_loop().create_task(self._run(self._stream, self._pos))
        self._arm()

    async def __aiter__(self) -> AsyncIterator[Transcript]:
        while (item := await self._out.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._disarm()
        if self._pos < len(self._order):
            await self._stream.aclose()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, self._chain.timeouts[self._index])
        self._out.put_nowait(None)
