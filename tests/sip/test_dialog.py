"""Dialogs (RFC 3261 section 12/13): a UAC and a UAS, each a TransactionLayer plus dialogs,
talk in memory on simulated time: INVITE/200/ACK/BYE, lost ACKs, ACK timeout, re-INVITE hold,
CSeq ordering and route sets."""

from __future__ import annotations

import pytest

from voxgate.sip import SipRequest, SipResponse, make_response, parse_message
from voxgate.sip.dialog import (
    AckTimeout,
    Dialog,
    DialogState,
    request_dialog_id,
    response_dialog_id,
)
from voxgate.sip.offer_answer import MediaCapabilities, MediaSession
from voxgate.sip.requests import build_invite
from voxgate.sip.sdp import SessionDescription
from voxgate.sip.transaction import (
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionEvent,
    Transmit,
)
from voxgate.sip.transaction_layer import TransactionLayer

A, B = ("127.0.0.1", 5060), ("127.0.0.1", 5070)


class Phone:
    """A minimal UA core for tests: auto-answers INVITEs, ACKs 2xx, answers BYE."""

    def __init__(self, addr: tuple[str, int], port: int) -> None:
        self.addr = addr
        self.layer = TransactionLayer()
        self.media = MediaSession(MediaCapabilities(), addr[0], port, session_id=str(port))
        self.dialogs: dict[object, Dialog] = {}
        self.sent_requests: dict[tuple[str, ...], SipRequest] = {}
        self.log: list[object] = []
        self.contact = f"<sip:ua@{addr[0]}:{addr[1]}>"
        self.drop_acks = 0

    def dialog(self) -> Dialog:
        (d,) = self.dialogs.values()
        return d

    def send(self, request: SipRequest, dest: tuple[str, int], now: float) -> None:
        txn = self.layer.send_request(request, dest, now)
        self.sent_requests[txn.key] = request

    def on_event(self, event: TransactionEvent, now: float) -> None:
        self.log.append(event)
        if isinstance(event, RequestReceived):
            self.on_request(event.request, event.source, now)
        elif isinstance(event, ResponseReceived):
            self.on_response(self.sent_requests[event.key], event.response, now)
        elif isinstance(event, StrayResponse):
            dialog = self.dialogs.get(response_dialog_id(event.response))
            ack = dialog.ack_for_retransmission(event.response) if dialog else None
            if ack is not None:
                self.layer.send_stateless(ack, event.source)

    def on_request(self, req: SipRequest, source: tuple[str, int], now: float) -> None:
        dialog = self.dialogs.get(request_dialog_id(req))
        if req.method == "INVITE" and dialog is None:
            answer, _ = self.media.receive_offer(SessionDescription.parse(req.body))
            ok = make_response(
                req, 200, to_tag="uas-tag",
                headers=[("Contact", self.contact), ("Content-Type", "application/sdp"),
                         *[("Record-Route", rr) for rr in req.headers.get_all("Record-Route")]],
                body=bytes(answer),
            )  # fmt: skip
            dialog = Dialog.uas(req, ok, transport="UDP", sent_by=self.addr)
            self.dialogs[dialog.id] = dialog
            self.layer.send_response(ok, now)
            dialog.start_2xx_retransmission(ok, source, now)
            return
        if dialog is None:
            if req.method != "ACK":
                self.layer.send_response(make_response(req, 481, to_tag="x"), now)
            return
        error = dialog.receive_request(req, now)
        if req.method == "ACK":
            return
        if error is not None:
            self.layer.send_response(error, now)
            return
        if req.method == "INVITE":  # re-INVITE
            answer, _ = self.media.receive_offer(SessionDescription.parse(req.body))
            ok = make_response(req, 200, headers=[("Contact", self.contact), ("Content-Type", "application/sdp")], body=bytes(answer))
            self.layer.send_response(ok, now)
            dialog.start_2xx_retransmission(ok, source, now)
        else:
            self.layer.send_response(make_response(req, 200), now)

    def on_response(self, req: SipRequest, resp: SipResponse, now: float) -> None:
        if req.method == "INVITE" and resp.success:
            dialog = self.dialogs.get(response_dialog_id(resp))
            if dialog is None:
                dialog = Dialog.uac(req, resp)
                self.dialogs[dialog.id] = dialog
            else:
                dialog.receive_response(req, resp)
            self.media.receive_answer(SessionDescription.parse(resp.body))
            ack = dialog.create_ack(resp.cseq.number)
            self.layer.send_stateless(ack, B if self.addr == A else A)
        elif resp.status >= 200:
            dialog = self.dialogs.get(response_dialog_id(resp))
            if dialog is not None:
                dialog.receive_response(req, resp)


class Net:
    def __init__(self) -> None:
        self.now = 0.0
        self.phones = {A: Phone(A, 30000), B: Phone(B, 32000)}
        self.wire: list[tuple[float, tuple[str, int], bytes]] = []
        self.dialog_events: list[object] = []

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for addr, phone in self.phones.items():
                events: list[object] = [*phone.layer.events()]
                for d in phone.dialogs.values():
                    events += d.events()
                for event in events:
                    moved = True
                    if isinstance(event, Transmit):
                        data = event.message.serialize()
                        self.wire.append((self.now, addr, data))
                        peer = self.phones[event.destination]
                        if data.startswith(b"ACK") and phone.drop_acks > 0:
                            phone.drop_acks -= 1
                            continue
                        peer.layer.receive(parse_message(data), addr, self.now)
                    elif isinstance(event, AckTimeout):
                        self.dialog_events.append(event)
                    else:
                        phone.on_event(event, self.now)  # type: ignore[arg-type]

    def advance(self, until: float) -> None:
        while True:
            timers = []
            for phone in self.phones.values():
                timers += [phone.layer.next_timer(), *(d.next_timer() for d in phone.dialogs.values())]
            due = [t for t in timers if t is not None and t <= until]
            if not due:
                break
            self.now = min(due)
            for phone in self.phones.values():
                phone.layer.handle_timer(self.now)
                for d in phone.dialogs.values():
                    d.handle_timer(self.now)
            self.pump()
        self.now = until

    def lines(self, who: tuple[str, int], prefix: bytes) -> list[float]:
        return [t for t, addr, data in self.wire if addr == who and data.startswith(prefix)]

    def call(self, *, record_route: list[str] | None = None) -> None:
        alice = self.phones[A]
        invite = build_invite(
            "sip:bob@127.0.0.1:5070", contact=alice.contact, from_="Alice <sip:alice@127.0.0.1>",
            to="<sip:bob@127.0.0.1>", transport="UDP", sent_by=A, from_tag="uac-tag",
            call_id="call-1", cseq=10, sdp=bytes(alice.media.create_offer()),
        )  # fmt: skip
        for rr in record_route or []:
            invite.headers.add("Record-Route", rr)
        alice.send(invite, B, self.now)
        self.pump()


def test_invite_200_ack_bye_200() -> None:
    net = Net()
    net.call()
    alice, bob = net.phones[A].dialog(), net.phones[B].dialog()
    assert alice.state is bob.state is DialogState.CONFIRMED
    assert alice.id.local_tag == bob.id.remote_tag == "uac-tag"
    assert alice.id.remote_tag == bob.id.local_tag == "uas-tag"
    assert alice.local_seq == 10 and bob.remote_seq == 10
    assert str(alice.remote_target) == "sip:ua@127.0.0.1:5070"
    assert str(bob.remote_target) == "sip:ua@127.0.0.1:5060"
    assert not bob.awaiting_ack  # the ACK stopped the 2xx retransmission
    ack = next(parse_message(d) for _, who, d in net.wire if who == A and d.startswith(b"ACK"))
    assert ack.cseq.number == 10 and ack.cseq.method == "ACK"
    assert net.phones[A].media.negotiated is not None and net.phones[B].media.negotiated is not None
    net.phones[A].send(alice.create_request("BYE"), B, net.now)
    net.pump()
    assert bob.state is DialogState.TERMINATED and alice.state is DialogState.TERMINATED
    bye = next(parse_message(d) for _, who, d in net.wire if who == A and d.startswith(b"BYE"))
    assert bye.cseq.number == 11 and bye.to_tag == "uas-tag" and bye.from_tag == "uac-tag"
    net.advance(100.0)
    assert net.lines(B, b"SIP/2.0 200") == [0.0, 0.0]  # 200 INVITE, 200 BYE, no retransmits
    assert len(net.phones[A].layer) == len(net.phones[B].layer) == 0


def test_lost_ack_2xx_is_retransmitted_and_reacked() -> None:
    net = Net()
    net.phones[A].drop_acks = 2
    net.call()
    net.advance(10.0)
    # T1, 2*T1: two lost ACKs, the third ACK (answering the second retransmission) lands.
    assert net.lines(B, b"SIP/2.0 200") == [0.0, 0.5, 1.5]
    assert net.lines(A, b"ACK") == [0.0, 0.5, 1.5]
    acks = {parse_message(d).serialize() for _, who, d in net.wire if who == A and d.startswith(b"ACK")}
    assert len(acks) == 1  # the very same ACK each time
    assert not net.phones[B].dialog().awaiting_ack
    assert net.dialog_events == []


def test_ack_never_arrives_reports_timeout_after_64_t1() -> None:
    net = Net()
    net.phones[A].drop_acks = 1000
    net.call()
    net.advance(60.0)
    assert net.lines(B, b"SIP/2.0 200") == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    (timeout,) = net.dialog_events
    assert isinstance(timeout, AckTimeout) and timeout.dialog_id == net.phones[B].dialog().id


def test_reinvite_hold_and_target_refresh() -> None:
    net = Net()
    net.call()
    alice_phone, bob_phone = net.phones[A], net.phones[B]
    alice = alice_phone.dialog()
    bob = bob_phone.dialog()
    alice_phone.contact = "<sip:moved@127.0.0.1:5060>"
    alice.local_contact = parse_message(
        b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n"
        b"To: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContact: <sip:moved@127.0.0.1:5060>\r\n\r\n"
    ).contact  # type: ignore[assignment]
    offer = alice_phone.media.create_offer("sendonly")
    reinvite = alice.create_request("INVITE", body=bytes(offer), content_type="application/sdp")
    assert reinvite.cseq.number == 11 and reinvite.to_tag == "uas-tag"
    alice_phone.send(reinvite, B, net.now)
    net.pump()
    assert str(bob.remote_target) == "sip:moved@127.0.0.1:5060"  # target refresh
    held = bob_phone.media.negotiated
    assert held is not None and held.remote_hold and held.direction == "recvonly"
    mine = alice_phone.media.negotiated
    assert mine is not None and mine.direction == "sendonly"
    assert bob.remote_seq == 11 and not bob.awaiting_ack
    reacks = [parse_message(d) for _, who, d in net.wire if who == A and d.startswith(b"ACK")]
    assert [a.cseq.number for a in reacks] == [10, 11]
    # Unhold.
    offer = alice_phone.media.create_offer("sendrecv")
    alice_phone.send(alice.create_request("INVITE", body=bytes(offer), content_type="application/sdp"), B, net.now)
    net.pump()
    assert bob_phone.media.negotiated is not None and not bob_phone.media.negotiated.remote_hold


def test_lower_cseq_is_rejected_with_500() -> None:
    net = Net()
    net.call()
    alice, bob = net.phones[A].dialog(), net.phones[B].dialog()
    info = alice.create_request("INFO", body=b"Signal=1", content_type="application/dtmf-relay")
    assert bob.receive_request(info, 0.0) is None and bob.remote_seq == 11
    stale = alice.create_request("INFO")
    stale.headers.set("CSeq", "5 INFO")
    error = bob.receive_request(stale, 0.0)
    assert error is not None and error.status == 500 and bob.remote_seq == 11


def test_record_route_reversed_for_uac_and_in_order_for_uas() -> None:
    net = Net()
    net.call(record_route=["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
    alice, bob = net.phones[A].dialog(), net.phones[B].dialog()
    assert [str(r.uri) for r in alice.route_set] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    assert [str(r.uri) for r in bob.route_set] == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    bye = alice.create_request("BYE")
    assert str(bye.uri) == "sip:ua@127.0.0.1:5070"  # loose routing: target stays in R-URI
    assert [str(r.uri) for r in bye.route] == ["sip:p2.example.com;lr", "sip:p1.example.com;lr"]


def test_strict_route_puts_first_hop_in_request_uri() -> None:
    net = Net()
    net.call(record_route=["<sip:strict.example.com>"])
    bye = net.phones[A].dialog().create_request("BYE")
    assert str(bye.uri) == "sip:strict.example.com"
    assert [str(r.uri) for r in bye.route] == ["sip:ua@127.0.0.1:5070"]


def test_in_dialog_request_builders() -> None:
    net = Net()
    net.call()
    alice = net.phones[A].dialog()
    refer = alice.create_request("REFER", headers=[("Refer-To", "<sip:carol@example.com>")])
    assert refer.contact is not None and refer.headers.get("Refer-To") == "<sip:carol@example.com>"
    bye = alice.create_request("BYE")
    assert bye.contact is None and bye.via.branch is not None and bye.via.branch.startswith("z9hG4bK")
    assert bye.via.branch != refer.via.branch
    with pytest.raises(ValueError):
        alice.create_request("ACK")
    resp = make_response(refer, 481)
    alice.receive_response(refer, resp)
    assert alice.state is DialogState.TERMINATED
    with pytest.raises(ValueError):
        alice.create_request("BYE")
