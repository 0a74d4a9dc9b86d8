"""``CallSession``: the one shape every call has once an edge has terminated its protocol.

Nothing above the edges knows whether a call came over SIP, WebRTC or a WebSocket. An edge
feeds caller audio and events in, and supplies an :class:`AudioSink` for the agent's audio and
a :class:`CallControl` for actions; the agent (in-process or external) consumes the rest.

Inbound audio is a bounded queue: a consumer that falls behind loses the oldest frames (and
they are counted) rather than growing memory or stalling the edge's receive loop. A consumer
whose per-frame work is tiny and synchronous (echo, a forwarding bridge) can instead
:meth:`CallSession.listen`: frames are then handed over by a direct call from the edge, which
saves a queue put, a task wake-up and a context switch per frame (over half the per-call cost
at hundreds of calls per process).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from voxgate.audio.frame import AudioFrame

EdgeName = Literal["sip", "webrtc", "websocket", "local"]

log = logging.getLogger(__name__)


# --- events an edge reports ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    digit: str
    duration_ms: int = 0


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    """Playback reached the mark named ``name`` (all audio written before it was heard)."""

    name: str


@dataclass(frozen=True, slots=True)
class HoldChanged:
    on_hold: bool


@dataclass(frozen=True, slots=True)
class CallEnded:
    reason: str


CallEvent = DtmfReceived | MarkPlayed | HoldChanged | CallEnded


# --- what an edge provides ---------------------------------------------------------------


class AudioSink(Protocol):
    """Where the agent's audio goes. Playback progress comes back as ``MarkPlayed`` events."""

    sample_rate: int

    def write(self, frame: AudioFrame) -> None:
        """Queue audio for playback in order; never blocks."""
        ...

    def clear(self) -> None:
        """Drop all queued, unplayed audio now (barge-in). Pending marks are dropped too."""
        ...

    def mark(self, name: str) -> None:
        """Report ``MarkPlayed(name)`` once everything written before it has been played."""
        ...


class CallControl(Protocol):
    """Actions on the call; each edge maps them to its protocol (BYE, REFER, re-INVITE...)."""

    async def hangup(self, reason: str = "agent_hangup") -> None: ...

    async def transfer(self, target: str) -> None: ...

    async def hold(self) -> None: ...

    async def unhold(self) -> None: ...

    async def send_dtmf(self, digits: str) -> None: ...


class UnsupportedControl:
    """Control for edges that cannot do an action: raises a clear error instead of pretending."""

    def __init__(self, edge: str) -> None:
        self._edge = edge

    def _no(self, action: str) -> NotImplementedError:
        return NotImplementedError(f"{action} is not supported on {self._edge} calls")

    async def hangup(self, reason: str = "agent_hangup") -> None:
        raise self._no("hangup")

    async def transfer(self, target: str) -> None:
        raise self._no("transfer")

    async def hold(self) -> None:
        raise self._no("hold")

    async def unhold(self) -> None:
        raise self._no("unhold")

    async def send_dtmf(self, digits: str) -> None:
        raise self._no("send_dtmf")


def new_call_id() -> str:
    return "call_" + secrets.token_hex(8)


@dataclass(eq=False)
class CallSession:
    """A live call as the core and the agent see it."""

    edge: EdgeName
    sink: AudioSink
    control: CallControl
    sample_rate: int
    """Rate of the inbound audio frames this session delivers."""
    caller: str = ""
    callee: str = ""
    route: str = ""
    call_id: str = field(default_factory=new_call_id)
    metadata: dict[str, str] = field(default_factory=dict)
    requested_app: str | None = None
    """An app chosen by whoever placed the call (an outbound campaign's script), honoured
    by the router before its rules. Set by our own code only, never from remote input."""
    greet_gate: Callable[[str, bool], Awaitable[tuple[str, bool]]] | None = None
    """Set by whoever knows better than the app what to say first (answering-machine
    detection on an outbound call): an in-process agent awaits ``gate(greeting, hang_up)``
    before it speaks and says what it returns instead (``""``: nothing)."""
    max_queued_frames: int = 250
    """Inbound frames kept for a slow consumer (5 s at 20 ms) before the oldest are dropped."""

    received_frames: int = field(default=0, init=False)
    dropped_frames: int = field(default=0, init=False)
    end_reason: str | None = field(default=None, init=False)
    taps: list[Callable[[AudioFrame], None]] = field(default_factory=list, init=False)
    """Observers of every inbound frame (e.g. the call recorder), called in ``feed_audio``.
    They see frames the slow-consumer policy may later drop, so a recording is complete;
    each must be cheap and must not raise."""

    def __post_init__(self) -> None:
        self._audio: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        self._events: asyncio.Queue[CallEvent] = asyncio.Queue()
        self._ended = asyncio.Event()
        self._listener: Callable[[AudioFrame], None] | None = None

    # --- edge side -------------------------------------------------------------------

    def feed_audio(self, frame: AudioFrame) -> None:
        """Called by the edge for each inbound frame; O(1), never blocks."""
        if self._ended.is_set():
            return
        self.received_frames += 1
        for tap in self.taps:
            tap(frame)
        listener = self._listener
        if listener is not None:
            try:
                listener(frame)
            except Exception:
                # The app's bug ends this call only; the edge's receive loop (and every other
                # call it serves) carries on.
                log.exception("call %s: audio listener failed; ending the call", self.call_id)
                self.end("app_error")
            return
        if self._audio.qsize() >= self.max_queued_frames:
            self._audio.get_nowait()
            self.dropped_frames += 1
        self._audio.put_nowait(frame)

    def feed_event(self, event: CallEvent) -> None:
        if isinstance(event, CallEnded):
            self.end(event.reason)
            return
        self._events.put_nowait(event)

    def end(self, reason: str) -> None:
        """Mark the call over (idempotent: the first reason wins) and wake all consumers."""
        if self._ended.is_set():
            return
        self.end_reason = reason
        self._ended.set()
        self._audio.put_nowait(None)
        self._events.put_nowait(CallEnded(reason))

    # --- consumer side ---------------------------------------------------------------

    def listen(self, on_frame: Callable[[AudioFrame], None]) -> None:
        """Receive caller audio by direct call from the edge instead of :meth:`audio`.

        ``on_frame`` runs inside the edge's receive path, so it must be O(1), must not block
        and should not raise (if it does, the call ends with reason ``"app_error"``). Frames
        already queued are delivered to it first, in order. Use either this or
        :meth:`audio`, not both."""
        while not self._audio.empty():
            frame = self._audio.get_nowait()
            if frame is None:  # already ended: keep the end marker for audio() consumers
                self._audio.put_nowait(None)
                break
            on_frame(frame)
        self._listener = on_frame

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self) -> str:
        await self._ended.wait()
        assert self.end_reason is not None
        return self.end_reason

    async def audio(self) -> AsyncIterator[AudioFrame]:
        """Caller audio until the call ends."""
        while True:
            frame = await self._audio.get()
            if frame is None:
                return
            yield frame

    async def events(self) -> AsyncIterator[CallEvent]:
        """DTMF, marks and hold changes; ends with the ``CallEnded`` event."""
        while True:
            event = await self._events.get()
            yield event
            if isinstance(event, CallEnded):
                return
