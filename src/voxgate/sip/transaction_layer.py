"""The transaction layer: matches messages to transactions (RFC 3261 sections 17.1.3 and
17.2.3), creates server transactions, and multiplexes their timers and events.

Matching: a response belongs to the client transaction whose key is (top Via branch, CSeq
method). A request belongs to the server transaction keyed by (branch, sent-by, method),
where an ACK is looked up as an INVITE (it belongs to the INVITE transaction when it
acknowledges a non-2xx) and a CANCEL keeps its own key (section 9.2 matches it to the INVITE
separately, see :meth:`TransactionLayer.invite_for_cancel`). Branches without the
``z9hG4bK`` cookie come from RFC 2543 peers and are keyed by Call-ID, From tag, CSeq number
and sent-by instead, a simplification of section 17.2.3's 2543 rules that is enough to
absorb their retransmissions.

What matches nothing is reported rather than dropped: a response becomes
:class:`StrayResponse` (a retransmitted 2xx to INVITE, which the dialog layer must ACK
again), an ACK becomes :class:`RequestReceived` with ``key=None`` (the ACK to a 2xx, which is
the dialog's business), any other request creates a server transaction.

All timers of all transactions are kept in one heap, so ``next_timer`` is O(1) and the layer
scales to many concurrent transactions behind a single event-loop timer.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable

from voxgate.sip.headers import BRANCH_MAGIC_COOKIE
from voxgate.sip.message import SipMessage, SipRequest, SipResponse, make_response
from voxgate.sip.transaction import (
    Address,
    ClientTransaction,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    RequestReceived,
    ServerTransaction,
    State,
    StrayResponse,
    TimerValues,
    Transaction,
    TransactionEvent,
    TransactionKey,
    Transmit,
)

__all__ = ["TransactionLayer", "client_key", "server_key"]


def client_key(message: SipMessage) -> TransactionKey:
    """Section 17.1.3: the top Via branch and the CSeq method."""
    return ("c", message.via.branch or "", message.cseq.method)


def server_key(request: SipMessage) -> TransactionKey:
    """Section 17.2.3 for requests (and for our own responses, which carry the same Via)."""
    via = request.via
    method = request.cseq.method
    if method == "ACK":
        method = "INVITE"
    host, port = via.sent_by
    branch = via.branch or ""
    if branch.startswith(BRANCH_MAGIC_COOKIE):
        return ("s", branch, f"{host}:{port}", method)
    from_tag = request.from_.tag or ""
    return ("s2543", request.call_id, from_tag, str(request.cseq.number), f"{host}:{port}", method)


class TransactionLayer:
    """All transactions of one SIP endpoint, driven like an aioquic connection."""

    def __init__(self, timers: TimerValues | None = None, *, send_trying: bool = True) -> None:
        self.timers = timers or TimerValues()
        self.send_trying = send_trying
        """Send ``100 Trying`` as soon as an INVITE server transaction starts (section
        17.2.1 allows skipping it only if the TU answers within 200 ms)."""
        self._transactions: dict[TransactionKey, Transaction] = {}
        self._heap: list[tuple[float, int, TransactionKey]] = []
        self._scheduled: dict[TransactionKey, float] = {}
        self._counter = itertools.count()
        self._events: list[TransactionEvent] = []

    # -- outgoing -----------------------------------------------------------------------------

    def send_request(
        self, request: SipRequest, destination: Address, now: float, *, reliable: bool = False
    ) -> ClientTransaction:
        """Start a client transaction for ``request`` (not ACK: see :meth:`send_stateless`)."""
        if request.method == "ACK":
            raise ValueError("ACK is not sent in a transaction; use send_stateless")
        branch = request.via.branch or ""
        if not branch.startswith(BRANCH_MAGIC_COOKIE):
            raise ValueError(f"branch {branch!r} lacks the {BRANCH_MAGIC_COOKIE} cookie")
        key = client_key(request)
        if key in self._transactions:
            raise ValueError(f"a transaction with branch {branch!r} already exists")
        cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        txn = cls(key, request, destination, now, reliable=reliable, timers=self.timers)
        self._track(txn)
        return txn

    def send_response(self, response: SipResponse, now: float) -> None:
        """Send a response through the server transaction it answers (KeyError if none)."""
        txn = self._transactions[server_key(response)]
        assert isinstance(txn, ServerTransaction)
        txn.send_response(response, now)
        self._track(txn)

    def send_stateless(self, message: SipMessage, destination: Address) -> None:
        """Transmit outside any transaction: the ACK to a 2xx, 2xx retransmissions."""
        self._events.append(Transmit(message, destination))

    # -- incoming -----------------------------------------------------------------------------

    def receive(
        self, message: SipMessage, source: Address, now: float, *, reliable: bool = False
    ) -> None:
        """Route a parsed message to its transaction or report it (see module docstring)."""
        if isinstance(message, SipResponse):
            client = self._transactions.get(client_key(message))
            if isinstance(client, ClientTransaction):
                client.receive_response(message, now)
                self._track(client)
            else:
                self._events.append(StrayResponse(message, source))
            return
        assert isinstance(message, SipRequest)
        key = server_key(message)
        txn = self._transactions.get(key)
        if isinstance(txn, ServerTransaction):
            if message.method == "ACK" and isinstance(txn, InviteServerTransaction):
                if txn.state in (State.COMPLETED, State.CONFIRMED):
                    txn.receive_request(message, now)
                    self._track(txn)
                    return
                # ACK for a 2xx whose transaction still exists: the dialog's ACK.
                self._events.append(RequestReceived(None, message, source))
                return
            txn.receive_request(message, now)
            self._track(txn)
            return
        if message.method == "ACK":
            self._events.append(RequestReceived(None, message, source))
            return
        cls = InviteServerTransaction if message.method == "INVITE" else NonInviteServerTransaction
        server = cls(key, message, source, now, reliable=reliable, timers=self.timers)
        self._events.append(RequestReceived(key, message, source))
        if message.method == "INVITE" and self.send_trying:
            server.send_response(make_response(message, 100), now)
        self._track(server)

    def invite_for_cancel(self, cancel: SipRequest) -> InviteServerTransaction | None:
        """The INVITE server transaction a CANCEL targets (section 9.2), if still pending."""
        key = server_key(cancel)
        txn = self._transactions.get((*key[:-1], "INVITE"))
        return txn if isinstance(txn, InviteServerTransaction) else None

    def transport_error(self, key: TransactionKey, now: float) -> None:
        """The edge failed to send for ``key``: fail the transaction."""
        txn = self._transactions.get(key)
        if txn is not None:
            txn.transport_error(now)
            self._track(txn)

    # -- timers and events --------------------------------------------------------------------

    def next_timer(self) -> float | None:
        """The earliest deadline over all transactions."""
        heap = self._heap
        while heap and self._scheduled.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # stale entry
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> None:
        """Fire all transaction timers due at ``now``."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            if self._scheduled.get(key) != when:
                continue
            del self._scheduled[key]
            txn = self._transactions.get(key)
            if txn is not None:
                txn.handle_timer(now)
                self._track(txn)

    def events(self) -> list[TransactionEvent]:
        """Drain pending events in order."""
        out, self._events = self._events, []
        return out

    def get(self, key: TransactionKey) -> Transaction | None:
        """The live transaction for ``key``."""
        return self._transactions.get(key)

    def __len__(self) -> int:
        return len(self._transactions)

    def transactions(self) -> Iterable[Transaction]:
        """The live transactions."""
        return self._transactions.values()

    def _track(self, txn: Transaction) -> None:
        self._events.extend(txn.events())
        key = txn.key
        if txn.terminated:
            self._transactions.pop(key, None)
            self._scheduled.pop(key, None)
            return
        self._transactions[key] = txn
        when = txn.next_timer()
        if when is None:
            self._scheduled.pop(key, None)
        elif self._scheduled.get(key) != when:
            self._scheduled[key] = when
            heapq.heappush(self._heap, (when, next(self._counter), key))
