"""REST call control on a live SIP call, TLS between two edges, SIP settings to options."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from tests.sip.apps import ControlApp, ToneApp, manager_for, wait_for
from tests.sip.interop.peers import edge_options, free_sip_port, running_edge
from voxgate.api.app import create_app
from voxgate.calls.session import CallSession
from voxgate.config import Settings, SipTrunk, load_settings
from voxgate.sip.endpoint import SipEdgeOptions

TOKEN = "k" * 32


async def test_rest_control_of_a_live_sip_call() -> None:
    callee = ToneApp(ms=5000)

    async def idle(session: CallSession) -> None:
        await session.wait_ended()

    caller = ControlApp(idle)
    manager = manager_for(caller)
    api = create_app(Settings(auth={"api_tokens": [SecretStr(TOKEN)]}), manager)  # type: ignore[arg-type]
    async with running_edge(manager_for(callee), edge_options()) as a:
        trunk = SipTrunk(name="a", host="127.0.0.1", port=a.transports.port("udp"))
        async with (
            running_edge(manager, edge_options(trunks=[trunk])) as b,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://v",
                              headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        ):  # fmt: skip
            api.state.sip_edge = b
            call_id = (await http.post("/v1/calls", json={"to": "agent"})).json()["id"]
            await wait_for(lambda: caller.sessions, 5)
            assert (await http.post(f"/v1/calls/{call_id}/dtmf", json={"digits": "7*"})).status_code == 200
            assert (await http.post(f"/v1/calls/{call_id}/dtmf", json={"digits": "x"})).status_code == 422
            assert (await http.post(f"/v1/calls/{call_id}/hold")).json()["state"] == "answered"
            assert (await http.post(f"/v1/calls/{call_id}/unhold")).status_code == 200
            refused = await http.post(f"/v1/calls/{call_id}/transfer", json={"target": "human"})
            assert refused.status_code == 202  # our edge answers REFER with 403: call stays up
            await asyncio.sleep(0.3)
            assert not caller.sessions[0].ended
            ended = await http.post(f"/v1/calls/{call_id}/hangup")
            assert ended.json()["end_reason"] == "api_hangup"
            assert (await http.post(f"/v1/calls/{call_id}/hangup")).status_code == 404
            await wait_for(lambda: not a.calls, 5)
    assert callee.digits == "7*"
    assert callee.holds == [True, False]


def _cert(folder: Path) -> tuple[Path, Path]:
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI missing")
async def test_call_over_tls(tmp_path: Path) -> None:
    cert, key = _cert(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    callee = ToneApp(ms=800, hangup_after=True)
    port = free_sip_port()
    async with running_edge(manager_for(callee), edge_options(ports={"tls": port}, tls_context=server_tls)) as a:
        trunk = SipTrunk(name="a", host="127.0.0.1", port=a.transports.port("tls"), transport="tls")
        async with running_edge(manager_for(ToneApp()), edge_options(trunks=[trunk])) as b:
            b.transports.client_ssl_context = ssl.create_default_context(cafile=str(cert))
            call = b.dial("agent", trunk="a")
            await asyncio.wait_for(call.wait_finished(), 10)
    assert callee.sessions and callee.sessions[0].end_reason == "agent_hangup"
    assert call.session.end_reason == "remote_hangup"


def test_sip_settings_from_toml(tmp_path: Path) -> None:
    toml = tmp_path / "voxgate.toml"
    toml.write_text(
        """
[sip]
host = "0.0.0.0"
public_host = "198.51.100.7"
allowed_sources = []
digest_algorithms = ["MD5"]
users = [{ username = "desk1", password = "pw1" }]

[[sip.trunks]]
name = "carrier"
host = "192.0.2.10"
username = "acct"
password = "pw2"
registration = true
allowed_ips = ["192.0.2.0/28"]

[media]
rtp_port_min = 30000
rtp_port_max = 30100
"""
    )
    settings = load_settings(toml)
    options = SipEdgeOptions.from_settings(settings)
    assert options.advertised_host == "198.51.100.7"
    assert options.users == {"desk1": "pw1", "acct": "pw2"}
    assert [str(n) for n in options.allowed] == ["192.0.2.0/28"]
    assert options.digest_algorithms == ("MD5",)
    assert options.rtp_ports == (30000, 30100)
    with pytest.raises(Exception, match="trunk names must be unique"):
        Settings(sip={"trunks": [{"name": "x", "host": "h"}, {"name": "x", "host": "h"}]})  # type: ignore[arg-type]
