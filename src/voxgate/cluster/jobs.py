"""Campaign job queues: Redis streams for a cluster, in-process for a single node.

Both implement :class:`JobQueue`, so the campaign worker is the same code either way. A job
is "dial contact N, attempt K"; what happened is written to the records DB, never kept only
in a queue.

Redis (``P`` = key prefix, ``C`` = campaign id):

- ``P:cq:C:ready``: stream read with a consumer group (``XREADGROUP``); a job stays in the
  group's pending list until acknowledged, and a job whose holder stopped refreshing it for
  ``reclaim_idle_s`` (a dead node) is taken over with ``XAUTOCLAIM``. Live holders refresh
  their jobs with ``XCLAIM ... JUSTID`` while the call runs, so long calls are not stolen.
- ``P:cq:C:delayed``: sorted set of jobs due later (retries, closed calling windows), moved
  to the stream by a Lua script when due. Streams have no delayed delivery.
- ``P:cq:C:slots``: sorted set of concurrency leases (holder -> expiry), so
  ``max_concurrent`` holds across nodes and a dead node's slots free themselves.
- ``P:cq:C:pace``: the next free start slot (ms) of the shared CPS pacer.

Scripts read Redis' own ``TIME``, so nodes with skewed clocks still share one schedule.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from voxgate.cluster._redis import text, text_map
from voxgate.cluster.schedule import Pacer

GROUP = "dialers"


@dataclass(frozen=True, slots=True)
class Job:
    campaign_id: str
    contact_id: int
    attempt: int
    """1-based number of the dial this job will make."""

    def dumps(self) -> str:
        return json.dumps({"c": self.campaign_id, "k": self.contact_id, "a": self.attempt})

    @classmethod
    def loads(cls, data: str | bytes) -> Job:
        d = json.loads(data)
        return cls(str(d["c"]), int(d["k"]), int(d["a"]))


@dataclass(frozen=True, slots=True)
class Claimed:
    job: Job
    token: str
    """Queue handle to acknowledge (a stream entry id for Redis)."""
    reclaimed: bool = False
    """Taken over from a holder that stopped refreshing it (a dead node)."""


class JobQueue(Protocol):
    async def push(self, jobs: Sequence[Job], due: float | None = None) -> None:
        """Queue jobs, due now or at Unix time ``due``."""
        ...

    async def claim(self, campaign_id: str, consumer: str, count: int) -> list[Claimed]: ...

    async def done(self, claimed: Claimed) -> None: ...

    async def retry(self, claimed: Claimed, job: Job, due: float) -> None:
        """Acknowledge ``claimed`` and queue ``job`` for Unix time ``due`` (one step)."""
        ...

    async def touch(self, claimed: Claimed, consumer: str) -> None:
        """Keep a held job from being reclaimed while its call runs."""
        ...

    async def acquire(self, campaign_id: str, holder: str, limit: int, lease_s: float) -> bool: ...

    async def renew(self, campaign_id: str, holder: str, lease_s: float) -> None: ...

    async def release(self, campaign_id: str, holder: str) -> None: ...

    async def pace(self, campaign_id: str, cps: float) -> float:
        """Book the next start slot; seconds to wait before dialing."""
        ...

    async def drop(self, campaign_id: str) -> None: ...


class LocalJobQueue:
    """One node, no Redis: a due-time heap and in-memory leases.

    Durability comes from the records DB: at start-up the worker re-queues every contact
    that is not ``done`` (``CampaignStore.pending``), so a restart resumes the campaign.
    """

    def __init__(self, clock: Any = time.time, monotonic: Any = time.monotonic) -> None:
        self._clock = clock
        self._mono = monotonic
        self._heap: dict[str, list[tuple[float, int, Job]]] = {}
        self._seq = itertools.count()
        self._slots: dict[str, dict[str, float]] = {}
        self._pacers: dict[str, Pacer] = {}

    async def push(self, jobs: Sequence[Job], due: float | None = None) -> None:
        when = self._clock() if due is None else due
        for job in jobs:
            heapq.heappush(self._heap.setdefault(job.campaign_id, []), (when, next(self._seq), job))

    async def claim(self, campaign_id: str, consumer: str, count: int) -> list[Claimed]:
        heap = self._heap.get(campaign_id, [])
        now = self._clock()
        out: list[Claimed] = []
        while heap and len(out) < count and heap[0][0] <= now:
            _, seq, job = heapq.heappop(heap)
            out.append(Claimed(job, str(seq)))
        return out

    async def done(self, claimed: Claimed) -> None:
        return None

    async def retry(self, claimed: Claimed, job: Job, due: float) -> None:
        await self.push([job], due)

    async def touch(self, claimed: Claimed, consumer: str) -> None:
        return None

    async def acquire(self, campaign_id: str, holder: str, limit: int, lease_s: float) -> bool:
        slots = self._slots.setdefault(campaign_id, {})
        if holder in slots or len(slots) < limit:
            slots[holder] = self._mono() + lease_s
            return True
        return False

    async def renew(self, campaign_id: str, holder: str, lease_s: float) -> None:
        return None

    async def release(self, campaign_id: str, holder: str) -> None:
        self._slots.get(campaign_id, {}).pop(holder, None)

    async def pace(self, campaign_id: str, cps: float) -> float:
        pacer = self._pacers.get(campaign_id)
        if pacer is None or abs(pacer.interval - 1.0 / cps) > 1e-9:
            pacer = self._pacers[campaign_id] = Pacer(cps)
        return pacer.reserve(self._mono())

    async def drop(self, campaign_id: str) -> None:
        self._heap.pop(campaign_id, None)
        self._slots.pop(campaign_id, None)
        self._pacers.pop(campaign_id, None)


_MOVE_DUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('XADD', KEYS[2], '*', 'job', job)
end
return #due
"""

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 4)
  return 1
end
return 0
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
"""

_PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(nxt, now)
redis.call('SET', KEYS[1], tostring(slot + tonumber(ARGV[1])), 'PX', 60000)
return tostring(slot - now)
"""


class RedisJobQueue:
    """Jobs in Redis streams with a consumer group; see the module docstring."""

    def __init__(self, redis: Redis, prefix: str = "voxgate", reclaim_idle_s: float = 6.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.reclaim_idle_ms = int(reclaim_idle_s * 1000)
        self._move = redis.register_script(_MOVE_DUE)
        self._acquire = redis.register_script(_ACQUIRE)
        self._pace = redis.register_script(_PACE)
        self._renew = redis.register_script(_RENEW)
        self._groups: set[str] = set()

    def _k(self, campaign_id: str, part: str) -> str:
        return f"{self.prefix}:cq:{campaign_id}:{part}"

    async def _group(self, campaign_id: str) -> None:
        if campaign_id in self._groups:
            return
        try:
            await self.redis.xgroup_create(self._k(campaign_id, "ready"), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(campaign_id)

    async def push(self, jobs: Sequence[Job], due: float | None = None) -> None:
        if not jobs:
            return
        await self._group(jobs[0].campaign_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            for job in jobs:
                if due is None:
                    pipe.xadd(self._k(job.campaign_id, "ready"), {"job": job.dumps()})
                else:
                    pipe.zadd(self._k(job.campaign_id, "delayed"), {job.dumps(): due})
            await pipe.execute()

    async def claim(self, campaign_id: str, consumer: str, count: int) -> list[Claimed]:
        await self._group(campaign_id)
        ready = self._k(campaign_id, "ready")
        await self._move(keys=[self._k(campaign_id, "delayed"), ready], args=[100])
        out: list[Claimed] = []
        # Jobs of dead holders first: they have waited longest.
        reply = await self.redis.xautoclaim(ready, GROUP, consumer, self.reclaim_idle_ms, "0-0", count=count)
        for entry_id, data in reply[1] if reply else []:
            if data:
                out.append(Claimed(Job.loads(text_map(data)["job"]), text(entry_id), reclaimed=True))
        if len(out) < count:
            streams: Any = await self.redis.xreadgroup(GROUP, consumer, {ready: ">"}, count=count - len(out))
            for _stream, entries in streams or []:  # RESP2 shape: [[stream, [(id, fields)]]]
                for entry_id, data in entries:
                    out.append(Claimed(Job.loads(text_map(data)["job"]), text(entry_id)))
        return out

    async def done(self, claimed: Claimed) -> None:
        ready = self._k(claimed.job.campaign_id, "ready")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(ready, GROUP, claimed.token)
            pipe.xdel(ready, claimed.token)
            await pipe.execute()

    async def retry(self, claimed: Claimed, job: Job, due: float) -> None:
        ready = self._k(claimed.job.campaign_id, "ready")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._k(job.campaign_id, "delayed"), {job.dumps(): due})
            pipe.xack(ready, GROUP, claimed.token)
            pipe.xdel(ready, claimed.token)
            await pipe.execute()

    async def touch(self, claimed: Claimed, consumer: str) -> None:
        await self.redis.xclaim(
            self._k(claimed.job.campaign_id, "ready"), GROUP, consumer, 0, [claimed.token], justid=True
        )

    async def acquire(self, campaign_id: str, holder: str, limit: int, lease_s: float) -> bool:
        got = await self._acquire(keys=[self._k(campaign_id, "slots")], args=[holder, limit, int(lease_s * 1000)])
        return bool(got)

    async def renew(self, campaign_id: str, holder: str, lease_s: float) -> None:
        # XX: renew only a lease we still hold; an expired one must be re-acquired.
        await self._renew(keys=[self._k(campaign_id, "slots")], args=[holder, int(lease_s * 1000)])

    async def release(self, campaign_id: str, holder: str) -> None:
        await self.redis.zrem(self._k(campaign_id, "slots"), holder)

    async def pace(self, campaign_id: str, cps: float) -> float:
        wait_ms = await self._pace(keys=[self._k(campaign_id, "pace")], args=[1000.0 / cps])
        return max(0.0, float(text(wait_ms)) / 1000.0)

    async def drop(self, campaign_id: str) -> None:
        await self.redis.delete(*(self._k(campaign_id, p) for p in ("ready", "delayed", "slots", "pace")))
        self._groups.discard(campaign_id)


async def sleep_until_due(wait_s: float) -> None:
    """Sleep for a pacer's wait; separate so tests can see the only sleep in the dial path."""
    if wait_s > 0:
        await asyncio.sleep(wait_s)
