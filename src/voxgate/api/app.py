"""The HTTP application: health, metrics and (as edges land) call control and WebSockets.

``create_app`` takes settings and returns a FastAPI app with no global state, so tests can
build as many as they like. Routers for each concern live in their own modules and are
mounted here.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from voxgate import __version__
from voxgate.api.auth import require_token
from voxgate.calls.manager import CallManager
from voxgate.calls.router import Router
from voxgate.config import Settings
from voxgate.observability.metrics import count_rejection, exposition


def create_app(settings: Settings, manager: CallManager | None = None) -> FastAPI:
    """Build the app around a call manager (edges hand their calls to it).

    Without one, a manager with no app factories is made: every call then ends ``no_route``,
    which is what a node with no agent loaded should do rather than pretend.
    """
    app = FastAPI(
        title="voxgate",
        version=__version__,
        description="Media streaming layer and agent runtime for real-time voice AI.",
    )
    app.state.settings = settings
    app.state.manager = manager if manager is not None else CallManager(Router([], {}, None))
    app.state.started_at = time.time()
    app.state.draining = False
    app.state.records = None  # CallRecords, set by the server at start-up when records are on

    @app.exception_handler(RequestValidationError)
    async def _bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        count_rejection("http")
        errors: list[dict[str, Any]] = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "details": errors}, status_code=422)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: false while draining so a load balancer stops sending new calls."""
        if request.app.state.draining:
            return JSONResponse({"status": "draining"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", dependencies=[Depends(require_token)], include_in_schema=False)
    async def metrics() -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/info", dependencies=[Depends(require_token)])
    async def info(request: Request) -> dict[str, Any]:
        """Version and uptime; a cheap authenticated call to check a token."""
        return {
            "version": __version__,
            "uptime_s": round(time.time() - request.app.state.started_at, 3),
        }

    # Edge routers: each edge module exposes `router` (an APIRouter) and reads
    # request.app.state.manager / .settings. Mounted here, one line each.
    from voxgate.api.calls import router as calls_router
    app.include_router(calls_router)
    from voxgate.api.call_control import router as call_control_router
    app.include_router(call_control_router)
    from voxgate.cluster.routes import install as install_cluster_routes
    install_cluster_routes(app)  # cluster node list + control forwarded to the owning node
    from voxgate.api.campaigns import router as campaigns_router
    app.include_router(campaigns_router)
    from voxgate.api.dashboard import router as dashboard_router
    app.include_router(dashboard_router)
    from voxgate.webrtc.edge import router as webrtc_router
    app.include_router(webrtc_router)
    from voxgate.websocket.routes import router as websocket_router
    app.include_router(websocket_router)

    return app
