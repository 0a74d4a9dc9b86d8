"""One voxgate node as a subprocess for the multi-node tests: HTTP API, SIP edge, records
(shared DB), cluster membership and the campaign worker, wired the way the server does it.

``python -m tests.cluster.node_main '<json>'`` with keys: node_id, http_port, sip_port,
rtp (low, high), redis_url, db_url, token, trunks [{name, port}], hold_s. Prints ``READY``
when serving; SIGTERM drains and leaves the cluster; SIGKILL is the crash under test.

The route app: a campaign call (``campaign_id`` in the metadata) talks for ``hold_s``,
reports a result and hangs up; any other call is held until something ends it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import uvicorn
from pydantic import SecretStr

from voxgate.api.app import create_app
from voxgate.calls.manager import CallManager
from voxgate.calls.router import CallApp, Router, RouteRule
from voxgate.calls.session import CallSession
from voxgate.cluster.config import ClusterSettings
from voxgate.cluster.dialer import SipDialer
from voxgate.cluster.store import RedisStore
from voxgate.cluster.wiring import start_cluster
from voxgate.config import Settings, SipTrunk
from voxgate.observability.observer import CallObserver
from voxgate.observability.records import CallRecords
from voxgate.providers.base import ChatMessage
from voxgate.sip.endpoint import start_sip_edge


class ScriptApp:
    name = "script"

    def __init__(self, hold_s: float, store: RedisStore) -> None:
        self.hold_s = hold_s
        self.store = store

    async def run(self, session: CallSession) -> None:
        # Conversation state goes to Redis, as the agent's store would write it.
        await self.store.ensure(session.call_id, {"node": session.metadata.get("node", "")})
        await self.store.append_message(session.call_id, ChatMessage("user", f"hello from {session.caller}"))
        if "campaign_id" not in session.metadata:
            await session.wait_ended()
            return
        try:
            await asyncio.wait_for(session.wait_ended(), self.hold_s)
        except TimeoutError:
            session.metadata["campaign_result"] = json.dumps({"confirmed": True})
            await session.control.hangup("agent_hangup")


async def main(cfg: dict[str, Any]) -> None:
    settings = Settings(
        auth={"api_tokens": [SecretStr(cfg["token"])]},  # type: ignore[arg-type]
        server={"host": "127.0.0.1", "port": cfg["http_port"]},  # type: ignore[arg-type]
        sip={"port": cfg["sip_port"], "transports": ["udp"],  # type: ignore[arg-type]
             "trunks": [SipTrunk(name=t["name"], host="127.0.0.1", port=t["port"]) for t in cfg["trunks"]]},
        media={"rtp_port_min": cfg["rtp"][0], "rtp_port_max": cfg["rtp"][1]},  # type: ignore[arg-type]
        records={"database_url": cfg["db_url"]},  # type: ignore[arg-type]
    )
    records = await CallRecords.open(cfg["db_url"], node_id=cfg["node_id"])
    await records.recover_interrupted()
    observer = CallObserver(records)
    observer.start()
    app_impl = ScriptApp(float(cfg.get("hold_s", 0.5)),
                         RedisStore(cfg["redis_url"], prefix=cfg.get("prefix", "voxgate")))

    def factory(rule: RouteRule) -> CallApp:
        return app_impl

    manager = CallManager(Router([], {"agent": factory}))
    manager.on_start.append(observer.call_started)
    manager.on_end.append(observer.call_ended)
    app = create_app(settings, manager)
    app.state.records = records
    edge = await start_sip_edge(settings, manager, observer)
    app.state.sip_edge = edge
    cluster = ClusterSettings(redis_url=cfg["redis_url"], node_id=cfg["node_id"],
                              heartbeat_s=cfg.get("heartbeat_s", 0.5),
                              heartbeat_timeout_s=cfg.get("heartbeat_timeout_s", 2.0),
                              key_prefix=cfg.get("prefix", "voxgate"))  # fmt: skip
    dialer = SipDialer(edge, answer_timeout_s=cfg.get("answer_timeout_s", 5.0))
    services = await start_cluster(app, cluster, manager, records, dialer)
    if services.worker is not None:
        services.worker.poll_s = 0.05
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=cfg["http_port"],
                                           log_level="warning", lifespan="off"))  # fmt: skip
    server.config.install_signal_handlers = False  # type: ignore[attr-defined]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes no started event
        await asyncio.sleep(0.02)
    print("READY", flush=True)
    await stop.wait()
    app.state.draining = True
    await manager.drain(2.0)
    await services.close()
    await edge.close()
    await observer.close()
    await records.close()
    server.should_exit = True
    await task


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
