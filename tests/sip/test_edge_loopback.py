"""Two voxgate edges on loopback: one is the other's trunk. Exercises our UAC side against our
UAS side over real sockets: digest on INVITE and REGISTER, registration refresh, RFC 4733
DTMF out, hold/unhold by re-INVITE from our side, UDP and TCP, SDES-SRTP."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from tests.sip.apps import ControlApp, ToneApp, manager_for, wait_for
from tests.sip.interop.peers import edge_options, running_edge
from voxgate.calls.session import CallSession
from voxgate.config import SipTrunk
from voxgate.sip.offer_answer import MediaCapabilities


def _trunk(port: int, transport: str = "udp", **kw: object) -> SipTrunk:
    return SipTrunk(
        name="a", host="127.0.0.1", port=port, transport=transport, username="edge-b",  # type: ignore[arg-type]
        password=SecretStr("pw"), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_dial_with_digest_then_dtmf_hold_unhold_hangup(transport: str) -> None:
    callee = ToneApp(ms=3000, hz=500.0)

    async def script(session: CallSession) -> None:
        await asyncio.sleep(0.3)
        await session.control.send_dtmf("12#")
        await session.control.hold()
        await asyncio.sleep(0.2)
        await session.control.unhold()
        await asyncio.sleep(0.3)
        await session.control.hangup()

    caller = ControlApp(script)
    server_opts = edge_options(allowed=[], users={"edge-b": "pw"})
    async with running_edge(manager_for(callee), server_opts) as a:
        trunk = _trunk(a.transports.port(transport), transport)
        async with running_edge(manager_for(caller), edge_options(trunks=[trunk])) as b:
            call = b.dial("agent", trunk="a")
            await asyncio.wait_for(call.wait_finished(), 15)
            await wait_for(lambda: not a.calls)
    assert caller.errors == []
    assert call.session.end_reason == "agent_hangup"
    assert callee.sessions[0].end_reason == "remote_hangup" or callee.sessions[0].end_reason == "caller_hangup"
    assert callee.digits == "12#"
    assert callee.holds == [True, False]
    assert caller.loud_frames > 10  # the callee's tone came through


async def test_trunk_registration_is_refreshed_and_removed_at_close() -> None:
    server_opts = edge_options(allowed=[], users={"edge-b": "pw"}, register_expires=(1, 3600))
    async with running_edge(manager_for(ToneApp()), server_opts) as a:
        trunk = _trunk(a.transports.port("udp"), registration=True, register_expires=2)
        async with running_edge(manager_for(ToneApp()), edge_options(trunks=[trunk])) as b:
            reg = b.registrations["a"]
            await wait_for(lambda: reg.count >= 3, 6)  # first + refreshes every second
            bindings = a.registrar.lookup("edge-b", a.now())
            assert [str(x.contact.uri) for x in bindings] == [str(b.contact_for("udp").uri)]
        assert a.registrar.lookup("edge-b", a.now()) == []  # un-registered on close


async def test_wrong_password_is_refused() -> None:
    server_opts = edge_options(allowed=[], users={"edge-b": "other"})
    async with running_edge(manager_for(ToneApp()), server_opts) as a:
        trunk = _trunk(a.transports.port("udp"))
        async with running_edge(manager_for(ToneApp()), edge_options(trunks=[trunk])) as b:
            call = b.dial("agent", trunk="a")
            await asyncio.wait_for(call.wait_finished(), 10)
    assert call.session.end_reason == "failed_403"


async def test_sdes_srtp_call_carries_audio() -> None:
    callee = ToneApp(ms=1500, hz=500.0)

    async def script(session: CallSession) -> None:
        await asyncio.sleep(1.2)
        await session.control.hangup()

    caller = ControlApp(script)
    async with running_edge(manager_for(callee), edge_options()) as a:
        trunk = SipTrunk(name="a", host="127.0.0.1", port=a.transports.port("udp"))
        options = edge_options(trunks=[trunk], caps=MediaCapabilities(srtp="required"))
        async with running_edge(manager_for(caller), options) as b:
            call = b.dial("agent", trunk="a")
            await wait_for(lambda: call.media.negotiated is not None, 5)
            assert call.media.negotiated is not None and call.media.negotiated.srtp is not None
            await asyncio.wait_for(call.wait_finished(), 10)
    assert caller.loud_frames > 10  # decrypted on our side
    assert callee.frames > 10
