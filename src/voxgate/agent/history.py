"""The conversation as the LLM sees it, mirrored into a ``ConversationStore``.

The pipeline's frame handler and reply tasks must never wait on a database, so history is
kept in memory (the truth for this call) and every append is also queued to one writer task
that persists in order. ``load()`` at call start is the one awaited read: it is what makes a
reconnecting call resume where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from voxgate.agent.records import TurnRecord
from voxgate.agent.store import ConversationStore, ToolCallRecord
from voxgate.providers.base import ChatMessage, ToolCall

__all__ = ["History"]

log = logging.getLogger(__name__)


class History:
    def __init__(
        self, store: ConversationStore, conversation_id: str, *, max_messages: int = 40
    ) -> None:
        self.store = store
        self.conversation_id = conversation_id
        self.max_messages = max_messages
        self.messages: list[ChatMessage] = []
        self.turns: list[TurnRecord] = []
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.write_errors = 0
        self.redact: Callable[[str], str] | None = None
        """Applied to everything persisted (PII redaction, per route); the in-memory history
        the LLM sees stays verbatim for the rest of the call."""

    async def load(self, metadata: dict[str, str] | None = None) -> bool:
        """Read the stored conversation; True when it existed (the call is a resumption)."""
        conv = await self.store.load(self.conversation_id)
        if conv is None:
            await self.store.ensure(self.conversation_id, metadata)
        else:
            self.messages = conv.chat_history()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        return conv is not None and bool(conv.messages)

    def add(self, message: ChatMessage, *, interrupted: bool = False) -> None:
        self.messages.append(message)
        cid = self.conversation_id
        stored = self._redacted(message)
        self._queue.put_nowait(
            lambda: self.store.append_message(cid, stored, interrupted=interrupted)
        )

    def add_turn(self, record: TurnRecord) -> None:
        self.turns.append(record)
        cid = self.conversation_id
        stored = self.redacted_turn(record)
        self._queue.put_nowait(lambda: self.store.append_turn(cid, stored))

    def redacted_turn(self, record: TurnRecord) -> TurnRecord:
        """``record`` as it may be persisted (a copy with PII redacted, if redaction is on)."""
        return TurnRecord.from_dict(self._scrub(record.to_dict())) if self.redact else record

    def add_tool_call(self, call: ToolCall, result: str, at: float, *, error: bool = False) -> None:
        """Persist one executed tool call and its result (the call record's audit trail)."""
        cid = self.conversation_id
        if self.redact is not None:
            call = dataclasses.replace(call, arguments=self.redact(call.arguments))
            result = self.redact(result)
        rec = ToolCallRecord(call, result, at, error)
        self._queue.put_nowait(lambda: self.store.append_tool_call(cid, rec))

    def _redacted(self, m: ChatMessage) -> ChatMessage:
        r = self.redact
        if r is None:
            return m
        calls = tuple(dataclasses.replace(c, arguments=r(c.arguments)) for c in m.tool_calls)
        return dataclasses.replace(m, content=r(m.content), tool_calls=calls)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str) and self.redact is not None:
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value

    def prompt(self, system_prompt: str, extra: ChatMessage | None = None) -> list[ChatMessage]:
        """System prompt + the most recent messages (+ an uncommitted user message)."""
        recent = self.messages[-self.max_messages :]
        out = [ChatMessage("system", system_prompt)] if system_prompt else []
        out.extend(recent)
        if extra is not None:
            out.append(extra)
        return out

    async def _write_loop(self) -> None:
        while (job := await self._queue.get()) is not None:
            try:
                await job()
            except Exception:  # a failing store must not end the call; count and log
                self.write_errors += 1
                log.exception("conversation store write failed (%s)", self.conversation_id)

    async def close(self) -> None:
        """Persist everything queued, then stop the writer."""
        self._queue.put_nowait(None)
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
