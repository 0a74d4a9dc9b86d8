"""Conversation stores: the same behaviour from the dict and the SQL implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voxgate.agent.records import TurnRecord
from voxgate.agent.store import ConversationStore, MemoryStore, SqliteStore, ToolCallRecord
from voxgate.providers.base import ChatMessage, ToolCall


@pytest.fixture(params=["memory", "sqlite-memory", "sqlite-file"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConversationStore]:
    s: ConversationStore
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite-memory":
        s = SqliteStore()
    else:
        s = SqliteStore(str(tmp_path / "conv.db"))
    yield s
    await s.close()


async def test_append_and_load_round_trip(store: ConversationStore) -> None:
    assert await store.load("c1") is None
    await store.ensure("c1", {"caller": "+15550100"})
    await store.append_message("c1", ChatMessage("user", "What time do you open?"))
    call = ToolCall("t1", "opening_hours", '{"day": "Saturday"}')
    await store.append_message("c1", ChatMessage("assistant", "", tool_calls=(call,)))
    await store.append_message("c1", ChatMessage("tool", "9 to 5", tool_call_id="t1"))
    await store.append_tool_call("c1", ToolCallRecord(call, "9 to 5", 1.0))
    await store.append_message("c1", ChatMessage("assistant", "We open at nine"), interrupted=True)
    rec = TurnRecord(0, user_text="What time do you open?", speech_end=1.0, endpoint=1.5)
    await store.append_turn("c1", rec)

    conv = await store.load("c1")
    assert conv is not None
    assert conv.metadata == {"caller": "+15550100"}
    assert [m.message for m in conv.messages] == [
        ChatMessage("user", "What time do you open?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", "9 to 5", tool_call_id="t1"),
        ChatMessage("assistant", "We open at nine"),
    ]
    assert [m.interrupted for m in conv.messages] == [False, False, False, True]
    assert conv.tool_calls[0].call == call and conv.tool_calls[0].result == "9 to 5"
    assert conv.turns[0].endpointing == pytest.approx(0.5)
    assert conv.chat_history()[0].content == "What time do you open?"


async def test_list_most_recent_first(store: ConversationStore) -> None:
    await store.append_message("a", ChatMessage("user", "one"))
    await store.append_message("b", ChatMessage("user", "two"))
    await store.append_message("b", ChatMessage("user", "three"))
    await store.ensure("c")
    summaries = await store.list_conversations()
    assert [s.id for s in summaries][0] == "c"
    counts = {s.id: s.message_count for s in summaries}
    assert counts == {"a": 1, "b": 2, "c": 0}
    assert len(await store.list_conversations(limit=1)) == 1


async def test_ensure_keeps_metadata_from_creation(store: ConversationStore) -> None:
    await store.ensure("x", {"k": "1"})
    await store.ensure("x", {"k": "2"})
    conv = await store.load("x")
    assert conv is not None and conv.metadata == {"k": "1"}


async def test_sqlite_file_survives_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    s1 = SqliteStore(path)
    await s1.append_message("call-1", ChatMessage("user", "remember me"))
    await s1.close()
    s2 = SqliteStore(path)
    conv = await s2.load("call-1")
    await s2.close()
    assert conv is not None and conv.chat_history() == [ChatMessage("user", "remember me")]


async def test_sqlite_calls_starting_together_on_a_fresh_file(tmp_path: Path) -> None:
    """Two calls' first loads must not race to create the tables ("already exists")."""
    import asyncio

    s = SqliteStore(f"sqlite+aiosqlite:///{tmp_path}/fresh.db")
    try:
        loaded = await asyncio.gather(*(s.load(f"conv_{i}") for i in range(4)))
        assert loaded == [None] * 4
    finally:
        await s.close()
