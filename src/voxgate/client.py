"""``voxgate.client``: write an external voice app that voxgate (or Twilio) streams calls to.

The app is a WebSocket *server*; voxgate's bridge connects to it for every call routed to
``ws://your-app/...``. It speaks the Twilio-compatible protocol (the same app also works
behind a real Twilio number) or voxgate's native protocol (binary PCM16/mu-law/Opus, plus
hang-up, transfer and transcripts). Either way the app sees one small API::

    async def handle(call: AppCall) -> None:
        async for event in call:                 # caller audio and events until hang-up
            if isinstance(event, CallerAudio):
                await call.send_audio(event.pcm)     # PCM16 at call.sample_rate
        # returning ends the call (Twilio: closes the stream; native: sends hangup)

    async with serve(handle, port=8765, protocol="twilio", auth_header="Bearer s3cret"):
        await asyncio.Future()

Marks: ``await call.mark("x")`` after some audio; ``MarkPlayed("x")`` arrives when the
caller has heard it. ``await call.clear()`` drops unplayed audio (barge-in); as with Twilio,
marks still pending then come back at once (``MarkPlayed.cleared`` tells, on native).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from voxgate.audio.frame import Pcm16
from voxgate.audio.g711 import ulaw_decode
from voxgate.websocket import native_protocol as native
from voxgate.websocket import twilio_protocol as twilio
from voxgate.websocket._audio import WireDecoder, WireEncoder
from voxgate.websocket.errors import CLOSE_NORMAL, StreamProtocolError

__all__ = ["AppCall", "CallStopped", "CallerAudio", "Dtmf", "MarkPlayed", "serve"]

Protocol = Literal["twilio", "native"]


@dataclass(frozen=True, slots=True)
class CallerAudio:
    pcm: Pcm16
    sample_rate: int


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    name: str
    cleared: bool = False


@dataclass(frozen=True, slots=True)
class CallStopped:
    reason: str


Event = CallerAudio | Dtmf | MarkPlayed | CallStopped


@dataclass(eq=False)
class AppCall:
    """One call streamed to the app. Iterate for events; the methods talk back."""

    protocol: Protocol
    call_id: str
    caller: str
    callee: str
    sample_rate: int
    parameters: Mapping[str, str] = field(default_factory=dict)
    _ws: ServerConnection | None = field(default=None, repr=False)
    _events: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(500), repr=False)
    _encoder: WireEncoder | None = field(default=None, repr=False)
    _twilio: twilio.TwilioServerProtocol | None = field(default=None, repr=False)
    _native: native.NativeAppProtocol | None = field(default=None, repr=False)
    stopped: str | None = None

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, CallStopped):
                return

    async def _send(self, message: str | bytes) -> None:
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(message)

    async def send_audio(self, pcm: Pcm16, sample_rate: int | None = None) -> None:
        """Queue audio for the caller (PCM16; resampled when ``sample_rate`` differs)."""
        rate = sample_rate or self.sample_rate
        if self._encoder is None or self._encoder_rate != rate:
            fmt = self._format
            self._encoder = WireEncoder(fmt.encoding, fmt.sample_rate, rate)
            self._encoder_rate = rate
        for chunk in self._encoder.encode(np.asarray(pcm, dtype=np.int16)):
            await self._send(self._twilio.media(chunk) if self._twilio else chunk)

    async def mark(self, name: str) -> None:
        if self._encoder is not None:
            for chunk in self._encoder.flush():
                await self._send(self._twilio.media(chunk) if self._twilio else chunk)
        await self._send(self._twilio.mark(name) if self._twilio else _nat(self).mark(name))

    async def clear(self) -> None:
        if self._encoder is not None:
            self._encoder.reset()
        await self._send(self._twilio.clear() if self._twilio else _nat(self).clear())

    async def hangup(self, reason: str = "app_hangup") -> None:
        """End the call: native sends ``hangup``; Twilio's protocol closes the stream."""
        if self._native is not None:
            await self._send(self._native.hangup(reason))
        if self._ws is not None:
            await self._ws.close(CLOSE_NORMAL, reason[:120])

    async def transfer(self, target: str) -> None:
        await self._send(_nat(self, "transfer").transfer(target))

    async def send_dtmf(self, digits: str) -> None:
        await self._send(_nat(self, "send_dtmf").dtmf(digits))

    async def transcript(self, role: str, text: str, final: bool = True) -> None:
        await self._send(_nat(self, "transcript").transcript(role, text, final))

    @property
    def _format(self) -> native.AudioFormat:
        if self._native is not None and self._native.format is not None:
            return self._native.format
        return native.AudioFormat("mulaw", 8000)

    _encoder_rate: int = 0


def _nat(call: AppCall, what: str = "this") -> native.NativeAppProtocol:
    if call._native is None:
        raise NotImplementedError(f"{what} needs the native protocol (Twilio's has no message)")
    return call._native


Handler = Callable[[AppCall], Awaitable[None]]
# websockets logs request headers (the Authorization secret) at DEBUG; this server's logger
# is pinned at INFO so turning on debug logging never writes it.
_wire_log = logging.getLogger("voxgate.client.wire")
_wire_log.setLevel(logging.INFO)
_ids = itertools.count(1)


async def _open_twilio(ws: ServerConnection) -> AppCall:
    proto = twilio.TwilioServerProtocol()
    while True:
        event = proto.receive(await ws.recv())
        if isinstance(event, twilio.Start):
            params = dict(event.custom_parameters)
            return AppCall(
                "twilio",
                event.call_sid,
                params.get("From", ""),
                params.get("To", ""),
                twilio.SAMPLE_RATE,
                params,
                _ws=ws,
                _twilio=proto,
            )


async def _open_native(ws: ServerConnection) -> AppCall:
    proto = native.NativeAppProtocol()
    event = proto.receive(await ws.recv())
    assert isinstance(event, native.Hello) and proto.format is not None
    call_id = event.call_id or f"app_{next(_ids)}"
    await ws.send(proto.ready(call_id))
    return AppCall(
        "native",
        call_id,
        event.caller,
        event.callee,
        proto.format.sample_rate,
        dict(event.metadata),
        _ws=ws,
        _native=proto,
    )


async def _read(call: AppCall, ws: ServerConnection) -> None:
    decoder = None
    if call._native is not None and call._native.format is not None:
        fmt = call._native.format
        decoder = WireDecoder(fmt.encoding, fmt.sample_rate, fmt.sample_rate)
    reason = "caller_hangup"
    try:
        async for data in ws:
            binary = isinstance(data, bytes)
            event: Event | None = None
            if call._twilio is not None:
                t = call._twilio.receive(data)
                if isinstance(t, twilio.Media):
                    event = CallerAudio(ulaw_decode(t.payload), twilio.SAMPLE_RATE)
                elif isinstance(t, twilio.Dtmf):
                    event = Dtmf(t.digit)
                elif isinstance(t, twilio.Mark):
                    event = MarkPlayed(t.name)
                elif isinstance(t, twilio.Stop):
                    break
            else:
                n = _nat(call).receive(data, binary)
                if isinstance(n, native.Audio) and decoder is not None:
                    event = CallerAudio(decoder.decode(n.data), call.sample_rate)
                elif isinstance(n, native.Dtmf):
                    event = Dtmf(n.digits)
                elif isinstance(n, native.MarkPlayed):
                    event = MarkPlayed(n.name, n.cleared)
                elif isinstance(n, native.Stop):
                    reason = n.reason
                    break
            if event is not None:
                await call._events.put(event)
    except ConnectionClosed:
        reason = "disconnected"
    except StreamProtocolError as exc:
        reason = "protocol_error"
        await ws.close(exc.close_code, exc.reason)
    call.stopped = reason
    await call._events.put(CallStopped(reason))


def serve(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    protocol: Protocol = "twilio",
    auth_header: str | None = None,
    max_size: int = 1 << 20,
) -> Server:
    """Start the app server (use as ``async with serve(...) as server``).

    ``auth_header``: when set, connections must send exactly this ``Authorization`` value
    (the route's ``auth_header`` in voxgate); others get HTTP 401.
    """

    def check_auth(conn: ServerConnection, request: Request) -> Response | None:
        if auth_header is None:
            return None
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), auth_header.encode()):
            return None
        return Response(401, "Unauthorized", Headers([("Content-Length", "0")]), b"")

    async def connection(ws: ServerConnection) -> None:
        try:
            call = await (_open_native(ws) if protocol == "native" else _open_twilio(ws))
        except (StreamProtocolError, ConnectionClosed) as exc:
            if isinstance(exc, StreamProtocolError):
                await ws.close(exc.close_code, exc.reason)
            return
        reader = asyncio.create_task(_read(call, ws))
        try:
            await handler(call)
        finally:
            if call.stopped is None:
                await call.hangup("app_done")
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    return ws_serve(
        connection,
        host,
        port,
        process_request=check_auth,
        max_size=max_size,
        compression=None,
        logger=_wire_log,
    )
