"""One agent reply: LLM text deltas -> clause chunker -> TTS -> speaker, as a cancellable task.

The LLM and the TTS run concurrently: a producer turns the token stream into clauses while a
consumer synthesizes them one after another, so the first clause is spoken while the LLM is
still writing the rest. Barge-in cancels the task; both provider iterators are closed
explicitly so an embedded model stops generating instead of finishing in the background.

A speculative reply (early intent) runs *held*: audio is produced but kept back. ``commit()``
releases what was held and lets the rest flow; a discarded speculation is cancelled before
any of it reaches the sink. Stage times are stamped on the reply's ``TurnRecord``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from voxgate.agent.chunker import ChunkerConfig, ClauseChunker
from voxgate.agent.records import TurnRecord
from voxgate.agent.speaker import Speaker
from voxgate.audio.frame import Pcm16
from voxgate.providers.base import LLM, TTS, ChatMessage, TextDelta

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
        stream = self._llm.chat(self._messages)
        try:
            async for event in stream:
                if not isinstance(event, TextDelta) or not event.text:
                    continue  # tool calls need a tool registry (knowledge/); usage is ignored
                if rec.llm_first_token is None:
                    rec.llm_first_token = self._clock()
                self.text += event.text
                for c in self._chunker.push(event.text):
                    clauses.put_nowait(c)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the caller must hear something, not silence
            rec.errors.append(f"llm {self._llm.name}: {exc!r}")
            if not self.text.strip() and self._error_text:
                self.text = self._error_text
                self._chunker.reset()
                for c in self._chunker.push(self._error_text + " "):
                    clauses.put_nowait(c)
        finally:
            await _aclose(stream)
        for c in self._chunker.flush():
            clauses.put_nowait(c)

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
