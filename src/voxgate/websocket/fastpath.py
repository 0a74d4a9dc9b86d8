"""The media fast path: ``/twilio/media`` sockets terminated without ASGI, on uvicorn's port.

Why: a Twilio stream carries 50 small messages a second each way. Through uvicorn's
WebSocket protocol, Starlette and a sender task, a stream cost 0.53 % of a core (~106 us
per echoed frame; py-spy: ~45 % of it framing, ASGI dicts, queue and task wake-ups), which
capped one process at ~100-150 streams under 10 ms p99. On this path it costs ~0.17-0.21 %
(~35 us, of which ~10 us is Python and the rest the socket syscalls): bench/RESULTS.md. Here a stream
is one ``asyncio.Protocol``: ``data_received`` unmasks frames (:mod:`._frames`, the C
``apply_mask`` of websockets), hands each text message to the edge's synchronous handler,
whose echo or app output is written back in one ``transport.write`` per read. No task, no
queue and no future per message.

How it is wired: uvicorn lets ``Config(ws=...)`` be a protocol class, which it instantiates
after its HTTP parser has seen an upgrade request. :func:`media_ws_protocol` builds that class
for one app: upgrades to a path in :data:`FAST_ROUTES` get :class:`FastStream`; every other
upgrade (``/v1/stream``, the WebRTC signalling socket, ...) is passed untouched to uvicorn's
own ``websockets-sansio`` protocol. One port, and plain HTTP never comes near this module.
The ASGI route for ``/twilio/media`` stays: an app served without this class (tests with
Starlette's client, another ASGI server) behaves the same, only slower.

What is kept, identical to the ASGI edge (both run :class:`~._edge.StreamHandler` code):
token/signature auth, the Twilio protocol core and its close codes and reasons, rate
limits, metrics (rejections, closes, dropped frames, auth failures), routing to any app.
What this module adds for itself, as uvicorn's protocol did: the RFC 6455 rules (masking,
fragmentation, control frames, UTF-8, size limit), ping answers and keepalive pings,
the closing handshake, and the bounds on output: while the socket's kernel and transport
buffers are full (``pause_writing``) messages wait in a queue of at most
``send_queue_max_messages``, and a pause longer than ``send_stall_timeout_s`` closes 4008.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import Callable, MutableMapping
from typing import Any, ClassVar
from urllib.parse import unquote

from prometheus_client import Gauge
from starlette.websockets import WebSocket

from voxgate.calls.session import CallSession
from voxgate.observability.metrics import REGISTRY, count_rejection
from voxgate.websocket._edge import (
    START_TIMEOUT_S,
    STREAM_CLOSES,
    RateLimiter,
    StreamHandler,
    end_reason,
    reject,
)
from voxgate.websocket._frames import (
    OP_BINARY,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameReader,
    HandshakeError,
    WsProtocolError,
    encode_close,
    encode_frame,
    handshake_response,
    http_error,
    parse_close,
    parse_request,
)
from voxgate.websocket.config import WebSocketSettings, settings_of
from voxgate.websocket.errors import (
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_SLOW_CONSUMER,
    StreamProtocolError,
)

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 2.0
"""How long a close waits for queued output and the peer's close frame before aborting."""

OpenStream = Callable[["FastStream", WebSocket], StreamHandler]

FAST_STREAMS = Gauge(
    "voxgate_websocket_fast_streams",
    "WebSocket media streams open on the fast path (outside ASGI).",
    registry=REGISTRY,
    multiprocess_mode="livesum",  # server.workers > 1: the node's total over live workers
)


def _routes() -> dict[str, OpenStream]:
    from voxgate.websocket.twilio_edge import open_twilio_stream

    return {"/twilio/media": open_twilio_stream}


async def _never_receive() -> MutableMapping[str, Any]:  # pragma: no cover - never awaited
    raise RuntimeError("the fast path does not use ASGI receive")


async def _never_send(
    message: MutableMapping[str, Any],
) -> None:  # pragma: no cover - never awaited
    raise RuntimeError("the fast path does not use ASGI send")


class FastStream(asyncio.Protocol):
    """One fast-path WebSocket after its handshake: frames in, handler, frames out.

    It becomes the transport's protocol itself right after the handshake (no forwarding
    layer per read); uvicorn's bookkeeping (``shutdown``) goes through the class below.

    Implements the connection surface the edges use (``send``, ``purge_audio``, ``fail``,
    ``attach``, ``limiter``, ``session``, ``settings``), like the ASGI ``EdgeConnection``.
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        settings: WebSocketSettings,
        ping_interval: float | None,
        ping_timeout: float | None,
        on_lost: Callable[[FastStream], None],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport = transport
        self.settings = settings
        self.limiter = RateLimiter(settings.rate_burst_s, settings.rate_factor, self.loop.time())
        self.session: CallSession | None = None
        self.handler: StreamHandler | None = None
        self._reader = FrameReader(settings.max_message_bytes)
        self._out: list[tuple[bytes, bool]] = []
        self._max_out = settings.send_queue_max_messages
        self._in_read = False
        self._flush_handle: asyncio.Handle | None = None
        self._paused = False
        self._stall: asyncio.TimerHandle | None = None
        self._blocked: asyncio.Task[tuple[int, str] | None] | None = None
        self._backlog: list[tuple[int, bytes]] = []
        self._watcher: asyncio.Task[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._on_lost = on_lost
        self.closing = False
        """Set once our close frame is decided; no message is handled after it."""
        self.sent_messages = 0
        self._deadline = self.loop.call_later(START_TIMEOUT_S, self._no_start)
        self._schedule_ping()
        FAST_STREAMS.inc()

    # --- the connection surface the edges use -------------------------------------------

    def send(self, message: str | bytes, audio: bool = False) -> None:
        """Queue one message; it is written at the end of this read or on the next tick."""
        if self.closing:
            return
        out = self._out
        if len(out) >= self._max_out:
            self.fail(CLOSE_SLOW_CONSUMER, "peer is not reading: send queue full")
            return
        if isinstance(message, str):
            out.append((encode_frame(OP_TEXT, message.encode()), audio))
        else:
            out.append((encode_frame(OP_BINARY, message), audio))
        self.sent_messages += 1
        if not self._in_read and self._flush_handle is None and not self._paused:
            self._flush_handle = self.loop.call_soon(self._flush)

    def purge_audio(self) -> int:
        """Drop audio not yet written (barge-in); control messages stay in order."""
        before = len(self._out)
        self._out = [item for item in self._out if not item[1]]
        return before - len(self._out)

    def fail(self, code: int, reason: str) -> None:
        """End the stream from our side with ``code`` (the app, a limit, a timeout)."""
        self.close_stream(code, reason)

    def attach(self, session: CallSession) -> None:
        """The call this socket carries: when its app ends it, the stream closes (1000)."""
        self.session = session
        self._deadline.cancel()
        self._watcher = asyncio.create_task(self._watch(session), name="ws-fast-watch")

    async def _watch(self, session: CallSession) -> None:
        reason = await session.wait_ended()
        self.close_stream(CLOSE_NORMAL, reason)

    def _no_start(self) -> None:
        if self.session is None:
            self.fail(CLOSE_POLICY, f"no call started within {START_TIMEOUT_S:g} s")

    # --- output --------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_handle = None
        out = self._out
        if not out or self._paused or self.transport.is_closing():
            return
        self._out = []
        if len(out) == 1:
            self.transport.write(out[0][0])
        else:
            self.transport.write(b"".join([item[0] for item in out]))

    def pause_writing(self) -> None:
        self._paused = True
        timeout = self.settings.send_stall_timeout_s
        self._stall = self.loop.call_later(
            timeout,
            self.fail,
            CLOSE_SLOW_CONSUMER,
            f"peer is not reading: a send stalled {timeout:g}s",
        )

    def resume_writing(self) -> None:
        self._paused = False
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        self._flush()
        if self.closing and self._close_pending is not None:
            self._write_close()

    # --- input ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._reader.feed(data)
        except WsProtocolError as exc:
            count_rejection("websocket")
            log.info("closing WebSocket stream: %s", exc.reason)
            self.close_stream(exc.code, exc.reason, protocol_error=True)
            return
        self._in_read = True
        try:
            self._handle(messages)
        finally:
            self._in_read = False
        self._flush()

    def _handle(self, messages: list[tuple[int, bytes]]) -> None:
        for opcode, payload in messages:
            if opcode <= OP_BINARY:
                if self.closing:
                    continue
                if self._blocked is not None:
                    self._backlog.append((opcode, payload))
                    continue
                self._message(opcode, payload)
            elif opcode == OP_PING:
                if not self.closing:
                    self._out.append((encode_frame(OP_PONG, payload), False))
            elif opcode == OP_PONG:
                if self._ping_payload is not None and payload == self._ping_payload:
                    self._ping_payload = None
                    self._schedule_ping()
            else:
                self._peer_close(payload)
                return

    def _message(self, opcode: int, payload: bytes) -> None:
        assert self.handler is not None
        try:
            result = self.handler.on_message(payload, opcode == OP_BINARY)
        except StreamProtocolError as exc:
            self.close_stream(*reject(exc))
            return
        except Exception:  # a bug on our side ends this stream only, as a 1011
            log.exception("WebSocket stream handler failed")
            self.close_stream(1011, "internal error")
            return
        if result is None:
            return
        if isinstance(result, tuple):
            self.close_stream(*result)
            return
        # A coroutine (the call's start: routing, auth, the app's set-up). Later messages
        # wait for it in order; reading pauses so that wait is bounded by one read.
        self._blocked = asyncio.ensure_future(result)
        self.transport.pause_reading()
        self._blocked.add_done_callback(self._unblocked)

    def _unblocked(self, task: asyncio.Task[tuple[int, str] | None]) -> None:
        self._blocked = None
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, StreamProtocolError):
            self.close_stream(*reject(exc))
            return
        if exc is not None:
            log.error("WebSocket stream start failed", exc_info=exc)
            self.close_stream(1011, "internal error")
            return
        result = task.result()
        if result is not None:
            self.close_stream(*result)
            return
        backlog, self._backlog = self._backlog, []
        self._in_read = True
        try:
            self._handle(backlog)
        finally:
            self._in_read = False
        self._flush()
        if self._blocked is None and not self.closing:
            self.transport.resume_reading()

    # --- keepalive -----------------------------------------------------------------------

    def _schedule_ping(self) -> None:
        if self._ping_interval and not self.closing:
            self._ping_timer = self.loop.call_later(self._ping_interval, self._ping)

    def _ping(self) -> None:
        if self.closing:
            return
        self._ping_payload = struct.pack("!I", random.getrandbits(32))
        self.transport.write(encode_frame(OP_PING, self._ping_payload))
        if self._ping_timeout:
            self._ping_timer = self.loop.call_later(self._ping_timeout, self._ping_lost)
        else:
            self._schedule_ping()

    def _ping_lost(self) -> None:
        if self._ping_payload is not None:
            self.close_stream(1011, "keepalive ping timeout")

    # --- closing -------------------------------------------------------------------------

    _close_pending: bytes | None = None

    def close_stream(self, code: int, reason: str, *, protocol_error: bool = False) -> None:
        """Our close: end the call, send what must go first, then the close frame."""
        if self.closing:
            return
        self.closing = True
        self._end_call(end_reason(code, reason))
        STREAM_CLOSES.labels(code=str(code)).inc()
        if code != CLOSE_NORMAL or protocol_error:
            self._out = []  # as the ASGI edge: only a normal end lets queued audio finish
        self._close_pending = encode_close(code, reason[:120])
        self._close_timer = self.loop.call_later(CLOSE_TIMEOUT_S, self.transport.abort)
        if not self._paused:
            self._write_close()
        if protocol_error:  # the frame layer is out of sync: no closing handshake to wait for
            self.transport.close()

    def _write_close(self) -> None:
        self._flush()
        frame, self._close_pending = self._close_pending, None
        if frame is not None and not self.transport.is_closing():
            self.transport.write(frame)
            self.transport.resume_reading()  # the peer's close frame must be read

    def _peer_close(self, payload: bytes) -> None:
        if self.closing:  # the answer to our close: the handshake is complete
            self.transport.close()
            return
        try:
            code, _ = parse_close(payload)
        except WsProtocolError as exc:
            count_rejection("websocket")
            self.close_stream(exc.code, exc.reason, protocol_error=True)
            return
        self.closing = True
        self._end_call("caller_disconnected")
        STREAM_CLOSES.labels(code=str(CLOSE_NORMAL)).inc()
        self._out = []
        echo = CLOSE_NORMAL if code == 1005 else code
        self.transport.write(encode_close(echo, ""))
        self.transport.close()

    def _end_call(self, reason: str) -> None:
        self._deadline.cancel()
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._blocked is not None:  # a start still routing: cancelled, as ASGI would
            self._blocked.remove_done_callback(self._unblocked)
            self._blocked.cancel()
            self._blocked = None
        if self.session is not None:
            self.session.end(reason)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:  # gone without a close frame (reset, crash, cable)
            self.closing = True
            self._end_call("caller_disconnected")
            STREAM_CLOSES.labels(code=str(CLOSE_NORMAL)).inc()
        for handle in (self._close_timer, self._stall, self._flush_handle, self._ping_timer):
            if handle is not None:
                handle.cancel()
        self._out = []
        FAST_STREAMS.dec()
        self._on_lost(self)

    def eof_received(self) -> bool | None:
        return None  # close the transport: a half-closed media stream is over


class _MediaWebSocketProtocol(asyncio.Protocol):
    """uvicorn's ``ws`` protocol class: the fast path for :data:`FAST_ROUTES`, else uvicorn's.

    uvicorn calls ``connection_made`` and then ``data_received`` with the upgrade request it
    parsed, re-serialised; the path decides which protocol handles the socket from there.
    """

    app: ClassVar[Any]
    fallback: ClassVar[type[asyncio.Protocol]]

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any]) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.transport: asyncio.Transport | None = None
        self.inner: asyncio.Protocol | None = None
        self.stream: FastStream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop: not a subclass

    def data_received(self, data: bytes) -> None:
        if self.stream is not None:
            self.stream.data_received(data)
            return
        if self.inner is not None:
            self.inner.data_received(data)
            return
        assert self.transport is not None
        try:
            method, target, headers = parse_request(data)
        except HandshakeError:
            self._fallback(data)
            return
        raw_path, _, query = target.partition(b"?")
        path = unquote(raw_path.decode("latin-1"))
        opener = _routes().get(path)
        if opener is None:
            self._fallback(data)
            return
        try:
            answer = handshake_response(method, headers)
        except HandshakeError as exc:
            self.transport.write(http_error(exc.status, exc.reason))
            self.transport.close()
            return
        settings = self.app.state.settings
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "wss" if self.transport.get_extra_info("sslcontext") else "ws",
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": _address(self.transport.get_extra_info("peername")),
            "server": _address(self.transport.get_extra_info("sockname")),
            "app": self.app,
            "subprotocols": [],
        }
        websocket = WebSocket(scope, _never_receive, _never_send)
        self.transport.write(answer)
        self.stream = stream = FastStream(
            self.transport,
            settings_of(settings),
            self.config.ws_ping_interval,
            self.config.ws_ping_timeout,
            self._lost,
        )
        self.server_state.connections.add(self)
        stream.handler = opener(stream, websocket)
        # uvicorn sets this object as the transport's protocol when this call returns;
        # from the next loop iteration the stream receives its callbacks directly.
        asyncio.get_running_loop().call_soon(self._hand_over, stream)

    def _hand_over(self, stream: FastStream) -> None:
        if not stream.transport.is_closing():
            stream.transport.set_protocol(stream)

    def _fallback(self, data: bytes) -> None:
        self.inner = inner = self.fallback(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )
        assert self.transport is not None
        inner.connection_made(self.transport)
        inner.data_received(data)

    def _lost(self, stream: FastStream) -> None:
        self.server_state.connections.discard(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stream is not None:
            self.stream.connection_lost(exc)
        elif self.inner is not None:
            self.inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        if self.inner is not None:
            return self.inner.eof_received()
        return None  # close the transport: a half-closed media stream is over

    def pause_writing(self) -> None:
        if self.stream is not None:
            self.stream.pause_writing()
        elif self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.stream is not None:
            self.stream.resume_writing()
        elif self.inner is not None:
            self.inner.resume_writing()

    def shutdown(self) -> None:
        """uvicorn stopping: close like its own protocol does (1012)."""
        if self.stream is not None:
            self.stream.close_stream(1012, "server shutting down")
        elif self.inner is not None:
            getattr(self.inner, "shutdown", lambda: None)()


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None


def media_ws_protocol(app: Any, fallback: str = "websockets-sansio") -> type[asyncio.Protocol]:
    """The ``ws=`` protocol class for uvicorn serving ``app`` with the media fast path.

    ``fallback`` is the uvicorn WebSocket implementation for every other WebSocket path.
    """
    from uvicorn.config import WS_PROTOCOLS
    from uvicorn.importer import import_from_string

    fallback_class = import_from_string(WS_PROTOCOLS.get(fallback) or fallback)
    return type(
        "MediaWebSocketProtocol",
        (_MediaWebSocketProtocol,),
        {"app": app, "fallback": fallback_class, "__module__": __name__},
    )
