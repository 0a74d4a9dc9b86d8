"""``RtpSession`` on real loopback UDP sockets: echo through the whole media path, symmetric
RTP latching, foreign sources dropped, refused sends counted instead of raised."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import numpy as np

from voxgate.audio.g711 import ulaw_decode, ulaw_encode
from voxgate.calls.playout import PlayoutBuffer
from voxgate.calls.session import CallSession, UnsupportedControl
from voxgate.rtp.packet import RtpPacket, pack_header
from voxgate.sip.media import MediaClock, MediaOptions, PortPool, RtpSession
from voxgate.sip.offer_answer import PCMU, NegotiatedMedia


def _peer() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def _media(port: int) -> NegotiatedMedia:
    return NegotiatedMedia(PCMU, 0, 101, 20, "127.0.0.1", port, None, True, "sendrecv")


async def _session(remote_port: int) -> tuple[RtpSession, CallSession]:
    playout = PlayoutBuffer(8000)
    call = CallSession(edge="sip", sink=playout, control=UnsupportedControl("sip"), sample_rate=8000)
    rtp = RtpSession(
        call, playout, pool=PortPool(39100, 39200), host="127.0.0.1",
        options=MediaOptions(media_timeout_s=10.0), clock=MediaClock(0.02, 4),
    )  # fmt: skip
    await rtp.open()
    rtp.apply(_media(remote_port))
    return rtp, call


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(2048))
        except BlockingIOError:
            return out


async def test_echo_through_real_sockets_latches_and_drops_foreign_sources() -> None:
    # The SDP says one port; the media really comes from another (a NAT): we must answer
    # where it comes from, and after that ignore a third party injecting packets.
    announced, peer, intruder = _peer(), _peer(), _peer()
    rtp, call = await _session(announced.getsockname()[1])
    call.listen(call.sink.write)  # the echo app's hand-off
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(160 * 50) / 8000)).astype(np.int16)
    target = ("127.0.0.1", rtp.port)
    try:
        for k in range(50):
            payload = ulaw_encode(tone[k * 160 : (k + 1) * 160])
            peer.sendto(pack_header(0x80, 0, 1000 + k, 160 * k, 0x1234) + payload, target)
            if k >= 10:
                intruder.sendto(pack_header(0x80, 0, 5000 + k, 160 * k, 0x9999) + payload, target)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        back = [RtpPacket.parse(d) for d in _drain(peer)]
        assert rtp.latched and rtp.remote == peer.getsockname()
        assert rtp.dropped_in == 40  # every intruder packet, none of the peer's
        assert rtp.packets_in == 50
        assert not _drain(intruder)
        # Packets sent before the first one arrived went to the announced port (silence).
        assert all(RtpPacket.parse(d).payload_type == 0 for d in _drain(announced))
        loud = [p for p in back if np.abs(ulaw_decode(p.payload).astype(np.int32)).max() > 4000]
        assert len(loud) >= 40  # the tone came back, frame for frame
        seqs = [p.sequence_number for p in back]
        assert seqs == sorted(seqs) and len({p.ssrc for p in back}) == 1
        assert rtp.send_errors == 0
    finally:
        rtp.close()
        for sock in (announced, peer, intruder):
            sock.close()


async def test_refused_packets_are_counted_and_the_call_keeps_ticking() -> None:
    # A send the kernel refuses (here: a broadcast address without SO_BROADCAST, EACCES)
    # is a lost packet, not an error that stops the tick or is logged 50 times a second.
    rtp, _call = await _session(4000)
    rtp.apply(dataclasses.replace(_media(4000), remote_address="255.255.255.255"))
    try:
        await asyncio.sleep(0.5)
        assert rtp.send_errors >= 10  # one attempt per tick throughout (25 in 0.5 s)
        assert rtp.packets_out == 0
    finally:
        rtp.close()
