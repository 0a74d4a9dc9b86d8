"""``RedisStore``: the agent's ``ConversationStore`` on Redis, shared by every node.

A conversation outlives the node that ran it: when a node dies mid-call the conversation
so far is still in Redis, readable by any survivor (and a reconnecting caller resumes it on
whichever node takes the new call). The layout follows the store's append-only interface:

- ``P:conv:<id>``: hash (created_at, updated_at, metadata JSON)
- ``P:conv:<id>:msgs`` / ``:tools`` / ``:turns``: lists of JSON entries, appended with RPUSH
- ``P:convs``: sorted set id -> updated_at, for "most recently updated first"

Each append is one MULTI round trip (create-if-missing, touch, push, index), so a reader
never sees a message without its conversation head. ``ttl_s`` applies retention to every
key of a conversation on each write, so idle conversations expire by themselves.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from voxgate.agent.records import TurnRecord
from voxgate.agent.store import (
    Conversation,
    ConversationSummary,
    StoredMessage,
    ToolCallRecord,
)
from voxgate.cluster._redis import connect, text, text_map
from voxgate.providers.base import ChatMessage, ToolCall

__all__ = ["RedisStore"]


def _message_json(message: ChatMessage, at: float, interrupted: bool) -> str:
    return json.dumps({
        "role": message.role, "content": message.content,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls],
        "tool_call_id": message.tool_call_id, "name": message.name,
        "at": at, "interrupted": interrupted,
    })  # fmt: skip


def _message_from(data: dict[str, Any]) -> StoredMessage:
    calls = tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in data["tool_calls"])
    message = ChatMessage(
        role=data["role"], content=data["content"], tool_calls=calls,
        tool_call_id=data["tool_call_id"], name=data["name"],
    )  # fmt: skip
    return StoredMessage(message, float(data["at"]), bool(data["interrupted"]))


class RedisStore:
    """Implements ``voxgate.agent.store.ConversationStore``."""

    def __init__(
        self, redis: Redis | str, prefix: str = "voxgate", ttl_s: int | None = None
    ) -> None:
        self.redis: Redis = connect(redis) if isinstance(redis, str) else redis
        self.prefix = prefix
        self.ttl_s = ttl_s

    def _k(self, conversation_id: str, part: str = "") -> str:
        return f"{self.prefix}:conv:{conversation_id}{':' + part if part else ''}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:convs"

    def _touch(
        self, pipe: Pipeline, conversation_id: str, metadata: dict[str, str] | None = None
    ) -> float:
        now = time.time()
        head = self._k(conversation_id)
        pipe.hsetnx(head, "created_at", repr(now))
        pipe.hsetnx(head, "metadata", json.dumps(metadata or {}))
        pipe.hset(head, "updated_at", repr(now))
        pipe.zadd(self._index, {conversation_id: now})
        return now

    def _expire(self, pipe: Pipeline, conversation_id: str) -> None:
        if self.ttl_s is not None:
            for part in ("", "msgs", "tools", "turns"):
                pipe.expire(self._k(conversation_id, part), self.ttl_s)

    async def ensure(self, conversation_id: str, metadata: dict[str, str] | None = None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            self._touch(pipe, conversation_id, metadata)
            self._expire(pipe, conversation_id)
            await pipe.execute()

    async def append_message(
        self, conversation_id: str, message: ChatMessage, *, interrupted: bool = False
    ) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            now = self._touch(pipe, conversation_id)
            pipe.rpush(self._k(conversation_id, "msgs"), _message_json(message, now, interrupted))
            self._expire(pipe, conversation_id)
            await pipe.execute()

    async def append_tool_call(self, conversation_id: str, record: ToolCallRecord) -> None:
        entry = json.dumps({
            "id": record.call.id, "name": record.call.name, "arguments": record.call.arguments,
            "result": record.result, "at": record.at, "error": record.error,
        })  # fmt: skip
        async with self.redis.pipeline(transaction=True) as pipe:
            self._touch(pipe, conversation_id)
            pipe.rpush(self._k(conversation_id, "tools"), entry)
            self._expire(pipe, conversation_id)
            await pipe.execute()

    async def append_turn(self, conversation_id: str, record: TurnRecord) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            self._touch(pipe, conversation_id)
            pipe.rpush(self._k(conversation_id, "turns"), json.dumps(record.to_dict()))
            self._expire(pipe, conversation_id)
            await pipe.execute()

    async def load(self, conversation_id: str) -> Conversation | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._k(conversation_id))
            pipe.lrange(self._k(conversation_id, "msgs"), 0, -1)
            pipe.lrange(self._k(conversation_id, "tools"), 0, -1)
            pipe.lrange(self._k(conversation_id, "turns"), 0, -1)
            head, msgs, tools, turns = await pipe.execute()
        if not head:
            return None
        h = text_map(head)
        tool_records = []
        for raw in tools:
            d = json.loads(raw)
            tool_records.append(
                ToolCallRecord(ToolCall(d["id"], d["name"], d["arguments"]), d["result"],
                               float(d["at"]), bool(d["error"]))
            )  # fmt: skip
        return Conversation(
            id=conversation_id,
            created_at=float(h.get("created_at", 0.0)),
            updated_at=float(h.get("updated_at", 0.0)),
            metadata=json.loads(h.get("metadata", "{}")),
            messages=[_message_from(json.loads(m)) for m in msgs],
            tool_calls=tool_records,
            turns=[TurnRecord.from_dict(json.loads(t)) for t in turns],
        )

    async def list_conversations(self, limit: int = 50) -> list[ConversationSummary]:
        ids = [text(i) for i in await self.redis.zrevrange(self._index, 0, limit - 1)]
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.hgetall(self._k(cid))
                pipe.llen(self._k(cid, "msgs"))
            replies = await pipe.execute()
        out = []
        for i, cid in enumerate(ids):
            head, count = replies[2 * i], replies[2 * i + 1]
            if not head:  # expired by retention; the index entry is stale
                continue
            h = text_map(head)
            out.append(
                ConversationSummary(cid, float(h.get("created_at", 0.0)),
                                    float(h.get("updated_at", 0.0)), int(count),
                                    json.loads(h.get("metadata", "{}")))
            )  # fmt: skip
        return out

    async def close(self) -> None:
        await self.redis.aclose()
