"""The Redis registry of live calls and nodes, and the reaper that closes a dead node's calls.

Layout (``P`` = ``cluster.key_prefix``):

- ``P:call:<call_id>``: hash (node, edge, caller, callee, route, state, started_at): who owns
  a call (outbound ones from their first ring, ``state=ringing``),
  so a control command arriving on any node can be sent to the owner.
- ``P:node:<node>:calls``: set of that node's call ids, so a survivor can find them after the
  node is gone without scanning every call.
- ``P:node:<node>:hb``: the heartbeat, a JSON load report with a TTL of
  ``heartbeat_timeout_s``. Its expiry *is* the death certificate: no clock comparisons
  between machines, Redis' own expiry decides.
- ``P:nodes``: set of registered nodes; a member without a heartbeat key is dead.
- ``P:reap:<node>``: ``SET NX`` lock so exactly one survivor reaps a dead node.
- ``P:events``: a capped stream of cluster events (``node_lost``) for audits and tests.

The records database stays the durable store: the reaper writes ``end_reason="node_lost"``
there first and only then forgets the node in Redis, so a reaper that dies half-way leaves
the work for the next survivor (its lock expires) rather than losing it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select

from voxgate.cluster._redis import fields, text_map, text_set
from voxgate.observability.records import CallRecords
from voxgate.observability.schema import CallRow, EventRow

log = logging.getLogger(__name__)

NODE_LOST = "node_lost"
EVENTS_MAXLEN = 10_000


class Keys:
    """Every key name in one place, so the layout above is the only source of truth."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def call(self, call_id: str) -> str:
        return f"{self.prefix}:call:{call_id}"

    def node_calls(self, node: str) -> str:
        return f"{self.prefix}:node:{node}:calls"

    def heartbeat(self, node: str) -> str:
        return f"{self.prefix}:node:{node}:hb"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}:nodes"

    def reap_lock(self, node: str) -> str:
        return f"{self.prefix}:reap:{node}"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    def control(self, node: str) -> str:
        return f"{self.prefix}:ctl:{node}"

    def control_reply(self, node: str) -> str:
        return f"{self.prefix}:ctlreply:{node}"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """One node's last heartbeat, as the node list and load-aware placement read it."""

    node_id: str
    alive: bool
    active_calls: int = 0
    cpu_percent: float = 0.0
    draining: bool = False
    url: str | None = None
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class CallOwner:
    call_id: str
    node_id: str
    edge: str = ""
    route: str = ""
    state: str = ""
    """``ringing`` (an outbound call not answered yet) or ``answered``."""


class CallRegistry:
    """Redis operations on the registry; no timers, no tasks (``ClusterNode`` drives them)."""

    def __init__(self, redis: Redis, prefix: str = "voxgate") -> None:
        self.redis = redis
        self.keys = Keys(prefix)

    # --- calls -------------------------------------------------------------------------

    async def register_call(self, node: str, call_id: str, info: dict[str, str]) -> None:
        """Two writes in one MULTI: the owner hash and the node's set never disagree."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.call(call_id), mapping=fields({"node": node, **info}))
            pipe.sadd(self.keys.node_calls(node), call_id)
            await pipe.execute()

    async def unregister_call(self, node: str, call_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.call(call_id))
            pipe.srem(self.keys.node_calls(node), call_id)
            await pipe.execute()

    async def owner(self, call_id: str) -> CallOwner | None:
        data = text_map(await self.redis.hgetall(self.keys.call(call_id)))
        if not data:
            return None
        return CallOwner(call_id, data["node"], data.get("edge", ""), data.get("route", ""),
                         data.get("state", ""))  # fmt: skip

    async def calls_of(self, node: str) -> set[str]:
        return text_set(await self.redis.smembers(self.keys.node_calls(node)))

    # --- nodes -------------------------------------------------------------------------

    async def heartbeat(self, node: str, report: dict[str, Any], ttl_s: float) -> bool:
        """Refresh this node's heartbeat; False if the node had been declared dead.

        The membership check and the refresh are one round trip; a node that finds itself
        gone from ``P:nodes`` was reaped while it was stalled and must not keep its calls.
        """
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sismember(self.keys.nodes, node)
            pipe.set(self.keys.heartbeat(node), json.dumps(report), px=int(ttl_s * 1000))
            pipe.sadd(self.keys.nodes, node)
            member, *_ = await pipe.execute()
        return bool(member)

    async def join(self, node: str, report: dict[str, Any], ttl_s: float) -> set[str]:
        """First heartbeat of a (re)started node; returns call ids left from a former life."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.heartbeat(node), json.dumps(report), px=int(ttl_s * 1000))
            pipe.sadd(self.keys.nodes, node)
            pipe.smembers(self.keys.node_calls(node))
            *_, stale = await pipe.execute()
        return text_set(stale)

    async def leave(self, node: str) -> None:
        """Graceful exit after drain: nothing left for a reaper to do."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.heartbeat(node))
            pipe.srem(self.keys.nodes, node)
            await pipe.execute()

    async def nodes(self) -> list[NodeInfo]:
        names = sorted(text_set(await self.redis.smembers(self.keys.nodes)))
        if not names:
            return []
        beats = await self.redis.mget([self.keys.heartbeat(n) for n in names])
        out = []
        for name, beat in zip(names, beats, strict=True):
            if beat is None:
                out.append(NodeInfo(name, alive=False))
                continue
            data = json.loads(beat)
            out.append(
                NodeInfo(
                    name,
                    alive=True,
                    active_calls=int(data.get("active_calls", 0)),
                    cpu_percent=float(data.get("cpu_percent", 0.0)),
                    draining=bool(data.get("draining", False)),
                    url=data.get("url"),
                    at=float(data.get("at", 0.0)),
                )
            )
        return out

    async def dead_nodes(self, me: str) -> list[str]:
        return [n.node_id for n in await self.nodes() if not n.alive and n.node_id != me]

    async def try_reap_lock(self, dead: str, me: str, hold_s: float) -> bool:
        """``SET NX PX``: only the survivor that wins may reap ``dead``.

        The lock outlives the reap (it expires on its own), so a survivor that listed the
        dead node a moment before the winner finished cannot reap it a second time.
        """
        return bool(
            await self.redis.set(self.keys.reap_lock(dead), me, nx=True, px=int(hold_s * 1000))
        )

    async def forget_node(self, dead: str, call_ids: Iterable[str]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for call_id in call_ids:
                pipe.delete(self.keys.call(call_id))
            pipe.delete(self.keys.node_calls(dead))
            pipe.srem(self.keys.nodes, dead)
            await pipe.execute()

    async def add_event(self, kind: str, **info: str) -> None:
        await self.redis.xadd(
            self.keys.events, fields({"kind": kind, "at": f"{time.time():.3f}", **info}),
            maxlen=EVENTS_MAXLEN, approximate=True,
        )  # fmt: skip

    async def events(self, kind: str | None = None) -> list[dict[str, str]]:
        entries = await self.redis.xrange(self.keys.events)
        out = []
        for _id, raw in entries or []:
            data = text_map(raw)
            if kind is None or data.get("kind") == kind:
                out.append(data)
        return out


async def mark_node_lost(
    records: CallRecords | None, dead: str, call_ids: Iterable[str], reaper: str
) -> list[str]:
    """Close the dead node's open calls in the records DB with ``end_reason=node_lost``.

    Both sources count: the calls the registry lists and any row the DB still has open for
    that node (a call whose registry write never happened). Rows already ended keep their
    first reason, so a repeated reap changes nothing.
    """
    if records is None:
        return sorted(set(call_ids))
    wanted = set(call_ids)
    now = datetime.now(UTC)
    closed: list[str] = []
    async with records.engine.begin() as conn:
        rows = (
            await conn.execute(
                select(CallRow.id, CallRow.started_at, CallRow.node_id).where(
                    CallRow.ended_at.is_(None),
                    (CallRow.node_id == dead) | CallRow.id.in_(wanted or {""}),
                )
            )
        ).all()
        for call_id, started_at, _node in rows:
            started = started_at if started_at.tzinfo is not None else started_at.replace(tzinfo=UTC)
            await conn.execute(
                CallRow.__table__.update()  # type: ignore[attr-defined]
                .where(CallRow.id == call_id, CallRow.ended_at.is_(None))
                .values(ended_at=now, end_reason=NODE_LOST,
                        duration_s=(now - started).total_seconds())
            )  # fmt: skip
            await conn.execute(
                EventRow.__table__.insert().values(  # type: ignore[attr-defined]
                    call_id=call_id, kind=NODE_LOST, data={"node": dead, "reaper": reaper},
                    offset_s=(now - started).total_seconds(), created_at=now,
                )
            )  # fmt: skip
            closed.append(call_id)
    return sorted(closed)
