"""I/O plumbing shared by the Twilio and native edges: bounded queues, limits, close codes.

Each accepted WebSocket gets one :class:`EdgeConnection`: a bounded outbound queue drained
by its own sender task (so an app's ``sink.write`` never blocks and never waits on the
network), a size check on every inbound message, and a token-bucket :class:`RateLimiter`
for inbound audio. Anything that would need an unbounded buffer (a peer that never reads,
one that sends faster than real time) ends that stream with a close code instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from prometheus_client import Counter
from starlette.websockets import WebSocket, WebSocketState

from voxgate.calls.session import CallSession
from voxgate.observability.metrics import REGISTRY, count_rejection
from voxgate.websocket.config import WebSocketSettings
from voxgate.websocket.errors import (
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_BIG,
    StreamProtocolError,
)

log = logging.getLogger(__name__)

SEND_BATCH = 64
"""Most messages sent under one stall timeout (64 x 20 ms = 1.28 s of audio)."""

START_TIMEOUT_S = 10.0
"""A socket that has not started a call by then is closed (1008): idle sockets cost memory."""

DROPPED_FRAMES = Counter(
    "voxgate_websocket_dropped_frames_total",
    "Inbound audio frames dropped on WebSocket streams, by reason.",
    ["reason"],
    registry=REGISTRY,
)
STREAM_CLOSES = Counter(
    "voxgate_websocket_closes_total",
    "WebSocket streams closed by voxgate, by close code.",
    ["code"],
    registry=REGISTRY,
)


class StreamConn(Protocol):
    """What an edge's stream logic needs from its socket, whichever carries it: the ASGI
    :class:`EdgeConnection` or the fast path's :class:`~voxgate.websocket.fastpath.FastStream`."""

    settings: WebSocketSettings
    limiter: RateLimiter
    session: CallSession | None

    def send(self, message: str | bytes, audio: bool = False) -> None: ...

    def purge_audio(self) -> int: ...

    def fail(self, code: int, reason: str) -> None: ...

    def attach(self, session: CallSession) -> None: ...


StartResult = tuple[int, str] | None
"""What a call's start gives: None when it runs, else the (code, reason) to close with."""


class StreamHandler(Protocol):
    """An edge's per-socket logic, written once for both socket layers.

    ``on_message`` runs synchronously for each inbound message (the hot path: no await per
    message) and returns None to go on, ``(code, reason)`` to close, or a coroutine for work
    that must be awaited before the next message (a call's start), which then gives either.
    It raises StreamProtocolError for bad input."""

    def on_message(
        self, data: str | bytes, binary: bool
    ) -> tuple[int, str] | Coroutine[Any, Any, StartResult] | None: ...


async def receive_loop(conn: EdgeConnection, handler: StreamHandler) -> tuple[int, str]:
    """The ASGI socket's receive loop around a handler (see :func:`run_stream`)."""
    while True:
        data, binary = await conn.receive()
        result = handler.on_message(data, binary)
        if result is None:
            continue
        if not isinstance(result, tuple):
            result = await result
            if result is None:
                continue
        return result


class Disconnected(Exception):
    """The peer closed the socket (or it broke)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"peer closed with {code}")
        self.code = code


class RateLimiter:
    """Token bucket over *seconds of audio*: real-time senders never hit it.

    Pure: the caller passes ``now``. The bucket holds up to ``burst_s`` seconds and refills
    at ``factor`` seconds of audio per wall-clock second.
    """

    def __init__(self, burst_s: float, factor: float, now: float) -> None:
        self.burst_s = burst_s
        self.factor = factor
        self._tokens = burst_s
        self._last = now
        self.dropped = 0

    def allow(self, duration_s: float, now: float) -> bool:
        self._tokens = min(self.burst_s, self._tokens + (now - self._last) * self.factor)
        self._last = now
        if self._tokens >= duration_s:
            self._tokens -= duration_s
            return True
        self.dropped += 1
        return False


class EdgeConnection:
    """One accepted WebSocket with a bounded outbound queue and a sender task."""

    def __init__(self, websocket: WebSocket, settings: WebSocketSettings) -> None:
        self.ws = websocket
        self.settings = settings
        self._queue: deque[tuple[str | bytes, bool]] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self.fatal: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        """Resolves with (code, reason) when the stream must close on our side."""
        self.limiter = RateLimiter(
            settings.rate_burst_s, settings.rate_factor, asyncio.get_running_loop().time()
        )
        self.sent_messages = 0
        self._sender: asyncio.Task[None] | None = None
        self.session: CallSession | None = None
        self.watcher: asyncio.Task[None] | None = None

    def attach(self, session: CallSession) -> None:
        """The call this socket carries: when its app ends it, the stream closes (1000)."""
        self.session = session
        self.watcher = asyncio.create_task(self._watch(session), name="ws-edge-watch")

    async def _watch(self, session: CallSession) -> None:
        reason = await session.wait_ended()
        self.fail(CLOSE_NORMAL, reason)

    # --- outbound ------------------------------------------------------------------

    def start(self) -> None:
        self._sender = asyncio.create_task(self._send_loop(), name="ws-edge-sender")

    def send(self, message: str | bytes, audio: bool = False) -> None:
        """Queue a message; never blocks. Overflow fails the stream with 4008."""
        if self.fatal.done():
            return
        if len(self._queue) >= self.settings.send_queue_max_messages:
            self.fail(CLOSE_SLOW_CONSUMER, "peer is not reading: send queue full")
            return
        self._queue.append((message, audio))
        self._drained.clear()
        self._wake.set()

    def purge_audio(self) -> int:
        """Drop queued audio not yet sent (barge-in); control messages stay in order."""
        before = len(self._queue)
        self._queue = deque(item for item in self._queue if not item[1])
        return before - len(self._queue)

    async def _send_loop(self) -> None:
        # Hot path (one wake-up per 20 ms frame per stream): everything queued is drained
        # under one stall timeout (at most SEND_BATCH messages, so a slow but reading peer
        # is not cut off by a long backlog), and messages go to the ASGI ``send`` directly.
        # Measured with bench/ws_streams.py: the per-message ``asyncio.timeout`` and the
        # ``send_text`` wrapper were ~7 % of the server's CPU at 150 streams.
        send = self.ws.send
        timeout = self.settings.send_stall_timeout_s
        while True:
            while not self._queue:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
            try:
                async with asyncio.timeout(timeout):
                    for _ in range(SEND_BATCH):
                        if not self._queue:
                            break
                        message = self._queue.popleft()[0]
                        if type(message) is str:
                            await send({"type": "websocket.send", "text": message})
                        else:
                            await send({"type": "websocket.send", "bytes": message})
                        self.sent_messages += 1
            except TimeoutError:
                self.fail(CLOSE_SLOW_CONSUMER, f"peer is not reading: a send stalled {timeout}s")
                return
            except Exception:  # the socket went away; the receive side reports it
                return

    async def flush(self) -> None:
        """Wait (at most 2 s) until queued messages are handed to the socket, before a close."""
        if self._sender is None or self._sender.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._drained.wait()

    def fail(self, code: int, reason: str) -> None:
        if not self.fatal.done():
            self.fatal.set_result((code, reason))

    # --- inbound -------------------------------------------------------------------

    async def receive(self) -> tuple[str | bytes, bool]:
        """Next message as (data, is_binary); raises Disconnected or StreamProtocolError."""
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise Disconnected(int(message.get("code") or 1006))
        text = message.get("text")
        if text is not None:
            if len(text) > self.settings.max_message_bytes:
                raise StreamProtocolError(
                    f"message over {self.settings.max_message_bytes} bytes",
                    close_code=CLOSE_TOO_BIG,
                )
            return text, False
        data: bytes = message.get("bytes") or b""
        if len(data) > self.settings.max_message_bytes:
            raise StreamProtocolError(
                f"message over {self.settings.max_message_bytes} bytes", close_code=CLOSE_TOO_BIG
            )
        return data, True

    # --- closing -------------------------------------------------------------------

    async def close(self, code: int, reason: str) -> None:
        """Stop the sender and close with ``code``; bounded even if the peer never reads."""
        STREAM_CLOSES.labels(code=str(code)).inc()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
        if self.ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.ws.close(code, reason[:120])


def reject(error: StreamProtocolError) -> tuple[int, str]:
    """Count a protocol violation and give the close code and reason for it."""
    count_rejection("websocket")
    log.info("closing WebSocket stream: %s", error)
    return error.close_code, error.reason


class MarkLedger:
    """Which marks were sent and not yet echoed, and which were cancelled by a clear.

    The client echoes a mark when playback reaches it; Twilio also echoes every pending
    mark right after a ``clear``. Only echoes of marks that were pending and not cleared
    mean "the audio before it was heard", which is what ``MarkPlayed`` promises the agent.
    """

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._cleared: list[str] = []
        self._waiters: dict[str, asyncio.Future[None]] = {}

    def sent(self, name: str) -> None:
        self._pending.append(name)

    def clear(self) -> None:
        self._cleared.extend(self._pending)
        self._pending.clear()

    def echoed(self, name: str) -> bool:
        """A mark came back; True when it means the audio before it was heard."""
        waiter = self._waiters.pop(name, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if name in self._cleared:
            self._cleared.remove(name)
            return False
        if name in self._pending:
            self._pending.remove(name)
            return True
        return False

    def waiter(self, name: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[name] = future
        return future


async def wait_bounded(future: asyncio.Future[None], limit_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit_s):
            await future


async def run_stream(
    conn: EdgeConnection,
    receive: Callable[[], Coroutine[Any, Any, tuple[int, str]]],
) -> None:
    """Drive one edge socket to its close; the one place both edges decide how a stream ends.

    ``receive`` is the edge's receive loop: it returns (code, reason) to close on a
    protocol-level end (``stop``, a refusal) and raises ``Disconnected`` or
    ``StreamProtocolError``. ``conn.fatal`` wins when the send side or the app ends first.
    """
    conn.start()
    loop = asyncio.get_running_loop()

    def no_start() -> None:
        if conn.session is None:
            conn.fail(CLOSE_POLICY, f"no call started within {START_TIMEOUT_S:g} s")

    deadline = loop.call_later(START_TIMEOUT_S, no_start)
    receiver = asyncio.create_task(receive(), name="ws-edge-receive")
    code: int | None = None
    reason = "caller_disconnected"
    try:
        await asyncio.wait({receiver, conn.fatal}, return_when=asyncio.FIRST_COMPLETED)
        if conn.fatal.done():
            code, reason = conn.fatal.result()
        else:
            try:
                code, reason = receiver.result()
            except Disconnected:
                code = None
            except StreamProtocolError as exc:
                code, reason = reject(exc)
    finally:
        deadline.cancel()
        receiver.cancel()
        if conn.watcher is not None:
            conn.watcher.cancel()
        if conn.session is not None:
            conn.session.end(end_reason(code, reason))
    if code == CLOSE_NORMAL:
        await conn.flush()
    await conn.close(CLOSE_NORMAL if code is None else code, reason)


def end_reason(code: int | None, reason: str) -> str:
    """The call's end reason for a stream closed with ``code`` (None: the peer went away)."""
    if code is None:
        return "caller_disconnected"
    if code == CLOSE_NORMAL:
        return reason
    names = {4008: "send_overflow", 4029: "too_fast", 1008: "policy", 1009: "too_big",
             1011: "internal_error", 1012: "server_shutdown"}  # fmt: skip
    return names.get(code, "protocol_error")
