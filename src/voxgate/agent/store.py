"""Conversation state, kept apart from the media objects so calls can resume and be audited.

A ``CallSession`` dies with its call; the conversation must not. The store is keyed by a
conversation id the caller side chooses (an edge parameter, a CRM id, the caller's number),
so a call that drops and reconnects with the same id resumes its context: the pipeline loads
the history before greeting.

The interface is deliberately append-only plus "load one" and "list": that maps onto SQL
tables, onto Redis lists and a sorted-set index (the cluster store later), and onto a dict.
Nothing is ever updated in place; an interrupted reply is stored once, already truncated to
what the caller heard.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from voxgate.agent.records import TurnRecord
from voxgate.providers.base import ChatMessage, ToolCall

__all__ = [
    "Conversation",
    "ConversationStore",
    "ConversationSummary",
    "MemoryStore",
    "SqliteStore",
    "StoredMessage",
    "ToolCallRecord",
]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message: ChatMessage
    at: float
    """Wall-clock time (Unix seconds) it was stored."""
    interrupted: bool = False
    """An agent reply cut short by barge-in; ``message.content`` is the heard part only."""


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    call: ToolCall
    result: str
    at: float
    error: bool = False


@dataclass(slots=True)
class Conversation:
    id: str
    created_at: float
    updated_at: float
    metadata: dict[str, str] = field(default_factory=dict)
    messages: list[StoredMessage] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)

    def chat_history(self) -> list[ChatMessage]:
        """The messages as an LLM sees them."""
        return [m.message for m in self.messages]


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: str
    created_at: float
    updated_at: float
    message_count: int
    metadata: dict[str, str]


class ConversationStore(Protocol):
    """Where conversations live; see the module docstring. All methods are coroutines so a
    networked store (Redis, PostgreSQL) fits the same interface."""

    async def ensure(self, conversation_id: str, metadata: dict[str, str] | None = None) -> None:
        """Create the conversation if it does not exist (metadata is kept from creation)."""
        ...

    async def append_message(
        self, conversation_id: str, message: ChatMessage, *, interrupted: bool = False
    ) -> None: ...

    async def append_tool_call(self, conversation_id: str, record: ToolCallRecord) -> None: ...

    async def append_turn(self, conversation_id: str, record: TurnRecord) -> None: ...

    async def load(self, conversation_id: str) -> Conversation | None: ...

    async def list_conversations(self, limit: int = 50) -> list[ConversationSummary]:
        """Most recently updated first."""
        ...

    async def close(self) -> None: ...


class MemoryStore:
    """A dict of conversations: the default for tests and single-process use."""

    def __init__(self) -> None:
        self._convs: dict[str, Conversation] = {}

    def _get(self, conversation_id: str) -> Conversation:
        conv = self._convs.get(conversation_id)
        if conv is None:
            now = time.time()
            conv = self._convs[conversation_id] = Conversation(conversation_id, now, now)
        return conv

    async def ensure(self, conversation_id: str, metadata: dict[str, str] | None = None) -> None:
        if conversation_id not in self._convs:
            self._get(conversation_id).metadata.update(metadata or {})

    async def append_message(
        self, conversation_id: str, message: ChatMessage, *, interrupted: bool = False
    ) -> None:
        conv = self._get(conversation_id)
        conv.updated_at = time.time()
        conv.messages.append(StoredMessage(message, conv.updated_at, interrupted))

    async def append_tool_call(self, conversation_id: str, record: ToolCallRecord) -> None:
        conv = self._get(conversation_id)
        conv.updated_at = time.time()
        conv.tool_calls.append(record)

    async def append_turn(self, conversation_id: str, record: TurnRecord) -> None:
        conv = self._get(conversation_id)
        conv.updated_at = time.time()
        conv.turns.append(TurnRecord.from_dict(record.to_dict()))  # a snapshot, not an alias

    async def load(self, conversation_id: str) -> Conversation | None:
        conv = self._convs.get(conversation_id)
        if conv is None:
            return None
        return Conversation(
            conv.id,
            conv.created_at,
            conv.updated_at,
            dict(conv.metadata),
            list(conv.messages),
            list(conv.tool_calls),
            [TurnRecord.from_dict(t.to_dict()) for t in conv.turns],
        )

    async def list_conversations(self, limit: int = 50) -> list[ConversationSummary]:
        convs = sorted(self._convs.values(), key=lambda c: c.updated_at, reverse=True)[:limit]
        return [
            ConversationSummary(c.id, c.created_at, c.updated_at, len(c.messages), dict(c.metadata))
            for c in convs
        ]

    async def close(self) -> None:
        return None


# --- SQLite (SQLAlchemy 2 async + aiosqlite; the same code runs on PostgreSQL) ----------

_meta = MetaData()
_conversations = Table(
    "agent_conversations",
    _meta,
    Column("id", String(128), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False, index=True),
    Column("metadata", Text, nullable=False, default="{}"),
)
_messages = Table(
    "agent_messages",
    _meta,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(128), ForeignKey("agent_conversations.id"), index=True),
    Column("at", Float, nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("tool_calls", Text, nullable=False, default="[]"),
    Column("tool_call_id", String(128)),
    Column("name", String(128)),
    Column("interrupted", Boolean, nullable=False, default=False),
)
_tool_calls = Table(
    "agent_tool_calls",
    _meta,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(128), ForeignKey("agent_conversations.id"), index=True),
    Column("at", Float, nullable=False),
    Column("call_id", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("arguments", Text, nullable=False),
    Column("result", Text, nullable=False),
    Column("error", Boolean, nullable=False, default=False),
)
_turns = Table(
    "agent_turns",
    _meta,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(128), ForeignKey("agent_conversations.id"), index=True),
    Column("record", Text, nullable=False),
)


def _calls_to_json(calls: Sequence[ToolCall]) -> str:
    return json.dumps([{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls])


def _calls_from_json(text: str) -> tuple[ToolCall, ...]:
    data: list[dict[str, str]] = json.loads(text)
    return tuple(ToolCall(d["id"], d["name"], d["arguments"]) for d in data)


class SqliteStore:
    """Conversations in SQL tables (``agent_*``); ``url`` may name any async SQLAlchemy
    database, the default is a SQLite file via aiosqlite."""

    def __init__(self, url_or_path: str = ":memory:") -> None:
        url = url_or_path if "://" in url_or_path else f"sqlite+aiosqlite:///{url_or_path}"
        kwargs: dict[str, Any] = {}
        if url.endswith(":memory:") or url.endswith("///"):
            # One connection for the engine's life, or every connection sees an empty DB.
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        self._engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._ready = False
        self._init_lock = asyncio.Lock()

    async def _init(self) -> None:
        if self._ready:
            return
        # Calls starting together on a fresh DB would race to CREATE TABLE ("already exists").
        async with self._init_lock:
            if not self._ready:
                async with self._engine.begin() as conn:
                    await conn.run_sync(_meta.create_all)
                self._ready = True

    @staticmethod
    async def _touch(conn: AsyncConnection, conversation_id: str, metadata: dict[str, str] | None = None) -> None:
        """Create the conversation row or bump its ``updated_at``, in the caller's transaction."""
        now = time.time()
        row = (
            await conn.execute(select(_conversations.c.id).where(_conversations.c.id == conversation_id))
        ).first()
        if row is None:
            await conn.execute(
                insert(_conversations).values(
                    id=conversation_id, created_at=now, updated_at=now, metadata=json.dumps(metadata or {})
                )
            )
        else:
            await conn.execute(
                _conversations.update().where(_conversations.c.id == conversation_id).values(updated_at=now)
            )

    async def _append(self, conversation_id: str, table: Table, **values: Any) -> None:
        """One transaction per append: the conversation row and the new row together."""
        await self._init()
        async with self._engine.begin() as conn:
            await self._touch(conn, conversation_id)
            await conn.execute(insert(table).values(conversation_id=conversation_id, **values))

    async def ensure(self, conversation_id: str, metadata: dict[str, str] | None = None) -> None:
        await self._init()
        async with self._engine.begin() as conn:
            await self._touch(conn, conversation_id, metadata)

    async def append_message(
        self, conversation_id: str, message: ChatMessage, *, interrupted: bool = False
    ) -> None:
        await self._append(
            conversation_id,
            _messages,
            at=time.time(),
            role=message.role,
            content=message.content,
            tool_calls=_calls_to_json(message.tool_calls),
            tool_call_id=message.tool_call_id,
            name=message.name,
            interrupted=interrupted,
        )

    async def append_tool_call(self, conversation_id: str, record: ToolCallRecord) -> None:
        await self._append(
            conversation_id,
            _tool_calls,
            at=record.at,
            call_id=record.call.id,
            name=record.call.name,
            arguments=record.call.arguments,
            result=record.result,
            error=record.error,
        )

    async def append_turn(self, conversation_id: str, record: TurnRecord) -> None:
        await self._append(conversation_id, _turns, record=json.dumps(record.to_dict()))

    async def load(self, conversation_id: str) -> Conversation | None:
        await self._init()
        async with self._engine.connect() as conn:
            head = (
                await conn.execute(
                    select(_conversations).where(_conversations.c.id == conversation_id)
                )
            ).first()
            if head is None:
                return None
            msgs = await conn.execute(
                select(_messages)
                .where(_messages.c.conversation_id == conversation_id)
                .order_by(_messages.c.seq)
            )
            calls = await conn.execute(
                select(_tool_calls)
                .where(_tool_calls.c.conversation_id == conversation_id)
                .order_by(_tool_calls.c.seq)
            )
            turns = await conn.execute(
                select(_turns.c.record)
                .where(_turns.c.conversation_id == conversation_id)
                .order_by(_turns.c.seq)
            )
            return Conversation(
                id=head.id,
                created_at=head.created_at,
                updated_at=head.updated_at,
                metadata=json.loads(head.metadata),
                messages=[
                    StoredMessage(
                        ChatMessage(
                            role=m.role,
                            content=m.content,
                            tool_calls=_calls_from_json(m.tool_calls),
                            tool_call_id=m.tool_call_id,
                            name=m.name,
                        ),
                        m.at,
                        bool(m.interrupted),
                    )
                    for m in msgs
                ],
                tool_calls=[
                    ToolCallRecord(ToolCall(c.call_id, c.name, c.arguments), c.result, c.at, bool(c.error))
                    for c in calls
                ],
                turns=[TurnRecord.from_dict(json.loads(t.record)) for t in turns],
            )

    async def list_conversations(self, limit: int = 50) -> list[ConversationSummary]:
        await self._init()
        count = (
            select(_messages.c.conversation_id, func.count().label("n"))
            .group_by(_messages.c.conversation_id)
            .subquery()
        )
        query = (
            select(_conversations, func.coalesce(count.c.n, 0).label("n"))
            .outerjoin(count, count.c.conversation_id == _conversations.c.id)
            .order_by(_conversations.c.updated_at.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = await conn.execute(query)
            return [
                ConversationSummary(r.id, r.created_at, r.updated_at, int(r.n), json.loads(r.metadata))
                for r in rows
            ]

    async def close(self) -> None:
        await self._engine.dispose()
