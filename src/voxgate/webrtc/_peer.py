"""One browser call: an aiortc peer connection wrapped as a ``CallSession``.

Lifetime rule: the *session* is the source of truth. Whoever ends the call (the caller's
page, the network, the agent, a draining node) ends the session with a reason, and one
watcher reacts by telling the page, closing the peer connection and stopping the tracks.
That way there is exactly one teardown path and the first reason recorded wins.

End reasons set here: ``caller_hangup`` (page hung up: HTTP, data channel message, data
channel or DTLS closed), ``ice_failed`` (ICE/DTLS failed, or never connected within
``connect_timeout_s``), ``media_timeout`` (no inbound RTP for ``media_timeout_s``: the
network dropped without a goodbye; aiortc has no ICE "disconnected" state and its consent
checks take ~30 s to fail), ``agent_hangup`` (``control.hangup()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)

from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.session import CallSession
from voxgate.webrtc._ice import IcePolicy, apply_policy
from voxgate.webrtc._media import PlayoutTrack, marks_to_session, pump_inbound
from voxgate.webrtc.events import EventChannel, attach

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WebRtcOptions:
    """Edge settings; defaults suit a single node serving browsers on the same network."""

    sample_rate: int = 16000
    """Rate of the inbound frames the session delivers (see ``_media`` for why 16 kHz)."""
    playout_rate: int = 16000
    """Rate the agent writes to the sink at; the Opus encoder resamples to 48 kHz."""
    codecs: tuple[str, ...] = ("audio/opus", "audio/PCMU")
    """Accepted codecs, most preferred first (Opus 48 kHz, PCMU fallback)."""
    ice: IcePolicy = field(default_factory=IcePolicy)
    connect_timeout_s: float = 15.0
    media_timeout_s: float = 10.0
    max_calls: int = 200
    encode_in_loop: bool = True
    """Opus: encode on the event loop with voxgate's encoder instead of aiortc's executor."""
    max_sdp_bytes: int = 65536


class OfferError(ValueError):
    """The offer cannot become a call (bad SDP, no common codec); answered with HTTP 400."""


class WebRtcControl:
    """Call control for a browser peer: hang up works; the rest has no meaning here."""

    def __init__(self, call: WebRtcCall) -> None:
        self._call = call

    async def hangup(self, reason: str = "agent_hangup") -> None:
        self._call.session.end(reason)
        await self._call.wait_closed()

    def _no(self, action: str, why: str) -> NotImplementedError:
        return NotImplementedError(f"{action} is not supported on webrtc calls: {why}")

    async def transfer(self, target: str) -> None:
        raise self._no("transfer", "a browser peer cannot be redirected to another number")

    async def hold(self) -> None:
        raise self._no("hold", "the page has no hold state; mute is on the caller's side")

    async def unhold(self) -> None:
        raise self._no("unhold", "the page has no hold state")

    async def send_dtmf(self, digits: str) -> None:
        raise self._no("send_dtmf", "browsers neither render nor need DTMF tones")


def _codec_preferences(names: tuple[str, ...]) -> list[RTCRtpCodecCapability]:
    available = {c.mimeType.lower(): c for c in RTCRtpSender.getCapabilities("audio").codecs}
    prefs = [available[n.lower()] for n in names if n.lower() in available]
    if not prefs:
        raise ValueError(f"none of the codecs {names} is supported by aiortc")
    return prefs


def answer_codec(sdp: str) -> str | None:
    """The first payload format of the audio m-line, as ``rtpmap`` names it."""
    first_pt: str | None = None
    for line in sdp.splitlines():
        if line.startswith("m=audio"):
            parts = line.split()
            first_pt = parts[3] if len(parts) > 3 else None
        elif first_pt is not None and line.startswith(f"a=rtpmap:{first_pt} "):
            return line.split(" ", 1)[1].strip()
    return None


class WebRtcCall:
    """Owns the peer connection, the session, the playout track and the teardown."""

    def __init__(
        self, options: WebRtcOptions, caller: str = "", callee: str = "", pc: Any = None
    ) -> None:
        self.options = options
        self.pc: RTCPeerConnection = pc or RTCPeerConnection(options.ice.configuration())
        self.playout = PlayoutBuffer(options.playout_rate)
        self.events = EventChannel()
        self.control = WebRtcControl(self)
        self.session = CallSession(
            edge="webrtc",
            sink=self.playout,
            control=self.control,
            sample_rate=options.sample_rate,
            caller=caller,
            callee=callee,
        )
        attach(self.session, self.events)
        self.track = PlayoutTrack(
            self.playout, marks_to_session(self.session), self._agent_speaking
        )
        self.created_at = time.monotonic()
        self.connected_at: float | None = None
        self.last_media_at: float | None = None
        self.inbound_frames = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._channels: list[RTCDataChannel] = []
        self._closed = asyncio.Event()
        self.on_closed: list[Callable[[WebRtcCall], object]] = []
        self._spawn(self._watch_end(), "end")

    @property
    def call_id(self) -> str:
        return self.session.call_id

    # --- negotiation -------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """Apply the browser's offer and return the answer SDP with all candidates in it."""
        if len(offer_sdp.encode()) > self.options.max_sdp_bytes:
            raise OfferError(f"offer is larger than {self.options.max_sdp_bytes} bytes")
        if "m=audio" not in offer_sdp:
            raise OfferError("offer has no audio m-line")
        pc = self.pc
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_state)
        # The transceiver must exist before the offer is applied: aiortc negotiates codecs
        # inside setRemoteDescription, filtered and ordered by the transceiver's preferences.
        transceiver = pc.addTransceiver(self.track, direction="sendrecv")
        transceiver.setCodecPreferences(_codec_preferences(self.options.codecs))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except Exception as exc:  # aiortc raises ValueError/OperationError/... on bad SDP
            raise OfferError(f"cannot apply offer: {exc}") from exc
        apply_policy(pc, self.options.ice)
        # Non-trickle: setLocalDescription returns once gathering is complete, so the answer
        # carries every candidate and the page needs no second round trip.
        await pc.setLocalDescription(await pc.createAnswer())
        codec = self.codec or ""
        if self.options.encode_in_loop and codec.lower().startswith("opus/"):
            self.track.encode_opus()
        self._spawn(self._watchdog(), "watchdog")
        return str(pc.localDescription.sdp)

    @property
    def codec(self) -> str | None:
        """The negotiated codec (``"opus/48000/2"``, ``"PCMU/8000"``), read from the answer."""
        desc = self.pc.localDescription
        return None if desc is None else answer_codec(desc.sdp)

    # --- aiortc callbacks ----------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(pump_inbound(track, self.session, self._on_media), "inbound")

    def _on_media(self, now: float) -> None:
        self.last_media_at = now
        self.inbound_frames += 1

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        self._channels.append(channel)

        def opened() -> None:
            self.events.open(channel.send)

        if channel.readyState == "open":
            opened()
        else:
            channel.on("open", opened)

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            if isinstance(message, bytes):
                return
            try:
                data = json.loads(message)
            except ValueError:
                return
            if isinstance(data, dict) and data.get("type") == "hangup":
                self.session.end("caller_hangup")

        @channel.on("close")
        def on_close() -> None:
            self.session.end("caller_hangup")

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        log.debug("webrtc call %s: connection %s", self.call_id, state)
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
            self.events.publish({"type": "call", "state": "connected", "call_id": self.call_id})
        elif state == "failed":
            self.session.end("ice_failed")
        elif state == "closed":
            # The browser closed DTLS (page closed or pc.close()): a caller hang-up.
            self.session.end("caller_hangup")

    def _agent_speaking(self, speaking: bool) -> None:
        self.events.publish({"type": "speaking", "role": "agent", "speaking": speaking})

    # --- teardown ------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        """Ends calls that never connect or whose media stops (network gone, tab killed)."""
        opts = self.options
        tick = min(1.0, opts.media_timeout_s / 4, opts.connect_timeout_s / 4)
        while not self.session.ended:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if self.connected_at is None:
                if now - self.created_at > opts.connect_timeout_s:
                    self.session.end("ice_failed")
                continue
            last = self.last_media_at or self.connected_at
            if now - last > opts.media_timeout_s:
                self.session.end("media_timeout")

    async def _watch_end(self) -> None:
        reason = await self.session.wait_ended()
        self.events.publish(
            {"type": "call", "state": "ended", "call_id": self.call_id, "reason": reason}
        )
        await self._drain_events()
        self.events.close()
        self.track.stop()
        await self.pc.close()
        self._closed.set()
        for callback in self.on_closed:
            callback(self)
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()

    async def _drain_events(self, limit_s: float = 0.3) -> None:
        """Give the "ended" event a moment to leave before SCTP is torn down."""
        if not self.events.is_open or self.pc.sctp is None:
            return
        deadline = time.monotonic() + limit_s
        for channel in self._channels:
            while (  # noqa: ASYNC110 (polling: aiortc has no "drained" event)
                channel.readyState == "open"
                and channel.bufferedAmount > 0
                and time.monotonic() < deadline
            ):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def close(self, reason: str) -> None:
        self.session.end(reason)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closed.wait(), 5.0)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=f"webrtc-{self.call_id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
