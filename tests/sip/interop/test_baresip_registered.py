"""Calls to our own registered users: baresip REGISTERs with voxgate's registrar (digest),
then ``POST /v1/calls`` with ``to`` naming that user rings baresip at its binding; it
auto-answers and the app hears its microphone. Dialing needs the API token; a user without
a live binding (never registered, un-registered, expired) is a 404, never a trunk call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from tests.sip.apps import ControlApp, manager_for, wait_for
from tests.sip.interop.peers import (
    baresip,
    baresip_config,
    edge_options,
    free_port,
    needs_baresip,
    rtp_range,
    running_edge,
    stop_process,
)
from tests.sip.interop.test_baresip import _speech
from voxgate.api.app import create_app
from voxgate.calls.session import CallSession
from voxgate.config import Settings
from voxgate.sip.registrar import NotRegistered
from voxgate.sip.requests import build_register
from voxgate.sip.transport import Peer
from voxgate.sip.uri import NameAddress, SipUri

pytestmark = [pytest.mark.interop]
TOKEN = "r" * 32


def _client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://voxgate",  # type: ignore[arg-type]
        headers={"Authorization": f"Bearer {TOKEN}"},
    )  # fmt: skip


@needs_baresip
async def test_api_calls_registered_baresip_at_its_binding(tmp_path: Path) -> None:
    async def listen_then_hang_up(session: CallSession) -> None:
        await asyncio.sleep(3.0)
        await session.control.hangup()

    app = ControlApp(listen_then_hang_up)
    app.keep_audio = True
    manager = manager_for(app)
    api = create_app(Settings(auth={"api_tokens": [SecretStr(TOKEN)]}), manager)  # type: ignore[arg-type]
    # baresip 1.0 (libre) fails on the first challenge when it is SHA-256 (ENOSYS), even with
    # an MD5 one beside it, as RFC 8760 section 2.4 would have it pick: offer MD5 only.
    options = edge_options(
        allowed=[], users={"alice": "pw-alice", "bob": "pw-bob"}, digest_algorithms=("MD5",)
    )
    cfg = baresip_config(tmp_path, sip_port=free_port(), source_wav=_speech(tmp_path), rtp_ports=rtp_range(20))
    async with running_edge(manager, options) as edge, _client(api) as http:
        api.state.sip_edge = edge
        port = edge.transports.port("udp")
        (cfg / "accounts").write_text(
            f"<sip:alice@127.0.0.1:{port}>;auth_pass=pw-alice;regint=60;answermode=auto\n"
        )
        async with baresip(cfg, quit_after_s=20) as phone:
            await wait_for(lambda: edge.registrar.lookup("alice", edge.now()), 8)
            # No token, no call: the phone must not ring.
            anonymous = await http.post("/v1/calls", json={"to": "alice"}, headers={"Authorization": ""})
            assert anonymous.status_code == 401
            assert not edge.calls
            # bob is one of our users but has no binding: 404, not a trunk call.
            assert (await http.post("/v1/calls", json={"to": "bob"})).status_code == 404
            created = await http.post("/v1/calls", json={"to": "alice", "caller": "frontdesk"})
            assert created.status_code == 201, created.text
            assert created.json()["user"] == "alice" and created.json()["trunk"] is None
            call = edge.calls[created.json()["id"]]
            binding = edge.registrar.lookup("alice", edge.now())[0]
            assert call.invite is not None and str(call.invite.uri) == str(binding.contact.uri)
            await asyncio.wait_for(call.wait_finished(), 15)
            await stop_process(phone)  # SIGTERM: baresip un-registers on the way out
        await wait_for(lambda: not edge.registrar.lookup("alice", edge.now()), 5)
        gone = await http.post("/v1/calls", json={"to": "sip:alice@127.0.0.1"})
        assert gone.status_code == 404
    assert call.session.end_reason == "agent_hangup", call.session.end_reason
    heard = np.concatenate(app.audio)
    assert app.loud_frames > 25  # baresip's speech reached the app
    assert (np.abs(heard) > 1500).mean() > 0.05


async def test_expired_binding_is_not_dialled() -> None:
    manager = manager_for(ControlApp(lambda s: asyncio.sleep(0)))
    options = edge_options(users={"carol": "pw"}, register_expires=(1, 3600))
    async with running_edge(manager, options) as edge:
        aor = NameAddress(SipUri("127.0.0.1", user="carol"))
        contact = NameAddress(SipUri("127.0.0.1", user="carol", port=free_port()))
        request = build_register(
            "sip:127.0.0.1", aor=aor, contact=contact, expires=1, transport="udp",
            sent_by=("127.0.0.1", 5999),
        )  # fmt: skip
        flow = Peer("udp", "127.0.0.1", 5999)
        assert edge.registrar.register(request, "carol", edge.now(), source=flow).status == 200
        uri, peer = edge.registered_contact("carol")
        assert str(uri) == str(contact.uri) and peer == flow
        assert edge.local_user("sip:carol@127.0.0.1") == "carol"
        assert edge.local_user("sip:carol@carrier.example") is None  # not our domain
        assert edge.local_user("dave") is None  # not a configured user: a trunk's business
        await asyncio.sleep(1.1)  # past the granted second
        with pytest.raises(NotRegistered):
            edge.dial("carol")
        with pytest.raises(ValueError):
            edge.dial("carol", caller="x@evil")  # checked before the lookup: it goes in From
    assert not edge.calls
