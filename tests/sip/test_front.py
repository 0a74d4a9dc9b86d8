"""The SIP front with two worker edges on loopback: datagrams reach the worker their Call-ID
hashes to, answers leave from the public port, garbage is answered exactly once, and
(with sipp) calls, BYE, re-INVITE, CANCEL and an outbound dial land on the right worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from tests.sip.apps import EchoApp, ToneApp, manager_for, wait_for
from tests.sip.interop.peers import (
    edge_options,
    free_port,
    needs_sipp,
    rtp_range,
    run_sipp,
    scenario,
    sipp,
)
from voxgate.config import Settings, SipTrunk
from voxgate.sip.dispatch import port_slice, worker_for_call_id
from voxgate.sip.endpoint import SipEdge
from voxgate.sip.front import (
    FrontSockets,
    SipFront,
    WorkerLink,
    bind_front,
    link_from,
    open_front,
    run_front,
)
from voxgate.sip.message import SipRequest, make_response, parse_message


@dataclass
class Fronted:
    sockets: FrontSockets
    front: SipFront
    edges: list[SipEdge]
    apps: list[EchoApp]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.sockets.port}"


@contextlib.asynccontextmanager
async def fronted(workers: int = 2, app: type[EchoApp] = EchoApp, **overrides: object) -> AsyncIterator[Fronted]:
    """A front on a free public port and ``workers`` edges behind it, in this event loop."""
    sockets = bind_front("127.0.0.1", 0, workers)
    front = SipFront(sockets)
    runner = asyncio.create_task(run_front(sockets, front))
    edges: list[SipEdge] = []
    apps = [app() for _ in range(workers)]
    try:
        # Every worker gets the same options, as from one Settings: it takes its own RTP slice.
        options = {
            "ports": {"udp": sockets.port, "tcp": free_port(socket.SOCK_STREAM)}, "rtp_ports": rtp_range(),
            **overrides,
        }  # fmt: skip
        for k in range(workers):
            edge = SipEdge(edge_options(**options), manager_for(apps[k]), link=sockets.links[k])
            await edge.start()
            edges.append(edge)
        yield Fronted(sockets, front, edges, apps)
    finally:
        for edge in edges:
            await edge.close()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        sockets.close()


def _call_id_for(worker: int, workers: int, prefix: str) -> str:
    return next(f"{prefix}-{i}@x" for i in range(1000) if worker_for_call_id(f"{prefix}-{i}@x", workers) == worker)


def _options(port: int, call_id: str | None, branch: str) -> bytes:
    lines = [
        "OPTIONS sip:agent@127.0.0.1 SIP/2.0", f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport",
        "From: <sip:x@127.0.0.1>;tag=1", "To: <sip:agent@127.0.0.1>", "CSeq: 1 OPTIONS", "Max-Forwards: 70",
    ]  # fmt: skip
    if call_id is not None:
        lines.append(f"Call-ID: {call_id}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _exchange(front: Fronted, datagrams: list[bytes], settle_s: float = 0.6) -> list[tuple[bytes, int]]:
    """Send from one client socket, collect (answer, source port) for ``settle_s``."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)
        for data in datagrams:
            client.sendto(data, ("127.0.0.1", front.sockets.port))
        answers: list[tuple[bytes, int]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settle_s):
                while True:
                    data, addr = await loop.sock_recvfrom(client, 65535)
                    answers.append((data, int(addr[1])))
    return answers


def _port_of(client_datagram: bytes) -> int:
    return int(client_datagram.split(b"127.0.0.1:", 1)[1].split(b";", 1)[0])


async def test_options_reach_their_worker_and_answers_leave_from_the_public_port() -> None:
    async with fronted() as f:
        ids = [_call_id_for(w, 2, f"opt{w}") for w in (0, 1, 0, 1)]
        sent = [_options(0, cid, f"o{i}") for i, cid in enumerate(ids)]
        answers = await _exchange(f, sent)
        assert sorted(a[0].split(b"\r\n")[0] for a in answers) == [b"SIP/2.0 200 OK"] * 4
        assert {port for _, port in answers} == {f.sockets.port}  # symmetric: the public port
        assert f.front.dispatcher.dispatched == [2, 2]
        # rport/received were stamped from the address the front passed on
        assert all(b";rport=" in a and b"received=127.0.0.1" in a for a, _ in answers)
        # Only worker 0 listens on TCP; both send UDP from the public port.
        assert f.edges[0].transports.transports == ["udp", "tcp"]
        assert f.edges[1].transports.transports == ["udp"]
        assert f.edges[1].transports.port("udp") == f.sockets.port


async def test_garbage_answered_once_by_one_worker_keepalives_dropped() -> None:
    async with fronted() as f:
        on_1 = _call_id_for(1, 2, "bad")
        cases = [
            _options(0, None, "nocallid"),  # no Call-ID: worker 0 answers 400
            _options(0, on_1, "badcseq").replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS"),  # worker 1: 400
            b"\x00\xff\xfe not sip at all \x80",  # worker 0 drops it
            b"\r\n\r\n",  # keep-alive: the front drops it
        ]
        rejected = [e.rejected for e in f.edges]
        answers = await _exchange(f, cases)
        assert len(answers) == 2, answers
        assert all(a.startswith(b"SIP/2.0 400") for a, _ in answers)
        assert sum(b"z9hG4bKnocallid" in a for a, _ in answers) == 1
        assert sum(b"z9hG4bKbadcseq" in a for a, _ in answers) == 1
        d = f.front.dispatcher
        assert (d.garbage, d.keepalives, d.dispatched) == (2, 1, [2, 1])
        assert f.edges[0].rejected - rejected[0] == 2 and f.edges[1].rejected - rejected[1] == 1


async def test_each_worker_binds_rtp_only_in_its_slice() -> None:
    async with fronted() as f:
        low, high = f.edges[0].options.rtp_ports
        for k, edge in enumerate(f.edges):
            lo, hi = port_slice(low, high, k, 2)
            assert set(edge.pool.candidates()) <= set(range(lo, hi))


async def test_trunk_register_runs_in_worker_0_only_and_its_answer_comes_back_there() -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as registrar:
        registrar.bind(("127.0.0.1", 0))
        registrar.setblocking(False)
        trunk = SipTrunk(
            name="carrier", host="127.0.0.1", port=registrar.getsockname()[1], username="u",
            password=SecretStr("p"), registration=True,
        )  # fmt: skip
        async with fronted(trunks=[trunk]) as f:
            assert list(f.edges[0].registrations) == ["carrier"] and f.edges[1].registrations == {}
            async with asyncio.timeout(5):
                data, addr = await loop.sock_recvfrom(registrar, 65535)
            assert addr[1] == f.sockets.port  # sent from the public port
            register = parse_message(data)
            assert isinstance(register, SipRequest) and register.method == "REGISTER"
            assert worker_for_call_id(register.call_id, 2) == 0
            ok = make_response(register, 200, to_tag="r1", headers=[("Expires", "300")])
            registrar.sendto(ok.serialize(), addr)
            await wait_for(lambda: f.edges[0].registrations["carrier"].registered, 5)
            assert f.front.dispatcher.dispatched == [1, 0]


async def test_a_link_that_refuses_datagrams_is_counted_and_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker whose link takes nothing (here: its end is gone) loses its datagrams like
    UDP, but never silently: counted per worker and logged at WARNING (once, not per datagram)."""
    sockets = bind_front("127.0.0.1", 0, 2)
    front = SipFront(sockets)
    runner = asyncio.create_task(run_front(sockets, front))
    end = sockets.worker_ends[1]
    assert end is not None
    end.close()
    sockets.worker_ends[1] = None
    try:
        on_1 = [_options(0, _call_id_for(1, 2, f"gone{i}"), f"g{i}") for i in range(3)]
        with caplog.at_level("WARNING", logger="voxgate.sip.front"):
            await _exchange(Fronted(sockets, front, [], []), on_1, settle_s=0.3)
        assert front.dispatcher.dropped == [0, 3]
        warnings = [r.getMessage() for r in caplog.records if r.name == "voxgate.sip.front"]
        assert len(warnings) == 1 and "worker 1 is not taking datagrams" in warnings[0], warnings
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        sockets.close()


def test_open_front_binds_the_configured_udp_port_and_needs_udp() -> None:
    port = free_port()
    settings = Settings(sip={"host": "127.0.0.1", "port": port, "transports": ["udp", "tcp"]})  # type: ignore[arg-type]
    sockets = open_front(settings, 3)
    try:
        assert sockets.port == port and sockets.workers == 3
        assert [link.index for link in sockets.links] == [0, 1, 2]
        assert all(len(set(sockets.pass_fds(k))) == 2 for k in range(3))
        sockets.close_worker_ends()
        assert sockets.worker_ends == [None, None, None]
    finally:
        sockets.close()
    with pytest.raises(ValueError, match="udp"):
        open_front(Settings(sip={"transports": ["tcp"]}), 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="index"):
        WorkerLink(2, 2, 0, 0)


def test_inherit_map_and_link_from_round_trip_by_name() -> None:
    sockets = bind_front("127.0.0.1", 0, 2)
    try:
        named = sockets.inherit_map()
        assert sorted(named) == ["sip_link0", "sip_link1", "sip_public"]
        # As a worker sees them: new socket objects over the inherited descriptors.
        link = link_from(1, 2, lambda name: socket.socket(fileno=os.dup(named[name].fileno())))
        assert (link.index, link.count) == (1, 2)
        with socket.socket(fileno=os.dup(link.public_fd)) as public:
            assert public.getsockname()[1] == sockets.port  # still open after detach
        os.close(link.inbox_fd)
        os.close(link.public_fd)
        with pytest.raises(RuntimeError, match="inherited"):
            link_from(0, 2, lambda name: None)
        sockets.close_worker_ends()
        with pytest.raises(RuntimeError, match="closed"):
            sockets.inherit_map()
    finally:
        sockets.close()


# --- with sipp (heavy: run under flock /tmp/voxgate-heavy.lock) ---------------------------


def _uac(front: Fronted, name: str, calls: int, *extra: str) -> list[str]:
    return [
        "-sf", scenario(name), front.target, "-s", "agent", "-p", str(free_port()),
        "-mp", str(free_port()), "-m", str(calls), "-l", str(calls), "-r", "20", *extra,
    ]  # fmt: skip


@pytest.mark.interop
@needs_sipp
async def test_sipp_calls_spread_over_workers_and_bye_reaches_its_worker() -> None:
    async with fronted() as f:
        result = await run_sipp(
            "-sn", "uac", f.target, "-s", "agent", "-p", str(free_port()), "-mp", str(free_port()),
            "-m", "16", "-l", "16", "-r", "20", "-d", "300", timeout_s=40,
        )  # fmt: skip
        await wait_for(lambda: not any(e.calls for e in f.edges), 15)
    assert result.returncode == 0, result.stdout + result.stderr
    served = [len(app.sessions) for app in f.apps]
    assert sum(served) == 16 and min(served) > 0, served
    assert all(s.end_reason == "caller_hangup" for app in f.apps for s in app.sessions)


@pytest.mark.interop
@needs_sipp
async def test_sipp_reinvite_hold_reaches_the_worker_holding_the_call() -> None:
    async with fronted() as f:
        result = await run_sipp(*_uac(f, "uac_hold.xml", 6), timeout_s=40)
        await wait_for(lambda: not any(e.calls for e in f.edges), 15)
    assert result.returncode == 0, result.stdout + result.stderr
    sessions = [s for app in f.apps for s in app.sessions]
    assert len(sessions) == 6 and all(len(app.sessions) for app in f.apps)
    for app in f.apps:  # each worker saw hold + unhold of exactly its own calls
        assert sorted(app.holds) == [False] * len(app.sessions) + [True] * len(app.sessions)


@pytest.mark.interop
@needs_sipp
async def test_sipp_cancel_reaches_the_ringing_worker() -> None:
    async with fronted(answer_delay_s=5.0) as f:
        result = await run_sipp(*_uac(f, "uac_cancel.xml", 6), timeout_s=40)
        await wait_for(lambda: not any(e.calls for e in f.edges), 15)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(app.sessions == [] for app in f.apps)
    assert min(f.front.dispatcher.dispatched) > 0


class _Hangup(ToneApp):
    def __init__(self) -> None:
        super().__init__(ms=300, hangup_after=True)


@pytest.mark.interop
@needs_sipp
async def test_outbound_dials_get_their_responses_in_the_dialing_worker() -> None:
    port = free_port()
    trunk = SipTrunk(name="sipp", host="127.0.0.1", port=port, from_user="voxgate")
    async with (
        fronted(app=_Hangup, trunks=[trunk]) as f,
        sipp("-sn", "uas", "-p", str(port), "-mp", str(free_port()), "-rtp_echo", "-m", "5") as peer,
    ):
        await asyncio.sleep(0.3)  # sipp binds its port
        for worker in (1, 1, 1, 1, 0):
            edge = f.edges[worker]
            call = edge.dial("1000")
            await wait_for(lambda: call.invite is not None, 5)  # noqa: B023
            assert call.invite is not None
            assert worker_for_call_id(call.invite.call_id, 2) == worker
            await wait_for(lambda: call.call_id not in edge.calls, 15)  # noqa: B023
            assert call.session.end_reason == "agent_hangup", call.session.end_reason
        rc = await asyncio.wait_for(peer.wait(), 15)
    assert rc == 0
    assert [len(app.sessions) for app in f.apps] == [1, 4]


async def test_workers_beyond_0_refuse_dials_only_worker_0_can_carry() -> None:
    """Our users' bindings live in worker 0's registrar and TCP/TLS listen in worker 0
    only: another worker says so (the API turns it into 503 "retry") instead of a false
    "not registered" or a call whose in-dialog requests worker 0 would refuse."""
    tcp_trunk = SipTrunk(name="tcp", host="127.0.0.1", port=free_port(), transport="tcp")
    async with fronted(users={"alice": "pw"}, trunks=[tcp_trunk]) as f:
        w0, w1 = f.edges
        with pytest.raises(RuntimeError, match="worker 0, which holds the registrar"):
            w1.dial("alice")
        with pytest.raises(RuntimeError, match="served by SIP worker 0 only"):
            w1.dial("+15550100", trunk="tcp")
        with pytest.raises(LookupError, match="not registered"):  # worker 0: the real answer
            w0.dial("alice")
        assert not w1.calls and not w0.calls
