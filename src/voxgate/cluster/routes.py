"""REST call control that works on any node: ``POST /v1/calls/{id}/hangup|transfer|...``.

A call found on this node is acted on here; otherwise, when the node is in a cluster
(``app.state.cluster`` is a ``ClusterNode``), the request goes over the control bus to the
owner. Without a cluster only local calls exist, which is the single-node behaviour.
``GET /v1/cluster/nodes`` lists nodes with their load (empty on a single node).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from voxgate.api.auth import require_token
from voxgate.cluster.bus import ControlResult, execute_control

router = APIRouter(
    dependencies=[Depends(require_token)],
    tags=["call control"],
    responses={401: {"description": "Missing or invalid token"}},
)

CallId = Annotated[str, Path(min_length=1, max_length=64, description="Call id")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such live call"},
    501: {"description": "The call's edge cannot do this action"},
    503: {"description": "The owning node is not reachable"},
    504: {"description": "The owning node did not answer in time"},
}


class HangupBody(BaseModel):
    reason: str = Field("api_hangup", max_length=64, pattern=r"^[a-z_]+$")


class TransferBody(BaseModel):
    target: str = Field(min_length=1, max_length=256, description="Number or sip: URI")


class DtmfBody(BaseModel):
    digits: str = Field(min_length=1, max_length=64, pattern=r"^[0-9*#A-Da-d]+$")


class ControlOut(BaseModel):
    ok: bool
    node: str = Field(description="Node that ran the action (the call's owner)")
    detail: str


async def _control(request: Request, call_id: str, action: str, args: dict[str, Any]) -> ControlOut:
    cluster = getattr(request.app.state, "cluster", None)
    if cluster is not None:
        result: ControlResult = await cluster.control(call_id, action, args)
    else:
        result = await execute_control(request.app.state.manager.get(call_id), action, args)
    if not result.ok:
        raise HTTPException(result.status, result.detail)
    return ControlOut(ok=True, node=result.node, detail=result.detail)


@router.post("/v1/calls/{call_id}/hangup", response_model=ControlOut, responses=_ERRORS)
async def hangup(request: Request, call_id: CallId, body: HangupBody | None = None) -> ControlOut:
    """End the call (BYE on SIP, close on WebSocket) on whichever node owns it."""
    return await _control(request, call_id, "hangup", {"reason": (body or HangupBody()).reason})


@router.post("/v1/calls/{call_id}/transfer", response_model=ControlOut, responses=_ERRORS)
async def transfer(request: Request, call_id: CallId, body: TransferBody) -> ControlOut:
    """Blind transfer (REFER on SIP) to a number or URI."""
    return await _control(request, call_id, "transfer", {"target": body.target})


@router.post("/v1/calls/{call_id}/hold", response_model=ControlOut, responses=_ERRORS)
async def hold(request: Request, call_id: CallId) -> ControlOut:
    return await _control(request, call_id, "hold", {})


@router.post("/v1/calls/{call_id}/unhold", response_model=ControlOut, responses=_ERRORS)
async def unhold(request: Request, call_id: CallId) -> ControlOut:
    return await _control(request, call_id, "unhold", {})


@router.post("/v1/calls/{call_id}/dtmf", response_model=ControlOut, responses=_ERRORS)
async def dtmf(request: Request, call_id: CallId, body: DtmfBody) -> ControlOut:
    """Send DTMF digits to the far end (RFC 4733 on SIP)."""
    return await _control(request, call_id, "dtmf", {"digits": body.digits})


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
