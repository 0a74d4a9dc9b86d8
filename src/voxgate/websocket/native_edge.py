"""``/v1/stream``: the native voxgate stream protocol as an edge (token required).

For apps and browsers that want raw audio in a format of their choice, with or without our
agent: the client says ``hello`` with the formats it can use, gets ``ready`` with the one
picked, then streams binary audio both ways. The call is routed like any other; the routed
app's audio goes out in 20 ms frames, marks and clear behave as on the Twilio edge, and the
app can hang up, transfer (the client carries it out) and send DTMF. Agents that publish
transcripts may call :meth:`NativeSink.transcript` (duck-typed: other sinks lack it).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket

from voxgate.api.auth import websocket_token_ok
from voxgate.audio.frame import AudioFrame
from voxgate.calls.manager import CallManager, Draining
from voxgate.calls.router import NoRoute
from voxgate.calls.session import CallSession, DtmfReceived, MarkPlayed
from voxgate.errors import ParseError
from voxgate.websocket._audio import WireDecoder, WireEncoder
from voxgate.websocket._edge import (
    DROPPED_FRAMES,
    EdgeConnection,
    MarkLedger,
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
    StreamProtocolError,
)
from voxgate.websocket.native_protocol import (
    RATES,
    AudioFormat,
    Dtmf,
    Hello,
    NativeAppProtocol,
    Stop,
)
from voxgate.websocket.native_protocol import (
    MarkPlayed as NativeMarkPlayed,
)

router = APIRouter()

HANGUP_DRAIN_S = 10.0


def supported_formats() -> list[AudioFormat]:
    """Every format this node can serve; Opus only when libopus loads."""
    formats = [AudioFormat(e, r) for e, rates in RATES.items() if e != "opus" for r in rates]
    try:
        WireEncoder("opus", 48000, 48000)
    except (OSError, ImportError, ParseError, ValueError):
        return formats
    return formats + [AudioFormat("opus", r) for r in sorted(RATES["opus"])]


class NativeSink:
    """``AudioSink`` over a native stream: binary frames in the negotiated format."""

    def __init__(self, conn: EdgeConnection, proto: NativeAppProtocol, fmt: AudioFormat) -> None:
        self._conn = conn
        self._proto = proto
        self._fmt = fmt
        self.sample_rate = fmt.sample_rate
        self._in_rate = fmt.sample_rate
        self._encoder = WireEncoder(fmt.encoding, fmt.sample_rate, fmt.sample_rate)
        self.marks = MarkLedger()

    def write(self, frame: AudioFrame) -> None:
        if frame.sample_rate != self._in_rate:
            self._in_rate = frame.sample_rate
            self._encoder = WireEncoder(
                self._fmt.encoding, self._fmt.sample_rate, frame.sample_rate
            )
        for chunk in self._encoder.encode(frame.samples):
            self._conn.send(chunk, audio=True)

    def mark(self, name: str) -> None:
        for chunk in self._encoder.flush():
            self._conn.send(chunk, audio=True)
        self._conn.send(self._proto.mark(name), audio=True)
        self.marks.sent(name)

    def clear(self) -> None:
        self._encoder.reset()
        self._conn.purge_audio()
        self._conn.send(self._proto.clear())
        self.marks.clear()

    def transcript(self, role: str, text: str, final: bool = True) -> None:
        """Caption for the client: ``role`` is ``"caller"`` or ``"agent"``."""
        self._conn.send(self._proto.transcript(role, text, final))


class NativeControl:
    def __init__(self, conn: EdgeConnection, sink: NativeSink, proto: NativeAppProtocol) -> None:
        self._conn = conn
        self._sink = sink
        self._proto = proto
        self.session: CallSession | None = None
        self._hangups = 0

    async def hangup(self, reason: str = "agent_hangup") -> None:
        """Let queued audio play (bounded), tell the client, then close."""
        self._hangups += 1
        name = f"voxgate-hangup-{self._hangups}"
        waiter = self._sink.marks.waiter(name)
        self._sink.mark(name)
        await wait_bounded(waiter, HANGUP_DRAIN_S)
        self._conn.send(self._proto.hangup(reason))
        if self.session is not None:
            self.session.end(reason)
        self._conn.fail(CLOSE_NORMAL, reason)

    async def transfer(self, target: str) -> None:
        """Ask the client to transfer; it carries it out (and then sends ``stop``)."""
        self._conn.send(self._proto.transfer(target))

    async def hold(self) -> None:
        raise NotImplementedError("hold is not supported on native streams")

    async def unhold(self) -> None:
        raise NotImplementedError("unhold is not supported on native streams")

    async def send_dtmf(self, digits: str) -> None:
        self._conn.send(self._proto.dtmf(digits))


class _NativeStream:
    def __init__(
        self, websocket: WebSocket, manager: CallManager, settings: WebSocketSettings
    ) -> None:
        self.conn = EdgeConnection(websocket, settings)
        self.proto = NativeAppProtocol(supported_formats(), settings.max_message_bytes)
        self.manager = manager
        self.settings = settings
        self.sink: NativeSink | None = None
        self.decoder: WireDecoder | None = None

    async def _receive(self) -> tuple[int, str]:
        conn, proto, loop = self.conn, self.proto, asyncio.get_running_loop()
        limit = self.settings.max_dropped_frames
        while True:
            data, binary = await conn.receive()
            event = proto.receive(data, binary)
            session = conn.session
            if binary:
                if session is None or self.decoder is None:
                    continue
                try:
                    pcm = self.decoder.decode(data if isinstance(data, bytes) else b"")
                except ParseError as exc:  # a corrupt Opus packet
                    raise StreamProtocolError(
                        f"undecodable audio: {exc}", field="$binary"
                    ) from None
                now = loop.time()
                if not conn.limiter.allow(pcm.shape[0] / session.sample_rate, now):
                    DROPPED_FRAMES.labels(reason="rate").inc()
                    if conn.limiter.dropped > limit:
                        return CLOSE_TOO_FAST, "audio faster than real time"
                    continue
                session.feed_audio(AudioFrame(pcm, session.sample_rate, now))
            elif isinstance(event, Hello):
                refusal = await self._start(event)
                if refusal is not None:
                    return refusal
            elif session is None:
                continue
            elif isinstance(event, Dtmf):
                session.feed_event(DtmfReceived(event.digits))
            elif isinstance(event, NativeMarkPlayed):
                assert self.sink is not None
                if self.sink.marks.echoed(event.name) and not event.cleared:
                    session.feed_event(MarkPlayed(event.name))
            elif isinstance(event, Stop):
                return CLOSE_NORMAL, event.reason

    async def _start(self, hello: Hello) -> tuple[int, str] | None:
        fmt = self.proto.format
        assert fmt is not None
        self.sink = sink = NativeSink(self.conn, self.proto, fmt)
        self.decoder = WireDecoder(fmt.encoding, fmt.sample_rate, fmt.sample_rate)
        control = NativeControl(self.conn, sink, self.proto)
        session = CallSession(
            edge="websocket",
            sink=sink,
            control=control,
            sample_rate=fmt.sample_rate,
            caller=hello.caller,
            callee=hello.callee or "/v1/stream",
            metadata={
                "protocol": "native",
                "codec": f"{fmt.encoding}/{fmt.sample_rate}",
                "client_call_id": hello.call_id,
                **hello.metadata,
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
        # Nothing awaited since the app's task was created: ready goes out before its audio.
        self.conn.send(self.proto.ready(session.call_id))
        self.conn.attach(session)
        return None


@router.websocket("/v1/stream")
async def native_stream(websocket: WebSocket) -> None:
    """The native voxgate stream protocol (docs/websocket-protocol.md); token required."""
    if not websocket_token_ok(websocket):
        await websocket.close(CLOSE_POLICY)  # before accept: the handshake gets HTTP 403
        return
    await websocket.accept()
    stream = _NativeStream(
        websocket, websocket.app.state.manager, settings_of(websocket.app.state.settings)
    )
    await run_stream(stream.conn, stream._receive)
