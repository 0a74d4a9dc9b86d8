"""Outbound calls are in the cluster registry from their first ring: a hang-up sent to
another node reaches the dialling node, which CANCELs the INVITE (real redis-server, a real
SIP edge, sipp ringing until it gets the CANCEL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.helpers import local_call
from tests.cluster.test_registry import Member, _gone, make_member, until
from tests.servers import RedisServer
from tests.sip.interop.peers import (
    edge_options,
    free_port,
    free_sip_port,
    needs_sipp,
    running_edge,
    sipp,
)
from voxgate.config import SipTrunk

pytestmark = pytest.mark.interop
SCENARIOS = Path(__file__).parent / "scenarios"


@pytest.fixture
async def members(redis_server: RedisServer, tmp_path: Path, prefix: str) -> AsyncIterator[list[Member]]:
    db = f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"
    out: list[Member] = []
    try:
        for name in ("a", "b"):
            out.append(await make_member(redis_server.url, db, name, prefix))
        yield out
    finally:
        for m in out:
            await m.manager.drain(0.5)
            await m.node.close()
            await m.observer.close()
            await m.records.close()


async def test_ringing_call_is_registered_and_controlled_from_another_node(members: list[Member]) -> None:
    a, b = members
    session, control = local_call()
    await a.manager.ring(session)
    owner = await b.node.registry.owner(session.call_id)
    assert owner is not None and (owner.node_id, owner.state) == ("a", "ringing")
    assert a.manager.get(session.call_id) is session and session.call_id not in a.manager.calls
    result = await b.node.control(session.call_id, "hangup", {})
    assert (result.ok, result.node) == (True, "a") and control.actions == [("hangup", "api_hangup")]
    await a.manager.ring_done(session)  # the edge, once the dial is over
    await until(_gone(b, session.call_id))
    assert await b.node.registry.calls_of("a") == set()


async def test_answered_call_moves_from_ringing_to_answered(members: list[Member]) -> None:
    a, b = members
    session, _ = local_call()
    await a.manager.ring(session)
    await a.manager.start(session)
    await a.manager.ring_done(session)
    owner = await b.node.registry.owner(session.call_id)
    assert owner is not None and owner.state == "answered"  # still registered, not ringing
    session.end("completed")
    await until(_gone(b, session.call_id))


@needs_sipp
async def test_sip_dial_is_cancelled_through_another_node(members: list[Member]) -> None:
    a, b = members
    port = free_sip_port()
    trunk = SipTrunk(name="t", host="127.0.0.1", port=port)
    async with (
        running_edge(a.manager, edge_options(trunks=[trunk])) as edge,
        sipp("-sf", str(SCENARIOS / "uas_ring_cancel.xml"), "-p", str(port), "-mp", str(free_port()), "-m", "1") as peer,
    ):
        await asyncio.sleep(0.3)  # sipp binds its port
        call = edge.dial("+15550009", trunk="t", app="agent")
        await until(lambda: call.state == "ringing")
        owner = await b.node.registry.owner(call.call_id)
        assert owner is not None and (owner.node_id, owner.state, owner.route) == ("a", "ringing", "agent")
        result = await b.node.control(call.call_id, "hangup", {})
        assert result.ok and result.node == "a", result
        await asyncio.wait_for(call.wait_finished(), 10)
        assert call.session.end_reason == "api_hangup"
        assert await asyncio.wait_for(peer.wait(), 10) == 0  # sipp saw CANCEL, sent 487, got ACK
        await until(_gone(b, call.call_id))
        assert a.manager.ringing == {} and a.manager.calls == {}
