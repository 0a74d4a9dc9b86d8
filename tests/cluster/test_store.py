"""``RedisStore`` passes the same behaviour tests as the memory and SQL stores, on a real
redis-server, and a conversation written by one node is readable by another after the
writer is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.agent.test_store import (  # the shared behaviour tests, run against RedisStore
    test_append_and_load_round_trip,
    test_ensure_keeps_metadata_from_creation,
    test_list_most_recent_first,
)
from tests.servers import RedisServer
from voxgate.agent.records import TurnRecord
from voxgate.agent.store import ConversationStore
from voxgate.cluster.store import RedisStore
from voxgate.providers.base import ChatMessage

pytestmark = pytest.mark.interop

__all__ = [
    "test_append_and_load_round_trip",
    "test_ensure_keeps_metadata_from_creation",
    "test_list_most_recent_first",
]


@pytest.fixture
async def store(redis_server: RedisServer, prefix: str) -> AsyncIterator[ConversationStore]:
    s = RedisStore(redis_server.url, prefix=prefix)
    yield s
    await s.close()


async def test_readable_after_the_writer_is_gone(redis_server: RedisServer, prefix: str) -> None:
    writer = RedisStore(redis_server.url, prefix=prefix)
    await writer.ensure("conv-9", {"caller": "+15550199"})
    await writer.append_message("conv-9", ChatMessage("user", "Is my order shipped?"))
    await writer.append_message("conv-9", ChatMessage("assistant", "It left on Monday"))
    await writer.append_turn("conv-9", TurnRecord(0, user_text="Is my order shipped?"))
    await writer.close()  # the node that ran the call is gone
    reader = RedisStore(redis_server.url, prefix=prefix)
    try:
        conv = await reader.load("conv-9")
        assert conv is not None
        assert [m.message.content for m in conv.messages] == [
            "Is my order shipped?", "It left on Monday",
        ]
        assert conv.metadata == {"caller": "+15550199"}
        assert conv.turns[0].user_text == "Is my order shipped?"
    finally:
        await reader.close()


async def test_retention_sets_a_ttl_on_every_key(redis_server: RedisServer, prefix: str) -> None:
    s = RedisStore(redis_server.url, prefix=prefix, ttl_s=3600)
    try:
        await s.append_message("c", ChatMessage("user", "hi"))
        assert 0 < await s.redis.ttl(f"{prefix}:conv:c") <= 3600
        assert 0 < await s.redis.ttl(f"{prefix}:conv:c:msgs") <= 3600
    finally:
        await s.close()
