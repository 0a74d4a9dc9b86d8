"""The Redis job queue on a real redis-server: consumer groups, reclaim of a dead holder's
job, shared concurrency leases and the shared CPS pacer; and a campaign run by two workers
sharing one Redis and one records DB, one of which dies holding a job."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.cluster.fakes import ScriptedDialer
from voxgate.cluster.campaign_db import CampaignStore
from voxgate.cluster.campaigns import Campaigns, CampaignSpec, CampaignWorker
from voxgate.cluster.jobs import Job, RedisJobQueue
from voxgate.observability.records import CallRecords

pytestmark = pytest.mark.interop


async def test_jobs_go_to_one_consumer_and_are_acknowledged(redis: Redis, prefix: str) -> None:
    q = RedisJobQueue(redis, prefix)
    await q.push([Job("c1", i, 1) for i in range(5)])
    a = await q.claim("c1", "node-a", 3)
    b = await q.claim("c1", "node-b", 3)
    assert sorted(c.job.contact_id for c in a + b) == [0, 1, 2, 3, 4]
    assert len(a) == 3 and len(b) == 2
    for c in a + b:
        await q.done(c)
    assert await q.claim("c1", "node-c", 5) == []


async def test_a_dead_holders_job_is_reclaimed_after_min_idle(redis: Redis, prefix: str) -> None:
    q = RedisJobQueue(redis, prefix, reclaim_idle_s=0.2)
    await q.push([Job("c1", 7, 2)])
    held = await q.claim("c1", "node-a", 1)
    assert len(held) == 1
    assert await q.claim("c1", "node-b", 1) == []  # node a is alive (idle < 0.2 s)
    await asyncio.sleep(0.3)
    await q.touch(held[0], "node-a")  # ... and says so: refreshing resets the idle time
    assert await q.claim("c1", "node-b", 1) == []
    await asyncio.sleep(0.3)  # node a died: no more touches
    taken = await q.claim("c1", "node-b", 1)
    assert [(c.job, c.reclaimed) for c in taken] == [(Job("c1", 7, 2), True)]


async def test_delayed_jobs_become_ready_when_due(redis: Redis, prefix: str) -> None:
    q = RedisJobQueue(redis, prefix)
    now = float((await redis.time())[0])
    await q.push([Job("c1", 1, 2)], due=now + 3600)
    await q.push([Job("c1", 2, 2)], due=now - 1)
    assert [c.job.contact_id for c in await q.claim("c1", "n", 5)] == [2]


async def test_concurrency_leases_are_shared_and_expire(redis: Redis, prefix: str) -> None:
    q1, q2 = RedisJobQueue(redis, prefix), RedisJobQueue(redis, prefix)
    assert await q1.acquire("c1", "a:1", 2, 10)
    assert await q2.acquire("c1", "b:1", 2, 0.2)
    assert not await q1.acquire("c1", "a:2", 2, 10)  # the limit holds across nodes
    await asyncio.sleep(0.3)  # b's lease was not renewed: b is dead
    assert await q1.acquire("c1", "a:2", 2, 10)
    await q1.release("c1", "a:1")
    assert await q2.acquire("c1", "b:2", 2, 10)


async def test_the_pacer_spaces_starts_across_nodes(redis: Redis, prefix: str) -> None:
    q1, q2 = RedisJobQueue(redis, prefix), RedisJobQueue(redis, prefix)
    waits = [await (q1 if i % 2 else q2).pace("c1", 10.0) for i in range(6)]
    # Slots are 100 ms apart whichever node booked them; little real time passed meanwhile.
    assert waits[0] == pytest.approx(0.0, abs=0.05)
    assert waits[5] == pytest.approx(0.5, abs=0.1)
    assert all(b > a for a, b in zip(waits, waits[1:], strict=False))


async def test_two_workers_share_a_campaign_and_survive_one_dying(
    redis: Redis, prefix: str, tmp_path: Path
) -> None:
    records = await CallRecords.open(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    store = CampaignStore(records.engine)
    try:
        phones = [f"+1555100{i:02d}" for i in range(12)]
        # Node a's dialer hangs forever on its first call: the process "dies" holding it.
        stuck = asyncio.Event()

        class DyingDialer(ScriptedDialer):
            async def dial(self, contact, app):  # type: ignore[no-untyped-def]
                stuck.set()
                await asyncio.Event().wait()

        campaigns = Campaigns(store, RedisJobQueue(redis, prefix))
        cid = await campaigns.create(CampaignSpec(
            contacts=[{"phone": p} for p in phones], window="00:00-24:00", cps=100,
            max_concurrent=2, retry_backoff_s=0.05,
        ))  # fmt: skip
        a = CampaignWorker(store, RedisJobQueue(redis, prefix, reclaim_idle_s=0.4),
                           DyingDialer({}), "a", lease_s=0.4, local_limit=1)  # fmt: skip
        for _ in range(200):
            await a.step()
            if stuck.is_set():
                break
            await asyncio.sleep(0.01)
        assert stuck.is_set()
        await a.close()  # SIGKILL stand-in: no ack, no release, no more touches
        dialer = ScriptedDialer({})
        b = CampaignWorker(store, RedisJobQueue(redis, prefix, reclaim_idle_s=0.4), dialer, "b",
                           lease_s=0.4, poll_s=0.01)  # fmt: skip
        try:
            for _ in range(1500):
                await b.step()
                detail = await campaigns.detail(cid)
                assert detail is not None
                if detail["status"] == "completed":
                    break
                await asyncio.sleep(0.01)
        finally:
            await b.close()
        assert detail["status"] == "completed", detail["progress"]
        assert {c["outcome"] for c in detail["contacts"]} == {"completed"}
        lost = [x for x in await store.attempts(cid) if x["detail"] == "node_lost"]
        assert len(lost) == 1 and lost[0]["node_id"] == "a" and lost[0]["outcome"] == "failed"
        assert sorted(p for p, _, _ in dialer.calls) == phones  # every contact dialed once by b
        assert dialer.max_active <= 2
    finally:
        await records.close()
