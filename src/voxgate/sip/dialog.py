"""Dialogs (RFC 3261 section 12) and the UA-core duties around 2xx to INVITE (section 13).

A :class:`Dialog` holds what the RFC says a dialog is (Call-ID, tags, sequence numbers,
remote target, route set) and builds in-dialog requests from it. It also carries the two
jobs the transaction layer leaves to the UA core because a 2xx ends the INVITE transaction:

* UAS: retransmit the 2xx from T1, doubling up to T2, until the ACK arrives; after 64*T1
  without ACK report :class:`AckTimeout` (the TU should then send BYE, section 13.3.1.4);
* UAC: answer every retransmitted 2xx with the same ACK again (section 13.2.2.4).

Sans-I/O like the transactions: ``next_timer()``, ``handle_timer(now)``, ``events()``.
Transmissions are :class:`~voxgate.sip.transaction.Transmit` events so the edge handles
dialogs and transactions with the same loop.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from voxgate.sip.headers import Headers
from voxgate.sip.message import SipRequest, SipResponse, make_response
from voxgate.sip.requests import make_via, new_branch
from voxgate.sip.transaction import Address, TimerValues, Transmit
from voxgate.sip.uri import NameAddress, SipUri, Uri

__all__ = [
    "AckTimeout",
    "Dialog",
    "DialogEvent",
    "DialogId",
    "DialogState",
    "TARGET_REFRESH_METHODS",
    "request_dialog_id",
    "response_dialog_id",
]

TARGET_REFRESH_METHODS = frozenset(("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"))
"""Requests whose Contact replaces the remote target (section 12.2, RFC 3311, 6665, 3515)."""


class DialogState(enum.Enum):
    """Early (after a tagged 1xx), confirmed (after 2xx), terminated."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """Call-ID plus local and remote tag, as seen from our side."""

    call_id: str
    local_tag: str
    remote_tag: str


def request_dialog_id(request: SipRequest) -> DialogId:
    """The id of the dialog an incoming request belongs to (we are the To side)."""
    return DialogId(request.call_id, request.to_tag or "", request.from_tag or "")


def response_dialog_id(response: SipResponse) -> DialogId:
    """The id of the dialog an incoming response belongs to (we are the From side)."""
    return DialogId(response.call_id, response.from_tag or "", response.to_tag or "")


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """No ACK for our 2xx within 64*T1: the session should be ended with BYE."""

    dialog_id: DialogId
    response: SipResponse


DialogEvent = Transmit | AckTimeout


def _untagged(addr: NameAddress) -> NameAddress:
    return replace(addr, params=addr.params.remove("tag"))


def _contact_uri(message: SipRequest | SipResponse) -> Uri | None:
    contact = message.contact
    return contact.uri if contact is not None else None


class Dialog:
    """One dialog. Create it with :meth:`uac` or :meth:`uas`."""

    def __init__(
        self,
        *,
        call_id: str,
        local_tag: str,
        remote_tag: str,
        local_uri: NameAddress,
        remote_uri: NameAddress,
        remote_target: Uri,
        route_set: list[NameAddress],
        local_seq: int,
        remote_seq: int | None,
        local_contact: NameAddress,
        transport: str,
        sent_by: tuple[str, int | None],
        state: DialogState,
        timers: TimerValues | None = None,
    ) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_contact = local_contact
        self.transport = transport
        self.sent_by = sent_by
        self.state = state
        self.timers = timers or TimerValues()
        self._acks: dict[int, SipRequest] = {}
        self._pending_2xx: dict[int, _Retransmission] = {}
        self._events: list[DialogEvent] = []

    # -- creation -----------------------------------------------------------------------------

    @classmethod
    def uac(
        cls, request: SipRequest, response: SipResponse, *, timers: TimerValues | None = None
    ) -> Dialog:
        """The dialog a tagged 1xx (early) or a 2xx (confirmed) to our INVITE creates.

        The route set is the response's Record-Route *reversed* (section 12.1.2), the remote
        target its Contact."""
        target = _contact_uri(response)
        contact = request.contact
        if target is None or contact is None or response.to_tag is None:
            raise ValueError("a dialog-creating response needs a To tag and both Contacts")
        via = request.via
        return cls(
            call_id=request.call_id,
            local_tag=request.from_tag or "",
            remote_tag=response.to_tag,
            local_uri=_untagged(request.from_),
            remote_uri=_untagged(response.to),
            remote_target=target,
            route_set=list(reversed(response.record_route)),
            local_seq=request.cseq.number,
            remote_seq=None,
            local_contact=contact,
            transport=via.transport,
            sent_by=(via.host, via.port),
            state=DialogState.CONFIRMED if response.success else DialogState.EARLY,
            timers=timers,
        )

    @classmethod
    def uas(
        cls,
        request: SipRequest,
        response: SipResponse,
        *,
        transport: str,
        sent_by: tuple[str, int | None],
        timers: TimerValues | None = None,
    ) -> Dialog:
        """The dialog our tagged 1xx/2xx to ``request`` creates (section 12.1.1): route set
        is Record-Route in order, remote target the request's Contact. ``transport`` and
        ``sent_by`` are our own, for the Via of the requests we will send in the dialog."""
        target = _contact_uri(request)
        contact = response.contact
        if target is None or contact is None or response.to_tag is None:
            raise ValueError("a dialog-creating response needs a To tag and both Contacts")
        return cls(
            call_id=request.call_id,
            local_tag=response.to_tag,
            remote_tag=request.from_tag or "",
            local_uri=_untagged(request.to),
            remote_uri=_untagged(request.from_),
            remote_target=target,
            route_set=request.record_route,
            local_seq=0,
            remote_seq=request.cseq.number,
            local_contact=contact,
            transport=transport,
            sent_by=sent_by,
            state=DialogState.CONFIRMED if response.success else DialogState.EARLY,
            timers=timers,
        )

    @property
    def id(self) -> DialogId:
        """Our view of the dialog id."""
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    # -- outgoing requests --------------------------------------------------------------------

    def _target_and_routes(self) -> tuple[Uri, list[NameAddress]]:
        routes = self.route_set
        if not routes:
            return self.remote_target, []
        first = routes[0].uri
        if isinstance(first, SipUri) and not first.loose_route:
            # Strict router (RFC 2543): it gets the Request-URI, the target goes last.
            return replace(first, headers=()), [*routes[1:], NameAddress(self.remote_target)]
        return self.remote_target, list(routes)

    def _request(
        self, method: str, cseq: int, branch: str | None, body: bytes, content_type: str | None,
        headers: Iterable[tuple[str, str]],
    ) -> SipRequest:  # fmt: skip
        uri, routes = self._target_and_routes()
        h = Headers()
        h.add("Via", str(make_via(self.transport, self.sent_by, branch or new_branch())))
        h.add("Max-Forwards", "70")
        for route in routes:
            h.add("Route", str(route))
        h.add("From", str(self.local_uri.with_tag(self.local_tag)))
        h.add("To", str(self.remote_uri.with_tag(self.remote_tag)))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        if method in TARGET_REFRESH_METHODS or method == "ACK":
            h.add("Contact", str(self.local_contact))
        for name, value in headers:
            h.add(name, value)
        if body and content_type:
            h.add("Content-Type", content_type)
        return SipRequest(method, uri, h, body)

    def create_request(
        self,
        method: str,
        *,
        branch: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> SipRequest:
        """An in-dialog request (BYE, re-INVITE, UPDATE, REFER, INFO, ...) with the next CSeq
        (section 12.2.1.1). Use :meth:`create_ack` for ACK; CANCEL is built from the INVITE."""
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} is not built by create_request")
        if self.state is DialogState.TERMINATED:
            raise ValueError("dialog is terminated")
        self.local_seq += 1
        return self._request(method, self.local_seq, branch, body, content_type, headers)

    def create_ack(
        self, invite_cseq: int, *, branch: str | None = None, body: bytes = b"",
        content_type: str | None = None,
    ) -> SipRequest:  # fmt: skip
        """The ACK for a 2xx to the INVITE with CSeq ``invite_cseq`` (section 13.2.2.4); it is
        remembered and re-sent by :meth:`ack_for_retransmission`."""
        ack = self._request("ACK", invite_cseq, branch, body, content_type, ())
        self._acks = {invite_cseq: ack}  # only the latest INVITE can still see 2xx retransmits
        return ack

    def ack_for_retransmission(self, response: SipResponse) -> SipRequest | None:
        """The ACK to re-send for a retransmitted 2xx to INVITE (a stray response)."""
        cseq = response.cseq
        if cseq.method != "INVITE" or not response.success:
            return None
        return self._acks.get(cseq.number)

    # -- incoming -----------------------------------------------------------------------------

    def receive_request(self, request: SipRequest, now: float) -> SipResponse | None:
        """Apply an in-dialog request (section 12.2.2). Returns an error response to send
        instead of processing it (500 for an out-of-order CSeq), else ``None``. An ACK stops
        the 2xx retransmission it acknowledges."""
        cseq = request.cseq
        if request.method == "ACK":
            self._pending_2xx.pop(cseq.number, None)
            return None
        if request.method != "CANCEL":
            if self.remote_seq is not None and cseq.number < self.remote_seq:
                return make_response(request, 500, "CSeq Out of Order", headers=[("Retry-After", "0")])
            self.remote_seq = cseq.number
        if request.method in TARGET_REFRESH_METHODS:
            target = _contact_uri(request)
            if target is not None:
                self.remote_target = target
        if request.method == "BYE":
            self.state = DialogState.TERMINATED
            self._pending_2xx.clear()
        return None

    def receive_response(self, request: SipRequest, response: SipResponse) -> None:
        """Apply the response to a request we sent in this dialog (sections 12.2.1.2, 13.2.2.4)."""
        if response.provisional:
            return
        status = response.status
        if status in (408, 481):
            self.state = DialogState.TERMINATED  # the dialog is gone at the far end
        elif request.method == "BYE":
            self.state = DialogState.TERMINATED
        elif response.success and request.method in TARGET_REFRESH_METHODS:
            target = _contact_uri(response)
            if target is not None:
                self.remote_target = target
            if request.method == "INVITE" and self.state is DialogState.EARLY:
                self.state = DialogState.CONFIRMED
                self.route_set = list(reversed(response.record_route))

    # -- UAS 2xx retransmission ---------------------------------------------------------------

    def start_2xx_retransmission(self, response: SipResponse, destination: Address, now: float) -> None:
        """Keep re-sending our 2xx to INVITE until its ACK (section 13.3.1.4). This applies on
        every transport: the hop-by-hop reliability of TCP does not cover proxies on the way."""
        if self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED
        t1 = self.timers.t1
        self._pending_2xx[response.cseq.number] = _Retransmission(
            response, destination, now + t1, t1, now + 64 * t1
        )

    @property
    def awaiting_ack(self) -> bool:
        """Whether a 2xx of ours is still unacknowledged."""
        return bool(self._pending_2xx)

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` should run next."""
        return min((r.next_send for r in self._pending_2xx.values()), default=None)

    def handle_timer(self, now: float) -> None:
        """Re-send due 2xx responses; report :class:`AckTimeout` after 64*T1."""
        for cseq, r in list(self._pending_2xx.items()):
            while r.next_send <= now:
                if r.next_send >= r.give_up:
                    del self._pending_2xx[cseq]
                    self._events.append(AckTimeout(self.id, r.response))
                    break
                self._events.append(Transmit(r.response, r.destination))
                r.interval = min(2 * r.interval, self.timers.t2)
                r.next_send = min(r.next_send + r.interval, r.give_up)

    def events(self) -> list[DialogEvent]:
        """Drain pending events."""
        out, self._events = self._events, []
        return out

    def __repr__(self) -> str:
        return f"<Dialog {self.call_id} {self.local_tag}/{self.remote_tag} {self.state.value}>"


@dataclass(slots=True)
class _Retransmission:
    response: SipResponse
    destination: Address
    next_send: float
    interval: float
    give_up: float
