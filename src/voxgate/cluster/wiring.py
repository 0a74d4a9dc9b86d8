"""Start-up wiring: what the server calls to put a node in the cluster and run campaigns.

One call, ``start_cluster``, so ``server.serve`` stays short and a single node needs nothing
from this package: without ``cluster.redis_url`` no Redis client is made, campaigns use the
in-process queue, and state lives in the records DB alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI
from redis.asyncio import Redis

from voxgate.calls.manager import CallManager
from voxgate.cluster._redis import connect
from voxgate.cluster.campaign_db import CampaignStore
from voxgate.cluster.campaigns import Campaigns, CampaignWorker, Dialer
from voxgate.cluster.config import ClusterSettings
from voxgate.cluster.jobs import JobQueue, LocalJobQueue, RedisJobQueue
from voxgate.cluster.node import ClusterNode
from voxgate.observability.records import CallRecords

log = logging.getLogger(__name__)


@dataclass
class ClusterServices:
    node: ClusterNode | None
    campaigns: Campaigns | None
    worker: CampaignWorker | None
    queue_redis: Redis | None

    async def close(self) -> None:
        """After ``manager.drain``: stop dialing, then leave the cluster cleanly."""
        if self.worker is not None:
            await self.worker.close()
        if self.node is not None:
            await self.node.close(leave=True)
        if self.queue_redis is not None:
            await self.queue_redis.aclose()


async def start_cluster(
    app: FastAPI, settings: ClusterSettings, manager: CallManager,
    records: CallRecords | None, dialer: Dialer | None = None,
) -> ClusterServices:  # fmt: skip
    """Join the cluster (if configured) and start the campaign worker (if there is a
    records DB and a dialer). Sets ``app.state.cluster`` and ``app.state.campaigns``."""
    if records is not None and records.node_id and records.node_id != settings.node_id:
        # Call rows and registry entries must name the same node, or the reaper would
        # look for the wrong rows: the records' id (cluster.node_id at start-up) wins.
        settings = settings.model_copy(update={"node_id": records.node_id})
    node: ClusterNode | None = None
    queue: JobQueue
    queue_redis: Redis | None = None
    if settings.redis_url is not None:
        node = ClusterNode(settings, manager, records)
        await node.start()
        queue_redis = connect(settings.redis_url)
        queue = RedisJobQueue(queue_redis, settings.key_prefix, reclaim_idle_s=settings.heartbeat_timeout_s)
        log.info("cluster: node %s joined via Redis", settings.node_id)
    else:
        queue = LocalJobQueue()
    app.state.cluster = node
    campaigns: Campaigns | None = None
    worker: CampaignWorker | None = None
    if records is not None:
        store = CampaignStore(records.engine)
        campaigns = Campaigns(store, queue, settings.node_id)
        if dialer is not None:
            worker = CampaignWorker(store, queue, dialer, settings.node_id,
                                    lease_s=settings.heartbeat_timeout_s)  # fmt: skip
            if queue_redis is None:
                await worker.resume_local()
            await worker.start()
    app.state.campaigns = campaigns
    return ClusterServices(node, campaigns, worker, queue_redis)
