"""Call records on both real databases: SQLite file and a PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.servers import PostgresServer
from voxgate.observability.records import CallFilter, CallRecords


@pytest.fixture(params=["sqlite", "postgresql"])
async def records(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[CallRecords]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = await server.new_database()
    recs = await CallRecords.open(url, node_id=f"node-{tmp_path.name}")
    yield recs
    await recs.close()


async def test_call_lifecycle_is_recorded(records: CallRecords) -> None:
    await records.start_call("c1", edge="sip", caller="alice", callee="100", route="agent")
    await records.add_transcript("c1", "caller", "hello", confidence=0.9, offset_s=1.0)
    await records.add_transcript("c1", "agent", "Hi, how can I help?", offset_s=1.8)
    await records.add_turn("c1", 0, {"stt_ms": 200, "llm_ttft_ms": 150}, voice_to_voice_ms=640)
    await records.add_turn("c1", 1, {"stt_ms": 210}, voice_to_voice_ms=900, interrupted=True)
    await records.add_event("c1", "dtmf", {"digit": "5"}, offset_s=3.0)
    await records.add_network_stats(
        "c1", offset_s=5, packets=250, loss_pct=1.2, jitter_ms=8.5, jb_delay_ms=40,
        underruns=0, concealed_ms=60,
    )
    await records.end_call("c1", "caller_hangup", cost_usd=0.0123, cost_detail={"stt": 0.01})
    await records.end_call("c1", "later_reason")  # first end wins
    call = await records.get_call("c1")
    assert call is not None
    assert call["end_reason"] == "caller_hangup" and call["turn_count"] == 2
    assert call["latency_p50_ms"] == pytest.approx(770) and call["latency_max_ms"] == 900
    assert [t["speaker"] for t in call["transcript"]] == ["caller", "agent"]
    assert call["turns"][1]["interrupted"] is True
    assert call["events"][0]["data"] == {"digit": "5"}
    assert call["network"][0]["loss_pct"] == pytest.approx(1.2)
    assert call["duration_s"] >= 0 and call["cost_detail"] == {"stt": 0.01}


async def test_filters(records: CallRecords) -> None:
    await records.start_call("a", edge="sip", route="r1")
    await records.start_call("b", edge="webrtc", route="r2")
    await records.add_turn("b", 0, {}, voice_to_voice_ms=1500)
    await records.end_call("b", "completed")
    assert [c["id"] for c in await records.list_calls(CallFilter(edge="sip"))] == ["a"]
    assert [c["id"] for c in await records.list_calls(CallFilter(active=True))] == ["a"]
    assert [c["id"] for c in await records.list_calls(CallFilter(min_latency_ms=1000))] == ["b"]
    assert [c["id"] for c in await records.list_calls(CallFilter(end_reason="completed"))] == ["b"]


async def test_recover_interrupted_only_touches_own_node(records: CallRecords) -> None:
    await records.start_call("mine", edge="sip")
    other = CallRecords(records.engine, node_id="someone-else")
    await other.start_call("theirs", edge="sip")
    assert await records.recover_interrupted() == ["mine"]
    assert (await records.get_call("mine"))["end_reason"] == "interrupted"  # type: ignore[index]
    assert (await records.get_call("theirs"))["ended_at"] is None  # type: ignore[index]


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from voxgate.observability.records import CallRecords
    async def main():
        recs = await CallRecords.open(sys.argv[1], node_id="n1")
        await recs.start_call("victim", edge="sip", caller="bob")
        i = 0
        while True:
            await recs.add_transcript("victim", "caller", f"utterance {i}", offset_s=i)
            i += 1
            if i == 5:
                print("ready", flush=True)
            await asyncio.sleep(0.01)
    asyncio.run(main())
    """
)


async def test_kill_9_mid_call_keeps_everything_and_recovers(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/crash.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, url, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"ready"
    await asyncio.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    recs = await CallRecords.open(url, node_id="n1")
    try:
        assert await recs.recover_interrupted() == ["victim"]
        call = await recs.get_call("victim")
        assert call is not None and call["end_reason"] == "interrupted"
        assert len(call["transcript"]) >= 5
        texts = [t["text"] for t in call["transcript"]]
        assert texts == [f"utterance {i}" for i in range(len(texts))]
    finally:
        await recs.close()
