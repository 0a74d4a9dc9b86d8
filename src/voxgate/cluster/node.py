"""``ClusterNode``: one voxgate process as a member of the cluster.

It registers each call the node's ``CallManager`` starts (outbound calls from their first
ring, ``state`` ringing then answered) and forgets it at the end;
heartbeats a load report every ``heartbeat_s``, serves the control bus, and on every beat
looks for peers whose heartbeat expired and reaps them (once, under a lock): their open
calls are closed ``node_lost`` in the records DB, then removed from the registry.

Worst-case detection time is ``heartbeat_timeout_s`` (the dead node's key expires) plus one
``heartbeat_s`` (the next survivor's beat), so ``heartbeat_timeout_s`` should be set with
that in mind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

from redis.asyncio import Redis

from voxgate.calls.manager import CallManager
from voxgate.calls.session import CallSession
from voxgate.cluster._redis import connect
from voxgate.cluster.bus import ControlBus, ControlResult
from voxgate.cluster.config import ClusterSettings
from voxgate.cluster.registry import NODE_LOST, CallRegistry, NodeInfo, mark_node_lost
from voxgate.observability.records import CallRecords

log = logging.getLogger(__name__)


class CpuMeter:
    """Process CPU use since the previous reading, in percent of one core."""

    def __init__(self) -> None:
        self._cpu = time.process_time()
        self._wall = time.monotonic()

    def read(self) -> float:
        cpu, wall = time.process_time(), time.monotonic()
        span = wall - self._wall
        percent = 0.0 if span <= 0 else 100.0 * (cpu - self._cpu) / span
        self._cpu, self._wall = cpu, wall
        return round(percent, 1)


class ClusterNode:
    def __init__(
        self,
        settings: ClusterSettings,
        manager: CallManager,
        records: CallRecords | None = None,
        redis: Redis | None = None,
    ) -> None:
        if redis is None:
            if settings.redis_url is None:
                raise ValueError("ClusterNode needs cluster.redis_url")
            redis = connect(settings.redis_url)
        self.settings = settings
        self.node_id = settings.node_id
        self.manager = manager
        self.records = records
        self.redis = redis
        self.registry = CallRegistry(redis, settings.key_prefix)
        self.bus = ControlBus(
            redis, self.registry, self.node_id, manager.get, settings.control_timeout_s
        )
        self._cpu = CpuMeter()
        self._task: asyncio.Task[None] | None = None
        self.reaped: list[tuple[str, list[str]]] = []
        """(dead node, closed call ids) for each reap this node won."""
        self.reap_errors = 0
        self._closed = False

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        stale = await self.registry.join(self.node_id, self._report(), self.settings.heartbeat_timeout_s)
        if stale:
            # Calls registered by an earlier process with our id: the records side is closed
            # by CallRecords.recover_interrupted at start-up; here only the registry is cleaned.
            log.warning("node %s: forgetting %d calls of a previous run", self.node_id, len(stale))
            await self.registry.forget_node(self.node_id, stale)
            await self.registry.join(self.node_id, self._report(), self.settings.heartbeat_timeout_s)
        self.manager.on_start.append(self._on_call_start)
        self.manager.on_end.append(self._on_call_end)
        self.manager.on_ring.append(self._on_ring)
        self.manager.on_ring_end.append(self._on_call_end)
        await self.bus.start()
        self._task = asyncio.create_task(self._beat_loop(), name=f"cluster-{self.node_id}")

    async def close(self, *, leave: bool = True) -> None:
        """Stop beating; ``leave`` removes the node at once (after a drain) instead of
        letting a survivor declare it dead later. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.bus.close()
        with contextlib.suppress(ValueError):
            self.manager.on_start.remove(self._on_call_start)
        with contextlib.suppress(ValueError):
            self.manager.on_end.remove(self._on_call_end)
        with contextlib.suppress(ValueError):
            self.manager.on_ring.remove(self._on_ring)
        with contextlib.suppress(ValueError):
            self.manager.on_ring_end.remove(self._on_call_end)
        if leave:
            with contextlib.suppress(Exception):
                await self.registry.leave(self.node_id)
        await self.redis.aclose()

    # --- calls -----------------------------------------------------------------------

    async def _on_call_start(self, session: CallSession) -> None:
        await self.registry.register_call(
            self.node_id,
            session.call_id,
            {"edge": session.edge, "caller": session.caller, "callee": session.callee,
             "route": session.route, "started_at": f"{time.time():.3f}", "state": "answered",
             "conversation_id": session.metadata.get("conversation_id", "")},
        )  # fmt: skip

    async def _on_ring(self, session: CallSession) -> None:
        """An outbound call is registered from its first ring, so a hang-up through any node
        reaches it (the owner CANCELs the INVITE); answering updates the entry."""
        await self.registry.register_call(
            self.node_id,
            session.call_id,
            {"edge": session.edge, "caller": session.caller, "callee": session.callee,
             "route": session.requested_app or "", "state": "ringing",
             "dialed_at": f"{time.time():.3f}"},
        )  # fmt: skip

    async def _on_call_end(self, session: CallSession) -> None:
        await self.registry.unregister_call(self.node_id, session.call_id)

    async def control(self, call_id: str, action: str, args: dict[str, Any]) -> ControlResult:
        return await self.bus.control(call_id, action, args)

    async def nodes(self) -> list[NodeInfo]:
        return await self.registry.nodes()

    # --- heartbeat and reaper --------------------------------------------------------

    def _report(self) -> dict[str, Any]:
        return {
            "active_calls": len(self.manager.calls),
            "cpu_percent": self._cpu.read(),
            "draining": self.manager.draining,
            "url": self.settings.advertise_url,
            "pid": os.getpid(),
            "at": round(time.time(), 3),
        }

    async def _beat_loop(self) -> None:
        while True:
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cluster heartbeat failed on %s", self.node_id)
            await asyncio.sleep(self.settings.heartbeat_s)

    async def beat(self) -> None:
        """One heartbeat plus a reaper pass (public so tests can step it)."""
        member = await self.registry.heartbeat(
            self.node_id, self._report(), self.settings.heartbeat_timeout_s
        )
        if not member:
            await self._was_reaped()
        for dead in await self.registry.dead_nodes(self.node_id):
            await self._reap(dead)

    async def _was_reaped(self) -> None:
        """We stalled past the timeout and a survivor closed our calls: stop them here too,
        so no call runs on media the rest of the cluster believes is gone."""
        lost = [*self.manager.calls.values(), *self.manager.ringing.values()]
        if lost:
            log.error("node %s was declared dead; ending %d calls", self.node_id, len(lost))
        for session in lost:
            session.end(NODE_LOST)

    async def _reap(self, dead: str) -> None:
        hold = max(30.0, 4 * self.settings.heartbeat_timeout_s)
        if not await self.registry.try_reap_lock(dead, self.node_id, hold):
            return
        try:
            call_ids = await self.registry.calls_of(dead)
            closed = await mark_node_lost(self.records, dead, call_ids, self.node_id)
            await self.registry.forget_node(dead, call_ids)
            await self.registry.add_event(
                NODE_LOST, node=dead, reaper=self.node_id, calls=",".join(closed)
            )
            self.reaped.append((dead, closed))
            log.warning("node %s lost; %d calls closed node_lost by %s", dead, len(closed), self.node_id)
        except Exception:
            # Leave the node listed: the lock expires and a survivor tries again.
            self.reap_errors += 1
            log.exception("reaping node %s failed", dead)
