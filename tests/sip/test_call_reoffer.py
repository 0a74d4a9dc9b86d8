"""The asyncio glue of our re-INVITE retry after glare (``voxgate.sip.call_reoffer``) against
a scripted far end on a raw UDP socket: what happens when the call ends during the back-off.

The pure rules are in ``tests/sip/test_glare.py``; sipp's glare run is in
``tests/sip/interop/test_sipp_glare.py``."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from tests.sip.apps import ControlApp, manager_for, wait_for
from tests.sip.interop.peers import running_edge
from voxgate.calls.session import CallSession
from voxgate.sip.message import SipRequest, SipResponse, make_response, parse_message
from voxgate.sip.transport import Peer


def _invite(edge_port: int, port: int, extra: str = "") -> bytes:
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
    head = (
        f"INVITE sip:agent@127.0.0.1:{edge_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-inv1;rport\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:far@127.0.0.1>;tag=far1\r\n"
        f"To: <sip:agent@127.0.0.1:{edge_port}>\r\nCall-ID: glare-end@test\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:far@127.0.0.1:{port}>\r\nContent-Type: application/sdp\r\n{extra}"
        f"Content-Length: {len(sdp)}\r\n\r\n"
    )
    return (head + sdp).encode()


def _ack(ok: SipResponse, edge_port: int, port: int) -> bytes:
    return (
        f"ACK sip:agent@127.0.0.1:{edge_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-ack1;rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {ok.headers.get('From')}\r\nTo: {ok.headers.get('To')}\r\n"
        f"Call-ID: {ok.call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    ).encode()


async def _next(sock: socket.socket, want: str, limit_s: float = 5.0) -> SipRequest | SipResponse:
    """The next message that is ``want`` (a method, or ``"200"`` for a 2xx to INVITE)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(limit_s):
        while True:
            message = parse_message(await loop.sock_recv(sock, 65535))
            if isinstance(message, SipRequest) and message.method == want:
                return message
            if isinstance(message, SipResponse) and str(message.status) == want:
                return message


async def _until_ended(session: CallSession) -> None:
    await session.wait_ended()


async def test_call_ended_during_the_491_back_off_sends_no_reinvite_after_our_bye() -> None:
    """Their 491 puts our hold into the back-off; the call ends (our side hangs up) before
    the retry is due and the far end is slow to answer our BYE. The retry must not go out
    into a dialog we sent BYE in (RFC 3261 15.1.1), and the hold fails at once."""
    app = ControlApp(_until_ended)
    loop = asyncio.get_running_loop()
    async with running_edge(manager_for(app)) as edge:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as far:
            far.bind(("127.0.0.1", 0))
            far.setblocking(False)
            port, edge_port = far.getsockname()[1], edge.transports.port("udp")
            far.sendto(_invite(edge_port, port), ("127.0.0.1", edge_port))
            ok = await _next(far, "200")
            assert isinstance(ok, SipResponse)
            far.sendto(_ack(ok, edge_port, port), ("127.0.0.1", edge_port))
            await wait_for(
                lambda: len(edge.calls) == 1 and next(iter(edge.calls.values())).state == "answered"
            )
            call = next(iter(edge.calls.values()))
            call.glare.randbelow = lambda n: 100  # we did not make the Call-ID: 1.0 s back-off
            hold = asyncio.create_task(call.reinvite("sendonly"))
            try:
                reinvite = await _next(far, "INVITE")
                assert isinstance(reinvite, SipRequest)
                far.sendto(make_response(reinvite, 491).serialize(), ("127.0.0.1", edge_port))
                await wait_for(lambda: call.glare.next_offer_at(edge.now()) != edge.now())
                call.session.end("agent_hangup")
                bye = await _next(far, "BYE")  # left unanswered for now
                seen: list[str] = []
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):  # the back-off ends inside this window
                        while True:
                            message = parse_message(await loop.sock_recv(far, 65535))
                            seen.append(
                                message.method
                                if isinstance(message, SipRequest)
                                else str(message.status)
                            )
                assert "INVITE" not in seen, seen
                assert hold.done()
                with pytest.raises(RuntimeError, match="ended|call is"):
                    hold.result()
                assert isinstance(bye, SipRequest)
                far.sendto(make_response(bye, 200).serialize(), ("127.0.0.1", edge_port))
                await wait_for(lambda: not edge.calls)
            finally:
                hold.cancel()
                with contextlib.suppress(BaseException):
                    await hold
    assert call.peer == Peer("udp", "127.0.0.1", port)  # the dialog was with our far end


async def test_call_ended_during_the_back_off_of_a_refresh_update_sends_no_update_after_our_bye() -> (
    None
):
    """The session refresh (RFC 4028) by UPDATE meets 491; the call ends while it backs off
    and our BYE is not answered yet: no UPDATE may follow the BYE, and the refresh task ends."""
    app = ControlApp(_until_ended)
    loop = asyncio.get_running_loop()
    async with running_edge(manager_for(app)) as edge:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as far:
            far.bind(("127.0.0.1", 0))
            far.setblocking(False)
            port, edge_port = far.getsockname()[1], edge.transports.port("udp")
            allow = "Allow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n"
            far.sendto(_invite(edge_port, port, allow), ("127.0.0.1", edge_port))
            ok = await _next(far, "200")
            assert isinstance(ok, SipResponse)
            far.sendto(_ack(ok, edge_port, port), ("127.0.0.1", edge_port))
            await wait_for(
                lambda: len(edge.calls) == 1 and next(iter(edge.calls.values())).state == "answered"
            )
            call = next(iter(edge.calls.values()))
            call.glare.randbelow = lambda n: 100  # the back-off: 1.0 s
            refresh = asyncio.create_task(call._refresh_session(1800))  # what the timer spawns
            try:
                update = await _next(far, "UPDATE")
                assert isinstance(update, SipRequest)
                far.sendto(make_response(update, 491).serialize(), ("127.0.0.1", edge_port))
                await asyncio.sleep(0.1)  # the 491 is in; the refresh backs off
                call.session.end("agent_hangup")
                bye = await _next(far, "BYE")  # left unanswered for now
                seen: list[str] = []
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):  # the back-off ends inside this window
                        while True:
                            message = parse_message(await loop.sock_recv(far, 65535))
                            seen.append(message.method if isinstance(message, SipRequest) else "")
                assert "UPDATE" not in seen and "INVITE" not in seen, seen
                assert refresh.done() and refresh.exception() is None
                assert isinstance(bye, SipRequest)
                far.sendto(make_response(bye, 200).serialize(), ("127.0.0.1", edge_port))
                await wait_for(lambda: not edge.calls)
            finally:
                refresh.cancel()
                with contextlib.suppress(BaseException):
                    await refresh
