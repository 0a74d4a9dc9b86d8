"""Runs the voxgate node: the HTTP app and, as they land, the media edges, in one event loop.

Start-up order matters for latency: models load before the first call is accepted, so no
caller waits for a cold model. SIGTERM drains: readiness turns false, new calls are refused,
active calls get ``server.drain_timeout_s`` to finish. With ``server.workers > 1``, ``run``
hands over to ``voxgate.workers``: a supervisor and N worker processes, each running
:func:`run_node`, i.e. exactly this node.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import uvicorn

from voxgate.config import Settings
from voxgate.realtime import apply_realtime

if TYPE_CHECKING:
    from voxgate.sip.front import WorkerLink

log = logging.getLogger("voxgate")


def _install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def banner(settings: Settings, generated_token: str | None, sip_uri: str | None = None) -> str:
    host = settings.server.host
    shown = f"[{host}]" if ":" in host else host
    base = settings.server.public_url or f"http://{shown}:{settings.server.port}"
    lines = [
        "voxgate is up",
        f"  HTTP API      {base}/v1/info   (OpenAPI: {base}/docs)",
        f"  health        {base}/healthz",
        f"  metrics       {base}/metrics",
        f"  talk page     {base}/   (press Call and speak to the agent)",
        f"  dashboard     {base}/dashboard",
        f"  Twilio        {base.replace('http', 'ws', 1)}/twilio/media   (TwiML: POST {base}/twilio/voice)",
    ]
    if sip_uri:
        lines.append(f"  SIP           {sip_uri}   ({', '.join(settings.sip.transports)})")
    if generated_token:
        lines.append(f"  call it       {base}/?token={generated_token}")
        lines.append(
            f"  API token     {generated_token}   (generated for this run; set "
            "auth.api_tokens in config to keep one)"
        )
    return "\n".join(lines)


def http_config(settings: Settings, app: Any) -> uvicorn.Config:
    """How the node's port is served (also used by bench/ws_streams.py, so the benchmark
    measures exactly this)."""
    from voxgate.websocket.fastpath import media_ws_protocol

    return uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.log_level,
        lifespan="on",
        loop="none",
        ws_max_size=settings.websocket.max_message_bytes,
        # /twilio/media on the media fast path (no ASGI per message); every other
        # WebSocket path on uvicorn's own protocol. Same port.
        ws=media_ws_protocol(app),
    )


def freeze_startup_heap() -> None:
    """Move everything allocated at start-up out of the garbage collector's view.

    The node's start-up heap (FastAPI, pydantic, SQLAlchemy, numpy, models) is ~170k
    objects that live as long as the process; a full (generation 2) collection scanned them
    all, ~95 ms measured here, a pause every stream of the node felt at once (the tail of
    bench/ws_streams.py's latency). Frozen, full collections scan only what calls
    allocated since. Same technique as Instagram's ``gc.freeze()`` before forking."""
    gc.collect()
    gc.freeze()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: on SIGTERM it would stop at once, closing
    every WebSocket (1012) before the node could drain. ``serve`` handles the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    """``voxgate serve`` with ``server.workers = 1``: token, node, banner, all here."""
    generated = settings.ensure_api_token()
    print("voxgate: starting (loading models the first time takes a few seconds)", flush=True)

    def ready(sip_uri: str | None) -> None:
        print(banner(settings, generated, sip_uri), flush=True)

    await run_node(settings, progress=lambda line: print(f"  {line}", flush=True), on_ready=ready)


async def run_node(
    settings: Settings,
    *,
    progress: Callable[[str], None],
    on_ready: Callable[[str | None], None],
    sockets: list[socket.socket] | None = None,
    load_agent: bool = True,
    sip_link: WorkerLink | None = None,
) -> None:
    """Build the node, serve HTTP, start the edges, call ``on_ready(sip_uri)``, then run
    until SIGTERM/SIGINT and drain.

    Shared by the single process and each worker of ``server.workers > 1``
    (``voxgate.workers``), so a worker is exactly today's node; ``sockets`` are the
    listening sockets a worker inherits from its supervisor instead of binding the port.
    ``load_agent=False`` skips the models (benchmarks of routes that need none);
    ``sip_link``: this worker's link to the SIP front (``voxgate.sip.front``).
    ``media.realtime_priority`` > 0 puts this loop's thread on ``SCHED_RR`` once the node is
    built (``voxgate.realtime``)."""
    from voxgate.node import Node

    node = await Node.create(settings, progress=progress, load_agent=load_agent)
    config = http_config(settings, node.app)
    config.load()
    freeze_startup_heap()
    # After the models loaded (start-up work stays at normal priority) and before the first
    # call; the threads inference runs in are started later by this thread and stay normal.
    apply_realtime(settings.media.realtime_priority, what="event loop")
    server = _Server(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    server_task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started:
        if server_task.done():
            await server_task
            await node.stop()
            raise SystemExit(f"voxgate: HTTP server failed to start on port {settings.server.port}")
        await asyncio.sleep(0.05)
    try:
        await node.start_edges(sip_link=sip_link)
    except (OSError, ValueError) as exc:
        server.should_exit = True
        await server_task
        await node.stop()
        raise SystemExit(f"voxgate: SIP edge failed to start: {exc}") from None
    on_ready(node.sip_edge.uri if node.sip_edge is not None else None)
    await stop.wait()
    log.info("draining")
    await node.stop()
    server.should_exit = True
    await server_task


def run(settings: Settings) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations: one line per run is noise
    if settings.server.workers > 1:
        from voxgate.workers import supervise

        return supervise(settings)
    loop_kind = _install_uvloop()
    log.info("event loop: %s", loop_kind)
    asyncio.run(serve(settings))
    return 0
