"""Registry, control bus and reaper on a real redis-server, nodes in one process.

Each node has its own Redis connection, call manager and records handle (one shared SQLite
file), so the only thing they share is what real nodes share: Redis and the records DB.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.cluster.helpers import hold_manager, local_call
from tests.servers import RedisServer
from voxgate.calls.manager import CallManager
from voxgate.cluster.config import ClusterSettings
from voxgate.cluster.node import ClusterNode
from voxgate.observability.observer import CallObserver
from voxgate.observability.records import CallRecords

pytestmark = pytest.mark.interop


@dataclass
class Member:
    node: ClusterNode
    manager: CallManager
    records: CallRecords
    observer: CallObserver


async def make_member(url: str, db: str, node_id: str, prefix: str) -> Member:
    settings = ClusterSettings(redis_url=url, node_id=node_id, heartbeat_s=0.1,
                               heartbeat_timeout_s=0.5, key_prefix=prefix, control_timeout_s=1.0)
    manager = hold_manager()
    records = await CallRecords.open(db, node_id=node_id)
    observer = CallObserver(records)
    observer.start()
    manager.on_start.append(observer.call_started)
    manager.on_end.append(observer.call_ended)
    node = ClusterNode(settings, manager, records)
    await node.start()
    return Member(node, manager, records, observer)


@pytest.fixture
async def members(redis_server: RedisServer, tmp_path: Path, prefix: str) -> AsyncIterator[list[Member]]:
    db = f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"
    out: list[Member] = []
    try:
        for name in ("a", "b", "c"):
            out.append(await make_member(redis_server.url, db, name, prefix))
        yield out
    finally:
        # Bounded: an intermittent hang in this teardown (seen twice under load, not yet
        # reproduced alone) must not eat pytest's 300 s timeout; it is logged instead.
        for m in out:
            for step in (m.manager.drain(0.5), m.node.close(), m.observer.close(), m.records.close()):
                try:
                    await asyncio.wait_for(step, 15)
                except TimeoutError:
                    logging.getLogger(__name__).error("cluster test teardown step timed out: %s", step)


async def until(predicate: object, limit_s: float = 5.0) -> None:
    """Poll a condition (bounded in time) instead of asserting on timings."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        value = predicate() if callable(predicate) else predicate
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_calls_are_registered_with_their_owner(members: list[Member]) -> None:
    a, b, _ = members
    session, _control = local_call()
    await a.manager.start(session)
    owner = await b.node.registry.owner(session.call_id)
    assert owner is not None and owner.node_id == "a" and owner.edge == "local"
    assert await b.node.registry.calls_of("a") == {session.call_id}
    session.end("completed")
    await until(_gone(b, session.call_id))
    assert await b.node.registry.calls_of("a") == set()
    nodes = {n.node_id: n for n in await b.node.nodes()}
    assert set(nodes) == {"a", "b", "c"} and all(n.alive for n in nodes.values())


def _gone(member: Member, call_id: str) -> object:
    async def check() -> bool:
        return await member.node.registry.owner(call_id) is None

    return check


async def test_control_reaches_the_owning_node(members: list[Member]) -> None:
    a, b, c = members
    session, control = local_call()
    await a.manager.start(session)
    assert (await b.node.control(session.call_id, "hold", {})).ok
    assert (await c.node.control(session.call_id, "dtmf", {"digits": "12#"})).ok
    result = await b.node.control(session.call_id, "transfer", {"target": "sip:desk@127.0.0.1"})
    assert result.ok and result.node == "a"
    assert control.actions == [("hold", ""), ("dtmf", "12#"), ("transfer", "sip:desk@127.0.0.1")]
    assert await asyncio.wait_for(session.wait_ended(), 5) == "transferred"
    await a.observer.flush()
    await until(_gone(b, session.call_id))
    row = await c.records.get_call(session.call_id)
    assert row is not None and row["end_reason"] == "transferred" and row["node_id"] == "a"
    missing = await b.node.control("call_nope", "hangup", {})
    assert (missing.ok, missing.status) == (False, 404)


async def test_hangup_through_another_node(members: list[Member]) -> None:
    a, _, c = members
    session, control = local_call()
    await a.manager.start(session)
    result = await c.node.control(session.call_id, "hangup", {"reason": "api_hangup"})
    assert result.ok
    assert await asyncio.wait_for(session.wait_ended(), 5) == "api_hangup"
    assert control.actions == [("hangup", "api_hangup")]


async def test_unreachable_owner_is_503(members: list[Member]) -> None:
    a, b, _ = members
    session, _ = local_call()
    await a.manager.start(session)
    await a.node.bus.close()  # the process is wedged: registry entry stays, nobody listens
    result = await b.node.control(session.call_id, "hangup", {})
    assert (result.ok, result.status) == (False, 503)


async def test_dead_node_calls_are_marked_node_lost_exactly_once(
    members: list[Member], redis: Redis, prefix: str
) -> None:
    a, b, c = members
    sessions = [local_call()[0] for _ in range(3)]
    for s in sessions:
        await a.manager.start(s)
    await a.observer.flush()
    # Node a dies: no more beats, no goodbye. Its heartbeat key expires on its own.
    await a.node.close(leave=False)
    ids = {s.call_id for s in sessions}

    async def all_lost() -> bool:
        rows = [await b.records.get_call(i) for i in ids]
        return all(r is not None and r["end_reason"] == "node_lost" for r in rows)

    await until(all_lost, limit_s=10)
    events = await b.node.registry.events("node_lost")
    assert len(events) == 1 and events[0]["node"] == "a"
    assert events[0]["reaper"] in {"b", "c"}
    assert set(events[0]["calls"].split(",")) == ids
    assert len(b.node.reaped) + len(c.node.reaped) == 1
    for i in ids:
        row = await c.records.get_call(i)
        assert row is not None and [e["kind"] for e in row["events"]] == ["node_lost"]
        assert await c.node.registry.owner(i) is None
    assert "a" not in {n.node_id for n in await c.node.nodes()}
    # A few more beats by both survivors change nothing.
    for _ in range(3):
        await b.node.beat()
        await c.node.beat()
    assert len(await b.node.registry.events("node_lost")) == 1
    for s in sessions:
        s.end("test_over")


async def test_a_stalled_node_that_was_reaped_ends_its_calls(members: list[Member]) -> None:
    a, b, _ = members
    session, _ = local_call()
    await a.manager.start(session)
    await a.observer.flush()
    # Stall a's beat loop past the timeout, let a survivor reap it, then resume a's beat.
    assert a.node._task is not None
    a.node._task.cancel()
    await until(lambda: bool(b.node.reaped) or bool(members[2].node.reaped), limit_s=10)
    await a.node.beat()
    assert await asyncio.wait_for(session.wait_ended(), 5) == "node_lost"
    row = await b.records.get_call(session.call_id)
    assert row is not None and row["end_reason"] == "node_lost"
