"""The Twilio edge: ``POST /twilio/voice`` (TwiML) and the ``/twilio/media`` stream.

A Twilio number pointed at ``/twilio/voice`` gets TwiML that connects the call's media to
``wss://HOST/twilio/media``; each stream becomes a :class:`CallSession` (edge
``"websocket"``) routed like any other call. The agent's audio goes out immediately in
20 ms mu-law ``media`` messages (Twilio buffers and paces playback), every ``sink.mark``
becomes a Twilio ``mark`` whose echo is reported as ``MarkPlayed`` (so the agent knows which
clauses were heard), and ``sink.clear`` drops unsent audio and sends ``clear``; marks pending
at that moment are swallowed when Twilio echoes them, since that audio was never heard.

Auth, in order: an API token on the handshake (header, ``?token=``, cookie), a valid
``X-Twilio-Signature`` on the handshake (when a Twilio auth token is configured), or a
``token`` custom parameter in ``start``. The TwiML from ``/twilio/voice`` carries a token
derived from the API token and the CallSid (:func:`stream_token`), so the API token itself
never leaves the server and a leaked TwiML opens only that one call's stream.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, HTTPException, Request, Response, WebSocket
from pydantic import SecretStr

from voxgate.api.auth import request_token, require_token, token_ok
from voxgate.audio.frame import AudioFrame, Pcm16
from voxgate.audio.g711 import ulaw_decode
from voxgate.calls.manager import CallManager, Draining
from voxgate.calls.router import NoRoute
from voxgate.calls.session import CallSession, DtmfReceived, MarkPlayed
from voxgate.observability.metrics import HTTP_AUTH_FAILURES
from voxgate.websocket._audio import WireEncoder
from voxgate.websocket._edge import (
    DROPPED_FRAMES,
    EdgeConnection,
    MarkLedger,
    StartResult,
    StreamConn,
    receive_loop,
    run_stream,
    wait_bounded,
)
from voxgate.websocket.config import WebSocketSettings, settings_of
from voxgate.websocket.errors import (
    CLOSE_NO_ROUTE,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_TOO_FAST,
    CLOSE_TRY_AGAIN,
    CLOSE_UNSUPPORTED_DATA,
    StreamProtocolError,
)
from voxgate.websocket.twilio_protocol import (
    SAMPLE_RATE,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioServerProtocol,
)

if TYPE_CHECKING:
    from voxgate.websocket.fastpath import FastStream

router = APIRouter()

HANGUP_DRAIN_S = 10.0
"""How long hang-up waits for queued agent audio to be played before closing."""


# --- signatures and tokens -----------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(token, url + sorted key+value pairs))."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_ok(
    auth_token: SecretStr | None, url: str, params: Mapping[str, str], header: str | None
) -> bool:
    if auth_token is None or not header:
        return False
    expected = twilio_signature(auth_token.get_secret_value(), url, params)
    return hmac.compare_digest(expected.encode(), header.encode())


def stream_token(api_token: SecretStr, call_sid: str) -> str:
    """A per-call token for one media stream, derived so the API token is never sent out."""
    mac = hmac.new(
        api_token.get_secret_value().encode(), b"twilio-stream:" + call_sid.encode(), "sha256"
    )
    return base64.urlsafe_b64encode(mac.digest()[:24]).decode()


def _stream_token_ok(candidate: str, call_sid: str, tokens: Sequence[SecretStr]) -> bool:
    if token_ok(candidate, tokens):
        return True
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(candidate.encode(), stream_token(token, call_sid).encode())
    return ok


def _public_url(settings: Any, path: str, query: str, fallback: str) -> str:
    """The URL Twilio used (and signed): the configured public URL, else what we saw."""
    base: str | None = getattr(getattr(settings, "server", None), "public_url", None)
    if not base:
        return fallback
    url = base.rstrip("/") + path
    return url + "?" + query if query else url


def _ws_url(http_url: str) -> str:
    if http_url.startswith("https://"):
        return "wss://" + http_url[8:]
    if http_url.startswith("http://"):
        return "ws://" + http_url[7:]
    return http_url


# --- the sink and control a Twilio stream gives its call ------------------------------


class TwilioSink:
    """``AudioSink`` over one Twilio stream; see the module docstring for mark semantics."""

    sample_rate = SAMPLE_RATE

    def __init__(self, conn: StreamConn, proto: TwilioServerProtocol) -> None:
        self._conn = conn
        self._proto = proto
        self._in_rate = SAMPLE_RATE
        self._encoder = WireEncoder("mulaw", SAMPLE_RATE, SAMPLE_RATE)
        self.marks = MarkLedger()
        self._last_pcm: object = None
        self._last_payload = b""

    def inbound(self, pcm: Pcm16, payload: bytes) -> None:
        """The caller's latest frame, decoded from ``payload`` and made read-only.

        If the app writes that very array back (echo, a pass-through bridge), its mu-law
        bytes go out as received instead of being re-encoded (~3 us per frame saved). The
        array is read-only, so being the same object means holding the same samples; the
        one difference from re-encoding is that mu-law's "negative zero" (0x7F) stays 0x7F
        instead of becoming 0xFF (both decode to 0)."""
        self._last_pcm = pcm
        self._last_payload = payload

    def write(self, frame: AudioFrame) -> None:
        if (
            frame.samples is self._last_pcm
            and frame.sample_rate == self._in_rate == SAMPLE_RATE
            and self._encoder.idle
        ):
            self._conn.send(self._proto.media(self._last_payload), audio=True)
            return
        if frame.sample_rate != self._in_rate:  # an app at another rate: resample on the way
            self._in_rate = frame.sample_rate
            self._encoder = WireEncoder("mulaw", SAMPLE_RATE, frame.sample_rate)
        for chunk in self._encoder.encode(frame.samples):
            self._conn.send(self._proto.media(chunk), audio=True)

    def mark(self, name: str) -> None:
        for chunk in self._encoder.flush():
            self._conn.send(self._proto.media(chunk), audio=True)
        # Queued as "audio" so a clear before it is sent drops it with the audio it follows.
        self._conn.send(self._proto.mark(name), audio=True)
        self.marks.sent(name)

    def clear(self) -> None:
        self._encoder.reset()
        self._conn.purge_audio()
        self._conn.send(self._proto.clear())
        self.marks.clear()

    async def played(self, name: str, limit_s: float) -> None:
        """Mark here and wait (bounded) until the client echoes it."""
        waiter = self.marks.waiter(name)
        self.mark(name)
        await wait_bounded(waiter, limit_s)


class TwilioControl:
    """Call control on a Twilio stream: only hang-up exists without Twilio's REST API."""

    _ids = itertools.count(1)

    def __init__(self, conn: StreamConn, sink: TwilioSink) -> None:
        self._conn = conn
        self._sink = sink
        self.session: CallSession | None = None

    async def hangup(self, reason: str = "agent_hangup") -> None:
        """Let queued audio finish (bounded), then close the stream; Twilio ends the call."""
        await self._sink.played(f"voxgate-hangup-{next(self._ids)}", HANGUP_DRAIN_S)
        if self.session is not None:
            self.session.end(reason)
        self._conn.fail(CLOSE_NORMAL, reason)

    async def transfer(self, target: str) -> None:
        raise NotImplementedError("transfer on a Twilio stream needs Twilio's REST API")

    async def hold(self) -> None:
        raise NotImplementedError("hold is not supported on Twilio streams")

    async def unhold(self) -> None:
        raise NotImplementedError("unhold is not supported on Twilio streams")

    async def send_dtmf(self, digits: str) -> None:
        raise NotImplementedError("sending DTMF is not supported on Twilio streams")


# --- the stream ----------------------------------------------------------------------


class _TwilioStream:
    """One ``/twilio/media`` socket, from ``connected`` to close, over either socket layer
    (ASGI :class:`EdgeConnection` or the fast path): a :class:`~._edge.StreamHandler`."""

    def __init__(
        self,
        conn: StreamConn,
        manager: CallManager,
        settings: WebSocketSettings,
        tokens: Sequence[SecretStr],
        authorized: bool,
    ) -> None:
        self.conn = conn
        self.proto = TwilioServerProtocol()
        self.manager = manager
        self.settings = settings
        self.tokens = tokens
        self.authorized = authorized
        self.session: CallSession | None = None
        self.sink = TwilioSink(conn, self.proto)
        self._time = asyncio.get_running_loop().time
        self._limit = settings.max_dropped_frames

    def on_message(
        self, data: str | bytes, binary: bool
    ) -> tuple[int, str] | Coroutine[Any, Any, StartResult] | None:
        if binary:
            raise StreamProtocolError(
                "binary frames are not part of the Twilio protocol",
                close_code=CLOSE_UNSUPPORTED_DATA,
            )
        event = self.proto.receive(data)
        if type(event) is Media:
            session = self.session
            if session is None or event.track not in ("inbound", "inbound_track"):
                return None
            now = self._time()
            limiter = self.conn.limiter
            if not limiter.allow(len(event.payload) / SAMPLE_RATE, now):
                DROPPED_FRAMES.labels(reason="rate").inc()
                if limiter.dropped > self._limit:
                    return CLOSE_TOO_FAST, "audio faster than real time"
                return None
            pcm = ulaw_decode(event.payload)
            pcm.flags.writeable = False  # see TwilioSink.inbound
            self.sink.inbound(pcm, event.payload)
            session.feed_audio(AudioFrame(pcm, SAMPLE_RATE, now, event.chunk))
        elif isinstance(event, Start):
            return self._start(event)
        elif isinstance(event, Dtmf):
            if self.session is not None:
                self.session.feed_event(DtmfReceived(event.digit))
        elif isinstance(event, Mark):
            if self.sink.marks.echoed(event.name) and self.session is not None:
                self.session.feed_event(MarkPlayed(event.name))
        elif isinstance(event, Stop):
            return CLOSE_NORMAL, "caller_hangup"
        return None

    async def _start(self, start: Start) -> tuple[int, str] | None:
        params = dict(start.custom_parameters)
        token = params.pop("token", "")
        if not self.authorized and not _stream_token_ok(token, start.call_sid, self.tokens):
            HTTP_AUTH_FAILURES.labels(surface="websocket").inc()
            return CLOSE_POLICY, "unauthorized"
        control = TwilioControl(self.conn, self.sink)
        session = CallSession(
            edge="websocket",
            sink=self.sink,
            control=control,
            sample_rate=SAMPLE_RATE,
            caller=params.get("From", ""),
            callee=params.get("To", "") or "/twilio/media",
            metadata={
                "protocol": "twilio",
                "codec": "PCMU/8000",
                "stream_sid": start.stream_sid,
                "call_sid": start.call_sid,
                "account_sid": start.account_sid,
                **{f"param.{k}": v for k, v in params.items()},
            },
        )
        control.session = session
        try:
            await self.manager.start(session)
        except NoRoute as exc:
            session.end("no_route")
            return CLOSE_NO_ROUTE, str(exc)
        except Draining:
            session.end("draining")
            return CLOSE_TRY_AGAIN, "node draining"
        self.session = session
        self.conn.attach(session)
        return None


def _authorized(websocket: WebSocket) -> bool:
    """API token or Twilio signature on the handshake (else the ``start`` must carry one)."""
    settings = websocket.app.state.settings
    tokens: Sequence[SecretStr] = settings.auth.api_tokens
    url = _public_url(settings, websocket.url.path, websocket.url.query, str(websocket.url))
    return token_ok(request_token(websocket), tokens) or signature_ok(
        settings_of(settings).twilio_auth_token,
        _ws_url(url),
        {},
        websocket.headers.get("x-twilio-signature"),
    )


def _open(conn: StreamConn, websocket: WebSocket) -> _TwilioStream:
    settings = websocket.app.state.settings
    return _TwilioStream(
        conn,
        websocket.app.state.manager,
        settings_of(settings),
        settings.auth.api_tokens,
        _authorized(websocket),
    )


def open_twilio_stream(conn: FastStream, websocket: WebSocket) -> _TwilioStream:
    """The fast path's entry (:mod:`voxgate.websocket.fastpath`): the socket is open."""
    return _open(conn, websocket)


@router.websocket("/twilio/media")
async def twilio_media(websocket: WebSocket) -> None:
    """Twilio bidirectional Media Streams endpoint (ASGI; the fast path serves the same)."""
    await websocket.accept()
    conn = EdgeConnection(websocket, settings_of(websocket.app.state.settings))
    stream = _open(conn, websocket)
    await run_stream(conn, lambda: receive_loop(conn, stream))


@router.post("/twilio/voice", response_class=Response)
async def twilio_voice(request: Request) -> Response:
    """TwiML that connects a Twilio call's media to this server's ``/twilio/media``."""
    settings = request.app.state.settings
    ws_settings = settings_of(settings)
    form = await request.form()
    params = {key: value for key, value in form.items() if isinstance(value, str)}
    if ws_settings.twilio_auth_token is not None:
        url = _public_url(settings, request.url.path, request.url.query, str(request.url))
        if not signature_ok(
            ws_settings.twilio_auth_token, url, params, request.headers.get("x-twilio-signature")
        ):
            HTTP_AUTH_FAILURES.labels(surface="twilio").inc()
            raise HTTPException(status_code=403, detail="invalid X-Twilio-Signature")
    else:
        require_token(request)
    if request.app.state.draining or request.app.state.manager.draining:
        # Twilio then tries the number's fallback URL (another node) instead of connecting
        # a stream this node would refuse a moment later.
        raise HTTPException(status_code=503, detail="node draining", headers={"Retry-After": "5"})
    base = _public_url(settings, "", "", f"{request.url.scheme}://{request.url.netloc}")
    stream_url = _ws_url(base.rstrip("/")) + "/twilio/media"
    tokens: Sequence[SecretStr] = settings.auth.api_tokens
    parameters = {
        "token": stream_token(tokens[0], params.get("CallSid", "")) if tokens else "",
        "From": params.get("From", ""),
        "To": params.get("To", ""),
    }
    body = "".join(
        f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in parameters.items()
    )
    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>{body}</Stream></Connect>"
        "</Response>"
    )
    return Response(twiml, media_type="application/xml")
