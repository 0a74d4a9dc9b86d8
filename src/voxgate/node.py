"""One voxgate node: everything ``voxgate serve`` runs, assembled in dependency order.

records database -> observer (metrics, traces, cost) -> providers (models loaded once, before
the first call is accepted) -> router and call manager -> HTTP app (REST, dashboard, WebRTC,
WebSocket edges) -> SIP edge. Stopping reverses it: readiness goes false, the SIP edge stops
taking calls, active calls get the drain grace period, then the records are flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from voxgate.agent.pipeline import AgentProviders
from voxgate.agent.store import ConversationStore, SqliteStore
from voxgate.api.app import create_app
from voxgate.apps import app_factories, build_named_agents, build_providers
from voxgate.calls.manager import CallManager
from voxgate.calls.router import Router, RouteRule
from voxgate.config import Settings
from voxgate.observability.observer import CallObserver
from voxgate.observability.recording import RecordingHooks, retention_loop
from voxgate.observability.records import CallRecords
from voxgate.observability.tracing import CallTracer, make_tracer_provider

if TYPE_CHECKING:
    from voxgate.sip.front import WorkerLink

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def route_rules(settings: Settings) -> list[RouteRule]:
    return [
        RouteRule(
            app=r.app,
            callee=r.callee,
            edge=r.edge,
            name=r.name or r.app,
            protocol=r.protocol,
            auth_header=r.auth_header.get_secret_value() if r.auth_header else None,
        )
        for r in settings.routes
    ]


def _conversation_store(settings: Settings) -> ConversationStore:
    """Redis when clustered (a call's context survives its node), else the records DB."""
    if settings.cluster.redis_url:
        from voxgate.cluster.store import RedisStore

        return RedisStore(settings.cluster.redis_url, prefix=settings.cluster.key_prefix)
    return SqliteStore(settings.records.database_url)


@dataclass
class Node:
    settings: Settings
    records: CallRecords
    observer: CallObserver
    manager: CallManager
    app: FastAPI
    store: ConversationStore | None = None
    recordings: RecordingHooks | None = None
    sip_edge: Any = None
    cluster: Any = None
    interrupted_calls: list[str] = field(default_factory=list)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _tracer_provider: Any = None

    @classmethod
    async def create(
        cls,
        settings: Settings,
        *,
        progress: Progress = _quiet,
        load_agent: bool = True,
        providers: AgentProviders | None = None,
    ) -> Node:
        """``providers`` overrides the configured ones (tests inject fakes)."""
        obs = settings.observability
        node_id = settings.cluster.node_id
        records = await CallRecords.open(settings.records.database_url, node_id=node_id)
        interrupted = await records.recover_interrupted()
        if interrupted:
            progress(f"marked {len(interrupted)} call(s) interrupted by the last shutdown")
        provider = make_tracer_provider(obs.otlp_endpoint, node_id=node_id, headers=obs.otlp_headers)
        observer = CallObserver(records, CallTracer(provider), obs.prices)
        observer.start()
        store: ConversationStore | None = None
        if providers is None and load_agent:
            # Models load in a worker thread: the loop stays free (nothing is serving yet,
            # but a slow disk must not look like a hung process to a supervisor's probes).
            providers = await asyncio.to_thread(build_providers, settings.providers, progress, observer)
        named = None
        if providers is not None:
            store = _conversation_store(settings)
            named = await asyncio.to_thread(build_named_agents, settings, providers)
        factories = app_factories(settings, providers, store, observer, named)
        default = RouteRule(app="agent", name="default") if providers is not None else None
        manager = CallManager(Router(route_rules(settings), factories, default))
        manager.on_start.append(observer.call_started)
        recordings: RecordingHooks | None = None
        if obs.recording:
            recordings = RecordingHooks(settings.records.recordings_dir, records)
            manager.on_start.append(recordings.on_start)  # after the observer: row exists
            manager.on_end.append(recordings.on_end)
        manager.on_end.append(observer.call_ended)
        app = create_app(settings, manager)
        app.state.records = records
        app.state.observer = observer
        node = cls(
            settings, records, observer, manager, app, store, recordings,
            interrupted_calls=interrupted, _tracer_provider=provider,
        )
        node._tasks.append(
            asyncio.create_task(
                retention_loop(records, settings.records.recordings_dir, settings.records.retention_days),
                name="retention",
            )
        )
        return node

    async def start_edges(self, *, sip_link: WorkerLink | None = None) -> None:
        """``sip_link``: serve SIP as one worker behind the SIP front (``server.workers``)."""
        if self.settings.sip.enabled:
            from voxgate.sip.endpoint import start_sip_edge

            self.sip_edge = await start_sip_edge(
                self.settings, self.manager, self.observer, link=sip_link
            )
            self.app.state.sip_edge = self.sip_edge
        # The cluster joins after the SIP edge: campaigns dial through it.
        from voxgate.cluster.dialer import SipDialer
        from voxgate.cluster.wiring import start_cluster

        trunks = self.settings.sip.trunks
        # Behind the SIP front, workers other than 0 carry UDP trunks only (TCP/TLS listen
        # in worker 0): a worker that cannot dial every trunk leaves campaigns to the others.
        carries_all = sip_link is None or sip_link.index == 0 or all(
            t.transport == "udp" for t in trunks
        )
        dialer = (
            SipDialer(self.sip_edge)
            if self.sip_edge is not None and trunks and carries_all
            else None
        )
        self.cluster = await start_cluster(
            self.app, self.settings.cluster, self.manager, self.records, dialer
        )

    async def stop(self) -> None:
        self.app.state.draining = True
        # New calls are refused (503/close) while active ones get the grace period; only
        # then does the SIP edge stop listening.
        await self.manager.drain(self.settings.server.drain_timeout_s)
        if self.cluster is not None:
            await self.cluster.close()
        if self.sip_edge is not None:
            await self.sip_edge.close()
        if self.recordings is not None:
            self.recordings.close_all()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.observer.close()
        if self.store is not None:
            await self.store.close()
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
        await self.records.close()
