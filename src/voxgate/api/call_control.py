"""REST call control: place outbound SIP calls and act on live calls of any edge.

``POST /v1/calls`` dials and connects the call to the app the router picks for the dialled
number once it is answered; the response carries the call id whose live state (``dialing``,
``ringing``, ``answered``, ``ended``) ``GET /v1/calls/{id}`` shows. A ``to`` naming one of our
SIP users (``alice`` or ``sip:alice@<our host>``, no ``trunk`` given) rings that user's phone
at its live registrar binding (404 when it has none); anything else goes through a configured
trunk. There is no way to dial without the API token, a running SIP edge and
``sip.allow_outbound``: an open dialler is a toll-fraud machine.

The actions (``hangup``, ``transfer``, ``hold``, ``unhold``, ``dtmf``) go through the call's
``CallControl``, so they work on every edge that implements them and answer 501 where an edge
cannot (a browser call cannot be transferred). Transfers return 202 at once: the REFER's
outcome arrives later as a NOTIFY and ends the call when it succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from voxgate.api.auth import require_token
from voxgate.calls.session import CallSession

log = logging.getLogger(__name__)

router = APIRouter(dependencies=[Depends(require_token)], tags=["call control"])

_CallId = Path(min_length=1, max_length=64, description="Call id")
_background: set[asyncio.Task[None]] = set()


class Dial(BaseModel):
    to: str = Field(min_length=1, max_length=256, description="Number, user or sip: URI to call")
    trunk: str | None = Field(None, max_length=64, description="Trunk name (default: the first)")
    caller: str | None = Field(None, max_length=64, description="Caller id (default: trunk's)")


class Dialled(BaseModel):
    id: str
    to: str
    trunk: str | None = Field(description="Trunk used; null for a call to a registered user")
    user: str | None = Field(None, description="Our registered user called, if any")
    state: str


class Transfer(BaseModel):
    target: str = Field(min_length=1, max_length=256, description="User or sip:/tel: URI")


class Digits(BaseModel):
    digits: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Da-d*#]+$")


class ActionResult(BaseModel):
    id: str
    action: str
    state: str | None = None
    end_reason: str | None = None


def _edge(request: Request) -> Any:
    return getattr(request.app.state, "sip_edge", None)


def find_session(request: Request, call_id: str) -> CallSession | None:
    """A live call by id: routed calls from the manager, ringing SIP calls from the edge."""
    session: CallSession | None = request.app.state.manager.get(call_id)
    if session is None:
        edge = _edge(request)
        call = edge.calls.get(call_id) if edge is not None else None
        session = call.session if call is not None else None
    return session


def _live(request: Request, call_id: str) -> CallSession:
    session = find_session(request, call_id)
    if session is None or session.ended:
        raise HTTPException(404, "no such live call")
    return session


def _result(session: CallSession, action: str) -> ActionResult:
    return ActionResult(
        id=session.call_id, action=action, state=session.metadata.get("sip_state"),
        end_reason=session.end_reason,
    )  # fmt: skip


async def _act(session: CallSession, action: str, *args: str) -> None:
    try:
        await getattr(session.control, action)(*args)
    except NotImplementedError as exc:
        raise HTTPException(501, str(exc)) from None
    except (RuntimeError, ValueError) as exc:
        raise HTTPException(409, str(exc)) from None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error statuses an endpoint really answers."""
    text = {
        400: "bad destination", 401: "missing or invalid token", 403: "outbound dialing disabled",
        404: "no such live call, trunk or registered user", 409: "the call cannot do that now",
        501: "the call's edge cannot do that", 503: "SIP edge not running or node draining",
    }
    return {code: {"description": text[code]} for code in (401, *codes)}


_CONTROL_ERRORS = _errors(404, 409, 501)


@router.post(
    "/v1/calls", response_model=Dialled, status_code=201, responses=_errors(400, 403, 404, 503)
)
async def dial(body: Dial, request: Request) -> Dialled:
    """Place an outbound call to a registered user or through a SIP trunk; the app starts
    when it is answered."""
    edge = _edge(request)
    settings = request.app.state.settings
    if edge is None:
        raise HTTPException(503, "the SIP edge is not running")
    if not settings.sip.allow_outbound:
        raise HTTPException(403, "outbound calls are disabled (sip.allow_outbound)")
    if request.app.state.manager.draining:
        raise HTTPException(503, "node is draining")
    if body.trunk is not None or edge.local_user(body.to) is None:
        try:
            edge.trunk(body.trunk)
        except KeyError:
            raise HTTPException(404, f"no trunk {body.trunk!r} configured") from None
    try:
        call = edge.dial(body.to, trunk=body.trunk, caller=body.caller)
    except LookupError as exc:  # our user without a live registration
        raise HTTPException(404, str(exc.args[0] if exc.args else exc)) from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    except RuntimeError as exc:
        raise HTTPException(503, str(exc)) from None
    meta = call.session.metadata
    return Dialled(
        id=call.call_id, to=body.to, trunk=meta.get("trunk"), user=meta.get("registered_user"),
        state=call.state,
    )  # fmt: skip


@router.post("/v1/calls/{call_id}/hangup", response_model=ActionResult, responses=_CONTROL_ERRORS)
async def hangup(request: Request, call_id: str = _CallId) -> ActionResult:
    session = _live(request, call_id)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_act(session, "hangup", "api_hangup"), 5.0)
    return _result(session, "hangup")


@router.post(
    "/v1/calls/{call_id}/transfer", response_model=ActionResult, status_code=202,
    responses=_CONTROL_ERRORS,
)
async def transfer(body: Transfer, request: Request, call_id: str = _CallId) -> ActionResult:
    """Blind transfer; 202 once started (the call ends ``transferred`` when it succeeds)."""
    session = _live(request, call_id)

    async def run() -> None:
        try:
            await session.control.transfer(body.target)
        except Exception as exc:
            log.warning("transfer of %s to %s failed: %s", call_id, body.target, exc)

    task = asyncio.create_task(run(), name=f"transfer-{call_id}")
    _background.add(task)
    task.add_done_callback(_background.discard)
    await asyncio.sleep(0)
    return _result(session, "transfer")


@router.post("/v1/calls/{call_id}/hold", response_model=ActionResult, responses=_CONTROL_ERRORS)
async def hold(request: Request, call_id: str = _CallId) -> ActionResult:
    session = _live(request, call_id)
    await _act(session, "hold")
    return _result(session, "hold")


@router.post("/v1/calls/{call_id}/unhold", response_model=ActionResult, responses=_CONTROL_ERRORS)
async def unhold(request: Request, call_id: str = _CallId) -> ActionResult:
    session = _live(request, call_id)
    await _act(session, "unhold")
    return _result(session, "unhold")


@router.post("/v1/calls/{call_id}/dtmf", response_model=ActionResult, responses=_CONTROL_ERRORS)
async def dtmf(body: Digits, request: Request, call_id: str = _CallId) -> ActionResult:
    session = _live(request, call_id)
    await _act(session, "send_dtmf", body.digits)
    return _result(session, "dtmf")
