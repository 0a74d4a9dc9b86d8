"""One SIP call's RTP session on asyncio: sockets, receive path, paced send path, RTCP.

The decisions live in pure code (:mod:`voxgate.sip.rtp_stream` for the clock and packets,
:mod:`voxgate.rtp` for parsing, jitter buffer, DTMF and statistics); this module wires them to
two UDP sockets per call and the edge's shared :class:`MediaClock`:

* every 20 ms tick (absolute deadline, :class:`~voxgate.sip.rtp_stream.PacketClock`) pulls
  one frame out of the jitter buffer into the ``CallSession`` and one frame of the agent's
  audio out of the ``PlayoutBuffer`` onto the wire; every call of an edge rides the same few
  timers (phase-staggered slots), so a call costs no timer of its own;
* symmetric RTP (RFC 4961): we send to where the far end's RTP comes from once it arrives
  ("latching"), which is what gets audio through NATs whose SDP shows a private address;
  after latching, packets from any other address are dropped (no media injection);
* RTCP SR/RR + SDES every ~5 s on port+1 or multiplexed (RFC 5761), with an optional callback
  that receives per-interval network statistics for call records;
* SDES-SRTP (RFC 4568) through pylibsrtp when the offer was RTP/SAVP with a=crypto;
* media timeout: no RTP for ``media_timeout_s`` while we expect some -> ``on_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import pylibsrtp

from voxgate.audio.codecs import get_decoder, get_encoder
from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.session import CallSession, DtmfReceived, MarkPlayed
from voxgate.errors import ParseError
from voxgate.observability.metrics import count_rejection
from voxgate.rtp.dtmf import DtmfReceiver
from voxgate.rtp.packet import RtpPacket, is_rtcp
from voxgate.rtp.receiver import RtpAudioReceiver
from voxgate.rtp.rtcp import (
    ReportBlock,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpSenderReport,
    RtcpSourceDescription,
    SdesChunk,
    parse_rtcp,
    serialize_rtcp,
)
from voxgate.rtp.stats import ReceiverStats, ntp_middle32
from voxgate.sip.offer_answer import NegotiatedMedia
from voxgate.sip.rtp_stream import PacketClock, RtpSender, SharedClock

__all__ = ["MediaClock", "MediaOptions", "NetworkReport", "PortPool", "RtpSession"]

log = logging.getLogger(__name__)

_SRTP_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
RTCP_INTERVAL_TICKS = 250
"""5 s at 20 ms; RFC 3550's minimum for a two-party session, randomised +-50 % per report."""
TIMEOUT_CHECK_TICKS = 25
TIMER_SLACK = 0.001
"""uvloop's timers (and its ``loop.time()``) have 1 ms resolution: see ``PacketClock.early``."""


@dataclass(frozen=True, slots=True)
class MediaOptions:
    jitter_min_ms: float = 20.0
    jitter_max_ms: float = 200.0
    media_timeout_s: float = 30.0
    frame_ms: int = 20
    clock_slots: int = 4
    """Phase-staggered ticks per frame shared by all calls of an edge (see :class:`MediaClock`)."""
    measure_lateness: bool = False
    """Keep ``perf_counter() - n * period`` of every packet sent in :attr:`RtpSession.lateness`
    (benchmarks): its spread around the median is the pacer's send jitter. Measured on
    ``perf_counter`` because uvloop's ``loop.time()`` has millisecond resolution."""


@dataclass(frozen=True, slots=True)
class NetworkReport:
    """One RTCP interval's view of the inbound stream (deltas for the interval)."""

    packets: int
    loss_fraction: float
    jitter_s: float
    jb_delay_ms: float
    underruns: int
    concealed_ms: float
    rtt_s: float | None = None


class PortPool:
    """Even RTP ports (RTCP on the odd one above) from a configured range, round robin.

    Round robin rather than lowest-free: a port freed by a call that just ended may still
    receive its far end's last packets, which must not land in the next call.
    """

    def __init__(self, low: int, high: int) -> None:
        first = low + (low & 1)
        self._ports = list(range(first, high, 2))
        if not self._ports:
            raise ValueError(f"no even port pair in {low}..{high}")
        self._cursor = 0
        self._used: set[int] = set()

    def __len__(self) -> int:
        return len(self._ports) - len(self._used)

    def candidates(self) -> list[int]:
        """Free ports in the order to try them (advances the cursor)."""
        n = len(self._ports)
        order = [self._ports[(self._cursor + i) % n] for i in range(n)]
        self._cursor = (self._cursor + 1) % n
        return [p for p in order if p not in self._used]

    def take(self, port: int) -> None:
        self._used.add(port)

    def release(self, port: int) -> None:
        self._used.discard(port)


class MediaClock:
    """The event-loop side of a :class:`~voxgate.sip.rtp_stream.SharedClock`: one timer for
    every RTP session of an edge (per call it was one timer, re-armed 50 times a second).

    The timer sleeps until the earliest slot tick; a wake-up reads the loop's clock once and
    runs the ``_on_clock`` of every session in the slots that ticked with that time, each
    draining its own :class:`PacketClock`.
    """

    def __init__(self, period: float = 0.02, slots: int = 4) -> None:
        self.period = period
        self.slots = slots
        self._shared: SharedClock[RtpSession] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None

    def __len__(self) -> int:
        return 0 if self._shared is None else len(self._shared)

    def join(self, member: RtpSession) -> PacketClock:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._shared is None or self._loop is not loop:
            self._shared = SharedClock(now, self.period, self.slots, early=TIMER_SLACK)
            self._loop, self._timer, self._armed_at = loop, None, None
        clock = self._shared.join(member, now)
        self._arm()
        return clock

    def leave(self, member: RtpSession) -> None:
        if self._shared is None:
            return
        self._shared.leave(member)
        if not len(self._shared) and self._timer is not None:
            self._timer.cancel()
            self._timer = self._armed_at = None

    def _arm(self) -> None:
        assert self._shared is not None and self._loop is not None
        due = self._shared.next_due()
        if due is None or (self._armed_at is not None and self._armed_at <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = due
        self._timer = self._loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        shared, loop = self._shared, self._loop
        assert shared is not None and loop is not None
        self._timer = self._armed_at = None
        now = loop.time()
        for member in shared.due(now):
            member._on_clock(now)  # noqa: SLF001
        self._arm()


def _not_open(data: bytes, addr: tuple[str, int]) -> None:
    raise RuntimeError("RTP session is not open")


def _bind_udp(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``host:port`` (the RTP port; the transport built
    on it owns and closes it)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class _RtpSocket(asyncio.DatagramProtocol):
    """The RTP port: datagrams go straight to the session with the address as the loop gave
    it (no per-packet normalisation: this runs 50 times a second per call)."""

    def __init__(self, on_data: Callable[[bytes, tuple[str | int, ...]], None]) -> None:
        self.datagram_received = on_data  # type: ignore[method-assign,assignment]
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable while the far end is not listening yet: keep sending


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_data: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_data = on_data
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Selector loops hand a Transport that is not a DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.on_data(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable while the far end is not listening yet: keep sending


class RtpSession:
    """RTP for one call. ``await open()``, then :meth:`apply` each negotiation result."""

    __slots__ = (
        "_accepted", "_clock", "_closed", "_cname", "_decoder_pts", "_dtmf_in", "_last_jb",
        "_last_rx", "_last_sr", "_loop", "_media_clock", "_next_rtcp", "_peer", "_receiver",
        "_rtcp", "_rtp", "_rx_srtp", "_send_to", "_sender", "_sendto", "_stats", "_timed_out",
        "_tx_srtp", "_jb_push", "dropped_in", "send_errors",
        "host", "latched", "lateness", "negotiated", "on_report", "on_timeout", "options",
        "packets_in", "packets_out", "playout", "pool", "port", "remote", "remote_rtcp", "session",
    )

    def __init__(
        self,
        session: CallSession,
        playout: PlayoutBuffer,
        *,
        pool: PortPool,
        host: str,
        options: MediaOptions | None = None,
        on_timeout: Callable[[], None] | None = None,
        on_report: Callable[[NetworkReport], None] | None = None,
        clock: MediaClock | None = None,
    ) -> None:
        self.session = session
        self.playout = playout
        self.pool = pool
        self.host = host
        self.options = options or MediaOptions()
        self.on_timeout = on_timeout
        self.on_report = on_report
        self.port = 0
        self.negotiated: NegotiatedMedia | None = None
        self.remote: tuple[str, int] | None = None
        self.remote_rtcp: tuple[str, int] | None = None
        self.latched = False
        self.packets_in = 0
        self.packets_out = 0
        self.dropped_in = 0
        self.lateness: list[float] = []
        self._rtp: _RtpSocket | None = None
        self._rtcp: _Socket | None = None
        self._receiver: RtpAudioReceiver | None = None
        self._accepted: frozenset[int] = frozenset()
        self._decoder_pts: frozenset[int] = frozenset()
        self._sender: RtpSender | None = None
        self._dtmf_in: DtmfReceiver | None = None
        self._stats: ReceiverStats | None = None
        self._tx_srtp: pylibsrtp.Session | None = None
        self._rx_srtp: pylibsrtp.Session | None = None
        self._clock: PacketClock | None = None
        self._media_clock = clock or MediaClock(self.options.frame_ms / 1000, 1)
        self._last_rx = 0.0
        self._peer: tuple[str | int, ...] | None = None
        """The latched source exactly as the loop reports it (compared per packet)."""
        self._send_to: tuple[str, int] | None = None
        self._sendto: Callable[[bytes, tuple[str, int]], object] = _not_open
        self._jb_push: Callable[[RtpPacket, float], None] | None = None
        self.send_errors = 0
        """Packets the kernel refused (a full socket buffer, an address it will not send to):
        dropped like a network loss rather than queued to leave late."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timed_out = False
        self._next_rtcp = RTCP_INTERVAL_TICKS
        self._last_sr: tuple[int, float] | None = None
        self._last_jb: tuple[int, int, float] = (0, 0, 0.0)
        self._cname = f"voxgate-{secrets.token_hex(4)}"
        self._closed = False

    # -- life cycle -------------------------------------------------------------------

    async def open(self) -> int:
        """Bind an RTP/RTCP port pair from the pool; raises OSError when none is free."""
        loop = asyncio.get_running_loop()
        for port in self.pool.candidates():
            try:
                sock = _bind_udp(self.host, port)
            except OSError:
                continue
            try:
                rtp_t, rtp = await loop.create_datagram_endpoint(
                    lambda: _RtpSocket(self._on_rtp), sock=sock
                )
            except OSError:
                sock.close()
                continue
            try:
                _, rtcp = await loop.create_datagram_endpoint(
                    lambda: _Socket(self._on_rtcp), local_addr=(self.host, port + 1)
                )
            except OSError:
                rtp_t.close()
                continue
            self.pool.take(port)
            self._rtp, self._rtcp, self.port = rtp, rtcp, port
            # Packets leave through the socket itself, not the transport: one call less per
            # packet, and a refused packet is dropped, never queued to leave late.
            self._sendto = sock.sendto
            self._loop = loop
            return port
        raise OSError("no free RTP port in the configured range")

    def apply(self, media: NegotiatedMedia) -> None:
        """Start or reconfigure media for a (re)negotiation result."""
        old = self.negotiated
        self.negotiated = media
        remote = (media.remote_address, media.remote_port)
        if old is None or (old.remote_address, old.remote_port) != remote:
            self.remote = remote if media.remote_port else None
            self.latched = False  # a new address in SDP: latch again to whatever sends
            self._peer = None
        if media.rtcp_mux:
            self.remote_rtcp = None
        elif media.remote_rtcp_port:
            self.remote_rtcp = (media.remote_address, media.remote_rtcp_port)
        if old is None or (old.codec, old.payload_type) != (media.codec, media.payload_type):
            self._setup_codec(media, keep_clock=old is not None)
        if old is None or old.srtp != media.srtp:
            self._setup_srtp(media)
        if old is None or old.dtmf_payload_type != media.dtmf_payload_type:
            pt = media.dtmf_payload_type
            self._dtmf_in = DtmfReceiver(pt, media.codec.clock_rate) if pt is not None else None
        dtmf_pt = media.dtmf_payload_type
        self._accepted = self._decoder_pts | ({dtmf_pt} if dtmf_pt is not None else set())
        self._update_send_to()
        loop = self._loop = asyncio.get_running_loop()
        self._last_rx = loop.time()  # the timeout counts from each negotiation
        self._timed_out = False
        if self._clock is None:
            self._clock = self._media_clock.join(self)
            self._next_rtcp = self._clock.n + RTCP_INTERVAL_TICKS

    def _update_send_to(self) -> None:
        """Where each tick's packet goes (None: not sending), worked out when the answer or
        the latched address changes instead of on every tick."""
        media = self.negotiated
        self._send_to = self.remote if media is not None and media.sending else None

    def _setup_codec(self, media: NegotiatedMedia, *, keep_clock: bool) -> None:
        rate = self.session.sample_rate
        decoders = {media.payload_type: get_decoder(media.codec.name)}
        if media.codec.clock_rate == 8000:
            # Tolerate a peer that sends the other G.711 law than the one answered (sipp's
            # pcap replay does, byte for byte): same clock, so one jitter buffer serves both.
            decoders.setdefault(0, get_decoder("PCMU"))
            decoders.setdefault(8, get_decoder("PCMA"))
        self._decoder_pts = frozenset(decoders)
        self._receiver = RtpAudioReceiver(
            decoders,
            rate,
            min_delay_ms=self.options.jitter_min_ms,
            max_delay_ms=self.options.jitter_max_ms,
            initial_delay_ms=max(40.0, self.options.jitter_min_ms),
            frame_ms=self.options.frame_ms,
            stamp=True,
        )
        self._jb_push = self._receiver.jitter.push
        old = self._sender
        encoder = get_encoder(
            media.codec.name, 16000 if media.codec.name.lower() == "opus" else None
        )
        self._sender = RtpSender(
            encoder,
            media.payload_type,
            pcm_rate=rate,
            ptime_ms=self.options.frame_ms,
            dtmf_payload_type=media.dtmf_payload_type,
            # A codec change keeps the SSRC and sequence (one stream, RFC 3550 5.1); the
            # timestamp restarts on the new clock, which receivers handle as a new talkspurt.
            ssrc=old.ssrc if old is not None and keep_clock else None,
            sequence=old.sequence if old is not None and keep_clock else None,
        )
        if self._clock is not None:
            # Index 0 of the new sender's timestamps is the current tick.
            self._sender.ts0 = (self._sender.ts0 - self._clock.n * self._sender.samples_per_packet) & 0xFFFF_FFFF
        self._stats = None
        self._last_jb = (0, 0, 0.0)

    def _setup_srtp(self, media: NegotiatedMedia) -> None:
        srtp = media.srtp
        if srtp is None:
            self._tx_srtp = self._rx_srtp = None
            return
        profile = _SRTP_PROFILES[srtp.suite]
        self._tx_srtp = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=srtp.local_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                srtp_profile=profile,
            )
        )  # fmt: skip
        self._rx_srtp = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=srtp.remote_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                srtp_profile=profile,
            )
        )  # fmt: skip

    def close(self) -> None:
        """Stop the clock, send RTCP BYE-less teardown (the SIP BYE says it), free the port."""
        if self._closed:
            return
        self._closed = True
        self._media_clock.leave(self)
        for sock in (self._rtp, self._rtcp):
            if sock is not None and sock.transport is not None:
                sock.transport.close()
        if self.port:
            self.pool.release(self.port)

    # -- DTMF out -----------------------------------------------------------------------

    async def send_dtmf(self, digits: str, duration: float = 0.1) -> None:
        """Send digits as RFC 4733 events and return once they have left."""
        sender = self._sender
        if sender is None:
            raise RuntimeError("media is not negotiated yet")
        sender.queue_dtmf(digits, duration)
        limit = time.monotonic() + 2.0 + len(digits) * (duration + 0.3)
        while sender.dtmf_pending and not self._closed and time.monotonic() < limit:  # noqa: ASYNC110
            await asyncio.sleep(self.options.frame_ms / 1000)

    # -- receive --------------------------------------------------------------------------

    def _on_rtp(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self._closed or self.negotiated is None:
            return
        if is_rtcp(data):
            self._on_rtcp(data, (str(addr[0]), int(addr[1])))
            return
        if self.latched and addr != self._peer:
            self.dropped_in += 1
            return
        if self._rx_srtp is not None:
            try:
                data = self._rx_srtp.unprotect(data)
            except pylibsrtp.Error:
                self.dropped_in += 1
                count_rejection("rtp")
                return
        try:
            packet = RtpPacket.parse(data)
        except ParseError:
            count_rejection("rtp")
            return
        media = self.negotiated
        pt = packet.payload_type
        if pt not in self._accepted:
            self.dropped_in += 1
            return
        if not self.latched:
            # Symmetric RTP: answer where the media really comes from.
            self.remote = (str(addr[0]), int(addr[1]))
            self._peer = addr
            self.latched = True
            self._update_send_to()
        assert self._loop is not None
        now = self._loop.time()
        self._last_rx = now
        self.packets_in += 1
        stats = self._stats
        if stats is None or stats.ssrc != packet.ssrc:
            stats = self._stats = ReceiverStats(packet.ssrc, media.codec.clock_rate)
        stats.update(packet.sequence_number, packet.timestamp, now)
        if pt == media.dtmf_payload_type and self._dtmf_in is not None:
            try:
                events = self._dtmf_in.receive(packet, now)
            except ParseError:
                count_rejection("rtp")
                events = []
            for event in events:
                ms = round(event.duration_seconds * 1000)
                self.session.feed_event(DtmfReceived(event.digit, ms))
        if self._jb_push is not None and pt != media.dtmf_payload_type:
            self._jb_push(packet, now)  # audio: straight into the jitter buffer
        else:
            assert self._receiver is not None
            self._receiver.push(packet, now)

    def _on_rtcp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._closed:
            return
        if self._rx_srtp is not None:
            try:
                data = self._rx_srtp.unprotect_rtcp(data)
            except pylibsrtp.Error:
                count_rejection("rtp")
                return
        try:
            packets = parse_rtcp(data)
        except ParseError:
            count_rejection("rtp")
            return
        if self.remote_rtcp is None and not (self.negotiated and self.negotiated.rtcp_mux):
            self.remote_rtcp = addr
        now = asyncio.get_running_loop().time()
        for packet in packets:
            if isinstance(packet, RtcpSenderReport):
                self._last_sr = (ntp_middle32(packet.ntp_timestamp), now)

    # -- the tick -------------------------------------------------------------------------

    def _on_clock(self, now: float) -> None:
        """This call's slot of the :class:`MediaClock` ticked at ``now``: send what is due."""
        if self._closed:
            return
        clock = self._clock
        assert clock is not None
        try:
            while (n := clock.take(now)) is not None:
                if self.options.measure_lateness:
                    self.lateness.append(time.perf_counter() - n * clock.period)
                self._tick(n, now)
        except Exception:
            log.exception("rtp tick failed on call %s", self.session.call_id)

    def _tick(self, n: int, now: float) -> None:
        receiver = self._receiver
        sender = self._sender
        assert receiver is not None and sender is not None
        session = self.session
        session.feed_audio(receiver.pull(now))
        pcm, marks = self.playout.pull()
        if marks:
            for name in marks:
                session.feed_event(MarkPlayed(name))
        target = self._send_to
        if target is not None:
            for data in sender.wire(n, pcm, now):
                if self._tx_srtp is not None:
                    data = self._tx_srtp.protect(data)
                try:
                    self._sendto(data, target)
                except OSError:
                    self.send_errors += 1
                    continue
                self.packets_out += 1
        if n % TIMEOUT_CHECK_TICKS == 0:
            self._check_timeout(now)
        dtmf_in = self._dtmf_in
        if dtmf_in is not None and dtmf_in.next_timeout() is not None:
            for event in dtmf_in.poll(now):
                self.session.feed_event(
                    DtmfReceived(event.digit, round(event.duration_seconds * 1000))
                )
        if n >= self._next_rtcp:
            self._next_rtcp = n + int(RTCP_INTERVAL_TICKS * random.uniform(0.5, 1.5))
            self._send_rtcp(now)

    def _check_timeout(self, now: float) -> None:
        media = self.negotiated
        if media is None or self._timed_out or not media.receiving:
            return
        if now - self._last_rx > self.options.media_timeout_s:
            self._timed_out = True
            log.info("call %s: no RTP for %.1f s", self.session.call_id, now - self._last_rx)
            if self.on_timeout is not None:
                self.on_timeout()

    def _send_rtcp(self, now: float) -> None:
        sender, media = self._sender, self.negotiated
        assert sender is not None and media is not None
        blocks: tuple[ReportBlock, ...] = ()
        stats = self._stats
        if stats is not None:
            sr = self._last_sr
            block = stats.report_block(now, sr[0], sr[1]) if sr else stats.report_block(now)
            blocks = (block,)
            self._report(block.fraction_lost / 256, stats.jitter / stats.clock_rate)
        packets: list[RtcpPacket] = []
        if sender.stats.has_sent:
            packets.append(sender.stats.sender_report(time.time(), blocks, now))
        else:
            packets.append(RtcpReceiverReport(sender.ssrc, blocks))
        packets.append(RtcpSourceDescription((SdesChunk(sender.ssrc, ((1, self._cname.encode()),)),)))
        data = serialize_rtcp(packets)
        if self._tx_srtp is not None:
            data = self._tx_srtp.protect_rtcp(data)
        sock: _RtpSocket | _Socket | None
        if media.rtcp_mux:
            target, sock = self.remote, self._rtp
        else:
            target, sock = self.remote_rtcp, self._rtcp
        if target is not None and sock is not None and sock.transport is not None:
            sock.transport.sendto(data, target)

    def _report(self, loss_fraction: float, jitter_s: float) -> None:
        if self.on_report is None or self._receiver is None:
            return
        jb = self._receiver.stats.jitter
        received, underruns, concealed = self._last_jb
        self._last_jb = (jb.received, jb.underruns, jb.concealed_ms)
        self.on_report(
            NetworkReport(
                packets=jb.received - received,
                loss_fraction=loss_fraction,
                jitter_s=jitter_s,
                jb_delay_ms=jb.delay_ms,
                underruns=jb.underruns - underruns,
                concealed_ms=jb.concealed_ms - concealed,
            )
        )

