"""HTTP signaling for browser calls, and the talk page at ``/``.

Signaling is one request (non-trickle ICE): the page POSTs its offer once its own gathering
is complete and gets back an answer that already lists every server candidate. On loopback
and LANs this costs nothing measurable and it keeps the server stateless between requests:
no candidate endpoint, no polling, no WebSocket just for signaling.

``POST /webrtc/offer``  ``{"sdp", "type": "offer", "room"?, "caller"?}`` ->
``{"sdp", "type": "answer", "call_id", "codec"}``; 401 without a token, 400 bad offer,
404 no route for the room, 503 draining or full.
``POST /webrtc/hangup`` ``{"call_id"}`` -> ``{"call_id", "reason"}``; 404 unknown call.

Both need the API token (``Authorization: Bearer``, ``?token=`` or the ``voxgate_token``
cookie, see ``voxgate.api.auth``). The page itself is public: it holds no secrets and asks
the person for the token.

Options: set ``app.state.webrtc_options`` (a :class:`WebRtcOptions`) before the first call to
change rates, codecs, ICE addresses or timeouts.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, Field

from voxgate.api.auth import require_token
from voxgate.calls.manager import CallManager, Draining
from voxgate.calls.router import NoRoute
from voxgate.observability.metrics import count_rejection
from voxgate.webrtc._peer import OfferError, WebRtcCall, WebRtcOptions

log = logging.getLogger(__name__)


class WebRtcEdge:
    """The live browser calls of one app (kept on ``app.state.webrtc_edge``)."""

    def __init__(self, options: WebRtcOptions | None = None) -> None:
        self.options = options or WebRtcOptions()
        self.calls: dict[str, WebRtcCall] = {}

    async def offer(
        self, manager: CallManager, sdp: str, room: str = "", caller: str = ""
    ) -> WebRtcCall:
        """Answer an offer and hand the call to the manager; raises on any refusal."""
        if len(self.calls) >= self.options.max_calls:
            raise Draining(f"webrtc edge is full ({self.options.max_calls} calls)")
        call = WebRtcCall(self.options, caller=caller, callee=room)
        try:
            await call.answer(sdp)
            call.session.metadata["codec"] = call.codec or ""
            # Started before the page has even received the answer: the app's greeting waits
            # in the playout buffer and starts with the first RTP packet, and a refused route
            # is reported to the page as an HTTP error instead of a silent call.
            await manager.start(call.session)
        except BaseException:
            await call.close("rejected")
            raise
        self.calls[call.call_id] = call
        call.on_closed.append(lambda c: self.calls.pop(c.call_id, None))
        return call

    async def close_all(self, reason: str) -> None:
        for call in list(self.calls.values()):
            await call.close(reason)


def edge_of(app: FastAPI) -> WebRtcEdge:
    edge: WebRtcEdge | None = getattr(app.state, "webrtc_edge", None)
    if edge is None:
        edge = WebRtcEdge(getattr(app.state, "webrtc_options", None))
        app.state.webrtc_edge = edge
    return edge


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    edge: WebRtcEdge | None = getattr(app.state, "webrtc_edge", None)
    if edge is not None:
        await edge.close_all("shutdown")


router = APIRouter(lifespan=_lifespan)


class Offer(BaseModel):
    sdp: str = Field(max_length=65536)
    type: str = "offer"
    room: str = Field("", max_length=128)
    """The browser-side "dialled target" the router matches on (edge ``webrtc``)."""
    caller: str = Field("", max_length=128)


class Answer(BaseModel):
    sdp: str
    type: str = "answer"
    call_id: str
    codec: str | None


class Hangup(BaseModel):
    call_id: str = Field(max_length=64)


class Ended(BaseModel):
    call_id: str
    reason: str | None


@router.post("/webrtc/offer", dependencies=[Depends(require_token)], response_model=Answer)
async def offer(body: Offer, request: Request) -> Answer:
    """Answer a browser's offer (all candidates inline) and start the call."""
    if body.type != "offer":
        raise HTTPException(400, f"expected an SDP offer, got type {body.type!r}")
    edge = edge_of(request.app)
    try:
        call = await edge.offer(request.app.state.manager, body.sdp, body.room, body.caller)
    except OfferError as exc:
        count_rejection("sdp")
        raise HTTPException(400, str(exc)) from None
    except NoRoute as exc:
        raise HTTPException(404, str(exc)) from None
    except Draining as exc:
        raise HTTPException(503, str(exc)) from None
    return Answer(sdp=call.pc.localDescription.sdp, call_id=call.call_id, codec=call.codec)


@router.post("/webrtc/hangup", dependencies=[Depends(require_token)], response_model=Ended)
async def hangup(body: Hangup, request: Request) -> Ended:
    """The page hangs up (also sent by the page with ``keepalive`` when it is closed)."""
    call = edge_of(request.app).calls.get(body.call_id)
    if call is None:
        raise HTTPException(404, "no such webrtc call")
    await call.close("caller_hangup")
    return Ended(call_id=call.call_id, reason=call.session.end_reason)


# --- the talk page -----------------------------------------------------------------------

_STATIC = {
    "talk.js": "text/javascript; charset=utf-8",
    "talk.css": "text/css; charset=utf-8",
    "index.html": "text/html; charset=utf-8",
}


def _static(name: str) -> bytes:
    return resources.files("voxgate.webrtc").joinpath("static", name).read_bytes()


@router.get("/", include_in_schema=False)
async def talk_page() -> Response:
    return Response(_static("index.html"), media_type=_STATIC["index.html"])


@router.get("/webrtc/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    if name not in _STATIC:
        raise HTTPException(404, "not found")
    return Response(_static(name), media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})
