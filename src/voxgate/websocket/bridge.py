"""Streaming a call out to an external app over a WebSocket (routes with app ``ws://...``).

voxgate connects as the client and speaks the route's protocol: ``"twilio"`` (the app sees
an ordinary Twilio Media Stream, so apps written for Twilio work unchanged) or ``"native"``.
Caller audio, DTMF and mark echoes go up; the app's audio is played through the session's
sink honouring ``mark`` (echoed when played) and ``clear`` (pending marks echoed at once,
as Twilio does).

The app's socket may drop mid-call. Caller audio and events then go into a buffer holding
at most ``bridge_buffer_s`` seconds of audio (oldest dropped first), the bridge reconnects
with exponential backoff, and the buffer is replayed on the new connection. If the app stays
unreachable past ``bridge_reconnect_limit_s``, the caller hears an apology (a WAV, or a
tone) and the call ends with reason ``app_unreachable``. A normal close (1000) from the app
is its hang-up. The route's ``auth_header`` goes in ``Authorization`` and is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Coroutine
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection, connect

from voxgate.audio.frame import AudioFrame, Pcm16
from voxgate.audio.resample import StreamResampler
from voxgate.audio.wav import read_wav
from voxgate.calls.router import AppFactory, RouteRule
from voxgate.calls.session import CallEnded, CallSession, DtmfReceived, MarkPlayed
from voxgate.observability.metrics import count_rejection
from voxgate.websocket._links import (
    AppDtmf,
    AppHangup,
    AppTransfer,
    ClearPlayback,
    Link,
    PlayAudio,
    PlayMark,
    make_link,
)
from voxgate.websocket.config import WebSocketSettings
from voxgate.websocket.errors import CLOSE_NORMAL, StreamProtocolError

log = logging.getLogger(__name__)
# websockets logs handshake headers (our Authorization) at DEBUG: its logger for bridge
# connections is pinned at INFO so a debug log level never writes a route's secret.
_wire_log = logging.getLogger("voxgate.websocket.bridge.wire")
_wire_log.setLevel(logging.INFO)

APOLOGY_MARK = "voxgate-apology"

Item = tuple[Literal["audio"], Pcm16] | tuple[Literal["dtmf", "mark", "cleared"], str]
Outcome = Literal["ended", "app_hangup", "dropped"]


def _safe_url(url: str) -> str:
    """The URL without credentials or query (tokens live there): fit for logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


def apology_audio(settings: WebSocketSettings, rate: int) -> Pcm16:
    """The configured WAV at ``rate``, or three falling beeps (1.2 s) when none is set."""
    if settings.apology_wav is not None:
        try:
            pcm, wav_rate = read_wav(settings.apology_wav)
        except (OSError, ValueError) as exc:
            log.warning("cannot read apology_wav %s: %s; playing a tone", settings.apology_wav, exc)
        else:
            resampler = StreamResampler(wav_rate, rate)
            return np.concatenate((resampler.process(pcm), resampler.flush()))
    parts = []
    for freq in (880.0, 660.0, 440.0):
        t = np.arange(int(0.3 * rate)) / rate
        parts.append((np.sin(2 * np.pi * freq * t) * 0.25 * 32767).astype(np.int16))
        parts.append(np.zeros(int(0.1 * rate), dtype=np.int16))
    return np.concatenate(parts)


class WebSocketBridge:
    """``CallApp`` for one route whose app is a ``ws://``/``wss://`` URL."""

    name = "websocket"

    def __init__(self, rule: RouteRule, settings: WebSocketSettings) -> None:
        self.rule = rule
        self.settings = settings

    async def run(self, session: CallSession) -> None:
        await _BridgedCall(self.rule, self.settings, session).run()


def bridge_factory(settings: WebSocketSettings) -> AppFactory:
    """Router factory for the ``"websocket"`` app kind."""
    return lambda rule: WebSocketBridge(rule, settings)


class _BridgedCall:
    def __init__(self, rule: RouteRule, settings: WebSocketSettings, session: CallSession):
        self.rule = rule
        self.settings = settings
        self.session = session
        self.buffer: deque[Item] = deque()
        self.buffered_s = 0.0
        self.dropped_s = 0.0
        """Caller audio lost because an outage outlasted the buffer."""
        self.reconnects = 0
        self._wake = asyncio.Event()
        self._pending_marks: list[str] = []
        self._apology_played = asyncio.Event()
        self._ended = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- caller side: everything the app should hear goes through the buffer ----------

    def _push(self, item: Item) -> None:
        self.buffer.append(item)
        if item[0] == "audio":
            self.buffered_s += len(item[1]) / self.session.sample_rate
            while self.buffered_s > self.settings.bridge_buffer_s:
                self._drop_oldest_audio()
        self._wake.set()

    def _drop_oldest_audio(self) -> None:
        for i, old in enumerate(self.buffer):
            if old[0] == "audio":
                seconds = len(old[1]) / self.session.sample_rate
                self.buffered_s -= seconds
                self.dropped_s += seconds
                del self.buffer[i]
                return

    async def _pump_audio(self) -> None:
        async for frame in self.session.audio():
            self._push(("audio", frame.samples))

    async def _pump_events(self) -> None:
        async for event in self.session.events():
            if isinstance(event, DtmfReceived):
                self._push(("dtmf", event.digit))
            elif isinstance(event, MarkPlayed):
                if event.name == APOLOGY_MARK:
                    self._apology_played.set()
                elif event.name in self._pending_marks:
                    self._pending_marks.remove(event.name)
                    self._push(("mark", event.name))
            elif isinstance(event, CallEnded):
                self._ended = True
                self._wake.set()

    # --- the connection loop -------------------------------------------------------

    async def run(self) -> None:
        pumps = [
            asyncio.create_task(self._pump_audio(), name="bridge-audio"),
            asyncio.create_task(self._pump_events(), name="bridge-events"),
        ]
        loop = asyncio.get_running_loop()
        backoff = self.settings.bridge_backoff_initial_s
        outage_since: float | None = None
        attempt = 0
        try:
            while not self._ended:
                outcome: Outcome = "dropped"
                try:
                    ws = await self._connect()
                except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                    log.info(
                        "call %s: app %s unreachable: %s",
                        self.session.call_id,
                        _safe_url(self.rule.app),
                        exc.__class__.__name__,
                    )
                else:
                    if attempt:
                        self.reconnects += 1
                    outcome = await self._serve(ws, attempt)
                    attempt += 1
                    if outcome != "dropped":
                        if outcome == "app_hangup":
                            await self._hangup("app_hangup")
                        return
                    outage_since = None
                    backoff = self.settings.bridge_backoff_initial_s
                now = loop.time()
                outage_since = now if outage_since is None else outage_since
                if now - outage_since >= self.settings.bridge_reconnect_limit_s:
                    await self._apologise()
                    return
                await self._sleep_unless_ended(backoff)
                backoff = min(backoff * 2, self.settings.bridge_backoff_max_s)
        finally:
            for task in pumps:
                task.cancel()
            if self._tasks:  # a hang-up in flight must record its reason before we return
                await asyncio.wait(self._tasks, timeout=15)

    async def _sleep_unless_ended(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.session.wait_ended()

    async def _connect(self) -> ClientConnection:
        headers = {"Authorization": self.rule.auth_header} if self.rule.auth_header else None
        return await connect(
            self.rule.app,
            additional_headers=headers,
            open_timeout=self.settings.bridge_connect_timeout_s,
            max_size=self.settings.bridge_max_message_bytes,
            logger=_wire_log,
            compression=None,
        )

    async def _serve(self, ws: ClientConnection, attempt: int) -> Outcome:
        """One connection: handshake, then pump both ways until someone stops."""
        link = make_link(
            self.rule.protocol, self.session, attempt, self.settings.bridge_max_message_bytes
        )
        try:
            for message in link.opening():
                await ws.send(message)
            if link.needs_reply:
                async with asyncio.timeout(self.settings.bridge_connect_timeout_s):
                    link.accept_opening(await ws.recv())
            sender = asyncio.create_task(self._send_loop(ws, link), name="bridge-send")
            try:
                async for data in ws:
                    self._act(link, data, isinstance(data, bytes))
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sender
            if self._ended:
                return "ended"
            code = ws.close_code
            return "app_hangup" if code == CLOSE_NORMAL else "dropped"
        except StreamProtocolError as exc:
            count_rejection("websocket")
            log.info("call %s: app broke the protocol: %s", self.session.call_id, exc)
            await ws.close(exc.close_code, exc.reason)
            return "dropped"
        except (websockets.exceptions.ConnectionClosed, TimeoutError, OSError):
            return "ended" if self._ended else "dropped"
        finally:
            if ws.state is not websockets.protocol.State.CLOSED:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await ws.close()

    async def _send_loop(self, ws: ClientConnection, link: Link) -> None:
        """Drain the buffer to the app; on the call's end send ``stop`` and close (1000)."""
        while True:
            while not self.buffer and not self._ended:
                self._wake.clear()
                await self._wake.wait()
            if not self.buffer:
                await ws.send(link.stop(self.session.end_reason or "caller_hangup"))
                await ws.close(CLOSE_NORMAL, "call ended")
                return
            item = self.buffer[0]
            if item[0] == "audio":
                messages = link.audio(item[1])
            elif item[0] == "dtmf":
                messages = [link.dtmf(item[1])]
            else:
                messages = [link.mark_played(item[1], cleared=item[0] == "cleared")]
            for message in messages:
                await ws.send(message)  # if this raises, the item stays for the replay
            self.buffer.popleft()
            if item[0] == "audio":
                self.buffered_s -= len(item[1]) / self.session.sample_rate

    def _act(self, link: Link, data: str | bytes, binary: bool) -> None:
        action = link.receive(data, binary)
        sink = self.session.sink
        if isinstance(action, PlayAudio):
            if action.pcm.shape[0]:
                sink.write(AudioFrame(action.pcm, sink.sample_rate))
        elif isinstance(action, PlayMark):
            self._pending_marks.append(action.name)
            sink.mark(action.name)
        elif isinstance(action, ClearPlayback):
            sink.clear()
            for name in self._pending_marks:
                self._push(("cleared", name))
            self._pending_marks.clear()
        elif isinstance(action, AppHangup):
            self._ended = True
            self._spawn(self._hangup(action.reason or "app_hangup"))
        elif isinstance(action, AppTransfer):
            self._spawn(self.session.control.transfer(action.target))
        elif isinstance(action, AppDtmf):
            self._spawn(self.session.control.send_dtmf(action.digits))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a control action without blocking the receive loop; keep a reference."""

        async def guarded() -> None:
            try:
                await coro
            except NotImplementedError as exc:
                log.info("call %s: %s", self.session.call_id, exc)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hangup(self, reason: str) -> None:
        with contextlib.suppress(NotImplementedError):
            await self.session.control.hangup(reason)
        self.session.end(reason)

    async def _apologise(self) -> None:
        """Tell the caller (bounded wait for playback), then end with ``app_unreachable``."""
        log.warning(
            "call %s: app %s unreachable for %.1f s; ending the call",
            self.session.call_id,
            _safe_url(self.rule.app),
            self.settings.bridge_reconnect_limit_s,
        )
        if not self.session.ended:
            sink = self.session.sink
            pcm = apology_audio(self.settings, sink.sample_rate)
            sink.clear()
            sink.write(AudioFrame(pcm, sink.sample_rate))
            sink.mark(APOLOGY_MARK)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(len(pcm) / sink.sample_rate + 2.0):
                    await self._apology_played.wait()
        await self._hangup("app_unreachable")
