"""Garbage and malformed SIP over a real UDP socket: 400/505 when salvageable, silent drop
otherwise, always counted, never disturbing a call in progress; INVITE floods from an
untrusted source are rate limited."""

from __future__ import annotations

import asyncio

import pytest

from tests.sip.apps import EchoApp, manager_for, wait_for
from tests.sip.interop.peers import (
    edge_options,
    free_port,
    needs_sipp,
    run_sipp,
    running_edge,
    scenario,
    target,
)


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.received.append(data)


def _request(port: int, first_line: str, *headers: str, body: str = "", branch: str = "z9hG4bKbad1") -> bytes:
    lines = [first_line, f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


MANDATORY = (
    "From: <sip:x@127.0.0.1>;tag=1", "To: <sip:agent@127.0.0.1>", "Call-ID: bad-1@x",
    "CSeq: 1 INVITE", "Max-Forwards: 70",
)  # fmt: skip


async def _open() -> tuple[Collector, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(Collector, local_addr=("127.0.0.1", 0))
    return proto, transport.get_extra_info("sockname")[1]


@pytest.mark.interop
@needs_sipp
async def test_garbage_answered_or_dropped_while_a_call_runs() -> None:
    app = EchoApp()
    async with running_edge(manager_for(app)) as edge:
        sock, port = await _open()
        dest = ("127.0.0.1", edge.transports.port("udp"))
        call = asyncio.create_task(run_sipp(
            "-sf", scenario("uac_dtmf.xml"), target(edge), "-s", "agent", "-p", str(free_port()),
            "-mp", str(free_port()), "-m", "1",
        ))  # fmt: skip
        await app.started.wait()
        cases = {
            "garbage": b"\x00\xff\xfe not sip at all \x80",
            "content_length": _request(port, "INVITE sip:agent@127.0.0.1 SIP/2.0", *MANDATORY, "Content-Length: 500", body="v=0"),
            "missing_headers": _request(port, "OPTIONS sip:agent@127.0.0.1 SIP/2.0", "CSeq: 1 OPTIONS", branch="z9hG4bKbad2"),
            "version": _request(port, "INVITE sip:agent@127.0.0.1 SIP/7.0", *MANDATORY, branch="z9hG4bKbad3"),
            "huge_header": _request(port, "INVITE sip:agent@127.0.0.1 SIP/2.0", *MANDATORY, "X-Big: " + "a" * 60000, branch="z9hG4bKbad4"),
            "bad_scheme": _request(port, "INVITE nope:agent SIP/2.0", *MANDATORY, "Content-Length: 0", branch="z9hG4bKbad5"),
            "broken_via": b"INVITE sip:a@127.0.0.1 SIP/2.0\r\nVia: what?\r\n\r\n",
            "keepalive": b"\r\n\r\n",
        }
        before = edge.rejected
        assert sock.transport is not None
        for data in cases.values():
            sock.transport.sendto(data, dest)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        result = await call
        await wait_for(lambda: not edge.calls)
        sock.transport.close()
    finals: dict[str, bytes] = {}
    for data in sock.received:
        for branch in ("bad1", "bad2", "bad3", "bad4", "bad5"):
            if f"branch=z9hG4bK{branch};".encode() in data and not data.startswith(b"SIP/2.0 100"):
                finals[branch] = data
    assert result.returncode == 0, result.stdout + result.stderr
    assert app.digits == "159#"  # the call in progress never noticed
    assert len(sock.received) == sum(1 for d in sock.received if b"branch=z9hG4bKbad" in d)
    assert finals["bad1"].startswith(b"SIP/2.0 400")  # Content-Length beyond the datagram
    assert finals["bad2"].startswith(b"SIP/2.0 400")  # missing From/To/Call-ID
    assert finals["bad3"].startswith(b"SIP/2.0 505")
    # Huge but parsed: answered (an INVITE without Contact cannot make a dialog, RFC 3261
    # 8.1.1.8; without SDP it would otherwise be a delayed offer, answered 200 + offer).
    assert finals["bad4"].startswith(b"SIP/2.0 400 Missing Contact")
    assert "bad5" not in finals or finals["bad5"].startswith(b"SIP/2.0 4")
    assert edge.rejected - before >= 5


async def test_invite_flood_from_untrusted_source_is_rate_limited() -> None:
    options = edge_options(allowed=[], users={"alice": "pw"}, rate_per_source=5.0)
    async with running_edge(manager_for(EchoApp()), options) as edge:
        sock, port = await _open()
        dest = ("127.0.0.1", edge.transports.port("udp"))
        assert sock.transport is not None
        for i in range(60):
            headers = list(MANDATORY)
            headers[2] = f"Call-ID: flood-{i}@x"
            sock.transport.sendto(
                _request(port, "INVITE sip:agent@127.0.0.1 SIP/2.0", *headers, "Content-Length: 0", branch=f"z9hG4bKf{i}"),
                dest,
            )
        await asyncio.sleep(0.5)
        challenged = [d for d in sock.received if d.startswith(b"SIP/2.0 401")]
        sock.transport.close()
        assert edge.calls == {}
    assert 5 <= len(challenged) <= 15  # the burst allowance, not 60 challenges
