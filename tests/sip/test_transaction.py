"""RFC 3261 section 17 transactions: two TransactionLayers exchange messages in memory
(aioquic-style ``transfer``) on simulated time. Time is only ever an argument here."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from voxgate.sip import SipRequest, SipResponse, make_response, parse_message
from voxgate.sip.requests import build_cancel, build_invite, build_options, build_request
from voxgate.sip.transaction import (
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    RequestReceived,
    ResponseReceived,
    State,
    StrayResponse,
    TimerValues,
    TransactionEvent,
    TransactionTerminated,
    TransactionTimeout,
    Transmit,
    TransportFailure,
)
from voxgate.sip.transaction_layer import TransactionLayer

A, B = ("127.0.0.1", 5060), ("127.0.0.1", 5070)
Drop = Callable[[str, bytes], bool]


class Net:
    """Two transaction layers wired together, with a log of everything sent."""

    def __init__(self, *, reliable: bool = False, drop: Drop | None = None) -> None:
        self.now = 0.0
        self.layers = {A: TransactionLayer(), B: TransactionLayer()}
        self.tu: dict[tuple[str, int], list[TransactionEvent]] = {A: [], B: []}
        self.sent: list[tuple[float, tuple[str, int], str]] = []
        self.reliable = reliable
        self.drop = drop or (lambda side, data: False)

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for addr, layer in self.layers.items():
                for event in layer.events():
                    moved = True
                    if isinstance(event, Transmit):
                        data = event.message.serialize()
                        self.sent.append((self.now, addr, data.split(b"\r\n", 1)[0].decode()))
                        if self.drop("A" if addr == A else "B", data):
                            continue
                        self.layers[event.destination].receive(
                            parse_message(data), addr, self.now, reliable=self.reliable
                        )
                    else:
                        self.tu[addr].append(event)

    def advance(self, until: float) -> None:
        while True:
            timers = [t for layer in self.layers.values() if (t := layer.next_timer()) is not None]
            if not timers or min(timers) > until:
                break
            self.now = min(timers)
            for layer in self.layers.values():
                layer.handle_timer(self.now)
            self.pump()
        self.now = until

    def sent_by(self, addr: tuple[str, int], prefix: str) -> list[float]:
        return [t for t, who, line in self.sent if who == addr and line.startswith(prefix)]


def options(branch: str = "z9hG4bKopt1") -> SipRequest:
    return build_options(
        "sip:b@127.0.0.1:5070", from_="<sip:a@127.0.0.1>", to="<sip:b@127.0.0.1>", transport="UDP",
        sent_by=A, branch=branch, from_tag="ta", call_id="opt-1",
    )  # fmt: skip


def invite(branch: str = "z9hG4bKinv1") -> SipRequest:
    return build_invite(
        "sip:b@127.0.0.1:5070", contact="<sip:a@127.0.0.1:5060>", from_="<sip:a@127.0.0.1>",
        to="<sip:b@127.0.0.1>", transport="UDP", sent_by=A, branch=branch, from_tag="ta",
        call_id="inv-1",
    )  # fmt: skip


def received(net: Net, addr: tuple[str, int]) -> list[RequestReceived]:
    return [e for e in net.tu[addr] if isinstance(e, RequestReceived)]


def responses(net: Net, addr: tuple[str, int]) -> list[int]:
    return [e.response.status for e in net.tu[addr] if isinstance(e, ResponseReceived)]


def test_non_invite_over_udp_completes_and_terminates() -> None:
    net = Net()
    net.layers[A].send_request(options(), B, net.now)
    net.pump()
    (req,) = received(net, B)
    assert req.key is not None
    net.layers[B].send_response(make_response(req.request, 200, to_tag="tb"), net.now)
    net.pump()
    assert responses(net, A) == [200]
    assert len(net.layers[A]) == len(net.layers[B]) == 1  # both in Completed (K, J running)
    net.advance(4.9)
    assert len(net.layers[A]) == 1
    net.advance(5.0)  # Timer K = T4
    assert len(net.layers[A]) == 0
    assert isinstance(net.tu[A][-1], TransactionTerminated)
    net.advance(32.0)  # Timer J = 64*T1
    assert len(net.layers[B]) == 0
    assert net.sent_by(A, "OPTIONS") == [0.0]  # no retransmission once answered


def test_non_invite_retransmits_with_timer_e_then_times_out_with_f() -> None:
    net = Net(drop=lambda side, data: side == "A")
    net.layers[A].send_request(options(), B, net.now)
    net.pump()
    net.advance(40.0)
    assert net.sent_by(A, "OPTIONS") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    timeouts = [e for e in net.tu[A] if isinstance(e, TransactionTimeout)]
    assert [(t.timer, t.request.method) for t in timeouts] == [("F", "OPTIONS")]
    assert net.layers[A].next_timer() is None and len(net.layers[A]) == 0


def test_non_invite_retransmits_at_t2_after_provisional() -> None:
    answered = False

    def drop(side: str, data: bytes) -> bool:
        return answered and side == "A"  # the server sees the first request only

    net = Net(drop=drop)
    net.layers[A].send_request(options(), B, net.now)
    net.pump()
    (req,) = received(net, B)
    net.layers[B].send_response(make_response(req.request, 100), net.now)
    net.pump()
    answered = True
    net.advance(10.0)
    # In Proceeding, Timer E fires at intervals of T2 (from its first T1 deadline).
    assert net.sent_by(A, "OPTIONS") == [0.0, 0.5, 4.5, 8.5]
    assert responses(net, A) == [100]


def test_server_absorbs_retransmissions_and_resends_its_last_response() -> None:
    net = Net()
    layer = net.layers[A]
    layer.send_request(options(), B, 0.0)
    net.pump()
    (req,) = received(net, B)
    # Retransmission while the TU has not answered: absorbed, not reported again.
    net.advance(0.5)
    assert len(received(net, B)) == 1 and net.sent_by(B, "SIP/2.0") == []
    net.layers[B].send_response(make_response(req.request, 180), net.now)
    net.pump()
    net.advance(1.5)  # next E retransmission: server re-sends the 180
    assert len(net.sent_by(B, "SIP/2.0 180")) == 2
    net.layers[B].send_response(make_response(req.request, 404, to_tag="x"), net.now)
    net.pump()
    with pytest.raises(ValueError):
        net.layers[B].send_response(make_response(req.request, 200, to_tag="x"), net.now)
    # Provisional retransmissions in Proceeding are passed up (section 17.1.2.2).
    assert responses(net, A) == [180, 180, 404]


def test_invite_timer_a_doubles_until_timer_b() -> None:
    net = Net(drop=lambda side, data: side == "A")
    net.layers[A].send_request(invite(), B, net.now)
    net.pump()
    net.advance(64.0)
    assert net.sent_by(A, "INVITE") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    timeouts = [e for e in net.tu[A] if isinstance(e, TransactionTimeout)]
    assert [t.timer for t in timeouts] == ["B"]


def test_invite_100_trying_stops_retransmissions() -> None:
    net = Net()
    net.layers[A].send_request(invite(), B, 0.0)
    net.pump()
    assert responses(net, A) == [100]  # the server transaction answered 100 Trying by itself
    net.advance(10.0)
    assert net.sent_by(A, "INVITE") == [0.0]


def test_invite_non2xx_ack_is_absorbed_and_lost_ack_retransmits_final() -> None:
    lose_ack = True

    def drop(side: str, data: bytes) -> bool:
        return lose_ack and data.startswith(b"ACK")

    net = Net(drop=drop)
    net.layers[A].send_request(invite(), B, 0.0)
    net.pump()
    (req,) = received(net, B)
    net.layers[B].send_response(make_response(req.request, 486, to_tag="busy"), 0.0)
    net.pump()
    assert responses(net, A) == [100, 486]
    net.advance(2.0)
    # Timer G: the 486 is re-sent at 0.5 and 1.5; each time the client re-ACKs and does not
    # report the duplicate to its TU.
    assert net.sent_by(B, "SIP/2.0 486") == [0.0, 0.5, 1.5]
    assert net.sent_by(A, "ACK") == [0.0, 0.5, 1.5]
    assert responses(net, A) == [100, 486]
    lose_ack = False
    net.advance(3.5)
    server = next(iter(net.layers[B].transactions()))
    assert server.state is State.CONFIRMED
    assert len(received(net, B)) == 1  # the ACK never reaches the TU
    net.advance(40.0)
    assert len(net.layers[A]) == len(net.layers[B]) == 0
    assert not [e for e in net.tu[B] if isinstance(e, TransactionTimeout)]


def test_invite_server_timer_h_when_ack_never_comes() -> None:
    net = Net(drop=lambda side, data: data.startswith(b"ACK"))
    net.layers[A].send_request(invite(), B, 0.0)
    net.pump()
    (req,) = received(net, B)
    net.layers[B].send_response(make_response(req.request, 603, to_tag="no"), 0.0)
    net.pump()
    net.advance(40.0)
    assert net.sent_by(B, "SIP/2.0 603") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    timeouts = [e for e in net.tu[B] if isinstance(e, TransactionTimeout)]
    assert [t.timer for t in timeouts] == ["H"]


def test_non2xx_ack_construction() -> None:
    req = invite()
    req.headers.add("Route", "<sip:proxy.example.com;lr>")
    layer = TransactionLayer()
    txn = layer.send_request(req, B, 0.0)
    resp = make_response(req, 486, to_tag="busy")
    layer.receive(parse_message(resp.serialize()), B, 0.0)
    ack = txn.ack
    assert ack is not None and ack.method == "ACK" and ack.uri == req.uri
    assert ack.via.branch == req.via.branch and len(ack.vias) == 1
    assert ack.to_tag == "busy" and ack.from_tag == "ta"
    assert ack.cseq.number == req.cseq.number and ack.cseq.method == "ACK"
    assert [str(r.uri) for r in ack.route] == ["sip:proxy.example.com;lr"]


def test_invite_2xx_terminates_and_retransmitted_2xx_is_stray() -> None:
    net = Net()
    net.layers[A].send_request(invite(), B, 0.0)
    net.pump()
    (req,) = received(net, B)
    ok = make_response(req.request, 200, to_tag="tb", headers=[("Contact", "<sip:b@127.0.0.1:5070>")])
    net.layers[B].send_response(ok, 0.0)
    net.pump()
    assert responses(net, A) == [100, 200]
    assert len(net.layers[A]) == len(net.layers[B]) == 0  # both INVITE transactions ended
    # The UAS core retransmits the 2xx itself; it arrives as a stray for the dialog layer.
    net.layers[B].send_stateless(ok, A)
    net.pump()
    (stray,) = [e for e in net.tu[A] if isinstance(e, StrayResponse)]
    assert stray.response.status == 200 and stray.source == B
    # The ACK for a 2xx has its own branch and reaches the TU without a transaction.
    ack = build_request(
        "ACK", "sip:b@127.0.0.1:5070", from_="<sip:a@127.0.0.1>;tag=ta", to="<sip:b@127.0.0.1>;tag=tb",
        transport="UDP", sent_by=A, branch="z9hG4bKack1", call_id="inv-1",
    )  # fmt: skip
    net.layers[A].send_stateless(ack, B)
    net.pump()
    acks = [e for e in received(net, B) if e.request.method == "ACK"]
    assert len(acks) == 1 and acks[0].key is None


def test_reliable_transport_never_retransmits_and_ends_at_once() -> None:
    net = Net(reliable=True, drop=lambda side, data: side == "A" and data.startswith(b"OPTIONS"))
    layer = net.layers[A]
    layer.send_request(options(), B, 0.0, reliable=True)
    layer.send_request(invite(), B, 0.0, reliable=True)
    net.pump()
    (inv,) = received(net, B)
    net.layers[B].send_response(make_response(inv.request, 480, to_tag="x"), 0.0)
    net.pump()
    assert layer.next_timer() == 32.0  # only Timer F of the unanswered OPTIONS
    net.advance(40.0)
    assert net.sent_by(A, "OPTIONS") == [0.0] and net.sent_by(A, "INVITE") == [0.0]
    assert net.sent_by(A, "ACK") == [0.0]
    assert [e.timer for e in net.tu[A] if isinstance(e, TransactionTimeout)] == ["F"]
    assert len(layer) == 0 and len(net.layers[B]) == 0  # D and I are zero on reliable


def test_cancel_matches_the_invite_server_transaction() -> None:
    net = Net()
    req = invite()
    net.layers[A].send_request(req, B, 0.0)
    net.pump()
    net.layers[A].send_request(build_cancel(req), B, 0.0)
    net.pump()
    (_, cancel) = received(net, B)
    assert cancel.request.method == "CANCEL"
    target = net.layers[B].invite_for_cancel(cancel.request)
    assert target is not None and target.request.method == "INVITE"
    net.layers[B].send_response(make_response(cancel.request, 200, to_tag="c"), 0.0)
    net.layers[B].send_response(make_response(target.request, 487, to_tag="c"), 0.0)
    net.pump()
    assert sorted(responses(net, A)) == [100, 200, 487]


def test_transport_error_reports_and_terminates() -> None:
    layer = TransactionLayer()
    txn = layer.send_request(options(), B, 0.0)
    layer.events()
    layer.transport_error(txn.key, 0.1)
    events = layer.events()
    assert isinstance(events[0], TransportFailure) and isinstance(events[1], TransactionTerminated)
    assert len(layer) == 0 and layer.next_timer() is None


def test_layer_rejects_misuse() -> None:
    layer = TransactionLayer()
    with pytest.raises(ValueError):
        layer.send_request(invite(branch="old-2543-branch"), B, 0.0)
    layer.send_request(invite(), B, 0.0)
    with pytest.raises(ValueError):
        layer.send_request(invite(), B, 0.0)
    with pytest.raises(KeyError):
        layer.send_response(make_response(options(), 200), 0.0)


def test_rfc2543_branchless_retransmission_is_absorbed() -> None:
    layer = TransactionLayer()
    req = options(branch="2543-style")
    layer.receive(parse_message(req.serialize()), A, 0.0)
    layer.receive(parse_message(req.serialize()), A, 0.5)
    assert len([e for e in layer.events() if isinstance(e, RequestReceived)]) == 1


@pytest.mark.parametrize("spec", [INVITE_CLIENT, NON_INVITE_CLIENT, INVITE_SERVER, NON_INVITE_SERVER])
def test_tables_are_consistent(spec: object) -> None:
    # Every timer that can fire in a state is alive there, and every timer that is alive is
    # handled there: the tables, not code paths, define the machines.
    for (state, name), (_, _) in spec.transitions.items():  # type: ignore[attr-defined]
        if len(name) == 1:
            assert name in spec.alive[state], (state, name)  # type: ignore[attr-defined]
    for state, names in spec.alive.items():  # type: ignore[attr-defined]
        for name in names:
            assert (state, name) in spec.transitions, (state, name)  # type: ignore[attr-defined]


def test_timer_values_are_configurable() -> None:
    layer = TransactionLayer(TimerValues(t1=0.1, t2=0.4, t4=1.0))
    layer.send_request(invite(), B, 0.0)
    assert layer.next_timer() == pytest.approx(0.1)
    layer.handle_timer(0.1)
    assert layer.next_timer() == pytest.approx(0.3)
    assert isinstance(layer.events()[-1], Transmit)
    response = make_response(invite(), 100)
    layer.receive(parse_message(response.serialize()), B, 0.2)
    assert layer.next_timer() is None  # Proceeding: no INVITE client timers
    assert isinstance(parse_message(response.serialize()), SipResponse)
