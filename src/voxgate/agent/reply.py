"""One agent reply: LLM text deltas -> clause chunker -> TTS -> speaker, as a cancellable task.

The LLM and the TTS run concurrently: a producer turns the token stream into clauses while a
consumer synthesizes them one after another, so the first clause is spoken while the LLM is
still writing the rest. Barge-in cancels the task; both provider iterators are closed
explicitly so an embedded model stops generating instead of finishing in the background.

A speculative reply (early intent) runs *held*: audio is produced but kept back. ``commit()``
releases what was held and lets the rest flow; a discarded speculation is cancelled before
any of it reaches the sink. Stage times are stamped on the reply's ``TurnRecord``.

With ``knowledge`` (``voxgate.knowledge.runtime.CallKnowledge``) the LLM is offered every tool
of the call in every round, with the plan's ``tool_choice`` (``CallKnowledge.prepare``: the
routed tool when the router is sure, "none" for a question it is sure needs none, else
"auto"), and the prompt gets retrieved passages. The tool list never changes within a call
because it is part of the prompt: a local LLM's prompt cache keeps it only while it is
identical (see ``voxgate.providers.base.ToolChoice``). When the LLM answers with tool calls,
they run (a slow one makes the agent say a filler while it runs), the assistant tool-call
message and the ``tool`` results are kept on the run (``tool_messages``, for the history),
and the LLM is asked again with the results ("auto": the forced choice applies to the first
round only), for at most ``max_rounds`` rounds (the last with "none").
Bad arguments are fed back once; a second failure, a timeout or an error is answered with
a spoken fallback, never silence. A held (speculative) reply waits for ``commit()`` before
running any tool: a guess must not book an appointment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from voxgate.agent.chunker import ChunkerConfig, ClauseChunker
from voxgate.agent.records import TurnRecord
from voxgate.agent.speaker import Speaker
from voxgate.audio.frame import Pcm16
from voxgate.providers.base import (
    LLM,
    TTS,
    ChatMessage,
    TextDelta,
    ToolCall,
    ToolChoice,
    ToolSchema,
)

if TYPE_CHECKING:
    from voxgate.knowledge.runtime import CallKnowledge
    from voxgate.knowledge.tools import ToolResult

__all__ = ["ReplyRun"]

Clock = Callable[[], float]

_DONE = object()


async def _aclose(it: AsyncIterator[Any]) -> None:
    """Close a provider stream (async generators and streams with ``aclose``) quietly."""
    close = getattr(it, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


class ReplyRun:
    """Generates and speaks one reply; ``fixed_text`` skips the LLM (greeting, farewell)."""

    def __init__(
        self,
        reply_id: int,
        *,
        llm: LLM,
        tts: TTS,
        speaker: Speaker,
        record: TurnRecord,
        clock: Clock,
        messages: Sequence[ChatMessage] = (),
        fixed_text: str | None = None,
        error_text: str = "",
        chunker: ChunkerConfig | None = None,
        held: bool = False,
        on_first_audio: Callable[[ReplyRun], None] | None = None,
        knowledge: CallKnowledge | None = None,
    ) -> None:
        self.reply_id = reply_id
        self.record = record
        self._llm = llm
        self._tts = tts
        self._speaker = speaker
        self._clock = clock
        self._messages = list(messages)
        self._fixed_text = fixed_text
        self._error_text = error_text
        self._chunker = ClauseChunker(chunker)
        self._held = held
        self._held_ops: list[tuple[Pcm16, int] | tuple[int, str]] = []
        self._on_first_audio = on_first_audio
        self._knowledge = knowledge
        self._committed = asyncio.Event()
        if not held:
            self._committed.set()
        self.tool_messages: list[ChatMessage] = []
        """Assistant tool-call messages and ``tool`` results, in order (for the history)."""
        self.tool_results: list[tuple[ToolCall, ToolResult, float]] = []
        """(call, result, clock time) of every tool call run."""
        self.text = ""
        """Everything the LLM generated (or the fixed text)."""
        self.clauses: list[str] = []
        self.generated = False
        """Generation and synthesis are finished (all audio handed to the speaker)."""
        self.task: asyncio.Task[None] | None = None

    # --- control ----------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"reply-{self.reply_id}")
        return self.task

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    @property
    def held(self) -> bool:
        return self._held

    def commit(self) -> None:
        """Release a held (speculative) reply: what is ready plays now, the rest streams."""
        if not self._held:
            return
        self._held = False
        self._committed.set()
        ops, self._held_ops = self._held_ops, []
        for op in ops:
            self._apply(op)

    # --- output -----------------------------------------------------------------------

    def _apply(self, op: tuple[Pcm16, int] | tuple[int, str]) -> None:
        a, b = op
        if isinstance(a, int) and isinstance(b, str):
            self._speaker.end_clause(self.reply_id, a, b)
            return
        assert not isinstance(a, int) and isinstance(b, int)
        if self._speaker.write(self.reply_id, a, b):
            self.record.first_audio_out = self._clock()
            if self._on_first_audio is not None:
                self._on_first_audio(self)

    def _emit(self, op: tuple[Pcm16, int] | tuple[int, str]) -> None:
        if self._held:
            self._held_ops.append(op)
        else:
            self._apply(op)

    # --- work -------------------------------------------------------------------------

    async def _run(self) -> None:
        clauses: asyncio.Queue[object] = asyncio.Queue()
        producer = asyncio.get_running_loop().create_task(self._produce(clauses))
        try:
            await self._consume(clauses)
            await producer
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await producer
        self.generated = True
        self.record.reply_done = self._clock()

    async def _produce(self, clauses: asyncio.Queue[object]) -> None:
        try:
            if self._fixed_text is not None:
                self.text = self._fixed_text
                for c in self._chunker.push(self._fixed_text + " ") + self._chunker.flush():
                    clauses.put_nowait(c)
                return
            await self._generate(clauses)
        finally:
            clauses.put_nowait(_DONE)

    async def _generate(self, clauses: asyncio.Queue[object]) -> None:
        rec = self.record
        rec.llm_start = self._clock()
        k = self._knowledge
        try:
            if k is None:
                await self._stream_llm(self._messages, (), clauses)
            else:
                await self._converse(k, clauses)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the caller must hear something, not silence
            rec.errors.append(f"llm {self._llm.name}: {exc!r}")
            if not self.text.strip() and self._error_text:
                self._say(self._error_text, clauses)
        for c in self._chunker.flush():
            clauses.put_nowait(c)

    async def _stream_llm(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSchema],
        clauses: asyncio.Queue[object],
        tool_choice: ToolChoice = "auto",
    ) -> tuple[str, list[ToolCall]]:
        """One LLM call: text goes to the chunker as it streams; tool calls are returned."""
        rec = self.record
        text = ""
        calls: list[ToolCall] = []
        stream = self._llm.chat(messages, tools, tool_choice=tool_choice) if tools else self._llm.chat(messages)
        try:
            async for event in stream:
                if isinstance(event, ToolCall):
                    calls.append(event)
                    continue
                if not isinstance(event, TextDelta) or not event.text:
                    continue  # usage is ignored
                if rec.llm_first_token is None:
                    rec.llm_first_token = self._clock()
                text += event.text
                self.text += event.text
                for c in self._chunker.push(event.text):
                    clauses.put_nowait(c)
        finally:
            await _aclose(stream)
        return text, calls

    def _say(self, text: str, clauses: asyncio.Queue[object]) -> None:
        """Speak ``text`` now, after whatever the LLM already said (filler, fallback)."""
        for c in self._chunker.flush():
            clauses.put_nowait(c)
        self.text = f"{self.text} {text}".strip() if self.text.strip() else text
        self._chunker.reset()
        for c in self._chunker.push(text + " ") + self._chunker.flush():
            clauses.put_nowait(c)

    async def _converse(self, k: CallKnowledge, clauses: asyncio.Queue[object]) -> None:
        """LLM -> tools -> LLM rounds (see the module docstring)."""
        plan = await k.prepare(self._messages, self.record)
        messages = plan.messages
        invalid = 0
        for round_no in range(k.max_rounds):
            last = round_no == k.max_rounds - 1
            choice = "none" if last else plan.tool_choice if round_no == 0 else "auto"
            text, calls = await self._stream_llm(messages, plan.tools, clauses, choice)
            if not calls:
                if not self.text.strip():  # a model that says nothing must not leave silence
                    self._say(k.fallback_say, clauses)
                return
            await self._committed.wait()  # a speculative reply runs tools only once adopted
            round_msgs = [ChatMessage("assistant", text, tool_calls=tuple(calls))]
            results: list[ToolResult] = []
            for call in calls:
                result = await k.run(call, lambda s: self._say(s, clauses), self.record)
                self.tool_results.append((call, result, self._clock()))
                round_msgs.append(ChatMessage("tool", result.content, tool_call_id=call.id, name=call.name))
                results.append(result)
            self.tool_messages.extend(round_msgs)
            messages = [*messages, *round_msgs]
            spoken = [r.say for r in results if r.final and r.say]
            if spoken:  # call control or a failed tool: say it, no more LLM rounds
                self._say(" ".join(dict.fromkeys(spoken)), clauses)
                return
            invalid += sum(r.status in ("invalid", "unknown") for r in results)
            if invalid > 1:  # fed back once already: ask the caller instead
                self._say(k.invalid_say, clauses)
                return
        if not self.text.strip():
            self._say(k.fallback_say, clauses)

    async def _consume(self, clauses: asyncio.Queue[object]) -> None:
        rec = self.record
        while (clause := await clauses.get()) is not _DONE:
            assert isinstance(clause, str)
            index = len(self.clauses)
            self.clauses.append(clause)
            if rec.tts_start is None:
                rec.tts_start = self._clock()
            stream = self._tts.synthesize(clause)
            spoken = False
            try:
                async for chunk in stream:
                    if rec.tts_first_audio is None:
                        rec.tts_first_audio = self._clock()
                    if chunk.pcm.shape[0]:
                        spoken = True
                        self._emit((chunk.pcm, chunk.sample_rate))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                rec.errors.append(f"tts {self._tts.name}: {exc!r}")
            finally:
                await _aclose(stream)
            if spoken:  # a clause the TTS could not voice must not count as heard
                self._emit((index, clause))
