"""Cluster HTTP surface: call control for calls owned by other nodes, and the node list.

``POST /v1/calls/{id}/hangup|transfer|hold|unhold|dtmf`` is served by ``api/call_control``
for calls on this node. :func:`install` adds a small middleware in front of it: when the
call is not here and the node is in a cluster (``app.state.cluster``), the request goes
over the control bus to the owning node and its answer is returned in the same shape
(``ActionResult`` plus ``node``). So one API serves every call, whichever node a load
balancer picked. Without a cluster the middleware steps aside: single-node behaviour.

The talk page's ``POST /webrtc/hangup`` is forwarded the same way (as the caller's
hang-up) when the WebRTC call is not here: with ``server.workers > 1`` the request lands on
any worker of the node, while the call's peer connection lives in one.

``GET /v1/cluster/nodes`` lists nodes with their load (empty on a single node).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from voxgate.api.auth import request_token, require_token, token_ok
from voxgate.cluster.bus import ControlResult

router = APIRouter(
    dependencies=[Depends(require_token)],
    tags=["cluster"],
    responses={401: {"description": "Missing or invalid token"}},
)

_CONTROL_PATH = re.compile(r"^/v1/calls/([A-Za-z0-9_.\-]{1,64})/(hangup|transfer|hold|unhold|dtmf)$")


class _Transfer(BaseModel):
    target: str = Field(min_length=1, max_length=256)


class _Digits(BaseModel):
    digits: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Da-d*#]+$")


def _is_local(request: Request, call_id: str) -> bool:
    if request.app.state.manager.get(call_id) is not None:
        return True
    edge = getattr(request.app.state, "sip_edge", None)
    return edge is not None and call_id in getattr(edge, "calls", {})


async def _remote_args(request: Request, action: str) -> dict[str, Any]:
    """The same bodies ``api/call_control`` takes; ValueError when invalid."""
    if action in ("hangup", "hold", "unhold"):
        return {"reason": "api_hangup"} if action == "hangup" else {}
    try:
        body = json.loads(await request.body() or b"{}")
        if action == "transfer":
            return {"target": _Transfer.model_validate(body).target}
        return {"digits": _Digits.model_validate(body).digits}
    except (ValueError, ValidationError) as exc:
        raise ValueError(str(exc)) from None


async def _forward(request: Request, call_id: str, action: str) -> Response:
    if not token_ok(request_token(request), request.app.state.settings.auth.api_tokens):
        return JSONResponse({"detail": "missing or invalid token"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    try:
        args = await _remote_args(request, action)
    except ValueError as exc:
        return JSONResponse({"error": "invalid request", "details": [{"msg": str(exc)[:500]}]}, status_code=422)
    result: ControlResult = await request.app.state.cluster.control(call_id, action, args)
    if not result.ok:
        return JSONResponse({"detail": result.detail, "node": result.node}, status_code=result.status)
    return JSONResponse(
        {"id": call_id, "action": action, "state": None, "end_reason": None, "node": result.node},
        status_code=202 if action == "transfer" else 200,
    )


async def _forward_webrtc_hangup(request: Request) -> Response | None:
    """``POST /webrtc/hangup`` for a WebRTC call another node (worker) owns: run it there
    and answer as the edge route does (``{call_id, reason}``). None lets the route answer:
    the call is here, the body is not ours to judge, or no node has the call (404 there)."""
    try:
        call_id = json.loads(await request.body() or b"{}")["call_id"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(call_id, str) or not 0 < len(call_id) <= 64:
        return None
    edge = getattr(request.app.state, "webrtc_edge", None)
    if edge is not None and call_id in edge.calls:
        return None
    if not token_ok(request_token(request), request.app.state.settings.auth.api_tokens):
        return None  # the route's own token check answers 401 (and counts it)
    owner = await request.app.state.cluster.registry.owner(call_id)
    if owner is None or owner.edge != "webrtc":  # as the route: only WebRTC calls, else 404
        return None
    result: ControlResult = await request.app.state.cluster.control(
        call_id, "hangup", {"reason": "caller_hangup"}
    )
    if result.ok:
        return JSONResponse({"call_id": call_id, "reason": "caller_hangup", "node": result.node})
    if result.status == 404:
        return None
    return JSONResponse({"detail": result.detail, "node": result.node}, status_code=result.status)


def install(app: FastAPI) -> None:
    """Mount the cluster routes and the control forwarder on ``app`` (one line in app.py)."""
    app.include_router(router)

    @app.middleware("http")
    async def cluster_control(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method == "POST" and getattr(request.app.state, "cluster", None) is not None:
            m = _CONTROL_PATH.match(request.url.path)
            if m is not None and not _is_local(request, m.group(1)):
                return await _forward(request, m.group(1), m.group(2))
            if request.url.path == "/webrtc/hangup":
                forwarded = await _forward_webrtc_hangup(request)
                if forwarded is not None:
                    return forwarded
        return await call_next(request)


class NodeOut(BaseModel):
    node_id: str
    alive: bool
    active_calls: int
    cpu_percent: float
    draining: bool
    url: str | None
    at: float = Field(description="Unix time of the last heartbeat")


@router.get("/v1/cluster/nodes", response_model=list[NodeOut], tags=["cluster"])
async def nodes(request: Request) -> list[NodeOut]:
    """Nodes with their last load report; empty when the node runs without Redis."""
    cluster = getattr(request.app.state, "cluster", None)
    if cluster is None:
        return []
    return [
        NodeOut(node_id=n.node_id, alive=n.alive, active_calls=n.active_calls,
                cpu_percent=n.cpu_percent, draining=n.draining, url=n.url, at=n.at)
        for n in await cluster.nodes()
    ]  # fmt: skip
